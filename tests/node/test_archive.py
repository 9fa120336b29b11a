"""Extraction of root-filesystem tarballs that may be hostile."""

import os
import stat
import tarfile

import pytest
from tarfiles import add_entries

from fleet.node import archive
from fleet.node.errors import Invalid


def make_tar(path, entries):
    """entries: (name, kind, extra) with kind file|dir|sym|hard|chr|fifo."""
    with tarfile.open(path, "w") as tar:
        add_entries(tar, entries, file_mode=0o640, dir_mode=0o750, owner=(1234, 5678))
    return path


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "dest"
    path.mkdir()
    return path


def test_regular_tree_keeps_owner_mode_and_links(tmp_path, dest):
    tar = make_tar(tmp_path / "a.tar", [
        ("./etc", "dir", None), ("etc/motd", "file", "hi\n"), ("bin/sh", "sym", "busybox"),
        ("etc/motd2", "hard", "etc/motd"), ("run/fifo", "fifo", None),
    ])  # fmt: skip
    archive.extract_rootfs(str(tar), str(dest))
    motd = dest / "etc/motd"
    assert motd.read_text() == "hi\n"
    assert stat.S_IMODE(motd.stat().st_mode) == 0o640
    assert (motd.stat().st_uid, motd.stat().st_gid) == (1234, 5678)
    assert stat.S_IMODE((dest / "etc").stat().st_mode) == 0o750
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert (dest / "etc/motd2").stat().st_ino == motd.stat().st_ino
    assert stat.S_ISFIFO((dest / "run/fifo").lstat().st_mode)


def test_later_entry_replaces_earlier(tmp_path, dest):
    tar = make_tar(tmp_path / "a.tar", [("x", "file", "one"), ("x", "sym", "target"), ("y", "dir", None),
                                        ("y", "file", "now a file")])  # fmt: skip
    archive.extract_rootfs(str(tar), str(dest))
    assert os.readlink(dest / "x") == "target"
    assert (dest / "y").read_text() == "now a file"


def test_device_nodes_are_not_created(tmp_path, dest):
    tar = make_tar(tmp_path / "a.tar", [("dev/null", "chr", None), ("ok", "file", "1")])
    assert archive.extract_rootfs(str(tar), str(dest)) == 1
    assert not (dest / "dev/null").exists() and (dest / "ok").exists()


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([("../escape", "file", "x")], "'..'"),
        ([("a/../../escape", "file", "x")], "'..'"),
        ([("/abs", "file", "x")], "absolute"),
        ([("link", "sym", "/"), ("link/escape", "file", "x")], "not a directory"),
        # A directory entries went into, replaced by a symlink: the next entry must not go through it.
        ([("d", "dir", None), ("d/x", "file", "x"), ("d", "sym", "/"), ("d/escape", "file", "x")], "not a directory"),
        ([("d/e", "dir", None), ("d/e/x", "file", "x"), ("d", "sym", "/"), ("d/e/y", "file", "x")], "not a direct"),
        ([("link", "sym", "../.."), ("link/escape", "file", "x")], "not a directory"),
        ([("evil", "hard", "../outside")], "'..'"),
        ([("evil", "hard", "/etc/passwd")], "absolute"),
        ([("link", "sym", "/etc"), ("evil", "hard", "link/passwd")], "not a directory"),
        ([("evil", "hard", "missing")], "not in the image"),
    ],
)
def test_hostile_entries_are_refused_and_nothing_escapes(tmp_path, dest, entries, reason):
    outside = tmp_path / "outside"
    outside.write_text("untouched")
    tar = make_tar(tmp_path / "evil.tar", entries)
    with pytest.raises(Invalid, match=reason):
        archive.extract_rootfs(str(tar), str(dest))
    assert outside.read_text() == "untouched"
    assert not (tmp_path / "escape").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "evil.tar", "outside"]


@pytest.mark.parametrize(
    "layers",
    [
        [[("d", "dir", None), ("d/x", "file", "x")], [(".wh.d", "file", ""), ("d/z", "file", "z")]],
        [[("d/x", "file", "x")], [(".wh..wh..opq", "file", "")], [("d/z", "file", "z")]],  # opaque root
    ],
)
def test_a_directory_whited_out_then_filled_again_keeps_the_new_entries(tmp_path, dest, layers):
    """A later layer removes d and the next puts d/z back (no entry for d itself): z lands in a new d."""
    tree = archive.Tree(str(dest))
    try:
        for index, entries in enumerate(layers):
            with tarfile.open(make_tar(tmp_path / f"{index}.tar", entries), "r|") as layer:
                archive.apply_layer(tree, layer)
    finally:
        tree.close()
    assert sorted(os.listdir(dest / "d")) == ["z"]


def test_gzip_and_garbage(tmp_path, dest):
    plain = make_tar(tmp_path / "a.tar", [("f", "file", "x")])
    gz = tmp_path / "a.tar.gz"
    import gzip

    gz.write_bytes(gzip.compress(plain.read_bytes()))
    archive.extract_rootfs(str(gz), str(dest))
    assert (dest / "f").read_text() == "x"
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(Invalid) as refused:
        archive.extract_rootfs(str(junk), str(dest))
    assert str(refused.value) == f"cannot read {junk} as a root filesystem: not a tar file (plain, gzip, bzip2 or xz)"
