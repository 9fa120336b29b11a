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


def test_prune_removes_what_nothing_uses_containers_first(busybox):
    from hostnet import free_subnet

    for network in ("used", "left", "idle"):
        busybox.ok("network", "create", network, "--subnet", free_subnet())
    busybox.ok("image", "tag", "bb", "spare")
    busybox.ok("container", "run", "-d", "--name", "up", "--network", "used", "-v", "kept:/k", "bb", "sleep", "300")
    busybox.ok("container", "run", "--name", "done", "--network", "left", "-v", "data:/d", "bb", "sh", "-c", "seq 9")
    first = busybox.ok("prune")
    assert [item["name"] for item in first["containers"]] == ["done"] and first["containers"][0]["freed"] > 0
    assert [item["name"] for item in first["networks"]] == ["left", "idle"]  # left: free once done was gone
    assert first["images"] == first["volumes"] == [] and first["freed"] == first["containers"][0]["freed"]
    assert {row["name"] for row in busybox.ok("image", "list")} == {"bb", "spare"}
    assert {row["name"] for row in busybox.ok("volume", "list")} == {"kept", "data"}
    done = busybox.cli("prune", "--images", "--volumes")
    assert done.stdout.splitlines()[:2] == ["image spare", "volume data"] and done.stdout.startswith("image spare\n")
    assert done.stdout.splitlines()[-1].startswith("freed ")
    assert [row["name"] for row in busybox.ok("container", "list", "--all")] == ["up"]
    assert [row["name"] for row in busybox.ok("network", "list")] == ["used"]
    assert [row["name"] for row in busybox.ok("image", "list")] == ["bb"]
    assert [row["name"] for row in busybox.ok("volume", "list")] == ["kept"]
    assert busybox.cli("prune", "--images", "--volumes").stdout == "nothing to remove\n"
