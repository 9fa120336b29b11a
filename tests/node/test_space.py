"""`baleine df`: what takes the state root's space, and what the prunes would free."""

import os

import pytest

pytestmark = pytest.mark.integration


def test_df_adds_up_images_containers_logs_and_history(busybox):
    busybox.ok("image", "create", "spare", "--size", "32M", "--from", "busybox")
    busybox.ok("container", "run", "-d", "--name", "up", "bb", "sleep", "300")
    busybox.ok("container", "run", "--name", "done", "bb", "sh", "-c", "seq 1 20000")  # exited, with a log
    busybox.ok("container", "run", "--rm", "-v", "old:/data", "bb", "sh", "-c", "seq 1 20000 > /data/f")
    found = busybox.ok("df")
    images = {item["name"]: item["used"] for item in busybox.ok("image", "list")}
    sizes = {item["name"]: item for item in busybox.ok("container", "list", "--all", "--size")}
    assert found["images"] == {"count": 2, "bytes": sum(images.values()), "reclaimable": images["spare"]}
    assert found["containers"] == {
        "count": 2,
        "bytes": sizes["up"]["disk_bytes"] + sizes["done"]["disk_bytes"],
        "reclaimable": sizes["done"]["disk_bytes"] + sizes["done"]["log_bytes"],
    }
    assert found["logs"]["bytes"] == sizes["done"]["log_bytes"] + sizes["up"]["log_bytes"] > 0
    volume = busybox.ok("volume", "inspect", "old")["bytes"]
    assert found["volumes"] == {"count": 1, "bytes": volume, "reclaimable": volume} and volume > 0
    assert found["history"]["bytes"] >= os.stat(busybox.root / "events.log").st_blocks * 512 > 0
    info = os.statvfs(busybox.root)
    assert found["size"] == info.f_blocks * info.f_frsize and 0 < found["free"] <= found["size"]

    lines = busybox.cli("df").stdout.splitlines()
    assert lines[0].split() == ["WHAT", "COUNT", "SPACE", "RECLAIMABLE"]
    assert lines[1].split()[:2] == ["images", "2"] and lines[1].endswith("(image prune)")
    assert lines[2].split()[:2] == ["containers", "2"] and lines[2].endswith("(container prune)")
    assert lines[-1].startswith(f"{busybox.root}: ") and "free of" in lines[-1]

    assert lines[3].split()[:2] == ["volumes", "1"] and lines[3].endswith("(volume prune)")
    for kind in ("container", "image", "volume"):
        busybox.ok(kind, "prune")
    after = busybox.ok("df")
    assert after["images"]["reclaimable"] == after["containers"]["reclaimable"] == after["volumes"]["reclaimable"] == 0
