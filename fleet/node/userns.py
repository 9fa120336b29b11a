"""--userns: root in the container is an unprivileged id range on the host.

Each such container gets 65536 host ids of its own, starting at
BASE + k * 65536 (the lowest free slot k); container id u is host id start + u.
Files are shifted by chown when the disk is copied (chosen over idmapped
mounts: it works on every kernel and filesystem baleine supports); chown
clears setuid bits and file capabilities, so setuid bits are put back and
file capabilities are lost (documented).

The container's other namespaces stay owned by the host's user namespace:
root inside holds its capabilities only over its own user namespace, so it
cannot reconfigure its network or mount anything. Its network namespace lets
any user bind low ports (ip_unprivileged_port_start = 0), so a server can
still listen on port 80.
"""

import os
import stat

BASE = 1_000_000_000  # far above the ids of real users and of /etc/subuid ranges
SIZE = 65536


def allocate(taken):
    """The start of the lowest free range, given the starts already in use."""
    slot = 0
    while BASE + slot * SIZE in taken:
        slot += 1
    return BASE + slot * SIZE


def shift_disk(disk, start):
    """Add start to every owner on the ext4 disk file."""
    from . import images

    mount_point = os.path.join(os.path.dirname(disk), "rootfs")
    images.with_mounted(disk, mount_point, lambda root: shift_tree(root, start), "give the disk its id range")


def shift_tree(root, start):
    """lchown everything under root (root included) by start, keeping setuid/setgid bits."""
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            _shift(os.path.join(directory, name), start)
    _shift(root, start)


def _shift(path, start):
    info = os.lstat(path)
    if info.st_uid >= SIZE or info.st_gid >= SIZE:
        return  # already shifted, or an id no container can map
    os.lchown(path, start + info.st_uid, start + info.st_gid)
    if not stat.S_ISLNK(info.st_mode) and info.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(info.st_mode))  # chown cleared them


def write_maps(pid, start):
    """Map container ids 0..65535 to start.. in process pid's (new) user namespace."""
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as handle:
            handle.write(f"0 {start} {SIZE}\n")
