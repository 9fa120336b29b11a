"""A real OCI registry for the pull tests: Debian's docker-registry (distribution 2.8) on loopback.

The package is fetched once with `apt-get download` and unpacked with `dpkg -x`
into .cache/registry, never installed: installing it would enable a service on
the machine. Each registry runs inside the tests' private network namespace,
on 127.0.0.1, with its storage in a temporary directory, and is stopped by pid.
Logins as registries ask for them: htpasswd (Basic), or Bearer tokens from a
small token service here, which signs them as distribution's token auth checks.
"""

import base64
import contextlib
import http.server
import json
import select
import socket
import socketserver
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import vm

CACHE = vm.REPO / ".cache" / "registry"


def binary():
    """The docker-registry program, downloaded once."""
    program = CACHE / "usr/bin/docker-registry"
    if not program.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([*vm.host_network(), "apt-get", "download", "docker-registry"], cwd=CACHE, check=True,
                       capture_output=True, pass_fds=vm.host_fds())  # fmt: skip
        deb = next(CACHE.glob("docker-registry_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(CACHE)], check=True)
        deb.unlink()
    return program


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed(directory, host):
    """A self-signed certificate for host (an IP address), what no system trusts: {certificate, key} paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    paths = {"certificate": Path(directory) / "tls.crt", "key": Path(directory) / "tls.key"}
    paths["certificate"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))  # fmt: skip
    return {name: str(path) for name, path in paths.items()}


class Registry:
    """One running registry: its address, and skopeo to put images in it."""

    def __init__(self, directory, auth=None, host="127.0.0.1", tls=False):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"{host}:{self.port}"
        self.credentials = None
        self.tokens = None
        self.scheme = "http"
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.directory / "storage")}},
            "http": {"addr": self.address},
        }
        if auth == "basic":
            self.credentials = ("puller", "s3cret-" + uuid.uuid4().hex[:8])
            config["auth"] = {"htpasswd": {"realm": "tests", "path": str(self._htpasswd())}}
        elif auth == "token":
            self.credentials = ("puller", "t0ken-" + uuid.uuid4().hex[:8])
            self.tokens = TokenService(self.directory, self.credentials, service=f"registry-{self.port}")
            config["auth"] = {"token": self.tokens.config()}
        if tls:
            config["http"]["tls"] = self._certificate(host)
        path = self.directory / "config.json"  # YAML is a superset of JSON
        path.write_text(json.dumps(config))
        self.log = open(self.directory / "registry.log", "wb")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen([str(binary()), "serve", str(path)], stdout=self.log, stderr=self.log)
        self._wait()

    def _htpasswd(self):
        import bcrypt

        user, password = self.credentials
        path = self.directory / "htpasswd"
        path.write_bytes(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)) + b"\n")
        return path

    def _certificate(self, host):
        self.scheme = "https"
        return self_signed(self.directory, host)

    def _wait(self):
        import ssl

        unchecked = ssl._create_unverified_context()  # our own self-signed test certificate
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.directory / 'registry.log').read_text()}")
            try:
                urllib.request.urlopen(f"{self.scheme}://{self.address}/v2/", timeout=1, context=unchecked)
                return
            except urllib.error.HTTPError:
                return  # 401: up, and asking for a login
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not answer within 20 s")

    def push(self, source, name, *options):
        """skopeo copy source (e.g. docker-archive:PATH, oci:DIR) to this registry as name."""
        argv = ["skopeo", "copy", "-q", "--dest-tls-verify=false", *options, source, f"docker://{self.address}/{name}"]
        if self.credentials:
            argv[3:3] = ["--dest-creds", ":".join(self.credentials)]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if self.tokens:
            self.tokens.stop()


@contextlib.contextmanager
def running(directory, auth=None, host="127.0.0.1", tls=False):
    registry = Registry(directory, auth, host, tls)
    try:
        yield registry
    finally:
        registry.stop()


class TokenService:
    """Docker's token auth: checks Basic credentials, hands out RS256 JWTs the registry trusts.

    The signing certificate is self-signed and is the registry's root bundle; each
    token carries it in its x5c header. Every request's query is kept (`asked`)
    so a test can check what the client asked for. A POST is OAuth2's: the
    identity token `refresh` traded for a token, each form kept in `posted`.
    """

    def __init__(self, directory, credentials, service):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.credentials, self.service, self.issuer = credentials, service, "tests-token-issuer"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tests token signer")])
        now = time.time()
        import datetime

        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.fromtimestamp(now - 60, datetime.timezone.utc))
            .not_valid_after(datetime.datetime.fromtimestamp(now + 3600, datetime.timezone.utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.bundle = Path(directory) / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.asked, self.posted = [], []
        self.refresh = "refresh-" + uuid.uuid4().hex
        service_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                service_self.asked.append((self.path, self.headers.get("Authorization")))
                self.reply(*service_self.answer(self.path, self.headers.get("Authorization")))

            def do_POST(self):
                import urllib.parse

                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                service_self.posted.append({**form, "content-type": self.headers.get("Content-Type")})
                self.reply(*service_self.trade(form))

            def reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def config(self):
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": str(self.bundle)}  # fmt: skip

    def answer(self, path, authorization):
        import urllib.parse

        query = urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query)
        wanted = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if authorization != wanted:
            return 401, b'{"details": "bad credentials"}'
        return 200, json.dumps({"token": self.token([value for key, value in query if key == "scope"])}).encode()

    def trade(self, form):
        """OAuth2's refresh_token grant, as Azure's registry answers it: an access_token for the scope."""
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh:
            return 400, b'{"error": "invalid_grant"}'
        token = self.token(form.get("scope", "").split())
        return 200, json.dumps({"access_token": token, "expires_in": 300}).encode()

    def token(self, scopes):
        """A signed token granting each scope asked for (repository:NAME:ACTIONS)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def encoded(value):
            raw = value if isinstance(value, bytes) else json.dumps(value).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=")

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": self.issuer, "sub": self.credentials[0], "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                  "access": [{"type": kind, "name": name, "actions": actions.split(",")}
                             for kind, name, actions in (scope.split(":") for scope in scopes)]}  # fmt: skip
        signed = encoded(header) + b"." + encoded(claims)
        signature = self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        return (signed + b"." + encoded(signature)).decode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """An HTTP proxy on loopback: CONNECT tunnels and whole-URL GETs, each kept in `seen`.

    seen: (method, target, whether Proxy-Authorization came) per request.
    busy: how many whole-URL requests to answer 503 (Retry-After: 0) instead
    of passing on, as an overloaded registry or front would.
    cuts: how many blob downloads to cut off after CUT_AFTER bytes, closing the
    connection (or resetting it, with reset) as a failing network would.
    ranges: False drops the Range header, as a registry that ignores it.
    ranges_asked: the Range header of each whole-URL request that had one.
    rate: bytes per second each connection may carry towards the client (None:
    as fast as it goes), as a distant registry or a CDN's per-connection cap.
    cut_uploads: how many request bodies (uploads) to cut off after CUT_AFTER bytes.
    drops: how many blob downloads (of the path dropping, if given) to close
    before their first byte, as a registry or network that fails now and then would.
    """

    CUT_AFTER = 32 << 10

    def __init__(self, busy=0, cuts=0, ranges=True, reset=False, rate=None, cut_uploads=0, drops=0):
        self.seen = []
        self.busy, self.drops, self.dropping = busy, drops, "/blobs/"
        self.cuts, self.ranges, self.reset, self.rate = cuts, ranges, reset, rate
        self.cut_uploads = cut_uploads
        self.ranges_asked = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # headers read byte by byte: a request body stays in the socket, for _relay to pass on

            def handle(self):
                method, target, _version = self.rfile.readline().decode().split()
                headers = []
                for line in iter(self.rfile.readline, b""):
                    if line in (b"\r\n", b"\n"):
                        break
                    headers.append(line)
                authorized = any(line.lower().startswith(b"proxy-authorization:") for line in headers)
                proxy.seen.append((method, target, authorized))
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    upstream = socket.create_connection((host.strip("[]"), int(port)))
                    self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self.wfile.flush()
                elif proxy.busy > 0:
                    proxy.busy -= 1
                    body = b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'
                    self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nConnection: close\r\n"
                                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
                    return
                elif proxy.drops > 0 and method == "GET" and proxy.dropping in target:
                    proxy.drops -= 1
                    return  # closed: no answer at all
                else:
                    parts = urllib.parse.urlsplit(target)
                    upstream = socket.create_connection((parts.hostname, parts.port or 80))
                    kept = [line for line in headers if not line.lower().startswith((b"proxy-", b"connection:"))]
                    asked = [line for line in kept if line.lower().startswith(b"range:")]
                    proxy.ranges_asked += [line.split(b":", 1)[1].strip().decode() for line in asked]
                    if not proxy.ranges:
                        kept = [line for line in kept if line not in asked]
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    upstream.sendall(
                        f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(kept) + b"Connection: close\r\n\r\n"
                    )
                limit = proxy.CUT_AFTER if proxy.cuts and method == "GET" and "/blobs/" in target else None
                limit_up = proxy.CUT_AFTER if proxy.cut_uploads and method in ("PUT", "PATCH") else None
                with upstream:
                    cut = _relay(self.connection, upstream, limit, proxy.rate, limit_up)
                    if cut == "up":
                        proxy.cut_uploads -= 1
                    elif cut == "down":
                        proxy.cuts -= 1
                        if proxy.reset:  # closed with a RST, no FIN first
                            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                            self.connection.close()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _relay(client, upstream, limit=None, rate=None, limit_up=None):
    """Bytes both ways until either side closes; "down" when cut off after limit bytes to the client,
    "up" after limit_up bytes from it, None when a side closed.

    rate: at most that many bytes a second to the client.
    """
    sockets, sent, started, received = [client, upstream], 0, time.monotonic(), 0
    while True:
        if rate:
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        readable, _, _ = select.select(sockets, [], [], 30)
        if not readable:
            return None
        for source in readable:
            data = source.recv(1 << 16)
            if not data:
                return None
            if source is upstream and limit is not None and sent + len(data) > limit:
                client.sendall(data[: limit - sent])
                return "down"
            if source is client and limit_up is not None:
                received += len(data)
                if received > limit_up:
                    return "up"
            sent += len(data) if source is upstream else 0
            (upstream if source is client else client).sendall(data)


@contextlib.contextmanager
def proxying(busy=0, cuts=0, ranges=True, reset=False, rate=None, cut_uploads=0, drops=0):
    proxy = Proxy(busy, cuts, ranges, reset, rate, cut_uploads, drops)
    try:
        yield proxy
    finally:
        proxy.stop()
