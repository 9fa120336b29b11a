"""`container cp`: files between the host and a running container, the container treated as hostile.

The container's side of a copy runs in a forked child that has joined the
container's mount namespace: its root is the container's root, so no path
or symbolic link inside can lead to the host. The two sides talk tar over a
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

from .errors import BaleineError, Invalid, NotFound

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

    pid, _config = _running(name)
    target = _landing(destination, os.path.basename(path.rstrip("/")) or "root")
    reader, writer = os.pipe()
    child = _fork_inside(pid, lambda: _send(path, writer), close=reader)
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
    pid, config = _running(name)
    root = int(config.get("userns") or 0)  # the container's root, as the disk stores it
    base = os.path.basename(os.path.abspath(source))
    reader, writer = os.pipe()

    def receive():
        with os.fdopen(reader, "rb") as stream:
            target = _landing(destination, base)
            _receive(stream, target, owner=(root, root), strip=False)
            return target

    child = _fork_inside(pid, receive, close=writer)
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


def _running(name):
    from . import containers
    from .errors import Conflict

    row = containers.current(name)
    if row["status"] != containers.RUNNING:
        raise Conflict(f"container {row['name']!r} is not running (status: {row['status']}): cp needs it running")
    return int(row["pid"]), containers.read_config(row)


def _landing(destination, base):
    """Where an item named base lands for DEST: inside it if it is a directory, else at it."""
    if os.path.isdir(destination):
        return os.path.join(destination, base)
    parent = os.path.dirname(os.path.abspath(destination))
    if not os.path.isdir(parent):
        raise NotFound(f"no such directory {parent!r} to copy into")
    return destination.rstrip("/")


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


def _fork_inside(pid, work, close):
    """Run work() in a child whose root is container process pid's (close: our end of its pipe).

    Returns (pid, read end of a pipe of its own) for _reap: what work returns, or why it failed, comes on it.
    """
    from . import archive, linux, state  # noqa: F401 - loaded now: nothing can be loaded from in there

    errors_read, errors_write = os.pipe()
    namespace = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(errors_read)
            os.close(close)  # else a reader here would wait for its own writer
            linux.setns(namespace)  # root and working directory: the container's
            result = work()
            status = 0
            os.write(errors_write, (result or "").encode())
        except BaleineError as error:
            os.write(errors_write, error.message.encode())
        except OSError as error:
            os.write(errors_write, f"{error.strerror}: {error.filename or ''}".rstrip(": ").encode())
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(errors_write, f"{type(error).__name__}: {error}".encode())
        finally:
            os._exit(status)
    os.close(namespace)
    os.close(errors_write)
    return child, errors_read


def _reap(child, what, quiet=False):
    """Wait for the child (pid, its report pipe); returns what its work returned, or raises its failure."""
    pid, errors_read = child
    with os.fdopen(errors_read, "rb") as errors:
        message = errors.read().decode(errors="replace").strip()
    _, status = os.waitpid(pid, 0)
    if quiet or os.waitstatus_to_exitcode(status) == 0:
        return message
    if message.startswith("no such"):
        raise NotFound(message)
    raise BaleineError(f"cannot {what}: {message or 'the copy process died'}")
