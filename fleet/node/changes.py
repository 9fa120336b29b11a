"""container diff: what a container changed in its image's files, as Docker shows it.

A: added, C: changed, D: deleted, each with its path inside the container.
A disk copy starts as a copy of the image's blocks, so a file no one touched
has the very same type, mode, owner, size, times and link target in both;
anything else is a change. An added directory lists what it holds; a deleted
one is one line. Under --userns the disk's owners are shifted: compared
shifted back. Volumes, tmpfs and baleine's /etc files are not on the disk.
"""

import os
import stat

ADDED, CHANGED, DELETED = "A", "C", "D"


def diff(ref):
    """[{"kind": A|C|D, "path"}] of container ref against its image, in path order."""
    from . import images, jsonlite
    from .commit import consistent_disk
    from .containers import read_config

    with images.build_dir("diff") as work:
        found = os.path.join(work, "changes.json")
        top, base = os.path.join(work, "container"), os.path.join(work, "image")
        os.mkdir(top)
        os.mkdir(base)
        with consistent_disk(ref, work) as (row, disk, copied):
            image_disk, image_read_only = images.readable(images.image_file(row["image"]), work)
            shift = int(read_config(row).get("userns") or 0)

            def compare_and_save():
                with open(found, "w", encoding="utf-8") as handle:
                    handle.write(jsonlite.dumps(compare(base, top, shift)))

            mounts = [(disk, top, not copied), (image_disk, base, image_read_only)]
            images.with_mounts(mounts, compare_and_save, "compare the container's files with its image's")
        with open(found, encoding="utf-8") as handle:
            return [{"kind": kind, "path": path} for kind, path in jsonlite.load(handle)]


def compare(base, top, shift=0):
    """[(kind, path)] that turn the tree at base into the tree at top, in path order.

    shift: what top's owners are above base's (the --userns range's start).
    """
    changes = []
    _compare_directory(base, top, "", shift, changes)
    return changes


def _compare_directory(base, top, relative, shift, changes):
    below, above = _entries(os.path.join(base, relative)), _entries(os.path.join(top, relative))
    for name in sorted(set(below) | set(above)):
        if not relative and name == "lost+found":
            continue  # mkfs's, not the image's
        path = os.path.join(relative, name)
        old, new = below.get(name), above.get(name)
        if new is None:
            changes.append((DELETED, "/" + path))
            continue
        if old is None or stat.S_IFMT(old.st_mode) != stat.S_IFMT(new.st_mode):
            changes.append((ADDED if old is None else CHANGED, "/" + path))
            if stat.S_ISDIR(new.st_mode):
                _all_added(os.path.join(top, path), path, changes)
            continue
        if _differs(old, new, shift) or (stat.S_ISLNK(new.st_mode) and _link(base, path) != _link(top, path)):
            changes.append((CHANGED, "/" + path))
        if stat.S_ISDIR(new.st_mode):
            _compare_directory(base, top, path, shift, changes)


def _entries(directory):
    try:
        return {entry.name: entry.stat(follow_symlinks=False) for entry in os.scandir(directory)}
    except (FileNotFoundError, NotADirectoryError):
        return {}


def _all_added(directory, relative, changes):
    for name, info in sorted(_entries(directory).items()):
        path = os.path.join(relative, name)
        changes.append((ADDED, "/" + path))
        if stat.S_ISDIR(info.st_mode):
            _all_added(os.path.join(directory, name), path, changes)


def _differs(old, new, shift):
    return (old.st_mode, old.st_uid, old.st_gid, old.st_size, old.st_mtime_ns, old.st_rdev) != (
        new.st_mode, new.st_uid - shift, new.st_gid - shift, new.st_size, new.st_mtime_ns, new.st_rdev)  # fmt: skip


def _link(root, path):
    return os.readlink(os.path.join(root, path))
