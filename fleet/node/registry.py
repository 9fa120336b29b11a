"""Images from and to a registry: the OCI distribution API, standard library only.

`image pull REF` asks the registry for REF's manifest (following an index to
this host's platform), then streams the config and each layer through the same
code that imports archives (imports.apply): every digest is checked, layers are
flattened as they arrive, nothing is kept but the finished ext4 file.
`image push NAME REF` uploads the blobs the registry lacks, then the manifest
(exports.push makes them).

Authentication as registries ask for it: anonymous or with --username and a
password, a Bearer token fetched from the realm the registry names (Docker
Hub, GHCR, Quay, the distribution registry with token auth) or Basic. An
identity token (an OAuth refresh token, as `docker login` keeps for Azure's
registry) is traded at the realm for the Bearer token, as Docker does.
Redirects (blobs served from a CDN) are followed without our credentials.
"""

import base64
import hashlib
import re
import urllib.parse

from . import jsonlite
from .errors import BaleineError, Invalid, NotFound

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPTED = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
DOCKER_HUB, DOCKER_HUB_API = "docker.io", "registry-1.docker.io"
IDENTITY = "<token>"  # the user name that says the secret is an identity token (Docker's credential helpers' word)
CLIENT_ID = "baleine"  # how an OAuth token request names its client
_CONNECTION = {"timeout": 60, "blocksize": 1 << 16}  # a layer upload goes out in 64 KiB writes, not 8 KiB
BUSY, TRIES = (429, 500, 502, 503, 504), 3  # answers worth asking again, and how many times in all
RESUMES = 5  # a blob download cut off is taken up where it stopped (HTTP Range), at most this many times
PAUSES = (1, 2, 4, 8, 8)  # seconds before try 2, 3...: a registry that could not be reached for a blob is let be
MAX_MANIFEST = 4 << 20  # bytes: a manifest is JSON naming blobs, never large
# Go's names for this machine, as image indexes give platforms.
ARCHITECTURES = {"x86_64": ("amd64", None), "aarch64": ("arm64", None), "armv7l": ("arm", "v7"),
                 "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None)}  # fmt: skip
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.?)+(?::\d{1,5})?|\[[0-9a-fA-F:]+\](?::\d{1,5})?")
REFERENCE_HELP = "[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST], e.g. busybox, nginx:1.27, ghcr.io/org/app:2"


def is_repository(text):
    """Whether text is a repository path as references have them: lowercase components, / between."""
    return _REPOSITORY.fullmatch(text) is not None


def registry_name(text):
    """The registry a login key or argument names: 'https://ghcr.io/' -> 'ghcr.io', Docker Hub's names -> docker.io."""
    name = text.strip().split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if name in (DOCKER_HUB, "index.docker.io", DOCKER_HUB_API) else name


class Unreachable(BaleineError):
    """The registry could not be reached, or the connection broke before its answer."""


