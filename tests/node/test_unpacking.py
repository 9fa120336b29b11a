"""A layer unpacked by its own thread (imports.Unpacking): the same bytes and digests as gzip gives, errors raised
in the reading thread, a reader that gives up lets the thread go."""

import gzip
import hashlib
import io
import os
import zlib

import pytest

from fleet.node import imports

DATA = os.urandom(3 << 20) + b"text " * 200_000  # random, then compressible: several chunks either way


def unpacking(blob_bytes):
    blob = imports.Hashing(io.BytesIO(blob_bytes))
    head = blob.read(4)
    return blob, imports.Unpacking(blob, head, gzipped=head[:2] == imports.GZIP_MAGIC)


def read_in_odd_sizes(stream):
    parts, sizes = [], [1, 511, 10240, 7, 1 << 20]
    while True:
        data = stream.read(sizes[len(parts) % len(sizes)])
        if not data:
            return b"".join(parts)
        parts.append(data)


@pytest.mark.parametrize(
    "blob_bytes",
    [gzip.compress(DATA, mtime=0), DATA,
     gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]),  # two members, as concatenated gzip files
     gzip.compress(DATA) + b"\0" * 5000],  # NUL padding after the member, which gzip accepts
    ids=["gzip", "plain", "members", "padded"],
)  # fmt: skip
def test_the_stream_and_its_digests_are_what_gzip_gives(blob_bytes):
    blob, stream = unpacking(blob_bytes)
    assert read_in_odd_sizes(stream) == DATA
    assert stream.drain() == "sha256:" + hashlib.sha256(DATA).hexdigest()  # the diff id
    assert blob.drain() == "sha256:" + hashlib.sha256(blob_bytes).hexdigest()  # the blob's digest


def test_no_chunk_is_longer_than_the_limit_whatever_the_ratio():
    zeros = gzip.compress(bytes(64 << 20))  # 64 MiB of zeros in 64 KiB
    sizes = [len(chunk) for chunk in imports._gunzipped(iter([zeros]), 1 << 20)]
    assert sum(sizes) == 64 << 20 and max(sizes) == 1 << 20


@pytest.mark.parametrize(
    "blob_bytes, error, message",
    [(gzip.compress(DATA)[:-100], EOFError, "Compressed file ended before the end-of-stream marker was reached"),
     (gzip.compress(DATA)[:-8] + b"\0\0\0\0" + gzip.compress(DATA)[-4:], zlib.error,
      r"its gzip data is damaged \(Error -3 while decompressing data: incorrect data check\)")],
    ids=["truncated", "crc"],
)  # fmt: skip
def test_damage_is_raised_in_the_reading_thread(blob_bytes, error, message):
    _blob, stream = unpacking(blob_bytes)
    with pytest.raises(error, match=message):
        stream.drain()
    assert stream.read(10) == b""  # ended: no second error, no hang
    stream.thread.join(5)
    assert not stream.thread.is_alive()


def test_a_reader_that_gives_up_lets_the_thread_go():
    _blob, stream = unpacking(DATA * 8)  # twice QUEUED chunks: the thread waits for room in the queue
    first = stream.read(100)
    assert first and DATA.startswith(first)
    stream.thread.join(0.5)
    assert stream.thread.is_alive()  # still waiting to hand over the rest
    stream.stop()
    stream.thread.join(5)
    assert not stream.thread.is_alive()
