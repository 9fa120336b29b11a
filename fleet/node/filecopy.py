"""`container cp`: files between the host and a container, the container treated as hostile.

The container's side of a copy runs in a forked child whose root is the
container's root: it joins a running container's mount namespace, or mounts
a stopped one's disk (with its volumes) in a mount namespace of its own. No
path or symbolic link inside can lead to the host. The two sides talk tar over a
pipe. Whatever comes out of a container is unpacked with archive.Tree (no
device nodes, no link or `..` that leaves the destination), owned by the
caller, without setuid or setgid bits; what goes in is owned by the
container's root.

Where it lands, as with `docker cp`: into DEST if DEST is a directory, else
as DEST (its parent must exist). A file replaces a file; a directory never
merges into one that exists.
"""

import os
import stat

from .errors import BaleineError, Conflict, Invalid, NotFound
from .state import special_file  # here, not in _landing: that also runs where only the container's files are

_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


def split(argument):
    """'NAME:/path' -> (NAME, '/path'); a host path -> (None, path)."""
    from . import parse

    name, colon, path = argument.partition(":")
    if not colon or "/" in name or not name:
        return None, argument
    parse.name(name, "container name")
    if not path.startswith("/"):
        raise Invalid(f"invalid container path {path!r} in {argument!r}: use an absolute path such as /etc/motd")
    return name, path


def copy(source, destination):
    """Copy between host and container; exactly one side is NAME:/path. Returns what was done."""
    source_name, source_path = split(source)
    destination_name, destination_path = split(destination)
    if bool(source_name) == bool(destination_name):
        raise Invalid(
            f"give exactly one side as CONTAINER:/PATH, e.g. web:/etc/motd ./motd (got {source!r} {destination!r})"
        )
    if source_name:
        landed = copy_out(source_name, source_path, destination_path)
        return {"container": source_name, "from": source_path, "to": landed}
    landed = copy_in(source_path, destination_name, destination_path)
    return {"container": destination_name, "from": source_path, "to": landed}


def copy_out(name, path, destination):
    """Container path -> host destination; returns where it landed."""
    import tarfile

    target = _landing(destination, os.path.basename(path.rstrip("/")) or "root")
    with _Side(name) as side:
        reader, writer = os.pipe()
        child = side.fork(lambda: _send(path, writer), close=reader)
        os.close(writer)
        try:
            with os.fdopen(reader, "rb") as stream:
                _receive(stream, target, owner=(os.getuid(), os.getgid()), strip=True)
        except tarfile.TarError:
            pass  # nothing came: the child's own message says why
        except BaseException:
            _reap(child, "", quiet=True)  # ours is the error to tell (its stream was cut)
            raise
        _reap(child, f"copy {name}:{path}")
    return target


def copy_in(source, name, destination):
    """Host source -> container destination; returns where it landed (inside the container)."""
    import tarfile

    if not os.path.lexists(source):
        raise NotFound(f"no such file or directory on this host: {source!r}")
    base = os.path.basename(os.path.abspath(source))
    with _Side(name) as side:
        root = int(side.config.get("userns") or 0)  # the container's root, as the disk stores it
        reader, writer = os.pipe()

        def receive():
            with os.fdopen(reader, "rb") as stream:
                target = _landing(destination, base)
                _receive(stream, target, owner=(root, root), strip=False)
                return target

        child = side.fork(receive, close=writer)
        os.close(reader)
        try:
            with os.fdopen(writer, "wb") as stream, tarfile.open(fileobj=stream, mode="w|") as tar:
                tar.add(source, arcname=base)
        except BrokenPipeError:
            pass  # the child stopped reading: its message says why
        except BaseException:
            _reap(child, "", quiet=True)
            raise
        return _reap(child, f"copy into {name}:{destination}")


