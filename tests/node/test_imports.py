"""Image import: the shared fixtures to their exact trees, configs honoured, hostile archives refused."""

import hashlib
import json
import os
import stat
import subprocess

import pytest
from hostnet import free_subnet
from tarfiles import layer_bytes, write_files
from web import fetch

pytestmark = pytest.mark.integration

# The complete tree after a correct import, from ../shared/fixtures/README.md: (type, mode, size) by path.
LINKS = ("cat", "echo", "hostname", "httpd", "ip", "ls", "ps", "sh", "sleep", "true")
EXPECTED = {
    "/bin": ("d", 0o755, None),
    "/bin/busybox": ("f", 0o755, 1982256),
    **{f"/bin/{name}": ("l", None, None) for name in LINKS},
    "/data": ("d", 0o755, None),
    "/data/f3": ("f", 0o644, 6),
    **{path: ("d", 0o755, None) for path in ("/dev", "/etc", "/proc", "/run", "/sys", "/tmp", "/www", "/www/sub")},
    **{path: ("f", 0o755, 0) for path in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")},
    "/www/index.html": ("f", 0o644, 17),
    "/www/link.html": ("l", None, None),
    "/www/sub/a.txt": ("f", 0o644, 2),
}


def image_tree(node, name, destination):
    """The image file's contents, extracted on the host with debugfs: {path: (type, mode, size)}."""
    destination.mkdir()
    image = node.root / "images" / f"{name}.ext4"
    subprocess.run(["debugfs", "-R", f"rdump / {destination}", str(image)], check=True, capture_output=True)
    tree = {}
    for path in destination.rglob("*"):
        info = path.lstat()
        key = "/" + str(path.relative_to(destination))
        if stat.S_ISLNK(info.st_mode):
            tree[key] = ("l", None, None)
        elif stat.S_ISDIR(info.st_mode):
            tree[key] = ("d", stat.S_IMODE(info.st_mode), None)
        else:
            tree[key] = ("f", stat.S_IMODE(info.st_mode), info.st_size)
    return tree


@pytest.mark.parametrize("fixture", ["webfx-docker.tar", "webfx-oci.tar"])
def test_fixture_imports_to_exactly_the_listed_tree(node, tmp_path, fixture, podman_archives):
    item = node.ok("image", "import", str(podman_archives / fixture), "--name", "webfx")
    assert item["source"] == "import:localhost/webfx:1"
    tree = image_tree(node, "webfx", tmp_path / "tree")
    assert tree == EXPECTED
    assert os.readlink(tmp_path / "tree" / "www" / "link.html") == "/www/index.html"
    assert (tmp_path / "tree" / "www" / "index.html").read_text() == "hello from layer\n"
    assert (tmp_path / "tree" / "data" / "f3").read_text() == "three\n"


def test_the_image_config_runs_without_a_command(node, podman_archives):
    node.ok("image", "import", str(podman_archives / "webfx-oci.tar"))
    config = node.ok("image", "inspect", "webfx-1")["config"]
    assert config["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"] and config["WorkingDir"] == "/www"
    node.ok("network", "create", "farm", "--subnet", free_subnet())
    item = node.ok("container", "run", "-d", "--name", "web", "--network", "farm", "webfx-1")
    address = item["networks"][0]["address"]
    assert fetch(f"http://{address}:8080/link.html") == "hello from layer\n"  # httpd from the image's Cmd
    assert node.exec_out("web", "sh", "-c", "echo $GREETING; pwd") == "bonjour\n/www\n"


def test_import_from_stdin_and_name_conflicts(node, podman_archives):
    with open(podman_archives / "webfx-docker.tar", "rb") as archive:
        done = subprocess.run(node.argv("--json", "image", "import", "-", "--name", "piped"), env=node.env,
                              stdin=archive, capture_output=True, text=True)  # fmt: skip
    assert json.loads(done.stdout)["ok"], done.stdout
    reply = node.call("image", "import", str(podman_archives / "webfx-oci.tar"), "--name", "piped")
    assert not reply["ok"] and "already exists" in reply["error"]["message"]


# ----------------------------------------------------------------- archives the tests build


def docker_archive(path, layers, tag="localhost/evil:1", tamper=None, image_config=None):
    """A docker-archive with those layers; tamper(files, manifest) may spoil it."""
    blobs = [layer_bytes(entries) for entries in layers]
    diff_ids = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in blobs]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], **(image_config or {})},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    files = {config_name: config, **{f"{d[7:]}.tar": blob for d, blob in zip(diff_ids, blobs)}}
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{d[7:]}.tar" for d in diff_ids]}]
    if tamper:
        tamper(files, manifest)
    files["manifest.json"] = json.dumps(manifest).encode()
    return write_files(path, files)


