"""`baleine info`: the host's kernel, cgroups, filesystem, seccomp, init, cron, and what baleine holds."""

import os
import subprocess

import pytest

from fleet.node import info

pytestmark = pytest.mark.integration


def test_info_tells_what_the_host_offers_and_what_runs(busybox, tmp_path):
    busybox.env["BALEINE_CRON_FILE"] = str(tmp_path / "cron-baleine")
    busybox.ok("cron", "install", "--every", "5")
    busybox.ok("container", "create", "--name", "idle", "bb", "true")
    busybox.ok("container", "run", "-d", "--name", "up", "bb", "sleep", "300")
    busybox.ok("container", "run", "-d", "--name", "frozen", "bb", "sleep", "300")
    busybox.ok("container", "pause", "frozen")
    busybox.ok("volume", "create", "data")

    found = busybox.ok("info")
    assert found["containers"] == {"total": 3, "running": 1, "paused": 1, "created": 1, "exited": 0}
    assert (found["images"], found["networks"], found["volumes"]) == (1, 0, 1)
    assert (found["kernel"], found["arch"]) == (os.uname().release, os.uname().machine)
    fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(busybox.root)], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert found["filesystem"] == fstype
    if fstype in ("ext4", "tmpfs"):
        assert found["reflink"] is False  # neither can share blocks between files
    kinds = subprocess.run(["findmnt", "-n", "-l", "-o", "FSTYPE", "-t", "cgroup,cgroup2"], capture_output=True,
                           text=True).stdout.split()  # fmt: skip
    assert found["cgroups"] == {("cgroup", "cgroup2"): "hybrid", ("cgroup2",): "v2", ("cgroup",): "v1"}[
        tuple(sorted(set(kinds)))]  # fmt: skip
    assert found["seccomp"] is (os.uname().machine in ("x86_64", "aarch64", "riscv64"))
    assert found["init"] and os.path.basename(found["init"]) in ("tini-static", "catatonit")
    assert found["cron"] == {"installed": True, "every": 5}
    assert [name for name in os.listdir(busybox.root) if "probe" in name] == []  # the reflink probe's files went

    lines = busybox.cli("info").stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "version",
        "kernel",
        "cgroups",
        "state",
        "free",
        "seccomp",
        "init",
        "cron",
        "containers",
        "images",
        "networks",
        "volumes",
        "logins",
    ]
    assert "containers: 3: 1 running, 1 paused, 1 created, 0 exited" in lines
    assert "logins:     none (baleine login)" in lines and found["logins"] == []
    busybox.ok("container", "unpause", "frozen")


def test_a_fresh_state_root_is_described_too(node):
    """A host nothing was done on yet: info and df answer (the fleet asks them of every host)."""
    assert node.ok("info")["containers"]["total"] == 0
    assert node.ok("df")["containers"] == {"count": 0, "bytes": 0, "reclaimable": 0}


def test_cgroup_layouts_and_the_filesystem_under_a_path(tmp_path):
    v1, v2 = ("/sys/fs/cgroup/memory", 1, frozenset({"memory"})), ("/sys/fs/cgroup/unified", 2, frozenset())
    assert [info.cgroup_layout(layout) for layout in ([v2], [v1], [v1, v2], [])] == ["v2", "v1", "hybrid", "none"]
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "30 22 0:25 / /var/lib/baleine rw shared:9 - xfs /dev/sdb1 rw\n"
        "31 22 0:26 / /var/lib/baleine2 rw shared:9 - btrfs /dev/sdc1 rw\n"
    )
    assert info.filesystem_of("/var/lib/baleine/images", str(mountinfo)) == "xfs"
    assert info.filesystem_of("/var/lib/baleine2", str(mountinfo)) == "btrfs"
    assert info.filesystem_of("/var/lib/baleineX", str(mountinfo)) == "ext4"  # a longer name is not below it
