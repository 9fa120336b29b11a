"""image pull from a real registry (distribution 2.8 on loopback): trees, platforms, logins, refusals."""

import hashlib
import json
import subprocess

import pytest
import registry
from tarfiles import layer_bytes
from test_imports import EXPECTED, image_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path):
    with registry.running(tmp_path / "registry") as running:
        yield running


def pull(node, *args, password=None, env=None):
    """baleine --json image pull ARGS; the parsed reply (password: given on stdin; env: added)."""
    done = subprocess.run(node.argv("--json", "image", "pull", *args), env={**node.env, **(env or {})},
                          capture_output=True, text=True, input=password and password + "\n", timeout=120)  # fmt: skip
    reply = json.loads(done.stdout)
    reply["exit"] = done.returncode
    return reply


def test_a_pulled_image_is_the_imported_tree_and_runs(node, hub, tmp_path, podman_archives):
    hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "farm/webfx:1")
    reply = pull(node, f"{hub.address}/farm/webfx:1")
    assert reply["ok"], reply
    item = reply["data"]
    assert item["name"] == "webfx-1"
    source, _, digest = item["source"].partition("@")
    assert source == f"pull:{hub.address}/farm/webfx:1" and digest.startswith("sha256:")
    assert image_tree(node, "webfx-1", tmp_path / "tree") == EXPECTED
    config = node.ok("image", "inspect", "webfx-1")["config"]
    assert config["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"] and "GREETING=bonjour" in config["Env"]
    done = node.cli("container", "run", "--rm", "webfx-1", "sh", "-c", "cat index.html; echo $GREETING")
    assert done.stdout == "hello from layer\nbonjour\n", done.stderr
    # The digest recorded pins it: the same image again, by digest.
    again = pull(node, f"{hub.address}/farm/webfx@{digest}")
    assert again["ok"] and again["data"]["name"] == f"webfx-{digest[7:19]}", again
    assert again["data"]["source"] == f"pull:{hub.address}/farm/webfx@{digest}"
    # The same reference again: only the manifest is fetched, the image stays as it is.
    file = node.root / "images" / "webfx-1.ext4"
    before = (file.stat().st_ino, file.stat().st_mtime_ns)
    same = pull(node, f"{hub.address}/farm/webfx:1")
    assert same["ok"] and same["data"]["up_to_date"] is True and item["up_to_date"] is False, same
    assert (file.stat().st_ino, file.stat().st_mtime_ns) == before
    text = node.cli("image", "pull", f"{hub.address}/farm/webfx:1").stdout
    assert text == f"webfx-1: {digest} (up to date)\n"
    shown = node.cli("image", "pull", f"{hub.address}/farm/webfx:1", "--name", "told")  # people see each layer
    assert shown.stdout == f"told: {digest}\n", shown.stderr
    lines = shown.stderr.splitlines()
    assert lines[0].startswith(f"{hub.address}/farm/webfx:1: 5 layers, ") and len(lines) == 6, lines
    assert [line.split()[:2] for line in lines[1:]] == [["layer", f"{n}/5"] for n in range(1, 6)]
    # The tag moved on in the registry: the name still holds the old image, so it is refused.
    hub.push(f"oci-archive:{podman_archives / 'webfx-oci.tar'}", "farm/webfx:1")
    moved = pull(node, f"{hub.address}/farm/webfx:1")
    assert moved["error"]["message"].startswith(
        f"image 'webfx-1' is {hub.address}/farm/webfx:1@{digest}; the registry now has sha256:"
    ), moved
    assert moved["error"]["message"].endswith("remove it first (baleine image rm webfx-1) or pull under another --name")
    assert (file.stat().st_ino, file.stat().st_mtime_ns) == before


