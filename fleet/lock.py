"""The fleet's deploy lock: one deploy at a time, and who holds it since when.

A file next to the inventory, locked with flock (released by the kernel if
the holder dies) and holding one line about its holder for the others.
"""

import getpass
import os
import socket
import time
from contextlib import contextmanager

from .errors import FleetError
from .node import state


def holder_line():
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since {stamp}"


@contextmanager
def held(path, wait=0.0):
    """Hold the lock at path, waiting up to `wait` seconds; FleetError naming the holder otherwise."""
    with state.exclusive(path, wait, holder_line()) as holder:
        if holder:
            raise FleetError(f"a deploy is already running: {holder} ({path}); "
                             f"wait for it, or give --lock-wait SECONDS")  # fmt: skip
        yield
