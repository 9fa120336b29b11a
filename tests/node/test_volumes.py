"""Named volumes: made on first use, kept across containers, removed only when no container names them."""

import os

import pytest

pytestmark = pytest.mark.integration


def test_a_named_volume_outlives_its_containers(busybox):
    busybox.ok("container", "run", "--rm", "-v", "data:/data", "bb", "sh", "-c", "echo kept > /data/f")
    (volume,) = busybox.ok("volume", "list")
    assert (volume["name"], volume["path"], volume["containers"]) == (
        "data",
        str(busybox.root / "volumes" / "data"),
        [],
    )
    assert (busybox.root / "volumes" / "data" / "f").read_text() == "kept\n" and volume["bytes"] > 0
    done = busybox.cli("container", "run", "--rm", "-v", "data:/in:ro", "bb", "sh", "-c", "cat /in/f; touch /in/g")
    assert done.stdout == "kept\n" and "Read-only file system" in done.stderr

    busybox.ok("container", "create", "--name", "user", "-v", "data:/data", "bb", "true")
    assert busybox.ok("volume", "inspect", "data")["containers"] == ["user"]
    reply = busybox.call("volume", "rm", "data")
    assert (reply["error"]["code"], reply["error"]["message"]) == (
        "conflict", "volume 'data' is in use by container user: remove the container first")  # fmt: skip
    assert busybox.ok("volume", "prune") == []  # in use: kept
    busybox.ok("container", "rm", "user")
    (pruned,) = busybox.ok("volume", "prune")
    assert pruned["name"] == "data" and pruned["freed"] > 0
    assert busybox.ok("volume", "list") == [] and not (busybox.root / "volumes" / "data").exists()


def test_volume_create_list_rm_and_errors(busybox):
    assert busybox.ok("volume", "create", "empty")["bytes"] == 0
    assert busybox.call("volume", "create", "empty")["error"]["message"] == "volume 'empty' already exists"
    assert busybox.call("volume", "create", "bad/name")["error"]["code"] == "invalid"
    assert busybox.call("volume", "rm", "ghost")["error"]["code"] == "not_found"
    reply = busybox.call("container", "create", "-v", "no_good!:/x", "bb", "true")
    assert reply["error"]["message"].startswith("invalid volume 'no_good!:/x': invalid volume name 'no_good!'")
    lines = busybox.cli("volume", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "USED", "CONTAINERS", "CREATED"] and lines[1].startswith("empty")
    busybox.ok("volume", "rm", "empty")
    assert busybox.ok("volume", "list") == []


def test_a_volume_made_for_a_userns_container_belongs_to_its_root(busybox):
    done = busybox.cli("container", "run", "--rm", "--userns", "-v", "mine:/data", "bb", "sh", "-c",
                       "touch /data/f && stat -c %u /data/f")  # fmt: skip
    assert done.stdout == "0\n", done.stderr
    owner = os.stat(busybox.root / "volumes" / "mine").st_uid
    assert owner >= 1_000_000_000  # the container's root on the host: its id range's first id
