"""Fetching pages from containers in the tests."""

import time
import urllib.request


def fetch(url, timeout=5.0):
    """GET url and return its text, retrying while the container's server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
