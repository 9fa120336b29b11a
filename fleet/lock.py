"""The fleet's deploy lock: one deploy at a time, and who holds it since when.

A file next to the inventory, locked with flock (released by the kernel if
the holder dies) and holding one line about its holder for the others.
"""

import fcntl
import getpass
import os
import socket
import time
from contextlib import contextmanager

from .errors import FleetError


def holder_line():
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since {stamp}"


@contextmanager
def held(path, wait=0.0):
    """Hold the lock at path, waiting up to `wait` seconds; FleetError naming the holder otherwise."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, float(wait))
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another deploy"
                    raise FleetError(f"a deploy is already running: {holder} ({path}); "
                                     f"wait for it, or give --lock-wait SECONDS") from None  # fmt: skip
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder_line() + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the flock
