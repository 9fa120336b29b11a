"""events.log: what happened to the containers and who did it, one JSON line each, for `baleine events`.

With no daemon to keep a history, each command appends what it did as it
does it: create, start, stop, kill (SIGKILL after the stop timeout), die (the
exit, however it came), rm, update, commit, health changes. `by` is the
person (SUDO_USER, else USER) or `check` for what cron's pass did. A line is
one write to a file opened O_APPEND, so concurrent commands never mix their
lines; check rotates the file past SIZE like check.log. Recording is best
effort: a full disk must not stop the very commands that free it.

`events --follow` prints the history, then each event as it is appended
(looking every POLL seconds: nothing stays resident to wake it), until its
reader goes away.
"""

import os

from . import jsonlite, state

FILE = "events.log"
SIZE = 1 << 20
START = '{"time":'  # how every line begins


def record(action, row, by=None, **details):
    """Append one event about container row (its name and id are taken from it).

    by: who did it (default: who()); "" for what nobody did (a process that died).
    """
    event = {"time": state.now(), "action": action, "container": row["name"], "id": row["id"][:12]}
    if by != "":
        event["by"] = by or who()
    event.update(details)
    line = jsonlite.dumps(event, separators=(",", ":")) + "\n"
    try:
        fd = os.open(state.path(FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # the history is not worth failing the command for


def who():
    """The person behind this command: the sudo caller, else the login user."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or f"uid {os.getuid()}"


def read(container=None, since=None):
    """The events, oldest first: of one container (name or id prefix) and from `since` (epoch seconds) on.

    A name also takes in the events of the container so named now from
    before it was renamed (they carry its id).
    """
    history, _ = _history()
    wanted = _Filter(container, since)
    return [event for event in map(_parse, history.split(b"\n")) if wanted(event)]


def follow(container, since, emit, reader=None):
    """emit(event) for each event of read(container, since), then for each new one as it comes.

    Returns when the reader of our output goes away (reader: its descriptor,
    from logs); without one, only Ctrl-C ends it.
    """
    from . import logs

    history, position = _history()
    wanted = _Filter(container, since)
    lines = _Lines(history)
    while True:
        for event in map(_parse, lines.complete()):
            if wanted(event):
                emit(event)
        if reader in logs.wait_for(None, logs.POLL, reader):  # without a reader: a plain POLL's sleep
            return  # no one to print to
        position.copy_new(lines)


def _history():
    """events.log.1 and events.log as one text, and a logs.Position just past it: both of one moment."""
    import fcntl

    from . import logs

    path = state.path(FILE)
    try:
        with open(path, "rb") as log:
            fcntl.flock(log, fcntl.LOCK_SH)  # not while check moves its head to events.log.1
            older = b"".join(handle.read() for handle in logs.opened(path + logs.OLDER))
            current = log.read()
            return older + current, logs.Position(path, offset=len(current))
    except FileNotFoundError:
        return b"", logs.Position(path, offset=0)


class _Lines:
    """Bytes written to it (as to a binary stream), given back as whole lines."""

    def __init__(self, data=b""):
        self.pending = data

    def write(self, data):
        self.pending += data

    def flush(self):
        pass

    def complete(self):
        *lines, self.pending = self.pending.split(b"\n")
        return lines


def _parse(line):
    """One event from a line of the file, or None for what is not one."""
    # A write cut short (a full disk, a power cut) leaves no newline: the next event follows on its line.
    line = line[max(0, line.rfind(START.encode())) :]
    try:
        event = jsonlite.loads(line)
        state.epoch(event["time"])
    except (ValueError, KeyError, TypeError):
        return None  # what is left of a cut line, or not ours
    return event


class _Filter:
    """Which events read and follow keep: of container (and its names before a rename), from since on."""

    def __init__(self, container, since):
        self.container, self.since = container, since
        rows = state.CONTAINERS.read() if container else []
        self.renamed = {row["id"][:12] for row in rows if row["name"] == container}

    def __call__(self, event):
        if event is None or (self.since is not None and state.epoch(event["time"]) < self.since):
            return False
        return not self.container or _about(self.container, event, self.renamed)


def _about(ref, event, renamed):
    """Whether the event is about container ref: its name then, its id, or the container so named now."""
    return ref == event.get("container") or _id_matches(ref, event) or event.get("id") in renamed


def _id_matches(ref, event):
    return len(ref) >= 3 and event.get("id", "").startswith(ref)  # as containers.get takes an id
