"""A container's output: its log file, whole, tailed, or followed while it runs.

A log may hold gigabytes: it is copied in chunks, and its tail found by
reading backwards from the end, so memory stays small whatever its size.
"""

import os
import time

POLL = 0.2  # seconds between looks at a followed log: no inotify, nothing resident
CHUNK = 1 << 16


def tail_start(handle, count):
    """The offset of the first of the last `count` lines of a binary file (lines end with \\n)."""
    end = handle.seek(0, os.SEEK_END)
    if count == 0 or end == 0:
        return end
    handle.seek(end - 1)
    wanted = count + 1 if handle.read(1) == b"\n" else count  # a final newline ends a line, starts none
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
            return position + cut + 1
        wanted -= found
    return 0


def read_lines(path, tail=None):
    """The log's lines (the last `tail` of them when given), as text."""
    import io

    buffer = io.BytesIO()
    write(path, tail, buffer)
    data = buffer.getvalue()
    lines = data.decode("utf-8", errors="replace").split("\n")
    return lines[:-1] if data.endswith(b"\n") or not data else lines


def write(path, tail, out):
    """Copy the log (or its last `tail` lines) to the binary stream out."""
    try:
        with open(path, "rb") as handle:
            if tail is not None:
                handle.seek(tail_start(handle, tail))
            _copy(handle, out)
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
    """Copy what the log holds past offset; returns the new offset."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            offset += _copy(handle, out)
    except FileNotFoundError:
        return offset
    out.flush()
    return offset


def _copy(handle, out):
    """Copy the rest of handle to out in chunks; returns the bytes copied."""
    copied = 0
    while True:
        block = handle.read(CHUNK)
        if not block:
            return copied
        out.write(block)
        copied += len(block)


def wait_until_stopped(name):
    while is_running(name):
        time.sleep(POLL)
