"""A full disk: what would use space is refused clearly, and what frees space (stop, rm, check) still works."""

import os
import subprocess

import pytest
from conftest import Node, wait_clean

pytestmark = pytest.mark.integration


@pytest.fixture
def small(tmp_path, zipapp):
    """A node whose state root is on its own 40 MiB filesystem."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "baleine-test", str(mount)], check=True)
    node = Node(zipapp, mount / "root")
    node.ok("image", "create", "bb", "--size", "8M", "--from", "busybox")
    try:
        yield node
        (mount / "filler").unlink(missing_ok=True)
        node.clean()
        assert wait_clean(node.root) == []
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(node):
    """Take every free block of the node's filesystem."""
    with open(node.root.parent / "filler", "ab") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    assert os.statvfs(node.root).f_bavail == 0


def test_a_full_disk_refuses_creates_and_still_stops_and_removes(small):
    small.ok("container", "run", "-d", "--name", "svc", "bb", "sleep", "300")
    small.ok("container", "create", "--name", "old", "bb", "true")
    assert (small.root / ".reserve").stat().st_size == 1 << 20  # held back while there was room
    fill(small)
    before, entries = small.state_files(), sorted(os.listdir(small.root / "containers"))
    reply = small.call("container", "create", "--name", "more", "bb", "true")
    assert not reply["ok"] and reply["error"]["code"] == "no_space", reply
    assert reply["error"]["message"] == (
        f"the filesystem is full at {small.root}: remove what is unused (stopped containers, images), "
        "or give it more room"
    )
    assert small.state_files() == before and sorted(os.listdir(small.root / "containers")) == entries
    small.ok("container", "stop", "--time", "0", "svc")  # its row still records the stop: the reserve's room
    assert not (small.root / ".reserve").exists()
    small.ok("container", "rm", "old")
    small.ok("container", "rm", "svc")
    assert small.ok("container", "list", "--all") == []
    (small.root.parent / "filler").unlink()
    assert small.call("check")["exit"] == 0
    assert (small.root / ".reserve").stat().st_size == 1 << 20  # held back again


def test_check_warns_before_the_disk_is_full(small):
    report = small.ok("check")
    assert "low_space" not in report and report["space"]["size"] == 40 << 20
    with open(small.root.parent / "filler", "wb") as handle:
        handle.write(b"\0" * (report["space"]["free"] - (2 << 20)))  # 2 MiB left: 5%
    report = small.ok("check")
    assert report["low_space"].startswith(f"{small.root} has 2M free of 40M (5%): remove what is unused")
    assert small.cli("check").stdout == f"low space: {report['low_space']}\n"
    assert small.call("check")["exit"] == 0  # a warning, not a failure


def test_check_repairs_on_a_full_disk_without_its_reserve(small):
    """An interrupted create left a row and a disk copy: repair frees the copy before it rewrites the table."""
    env = dict(small.env, BALEINE_FAULT="create:copied")
    killed = subprocess.run(small.argv("container", "create", "--name", "half", "bb", "true"), env=env)
    assert killed.returncode == -9
    (small.root / ".reserve").unlink()
    fill(small)
    report = small.ok("check")
    assert report["repaired"] == ["removed half: its create was interrupted"]
    assert small.ok("container", "list", "--all") == [] and os.listdir(small.root / "containers") == []
