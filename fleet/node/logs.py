"""A container's output: its log file, whole, tailed, or followed while it runs."""

import os
import time

POLL = 0.2  # seconds between looks at a followed log: no inotify, nothing resident


def read_lines(path, tail=None):
    """The log's lines (the last `tail` of them when given)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    if tail is None:
        return lines
    return lines[len(lines) - tail :] if tail else []


def write(path, tail, out):
    """Copy the log (or its last `tail` lines) to the binary stream out."""
    if tail is not None:
        text = "\n".join(read_lines(path, tail))
        out.write((text + "\n").encode() if text else b"")
    else:
        try:
            with open(path, "rb") as handle:
                out.write(handle.read())
        except FileNotFoundError:
            pass
    out.flush()


def is_running(name):
    from . import containers

    return containers.current(name)["status"] == containers.RUNNING


def follow(name, path, out):
    """Print what the container writes from now on, until it stops."""
    offset = os.path.getsize(path) if os.path.exists(path) else 0
    while True:
        running = is_running(name)
        offset = _copy_from(path, offset, out)
        if not running:
            return
        time.sleep(POLL)


def _copy_from(path, offset, out):
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return offset
    if data:
        out.write(data)
        out.flush()
    return offset + len(data)


def wait_until_stopped(name):
    while is_running(name):
        time.sleep(POLL)