def test_containers_name_a_pulled_image_by_its_reference(node, hub, podman_archives):
    hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
    assert pull(node, f"{hub.address}/webfx:1")["ok"]
    done = node.cli("container", "run", "--rm", "--name", "byref", f"{hub.address}/webfx:1", "cat", "index.html")
    assert done.stdout == "hello from layer\n", done.stderr
    [event] = [e for e in node.ok("events") if e["action"] == "create" and e["container"] == "byref"]
    assert event["image"] == "webfx-1"  # the container records the image's name
    for args, message in [
        (("--pull", "never", f"{hub.address}/webfx:2"), f"no image was pulled from '{hub.address}/webfx:2': pull it "
                                                        f"first (baleine image pull {hub.address}/webfx:2), or give "
                                                        "--pull missing"),
        ((f"{hub.address}/webfx:2",), f"no manifest {hub.address}/webfx:2 on {hub.address}: MANIFEST_UNKNOWN "
                                      "manifest unknown"),  # the default, --pull missing, asked the registry
        (("webfx",), "no such image 'webfx' (known: webfx-1)"),  # a bare name stays a name, never pulled
        (("--pull", "sometimes", "webfx-1"), "invalid --pull 'sometimes': use missing, always, never"),
    ]:  # fmt: skip
        reply = node.call("container", "create", *args)
        assert reply["error"]["message"] == message, reply
    assert pull(node, f"{hub.address}/webfx:1", "--name", "twice")["ok"]
    reply = node.call("container", "create", f"{hub.address}/webfx:1")
    assert reply["error"]["message"] == (
        f"several images were pulled from '{hub.address}/webfx:1' (webfx-1, twice): name the one to use"
    )
    assert node.ok("container", "create", "--name", "named", "twice")["image"] == "twice"


def test_run_pulls_a_reference_as_docker_does(node, hub, podman_archives):
    hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
    done = node.cli("container", "run", "--rm", f"{hub.address}/webfx:1", "cat", "index.html")
    assert done.stdout == "hello from layer\n", done.stderr  # pulled first (--pull missing, the default)
    assert done.stderr.splitlines()[0].startswith(f"{hub.address}/webfx:1: 5 layers")  # the pull's progress
    assert [item["name"] for item in node.ok("image", "list")] == ["webfx-1"]
    created = node.ok("container", "create", "--pull", "always", f"{hub.address}/webfx:1")  # up to date: used
    assert created["image"] == "webfx-1"
    hub.push(f"oci-archive:{podman_archives / 'webfx-oci.tar'}", "webfx:1")  # the tag moves on
    assert node.ok("container", "create", f"{hub.address}/webfx:1")["image"] == "webfx-1"  # missing: not asked
    reply = node.call("container", "create", "--pull", "always", f"{hub.address}/webfx:1")
    assert reply["error"]["message"].startswith(f"image 'webfx-1' is {hub.address}/webfx:1@sha256:"), reply


def platform_image(directory, architectures):
    """An OCI layout whose index has one image per architecture, each with /arch naming it."""
    blobs, manifests = {}, []

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = data
        return {"digest": f"sha256:{digest}", "size": len(data)}

    for architecture in architectures:
        raw = layer_bytes([("arch", "file", architecture + "\n")])
        layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(raw)}
        config = blob(json.dumps({"os": "linux", "architecture": architecture, "config": {"Cmd": ["sh"]},
                                  "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())  # fmt: skip
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": [layer]}  # fmt: skip
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          **blob(json.dumps(manifest).encode()),
                          "platform": {"os": "linux", "architecture": architecture}})  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    top = {"schemaVersion": 2, "manifests": [{"mediaType": index["mediaType"], **blob(json.dumps(index).encode()),
                                              "annotations": {"org.opencontainers.image.ref.name": "1"}}]}  # fmt: skip
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(top).encode(), **blobs}
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return directory


def test_an_index_gives_this_hosts_platform_or_the_one_asked(node, hub, tmp_path):
    layout = platform_image(tmp_path / "layout", ["arm64", "amd64"])
    hub.push(f"oci:{layout}:1", "multi:1", "--all")
    assert pull(node, f"{hub.address}/multi:1", "--name", "here")["ok"]
    assert (image_file(node, "here", tmp_path / "here") / "arch").read_text() == "amd64\n"
    assert pull(node, f"{hub.address}/multi:1", "--name", "arm", "--platform", "linux/arm64")["ok"]
    assert (image_file(node, "arm", tmp_path / "arm") / "arch").read_text() == "arm64\n"
    sources = {item["name"]: item["source"] for item in node.ok("image", "list")}
    assert sources["here"] != sources["arm"]  # each records its own platform's manifest
    assert pull(node, f"{hub.address}/multi:1", "--name", "here")["data"]["up_to_date"] is True
    other = pull(node, f"{hub.address}/multi:1", "--name", "here", "--platform", "linux/arm64")
    assert other["error"]["message"].startswith("image 'here' is "), other  # not silently the other platform
    reply = pull(node, f"{hub.address}/multi:1", "--platform", "linux/s390x")
    assert reply["error"]["message"] == (
        f"{hub.address}/multi:1 has no image for linux/s390x (it has: linux/arm64, linux/amd64); choose with --platform"
    )


