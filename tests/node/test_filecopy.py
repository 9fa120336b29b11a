"""`container cp`, for real, with a container that tries to lead the copy out of its root."""

import fcntl
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def box(busybox):
    busybox.ok("container", "run", "-d", "--name", "box", "bb", "sleep", "300")
    return busybox


def test_files_and_trees_both_ways(box, tmp_path):
    (tmp_path / "h.txt").write_text("hello\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    (tree / "link").symlink_to("/etc/hostname")
    assert box.ok("container", "cp", str(tmp_path / "h.txt"), "box:/tmp")["to"] == "/tmp/h.txt"  # into a directory
    box.ok("container", "cp", str(tree), "box:/srv")  # as a new name
    assert (
        box.exec_out("box", "sh", "-c", "cat /tmp/h.txt /srv/sub/f; readlink /srv/link")
        == "hello\ndeep\n/etc/hostname\n"
    )
    assert box.exec_out("box", "stat", "-c", "%u:%g", "/srv/sub/f") == "0:0\n"  # the container's root owns it

    out = tmp_path / "out"
    out.mkdir()
    box.ok("container", "cp", "box:/srv", str(out / "copy"))
    assert (out / "copy" / "sub" / "f").read_text() == "deep\n" and os.readlink(
        out / "copy" / "link"
    ) == "/etc/hostname"
    box.ok("container", "cp", "box:/etc/hostname", str(out))
    assert (out / "hostname").read_text() == "box\n"
    (out / "hostname").write_text("old\n")
    box.ok("container", "cp", "box:/etc/hostname", str(out / "hostname"))  # a file replaces a file
    assert (out / "hostname").read_text() == "box\n"
    reply = box.call("container", "cp", "box:/srv", str(out / "hostname"))
    assert not reply["ok"] and "already exists" in reply["error"]["message"]
    assert sorted(os.listdir(out)) == ["copy", "hostname"]  # no temporary directory left


def test_a_container_cannot_lead_a_copy_out_of_its_root(box, tmp_path):
    box.exec_out("box", "sh", "-c", "ln -s / /escape && cp /bin/busybox /suid && chmod 4755 /suid && mkfifo /fifo")
    host_file = tmp_path / "planted"
    (tmp_path / "x").write_text("x\n")
    reply = box.call("container", "cp", str(tmp_path / "x"), f"box:/escape{tmp_path}/planted")
    assert reply["error"]["code"] == "not_found" and not host_file.exists()  # /escape is the container's / only
    box.exec_out("box", "mkdir", "-p", str(tmp_path))
    box.ok("container", "cp", str(tmp_path / "x"), f"box:/escape{tmp_path}/planted")
    assert not host_file.exists() and box.exec_out("box", "cat", f"{tmp_path}/planted") == "x\n"
    box.ok("container", "cp", "box:/escape/etc/hostname", str(tmp_path / "name"))
    assert (tmp_path / "name").read_text() == "box\n"  # the container's file, not the host's
    box.ok("container", "cp", "box:/suid", str(tmp_path / "suid"))
    mode = (tmp_path / "suid").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & stat.S_IXUSR  # no setuid program planted on the host


def test_cp_errors_are_one_line(box, tmp_path):
    tmp_path = tmp_path / "work"  # beside the node's state root
    tmp_path.mkdir()
    box.ok("container", "create", "--name", "idle", "bb", "true")
    cases = [
        (("box:/nope", str(tmp_path)), "not_found", "no such file or directory in the container: '/nope'"),
        ((str(tmp_path / "none"), "box:/tmp"), "not_found", "no such file or directory on this host"),
        (("box:/etc/hostname", str(tmp_path / "no" / "dir")), "not_found", "no such directory"),
        ((str(tmp_path), str(tmp_path)), "invalid", "give exactly one side as CONTAINER:/PATH"),
        (("box:relative", str(tmp_path)), "invalid", "use an absolute path"),
        (("ghost:/etc/hostname", str(tmp_path)), "not_found", "no such container 'ghost'"),
    ]
    for args, code, message in cases:
        reply = box.call("container", "cp", *args)
        assert (reply["ok"], reply["error"]["code"]) == (False, code), (args, reply)
        assert message in reply["error"]["message"] and "\n" not in reply["error"]["message"], (args, reply)
    assert os.listdir(tmp_path) == []


def test_a_device_node_or_a_pipe_is_never_replaced_by_a_copy_or_an_export(box, tmp_path):
    """A copy or an export replaces what it lands on: /dev/null would have become a plain file."""
    tmp_path = tmp_path / "work"  # beside the node's state root
    tmp_path.mkdir()
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "f").write_text("f\n")
    for args, status, message in [
        (("container", "cp", "box:/etc/hostname", str(null)), 2, f"'{null}' is a character device: a copy replaces"),
        (("container", "cp", "box:/etc/hostname", str(tmp_path / "fifo")), 2, "is a pipe: a copy replaces a file"),
        # said by the side inside the container: the copy reports it as the same kind of error
        (("container", "cp", str(tmp_path / "f"), "box:/dev/null"), 2, "'/dev/null' is a character device: a copy"),
        (("container", "export", "box", str(null)), 2, f"cannot write {null}: it is a character device, not a file"),
        (("image", "export", "bb", str(tmp_path / "fifo")), 2, "a pipe, not a file; give a file's path, or - for st"),
    ]:
        done = box.cli(*args)
        assert done.returncode == status and message in done.stderr and done.stderr.count("\n") == 1, (args, done)
    link = tmp_path / "out.tar"
    link.symlink_to(null)  # followed, and what it names is said
    done = box.cli("container", "export", "box", str(link))
    assert done.stderr == f"baleine: error: cannot write {link} ({null}): it is a character device, not a file; " \
                          "give a file's path, or - for standard output\n"  # fmt: skip
    assert stat.S_ISCHR(null.stat().st_mode) and stat.S_ISFIFO((tmp_path / "fifo").stat().st_mode)
    assert box.exec_out("box", "stat", "-c", "%F", "/dev/null") == "character special file\n"
    assert sorted(os.listdir(tmp_path)) == ["f", "fifo", "null", "out.tar"]  # no temporary file left


