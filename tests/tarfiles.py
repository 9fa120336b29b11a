"""Tar archives the tests build themselves: layers from short entry lists, archives from files."""

import io
import tarfile


def add_entries(tar, entries, file_mode=0o644, dir_mode=0o755, owner=(0, 0)):
    """Add (name, kind, extra) entries: kind file|dir|sym|hard|chr|fifo; extra is text or a link target."""
    for name, kind, extra in entries:
        info = tarfile.TarInfo(name)
        data = None
        if kind == "file":
            data = extra.encode()
            info.size, info.mode = len(data), file_mode
            info.uid, info.gid = owner
        elif kind == "dir":
            info.type, info.mode = tarfile.DIRTYPE, dir_mode
        elif kind == "sym":
            info.type, info.linkname = tarfile.SYMTYPE, extra
        elif kind == "hard":
            info.type, info.linkname = tarfile.LNKTYPE, extra
        elif kind == "chr":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "fifo":
            info.type = tarfile.FIFOTYPE
        tar.addfile(info, io.BytesIO(data) if data is not None else None)


def layer_bytes(entries):
    """A layer (a plain tar) of those entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        add_entries(tar, entries)
    return buffer.getvalue()


def write_files(path, files):
    """A tar at path holding files ({name: bytes}), in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
