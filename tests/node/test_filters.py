"""`container list --filter`: one key's values are alternatives, different keys must all hold."""

import pytest

from fleet.node import filters
from fleet.node.errors import Invalid


def item(name, status="running", image="bb", networks=("farm",), health=None, paused=False):
    return {"name": name, "status": status, "image": image, "health": health, "paused": paused,
            "networks": [{"network": net, "address": "10.0.0.2"} for net in networks]}  # fmt: skip


ITEMS = [
    item("web1", health="healthy"),
    item("web2", paused=True),
    item("db", image="postgres", networks=("back",), health="unhealthy"),
    item("job", status="exited", networks=()),
    item("new", status="created"),
]


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (["status=running"], ["web1", "db"]),  # a paused one is not running, as in Docker
        (["status=paused"], ["web2"]),
        (["status=exited", "status=created"], ["job", "new"]),
        (["name=web*"], ["web1", "web2"]),
        (["name=web*", "status=running"], ["web1"]),
        (["image=postgres"], ["db"]),
        (["network=farm", "network=back"], ["web1", "web2", "db", "new"]),
        (["health=none"], ["web2", "job", "new"]),
        (["health=unhealthy", "image=bb"], []),
    ],
)
def test_filters_select(given, shown):
    chosen = filters.parse(given)
    assert [i["name"] for i in ITEMS if filters.matches(i, chosen)] == shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("status", "invalid --filter 'status': use KEY=VALUE with KEY one of status, name, image, network, health"),
        ("color=red", "KEY one of status, name, image, network, health"),
        ("name=", "use KEY=VALUE"),
        ("status=sleeping", "invalid --filter 'status=sleeping': status is one of created, running, paused, exited"),
        ("health=ok", "health is one of starting, healthy, unhealthy, none"),
    ],
)
def test_bad_filters_are_named(value, message):
    with pytest.raises(Invalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        filters.parse([value])
