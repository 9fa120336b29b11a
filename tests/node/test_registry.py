"""Image references, platforms and index choices, without a registry (test_pull.py has the real one)."""

import pytest

from fleet.node import registry
from fleet.node.errors import Invalid, NotFound

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "domain", "host", "repository", "tag", "digest", "name"),
    [
        ("busybox", "docker.io", "registry-1.docker.io", "library/busybox", "latest", None, "busybox"),
        ("nginx:1.27-alpine", "docker.io", "registry-1.docker.io", "library/nginx", "1.27-alpine", None,
         "nginx-1.27-alpine"),
        ("bitnami/redis:7", "docker.io", "registry-1.docker.io", "bitnami/redis", "7", None, "redis-7"),
        ("docker.io/library/busybox", "docker.io", "registry-1.docker.io", "library/busybox", "latest", None,
         "busybox"),
        ("ghcr.io/org/team/app:2", "ghcr.io", "ghcr.io", "org/team/app", "2", None, "app-2"),
        ("localhost:5000/web", "localhost:5000", "localhost:5000", "web", "latest", None, "web"),
        ("localhost/web:1", "localhost", "localhost", "web", "1", None, "web-1"),
        (f"registry.lan:5000/web@{DIGEST}", "registry.lan:5000", "registry.lan:5000", "web", None, DIGEST,
         "web-abababababab"),
        (f"web:3@{DIGEST}", "docker.io", "registry-1.docker.io", "library/web", "3", DIGEST, "web-abababababab"),
        ("[::1]:5000/a_b__c-d.e", "[::1]:5000", "[::1]:5000", "a_b__c-d.e", "latest", None, "a_b__c-d.e"),
    ],
)  # fmt: skip
def test_references_take_dockers_defaults(text, domain, host, repository, tag, digest, name):
    reference = registry.Reference(text)
    assert (reference.domain, reference.host, reference.repository) == (domain, host, repository)
    assert (reference.tag, reference.digest, reference.short_name()) == (tag, digest, name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Busybox", "use [REGISTRY/]REPOSITORY"),
        ("busybox:", "use [REGISTRY/]REPOSITORY"),
        ("busybox:-x", "use [REGISTRY/]REPOSITORY"),
        ("busybox:é", "use [REGISTRY/]REPOSITORY"),  # tags are ASCII
        ("a//b", "use [REGISTRY/]REPOSITORY"),
        ("ghcr.io/", "use [REGISTRY/]REPOSITORY"),
        ("web__-x", "use [REGISTRY/]REPOSITORY"),
        ("web@sha256:AB", "the digest must be sha256: and 64 hex digits"),
        ("web@md5:" + "a" * 32, "the digest must be sha256: and 64 hex digits"),
        ("", "use [REGISTRY/]REPOSITORY"),
    ],
)
def test_bad_references_are_refused_by_name(text, message):
    with pytest.raises(Invalid, match=f"invalid image reference {text!r}: .*"):
        registry.Reference(text)
    with pytest.raises(Invalid) as refused:
        registry.Reference(text)
    assert message in str(refused.value)


def test_loopback_registries_are_insecure_as_in_docker():
    loopback = ("localhost:5000/a", "127.0.0.1:5000/a", "127.8.0.1/a", "[::1]:5000/a")
    assert all(registry.Reference(text).loopback for text in loopback)
    elsewhere = ("busybox", "ghcr.io/a/b", "10.0.0.1:5000/a", "127.example.com/a")
    assert not any(registry.Reference(text).loopback for text in elsewhere)


def test_platforms(monkeypatch):
    assert registry.platform("linux/arm/v7") == ("linux", "arm", "v7")
    assert registry.platform("linux/amd64") == ("linux", "amd64", None)
    for bad in ("linux", "linux/amd64/v3/x", "Linux/AMD64", "linux//v7"):
        with pytest.raises(Invalid, match="use OS/ARCH"):
            registry.platform(bad)
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"machine": "aarch64"})())
    assert registry.platform() == ("linux", "arm64", None)