def truncate_first_layer(files, manifest):
    name = manifest[0]["Layers"][0]
    files[name] = files[name][: len(files[name]) // 2]


def spoil_config(files, manifest):
    files[manifest[0]["Config"]] = files[manifest[0]["Config"]].replace(b'"sh"', b'"bash"')


def bloat_config(files, manifest):
    """JSON read whole into memory: a hostile archive's could be gigabytes."""
    files[manifest[0]["Config"]] = b" " * (4 << 20) + files[manifest[0]["Config"]]


def point_outside(files, manifest):
    manifest[0]["Layers"][0] = "../../../etc/passwd"


BASE = [("bin", "dir", None), ("bin/ok", "file", "ok")]
HOSTILE = {
    "path traversal": ([BASE, [("../../canary/evil", "file", "x")]], None, "'..'"),
    "absolute path": ([BASE, [("/canary/evil", "file", "x")]], None, "absolute"),
    "symlink parent, one layer": ([[("link", "sym", "/canary"), ("link/evil", "file", "x")]], None, "not a directory"),
    "symlink parent, two layers": (
        [[("link", "sym", "../../canary")], [("link/evil", "file", "x")]],
        None,
        "not a directory",
    ),
    "hard link out": ([BASE, [("evil", "hard", "../../canary/kept")]], None, "'..'"),
    "whiteout traversal": ([BASE, [("bin/.wh...", "file", "")]], None, "'..'"),
    "whiteout through a symlink": (
        [[("link", "sym", "/canary")], [("link/.wh.kept", "file", "")]],
        None,
        "not a directory",
    ),
    "manifest pointing outside": ([BASE], point_outside, "does not contain"),
    "digest mismatch": ([BASE], spoil_config, "digest mismatch"),
    "huge config": ([BASE], bloat_config, "is over 4 MiB: not an image's JSON document"),
    "truncated file": ([BASE, [("big", "file", "y" * 100000)]], truncate_first_layer, "digest mismatch"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(node, tmp_path, case):
    layers, tamper, message = HOSTILE[case]
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "kept").write_text("mine")
    path = docker_archive(tmp_path / "evil.tar", layers, tamper=tamper)
    before = node.state_files()
    reply = node.call("image", "import", str(path), "--name", "evil")
    assert not reply["ok"] and message in reply["error"]["message"], reply["error"]
    assert sorted(p.name for p in canary.iterdir()) == ["kept"] and (canary / "kept").read_text() == "mine"
    assert node.state_files() == before and os.listdir(node.root / "images") == []


def test_a_file_that_is_no_archive_gets_one_line(node, tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not an archive\n")
    before = node.state_files()
    done = node.cli("image", "import", str(garbage))
    assert done.returncode == 2 and done.stderr == (
        f"baleine: error: cannot read {garbage} as an image archive: not a tar file (plain, gzip, bzip2 or xz), "
        "such as `podman save` or `docker save` write\n"
    )
    assert node.state_files() == before and os.listdir(node.root / "images") == []
    for missing, message in [
        (tmp_path, f"'{tmp_path}' is a directory: give an archive file (podman save, docker save), or - for stdin"),
        (tmp_path / "gone.tar", f"no such archive file '{tmp_path}/gone.tar'"),
    ]:
        done = node.cli("image", "import", str(missing))
        assert (done.returncode, done.stderr) == (2, f"baleine: error: {message}\n")
    assert node.state_files() == before and os.listdir(node.root / "images") == []


def test_device_nodes_are_not_created(node, tmp_path):
    path = docker_archive(tmp_path / "dev.tar", [[*BASE, ("dev", "dir", None), ("dev/mem", "chr", None)]])
    node.ok("image", "import", str(path), "--name", "devs")
    image = node.root / "images" / "devs.ext4"
    listing = subprocess.run(["debugfs", "-R", "ls /dev", str(image)], capture_output=True, text=True).stdout
    assert listing.split() and "mem" not in listing.split(), listing  # debugfs lists special files too


def test_whiteouts_and_opaque_directories(node, tmp_path):
    layers = [
        [("a", "dir", None), ("a/lower", "file", "1"), ("b", "dir", None), ("b/gone", "file", "2"), ("c", "file", "3")],
        [
            ("a/new-before", "file", "n"),
            ("a/.wh..wh..opq", "file", ""),
            ("a/new-after", "file", "m"),
            ("b/.wh.gone", "file", ""),
            ("c", "file", "replaced"),
        ],
    ]
    node.ok("image", "import", str(docker_archive(tmp_path / "wh.tar", layers)), "--name", "wh")
    tree = image_tree(node, "wh", tmp_path / "tree")
    assert sorted(tree) == ["/a", "/a/new-after", "/a/new-before", "/b", "/c"]
    assert (tmp_path / "tree" / "c").read_text() == "replaced"


def test_several_images_need_a_tag(node, tmp_path):
    def second_image(files, manifest):
        manifest.append(dict(manifest[0], RepoTags=["localhost/other:2"]))

    path = docker_archive(tmp_path / "two.tar", [BASE], tag="localhost/first:1", tamper=second_image)
    reply = node.call("image", "import", str(path))
    assert not reply["ok"] and "localhost/first:1" in reply["error"]["message"] and "--tag" in reply["error"]["message"]
    assert node.ok("image", "import", str(path), "--tag", "localhost/other:2")["name"] == "other-2"
    reply = node.call("image", "import", str(path), "--tag", "nope")
    assert not reply["ok"] and "no image tagged 'nope'" in reply["error"]["message"]


def test_the_image_s_healthcheck_is_kept_and_given_to_its_containers(node, tmp_path):
    check = {"Test": ["CMD", "test", "-e", "/bin/ok"], "Interval": 5_000_000_000, "Retries": 2}
    path = docker_archive(tmp_path / "hc.tar", [BASE], tag="localhost/hc:1", image_config={"Healthcheck": check})
    node.ok("image", "import", str(path), "--name", "checked")
    node.ok("container", "create", "--name", "c", "checked", "true")
    health = node.ok("container", "inspect", "c")["config"]["health"]
    assert (health["cmd"], health["interval"], health["retries"], health["timeout"]) == (
        "test -e /bin/ok",
        5.0,
        2,
        10.0,
    )
    node.ok("container", "create", "--name", "tuned", "--health-retries", "9", "checked", "true")
    tuned = node.ok("container", "inspect", "tuned")["config"]["health"]
    assert (tuned["cmd"], tuned["interval"], tuned["retries"]) == ("test -e /bin/ok", 5.0, 9)
    node.ok("container", "create", "--name", "off", "--no-healthcheck", "checked", "true")
    assert node.ok("container", "inspect", "off")["config"]["health"] is None
    reply = node.call("container", "create", "--no-healthcheck", "--health-retries", "2", "checked", "true")
    assert not reply["ok"] and "--no-healthcheck and the --health-* options do not mix" in reply["error"]["message"]
    node.ok("image", "export", "checked", str(tmp_path / "out.tar"))  # it leaves with the image
    node.ok("image", "import", str(tmp_path / "out.tar"), "--name", "again")
    assert node.ok("image", "inspect", "again")["config"]["Healthcheck"] == check


def test_the_image_stop_signal_is_kept_and_given_to_its_containers(node, tmp_path):
    path = docker_archive(tmp_path / "quit.tar", [BASE], tag="localhost/quit:1", image_config={"StopSignal": "SIGQUIT"})
    node.ok("image", "import", str(path), "--name", "quitter")
    node.ok("container", "create", "--name", "c", "quitter", "true")
    assert node.ok("container", "inspect", "c")["config"]["stop_signal"] == "SIGQUIT"
    node.ok("image", "export", "quitter", str(tmp_path / "out.tar"))  # and it leaves with the image
    node.ok("image", "import", str(tmp_path / "out.tar"), "--name", "again")
    assert node.ok("image", "inspect", "again")["config"]["StopSignal"] == "SIGQUIT"

    odd = docker_archive(tmp_path / "odd.tar", [BASE], tag="localhost/odd:1", image_config={"StopSignal": "SIGODD"})
    node.ok("image", "import", str(odd), "--name", "odd")
    reply = node.call("container", "create", "odd", "true")
    assert reply["error"]["message"] == (
        "image 'odd' has an invalid StopSignal 'SIGODD': give one with --stop-signal, e.g. SIGTERM"
    )
    assert node.ok("container", "create", "--stop-signal", "TERM", "odd", "true")  # a given one takes its place


def oci_archive(path, layers, compression=None, docker25=False, spoil=False):
    """An OCI archive (or, docker25, Docker 25+'s `docker save`: the OCI layout plus manifest.json).

    spoil flips a byte of the first layer after its digest was recorded.
    """
    blobs = {}

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = data
        return {"digest": f"sha256:{digest}", "size": len(data)}

    descriptors, diff_ids = [], []
    for entries in layers:
        raw = layer_bytes(entries)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        if compression == "gzip":
            import gzip

            raw = gzip.compress(raw)
        elif compression == "zstd":
            raw = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
        suffix = {"gzip": "+gzip", "zstd": "+zstd", None: ""}[compression]
        descriptors.append({"mediaType": f"application/vnd.oci.image.layer.v1.tar{suffix}", **blob(raw)})
    config = blob(json.dumps({"os": "linux", "config": {"Cmd": ["sh"]},
                              "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())  # fmt: skip
    manifest = blob(json.dumps({"schemaVersion": 2, "config": config, "layers": descriptors}).encode())
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
             **manifest, "annotations": {"org.opencontainers.image.ref.name": "localhost/built:1"}}]}  # fmt: skip
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode(), **blobs}
    if docker25:
        entry = {"Config": "blobs/sha256/" + config["digest"][7:], "RepoTags": ["localhost/built:1"],
                 "Layers": ["blobs/sha256/" + d["digest"][7:] for d in descriptors]}  # fmt: skip
        files["manifest.json"] = json.dumps([entry]).encode()
    if spoil:
        first = "blobs/sha256/" + descriptors[0]["digest"][7:]
        files[first] = files[first][:-8] + bytes(b ^ 0xFF for b in files[first][-8:])
    return write_files(path, files)


@pytest.mark.parametrize(("compression", "docker25"), [("gzip", False), ("zstd", False), (None, True)])
def test_oci_layers_gzip_zstd_and_docker25_layout(node, tmp_path, compression, docker25):
    layers = [BASE, [("bin/.wh.ok", "file", ""), ("etc", "dir", None), ("etc/motd", "file", "built\n")]]
    path = oci_archive(tmp_path / "built.tar", layers, compression, docker25)
    assert node.ok("image", "import", str(path))["name"] == "built-1"
    assert sorted(image_tree(node, "built-1", tmp_path / "tree")) == ["/bin", "/etc", "/etc/motd"]


@pytest.mark.parametrize("compression", ["zstd", "gzip", None])
def test_a_spoiled_layer_is_named(node, tmp_path, compression):
    path = oci_archive(tmp_path / "built.tar", [BASE], compression, spoil=True)
    reply = node.call("image", "import", str(path))
    assert not reply["ok"] and "layer blobs/sha256/" in reply["error"]["message"], reply["error"]
    assert os.listdir(node.root / "images") == []


def test_a_failed_debootstrap_leaves_no_half_image(node):
    done = node.cli("--json", "image", "create", "nope", "--size", "1G", "--from", "debootstrap:nosuchsuite",
                    timeout=300, host_network=True)  # fmt: skip
    reply = json.loads(done.stdout)
    assert not reply["ok"] and done.returncode != 0 and "debootstrap" in reply["error"]["message"]
    assert node.ok("image", "list") == [] and os.listdir(node.root / "images") == []
