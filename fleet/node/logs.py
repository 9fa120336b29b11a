"""A container's output: its log file, whole, tailed, followed, and kept to a size.

A log may hold gigabytes: it is copied in chunks, and its tail found by
reading backwards from the end, so memory stays small whatever its size.

Rotation without a process in between: the container writes its log itself
(O_APPEND), so `baleine check` cannot rename it away. Instead it copies all
but the last block to `log.1` and removes that head from the log in place
(fallocate's collapse-range, on ext4 and xfs): the writer's next line still
lands at the end, and no line is lost. Readers and the rotation take a lock
on the log (flock), so a reader sees `log.1` and `log` from the same moment.
"""

import os

POLL = 0.2  # seconds between looks at a followed log: no inotify, nothing resident; its end wakes us at once
CHUNK = 1 << 16
DEFAULT_LIMIT = 10 << 20  # a container's log is rotated past this (--log-size), one older file kept
SMALLEST_LIMIT = 64 << 10  # smaller would rotate a busy log every pass, block by block
OLDER = ".1"


def parse_limit(value, what="--log-size"):
    """A log size limit: bytes, 0 for never rotate (what: the option or key it came from)."""
    from . import parse
    from .errors import Invalid

    limit = parse.size(value, what, minimum=0)
    if 0 < limit < SMALLEST_LIMIT:
        raise Invalid(f"invalid {what} {value!r}: use 0 (never rotate) or at least 64K")
    return limit


def tail_start(handles, count):
    """Where the last `count` lines begin in binary files read one after another: (index, offset).

    Lines end with \\n; the files are one stream (a log's older part, then the log).
    """
    ends = [handle.seek(0, os.SEEK_END) for handle in handles]
    filled = [index for index, end in enumerate(ends) if end]
    if count == 0 or not filled:
        return len(handles) - 1, ends[-1]
    last = filled[-1]
    handles[last].seek(ends[last] - 1)
    wanted = count + 1 if handles[last].read(1) == b"\n" else count  # a final newline ends a line, starts none
    for index in range(last, -1, -1):
        offset, wanted = _back_to_newline(handles[index], ends[index], wanted)
        if offset is not None:
            return index, offset
    return 0, 0


def _back_to_newline(handle, end, wanted):
    """(offset just past the wanted-th \\n before end, 0), or (None, newlines still wanted) if too few."""
    position = end
    while position > 0:
        size = min(CHUNK, position)
        position -= size
        handle.seek(position)
        block = handle.read(size)
        found = block.count(b"\n")
        if found >= wanted:
            cut = len(block)
            for _ in range(wanted):
                cut = block.rindex(b"\n", 0, cut)
            return position + cut + 1, 0
        wanted -= found
    return None, wanted


def read_lines(path, tail=None):
    """The log's lines (the last `tail` of them when given), as text."""
    import io

    buffer = io.BytesIO()
    write(path, tail, buffer)
    data = buffer.getvalue()
    lines = data.decode("utf-8", errors="replace").split("\n")
    return lines[:-1] if data.endswith(b"\n") or not data else lines


def write(path, tail, out):
    """Copy the log, its older part first (or only the last `tail` lines), to the binary stream out."""
    import fcntl

    try:
        with open(path, "rb") as log:
            fcntl.flock(log, fcntl.LOCK_SH)  # not while a rotation moves its head to log.1
            _write_parts([*opened(path + OLDER), log], tail, out)
    except FileNotFoundError:
        pass  # never started: no output yet
    out.flush()


def opened(path):
    try:
        return [open(path, "rb")]
    except FileNotFoundError:
        return []


def _write_parts(handles, tail, out):
    """Copy files that are one stream (or their last `tail` lines); closes all but the last."""
    try:
        first, offset = tail_start(handles, tail) if tail is not None else (0, 0)
        for index in range(first, len(handles)):
            handles[index].seek(offset if index == first else 0)
            _copy(handles[index], out)
    finally:
        for handle in handles[:-1]:
            handle.close()


def follow(name, path, out):
    """Print what the container writes from now on, until it stops or no one reads us any more.

    The reader going away matters over SSH: when `invoke container.logs
    --follow` ends, sshd closes our stdout, and we must not stay on the host.
    """
    position = Position(path)
    gone = watch(name)
    reader = pipe_or_terminal(out)
    try:
        while True:
            position.copy_new(out)
            if gone is None:
                return
            ready = wait_for(gone, POLL, reader)
            if reader in ready:
                return  # no one to print to
            if gone in ready:
                position.copy_new(out)  # what it wrote last
                return
    finally:
        if gone is not None:
            os.close(gone)