def test_files_copied_into_a_userns_container_belong_to_its_root(busybox, tmp_path):
    busybox.ok("container", "run", "-d", "--name", "shifted", "--userns", "bb", "sleep", "300")
    (tmp_path / "f").write_text("mine\n")
    busybox.ok("container", "cp", str(tmp_path / "f"), "shifted:/tmp/f")
    assert busybox.exec_out("shifted", "sh", "-c", "stat -c %u:%g /tmp/f; echo more >> /tmp/f; cat /tmp/f") == (
        "0:0\nmine\nmore\n"
    )


def _disk(node, name):
    return node.root / "containers" / node.ok("container", "inspect", name)["id"] / "disk.ext4"


def _loops_on(disk):
    """Loop devices backed by disk (what a copy must not leave attached)."""
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().strip().removesuffix(" (deleted)") == str(disk):
                found.append(backing.parent.parent.name)
        except FileNotFoundError:
            pass  # detached meanwhile
    return found


def _mounts():
    return Path("/proc/self/mountinfo").read_text()


def test_copies_into_and_out_of_a_container_that_is_not_running(busybox, tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    (tmp_path / "site.conf").write_text("listen 80\n")
    busybox.ok("container", "run", "-d", "--name", "warm", "bb", "sleep", "60")
    assert _loops_on(_disk(busybox, "warm")) != []  # what _loops_on sees while a disk is mounted
    busybox.ok("container", "create", "--name", "cold", "--volume", f"{volume}:/data", "bb", "cat", "/etc/site.conf")
    disk, mounts = _disk(busybox, "cold"), _mounts()
    landed = busybox.ok("container", "cp", str(tmp_path / "site.conf"), "cold:/etc/site.conf")  # never started
    assert landed["to"] == "/etc/site.conf" and _loops_on(disk) == [] and _mounts() == mounts
    busybox.ok("container", "cp", str(tmp_path / "site.conf"), "cold:/data/")  # the volume, as the container sees it
    assert (volume / "site.conf").read_text() == "listen 80\n" and (volume / "site.conf").stat().st_uid == 0
    busybox.ok("container", "start", "cold")
    assert busybox.ok("container", "wait", "cold")["exit_code"] == 0
    assert busybox.ok("container", "logs", "cold")["lines"] == ["listen 80"]  # the start found it on its disk

    busybox.ok("container", "cp", "cold:/etc/hostname", str(tmp_path / "name"))  # exited: its /etc files are there
    assert (tmp_path / "name").read_text() == "cold\n"
    busybox.ok("container", "cp", "cold:/etc/site.conf", str(tmp_path / "back"))
    assert (tmp_path / "back").read_text() == "listen 80\n" and _loops_on(disk) == [] and _mounts() == mounts


def test_a_stopped_container_cannot_lead_a_copy_out_of_its_root(busybox, tmp_path):
    busybox.ok("container", "run", "--name", "trap", "bb", "sh", "-c", "ln -s / /escape && ln -s /etc /etc-link")
    (tmp_path / "x").write_text("x\n")
    reply = busybox.call("container", "cp", str(tmp_path / "x"), f"trap:/escape{tmp_path}/planted")
    assert reply["error"]["code"] == "not_found" and not (tmp_path / "planted").exists()
    busybox.ok("container", "cp", "trap:/escape/etc-link/hostname", str(tmp_path / "name"))
    assert (tmp_path / "name").read_text() == "trap\n"  # the container's /etc, not the host's


def test_a_read_only_container_stays_read_only_to_cp(busybox, tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    (tmp_path / "f").write_text("f\n")
    busybox.ok("container", "create", "--name", "ro", "--read-only", "--volume", f"{volume}:/in:ro", "bb", "true")
    for destination in ("ro:/tmp/f", "ro:/in/f"):
        reply = busybox.call("container", "cp", str(tmp_path / "f"), destination)
        assert not reply["ok"] and "Read-only file system" in reply["error"]["message"], (destination, reply)
    assert os.listdir(volume) == []


@contextmanager
def _holding(disk, how):
    """Hold a container's disk as a copy (LOCK_EX) or a commit (LOCK_SH) in progress would."""
    fd = os.open(disk, os.O_RDONLY)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)


def test_nothing_starts_removes_or_copies_a_disk_a_copy_is_using(busybox, tmp_path):
    busybox.ok("container", "create", "--name", "idle", "bb", "true")
    disk, rows = _disk(busybox, "idle"), (busybox.root / "containers.csv").read_bytes()
    (tmp_path / "f").write_text("f\n")
    refused = (("start", "idle"), ("rm", "idle"), ("commit", "idle", "snap"), ("cp", str(tmp_path / "f"), "idle:/f"))
    with _holding(disk, fcntl.LOCK_EX):  # a cp
        for args in refused:
            reply = busybox.call("container", *args)
            assert (reply["ok"], reply["error"]["code"]) == (False, "conflict"), (args, reply)
            assert "is busy: a `container cp` or `container commit` is using its disk" in reply["error"]["message"]
    assert (busybox.root / "containers.csv").read_bytes() == rows and disk.exists()
    with _holding(disk, fcntl.LOCK_SH):  # a commit: another commit may read along, a copy may not write
        assert busybox.call("container", "cp", str(tmp_path / "f"), "idle:/f")["error"]["code"] == "conflict"
        busybox.ok("container", "commit", "idle", "snap")
    busybox.ok("container", "cp", str(tmp_path / "f"), "idle:/f")
    busybox.ok("container", "rm", "idle")