class _Side:
    """The container's side of a copy: how a child gets in, and the container's config.

    Running: the child joins the container's mount namespace. Otherwise it
    mounts the container's files in a mount namespace of its own, and the
    disk is held (containers.hold_disk) until the copy is over, so that no
    start, rm or commit runs meanwhile.
    """

    def __init__(self, name):
        from . import containers, state

        self.held = None
        with state.locked():
            row = containers.current(name)
            containers.refuse_if_busy(row)
            containers.refuse_if_half_created(row)
            self.config = containers.read_config(row)
            if row["status"] == containers.RUNNING:
                self.pid = int(row["pid"])
            else:
                self.pid = None
                self.directory = containers.directory(row)
                self.held = containers.hold_disk(row)

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        if self.held is not None:
            os.close(self.held)  # after the child is reaped: its mount is gone with it

    def fork(self, work, close):
        if self.pid is None:
            return _fork_inside(self._mount_files, work, close)
        namespace = os.open(f"/proc/{self.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return _fork_inside(lambda: _join(namespace), work, close)
        finally:
            os.close(namespace)

    def _mount_files(self):
        from . import linux, sandbox

        linux.unshare(linux.CLONE_NEWNS)
        sandbox.enter_files(self.directory, self.config)


def _landing(destination, base):
    """Where an item named base lands for DEST: inside it if it is a directory, else at it.

    A device node, pipe or socket there is refused: the copy replaces what it
    lands on, and `cp x:/f /dev/null` would swap the device for a plain file.
    """
    if os.path.isdir(destination):
        target = os.path.join(destination, base)
    else:
        parent = os.path.dirname(os.path.abspath(destination))
        if not os.path.isdir(parent):
            raise NotFound(f"no such directory {parent!r} to copy into")
        target = destination.rstrip("/")
    special = special_file(target)
    if special:
        raise Invalid(f"{target!r} is {special}: a copy replaces a file or makes a new one; give another path")
    return target


def _send(path, out_fd):
    """In the container: write path as a one-item tar stream (links stay links) to out_fd."""
    import tarfile

    if not os.path.lexists(path):
        raise NotFound(f"no such file or directory in the container: {path!r}")
    with os.fdopen(out_fd, "wb") as stream, tarfile.open(fileobj=stream, mode="w|") as tar:
        tar.add(path, arcname=os.path.basename(path.rstrip("/")) or "root")


def _receive(stream, target, owner, strip):
    """Unpack a one-item tar stream as target, through a temporary directory beside it."""
    import tarfile

    from . import archive

    parent = os.path.dirname(os.path.abspath(target))
    temp = os.path.join(parent, f".baleine-cp-{os.getpid()}")
    os.mkdir(temp, 0o700)
    tree = archive.Tree(temp)
    try:
        top = None
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                top = top or archive.clean_name(member.name)[0]
                member.uid, member.gid = owner
                if strip:
                    member.mode &= ~_SPECIAL_BITS
                tree.add(member, tar.extractfile(member) if member.isreg() else None)
        if top is not None:
            _put_in_place(os.path.join(temp, top), target)
    finally:
        tree.close()
        from . import state

        state.remove_tree(temp)


def _put_in_place(item, target):
    """Move the unpacked item to target: a file replaces a file, a directory takes a new name only."""
    existing = os.path.lexists(target)
    if existing and (os.path.isdir(item) or (os.path.isdir(target) and not os.path.islink(target))):
        raise Invalid(f"{target!r} already exists: remove it first, or copy into another directory")
    os.replace(item, target)


def _join(namespace):
    from . import linux

    linux.setns(namespace)  # root and working directory: the container's


def _fork_inside(enter, work, close):
    """Run enter() then work() in a child (close: our end of its pipe); enter gives it the container's root.

    Returns (pid, read end of a pipe of its own) for _reap: what work returns, or why it failed, comes on it.
    """
    from . import archive, linux, sandbox, state  # noqa: F401 - loaded now: nothing can be loaded from in there

    errors_read, errors_write = os.pipe()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(errors_read)
            os.close(close)  # else a reader here would wait for its own writer
            enter()
            result = work()
            status = 0
            os.write(errors_write, (result or "").encode())
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(errors_write, f"{_code(error)}\n{_said(error)}".encode())
        finally:
            os._exit(status)
    os.close(errors_write)
    return child, errors_read


def _code(error):
    return error.code if isinstance(error, BaleineError) else BaleineError.code


def _said(error):
    if isinstance(error, BaleineError):
        return error.message
    if isinstance(error, OSError):
        return f"{error.strerror}: {error.filename or ''}".rstrip(": ")
    return f"{type(error).__name__}: {error}"


_KINDS = {kind.code: kind for kind in (Invalid, NotFound, Conflict)}  # what a child's failure is raised as here


def _reap(child, what, quiet=False):
    """Wait for the child (pid, its report pipe); returns what its work returned, or raises its failure.

    A failure comes as its code, a line break and its message, so that it is
    raised here as the kind it was there (bad input still exits 2).
    """
    pid, errors_read = child
    with os.fdopen(errors_read, "rb") as errors:
        report = errors.read().decode(errors="replace").strip()
    _, status = os.waitpid(pid, 0)
    if quiet or os.waitstatus_to_exitcode(status) == 0:
        return report
    code, _, message = report.partition("\n")
    kind = _KINDS.get(code, BaleineError)
    if kind is NotFound:
        raise NotFound(message)  # "no such file or directory in the container: ..." says it all
    raise kind(f"cannot {what}: {message or 'the copy process died'}")