def pipe_or_terminal(out):
    """out's descriptor if closing its far end can tell us the reader left (a pipe, a socket, a tty)."""
    import stat

    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # an in-memory buffer
    return None if stat.S_ISREG(os.fstat(fd).st_mode) else fd


def watch(name):
    """A pidfd on the container's process, readable once it ends; None if it does not run (or is gone)."""
    from . import containers, linux
    from .errors import NotFound

    try:
        row = containers.current(name)
    except NotFound:
        return None
    if row["status"] != containers.RUNNING:
        return None
    try:
        fd = os.pidfd_open(int(row["pid"]))
    except ProcessLookupError:
        return None
    if not linux.is_alive(row["pid"], row["pid_start"]):  # it ended, and its pid went to another process
        os.close(fd)
        return None
    return fd


def wait_for(pidfd, timeout, reader=None):
    """Wait up to timeout (None: for ever) for the process to end (pidfd, if given) or the reader of our
    output to leave; returns the descriptors of what happened (none when the time ran out)."""
    import select

    poller = select.poll()
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    if reader is not None:
        poller.register(reader, 0)  # no events asked: POLLERR or POLLHUP come when the far end closes
    return {fd for fd, _events in poller.poll(None if timeout is None else int(timeout * 1000))}


class Position:
    """How far a follower has printed a log, kept true across rotations."""

    def __init__(self, path, offset=None):
        self.path = path
        self.offset = _size(path) if offset is None else offset
        self.older = _identity(path + OLDER)

    def copy_new(self, out):
        """Copy what the log gained since the last call."""
        import fcntl

        try:
            with open(self.path, "rb") as log:
                fcntl.flock(log, fcntl.LOCK_SH)
                self._after_rotation(out)
                log.seek(self.offset)
                self.offset += _copy(log, out)
        except FileNotFoundError:
            return  # not started yet, or removed
        out.flush()

    def _after_rotation(self, out):
        """A new log.1 means the log's first len(log.1) bytes moved there: print what was not yet."""
        older = _identity(self.path + OLDER)
        if older == self.older:
            return
        self.older = older
        moved = older[-1] if older else 0
        if self.offset < moved:
            with open(self.path + OLDER, "rb") as handle:
                handle.seek(self.offset)
                _copy(handle, out, moved - self.offset)
        self.offset = max(0, self.offset - moved)


def _identity(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _copy(handle, out, limit=None):
    """Copy the rest of handle (or its next `limit` bytes) to out in chunks; returns the bytes copied."""
    copied = 0
    while limit is None or copied < limit:
        block = handle.read(CHUNK if limit is None else min(CHUNK, limit - copied))
        if not block:
            return copied
        out.write(block)
        copied += len(block)
    return copied


def wait_until_stopped(name):
    gone = watch(name)
    if gone is not None:
        try:
            wait_for(gone, None)
        finally:
            os.close(gone)


def rotate(path, limit):
    """Past `limit` bytes, move all but the log's last block to log.1 (replacing it); returns bytes moved."""
    import fcntl

    from . import linux, state

    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        info = os.fstat(fd)
        if not limit or info.st_size <= limit:
            return 0
        fcntl.flock(fd, fcntl.LOCK_EX)  # readers wait: they must not see the head in both files
        # Collapse-range takes whole blocks and must leave the file at least one byte.
        cut = (os.fstat(fd).st_size - 1) // info.st_blksize * info.st_blksize
        if cut == 0:
            return 0  # not one whole block to move: keep log.1 as it is
        with state.replacing(path + OLDER, 0o640) as out:
            linux.copy_range(fd, out.fileno(), 0, cut, "the log")
        if not linux.collapse_range(path, cut):
            cut = _truncate_instead(fd, path + OLDER, cut)
        return cut
    finally:
        os.close(fd)


def _truncate_instead(fd, older, copied):
    """Where collapse-range is missing (tmpfs, btrfs): log.1 takes the whole log, the log restarts empty.

    A line the container writes between the last copy and the truncation is
    lost: the copy runs to the end just before, so that window is short.
    """
    with open(older, "r+b") as out:  # not "ab": copy_file_range refuses an O_APPEND target
        while True:
            more = os.copy_file_range(fd, out.fileno(), CHUNK, copied, copied)
            if not more:
                break
            copied += more
        os.ftruncate(fd, 0)
        out.flush()
        os.fsync(out.fileno())
    return copied
