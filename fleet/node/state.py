"""Plain-text state: semicolon-separated CSV tables under one root, one lock.

Readers never lock: every write replaces the file whole (temp, fsync, rename),
so a reader sees the old table or the new one. Writers hold the root's flock
for their whole read-modify-write, so ten commands at once serialise cleanly.
"""

# _csv is the C reader and writer under csv: csv itself imports re (for its
# Sniffer), and re imports enum, about 6 ms of every command.
import _csv
import os
import time

from .errors import Damaged, Invalid, NotFound

DEFAULT_ROOT = "/var/lib/baleine"

IMAGE_COLUMNS = ("name", "digest", "size", "source", "created")
NETWORK_COLUMNS = ("name", "bridge", "subnet", "gateway", "created", "range", "vxlan", "peers", "mtu", "internal")
CONTAINER_COLUMNS = (
    "name",
    "id",
    "image",
    "status",
    "pid",
    "pid_start",
    "exit_code",
    "reason",
    "restarts",
    "error",
    "stopped_by",
    "health",
    "health_failures",
    "health_at",
    "networks",
    "created",
    "started",
    "finished",
)


def root():
    """The state root: BALEINE_ROOT, else /var/lib/baleine."""
    return os.environ.get("BALEINE_ROOT") or DEFAULT_ROOT


def path(*parts):
    """A path under the state root."""
    return os.path.join(root(), *parts)


RESERVE = ".reserve"  # room held back so that stop and rm, which free space, work on a full disk
RESERVE_SIZE = 1 << 20  # a table rewrite needs a few kB; this is hundreds of them


def ensure_layout():
    """Create the root and its directories on first use, and hold the reserve back while there is room."""
    for sub in ("", "images", "containers"):
        os.makedirs(path(sub), mode=0o711, exist_ok=True)
    if not os.path.exists(path(RESERVE)):
        _hold_reserve()


def _hold_reserve():
    """Allocate the reserve, unless the filesystem has less than 8 times its size free."""
    info = os.statvfs(path())
    if info.f_bavail * info.f_frsize < 8 * RESERVE_SIZE:
        return
    with replacing(path(RESERVE), 0o600) as handle:
        os.posix_fallocate(handle.fileno(), 0, RESERVE_SIZE)


def _release_reserve(target):
    """Free the reserve for a write to target that found the disk full; True if that can help."""
    try:
        if os.stat(os.path.dirname(target) or ".").st_dev != os.stat(path()).st_dev:
            return False  # another filesystem (a cron file, a .prom file)
        os.unlink(path(RESERVE))
    except FileNotFoundError:
        return False
    return True


def allocated(file_path):
    """Bytes a file holds on disk (its blocks, not its length: images and disks are sparse); 0 when missing."""
    try:
        return os.stat(file_path).st_blocks * 512
    except FileNotFoundError:
        return 0


def remove_tree(top):
    """rm -rf top, going on past what cannot go (a busy mount point stays).

    Not shutil.rmtree: importing shutil loads bz2 and lzma, 2 ms of every
    `run --rm`. Symbolic links are removed, never followed.
    """
    try:  # bottom-up; each directory's fd is open only during its own step
        for _, dirs, files, fd in os.fwalk(top, topdown=False):
            for name in files:
                _quietly(os.unlink, name, fd)
            for name in dirs:  # fwalk lists a link to a directory here: unlink it
                if not _quietly(os.rmdir, name, fd):
                    _quietly(os.unlink, name, fd)
    except OSError:  # top itself is gone or unreadable
        return
    _quietly(os.rmdir, top, None)


def _quietly(remove, name, dir_fd):
    try:
        remove(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def boot_id():
    """This boot of the kernel, as it names itself."""
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        return handle.read().strip()


def recorded_boot_id():
    """The boot the state was last checked under, or None before the first check."""
    try:
        with open(path("boot_id"), encoding="ascii") as handle:
            return handle.read().strip() or None
    except FileNotFoundError:
        return None


def record_boot_id(value):
    write_atomic(path("boot_id"), value + "\n")


STAMP = "%Y-%m-%dT%H:%M:%SZ"  # UTC, as every table stores times


def now(at=None):
    """UTC time as the tables store it: now, or `at` seconds since 1970."""
    return time.strftime(STAMP, time.gmtime(at))


def epoch(stamp):
    """Seconds since 1970 for a time now() wrote; ValueError for anything else.

    Read by hand: time.strptime loads _strptime, datetime, locale and calendar
    (about 4 ms of start-up) to read the one format this file writes.
    """
    if len(stamp) != 20 or stamp[4] + stamp[7] + stamp[10] + stamp[13] + stamp[16] + stamp[19] != "--T::Z":
        raise ValueError(f"not a time as baleine stores it ({STAMP}): {stamp!r}")
    parts = (stamp[0:4], stamp[5:7], stamp[8:10], stamp[11:13], stamp[14:16], stamp[17:19])
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"not a time as baleine stores it ({STAMP}): {stamp!r}")
    year, month, day, hour, minute, second = map(int, parts)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 62):
        raise ValueError(f"not a valid time: {stamp!r}")
    return _days_since_1970(year, month, day) * 86400 + hour * 3600 + minute * 60 + second


