"""A container's copy of its image: only the data travels, and it is synced unless a crash makes it worthless."""

import os

import pytest

from fleet.node import images


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "image.ext4"
    with open(path, "wb") as handle:
        handle.truncate(8 << 20)
        handle.seek(1 << 20)
        handle.write(b"data" * 1024)
    return path


@pytest.mark.parametrize(("durable", "synced"), [(True, 1), (False, 0)])
def test_a_copy_is_synced_unless_it_is_run_rm_s(image, tmp_path, monkeypatch, durable, synced):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    target = tmp_path / "disk.ext4"
    images.copy_file(str(image), str(target), durable)
    assert len(calls) == synced
    assert target.read_bytes() == image.read_bytes()
    assert target.stat().st_blocks <= image.stat().st_blocks  # the holes stay holes