def image_file(node, name, destination):
    destination.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump / {destination}", str(node.root / "images" / f"{name}.ext4")],
                   check=True, capture_output=True)  # fmt: skip
    return destination


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_logins_as_the_registry_asks(node, tmp_path, auth, podman_archives):
    with registry.running(tmp_path / "registry", auth) as hub:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        user, password = hub.credentials
        before = node.state_files()
        anonymous = pull(node, f"{hub.address}/webfx:1")
        wrong = pull(node, f"{hub.address}/webfx:1", "--username", user, "--password-stdin", password="nope")
        assert node.state_files() == before and anonymous["exit"] != 0 and wrong["exit"] != 0
        if auth == "basic":
            assert anonymous["error"]["message"] == (
                f"registry {hub.address} wants a login: give --username and --password-stdin, "
                f"or keep one: baleine login {hub.address}"
            )
            assert wrong["error"]["message"].startswith(f"registry {hub.address} refused user 'puller': UNAUTHORIZED")
        else:
            assert anonymous["error"]["message"] == (
                f"the login service of {hub.address} refused anonymous access (give --username, or keep a login: "
                f"baleine login {hub.address}): 401 Unauthorized"
            )
            assert wrong["error"]["message"] == f"the login service of {hub.address} refused user 'puller': " + (
                "401 Unauthorized"
            )
        if hub.tokens:
            hub.tokens.asked.clear()
        reply = pull(node, f"{hub.address}/webfx:1", "--username", user, "--password-stdin", password=password)
        assert reply["ok"] and reply["data"]["name"] == "webfx-1", reply
        if auth == "token":  # asked once, for pulling this repository only
            [(path, _authorization)] = hub.tokens.asked
            assert f"service=registry-{hub.port}" in path and "scope=repository%3Awebfx%3Apull" in path


def test_https_certificates_are_checked_unless_insecure(node, tmp_path, lan_address, podman_archives):
    with registry.running(tmp_path / "registry", host=lan_address, tls=True) as hub:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        reply = pull(node, f"{hub.address}/webfx:1")
        message = reply["error"]["message"]
        assert message.startswith(f"cannot reach registry {hub.address}: [SSL: CERTIFICATE_VERIFY_FAILED]"), message
        assert list((node.root / "images").iterdir()) == []
        reply = pull(node, f"{hub.address}/webfx:1", "--insecure")
        assert reply["ok"] and reply["data"]["name"] == "webfx-1", reply


def test_through_the_proxy_the_environment_names(node, tmp_path, lan_address, podman_archives):
    archive = f"docker-archive:{podman_archives / 'webfx-docker.tar'}"
    with registry.proxying() as proxy, registry.running(tmp_path / "tls", host=lan_address, tls=True) as secure:
        secure.push(archive, "webfx:1")
        tunnel = {"HTTPS_PROXY": f"http://{proxy.address}"}
        first = pull(node, f"{secure.address}/webfx:1", "--insecure", env=tunnel)
        assert first["ok"], first
        assert {entry[:2] for entry in proxy.seen} == {("CONNECT", secure.address)}
        proxy.seen.clear()
        assert pull(node, f"{secure.address}/webfx:1", "--insecure", "--name", "direct",
                    env={**tunnel, "NO_PROXY": f"example.org,{lan_address}/32"})["ok"]  # fmt: skip
        assert proxy.seen == []
        dead = f"127.0.0.1:{registry.free_port()}"
        reply = pull(node, f"{secure.address}/webfx:1", "--name", "x", env={"HTTPS_PROXY": dead})
        assert reply["error"]["message"].startswith(
            f"cannot reach registry {secure.address} through proxy {dead}: [Errno 111] Connection refused"
        ), reply
        reply = pull(node, f"{secure.address}/webfx:1", "--name", "x", env={"https_proxy": "socks5://127.0.0.1:1"})
        assert reply["error"]["message"] == (
            "invalid HTTPS_PROXY 'socks5://127.0.0.1:1': use http://[USER:PASSWORD@]HOST[:PORT]"
        )
    with registry.proxying() as proxy, registry.running(tmp_path / "plain", host=lan_address) as plain:
        plain.push(archive, "webfx:1")
        forward = {"HTTP_PROXY": f"http://user:pa%40ss@{proxy.address}"}
        assert pull(node, f"{plain.address}/webfx:1", "--insecure", "--name", "plain", env=forward)["ok"]
        assert proxy.seen and all(method == "GET" and authorized for method, _, authorized in proxy.seen)
        assert proxy.seen[0][1] == f"http://{plain.address}/v2/webfx/manifests/1"
        assert node.ok("image", "inspect", "plain")["config"]["WorkingDir"] == "/www"


