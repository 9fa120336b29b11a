"""Networks for real: bridges in the test's private namespace."""

import ipaddress
import json
import subprocess

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration


def links():
    return {link["ifname"]: link for link in json.loads(subprocess.check_output(["ip", "-j", "-d", "link"]))}


def test_create_list_rm(node):
    subnet = free_subnet()
    row = node.ok("network", "create", "farm", "--subnet", subnet)
    assert row["bridge"] == "bl-farm" and row["gateway"] == str(next(ipaddress.ip_network(subnet).hosts()))
    bridge = links()["bl-farm"]
    assert bridge["linkinfo"]["info_kind"] == "bridge" and "UP" in bridge["flags"]
    addresses = json.loads(subprocess.check_output(["ip", "-j", "addr", "show", "dev", "bl-farm"]))
    assert addresses[0]["addr_info"][0]["local"] == row["gateway"]
    assert node.cli("network", "list").stdout.splitlines()[0].split() == [
        "NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS", "RUNNING"]  # fmt: skip
    node.ok("network", "rm", "farm")
    assert "bl-farm" not in links()


def test_list_counts_containers(node):
    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    node.ok("network", "create", "farm", "--subnet", free_subnet())
    node.ok("network", "create", "empty", "--subnet", free_subnet())
    node.ok("container", "run", "-d", "--name", "a", "--network", "farm", "bb", "sleep", "300")
    node.ok("container", "create", "--name", "b", "--network", "farm", "bb", "true")
    counts = {item["name"]: (item["containers"], item["running"]) for item in node.ok("network", "list")}
    assert counts == {"farm": (2, 1), "empty": (0, 0)}
    reply = node.call("network", "rm", "farm")
    assert not reply["ok"] and "a, b" in reply["error"]["message"]


def test_overlap_with_a_host_route_is_refused_and_named(node):
    taken = free_subnet(prefix=24)
    network = ipaddress.ip_network(taken)
    address = f"{network[1]}/24"
    subprocess.check_call(["ip", "addr", "add", address, "dev", "lo"])  # lo of the test's own namespace
    try:
        inside = str(ipaddress.ip_network(f"{network[128]}/25", strict=False))
        before = node.state_files()
        reply = node.call("network", "create", "clash", "--subnet", inside)
        assert not reply["ok"] and reply["error"]["code"] == "conflict" and reply["exit"] != 0
        assert taken in reply["error"]["message"] and "lo" in reply["error"]["message"]
        assert node.state_files() == before
    finally:
        subprocess.check_call(["ip", "addr", "del", address, "dev", "lo"])


def test_overlap_with_another_baleine_network(node):
    subnet = ipaddress.ip_network(free_subnet())
    node.ok("network", "create", "one", "--subnet", str(subnet))
    reply = node.call("network", "create", "two", "--subnet", str(subnet.supernet(new_prefix=16)))
    assert not reply["ok"] and "'one'" in reply["error"]["message"]


def test_bridge_is_recreated_when_it_vanished(node):
    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    node.ok("network", "create", "farm", "--subnet", free_subnet())
    subprocess.check_call(["ip", "link", "del", "bl-farm"])  # as after a reboot
    node.ok("container", "run", "-d", "--name", "a", "--network", "farm", "bb", "sleep", "300")
    assert "bl-farm" in links()


def test_ipv6_network(node):
    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    node.ok("network", "create", "six", "--subnet", "fd42:4242:4242::/64")
    item = node.ok(
        "container", "run", "-d", "--name", "v6", "--network", "six", "--cap-add", "NET_RAW", "bb", "sleep", "300"
    )
    assert item["networks"][0]["address"] == "fd42:4242:4242::2"
    assert "fd42:4242:4242::2" in node.exec_out("v6", "ip", "-6", "-o", "addr")
    ping = node.ok("container", "exec", "v6", "ping", "-c", "1", "-W", "2", "fd42:4242:4242::1")
    assert ping["exit_code"] == 0, ping
