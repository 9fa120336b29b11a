"""Fill an empty named volume with what the image holds at its mount point, as Docker does.

A volume mounted on /var/lib/mysql or /etc/nginx would otherwise hide the
image's files there. The container's init does it on each start, between
pivot_root and the volume's bind mount: the image's directory is reached
through the container's root (its symlinks cannot lead out of it) and the
volume through a descriptor opened on the host before the pivot. Only an empty
volume is filled, so what a container wrote is never overwritten.

The copy goes to a staging directory in the volume, and is moved into place
only when it is whole: a start cut short (a full disk) leaves the volume empty
to be filled again by the next start, never half filled.

Kept: contents, modes, owners (the disk's, already shifted under --userns),
times, symlinks, fifos, hard links (between files inside the copied
directory) and extended attributes, file capabilities among them (a ping's
cap_net_raw), where the volume's filesystem takes them. Not kept: device nodes
and sockets (volumes are nodev).
"""

import errno
import os
import stat

STAGING = ".baleine-filling"
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_if_empty(source):
    """A descriptor on the volume's host directory if it is empty (a cut-short fill counts), else None."""
    fd = os.open(source, DIRECTORY)
    entries = os.listdir(fd)
    if entries == [STAGING]:
        _remove_tree(fd, STAGING)
    elif entries:
        os.close(fd)
        return None
    return fd


def fill(target, volume_fd):
    """Copy the container's directory target (a path inside its root) into the empty volume, then close it."""
    try:
        try:  # a symlink at target is followed, as the volume's mount follows it (both inside the container)
            source_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing there in the image (or a file, or a symlink): the volume stays empty
        try:
            if os.listdir(source_fd):
                _fill_from(source_fd, volume_fd)
        finally:
            os.close(source_fd)
    finally:
        os.close(volume_fd)


def _fill_from(source_fd, volume_fd):
    os.mkdir(STAGING, 0o700, dir_fd=volume_fd)
    staging_fd = os.open(STAGING, DIRECTORY, dir_fd=volume_fd)
    try:
        _copy_tree(source_fd, staging_fd, _Links(staging_fd))
        for name in os.listdir(staging_fd):
            os.rename(name, name, src_dir_fd=staging_fd, dst_dir_fd=volume_fd)
    except OSError:
        os.close(staging_fd)
        _remove_tree(volume_fd, STAGING)
        raise
    os.close(staging_fd)
    os.rmdir(STAGING, dir_fd=volume_fd)
    _copy_attributes(os.fstat(source_fd), volume_fd, source_fd)  # the mount point's owner and mode too


class _Links:
    """Hard links: the staged path of each multiply linked file copied so far, by its inode."""

    def __init__(self, staging_fd):
        self.staging_fd = staging_fd
        self.first = {}  # (st_dev, st_ino) -> path inside the staging directory

    def link_if_seen(self, info, path, name, target_fd):
        """Link name to the copy of info's inode if there is one (True), else remember path as that copy."""
        if info.st_nlink < 2:
            return False
        key = (info.st_dev, info.st_ino)
        if key not in self.first:
            self.first[key] = path
            return False
        os.link(self.first[key], name, src_dir_fd=self.staging_fd, dst_dir_fd=target_fd, follow_symlinks=False)
        return True


def _copy_tree(source_fd, target_fd, links, prefix=""):
    for entry in os.scandir(source_fd):
        name, info = entry.name, entry.stat(follow_symlinks=False)
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=target_fd)
            inner_source = os.open(name, DIRECTORY, dir_fd=source_fd)
            inner_target = os.open(name, DIRECTORY, dir_fd=target_fd)
            try:
                _copy_tree(inner_source, inner_target, links, f"{prefix}{name}/")
                _copy_attributes(info, inner_target, inner_source)
            finally:
                os.close(inner_source)
                os.close(inner_target)
            continue
        if kind == stat.S_IFREG:
            if not links.link_if_seen(info, prefix + name, name, target_fd):
                _copy_file(name, info, source_fd, target_fd)
            continue
        if kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=source_fd), name, dir_fd=target_fd)
        elif kind == stat.S_IFIFO:
            os.mkfifo(name, 0o600, dir_fd=target_fd)
        else:
            continue  # device nodes and sockets: of no use on a nodev volume
        os.chown(name, info.st_uid, info.st_gid, dir_fd=target_fd, follow_symlinks=False)
        if kind != stat.S_IFLNK:
            os.chmod(name, stat.S_IMODE(info.st_mode), dir_fd=target_fd)  # after chown, which clears setuid
        os.utime(name, ns=(info.st_atime_ns, info.st_mtime_ns), dir_fd=target_fd, follow_symlinks=False)


def _copy_file(name, info, source_fd, target_fd):
    reader = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_fd)
    try:
        writer = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=target_fd)  # fmt: skip
        try:
            size = os.fstat(reader).st_size
            while size > 0:  # in the kernel: the image's disk and the volume are on different filesystems
                sent = os.sendfile(writer, reader, None, min(size, 1 << 30))
                if sent == 0:
                    break  # the file shrank meanwhile
                size -= sent
            _copy_attributes(info, writer, reader)
        finally:
            os.close(writer)
    finally:
        os.close(reader)


def _copy_attributes(info, fd, source_fd):
    os.fchown(fd, info.st_uid, info.st_gid)
    os.fchmod(fd, stat.S_IMODE(info.st_mode))  # after chown, which clears setuid bits
    _copy_xattrs(source_fd, fd)  # after chown too, which clears file capabilities
    os.utime(fd, ns=(info.st_atime_ns, info.st_mtime_ns))


# Where the volume cannot hold an attribute (no xattr support, trusted.* without
# CAP_SYS_ADMIN in the host's namespace), the copy goes on without it, as cp -a does.
_XATTR_SKIPPED = (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.EINVAL)


def _copy_xattrs(source_fd, fd):
    try:
        names = os.listxattr(source_fd)
    except OSError as error:
        if error.errno in _XATTR_SKIPPED:
            return
        raise
    for key in names:
        try:
            os.setxattr(fd, key, os.getxattr(source_fd, key))
        except OSError as error:
            if error.errno not in _XATTR_SKIPPED:
                raise


def _remove_tree(parent_fd, name):
    fd = os.open(name, DIRECTORY, dir_fd=parent_fd)
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)
