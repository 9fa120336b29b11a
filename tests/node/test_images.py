"""Images: ext4 files built from busybox, a directory, a tarball, or debootstrap."""

import os
import subprocess
import tarfile

import pytest

from fleet.node import images
from fleet.node.errors import Invalid

pytestmark = pytest.mark.integration


def test_busybox_image_is_a_sparse_ext4_file(node):
    item = node.ok("image", "create", "bb", "--size", "64M", "--from", "busybox")
    path = node.root / "images" / "bb.ext4"
    assert item["size"] == 64 << 20 == path.stat().st_size
    assert item["used"] < 16 << 20  # sparse: only what the files need
    # Only busybox and the metadata take space; mkfs's 4 MiB journal stays a hole, which
    # every container's copy would otherwise carry.
    assert path.stat().st_blocks * 512 < 3 << 20
    assert item["digest"] == "sha256:" + images.file_sha256(str(path)) and item["id"] == item["digest"][7:19]

    def listing(directory):
        return subprocess.run(["debugfs", "-R", f"ls {directory}", str(path)], capture_output=True, text=True).stdout

    assert "busybox" in listing("/bin") and " sh " in listing("/bin") and "httpd" in listing("/usr/sbin")
    [listed] = node.ok("image", "list")
    assert listed["source"] == "busybox" and listed["name"] == "bb"
    assert node.ok("image", "inspect", "bb")["config"]["Cmd"] == ["sh"]


def test_image_from_directory_keeps_files(node, tmp_path):
    root = tmp_path / "tree"
    (root / "bin").mkdir(parents=True)
    subprocess.check_call(["cp", images.find_static_busybox(), str(root / "bin/busybox")])
    os.symlink("busybox", root / "bin/sh")
    (root / "hello.txt").write_text("from a directory\n")
    node.ok("image", "create", "fromdir", "--size", "16M", "--from", str(root))
    done = node.cli("container", "run", "--rm", "fromdir", "/bin/sh", "-c", "/bin/busybox cat /hello.txt")
    assert done.stdout == "from a directory\n", done.stderr


def test_image_from_tarball(node, tmp_path):
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    subprocess.check_call(["cp", images.find_static_busybox(), str(tree / "bin/busybox")])
    os.symlink("busybox", tree / "bin/sh")
    (tree / "etc").mkdir()
    (tree / "etc/motd").write_text("from a tarball\n")
    tarball = tmp_path / "root.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tree, arcname=".")
    node.ok("image", "create", "fromtar", "--size", "16M", "--from", str(tarball))
    assert (
        node.cli("container", "run", "--rm", "fromtar", "/bin/busybox", "cat", "/etc/motd").stdout == "from a tarball\n"
    )


def test_hostile_tarball_registers_nothing(node, tmp_path):
    tarball = tmp_path / "evil.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("../../escaped")
        tar.addfile(info)
    before = node.state_files()
    reply = node.call("image", "create", "evil", "--size", "16M", "--from", str(tarball))
    assert not reply["ok"] and "'..'" in reply["error"]["message"]
    assert node.state_files() == before
    assert not (tmp_path / "escaped").exists() and not (node.root.parent / "escaped").exists()
    assert sorted(os.listdir(node.root / "images")) == []


def test_too_small_size_says_what_would_fit(node, tmp_path):
    tree = tmp_path / "big"
    tree.mkdir()
    (tree / "blob").write_bytes(os.urandom(12 << 20))
    reply = node.call("image", "create", "big", "--size", "8M", "--from", str(tree))
    assert not reply["ok"] and "too small" in reply["error"]["message"] and "--size" in reply["error"]["message"]
    assert os.listdir(node.root / "images") == []


