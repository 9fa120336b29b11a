"""`container list --filter`: one key's values are alternatives, different keys must all hold."""

import pytest

from fleet.node import filters
from fleet.node.errors import Invalid


def item(name, status="running", image="bb", networks=("farm",), health=None, paused=False, labels=None):
    attached = [{"network": net, "address": "10.0.0.2"} for net in networks]
    return {"name": name, "status": status, "image": image, "health": health, "paused": paused,
            "labels": labels or {}, "networks": attached}  # fmt: skip


ITEMS = [
    item("web1", health="healthy", labels={"role": "web", "tier": ""}),
    item("web2", paused=True, labels={"role": "web-canary"}),
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
        (["label=role"], ["web1", "web2"]),  # any value
        (["label=role=web"], ["web1"]),  # that value only
        (["label=tier="], ["web1"]),  # an empty value is a value
        (["label=role=web", "label=role=web-canary"], ["web1", "web2"]),
    ],
)
def test_filters_select(given, shown):
    chosen = filters.parse(given)
    assert [i["name"] for i in ITEMS if filters.matches(i, chosen)] == shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("status", "invalid --filter 'status': use KEY=VALUE with KEY one of status, name, image, network, health"),
        ("color=red", "KEY one of status, name, image, network, health, label"),
        ("name=", "use KEY=VALUE"),
        ("status=sleeping", "invalid --filter 'status=sleeping': status is one of created, running, paused, exited"),
        ("health=ok", "health is one of starting, healthy, unhealthy, none"),
    ],
)
def test_bad_filters_are_named(value, message):
    with pytest.raises(Invalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        filters.parse([value])
