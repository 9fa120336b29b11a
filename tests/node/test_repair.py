"""Crash repair: a command killed at any of its steps leaves at most what check repairs.

BALEINE_FAULT=POINT makes the command SIGKILL itself at that point (like a
power cut). Then one `check` pass must leave state consistent: each container
usable or cleanly gone, and (the fixture checks after cleanup) no mount, loop
device, veth, bridge or cgroup behind.
"""

import os

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration

CREATE = ("container", "create", "--name", "c", "--network", "farm", "bb", "sleep", "300")
RUN = ("container", "run", "-d", "--name", "c", "--network", "farm", "bb", "sleep", "300")

CASES = {  # point: (what runs before, the command that dies)
    "create:reserved": ((), CREATE),
    "create:copied": ((), CREATE),
    "create:done": ((), CREATE),
    "start:claimed": ((CREATE,), ("container", "start", "c")),
    "start:cgroup": ((CREATE,), ("container", "start", "c")),
    "start:limits": ((CREATE,), ("container", "start", "c")),
    "start:forked": ((CREATE,), ("container", "start", "c")),
    "start:accepted": ((CREATE,), ("container", "start", "c")),
    "start:plugged": ((CREATE,), ("container", "start", "c")),
    "start:disk-limits": ((CREATE,), ("container", "start", "c")),
    "start:released": ((CREATE,), ("container", "start", "c")),
    "start:recording": ((CREATE,), ("container", "start", "c")),
    "stop:signalled": ((RUN,), ("container", "stop", "--time", "0.3", "c")),
    "stop:killed": ((RUN,), ("container", "stop", "--time", "0.3", "c")),
    "finalize:awaited": ((RUN,), ("container", "stop", "--time", "0", "c")),
    "finalize:cleaned": ((RUN,), ("container", "stop", "--time", "0", "c")),
    "rm:stopped": ((RUN,), ("container", "rm", "--force", "c")),
    "rm:cgroup": ((RUN,), ("container", "rm", "--force", "c")),
    "rm:row": ((RUN,), ("container", "rm", "--force", "c")),
    "add:recorded": (
        (RUN, ("network", "create", "back", "--subnet", "BACK")),
        ("container", "add", "c", "--network", "back"),
    ),
    "add:plugged": (
        (RUN, ("network", "create", "back", "--subnet", "BACK")),
        ("container", "add", "c", "--network", "back"),
    ),
    "disconnect:unplugged": (
        (("network", "create", "back", "--subnet", "BACK"), RUN, ("container", "add", "c", "--network", "back")),
        ("network", "disconnect", "farm", "c"),
    ),
    "network:recorded": ((), ("network", "create", "back", "--subnet", "BACK")),
}


@pytest.mark.parametrize("point", sorted(CASES))
def test_check_repairs_a_command_killed_at(busybox, point):
    back = free_subnet()
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    before, command = CASES[point]
    for args in before:
        busybox.ok(*(back if word == "BACK" else word for word in args))
    env = dict(busybox.env, BALEINE_FAULT=point)
    import subprocess

    killed = subprocess.run(busybox.argv(*(back if word == "BACK" else word for word in command)), env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert killed.returncode == -9, f"{point} was not reached: {killed.returncode} {killed.stderr}"

    busybox.ok("check")
    items = busybox.ok("container", "list", "--all")
    assert all(item["status"] in ("created", "running", "exited") for item in items), items
    for item in items:
        if item["status"] != "running":
            busybox.ok("container", "start", item["name"])
        assert busybox.ok("container", "exec", item["name"], "true")["exit_code"] == 0
        addresses = busybox.exec_out(item["name"], "ip", "-o", "addr")
        for network in busybox.ok("container", "inspect", item["name"])["networks"]:
            assert f" {network['address']}/" in addresses, (network, addresses)  # every recorded one is plugged
    dirs = {entry for entry in os.listdir(busybox.root / "containers")}
    assert dirs == {busybox.ok("container", "inspect", item["name"])["id"] for item in items}
    if point == "network:recorded":
        busybox.ok("container", "run", "-d", "--name", "late", "--network", "back", "bb", "sleep", "300")


def test_configs_and_images_are_roots_alone_and_check_closes_open_ones(busybox):
    """config.json holds the container's env (secrets, sometimes), an image may be private: no other user may read
    them, as with Docker."""
    busybox.ok("container", "create", "--name", "c", "--env", "TOKEN=s3cret", "bb", "true")
    config = busybox.root / "containers" / busybox.ok("container", "inspect", "c")["id"] / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    busybox.ok("container", "update", "c", "--memory", "64M")  # written again: still root's alone
    assert config.stat().st_mode & 0o777 == 0o600
    image, image_config = busybox.root / "images" / "bb.ext4", busybox.root / "images" / "bb.json"
    assert image.stat().st_mode & 0o777 == 0o600 and image_config.stat().st_mode & 0o777 == 0o600
    for path in (config, image, image_config):
        path.chmod(0o644)  # as every one was before
    report = busybox.ok("check")
    assert report["repaired"] == ["made the config of c root's alone: others could read it",
                                  "made image bb root's alone: others could read it",
                                  "made the config of image bb root's alone: others could read it"], report  # fmt: skip
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in (config, image, image_config))
    assert busybox.ok("check")["repaired"] == []  # once


def test_a_run_killed_between_its_create_and_its_start_is_a_half_made_container_check_removes(busybox):
    """run starts what it creates without first marking it created (one synced write fewer): killed in
    between, the container was never made on purpose, and check removes it."""
    import subprocess

    env = dict(busybox.env, BALEINE_FAULT="create:done")
    killed = subprocess.run(busybox.argv("container", "run", "-d", "--name", "c", "bb", "sleep", "300"), env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert [item["status"] for item in busybox.ok("container", "list", "--all")] == ["creating"]
    assert busybox.ok("check")["repaired"] == ["removed c: its create was interrupted"]
    assert busybox.ok("container", "list", "--all") == [] and os.listdir(busybox.root / "containers") == []
    busybox.ok("container", "create", "--name", "made", "bb", "true")  # a create alone still ends created
    assert busybox.ok("container", "inspect", "made")["status"] == "created"