def test_a_size_no_file_can_have_here_is_refused_before_the_build(node, tmp_path):
    """ext4 takes files up to 16T; RLIMIT_FSIZE makes the same refusal happen on any filesystem."""
    import resource

    def at_most_one_gib():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))  # Python ignores SIGXFSZ: truncate gets EFBIG

    broken = tmp_path / "broken.tar"  # were it read first, the error would be about the archive
    broken.write_bytes(b"not a tar archive\n" * 100)
    done = node.cli("image", "create", "big", "--size", "2G", "--from", str(broken), preexec_fn=at_most_one_gib)
    where = node.root / "images"
    message = f"invalid image size '2G': no file that large can be made under {where} (its filesystem's largest file"
    assert done.returncode == 2 and done.stderr.startswith(f"baleine: error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert os.listdir(where) == [] and node.ok("image", "list") == []
    done = node.cli("image", "create", "big", "--size", "64M", "--from", str(broken))  # and the archive, one line
    message = f"cannot read {broken} as a root filesystem: not a tar file (plain, gzip, bzip2 or xz)"
    assert (done.returncode, done.stderr) == (2, f"baleine: error: {message}\n")


def test_rm_refuses_while_a_container_uses_it(node):
    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    node.ok("container", "create", "--name", "user1", "bb", "true")
    reply = node.call("image", "rm", "bb")
    assert not reply["ok"] and "user1" in reply["error"]["message"] and reply["error"]["code"] == "conflict"
    node.ok("container", "rm", "user1")
    node.ok("image", "rm", "bb")
    assert not (node.root / "images" / "bb.ext4").exists()


def test_container_disk_is_a_private_copy(node):
    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    original = (node.root / "images" / "bb.ext4").read_bytes()
    node.cli("container", "run", "--name", "writer", "bb", "sh", "-c", "echo changed > /etc/motd")
    assert (node.root / "images" / "bb.ext4").read_bytes() == original
    fresh = node.cli("container", "run", "--rm", "bb", "cat", "/etc/motd")
    assert fresh.returncode == 1 and "No such file or directory" in fresh.stderr, fresh.stderr


def retrieved_packages(progress):
    """Packages debootstrap downloaded (not the index files it always fetches)."""
    return [line for line in progress.splitlines() if line.startswith("I: Retrieving ")
            and not line.split()[2].startswith(("InRelease", "Release", "Packages"))]  # fmt: skip


def test_debootstrap_image_and_its_package_cache(node):
    """A real Debian minbase from the host's apt mirror (the registries this machine reaches)."""
    done = node.cli("--json", "image", "create", "deb", "--size", "1G", "--from", "debootstrap:bookworm",
                    timeout=900, host_network=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "I: Retrieving" in done.stderr and retrieved_packages(done.stderr)  # progress, as it ran
    assert node.ok("image", "inspect", "deb")["source"] == "debootstrap:bookworm"
    done = node.cli("container", "run", "--rm", "deb", "/bin/bash", "-c", "echo ok")
    assert done.stdout == "ok\n", done.stderr
    done = node.cli("container", "run", "--rm", "deb", "sh", "-c", ". /etc/os-release; echo $ID $VERSION_CODENAME")
    assert done.stdout == "debian bookworm\n", done.stderr
    assert node.ok("image", "inspect", "deb")["config"]["Cmd"] == ["bash"]
    assert list((node.root / "cache" / "debootstrap" / "bookworm").glob("*.deb"))
    again = node.cli("--json", "image", "create", "deb2", "--size", "1G", "--from", "debootstrap:bookworm",
                     timeout=900, host_network=True)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert retrieved_packages(again.stderr) == []  # every package came from the cache


def test_debootstrap_spec_parsing():
    assert images.parse_debootstrap("bookworm,include=nginx+curl,variant=minbase") == {
        "suite": "bookworm", "variant": "minbase", "include": ["nginx", "curl"], "mirror": None}  # fmt: skip
    for bad in ("", "bookworm,colour=red", "book worm", "bookworm,include="):
        with pytest.raises(Invalid, match="debootstrap"):
            images.parse_debootstrap(bad)


def test_host_mirror_reads_both_apt_formats(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# nothing\ndeb [arch=amd64] https://example.invalid/tools stable main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n")  # fmt: skip
    assert images.host_mirror(str(tmp_path)) == "http://mirror.invalid/debian"
    (tmp_path / "sources.list").write_text("deb http://old.invalid/ubuntu jammy main\n")
    assert images.host_mirror(str(tmp_path)) == "http://old.invalid/ubuntu"


def test_static_busybox_detection():
    assert images.is_static_elf(images.find_static_busybox())
    assert not images.is_static_elf("/bin/ls")  # dynamically linked


def test_prune_deletes_only_images_no_container_uses(node):
    for name in ("kept", "also-kept", "spare"):
        node.ok("image", "create", name, "--size", "32M", "--from", "busybox")
    node.ok("container", "create", "--name", "idle", "kept", "true")  # created, never started
    node.ok("container", "run", "--name", "done", "also-kept", "true")  # exited
    spare = node.ok("image", "inspect", "spare")
    (removed,) = node.ok("image", "prune")
    assert removed == {"name": "spare", "freed": spare["used"]} and spare["used"] > 1 << 20
    assert sorted(image["name"] for image in node.ok("image", "list")) == ["also-kept", "kept"]
    assert (node.root / "images" / "kept.ext4").exists()
    assert not [name for name in os.listdir(node.root / "images") if name.startswith("spare")]  # file and config
    assert node.ok("image", "prune") == []
    assert node.cli("image", "prune").stdout == "no image to remove\n"
    node.ok("container", "rm", "done")
    text = node.cli("image", "prune").stdout.splitlines()
    assert text[0] == "also-kept" and text[1].startswith("freed ") and len(text) == 2


def test_tag_makes_a_second_image_of_its_own(busybox):
    done = busybox.cli("image", "tag", "bb", "bb-v1")
    assert done.returncode == 0 and done.stdout.startswith("bb-v1 (a copy of bb, "), done.stderr
    rows = {row["name"]: row for row in busybox.ok("image", "list")}
    assert rows["bb-v1"]["digest"] == rows["bb"]["digest"] and rows["bb-v1"]["source"] == "image:bb"
    assert busybox.ok("image", "inspect", "bb-v1")["config"] == busybox.ok("image", "inspect", "bb")["config"]
    assert os.stat(rows["bb-v1"]["file"]).st_ino != os.stat(rows["bb"]["file"]).st_ino  # a file of its own
    busybox.ok("image", "rm", "bb")
    assert busybox.cli("container", "run", "--rm", "bb-v1", "echo", "still here").stdout == "still here\n"
    assert [row["name"] for row in busybox.ok("image", "list")] == ["bb-v1"]
    assert not [name for name in os.listdir(busybox.root / "images") if name.startswith(".build-")]
