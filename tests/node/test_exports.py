"""Image export, checked with the real tools: skopeo inspect and copy, umoci unpack."""

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def tree(root):
    """{path: (type, mode, size, content sha256 or link target)} of a directory tree."""
    found = {}
    for path in Path(root).rglob("*"):
        info = path.lstat()
        key = "/" + str(path.relative_to(root))
        if stat.S_ISLNK(info.st_mode):
            found[key] = ("l", None, None, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            found[key] = ("d", stat.S_IMODE(info.st_mode), None, None)
        else:
            found[key] = ("f", stat.S_IMODE(info.st_mode), info.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def image_files(node, name, destination):
    destination.mkdir()
    image = node.root / "images" / f"{name}.ext4"
    subprocess.run(["debugfs", "-R", f"rdump / {destination}", str(image)], check=True, capture_output=True)
    return tree(destination)


@pytest.fixture
def webfx(node, podman_archives):
    node.ok("image", "import", str(podman_archives / "webfx-docker.tar"), "--name", "webfx")
    return node


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_export_is_reproducible_and_skopeo_reads_it(webfx, tmp_path, fmt):
    first, second = tmp_path / "one.tar", tmp_path / "two.tar"
    result = webfx.ok("image", "export", "webfx", str(first), "--format", fmt)
    webfx.ok("image", "export", "webfx", str(second), "--format", fmt)
    assert first.read_bytes() == second.read_bytes()
    inspected = json.loads(subprocess.check_output(["skopeo", "inspect", f"{fmt}:{first}"]))
    assert inspected["Layers"] == [result["layer"]] and inspected["Os"] == "linux"
    raw_config = json.loads(subprocess.check_output(["skopeo", "inspect", "--config", f"{fmt}:{first}"]))
    assert raw_config["config"]["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    assert "GREETING=bonjour" in raw_config["config"]["Env"]


def test_skopeo_copy_and_umoci_unpack_give_the_same_files(webfx, tmp_path):
    archive = tmp_path / "webfx.tar"
    webfx.ok("image", "export", "webfx", str(archive))
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{archive}", f"oci:{layout}:web"], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:web", str(tmp_path / "bundle")], check=True,
                   capture_output=True)  # fmt: skip
    assert tree(tmp_path / "bundle" / "rootfs") == image_files(webfx, "webfx", tmp_path / "image")


def test_import_of_the_export_round_trips(webfx, tmp_path):
    archive = tmp_path / "webfx-oci.tar"
    webfx.ok("image", "export", "webfx", str(archive), "--format", "oci-archive", "--tag", "localhost/again:3")
    assert webfx.ok("image", "import", str(archive))["name"] == "again-3"
    assert image_files(webfx, "again-3", tmp_path / "a") == image_files(webfx, "webfx", tmp_path / "b")
    assert webfx.ok("image", "inspect", "again-3")["config"] == webfx.ok("image", "inspect", "webfx")["config"]


def test_export_to_stdout_and_bad_requests(webfx, tmp_path):
    with open(tmp_path / "piped.tar", "wb") as out:
        done = subprocess.run(webfx.argv("image", "export", "webfx", "-"), env=webfx.env, stdout=out)
    assert done.returncode == 0
    webfx.ok("image", "export", "webfx", str(tmp_path / "file.tar"))
    assert (tmp_path / "piped.tar").read_bytes() == (tmp_path / "file.tar").read_bytes()
    for args, message in (
        (("image", "export", "webfx", "-"), "--json"),
        (("image", "export", "webfx", str(tmp_path / "x.tar"), "--format", "zip"), "--format"),
        (("image", "export", "ghost", str(tmp_path / "x.tar")), "no such image"),
    ):
        reply = webfx.call(*args)
        assert not reply["ok"] and message in reply["error"]["message"], reply
    assert not (tmp_path / "x.tar").exists()


def test_export_to_another_filesystem(webfx, tmp_path):
    """The archive is written beside its name, not in the state directory: a rename cannot cross filesystems."""
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "baleine-test", str(other)], check=True)
    try:
        assert os.stat(other).st_dev != os.stat(webfx.root).st_dev
        webfx.ok("image", "export", "webfx", str(other / "webfx.tar"))
        webfx.ok("image", "export", "webfx", str(tmp_path / "here.tar"))
        assert (other / "webfx.tar").read_bytes() == (tmp_path / "here.tar").read_bytes()
        assert os.listdir(other) == ["webfx.tar"]  # no temporary file left beside it
        (tmp_path / "link.tar").symlink_to(other / "webfx.tar")
        (other / "webfx.tar").write_bytes(b"old")
        webfx.ok("image", "export", "webfx", str(tmp_path / "link.tar"))
        assert (tmp_path / "link.tar").is_symlink()
        assert (other / "webfx.tar").read_bytes() == (tmp_path / "here.tar").read_bytes()
    finally:
        subprocess.run(["umount", str(other)], check=True)


def test_an_unwritable_destination_is_refused_before_any_work(webfx, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    for destination, message in (
        (str(folder), f"cannot write {folder}: it is a directory; give a file name, such as {folder}/NAME.tar"),
        (str(tmp_path / "none" / "x.tar"), f"cannot write {tmp_path}/none/x.tar: no such directory {tmp_path}/none"),
        ("", "invalid FILE '': give the archive's path, or - for stdout"),
        ("/proc/webfx.tar", "cannot write /proc/webfx.tar: "),
    ):
        done = webfx.cli("image", "export", "webfx", destination)
        assert done.returncode != 0 and done.stderr.startswith(f"baleine: error: {message}"), done.stderr
        assert done.stderr.count("\n") == 1
    assert os.listdir(folder) == [] and sorted(os.listdir(webfx.root / "images")) == ["webfx.ext4", "webfx.json"]