def _days_since_1970(year, month, day):
    """Days from 1970-01-01 in the proleptic Gregorian calendar.

    Counts years from March, so that a leap day is the last day of its year
    and month lengths follow a fixed pattern (153 days per 5 months).
    """
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468  # 719468: days from 0000-03-01 to 1970-01-01


# The context managers here are classes, not contextlib generators: contextlib
# loads functools, collections and more, 3 ms of every command for three decorators.


def exclusive(lock_path, wait, holder):
    """`with exclusive(...) as other:` holds an flock on lock_path, which names its holder meanwhile (other is
    None); or, once `wait` seconds have gone by, gives up and other is the holder line another process wrote there.

    The kernel releases the lock when its holder dies, whatever state it left.
    """
    return _Exclusive(lock_path, wait, holder)


class _Exclusive:
    def __init__(self, lock_path, wait, holder):
        self.lock_path = lock_path
        self.wait = wait
        self.holder = holder
        self.fd = None
        self.owned = False

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + max(0.0, float(self.wait))
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return os.pread(self.fd, 512, 0).decode("utf-8", "replace").strip() or "?"
                    time.sleep(0.1)
            self.owned = True
            os.ftruncate(self.fd, 0)
            try:
                os.pwrite(self.fd, (self.holder + "\n").encode(), 0)
            except OSError:
                pass  # on a full disk the lock still holds; waiters then read "?"
        except BaseException:
            os.close(self.fd)
            raise
        return None

    def __exit__(self, *_):
        try:
            if self.owned:
                os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing releases the flock
        return False


_held = 0  # depth of locked() in this process: the lock is re-entrant


def locked():
    """`with locked():` holds the state root's exclusive lock (blocks until free); re-entrant."""
    return _RootLock()


