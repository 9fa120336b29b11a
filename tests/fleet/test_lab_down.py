"""`lab.down` removes everything `lab.up` made, even with containers running on the nodes."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import CGROUP_PARENT
from hostnet import free_subnet
from labfleet import Lab

from fleet import lab

pytestmark = pytest.mark.integration


def links():
    return {link["ifname"] for link in json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True,
                                                                 text=True).stdout)}  # fmt: skip


def test_lab_down_leaves_nothing(tmp_path):
    record = lab.up(2, subnet=free_subnet(), directory=str(tmp_path / "lab"),
                    inventory=str(tmp_path / "hosts" / "lab.toml"), say=lambda _text: None)  # fmt: skip
    the_lab = Lab(tmp_path, record)
    the_lab.local("image", "create", "bb", "--size", "16M", "--from", "busybox")
    the_lab.ok("image.push", "bb", "--hosts", "all")
    the_lab.ok("network.create", "n", "--subnet", "10.78.0.0/24", "--hosts", "all")
    the_lab.ok("container.run", "bb", "--hosts", "all", "--name", "c", "--network", "n", "--command", "sleep 600")
    the_lab.ok("health.schedule", "--hosts", "all", "--cron-file", tmp_path / "cron", "--history", tmp_path / "h")
    pids = [pid for node in record["nodes"] for pid in (node["pid"], node["cron_pid"])]
    container_pids = [item["pid"] for item in the_lab.invoke_json("ps")[1]["data"]]
    assert len(container_pids) == 2 and all(lab.alive(pid) for pid in pids + container_pids)
    assert {"baleine-lab", "lab-node1", "lab-node2"} <= links()

    assert lab.down(str(tmp_path / "lab"), say=lambda _text: None)

    assert not any(lab.alive(pid) for pid in pids + container_pids)
    assert not links() & {"baleine-lab", "lab-node1", "lab-node2"}
    assert not (tmp_path / "lab").exists() and not (tmp_path / "hosts" / "lab.toml").exists()
    if record["made_state_dir"]:  # it was missing: gone again, unless something else (another lab) filled it since
        assert not os.path.isdir(lab.NODE_STATE) or os.listdir(lab.NODE_STATE)
    for mount in Path("/sys/fs/cgroup").iterdir():
        for node in ("node1", "node2"):
            assert not (mount / CGROUP_PARENT / node).exists(), f"cgroup left in {mount}"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path) not in mounts
    loops = [p.read_text() for p in Path("/sys/block").glob("loop*/loop/backing_file")]
    assert not [backing for backing in loops if str(tmp_path) in backing]
    assert lab.down(str(tmp_path / "lab")) is False  # a second time: nothing to do


def test_lab_down_ends_the_containers_its_helper_could_not_remove(tmp_path, monkeypatch):
    record = lab.up(1, subnet=free_subnet(), directory=str(tmp_path / "lab"),
                    inventory=str(tmp_path / "hosts" / "lab.toml"), say=lambda _text: None)  # fmt: skip
    the_lab = Lab(tmp_path, record)
    the_lab.local("image", "create", "bb", "--size", "16M", "--from", "busybox")
    the_lab.ok("image.push", "bb", "--hosts", "all")
    the_lab.ok("container.run", "bb", "--hosts", "all", "--name", "c", "--command", "sleep 600")
    [pid] = [item["pid"] for item in the_lab.invoke_json("ps")[1]["data"]]
    monkeypatch.setattr(lab, "_empty_node", lambda directory, node: None)  # as when the helper fails on a node

    assert lab.down(str(tmp_path / "lab"), say=lambda _text: None)

    assert not lab.alive(pid)
    for mount in Path("/sys/fs/cgroup").iterdir():
        assert not (mount / CGROUP_PARENT / "node1").exists(), f"cgroup left in {mount}"
    loops = [p.read_text() for p in Path("/sys/block").glob("loop*/loop/backing_file")]
    assert not [backing for backing in loops if str(tmp_path) in backing]
