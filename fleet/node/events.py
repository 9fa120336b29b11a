"""events.log: what happened to the containers and who did it, one JSON line each, for `baleine events`.

With no daemon to keep a history, each command appends what it did as it
does it: create, start, stop, kill (SIGKILL after the stop timeout), die (the
exit, however it came), rm, update, commit, health changes. `by` is the
person (SUDO_USER, else USER) or `check` for what cron's pass did. A line is
one write to a file opened O_APPEND, so concurrent commands never mix their
lines; check rotates the file past SIZE like check.log. Recording is best
effort: a full disk must not stop the very commands that free it.
"""

import os

from . import state

FILE = "events.log"
SIZE = 1 << 20
START = '{"time":'  # how every line begins


def record(action, row, by=None, **details):
    """Append one event about container row (its name and id are taken from it).

    by: who did it (default: who()); "" for what nobody did (a process that died).
    """
    import json

    event = {"time": state.now(), "action": action, "container": row["name"], "id": row["id"][:12]}
    if by != "":
        event["by"] = by or who()
    event.update(details)
    line = json.dumps(event, separators=(",", ":")) + "\n"
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
    import json

    from . import logs

    renamed = {row["id"][:12] for row in state.CONTAINERS.read() if row["name"] == container} if container else set()
    found = []
    for line in logs.read_lines(state.path(FILE)):
        # A write cut short (a full disk, a power cut) leaves no newline: the next event follows on its line.
        line = line[max(0, line.rfind(START)) :]
        try:
            event = json.loads(line)
            at = state.epoch(event["time"])
        except (ValueError, KeyError, TypeError):
            continue  # what is left of a cut line, or not ours
        if since is not None and at < since:
            continue
        if container and not _about(container, event, renamed):
            continue
        found.append(event)
    return found


def _about(ref, event, renamed):
    """Whether the event is about container ref: its name then, its id, or the container so named now."""
    return ref == event.get("container") or _id_matches(ref, event) or event.get("id") in renamed


def _id_matches(ref, event):
    return len(ref) >= 3 and event.get("id", "").startswith(ref)  # as containers.get takes an id
