import ipaddress

import pytest

from fleet.node import net
from fleet.node.errors import Conflict, Invalid

SUBNET = "10.9.0.0/29"  # hosts .1 to .6


def test_first_free_address_skips_gateway_and_taken():
    assert net.allocate(SUBNET, "10.9.0.1", set()) == "10.9.0.2"
    assert net.allocate(SUBNET, "10.9.0.1", {"10.9.0.2", "10.9.0.3"}) == "10.9.0.4"


def test_wanted_address_checked():
    assert net.allocate(SUBNET, "10.9.0.1", set(), "10.9.0.6") == "10.9.0.6"
    with pytest.raises(Invalid, match=r"^address 10.9.1.2 is outside network 'n' \(10.9.0.0/29\)$"):
        net.allocate(SUBNET, "10.9.0.1", set(), "10.9.1.2", network="network 'n'")
    for edge in ("10.9.0.0", "10.9.0.7"):  # the network's own address, its broadcast
        with pytest.raises(Invalid, match=rf"^address {edge} is the first or the last of network 'n' \(10.9.0.0/29\)"):
            net.allocate(SUBNET, "10.9.0.1", set(), edge, network="network 'n'")
    with pytest.raises(Conflict, match="gateway"):
        net.allocate(SUBNET, "10.9.0.1", set(), "10.9.0.1")
    with pytest.raises(Conflict, match="another container"):
        net.allocate(SUBNET, "10.9.0.1", {"10.9.0.4"}, "10.9.0.4")


def test_full_network_is_a_conflict():
    taken = {f"10.9.0.{i}" for i in range(2, 7)}
    with pytest.raises(Conflict, match=r"^network 'n' \(10.9.0.0/29\) has no free address left: remove a"):
        net.allocate(SUBNET, "10.9.0.1", taken, network="network 'n'")
    pool = "10.9.0.4/30"  # a host's slice of a network spanning hosts
    with pytest.raises(Conflict, match=r"^this host's range 10.9.0.4/30 of network 'n' has no free address"):
        net.allocate(SUBNET, "10.9.0.1", taken, pool=pool, network="network 'n'")


def test_ipv6_allocation():
    assert net.allocate("fd42::/64", "fd42::1", {"fd42::2"}) == "fd42::3"
    assert net.allocate("fd42::/64", "fd42::1", set(), "fd42::ff") == "fd42::ff"
    with pytest.raises(Invalid, match="outside"):
        net.allocate("fd42::/64", "fd42::1", set(), "10.9.0.2")  # the other family


def test_a_block_is_the_subnet_in_numbers():
    block = net.Block("10.9.0.0/29")
    assert (block.prefixlen, block.first, block.last) == (29, 0x0A090000, 0x0A090007)
    block = net.Block("fd42::/64")
    assert (block.prefixlen, block.last - block.first) == (64, (1 << 64) - 1)
    assert block.family != net.Block("10.9.0.0/29").family  # plugs_for routes once per family


def reference_allocate(subnet, gateway, taken, pool=None):
    """The first free address as ipaddress finds it: what allocate gave before it counted with numbers."""
    subnet = ipaddress.ip_network(subnet)
    pool = ipaddress.ip_network(pool) if pool else subnet
    reserved = {gateway, *taken}
    edges = {subnet.network_address, subnet.broadcast_address}
    for address in pool.hosts() if pool == subnet else pool:
        if str(address) not in reserved and address not in edges:
            return str(address)
    return None


def test_first_free_address_is_the_one_ipaddress_finds():
    import random

    rng = random.Random(11)
    for _ in range(400):
        six = rng.random() < 0.5
        bits = 128 if six else 32
        length = rng.randrange(bits - 6, bits + 1)
        base = rng.getrandbits(bits) & ~((1 << (bits - length)) - 1)
        if six and rng.random() < 0.5:
            base &= ~(0xFFFFFFFF << 32)  # long runs of zeros: how they are shortened matters
        subnet = ipaddress.ip_network((base, length))
        pool = None
        if length < bits - 1 and rng.random() < 0.3:
            pool = ipaddress.ip_network((base + (1 << (bits - length - 1)), length + 1))
        candidates = [str(address) for address in (pool or subnet)][:12]
        gateway = rng.choice(candidates)
        taken = set(rng.sample(candidates, rng.randrange(len(candidates))))
        expected = reference_allocate(str(subnet), gateway, taken, str(pool) if pool else None)
        try:
            found = net.allocate(str(subnet), gateway, taken, pool=str(pool) if pool else None)
        except Conflict:
            found = None
        assert found == expected, (subnet, pool, gateway, taken)


def test_addresses_are_written_as_ipaddress_writes_them():
    import random
    import socket

    for text in ("::ffff:c000:201", "::c000:201", "::1", "::", "fd42::", "1:0:0:1::1", "1::1:0:0:1"):
        number = int(ipaddress.IPv6Address(text))  # libc writes the first two as dotted quads
        assert net._text(socket.AF_INET6, number) == str(ipaddress.IPv6Address(number))
    rng = random.Random(5)
    for _ in range(2000):
        words = [rng.choice([0, 0, 0, 1, 0xFFFF, rng.getrandbits(16)]) for _ in range(8)]
        number = int.from_bytes(b"".join(word.to_bytes(2, "big") for word in words), "big")
        assert net._text(socket.AF_INET6, number) == str(ipaddress.IPv6Address(number))
        number = rng.getrandbits(32)
        assert net._text(socket.AF_INET, number) == str(ipaddress.IPv4Address(number))


def test_gateway_must_be_a_host_address():
    assert str(net.check_gateway(ipaddress.ip_network(SUBNET), "10.9.0.6")) == "10.9.0.6"
    for bad in ("10.9.0.0", "10.9.0.7", "10.9.1.1"):
        with pytest.raises(Invalid, match="gateway"):
            net.check_gateway(ipaddress.ip_network(SUBNET), bad)


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
