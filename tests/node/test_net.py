import ipaddress

import pytest

from fleet.node import net
from fleet.node.errors import Conflict, Invalid

SUBNET = ipaddress.ip_network("10.9.0.0/29")  # hosts .1 to .6


def test_first_free_address_skips_gateway_and_taken():
    assert net.allocate(SUBNET, "10.9.0.1", set()) == "10.9.0.2"
    assert net.allocate(SUBNET, "10.9.0.1", {"10.9.0.2", "10.9.0.3"}) == "10.9.0.4"


def test_wanted_address_checked():
    assert net.allocate(SUBNET, "10.9.0.1", set(), "10.9.0.6") == "10.9.0.6"
    with pytest.raises(Invalid, match="outside"):
        net.allocate(SUBNET, "10.9.0.1", set(), "10.9.1.2")
    with pytest.raises(Invalid, match="outside"):
        net.allocate(SUBNET, "10.9.0.1", set(), "10.9.0.7")  # broadcast
    with pytest.raises(Conflict, match="gateway"):
        net.allocate(SUBNET, "10.9.0.1", set(), "10.9.0.1")
    with pytest.raises(Conflict, match="another container"):
        net.allocate(SUBNET, "10.9.0.1", {"10.9.0.4"}, "10.9.0.4")


def test_full_network_is_a_conflict():
    taken = {f"10.9.0.{i}" for i in range(2, 7)}
    with pytest.raises(Conflict, match=r"^network 'n' \(10.9.0.0/29\) has no free address left: remove a"):
        net.allocate(SUBNET, "10.9.0.1", taken, network="network 'n'")
    pool = ipaddress.ip_network("10.9.0.4/30")  # a host's slice of a network spanning hosts
    with pytest.raises(Conflict, match=r"^this host's range 10.9.0.4/30 of network 'n' has no free address"):
        net.allocate(SUBNET, "10.9.0.1", taken, pool=pool, network="network 'n'")


def test_ipv6_allocation():
    subnet = ipaddress.ip_network("fd42::/64")
    assert net.allocate(subnet, "fd42::1", {"fd42::2"}) == "fd42::3"


def test_gateway_must_be_a_host_address():
    assert str(net.check_gateway(SUBNET, "10.9.0.6")) == "10.9.0.6"
    for bad in ("10.9.0.0", "10.9.0.7", "10.9.1.1"):
        with pytest.raises(Invalid, match="gateway"):
            net.check_gateway(SUBNET, bad)


def test_overlap_names_the_route():
    host = [(ipaddress.ip_network("192.0.2.0/24"), "route 192.0.2.0/24 dev eth0"),
            (ipaddress.ip_network("fd00::/64"), "route fd00::/64 dev eth0")]  # fmt: skip
    assert net.find_overlap(ipaddress.ip_network("192.0.2.128/25"), host) == "route 192.0.2.0/24 dev eth0"
    assert net.find_overlap(ipaddress.ip_network("192.0.0.0/16"), host) == "route 192.0.2.0/24 dev eth0"
    assert net.find_overlap(ipaddress.ip_network("10.0.0.0/24"), host) is None
    assert net.find_overlap(ipaddress.ip_network("fd00::/48"), host) == "route fd00::/64 dev eth0"


def test_interface_names_fit_the_kernel_limit(monkeypatch):
    monkeypatch.setattr(net, "link_exists", lambda name: False)
    assert net.bridge_name_for("farm", set()) == "bl-farm"
    long_name = net.bridge_name_for("a-rather-long-network-name", set())
    assert len(long_name) <= 15 and long_name.startswith("bl-a-rathe")
    assert net.bridge_name_for("farm", {"bl-farm"}) != "bl-farm"
    assert net.veth_name("0123456789abcdef", 12) == "bv012345678912"
    assert len(net.veth_name("f" * 64, 99)) <= 15


def test_bridge_name_avoids_existing_host_interfaces(monkeypatch):
    monkeypatch.setattr(net, "link_exists", lambda name: name == "bl-eth")
    assert net.bridge_name_for("eth", set()) != "bl-eth"
