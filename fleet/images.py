"""`invoke image.push`: send an image file to hosts, only where that sha256 is missing.

The image comes from this machine's own baleine state ($BALEINE_ROOT, else
/var/lib/baleine), or with --from HOST from another host: it is then fetched
once into a temporary sparse file here, checked, and pushed like a local one.

The bytes travel as `baleine image send` writes them (fleet/node/transfer.py):
only data extents, never holes; the host registers the image only when the
whole file arrived with the announced sha256.
"""

import os
import sys
import tempfile
import threading
import time

from . import client
from .errors import FleetError, HelperError
from .node import parse, transfer


class Source:
    """An image file to push: its path and the metadata the stream announces."""

    def __init__(self, path, meta, cleanup=None):
        self.path = path
        self.meta = meta
        self.cleanup = cleanup

    @property
    def digest(self):
        return self.meta["digest"]

    def close(self):
        if self.cleanup:
            self.cleanup()


def local_source(name):
    """Image `name` from this machine's baleine state."""
    from .node import images
    from .node.errors import BaleineError

    try:
        row = images.get(name)
    except BaleineError as error:
        raise FleetError(f"{error.message} on this machine; use --from HOST to take it from a host") from None
    meta = {"name": name, "digest": row["digest"], "source": row["source"], "config": images.config(name)}
    return Source(images.image_file(name), meta)


def file_source(path, name):
    """An ext4 image file given by path (not registered here): pushed under `name`."""
    from .node import images

    if not os.path.isfile(path):
        raise FleetError(f"no image file {path!r}")
    meta = {"name": name, "digest": "sha256:" + images.file_sha256(path), "source": f"file:{os.path.basename(path)}",
            "config": {}}  # fmt: skip
    return Source(path, meta)


def fetched_source(session, name):
    """Image `name` fetched from a host into a temporary file here (checked against its sha256)."""
    import shutil

    channel = client.start(session, "image", "send", name)  # before the directory: it may not connect
    work = None
    try:
        work = tempfile.mkdtemp(prefix="baleine-push-")
        path = os.path.join(work, "image.ext4")
        reader = channel.makefile("rb")
        meta = transfer.read_header(reader)
        digest = transfer.write_frames(reader, path, meta["size"])
        code = channel.recv_exit_status()
    except BaseException as error:  # an interrupted fetch leaves no partial image here either
        if work:
            shutil.rmtree(work, ignore_errors=True)
        if isinstance(error, FleetError) or not isinstance(error, Exception):
            raise
        stderr = channel.recv_stderr(1 << 16) if channel.recv_stderr_ready() else b""  # never wait for more
        raise HelperError(session.host.name, ["image", "send", name], None,
                          f"could not fetch image {name!r}: {error}", stderr) from None  # fmt: skip
    finally:
        channel.close()
    if code != 0 or f"sha256:{digest}" != meta["digest"]:
        shutil.rmtree(work, ignore_errors=True)
        raise HelperError(session.host.name, ["image", "send", name], code, f"image {name!r} arrived damaged")
    meta.pop("size", None)
    meta.pop("payload", None)
    return Source(path, meta, cleanup=lambda: shutil.rmtree(work, ignore_errors=True))


def plan(session, source):
    """'present' when the host has this image, 'send' when it lacks it; a clash is an error."""
    for item in client.call(session, "image", "list"):
        if item["name"] != source.meta["name"]:
            continue
        if item["digest"] == source.digest:
            return "present"
        raise HelperError(
            session.host.name, ["image", "list"], 0,
            f"image {item['name']!r} exists there with another sha256 ({item['digest'][7:19]}, "
            f"pushing {source.digest[7:19]}): remove it there first (invoke image.rm)",
        )  # fmt: skip
    return "send"


def send(session, source, progress=None):
    """Stream the image to the host; returns the data bytes sent."""
    counted = _Counted(transfer.stream(source.path, source.meta), progress, session.host.name)
    client.call(session, "image", "receive", stdin=counted)
    return counted.sent


class _Counted:
    """An iterator over stream pieces that reports progress as they go out."""

    def __init__(self, pieces, progress, host):
        self.pieces = pieces
        self.progress = progress
        self.host = host
        self.sent = 0

    def __iter__(self):
        for piece in self.pieces:
            yield piece
            self.sent += len(piece)
            if self.progress:
                self.progress.add(self.host, len(piece))


class Progress:
    """One line on stderr: how much of the image has gone to how many hosts."""

    def __init__(self, name, payload, hosts, stream=None):
        self.name = name
        self.total = max(1, payload * hosts)
        self.hosts = hosts
        self.done = 0
        self.lock = threading.Lock()
        self.stream = stream or sys.stderr
        self.shown = 0.0
        self.live = self.stream.isatty()

    def add(self, _host, count):
        with self.lock:
            self.done += count
            now = time.monotonic()
            if self.live and now - self.shown > 0.1:
                self.shown = now
                self._draw()

    def _draw(self, end=""):
        share = min(1.0, self.done / self.total)
        bar = "#" * int(share * 30)
        self.stream.write(
            f"\r{self.name} -> {self.hosts} host(s) [{bar:<30}] {share:4.0%} "
            f"{parse.human_size(self.done)} of {parse.human_size(self.total)}{end}"
        )
        self.stream.flush()

    def finish(self):
        if self.live:
            self._draw("\n")


def payload_bytes(path):
    """Bytes of data (not holes) in the image file: what a push sends to each host."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return sum(length for _, length in transfer.data_extents(fd))
    finally:
        os.close(fd)
