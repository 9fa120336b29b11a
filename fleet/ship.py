"""Build the node helper as one zipapp, byte-for-byte reproducible.

The same sources give the same bytes (sorted entries, fixed times and
modes), so the file can be named and compared by its sha256.

Each module is shipped as source and as bytecode (an unchecked-hash .pyc:
no timestamp inside). zipimport loads the .pyc when its magic number matches
the host's Python, which saves compiling every module on every command; a
host with another Python version compiles the sources instead. The bytes
therefore depend on the builder's Python minor version too.
"""

import hashlib
import importlib.util
import io
import os

from .node import state, unpack

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Run as a zipapp (python3 -I -S FILE, or by its shebang): the same entry as boot.LINE's.
MAIN = b"from fleet.node.boot import run\nrun()\n"
PACKAGE_INIT = b'"""baleine (only the node helper is shipped to hosts)."""\n'


def zipapp_bytes(node_dir=NODE_DIR):
    """The zipapp's bytes: fleet/node/*.py plus a tiny __main__, with a shebang."""
    import zipfile  # here: most tasks find the build in the cache and never need it

    entries = {"__main__.py": MAIN, "fleet/__init__.py": PACKAGE_INIT}
    for name in sorted(os.listdir(node_dir)):
        if name.endswith(".py"):
            with open(os.path.join(node_dir, name), "rb") as handle:
                entries[f"fleet/node/{name}"] = handle.read()
    for name, source in list(entries.items()):
        entries[name + "c"] = unpack.bytecode(source, name)
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env -S python3 -I -S\n")
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            # Bytecode is stored as is: zipimport then reads it without inflating (3 ms a command).
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".pyc") else zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def build(destination):
    """Write the zipapp to destination (mode 755); returns its sha256."""
    data = zipapp_bytes()
    with state.replacing(destination) as handle:
        handle.write(data)
        os.fchmod(handle.fileno(), 0o755)
    return hashlib.sha256(data).hexdigest()


class Build:
    """The helper as shipped: its bytes and their sha256."""

    def __init__(self, data):
        self.data = data
        self.sha = hashlib.sha256(data).hexdigest()


_current = []


def current():
    """This checkout's helper build: made once per process, and cached on disk by source hash.

    Compiling every module costs a tenth of a second, which every task would
    otherwise pay before its first SSH call.
    """
    if not _current:
        _current.append(Build(_cached_bytes()))
    return _current[0]


def sources_key(node_dir=NODE_DIR):
    """A hash of what the build depends on: the sources, the builder's Python, this file."""
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)
    with open(__file__, "rb") as handle:
        digest.update(handle.read())
    for name in sorted(os.listdir(node_dir)):
        if name.endswith(".py"):
            with open(os.path.join(node_dir, name), "rb") as handle:
                digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()[:24]


def _cached_bytes():
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "baleine")
    path = os.path.join(cache, f"helper-{sources_key()}.pyz")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        pass
    data = zipapp_bytes()
    try:
        os.makedirs(cache, exist_ok=True)
        with state.replacing(path) as handle:
            handle.write(data)
    except OSError:
        pass  # no cache then (a full disk, say); the build is still right
    return data
