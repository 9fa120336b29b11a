"""Fault injection for the crash-repair tests: die at a named point, like a power cut.

BALEINE_FAULT=NAME makes the command SIGKILL itself when it reaches
point(NAME). Unset (always, outside tests), a point costs one dict lookup.
"""

import os


def point(name):
    if os.environ.get("BALEINE_FAULT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
