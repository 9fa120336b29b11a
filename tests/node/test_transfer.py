"""The image stream: only data travels, holes stay holes, and nothing registers unless whole and intact."""

import hashlib
import io
import os

import pytest

from fleet.node import state, transfer
from fleet.node.errors import BaleineError, Conflict, Invalid


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


def sparse_file(path, size=64 << 20):
    """A sparse file with data at a few places: 3 MiB of data in 64 MiB."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in (0, 20 << 20, size - (1 << 20)):
            handle.seek(offset)
            handle.write(os.urandom(1 << 20))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def image_stream(path, digest, name="web"):
    meta = {"name": name, "digest": f"sha256:{digest}", "source": "busybox", "config": {"Cmd": ["httpd"]}}
    return b"".join(transfer.stream(str(path), meta))


def received_names(root):
    return [row["name"] for row in state.IMAGES.read()]


def test_round_trip_sends_only_data_and_keeps_the_file_sparse(root, tmp_path):
    source = tmp_path / "image.ext4"
    digest = sparse_file(source)
    data = image_stream(source, digest)
    assert len(data) < 4 << 20  # 3 MiB of data, not 64 MiB
    row = transfer.receive(io.BytesIO(data))
    assert row["digest"] == f"sha256:{digest}" and row["source"] == "busybox"
    received = root / "images" / "web.ext4"
    assert hashlib.sha256(received.read_bytes()).hexdigest() == digest
    assert received.stat().st_blocks * 512 < 8 << 20  # holes stayed holes
    assert (root / "images" / "web.json").read_text().count("httpd") == 1


def test_zero_chunks_inside_data_are_not_sent(root, tmp_path):
    source = tmp_path / "zeros.ext4"
    source.write_bytes(bytes(8 << 20))  # written zeros: data extents, all zero
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert len(image_stream(source, digest)) < 4096
    assert transfer.receive(io.BytesIO(image_stream(source, digest)))["digest"] == f"sha256:{digest}"


def test_a_cut_stream_registers_nothing_and_leaves_no_file(root, tmp_path):
    source = tmp_path / "image.ext4"
    data = image_stream(source, sparse_file(source))
    with pytest.raises(BaleineError, match="ended early"):
        transfer.receive(io.BytesIO(data[: len(data) // 2]))
    assert received_names(root) == []
    assert os.listdir(root / "images") == []


def test_a_damaged_stream_is_refused(root, tmp_path):
    source = tmp_path / "image.ext4"
    data = bytearray(image_stream(source, sparse_file(source)))
    data[-100] ^= 0xFF  # one flipped bit in the last frame's data
    with pytest.raises(BaleineError, match="arrived damaged"):
        transfer.receive(io.BytesIO(bytes(data)))
    assert received_names(root) == [] and os.listdir(root / "images") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\n", "not a baleine image stream"),
        (transfer.MAGIC + b'{"name": "../x", "size": 1, "digest": "sha256:' + b"0" * 64 + b'"}\n', "image name"),
        (transfer.MAGIC + b'{"name": "x", "size": -1, "digest": "sha256:' + b"0" * 64 + b'"}\n', "size"),
        (transfer.MAGIC + b'{"name": "x", "size": 9, "digest": "md5:00"}\n', "digest"),
        (
            transfer.MAGIC
            + b'{"name": "x", "size": 4096, "digest": "sha256:'
            + b"0" * 64
            + b'"}\n'
            + transfer.FRAME.pack(4000, 200)
            + bytes(200),
            "out of order or past 4096",
        ),
    ],
)
def test_bad_streams_are_refused(root, data, message):
    with pytest.raises(Invalid, match=message):
        transfer.receive(io.BytesIO(data))
    assert received_names(root) == []


def test_an_existing_name_is_refused(root, tmp_path):
    source = tmp_path / "image.ext4"
    data = image_stream(source, sparse_file(source, 1 << 20))
    transfer.receive(io.BytesIO(data))
    with pytest.raises(Conflict, match="already exists"):
        transfer.receive(io.BytesIO(data))