class _RootLock:
    def __init__(self):
        self.fd = None  # only the outermost holds the file

    def __enter__(self):
        global _held
        if _held:
            _held += 1
            return None
        import fcntl

        ensure_layout()
        fd = os.open(path(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        _held = 1
        return None

    def __exit__(self, *_):
        global _held
        if self.fd is None:
            _held -= 1
        else:
            _held = 0
            os.close(self.fd)
        return False


def rows_of(file_path, required=()):
    """A table file's rows as dicts, one at a time (memory stays flat); none if it is missing.

    Read as csv.DictReader reads: blank lines skipped, a short row's missing
    cells None, a long row's extra cells a list under the key None. Given
    the columns it requires (a table baleine rewrites), the file is read
    strictly: a header without one of them, or a row of another width than
    the header's, is Damaged, naming the line. A history file (usage) is
    read leniently: a pass cut short may leave its last line short.
    """
    try:
        handle = open(file_path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        reader = _csv.reader(handle, delimiter=";")
        header = next(reader, None)
        if header is None:
            return
        missing = [column for column in required if column not in header]
        if missing:
            raise Damaged(f"{file_path}: its header (line 1) lacks {', '.join(missing)}: restore that line")
        width = len(header)
        for cells in reader:
            if not cells:
                continue
            if required and len(cells) != width:
                count = f"{len(cells)} cell" + ("s" if len(cells) != 1 else "")
                where = f"{file_path} line {reader.line_num}"
                raise Damaged(f"{where}: {count} where the header has {width}: fix that line, or remove it")
            row = dict(zip(header, cells))
            if len(cells) < width:
                row.update(dict.fromkeys(header[len(cells) :]))
            elif len(cells) > width:
                row[None] = cells[width:]
            yield row


class Table:
    """One CSV file of rows (dicts of strings) with a fixed set of known columns.

    noun names a row in messages: "no such image 'x'".
    """

    def __init__(self, filename, columns, noun, key="name", required=None):
        self.filename = filename
        self.columns = columns
        self.noun = noun
        self.key = key
        self.required = required or (key,)  # columns a file must have; older files may lack later ones

    @property
    def file(self):
        return path(self.filename)

    def read(self):
        """All rows, in file order; a missing file is an empty table."""
        return list(rows_of(self.file, self.required))

    def find(self, value, rows=None):
        """The row whose key is value, or None."""
        for row in self.read() if rows is None else rows:
            if row.get(self.key) == value:
                return row
        return None

    def get(self, value, rows=None):
        """The row whose key is value, or NotFound naming the rows there are."""
        rows = self.read() if rows is None else rows
        row = self.find(value, rows)
        if row is None:
            known = ", ".join(other[self.key] for other in rows) or "none yet"
            raise NotFound(f"no such {self.noun} {value!r} (known: {known})")
        return row

    def write(self, rows):
        """Replace the table atomically. Callers hold locked()."""
        header = list(self.columns)
        for row in rows:  # keep columns a newer baleine may have added
            header.extend(key for key in row if key not in header)
        write_atomic(self.file, _render_csv(header, rows))

    def upsert(self, row):
        """Insert or replace the row with this key. Callers hold locked()."""
        rows = [old for old in self.read() if old.get(self.key) != row[self.key]]
        rows.append(row)
        self.write(rows)

    def update(self, key, **changes):
        """Change some cells of one row; returns the new row. Callers hold locked()."""
        rows = self.read()
        for row in rows:
            if row.get(self.key) == key:
                row.update({name: str(value) for name, value in changes.items()})
                self.write(rows)
                return row
        raise KeyError(key)

    def remove(self, key):
        """Drop the row with this key. Callers hold locked()."""
        self.write([row for row in self.read() if row.get(self.key) != key])


def _render_csv(header, rows):
    import io

    buffer = io.StringIO()
    writer = _csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row.get(column, "") for column in header] for row in rows)
    return buffer.getvalue()


def read_json(path, remedy):
    """The JSON document in a state file; Damaged, naming the file and what to do (remedy), if it is not JSON.

    A missing file raises FileNotFoundError, for the caller to mean what it will.
    """
    from . import jsonlite

    with open(path, encoding="utf-8") as handle:
        try:
            return jsonlite.load(handle)
        except ValueError as error:  # edited by hand, say (a UnicodeDecodeError is one too)
            raise Damaged(f"{path} is not valid JSON ({error}): {remedy}") from None


def writable_file(destination, example, other="give a file's path"):
    """The real path of a file to write, refused (Invalid) before any work when it cannot be written there.

    A link is followed: the file it names is replaced, not the link.
    example: a file name to suggest when destination is a directory; other:
    what to suggest instead of a device, pipe or socket.
    """
    path = os.path.realpath(destination)
    if os.path.isdir(path):
        example = os.path.join(destination, example)
        raise Invalid(f"cannot write {destination}: it is a directory; give a file name, such as {example}")
    if not os.path.isdir(os.path.dirname(path)):
        raise Invalid(f"cannot write {destination}: no such directory {os.path.dirname(path)}")
    special = special_file(path)
    if special:  # the file is replaced whole: a device node would be swapped for a plain file
        named = destination if path == os.path.abspath(destination) else f"{destination} ({path})"
        raise Invalid(f"cannot write {named}: it is {special}, not a file; {other}")
    return path


def special_file(path):
    """'a character device', 'a block device', 'a pipe' or 'a socket' when path is one (not followed); else None."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe"),
             (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), None)


def write_atomic(target, text, mode=0o644):
    """Write text to target so that readers see either the old or the new file.

    On a full disk the reserve is given up and the write tried once more: the
    commands that free space (stop, rm) must be able to record what they do.
    """
    data = text.encode("utf-8")
    try:
        with replacing(target, mode) as handle:
            handle.write(data)
    except OSError as error:
        import errno

        if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not _release_reserve(target):
            raise
        with replacing(target, mode) as handle:
            handle.write(data)


def replacing(target, mode=0o644):
    """`with replacing(target) as handle:` a binary file to write target's new content into, renamed over
    target once whole.

    Readers see the old file or the new one, never part of it. If the block
    fails (a full disk, say), the old file stands and the temporary one beside
    it is removed. Beside: same filesystem, so the rename cannot fail for that.
    """
    return _Replacement(target, mode)


class _Replacement:
    def __init__(self, target, mode):
        self.target = target
        self.mode = mode
        self.directory = os.path.dirname(target) or "."
        self.temp = os.path.join(self.directory, f".{os.path.basename(target)}.{os.getpid()}.tmp")
        self.handle = None

    def __enter__(self):
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self.mode)
        try:
            self.handle = open(fd, "wb")
        except BaseException:
            os.close(fd)
            _quietly(os.unlink, self.temp, None)
            raise
        return self.handle

    def __exit__(self, failed, _error, _trace):
        try:
            with self.handle:
                if not failed:
                    self.handle.flush()
                    os.fsync(self.handle.fileno())
            if not failed:
                os.replace(self.temp, self.target)
        except BaseException:
            _quietly(os.unlink, self.temp, None)
            raise
        if failed:
            _quietly(os.unlink, self.temp, None)
            return False
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return False


# Each table requires the columns its first release wrote: a file from then still reads.
IMAGES = Table("images.csv", IMAGE_COLUMNS, "image", required=IMAGE_COLUMNS)
NETWORKS = Table("bridges.csv", NETWORK_COLUMNS, "network", required=NETWORK_COLUMNS[:5])
CONTAINERS = Table("containers.csv", CONTAINER_COLUMNS, "container", key="id",  # a rename keeps the id
                   required=("name", "id", "image", "status", "pid", "pid_start", "exit_code", "networks", "created",
                             "started", "finished"))  # fmt: skip
