"""`container cp`, for real, with a container that tries to lead the copy out of its root."""

import os
import stat

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
        (("idle:/etc/hostname", str(tmp_path)), "conflict", "is not running"),
        (("ghost:/etc/hostname", str(tmp_path)), "not_found", "no such container 'ghost'"),
    ]
    for args, code, message in cases:
        reply = box.call("container", "cp", *args)
        assert (reply["ok"], reply["error"]["code"]) == (False, code), (args, reply)
        assert message in reply["error"]["message"] and "\n" not in reply["error"]["message"], (args, reply)
    assert os.listdir(tmp_path) == []


def test_files_copied_into_a_userns_container_belong_to_its_root(busybox, tmp_path):
    busybox.ok("container", "run", "-d", "--name", "shifted", "--userns", "bb", "sleep", "300")
    (tmp_path / "f").write_text("mine\n")
    busybox.ok("container", "cp", str(tmp_path / "f"), "shifted:/tmp/f")
    assert busybox.exec_out("shifted", "sh", "-c", "stat -c %u:%g /tmp/f; echo more >> /tmp/f; cat /tmp/f") == (
        "0:0\nmine\nmore\n"
    )
