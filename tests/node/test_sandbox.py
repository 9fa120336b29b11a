"""The init's pure parts: user resolution against the image's /etc files."""

import pytest

from fleet.node import sandbox


@pytest.fixture
def etc(tmp_path):
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbad line\n")  # fmt: skip
    (tmp_path / "group").write_text("root:x:0:\nwww:x:33:\nweb:x:80:www,other\n")
    return str(tmp_path)


def test_names_ids_groups_and_home(etc):
    assert sandbox.resolve_user("www", etc) == (33, 33, [33, 80], "/var/www")
    assert sandbox.resolve_user("33", etc) == (33, 33, [33, 80], "/var/www")
    assert sandbox.resolve_user("www:web", etc) == (33, 80, [80], "/var/www")  # as runc: no passwd group
    assert sandbox.resolve_user("0", etc)[:2] == (0, 0)


def test_unknown_numeric_ids_are_allowed_like_docker(etc):
    assert sandbox.resolve_user("1234", etc) == (1234, 0, [0], "/")
    assert sandbox.resolve_user("1234:5678", etc) == (1234, 5678, [5678], "/")


def test_unknown_names_are_refused(etc):
    with pytest.raises(sandbox.SetupError, match="ghost"):
        sandbox.resolve_user("ghost", etc)
    with pytest.raises(sandbox.SetupError, match="nogroup"):
        sandbox.resolve_user("www:nogroup", etc)