INDEX = [
    {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},  # an attestation
    {"digest": "sha256:v6", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
    {"digest": "sha256:v7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"digest": "sha256:arm64", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
]


def test_the_index_entry_for_the_platform():
    reference = registry.Reference("busybox")
    assert registry.choose_platform(INDEX, ("linux", "amd64", None), reference) == "sha256:amd"
    assert registry.choose_platform(INDEX, ("linux", "arm", "v7"), reference) == "sha256:v7"
    assert registry.choose_platform(INDEX, ("linux", "arm64", None), reference) == "sha256:arm64"
    with pytest.raises(NotFound) as missing:
        registry.choose_platform(INDEX, ("linux", "s390x", None), reference)
    assert str(missing.value) == (
        "docker.io/library/busybox:latest has no image for linux/s390x "
        "(it has: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8); choose with --platform"
    )


@pytest.mark.parametrize(
    ("scheme", "host", "environ", "proxy"),
    [
        ("https", "ghcr.io", {"HTTPS_PROXY": "http://p:3128"}, "p:3128"),
        ("https", "ghcr.io", {"https_proxy": "p:3128", "HTTPS_PROXY": "q:1"}, "p:3128"),  # lower case first
        ("https", "ghcr.io", {"HTTP_PROXY": "http://p:3128"}, None),  # https takes HTTPS_PROXY only
        ("http", "reg.lan", {"HTTP_PROXY": "http://u:p@p"}, "p:80"),
        ("https", "127.0.0.1", {"HTTPS_PROXY": "p:3128"}, None),  # loopback: never
        ("https", "localhost", {"HTTPS_PROXY": "p:3128"}, None),
        ("https", "ghcr.io", {"HTTPS_PROXY": "p:3128", "NO_PROXY": "*"}, None),
        ("https", "pkg.ghcr.io", {"HTTPS_PROXY": "p:3128", "NO_PROXY": "example.org, ghcr.io"}, None),
        ("https", "pkg.ghcr.io", {"HTTPS_PROXY": "p:3128", "no_proxy": ".ghcr.io"}, None),
        ("https", "ghcr.io.evil", {"HTTPS_PROXY": "p:3128", "NO_PROXY": "ghcr.io"}, "p:3128"),
        ("https", "10.1.2.3", {"HTTPS_PROXY": "p:3128", "NO_PROXY": "10.0.0.0/8"}, None),
        ("https", "10.1.2.3", {"HTTPS_PROXY": "p:3128", "NO_PROXY": "10.1.2.3:5000"}, None),
        ("https", "11.1.2.3", {"HTTPS_PROXY": "p:3128", "NO_PROXY": "10.0.0.0/8"}, "p:3128"),
        ("https", "ghcr.io", {}, None),
    ],
)
def test_the_proxy_the_environment_names(scheme, host, environ, proxy):
    found = registry.proxy_for(scheme, host, environ)
    assert (found and f"{found.hostname}:{found.port or 80}") == proxy


@pytest.mark.parametrize("text", ["https://p:3128", "socks5://p:1080", "http://:3128", "http://p:port"])
def test_a_proxy_we_cannot_use_is_refused_by_name(text):
    with pytest.raises(Invalid, match=r"invalid HTTPS_PROXY .*: use http://\[USER:PASSWORD@\]HOST\[:PORT\]"):
        registry.proxy_for("https", "ghcr.io", {"HTTPS_PROXY": text})


class _Answer:
    """A registry's answer to a blob GET: its status, headers and body, broken off after `cut` bytes."""

    def __init__(self, status, body, headers=None, cut=None):
        self.status, self.headers = status, headers or {}
        self.body, self.cut, self.at = body, len(body) if cut is None else cut, 0

    def getheader(self, name, default=None):
        return self.headers.get(name, default)

    def read(self, size):
        if self.at >= self.cut and self.cut < len(self.body):
            raise ConnectionResetError(104, "Connection reset by peer")
        data = self.body[self.at : min(self.at + size, self.cut)]
        self.at += len(data)
        return data

    def close(self):
        pass


class _Registry:
    """A client whose blob GETs get the given answers in turn; the Range header of each is kept."""

    def __init__(self, *answers):
        self.answers, self.ranges, self.closed = list(answers), [], 0
        self.reference = registry.Reference("registry.lan:5000/web:1")

    def request(self, _method, _path, _what, headers, expect):
        self.ranges.append(headers.get("Range"))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        self.closed += 1


BLOB = bytes(range(256)) * 40


def test_a_download_reset_midway_asks_for_the_rest_and_reads_each_byte_once():
    rest = {"Content-Range": f"bytes 1000-{len(BLOB) - 1}/{len(BLOB)}"}
    client = _Registry(
        _Answer(200, BLOB, {"Content-Length": str(len(BLOB))}, cut=1000), _Answer(206, BLOB[1000:], rest)
    )
    said = []
    download = registry.Download(client, DIGEST, None, said.append)  # the size from Content-Length
    assert download.read(-1) == BLOB and download.read(10) == b""
    assert client.ranges == [None, "bytes=1000-"] and client.closed == 1
    assert said == [f"{DIGEST[:19]}: [Errno 104] Connection reset by peer at 1000B of 10K; asking for the rest"]


def test_a_registry_sending_the_blob_whole_again_has_what_was_read_skipped():
    client = _Registry(_Answer(200, BLOB, cut=300), _Answer(200, BLOB))
    assert registry.Download(client, DIGEST, len(BLOB)).read(-1) == BLOB


@pytest.mark.parametrize(
    "second, message",
    [
        (_Answer(206, BLOB[5:], {"Content-Range": "bytes 5-10239/10240"}),
         r"sent another part of blob .* than asked \(from byte 300\): 'bytes 5-10239/10240'"),
        (_Answer(200, BLOB[:200]), "the registry's answer ended before the part already downloaded"),
    ],
)  # fmt: skip
def test_a_resumed_download_that_does_not_fit_is_refused(second, message):
    client = _Registry(_Answer(200, BLOB, cut=300), second)
    with pytest.raises(registry.BaleineError, match=message):
        registry.Download(client, DIGEST, len(BLOB)).read(-1)


REFUSED = registry.Unreachable("cannot reach registry registry.lan:5000: [Errno 111] Connection refused")


@pytest.fixture
def pauses(monkeypatch):
    """The pauses a Download takes before asking again, recorded instead of slept."""
    taken = []
    monkeypatch.setattr(registry.Download, "_pause", lambda _self, seconds: taken.append(seconds))
    return taken


def test_a_registry_unreachable_at_the_first_byte_is_asked_again_after_a_pause(pauses):
    client = _Registry(REFUSED, REFUSED, _Answer(200, BLOB))
    said = []
    assert registry.Download(client, DIGEST, len(BLOB), said.append).read(-1) == BLOB
    assert client.ranges == [None, None, None] and pauses == [1, 2]
    assert said == [f"{DIGEST[:19]}: {REFUSED.message} at 0B of 10K; asking again in 1 s",
                    f"{DIGEST[:19]}: {REFUSED.message} at 0B of 10K; asking again in 2 s"]  # fmt: skip


def test_a_registry_lost_midway_is_asked_for_the_rest_once_back(pauses):
    rest = {"Content-Range": f"bytes 1000-{len(BLOB) - 1}/{len(BLOB)}"}
    client = _Registry(_Answer(200, BLOB, cut=1000), REFUSED, _Answer(206, BLOB[1000:], rest))
    assert registry.Download(client, DIGEST, len(BLOB)).read(-1) == BLOB
    assert client.ranges == [None, "bytes=1000-", "bytes=1000-"]
    assert pauses == [registry.PAUSES[1]]  # none after the cut itself; the second try's before the third


def test_a_registry_never_reached_is_given_up_naming_why(pauses):
    client = _Registry(*[REFUSED] * (registry.RESUMES + 1))
    with pytest.raises(registry.BaleineError) as raised:
        registry.Download(client, DIGEST, len(BLOB))
    assert raised.value.message == (
        f"the download of blob {DIGEST} of registry.lan:5000/web:1 broke off 6 times, the last at 0B of 10K: "
        f"{REFUSED.message}"
    )
    assert pauses == list(registry.PAUSES) and len(client.ranges) == 6


class _Blobs(_Registry):
    """A registry of whole blobs by digest: each GET is kept (digest, thread name); gates hold one back."""

    def __init__(self, blobs, gates=None, failing=()):
        super().__init__()
        self.blobs, self.gates, self.failing, self.asked = blobs, gates or {}, set(failing), []

    def request(self, _method, path, _what, headers, expect):
        import threading

        digest = path.rsplit("/", 1)[-1]
        self.asked.append((digest, threading.current_thread().name))
        if digest in self.failing:
            raise registry.BaleineError(f"cannot reach registry for {digest}")
        if digest in self.gates:
            assert self.gates[digest].wait(5), f"{digest} waited in vain: nothing was fetched ahead"
        return _Answer(200, self.blobs[digest])

    def twin(self):
        return self

    def abort(self):
        pass


def _manifest(*digests):
    return {"layers": [{"digest": digest, "size": len(LAYERS[digest])} for digest in digests]}


LAYERS = {f"sha256:{n}": bytes([n]) * (3000 + n) for n in range(1, 5)}  # digests unchecked here


def test_later_layers_are_fetched_ahead_while_the_first_is_applied(tmp_path):
    import threading

    one, two, three, _ = LAYERS
    fetched_two = threading.Event()

    class Watching(_Blobs):
        def request(self, method, path, what, headers, expect):
            answer = super().request(method, path, what, headers, expect)
            if path.endswith(two):
                fetched_two.set()
            return answer

    client = Watching(LAYERS, gates={one: fetched_two})  # the first layer answers only once the second is fetched
    blobs = registry.Blobs(
        client, _manifest(one, two, three, two), spool=tmp_path
    )  # two comes back, as empty layers do
    try:
        assert [blobs.open(f"blobs/sha256/{d[7:]}").read(-1) for d in (one, two, three, two)] == [
            LAYERS[one], LAYERS[two], LAYERS[three], LAYERS[two]]  # fmt: skip
    finally:
        blobs.close()
    assert [digest for digest, _ in client.asked].count(two) == 1  # fetched once, read twice
    assert {thread for digest, thread in client.asked if digest != one} == {blobs.ahead.thread.name}
    assert not blobs.ahead.thread.is_alive()


def test_a_layer_not_fetched_ahead_is_asked_for_at_its_turn(tmp_path):
    one, two, three, _ = LAYERS
    client = _Blobs(LAYERS, failing={two})
    blobs = registry.Blobs(client, _manifest(one, two, three), spool=tmp_path)
    blobs.ahead.thread.join(5)
    client.failing.clear()  # the registry is back
    try:
        assert blobs.open(f"blobs/sha256/{two[7:]}").read(-1) == LAYERS[two]
        assert blobs.open(f"blobs/sha256/{three[7:]}").read(-1) == LAYERS[three]  # after a failure, none ahead
    finally:
        blobs.close()
    assert [digest for digest, _ in client.asked] == [two, two, three]
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_a_kept_alive_connection_the_server_closed_is_replaced_once():
    """The server closes each connection after its answer without saying so: the next request on it is sent again."""
    import http.server
    import threading

    class Forgetful(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise, and it tells nothing

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            self.close_connection = True

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forgetful)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = registry.Client(registry.Reference(f"127.0.0.1:{server.server_address[1]}/web:1"))
    try:
        for _ in range(3):
            response = client.request("GET", "/v2/", "registry API (/v2/)")
            assert response.read() == b"{}"
        assert client.scheme == "http"
    finally:
        client.close()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "text, name",
    [("ghcr.io", "ghcr.io"), ("https://ghcr.io/", "ghcr.io"), ("GHCR.IO", "ghcr.io"),
     ("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
     ("registry.lan:5000", "registry.lan:5000"), ("http://[::1]:5000/v2/", "[::1]:5000")],
)  # fmt: skip
def test_registries_are_named_as_docker_names_them(text, name):
    assert registry.registry_name(text) == name
