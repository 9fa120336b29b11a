import errno
import io
import os
import time

import pytest

from fleet.node import cgroups

HYBRID = """\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:6 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:7 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:8 - cgroup cgroup rw,memory
35 30 0:30 / /mnt/again rw,nosuid shared:8 - cgroup cgroup rw,memory
"""
PURE_V2 = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def test_hybrid_layout_lists_each_hierarchy_once(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(HYBRID)
    found = cgroups.hierarchies(str(info))
    assert [(mount, version) for mount, version, _ in found] == [
        ("/sys/fs/cgroup/unified", 2),
        ("/sys/fs/cgroup/systemd", 1),
        ("/sys/fs/cgroup/cpu,cpuacct", 1),
        ("/sys/fs/cgroup/memory", 1),
    ]
    assert found[2][2] == {"cpu", "cpuacct"}


def test_pure_v2(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(PURE_V2)
    assert cgroups.hierarchies(str(info)) == [("/sys/fs/cgroup", 2, frozenset())]


def test_paths_use_the_parent(monkeypatch):
    monkeypatch.setenv("BALEINE_CGROUP_PARENT", "tests-x")
    group = cgroups.Cgroup("abc", layout=[("/cg/memory", 1, {"memory"}), ("/cg/unified", 2, set())])
    assert group.paths() == ["/cg/memory/tests-x/abc", "/cg/unified/tests-x/abc"]


def test_v1_cpuset_children_inherit_cpus_and_mems(tmp_path):
    """A fake cpuset tree: the kernel would refuse tasks in a child with empty cpuset.cpus."""
    mount = tmp_path / "cpuset"
    mount.mkdir()
    (mount / "cpuset.cpus").write_text("0-3\n")
    (mount / "cpuset.mems").write_text("0\n")

    def mkdir_like_the_kernel(path):
        path.mkdir(parents=True)
        (path / "cpuset.cpus").write_text("")
        (path / "cpuset.mems").write_text("")

    mkdir_like_the_kernel(mount / "baleine")
    mkdir_like_the_kernel(mount / "baleine" / "c1")
    group = cgroups.Cgroup("c1", parent="baleine", layout=[(str(mount), 1, frozenset({"cpuset"}))])
    group.create()
    assert (mount / "baleine" / "c1" / "cpuset.cpus").read_text() == "0-3"
    assert (mount / "baleine" / "cpuset.mems").read_text() == "0"


def test_v1_cpuset_is_filled_at_every_level_of_a_nested_parent(tmp_path):
    """Lab nodes use parents like baleine-lab/node1: the middle level must be filled in too."""
    mount = tmp_path / "cpuset"
    mount.mkdir()
    (mount / "cpuset.cpus").write_text("0-1\n")
    (mount / "cpuset.mems").write_text("0\n")
    for level in ("lab", "lab/node1", "lab/node1/c1"):
        (mount / level).mkdir()
        (mount / level / "cpuset.cpus").write_text("")
        (mount / level / "cpuset.mems").write_text("")
    group = cgroups.Cgroup("c1", parent="lab/node1", layout=[(str(mount), 1, frozenset({"cpuset"}))])
    group.create()
    for level in ("lab", "lab/node1", "lab/node1/c1"):
        assert (mount / level / "cpuset.cpus").read_text() == "0-1", level


def test_primer_moves_a_child_into_its_own_cgroup_until_stopped(tmp_path):
    """The primer writes its own pid into the cgroup it already is in (here a fake tree), again and again."""
    with open("/proc/self/cgroup") as handle:
        own = next(line.split(":", 2)[2].strip() for line in handle if line.startswith("0::"))
    procs = tmp_path / own.lstrip("/") / "cgroup.procs"
    procs.parent.mkdir(parents=True, exist_ok=True)
    primer = cgroups.Primer([(str(tmp_path), 2, frozenset())])
    deadline = time.monotonic() + 10

    def written():  # the file exists (empty) between the primer's open and its write: wait for the pid
        while not (procs.exists() and procs.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        return procs.read_text() if procs.exists() else ""

    written()
    procs.unlink()  # it keeps writing while it runs
    assert written() == str(primer.pid)
    primer.stop()
    with pytest.raises(ChildProcessError):
        os.waitpid(primer.pid, os.WNOHANG)  # stop() reaped it
    primer.stop()  # twice is harmless


def test_create_survives_another_container_removing_the_empty_parent(tmp_path, monkeypatch):
    """rm of the last container removes the parent; a create at that moment must try again."""
    real, calls = cgroups.os.makedirs, []

    def racing(path, exist_ok=False):
        calls.append(path)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", path)
        real(path, exist_ok=exist_ok)

    monkeypatch.setattr(cgroups.os, "makedirs", racing)
    group = cgroups.Cgroup("c1", parent="p", layout=[(str(tmp_path), 1, frozenset({"memory"}))])
    group.create()
    assert (tmp_path / "p" / "c1").is_dir() and calls.count(str(tmp_path / "p" / "c1")) == 2  # tried again


def test_kill_takes_a_cgroup_removed_meanwhile_for_empty(tmp_path, monkeypatch):
    """`check` may empty and remove a dead container's cgroup while `rm --force` kills it: ENODEV means done."""
    group = cgroups.Cgroup("c1", parent="p", layout=[(str(tmp_path), 2, frozenset({"memory"}))])
    directory = tmp_path / "p" / "c1"
    directory.mkdir(parents=True)
    (directory / "cgroup.procs").write_text("4242\n")
    (directory / "cgroup.kill").write_text("")
    real_open = open

    def removed_meanwhile(path, mode="r", *args, **kwargs):
        if str(path).endswith("cgroup.kill"):
            (directory / "cgroup.procs").unlink()  # the cgroup went, as rmdir takes its files
            raise OSError(errno.ENODEV, "No such device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(cgroups, "open", removed_meanwhile, raising=False)
    assert group.kill(timeout=2) is True


def test_a_cgroup_removed_while_its_processes_are_read_has_none(tmp_path, monkeypatch):
    """An attached run cleans up its own container as `stop` kills it: cgroup.procs, open, then answers ENODEV."""
    group = cgroups.Cgroup("c1", parent="p", layout=[(str(tmp_path), 2, frozenset({"memory"}))])
    (tmp_path / "p" / "c1").mkdir(parents=True)
    (tmp_path / "p" / "c1" / "cgroup.procs").write_text("4242\n")

    class Removed(io.StringIO):
        def __iter__(self):
            raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(cgroups, "open", lambda *_args, **_kwargs: Removed(), raising=False)
    assert group.pids() == [] and group.kill(timeout=2) is True


def test_a_cgroup_removed_while_its_freezer_is_read_is_not_frozen(tmp_path, monkeypatch):
    group = cgroups.Cgroup("c1", parent="p", layout=[(str(tmp_path), 2, frozenset({"memory"}))])
    (tmp_path / "p" / "c1").mkdir(parents=True)
    (tmp_path / "p" / "c1" / "cgroup.freeze").write_text("1\n")
    assert group.frozen() is True

    def removed(_fd, _size):
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(cgroups.os, "read", removed)
    assert group.frozen() is False