def test_a_busy_registry_is_asked_again(node, tmp_path, lan_address, podman_archives):
    with registry.proxying(busy=2) as proxy, registry.running(tmp_path / "plain", host=lan_address) as plain:
        plain.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        forward = {"HTTP_PROXY": f"http://{proxy.address}"}
        reply = pull(node, f"{plain.address}/webfx:1", "--insecure", env=forward)
        assert reply["ok"], reply  # two 503s, then through
        first = [target for _method, target, _ in proxy.seen[:3]]
        assert first == [f"http://{plain.address}/v2/webfx/manifests/1"] * 3
        proxy.busy = 10
        reply = pull(node, f"{plain.address}/webfx:1", "--insecure", "--name", "again", env=forward)
        assert reply["error"]["message"] == (
            f"registry {plain.address} answered 503 Service Unavailable for manifest {plain.address}/webfx:1 "
            "(3 tries): UNAVAILABLE try later"
        )
        assert proxy.busy == 7  # three tries, no more


@pytest.mark.parametrize("ranges, reset", [(True, False), (True, True), (False, False)],
                         ids=["closed", "reset", "range-ignored"])  # fmt: skip
def test_a_download_cut_off_is_taken_up_where_it_stopped(node, tmp_path, lan_address, podman_archives, ranges,
                                                         reset):  # fmt: skip
    with (
        registry.proxying(cuts=2, ranges=ranges, reset=reset) as proxy,
        registry.running(tmp_path / "plain", host=lan_address) as plain,
    ):
        plain.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        forward = {"HTTP_PROXY": f"http://{proxy.address}"}
        done = subprocess.run(node.argv("image", "pull", f"{plain.address}/webfx:1", "--insecure"), capture_output=True,
                              text=True, env={**node.env, **forward}, timeout=120)  # fmt: skip
        assert done.returncode == 0 and proxy.cuts == 0, done.stderr
        resumed = [line for line in done.stderr.splitlines() if "asking for the rest" in line]
        assert len(resumed) == 2, done.stderr
        # Each resume asks from the byte after the last one read (a reset may lose what was on its way). A
        # registry that sends the blob whole again (the range dropped) is cut at the same byte, so the second
        # resume asks from there too.
        starts = [int(asked.removeprefix("bytes=").rstrip("-")) for asked in proxy.ranges_asked]
        assert len(starts) == 2 and starts[0] < proxy.CUT_AFTER, proxy.ranges_asked
        assert {(True, False): starts[1] > starts[0], (True, True): starts[1] >= starts[0],
                (False, False): starts[1] == starts[0] > 0}[ranges, reset], starts  # fmt: skip
        why = "Connection reset by peer" if reset else "the connection closed"
        assert all(why in line for line in resumed), resumed
        assert image_tree(node, "webfx-1", tmp_path / "tree") == EXPECTED  # every digest checked on the way
        # A download that breaks off again and again is given up, and nothing is kept.
        proxy.cuts = 100
        before = node.state_files()
        reply = pull(node, f"{plain.address}/webfx:1", "--insecure", "--name", "broken", env=forward)
        message = reply["error"]["message"]
        assert message.startswith("the download of blob sha256:") and " broke off 6 times, the last at " in message
        assert node.state_files() == before and proxy.cuts == 94, message
        assert sorted(p.name for p in (node.root / "images").iterdir()) == ["webfx-1.ext4", "webfx-1.json"]


