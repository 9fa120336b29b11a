"""Images over a pipe: `baleine image send NAME` and `baleine image receive`.

The stream carries only the file's data; holes (most of a fresh ext4 image)
are never sent. Format, all integers big-endian:

    BALEINE-IMAGE/1 {"name", "digest", "size", "config", "source", "payload"}\\n
    frames: offset (8 bytes), length (8 bytes), then `length` bytes of data,
            in increasing offset order
    end:    offset 2**64-1, length 0

The receiver writes into a build directory under images/ (named with its pid,
so `check` can clean up after a killed receive), hashes the whole file as it
goes (holes count as zeros), and registers the image only when the stream
ended properly and the sha256 is the one announced. A cut stream therefore
leaves nothing that looks like an image.

The control machine uses the same module (fleet/images.py) to send images it
holds itself.
"""

import os
import struct

from . import jsonlite, parse, state
from .errors import BaleineError, Invalid

MAGIC = b"BALEINE-IMAGE/1 "
FRAME = struct.Struct(">QQ")
END = (2**64 - 1, 0)
CHUNK = 1 << 20
ZERO_CHUNK = bytes(CHUNK)
MAX_HEADER = 1 << 20


def data_extents(fd):
    """[(offset, length)] of a file's data, in order (the whole file where SEEK_DATA is missing)."""
    size = os.fstat(fd).st_size
    extents, offset = [], 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as error:
                if error.errno == 6:  # ENXIO: only a hole remains
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, end - start))
            offset = end
    except OSError:
        return [(0, size)] if size else []
    return extents


def frames(fd, extents):
    """(offset, bytes) pieces of the extents, skipping chunks that are all zeros."""
    for start, length in extents:
        offset, end = start, start + length
        while offset < end:
            data = os.pread(fd, min(CHUNK, end - offset), offset)
            if not data:
                raise BaleineError("the image file shrank while being sent")
            if data != ZERO_CHUNK[: len(data)]:
                yield offset, data
            offset += len(data)


def header(meta):
    return MAGIC + jsonlite.dumps(meta, sort_keys=True).encode() + b"\n"


def stream(path, meta):
    """The whole stream for the image file at path: header, frames, end marker (bytes pieces)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        extents = data_extents(fd)
        meta = dict(meta, size=os.fstat(fd).st_size, payload=sum(length for _, length in extents))
        yield header(meta)
        for offset, data in frames(fd, extents):
            yield FRAME.pack(offset, len(data)) + data
        yield FRAME.pack(*END)
    finally:
        os.close(fd)


def send(name, out):
    """Write image `name` to the binary stream out; returns the number of data bytes sent."""
    from . import images

    row = images.get(name)
    meta = {"name": name, "digest": row["digest"], "source": row["source"], "config": images.config(name)}
    sent = 0
    for piece in stream(images.image_file(name), meta):
        out.write(piece)
        sent += len(piece)
    out.flush()
    return sent


def read_header(source):
    line = source.readline(MAX_HEADER)
    if not line.startswith(MAGIC) or not line.endswith(b"\n"):
        raise Invalid("not a baleine image stream (it must start with BALEINE-IMAGE/1)")
    try:
        meta = jsonlite.loads(line[len(MAGIC) :])
        parse.name(meta["name"], "image name")
        if not (isinstance(meta["size"], int) and meta["size"] > 0):
            raise ValueError("size")
        if not str(meta["digest"]).startswith("sha256:") or len(meta["digest"]) != 71:
            raise ValueError("digest")
    except (ValueError, KeyError, TypeError) as error:
        raise Invalid(f"bad image stream header ({error})") from None
    return meta


def receive(source):
    """Read a stream from the binary file `source` and register the image; returns its row."""
    from . import images

    meta = read_header(source)
    name = meta["name"]
    state.ensure_layout()
    images.refuse_taken(name)
    with images.build_dir(name) as work:
        staged = os.path.join(work, "image.ext4")
        digest = write_frames(source, staged, meta["size"])
        if f"sha256:{digest}" != meta["digest"]:
            raise BaleineError(f"image {name!r} arrived damaged: sha256 {digest}, expected {meta['digest']}")
        label = meta.get("source") or "received"
        return images.register(name, staged, meta.get("config") or {}, label, digest=meta["digest"])


def write_frames(source, target, size):
    """Write frames into a sparse file of `size` bytes; returns the sha256 of the whole file."""
    import hashlib

    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size)
        hashed = 0
        while True:
            offset, length = FRAME.unpack(_exactly(source, FRAME.size))
            if (offset, length) == END:
                break
            if offset < hashed or offset + length > size or length > CHUNK:
                raise Invalid(f"bad image stream: frame at {offset} (+{length}) out of order or past {size}")
            _hash_zeros(digest, offset - hashed)
            data = _exactly(source, length)
            os.pwrite(fd, data, offset)
            digest.update(data)
            hashed = offset + length
        _hash_zeros(digest, size - hashed)
        os.fsync(fd)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _hash_zeros(digest, count):
    while count > 0:
        step = min(count, CHUNK)
        digest.update(ZERO_CHUNK[:step])
        count -= step


def _exactly(source, count):
    data = source.read(count)
    if len(data) != count:
        raise BaleineError("the image stream ended early (the sender stopped): nothing was registered")
    return data
