"""container diff's comparison of two trees, on plain directories (the mounting is tested in test_commit)."""

import os
import shutil
import subprocess

import pytest

from fleet.node import changes


@pytest.fixture
def trees(tmp_path):
    """base: an image's files; top: a copy with every metadata kept, as a disk copy starts."""
    base, top = tmp_path / "base", tmp_path / "top"
    (base / "etc" / "old").mkdir(parents=True)
    (base / "etc" / "conf").write_text("a=1\n")
    (base / "etc" / "old" / "file").write_text("x")
    (base / "bin").mkdir()
    (base / "bin" / "tool").write_text("#!/bin/sh\n")
    (base / "bin" / "alias").symlink_to("tool")
    (base / "gone").write_text("bye")
    (base / "lost+found").mkdir()
    subprocess.run(["cp", "-a", str(base), str(top)], check=True)
    return base, top


def test_an_untouched_copy_has_no_change(trees):
    assert changes.compare(*trees) == []


def test_added_changed_and_deleted(trees):
    base, top = trees
    (top / "etc" / "conf").write_text("a=2, longer\n")
    (top / "etc" / "new.d").mkdir()
    (top / "etc" / "new.d" / "one").write_text("1")
    shutil.rmtree(top / "etc" / "old")
    (top / "gone").unlink()
    os.chmod(top / "bin" / "tool", 0o755)
    (top / "bin" / "alias").unlink()
    (top / "bin" / "alias").symlink_to("other")
    (top / "lost+found" / "ignored").write_text("")  # mkfs's directory is not the image's
    assert changes.compare(base, top) == [
        ("C", "/bin"), ("C", "/bin/alias"), ("C", "/bin/tool"), ("C", "/etc"), ("C", "/etc/conf"),
        ("A", "/etc/new.d"), ("A", "/etc/new.d/one"), ("D", "/etc/old"), ("D", "/gone"),
    ]  # fmt: skip


def test_a_link_retargeted_with_its_times_kept_is_a_change(trees):
    base, top = trees
    times = os.lstat(base / "bin" / "alias")
    (top / "bin" / "alias").unlink()
    (top / "bin" / "alias").symlink_to("tooo")  # as long as "tool": only the target tells
    os.utime(top / "bin" / "alias", ns=(times.st_atime_ns, times.st_mtime_ns), follow_symlinks=False)
    os.utime(top / "bin", ns=(os.stat(base / "bin").st_atime_ns, os.stat(base / "bin").st_mtime_ns))
    assert changes.compare(base, top) == [("C", "/bin/alias")]


def test_a_file_that_became_a_directory(trees):
    base, top = trees
    (top / "etc" / "conf").unlink()
    (top / "etc" / "conf").mkdir()
    (top / "etc" / "conf" / "main").write_text("")
    assert changes.compare(base, top)[1:] == [("C", "/etc/conf"), ("A", "/etc/conf/main")]


def test_owners_are_compared_shifted_back_under_userns(trees):
    base, top = trees
    for directory, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(directory, name))
            os.chown(os.path.join(directory, name), info.st_uid + 100000, info.st_gid + 100000, follow_symlinks=False)
    assert changes.compare(base, top, shift=100000) == []
    assert ("C", "/etc/conf") in changes.compare(base, top)