class Reference:
    """A parsed image reference, with Docker's defaults: docker.io, library/, latest."""

    def __init__(self, text):
        rest, _, digest = text.partition("@")
        if digest and not _DIGEST.fullmatch(digest):
            raise Invalid(f"invalid image reference {text!r}: the digest must be sha256: and 64 hex digits")
        head, slash, tail = rest.rpartition("/")
        repository, colon, tag = tail.partition(":")
        path = f"{head}{slash}{repository}"
        first, _, remainder = path.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            domain, path = first, remainder
        else:
            domain = DOCKER_HUB
        if domain == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if not _DOMAIN.fullmatch(domain) or not _REPOSITORY.fullmatch(path) or (colon and not _TAG.fullmatch(tag)):
            raise Invalid(f"invalid image reference {text!r}: use {REFERENCE_HELP}")
        self.domain, self.repository = domain, path
        self.tag = tag or (None if digest else "latest")
        self.digest = digest or None

    @classmethod
    def registry(cls, text):
        """Only a registry, as a login names one: HOST[:PORT] (a scheme or path is dropped), docker.io by default."""
        domain = registry_name(DOCKER_HUB if text is None else text)
        if not _DOMAIN.fullmatch(domain) or (text is not None and any(ch.isspace() for ch in text.strip())):
            raise Invalid(f"invalid registry {text!r}: use HOST[:PORT], e.g. ghcr.io, registry.lan:5000 or docker.io")
        reference = cls.__new__(cls)
        reference.domain, reference.repository, reference.tag, reference.digest = domain, None, None, None
        return reference

    def on(self, location):
        """The same repository, tag and digest on a mirror of this registry: HOST[:PORT][/PATH], PATH a prefix."""
        import copy

        moved = copy.copy(self)
        moved.domain, _, prefix = location.partition("/")
        moved.repository = f"{prefix}/{self.repository}" if prefix else self.repository
        return moved

    @property
    def host(self):
        """Where the API answers (Docker Hub's is not docker.io)."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def loopback(self):
        return _is_loopback(urllib.parse.urlsplit(f"//{self.domain}").hostname)

    def named(self):
        """REGISTRY/REPOSITORY[:TAG], without the digest."""
        return f"{self.domain}/{self.repository}" + (f":{self.tag}" if self.tag else "")

    def __str__(self):
        return self.named() + (f"@{self.digest}" if self.digest else "")

    def short_name(self):
        """A default image name: 'nginx:1.27' -> 'nginx-1.27', 'busybox' -> 'busybox', digests by 12 hex."""
        last = self.repository.rsplit("/", 1)[-1]
        if self.digest:
            return f"{last}-{self.digest[7:19]}"
        return last if self.tag == "latest" else f"{last}-{self.tag}"


def platform(text=None):
    """(os, architecture, variant) wanted: --platform OS/ARCH[/VARIANT], or this host's."""
    if text is None:
        import os

        architecture, variant = ARCHITECTURES.get(os.uname().machine, (os.uname().machine, None))
        return "linux", architecture, variant
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(re.fullmatch(r"[a-z0-9_]+", part) for part in parts):
        raise Invalid(f"invalid --platform {text!r}: use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


class Client:
    """One registry, one repository: HTTP(S) with kept-alive connections, auth as challenged."""

    def __init__(self, reference, username=None, password=None, insecure=False, actions="pull"):
        self.reference = reference
        self.actions = actions  # what a token is asked for: pull, or pull,push
        self.credentials = (username, password) if username else None
        self.kept_in = None  # the file the login came from, when `baleine login` (or docker's) kept it
        if username is None:
            from . import logins

            found = logins.find(reference.domain)
            if found:
                self.credentials, self.kept_in = found[:2], found[2]
        if not (insecure or reference.loopback):
            from .registries import insecure as kept_insecure  # `baleine registry insecure`

            insecure = kept_insecure(reference.domain)
        self.insecure = insecure or reference.loopback
        self.scheme = "https"
        self.authorization = None
        self.connections = {}
        self.also_pull = ()  # other repositories a token must let us pull from: a mount's sources

    def close(self):
        for connection, _absolute, _headers in self.connections.values():
            connection.close()
        self.connections.clear()

    def twin(self):
        """A client for the same repository and login with connections of its own, for another thread."""
        import copy

        other = copy.copy(self)
        other.connections = {}
        return other

    def abort(self):
        """Cut this client's connections short, from another thread: a read waiting on one ends at once."""
        import socket

        for connection, _absolute, _headers in list(self.connections.values()):
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except (AttributeError, OSError):  # not connected yet, or already closed
                pass

    def url(self, path):
        """The URL of path in the repository's API, or of /path on the registry."""
        if path.startswith("/"):
            return f"{self.scheme}://{self.reference.host}{path}"
        return f"{self.scheme}://{self.reference.host}/v2/{self.reference.repository}/{path}"

    def check_login(self):
        """Whether the registry checked our login, asking its API root as `docker login` does; refused: an error."""
        _drain(self.request("GET", "/v2/", "registry API (/v2/)"))
        return self.authorization is not None

    def get(self, path, what, accept=None):
        """The response to GET /v2/<repository>/<path>, authenticated, redirects followed; errors explained.

        what: how an error names what was asked for, e.g. "manifest busybox:1".
        """
        return self.request("GET", path, what, {"Accept": accept} if accept else {})

    def request(self, method, path, what, headers=None, body=None, expect=(200,)):
        """The response to METHOD /v2/<repository>/<path> (or a whole URL the registry gave), authenticated.

        body: bytes or a file (read again from its start when a login is asked
        for first). A status outside expect is an error naming what.
        """

        def url():  # again each time: the first request may have found the registry speaks plain HTTP
            return path if "://" in path else self.url(path)

        response = self._tries(url, headers or {}, method, body)
        if response.status == 401:  # the first request, or a token that expired during a long pull
            self.authorization = self._authorize(response)
            response = self._tries(url, headers or {}, method, body)
        if response.status in expect:
            return response
        if response.status in BUSY:
            what = f"{what} ({TRIES} tries)"
        if response.status == 401:
            raise BaleineError(f"registry {self.reference.domain} refused {self._who()}: {_errors(response)}")
        if response.status == 404:
            raise NotFound(f"no {what} on {self.reference.domain}: {_errors(response)}")
        raise BaleineError(f"registry {self.reference.domain} answered {response.status} {response.reason} "
                           f"for {what}: {_errors(response)}")  # fmt: skip

    def _tries(self, url, headers, method, body):
        """The response, asked again while the registry says it is busy (429, 5xx), as Docker's client does."""
        import time

        for attempt in range(TRIES):
            if hasattr(body, "seek"):
                body.seek(0)
            response = self._get(url(), headers, method=method, body=body)
            if response.status not in BUSY or attempt == TRIES - 1:
                return response
            wait = response.getheader("Retry-After", "")
            _drain(response)
            time.sleep(min(int(wait), 10) if wait.isdigit() else 2**attempt)  # the registry's word, within reason
        return response

    @property
    def identity(self):
        """The identity token to trade for Bearer tokens, when that is the login; else None."""
        return self.credentials[1] if self.credentials and self.credentials[0] == IDENTITY else None

    def _who(self):
        domain = self.reference.domain
        who = "the identity token" if self.identity else self.credentials and f"user {self.credentials[0]!r}"
        if self.kept_in:
            renew = "docker login again" if self.identity else f"baleine login {domain}"
            return f"{who}, the login kept in {self.kept_in} (renew it: {renew})"
        if self.credentials:
            return who
        return f"anonymous access (give --username, or keep a login: baleine login {domain})"

    def _get(self, url, headers, hops=0, method="GET", body=None):
        import http.client

        parts = urllib.parse.urlsplit(url)
        sent = dict(headers)
        if self.authorization and parts.netloc == self.reference.host:  # never to a CDN we were sent to
            sent["Authorization"] = self.authorization
        try:
            response = self._send(url, sent, method, body)
        except (OSError, http.client.HTTPException) as error:
            if parts.netloc == self.reference.host and self.scheme == "https" and self.insecure and hops == 0:
                self.scheme = "http"  # as Docker does for an insecure (or loopback) registry
                if hasattr(body, "seek"):
                    body.seek(0)
                return self._get(url.replace("https://", "http://", 1), headers, method=method, body=body)
            raise Unreachable(f"cannot reach registry {parts.netloc}{_through(url)}: {error}") from None
        if method in ("GET", "HEAD") and response.status in (301, 302, 303, 307, 308):
            location = urllib.parse.urljoin(url, response.getheader("Location", ""))
            _drain(response)
            if hops >= 5 or not location.startswith(("https://", "http://")):
                raise BaleineError(f"registry {self.reference.domain} redirects too often for {parts.path}")
            return self._get(location, headers, hops + 1, method)
        return response

    def _send(self, url, headers, method="GET", body=None):
        """The response to METHOD url, on the kept-alive connection to its host (through the proxy, if any).

        A kept-alive connection the server has closed meanwhile (idle while a
        layer was applied, say) fails at once: a GET or HEAD is sent again,
        once, on a new connection.
        """
        import http.client

        parts = urllib.parse.urlsplit(url)
        key = (parts.scheme, parts.netloc)
        reused = key in self.connections
        if not reused:
            self.connections[key] = self._open(parts)
        connection, absolute, proxy_headers = self.connections[key]
        target = url if absolute else parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, target, body=body, headers={**headers, **proxy_headers})
            return connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self.connections.pop(key)[0].close()
            stale = isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
            if not (reused and stale and method in ("GET", "HEAD")):  # an upload has its own retry (upload)
                raise
        return self._send(url, headers, method, body)

    def _open(self, parts):
        """(connection, whether requests name the whole URL, headers for the proxy) for scheme://netloc."""
        import http.client

        proxy = proxy_for(parts.scheme, parts.hostname)
        proxy_headers = {}
        if proxy is not None and proxy.username:
            login = f"{urllib.parse.unquote(proxy.username)}:{urllib.parse.unquote(proxy.password or '')}"
            proxy_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
        if parts.scheme == "http":
            if proxy is None:
                return http.client.HTTPConnection(parts.netloc, **_CONNECTION), False, {}
            return http.client.HTTPConnection(proxy.hostname, proxy.port or 80, **_CONNECTION), True, proxy_headers
        import ssl

        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if proxy is None:
            return http.client.HTTPSConnection(parts.netloc, **_CONNECTION, context=context), False, {}
        connection = http.client.HTTPSConnection(proxy.hostname, proxy.port or 80, **_CONNECTION, context=context)
        connection.set_tunnel(parts.hostname, parts.port or 443, headers=proxy_headers)  # CONNECT, then TLS inside
        return connection, False, {}

    def _authorize(self, response):
        """The Authorization header the registry's challenge asks for."""
        challenge = response.getheader("WWW-Authenticate", "")
        _drain(response)
        scheme, _, rest = challenge.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        basic = None
        if self.credentials:
            basic = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if scheme.lower() == "basic":
            if self.identity:
                raise BaleineError(f"registry {self.reference.domain} wants a password (Basic), not "
                                   f"{self._who()}")  # fmt: skip
            if basic is None:
                raise BaleineError(f"registry {self.reference.domain} wants a login: give --username and "
                                   f"--password-stdin, or keep one: baleine login {self.reference.domain}")  # fmt: skip
            return basic
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise BaleineError(f"registry {self.reference.domain} asks for an unknown kind of login: {challenge!r}")
        return "Bearer " + self._token(fields, basic)

    def _token(self, fields, basic):
        """A Bearer token from the realm: GET with the login as Basic, or an identity token POSTed (OAuth2)."""
        scopes = []
        if self.reference.repository:  # a login check asks for no repository, as docker login does
            scopes = [f"repository:{self.reference.repository}:{self.actions}",
                      *(f"repository:{source}:pull" for source in self.also_pull)]  # fmt: skip
        query = [("service", fields.get("service"))]
        if self.identity:  # traded as an OAuth2 refresh token, in a form: never in a URL a log would keep
            query += [("grant_type", "refresh_token"), ("refresh_token", self.identity), ("client_id", CLIENT_ID),
                      ("scope", " ".join(scopes))]  # fmt: skip
        else:
            query += [("account", self.credentials and self.credentials[0]), *(("scope", s) for s in scopes)]
        fields_given = urllib.parse.urlencode([(key, value) for key, value in query if value])
        realm = fields["realm"] if self.identity else fields["realm"] + "?" + fields_given
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme != "https" and not self.insecure:
            raise BaleineError(f"registry {self.reference.domain} sends logins to {realm}, which is not https")
        import http.client

        try:
            if self.identity:
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                answer = self._send(realm, form, "POST", fields_given.encode())
            else:
                answer = self._send(realm, {"Authorization": basic} if basic else {})
            body = answer.read(1 << 20)
        except (OSError, http.client.HTTPException) as error:
            raise BaleineError(f"cannot reach the login service {parts.netloc}{_through(realm)}: {error}") from None
        if answer.status != 200:
            raise BaleineError(f"the login service of {self.reference.domain} refused {self._who()}: "
                               f"{answer.status} {answer.reason}")  # fmt: skip
        try:
            document = jsonlite.loads(body)
            return document.get("token") or document["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise BaleineError(f"the login service of {self.reference.domain} sent no token") from None

    def manifest(self, reference):
        """(media type, document, digest) of a manifest or index, its digest checked."""
        response = self.get(f"manifests/{reference}", f"manifest {self.reference}", ACCEPTED)
        body = response.read(MAX_MANIFEST + 1)
        if len(body) > MAX_MANIFEST:
            raise Invalid(f"the manifest of {self.reference} is over {MAX_MANIFEST >> 20} MiB: not an image manifest")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        claimed = reference if reference.startswith("sha256:") else response.getheader("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise Invalid(f"digest mismatch for the manifest of {self.reference}: {claimed} claimed, {digest} sent")
        try:
            document = jsonlite.loads(body)
        except ValueError:
            raise Invalid(f"the manifest of {self.reference} is not JSON") from None
        media_type = document.get("mediaType") or response.getheader("Content-Type", "").split(";")[0]
        return media_type, document, digest


def resolve(client, wanted):
    """(image manifest, its digest): an index is followed to the wanted platform.

    The digest is the image manifest's, not the index's: it names exactly what
    was pulled (one platform), and pulling REPOSITORY@it gives the same image.
    """
    reference = client.reference
    media_type, document, digest = client.manifest(reference.digest or reference.tag)
    if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in document:
        chosen = choose_platform(document.get("manifests", []), wanted, reference)
        media_type, document, digest = client.manifest(chosen)
    if document.get("schemaVersion") == 1 or "config" not in document or "layers" not in document:
        raise Invalid(f"{reference} has a manifest baleine cannot read ({media_type or 'no media type'}): "
                      "only OCI and Docker schema 2 images")  # fmt: skip
    return document, digest


def upload(client, digest, data=None, path=None, say=None):
    """Put one blob (bytes data, or the file at path) in the repository unless it is there; the bytes sent.

    An upload whose connection breaks is started again, in a new upload
    session (the registry drops the broken one): TRIES times in all.
    """
    what = f"blob {digest}"
    if place(client, digest):
        return 0
    for attempt in range(1, TRIES + 1):
        try:
            return _upload_once(client, digest, data, path)
        except Unreachable as error:
            if attempt == TRIES:
                raise BaleineError(f"the upload of {what} broke off {TRIES} times, the last: {error.message}") from None
            client.close()
            if say:
                say(f"{digest[:19]}: {error.message}; starting the upload again")


def place(client, digest, sources=()):
    """How the repository has blob digest with no upload: "already there", "mounted from REPO", or None.

    sources: other repositories of the registry that may hold it, tried in
    turn with an OCI cross-repository mount (none: only asked whether it is there). A registry that will not mount
    one (not there, not ours to read, mounts unsupported) answers 202 with an
    upload session, which is cancelled.
    """
    what = f"blob {digest}"
    there = client.request("HEAD", f"blobs/{digest}", what, expect=(200, 404))
    _drain(there)
    if there.status == 200:
        return "already there"
    for source in sources:
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        client.also_pull = (source,)  # the token must let us read the source too
        try:
            answer = client.request("POST", f"blobs/uploads/?{query}", f"a mount of {what} from {source}",
                                    {"Content-Length": "0"}, b"", expect=(201, 202, 401, 403, 404))  # fmt: skip
        finally:
            client.also_pull = ()
        _drain(answer)
        if answer.status == 201:
            return f"mounted from {source}"
        if answer.status == 202 and answer.getheader("Location"):
            _cancel(client, urllib.parse.urljoin(client.url(""), answer.getheader("Location")))
    return None


def _cancel(client, location):
    """End an upload session we will not use (the registry would keep it until it expires)."""
    try:
        _drain(client.request("DELETE", location, "an unused upload session", expect=(204, 404, 405)))
    except BaleineError:  # only tidiness is lost
        pass


def _upload_once(client, digest, data, path):
    """One upload session: POST for its location, then the whole blob in one PUT."""
    import os

    what = f"blob {digest}"
    started = client.request("POST", "blobs/uploads/", f"an upload to {client.reference.named()}",
                             {"Content-Length": "0"}, b"", expect=(202,))  # fmt: skip
    _drain(started)
    location = urllib.parse.urljoin(client.url(""), started.getheader("Location", ""))
    target = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
    size = len(data) if path is None else os.path.getsize(path)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    if path is None:
        done = client.request("PUT", target, what, headers, data, expect=(201,))
    else:
        with open(path, "rb") as body:
            done = client.request("PUT", target, what, headers, body, expect=(201,))
    _drain(done)
    return size


def put_manifest(client, manifest, media_type):
    """Tag the manifest (bytes) in the repository; returns its digest, as the registry confirms it."""
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    response = client.request("PUT", f"manifests/{client.reference.tag}", f"manifest {client.reference}",
                              {"Content-Type": media_type}, manifest, expect=(201,))  # fmt: skip
    _drain(response)
    claimed = response.getheader("Docker-Content-Digest")
    if claimed and claimed != digest:
        raise BaleineError(f"registry {client.reference.domain} stored the manifest as {claimed}, not {digest}")
    return digest


def choose_platform(descriptors, wanted, reference):
    """The digest of the index entry for (os, architecture, variant); an error listing those there are."""
    system, architecture, variant = wanted
    offered = []
    for descriptor in descriptors:
        found = descriptor.get("platform") or {}
        if found.get("architecture") == "unknown":  # attestations (buildkit) ride along in indexes
            continue
        offered.append("/".join(filter(None, (found.get("os"), found.get("architecture"), found.get("variant")))))
        if (found.get("os"), found.get("architecture")) == (system, architecture) and (
            variant is None or found.get("variant") in (variant, None)
        ):
            return descriptor["digest"]
    wanted_text = "/".join(filter(None, wanted))
    raise NotFound(f"{reference} has no image for {wanted_text} (it has: {', '.join(offered) or 'none'}); "
                  "choose with --platform")  # fmt: skip


class Blobs:
    """A registry's blobs as imports.apply reads an archive's: json(name, digest) and open(name).

    say(line), when given, hears of each layer as it is applied. spool, a
    directory: the layers after the first are downloaded there ahead (Ahead)
    while the first ones are applied. The caller closes it.
    """

    def __init__(self, client, manifest, say=None, spool=None):
        self.client = client
        self.layers = [(layer["digest"], layer.get("size")) for layer in manifest["layers"]]
        self.say = say
        self.ahead = Ahead(client, self.layers[1:], spool, say) if spool and len(self.layers) > 1 else None

    def open(self, name):
        digest = _digest_of(name)
        if self.say:
            self._tell(digest)
        path = self.ahead.wait(digest) if self.ahead else None
        if path is not None:
            return open(path, "rb")  # read to its end by the caller, closed when dropped
        return Download(self.client, digest, dict(self.layers).get(digest), self.say)

    def close(self):
        if self.ahead:
            self.ahead.stop()

    def _tell(self, digest):
        from .parse import human_size

        total = sum(size or 0 for _, size in self.layers)
        for index, (layer, size) in enumerate(self.layers):
            if layer != digest:
                continue
            if index == 0:
                count = f"{len(self.layers)} layer{'s' if len(self.layers) > 1 else ''}"
                self.say(f"{self.client.reference}: {count}, {human_size(total)}")
            self.say(f"layer {index + 1}/{len(self.layers)} {digest[:19]} {human_size(size or 0)}")

    def json(self, name, digest=None):
        digest = digest or _digest_of(name)
        response = self.client.get(f"blobs/{digest}", f"config {digest} of {self.client.reference}")
        data = response.read(MAX_MANIFEST + 1)
        _drain(response)
        found = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != found:
            raise Invalid(f"digest mismatch for the image config {digest}: the registry sent {found}")
        try:
            return jsonlite.loads(data)
        except ValueError:
            raise Invalid(f"the image config {digest} is not JSON") from None


class Ahead:
    """Layers downloaded to files by a thread of their own, in order, while earlier layers are applied.

    Applying a layer (tar headers, file writes) and downloading the next then
    overlap instead of taking turns: a pull from a distant registry takes about
    the longer of the two, not their sum. The thread has its own connections.
    A layer it could not fetch is asked for again when its turn comes.
    """

    def __init__(self, client, layers, spool, say=None):
        import threading

        self.client = client.twin()
        self.spool, self.say = spool, say
        self.order = list(dict.fromkeys(digest for digest, _ in layers))  # a layer repeated is fetched once
        self.sizes = dict(layers)
        self.ready = {digest: threading.Event() for digest in self.order}
        self.paths = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._fetch_all, daemon=True)
        self.thread.start()

    def _fetch_all(self):
        try:
            for digest in self.order:
                if self.stopping.is_set():
                    return
                try:
                    self.paths[digest] = self._fetch(digest)
                except Exception:  # noqa: BLE001 - asked for again, with its error, when its turn comes
                    return
                finally:
                    self.ready[digest].set()
        finally:
            for event in self.ready.values():
                event.set()
            self.client.close()

    def _fetch(self, digest):
        import os

        path = os.path.join(self.spool, f"ahead-{digest[7:]}")
        download = Download(self.client, digest, self.sizes[digest], self.say, self.stopping)
        with open(path, "wb") as out:
            for chunk in iter(lambda: download.read(1 << 20), b""):
                if self.stopping.is_set():  # the pull is over: write nothing more where it is being removed
                    raise BaleineError("stopped")
                out.write(chunk)
        return path

    def wait(self, digest):
        """The file holding the layer once fetched; None when it is not fetched ahead."""
        if digest not in self.ready:
            return None
        self.ready[digest].wait()
        return self.paths.get(digest)

    def stop(self):
        """Stop fetching (the pull ended or failed) and wait for the thread, so nothing writes in spool after."""
        self.stopping.set()
        self.client.abort()
        self.thread.join(10)


class Download:
    """A blob's bytes as one stream: a connection that drops is asked again for the rest (HTTP Range).

    The bytes read so far are never read twice nor skipped, so the digest
    computed over the stream stays the blob's. A registry that ignores the
    range sends the blob from its start again: what was read is skipped.
    A registry that cannot be reached, at the first byte or midway, is asked
    again after a pause (PAUSES), as Docker retries a layer download.
    size: the blob's, from the manifest (else the first answer's Content-Length).
    """

    def __init__(self, client, digest, size=None, say=None, stopping=None):
        self.client, self.digest, self.size, self.say = client, digest, size, say
        import threading

        self.stopping = stopping or threading.Event()  # set: a broken download is not taken up again
        self.what = f"blob {digest} of {client.reference}"
        self.received, self.resumed = 0, 0
        self.response = None
        self._ask_until_answered()

    def _ask(self):
        ranged = {"Range": f"bytes={self.received}-"} if self.received else {}
        response = self.client.request("GET", f"blobs/{self.digest}", self.what, ranged, expect=(200, 206))
        if self.size is None and response.getheader("Content-Length", "").isdigit():
            self.size = int(response.getheader("Content-Length"))
        given = response.getheader("Content-Range", "")
        if response.status == 206 and not given.startswith(f"bytes {self.received}-"):
            raise BaleineError(f"registry {self.client.reference.domain} sent another part of {self.what} than "
                               f"asked (from byte {self.received}): {given!r}")  # fmt: skip
        if self.received and response.status == 200:  # the whole blob again: skip what was read
            _skip(response, self.received)
        return response

    def read(self, size=-1):
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        import http.client

        while True:
            try:
                data, error = self.response.read(size), None
            except (OSError, http.client.HTTPException) as failure:
                data, error = b"", failure
            if data or (error is None and (self.size is None or self.received >= self.size)):
                self.received += len(data)
                return data
            self.response.close()
            self.client.close()  # the kept connection died with the download
            self._ask_until_answered(error or "the connection closed")

    def _ask_until_answered(self, error=None):
        """Ask for the blob from the byte reached until the registry answers; error: why the last try ended.

        A cut answer is asked again at once; a registry that could not be
        reached, after a pause. Gives up after RESUMES tries beyond the first.
        """
        import http.client

        from .parse import human_size

        while True:
            if error is not None:
                where = f"at {human_size(self.received)} of {human_size(self.size or 0)}"
                why = error.message if isinstance(error, BaleineError) else f"{error}"
                if self.stopping.is_set():
                    raise BaleineError(f"the download of {self.what} was stopped {where}")
                if self.resumed == RESUMES:
                    raise BaleineError(f"the download of {self.what} broke off {RESUMES + 1} times, the last {where}: "
                                       f"{why}")  # fmt: skip
                pause = PAUSES[self.resumed] if isinstance(error, Unreachable) else 0
                self.resumed += 1
                if self.say:
                    again = f"asking again in {pause} s" if pause else "asking for the rest"
                    self.say(f"{self.digest[:19]}: {why} {where}; {again}")
                if pause:
                    self._pause(pause)
            try:
                self.response = self._ask()
                return
            except Unreachable as failure:  # refused, reset or silent before an answer: the network or the registry
                error = failure
            except (OSError, http.client.HTTPException) as failure:  # broke off again while skipping
                self.client.close()
                error = failure

    def _pause(self, seconds):
        """Wait before asking again; back at once when the pull stops meanwhile."""
        self.stopping.wait(seconds)


def proxy_for(scheme, hostname, environ=None):
    """The proxy URL (split) to reach hostname by scheme, or None, as Go's net/http reads the environment.

    HTTPS_PROXY (or https_proxy) for https, HTTP_PROXY for http; NO_PROXY lists
    exempt hosts: names (a domain covers its subdomains), IP addresses, CIDR
    networks, or *. Loopback is never proxied.
    """
    import os

    environ = os.environ if environ is None else environ
    text = environ.get(f"{scheme}_proxy") or environ.get(f"{scheme.upper()}_PROXY")
    if not text or _is_loopback(hostname) or _exempt(hostname, environ.get("no_proxy") or environ.get("NO_PROXY")):
        return None
    proxy = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
    try:
        proxy.port  # noqa: B018 - raises on a bad one
    except ValueError:
        proxy = None
    if proxy is None or proxy.scheme != "http" or not proxy.hostname:
        raise Invalid(f"invalid {scheme.upper()}_PROXY {text!r}: use http://[USER:PASSWORD@]HOST[:PORT]")
    return proxy


def _exempt(hostname, no_proxy):
    """Whether NO_PROXY's list names hostname."""
    import ipaddress

    hostname = (hostname or "").lower()
    for entry in (no_proxy or "").lower().split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.strip("[]").rsplit(":", 1)[0] if entry.count(":") == 1 else entry.strip("[]")
        domain = entry.lstrip(".")
        if domain and (hostname == domain or hostname.endswith("." + domain)):
            return True
    return False


def _is_loopback(hostname):
    import ipaddress

    try:
        return ipaddress.ip_address(hostname or "").is_loopback
    except ValueError:
        return hostname == "localhost"


def _through(url):
    """' through proxy HOST:PORT' when the environment sends url through one."""
    parts = urllib.parse.urlsplit(url)
    try:
        proxy = proxy_for(parts.scheme, parts.hostname)
    except Invalid:
        return ""
    return f" through proxy {proxy.hostname}:{proxy.port or 80}" if proxy else ""


def _digest_of(name):
    """imports.blob_name's name, back to the digest."""
    return "sha256:" + name.rsplit("/", 1)[-1]


def _skip(response, count):
    """Read and drop count bytes of a response; an error if it ends first."""
    while count:
        dropped = len(response.read(min(count, 1 << 20)))
        if not dropped:
            raise BaleineError("the registry's answer ended before the part already downloaded")
        count -= dropped


def _drain(response):
    """Read what is left of a response, so the kept-alive connection can carry the next request."""
    while response.read(1 << 16):
        pass


def _errors(response):
    """The registry's own words: the messages of its JSON error body, or the HTTP reason."""
    try:
        body = jsonlite.loads(response.read(1 << 16) or b"{}")
        _drain(response)
        messages = [f"{e.get('code', '')} {e.get('message', '')}".strip() for e in body.get("errors", [])]
    except (ValueError, AttributeError):
        messages = []
    return "; ".join(messages) or f"{response.status} {response.reason}"
