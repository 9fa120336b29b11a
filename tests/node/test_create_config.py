"""How create resolves the command against the image's ENTRYPOINT and CMD, Docker's way (no root needed)."""

import pytest

from fleet.node import containers, images
from fleet.node.errors import Invalid

NGINX = {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"]}


@pytest.fixture
def image(monkeypatch):
    def use(config):
        monkeypatch.setattr(images, "config", lambda name: config)

    return use


def command(command=(), entrypoint=None):
    return containers._container_config("img", list(command), (), (), None, None, None, None, entrypoint)["command"]


@pytest.mark.parametrize(
    ("given", "entrypoint", "expected"),
    [
        ((), None, ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]),
        (("nginx", "-t"), None, ["/docker-entrypoint.sh", "nginx", "-t"]),
        ((), "sh", ["sh"]),  # --entrypoint drops the image's CMD too
        (("-c", "id"), "sh", ["sh", "-c", "id"]),
        ((), "", ["nginx", "-g", "daemon off;"]),  # '': no entrypoint, the image's CMD
        (("id",), "", ["id"]),
    ],
)
def test_entrypoint_and_cmd(image, given, entrypoint, expected):
    image(NGINX)
    assert command(given, entrypoint) == expected


def test_nothing_to_run_is_refused(image):
    image({"Entrypoint": ["/init"]})
    with pytest.raises(Invalid, match="no command given"):
        command((), "")
