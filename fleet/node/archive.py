"""Extract tar archives into a directory as if they were hostile.

tarfile is used only to read headers and data; every file is created by
walking the destination one component at a time with O_NOFOLLOW relative to
directory file descriptors, so a symlink planted by an earlier entry can
never redirect a later one outside the tree. `..`, absolute names, hard links
that leave the tree and device nodes are refused or skipped, never followed.
"""

import os
import stat

from .errors import Invalid

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

NOT_TAR = "not a tar file (plain, gzip, bzip2 or xz)"  # tarfile.ReadError's own text is four lines


def clean_name(name):
    """Split an archive member name into safe components, or refuse it."""
    if name.startswith("/"):
        raise Invalid(f"refusing archive entry {name!r}: absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise Invalid(f"refusing archive entry {name!r}: '..' would leave the image")
    return parts


class Tree:
    """A destination directory that entries are written into, symlink-safe."""

    def __init__(self, root):
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.skipped_devices = 0

    def close(self):
        os.close(self.root_fd)

    def parent_fd(self, parts, create=True):
        """An fd of the directory holding parts[-1]; real directories only."""
        fd = os.dup(self.root_fd)
        try:
            for part in parts[:-1]:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    raise Invalid(
                        f"refusing archive entry {'/'.join(parts)!r}: {part!r} is not a directory (symlink or file)"
                    ) from error
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def remove(self, parts):
        """Delete an entry (a whole directory included) if present."""
        fd = self.parent_fd(parts, create=False)
        try:
            _remove_at(fd, parts[-1])
        finally:
            os.close(fd)

    def set_root(self, member):
        """The archive's own root entry: the tree's owner and mode."""
        os.fchown(self.root_fd, member.uid, member.gid)
        os.fchmod(self.root_fd, stat.S_IMODE(member.mode))

    def prune(self, directory, keep):
        """Remove what is under directory except the paths in keep (tuples) and their parents."""
        fd = self.parent_fd([*directory, "."], create=False)  # the directory's own fd
        try:
            for name in os.listdir(fd):
                path = (*directory, name)
                if path in keep or any(kept[: len(path)] == path for kept in keep):
                    if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                        self.prune(list(path), keep)  # its lower entries are hidden too
                else:
                    _remove_at(fd, name)
        finally:
            os.close(fd)

    def add(self, member, data=None):
        """Write one tarfile member at its (already cleaned) name."""
        parts = clean_name(member.name)
        if not parts:
            return  # the archive's own root directory
        if member.ischr() or member.isblk():
            self.skipped_devices += 1  # never created: a device node is a door out
            return
        fd = self.parent_fd(parts)
        try:
            self._add_at(fd, parts, member, data)
        finally:
            os.close(fd)

    def _add_at(self, fd, parts, member, data):
        name = parts[-1]
        if member.isdir():
            _make_dir(fd, name)
        else:
            _remove_at(fd, name)  # a later entry replaces an earlier one
            if member.issym():
                os.symlink(member.linkname, name, dir_fd=fd)
            elif member.islnk():
                self._hard_link(fd, parts, member.linkname)
                return  # a hard link shares its target's inode, owner and mode
            elif member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=fd)
            else:
                _write_file(fd, name, data)
        os.chown(name, member.uid, member.gid, dir_fd=fd, follow_symlinks=False)
        if not member.issym():
            os.chmod(name, stat.S_IMODE(member.mode), dir_fd=fd)
            os.utime(name, (member.mtime, member.mtime), dir_fd=fd)

    def _hard_link(self, fd, parts, linkname):
        target = clean_name(linkname)
        if not target:
            raise Invalid(f"refusing hard link {'/'.join(parts)!r}: it points at the image root")
        source_fd = self.parent_fd(target, create=False)
        try:
            info = os.stat(target[-1], dir_fd=source_fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                raise Invalid(f"refusing hard link {'/'.join(parts)!r}: it points at a directory")
            os.link(target[-1], parts[-1], src_dir_fd=source_fd, dst_dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise Invalid(f"refusing hard link {'/'.join(parts)!r}: {linkname!r} is not in the image") from None
        finally:
            os.close(source_fd)


def _make_dir(fd, name):
    try:
        os.mkdir(name, 0o755, dir_fd=fd)
    except FileExistsError:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            _remove_at(fd, name)
            os.mkdir(name, 0o755, dir_fd=fd)


def _write_file(fd, name, data):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(name, flags, 0o600, dir_fd=fd)
    try:
        if data is not None:
            while True:
                chunk = data.read(1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
    finally:
        os.close(out)


def _remove_at(fd, name):
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=fd)
        return
    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
    try:
        for entry in os.listdir(child):
            _remove_at(child, entry)
    finally:
        os.close(child)
    os.rmdir(name, dir_fd=fd)


WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def apply_layer(tree, layer):
    """Apply one image layer (an open tarfile, read as a stream) with the OCI whiteout rules.

    '.wh.NAME' removes NAME from the layers below; '.wh..wh..opq' hides every
    entry the layers below put in its directory, wherever it sits in this
    layer (entries this layer adds there stay); a later entry replaces an
    earlier one. Whiteouts are names like any other: refused outside the image.
    """
    added, opaque = set(), []
    for member in layer:
        parts = clean_name(member.name)
        if not parts:
            if member.isdir():
                tree.set_root(member)
            continue
        base = parts[-1]
        if base == OPAQUE:
            opaque.append(tuple(parts[:-1]))
        elif base.startswith(WHITEOUT):
            target = [*parts[:-1], base[len(WHITEOUT) :]]
            clean_name("/".join(target))
            tree.remove(target)
        else:
            tree.add(member, layer.extractfile(member) if member.isreg() else None)
            added.add(tuple(parts))
    for directory in opaque:
        tree.prune(list(directory), added)


def extract_rootfs(archive, destination):
    """Unpack a root-filesystem tarball (plain, gzip, bzip2 or xz) into destination."""
    import tarfile

    try:
        opened = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the `with` below
    except tarfile.ReadError:
        raise Invalid(f"cannot read {archive} as a root filesystem: {NOT_TAR}") from None
    except (tarfile.TarError, OSError) as error:
        raise Invalid(f"cannot read {archive} as a tar archive: {error}") from None
    tree = Tree(destination)
    try:
        with opened:
            for member in opened:
                data = opened.extractfile(member) if member.isreg() else None
                tree.add(member, data)
    except tarfile.TarError as error:
        raise Invalid(f"corrupt tar archive {archive}: {error}") from None
    finally:
        tree.close()
    return tree.skipped_devices
