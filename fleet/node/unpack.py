"""Unpack the helper's zipapp into a directory, its modules compiled by this host's Python.

The control side runs helper commands from that directory. Through the
zipapp, zipimport reads the archive's table of contents in Python on every
command: each started 2.5 ms later. The bytecode written here is this host's
own (an unchecked-hash .pyc in __pycache__, as `compileall
--invalidation-mode unchecked-hash` writes it), whatever Python built the
zipapp, so no command compiles a module or writes a file.

Done once per helper build and host, when the control side ships it: every
file and directory is synced, then the whole tree renamed into place, so the
directory either holds the complete helper or does not exist.
"""

import os

PREFIX = ".unpacking-"  # the tree being written, beside its destination
STALE = 3600  # seconds: an unpacking directory this old was left by an upload that was killed


def unpack(zipapp, destination):
    """Write zipapp's modules and their bytecode to destination (a new directory).

    If destination appeared meanwhile (another upload of the same build), it
    is left as it is: a build's tree is the same whoever unpacked it.
    """
    import shutil
    import tempfile
    import zipfile

    parent = os.path.dirname(os.path.abspath(destination))
    _remove_stale(parent, shutil.rmtree)
    work = tempfile.mkdtemp(prefix=PREFIX, dir=parent)
    try:
        with zipfile.ZipFile(zipapp) as archive:
            sources = {info.filename: archive.read(info) for info in archive.infolist() if _is_module(info.filename)}
        for name, source in sorted(sources.items()):
            _write_module(work, destination, name, source)
        for folder, _, _ in os.walk(work):
            _sync(folder)
        os.chmod(work, 0o755)
        try:
            os.rename(work, destination)
        except OSError:
            if not os.path.isdir(destination):
                raise
            return  # another upload of this build put it there first
        _sync(parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_stale(parent, remove):
    """What uploads killed while unpacking left (not another upload's work, which is younger)."""
    import time

    for entry in os.listdir(parent):
        path = os.path.join(parent, entry)
        try:
            stale = entry.startswith(PREFIX) and time.time() - os.lstat(path).st_mtime > STALE
        except FileNotFoundError:
            continue
        if stale:
            remove(path, ignore_errors=True)


def _is_module(name):
    """A module's source in the archive: the builder's own bytecode is left out, and a name that
    would leave the directory is never taken."""
    parts = name.split("/")
    return name.endswith(".py") and not name.startswith("/") and ".." not in parts and "" not in parts


def _write_module(work, destination, name, source):
    """The source and its bytecode, which names the module's path once renamed into place (tracebacks)."""
    import importlib.util

    parts = name.split("/")
    path = os.path.join(work, *parts)
    os.makedirs(os.path.join(os.path.dirname(path), "__pycache__"), mode=0o755, exist_ok=True)
    _write(path, source)
    _write(importlib.util.cache_from_source(path), bytecode(source, os.path.join(destination, *parts)))


def bytecode(source, path):
    """An unchecked-hash .pyc (PEP 552) of source for this Python: valid without comparing timestamps."""
    import importlib.util
    import marshal

    code = compile(source, path, "exec", dont_inherit=True)
    flags = (1).to_bytes(4, "little")  # hash-based, source not checked
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def _write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(folder):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
