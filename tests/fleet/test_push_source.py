"""Where image.push and deploy take an image from (pure: temporary files)."""

import hashlib

import pytest

from fleet import images
from fleet.errors import FleetError


def test_an_image_file_is_pushed_under_the_given_name_with_its_sha256(tmp_path):
    path = tmp_path / "web.ext4"
    path.write_bytes(b"\0" * 4096 + b"data")
    source = images.file_source(str(path), "web")
    assert source.meta["name"] == "web" and source.meta["source"] == "file:web.ext4"
    assert source.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert images.payload_bytes(str(path)) >= 4


def test_a_missing_file_or_local_image_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FleetError, match="no image file"):
        images.file_source(str(tmp_path / "none.ext4"), "web")
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    with pytest.raises(FleetError, match=r"no such image 'web'.* on this machine; use --from HOST"):
        images.local_source("web")
