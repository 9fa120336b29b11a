"""Fault injection for tests: die at a named point, like a power cut, or pause there.

BALEINE_FAULT=NAME makes the command SIGKILL itself when it reaches
point(NAME); BALEINE_FAULT=pause:NAME makes it sleep a second there instead,
to open a race window wide; BALEINE_FAULT=fail:NAME raises the error a
refusing kernel or a full disk would, so the undoing can be watched. Unset
(always, outside tests), a point costs one dict lookup.
"""

import os

PAUSE = 1.0  # seconds: far longer than any step a test waits for


def point(name):
    fault = os.environ.get("BALEINE_FAULT")
    if fault is None:
        return
    if fault == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "pause:" + name:
        import time

        time.sleep(PAUSE)
    elif fault == "fail:" + name:
        from .errors import BaleineError

        raise BaleineError(f"injected failure at {name}")