def test_a_layer_download_failing_before_its_first_byte_is_asked_again(node, tmp_path, lan_address):
    with registry.proxying() as proxy, registry.running(tmp_path / "plain", host=lan_address) as plain:
        node.ok("image", "create", "bb", "--size", "16M", "--from", "busybox")
        node.ok("image", "push", "bb", f"{plain.address}/bb:1", "--insecure")  # one layer: none fetched ahead
        forward = {"HTTP_PROXY": f"http://{proxy.address}"}
        assert pull(node, f"{plain.address}/bb:1", "--insecure", "--name", "first", env=forward)["ok"]
        proxy.dropping = [target for method, target, _ in proxy.seen if "/blobs/" in target][-1]  # the layer
        # Two drops in a row: the first on the kept-alive connection is sent again at once, as a stale
        # connection's; the second, on a new connection, is the registry out of reach: asked again after a pause.
        proxy.drops = 2
        done = subprocess.run(node.argv("image", "pull", f"{plain.address}/bb:1", "--insecure"), capture_output=True,
                              text=True, env={**node.env, **forward}, timeout=120)  # fmt: skip
        assert done.returncode == 0 and proxy.drops == 0, done.stderr
        again = [line for line in done.stderr.splitlines() if "; asking again in " in line]
        assert len(again) == 1 and again[0].endswith("; asking again in 1 s"), done.stderr
        assert f"{plain.address}/bb:1: 1 layer, " in done.stderr
        assert again[0].startswith(f"{proxy.dropping.rsplit('/', 1)[1][:19]}: cannot reach registry {plain.address} "
                                   f"through proxy {proxy.address}: Remote end closed connection without response "
                                   "at 0B of "), again  # fmt: skip
        node.ok("container", "run", "--rm", "bb-1", "true")


def test_refusals_name_the_problem_and_change_nothing(node, hub, tmp_path, podman_archives):
    hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
    node.ok("image", "create", "taken", "--size", "16M", "--from", "busybox")
    before = node.state_files()
    dead = f"127.0.0.1:{registry.free_port()}"
    for args, message in [
        (
            (f"{hub.address}/webfx:2",),
            f"no manifest {hub.address}/webfx:2 on {hub.address}: MANIFEST_UNKNOWN manifest unknown",
        ),
        (
            (f"{hub.address}/nothing:1",),
            f"no manifest {hub.address}/nothing:1 on {hub.address}: MANIFEST_UNKNOWN manifest unknown",
        ),
        ((f"{dead}/webfx:1",), f"cannot reach registry {dead}"),
        ((f"{hub.address}/webfx:1", "--name", "taken"), "image 'taken' already exists"),
        ((f"{hub.address}/webfx:1", "--platform", "linux"), "invalid --platform 'linux': use OS/ARCH[/VARIANT]"),
        ((f"{hub.address}/webfx:1", "--size", "1K"), "invalid image size '1K': must be at least 8M"),
        ((f"{hub.address}/Web:1",), f"invalid image reference '{hub.address}/Web:1': use [REGISTRY/]REPOSITORY"),
        (("webfx@sha256:abc",), "invalid image reference 'webfx@sha256:abc': the digest must be sha256: and 64 hex"),
        ((f"{hub.address}/webfx:1", "--password-stdin"), "--password-stdin needs --username"),
    ]:
        reply = pull(node, *args)
        assert not reply["ok"] and reply["exit"] != 0, args
        assert reply["error"]["message"].startswith(message), (args, reply["error"]["message"])
    assert node.state_files() == before
    assert sorted(p.name for p in (node.root / "images").iterdir()) == ["taken.ext4", "taken.json"]


def test_a_layer_spoiled_in_the_registry_is_named(node, hub, podman_archives):
    hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
    blobs = sorted((hub.directory / "storage").rglob("blobs/sha256/*/*/data"), key=lambda p: p.stat().st_size)
    biggest = blobs[-1]  # the busybox layer
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    reply = pull(node, f"{hub.address}/webfx:1")
    message = reply["error"]["message"]  # skopeo gzipped the layers: gzip's CRC may speak before the digest
    assert message.startswith(("layer blobs/sha256/", "digest mismatch for layer blobs/sha256/")), message
    assert "is corrupt: its gzip data is damaged (" in message or "its content is" in message, message
    assert list((node.root / "images").iterdir()) == []
