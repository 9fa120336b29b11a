"""`baleine info`: what this host offers baleine, and what baleine holds on it.

For people (is this host ready? what does it run?) and for bug reports: the
kernel, the cgroup layout, the state root's filesystem and whether it shares
blocks between copies (reflink), the seccomp filter, the static init, the
cron entry, and how many images, networks, volumes and containers there are.
"""

import os
import sys

from . import state


def summary():
    from . import VERSION, cgroups, containers, cron, logins, volumes

    state.ensure_layout()  # a host nothing was done on yet: its root, as the first command would make it
    system = os.uname()
    rows = containers.reconcile(state.CONTAINERS.read())
    space = os.statvfs(state.root())
    schedule = cron.status()
    return {
        "version": VERSION,
        "python": ".".join(map(str, sys.version_info[:3])),
        "kernel": system.release,
        "arch": system.machine,
        "cgroups": cgroup_layout(cgroups.hierarchies()),
        "cgroup_parent": cgroups.parent_name(),
        "root": state.root(),
        "filesystem": filesystem_of(state.root()),
        "reflink": shares_blocks(state.root()),
        "seccomp": _seccomp_ready(),
        "init": _static_init(),
        "cron": {"installed": schedule["installed"], "every": schedule["every"]},
        "containers": _count_containers(rows),
        "images": len(state.IMAGES.read()),
        "networks": len(state.NETWORKS.read()),
        "volumes": len(volumes.list_all()),
        "logins": logins.listed(),
        "free": space.f_bavail * space.f_frsize,
        "size": space.f_blocks * space.f_frsize,
    }


def cgroup_layout(hierarchies):
    """'v2' (unified only), 'v1' (legacy only), 'hybrid' (both), or 'none'."""
    versions = {version for _mount, version, controllers in hierarchies if version == 2 or controllers}
    return {frozenset({2}): "v2", frozenset({1}): "v1", frozenset({1, 2}): "hybrid"}.get(frozenset(versions), "none")


def filesystem_of(path, mountinfo="/proc/self/mountinfo"):
    """The type of the filesystem path lives on (the deepest mount point above it)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    with open(mountinfo, encoding="utf-8") as handle:
        for line in handle:
            before, _, after = line.partition(" - ")
            point = before.split()[4].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, after.split()[0]
    return kind


def shares_blocks(directory):
    """Whether copies made here can share their blocks (FICLONE): container disks then cost nothing at first."""
    import fcntl

    from .images import FICLONE

    source = os.path.join(directory, f".info-probe-{os.getpid()}")
    copy = source + ".copy"
    try:
        with open(source, "wb") as handle:
            handle.write(b"\0" * 4096)
        with open(source, "rb") as original, open(copy, "wb") as clone:
            fcntl.ioctl(clone, FICLONE, original.fileno())
        return True
    except OSError:
        return False  # EOPNOTSUPP, EXDEV, EINVAL: not here (or no room to try)
    finally:
        for path in (source, copy):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _seccomp_ready():
    from . import seccomp

    try:
        seccomp.check_supported()
        return True
    except seccomp.Unsupported:
        return False


def _static_init():
    from . import containers
    from .errors import Missing

    try:
        return containers.static_init()
    except Missing:
        return None


def _count_containers(rows):
    from . import containers

    counts = {"total": len(rows), "running": 0, "paused": 0, "created": 0, "exited": 0}
    for row in rows:
        if containers.paused(row):
            counts["paused"] += 1
        elif row["status"] in counts:
            counts[row["status"]] += 1
    return counts
