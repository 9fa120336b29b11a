"""netlink: the messages we build, the kernel's refusals, and a real plug into a namespace."""

import errno
import ipaddress
import json
import struct
import subprocess

import pytest
from hostnet import free_subnet

from fleet.node import net, netlink
from fleet.node.errors import KernelRefused


def test_attributes_are_padded_to_four_bytes():
    assert netlink.attribute(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"
    assert netlink.u32(4, 1450) == struct.pack("=HHI", 8, 4, 1450)
    inner = netlink.u32(1, 7)
    assert netlink.nested(18, inner) == struct.pack("=HH", 12, 18 | netlink.NLA_F_NESTED) + inner


def test_mac_and_addresses_are_packed_as_the_kernel_reads_them():
    assert netlink.mac_bytes("02:ae:96:b7:d7:00") == bytes([2, 0xAE, 0x96, 0xB7, 0xD7, 0])
    assert netlink.packed("10.1.2.3") == bytes([10, 1, 2, 3])
    assert netlink.packed("fd42::2") == ipaddress.ip_address("fd42::2").packed


class FakeKernel:
    """Stands for the netlink socket: records what is sent, answers with the replies given."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.sent = []

    def send(self, data):
        self.sent.append(data)

    def recv(self, _size):
        return self.replies.pop(0)


def error_reply(sequence, error, request=b"", reason=None):
    """An NLMSG_ERROR message as the kernel writes it, with an extended reason if given."""
    original = netlink.HEADER.pack(netlink.HEADER.size + len(request), 16, 0, sequence, 0) + request
    body = struct.pack("=i", error) + original
    flags = 0
    if reason is not None:
        flags = netlink.NLM_F_ACK_TLVS
        body += netlink.attribute(netlink.NLMSGERR_ATTR_MSG, reason.encode() + b"\0")
    return netlink.HEADER.pack(netlink.HEADER.size + len(body), netlink.NLMSG_ERROR, flags, sequence, 0) + body


def fake_route(*replies):
    route = netlink.Route.__new__(netlink.Route)
    route.sock, route.sequence = FakeKernel(*replies), 0
    return route


def test_a_refusal_names_the_step_and_gives_the_kernels_reason():
    route = fake_route(error_reply(1, -errno.EEXIST, b"\0" * 16, reason="Interface name already in use"))
    with pytest.raises(netlink.NetlinkError) as caught:
        route.request(netlink.RTM_NEWLINK, 0, b"\0" * 16, "add veth bv1 (peer eth0)")
    assert caught.value.errno == errno.EEXIST
    assert caught.value.strerror == "add veth bv1 (peer eth0): Interface name already in use"


def test_without_an_extended_reason_the_errno_speaks():
    route = fake_route(error_reply(1, -errno.ENETUNREACH))
    with pytest.raises(netlink.NetlinkError, match=r"route default via 10\.0\.0\.1 dev eth0: Network is unreachable"):
        route.request(netlink.RTM_NEWROUTE, 0, b"", "route default via 10.0.0.1 dev eth0")


def test_a_get_returns_its_answer_and_skips_other_sequences():
    answer = netlink.IFINFO.pack(0, 1, 7, 0, 0)
    stray = error_reply(99, 0)  # an older request's: not ours to take
    reply = netlink.HEADER.pack(netlink.HEADER.size + len(answer), netlink.RTM_NEWLINK, 0, 1, 0) + answer
    route = fake_route(stray + reply, error_reply(1, 0))
    assert route.index("eth0") == 7
    length, kind, flags, sequence, _ = netlink.HEADER.unpack_from(route.sock.sent[0])
    assert (kind, sequence, flags) == (netlink.RTM_GETLINK, 1, netlink.NLM_F_REQUEST | netlink.NLM_F_ACK)
    assert length == len(route.sock.sent[0])


# ------------------------------------------------------- the kernel itself


@pytest.fixture
def holder():
    """A process alone in a new network namespace, and a bridge to plug it into."""
    process = subprocess.Popen(["unshare", "--net", "sleep", "300"])
    subprocess.run(["ip", "link", "add", "bl-nltest", "type", "bridge"], check=True)
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()
        subprocess.run(["ip", "link", "del", "bl-nltest"], check=True)


def inside(pid, *argv):
    return json.loads(subprocess.check_output(["nsenter", "-t", str(pid), "-n", "ip", "-j", *argv]))


def host_links():
    return {link["ifname"]: link for link in json.loads(subprocess.check_output(["ip", "-j", "link"]))}


def plug_item(subnet, **changes):
    network = ipaddress.ip_network(subnet)
    hosts = network.hosts()
    gateway, address = str(next(hosts)), str(next(hosts))
    item = {"index": 0, "network": "t", "host_if": "bvnltest00", "mac": "02:00:00:00:01:00", "mtu": "1400",
            "bridge": "bl-nltest", "address": address, "prefixlen": network.prefixlen, "gateway": gateway,
            "default": True}  # fmt: skip
    return {**item, **changes}


@pytest.mark.integration
def test_plug_gives_the_namespace_its_veth_address_route_mac_and_mtu(holder):
    item = plug_item(free_subnet())
    net.plug(holder, [item])
    host_end = host_links()["bvnltest00"]
    assert host_end["master"] == "bl-nltest" and "UP" in host_end["flags"] and host_end["mtu"] == 1400
    links = {link["ifname"]: link for link in inside(holder, "link")}
    assert "UP" in links["lo"]["flags"] and "UP" in links["eth0"]["flags"]
    assert links["eth0"]["address"] == item["mac"] and links["eth0"]["mtu"] == 1400
    addresses = {
        info["local"] for entry in inside(holder, "addr", "show", "dev", "eth0") for info in entry["addr_info"]
    }
    assert item["address"] in addresses
    assert inside(holder, "route", "show", "default") == [
        {"dst": "default", "gateway": item["gateway"], "dev": "eth0", "flags": []}]  # fmt: skip


@pytest.mark.integration
def test_plug_refused_by_the_kernel_names_the_step_and_leaves_no_veth(holder):
    subprocess.run(
        ["nsenter", "-t", str(holder), "-n", "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0"],
        check=True,
    )
    with pytest.raises(KernelRefused, match=r"cannot plug the container's network: add veth bvnltest00 \(peer eth0\)"):
        net.plug(holder, [plug_item(free_subnet())])
    assert "bvnltest00" not in host_links()


@pytest.mark.integration
def test_a_refusal_inside_the_namespace_deletes_the_veth_made_for_it(holder):
    item = plug_item(free_subnet(), gateway="198.51.100.1")  # not on the link: no route can go through it
    with pytest.raises(KernelRefused, match=r"route default via 198\.51\.100\.1 dev eth0: ") as caught:
        net.plug(holder, [item])
    assert caught.value.details["errno"] == errno.ENETUNREACH
    assert "bvnltest00" not in host_links()
    assert [link["ifname"] for link in inside(holder, "link")] == ["lo"]


@pytest.mark.integration
def test_a_missing_bridge_is_named_and_the_veth_made_before_is_deleted(holder):
    with pytest.raises(KernelRefused, match="find interface bl-gone: No such device"):
        net.plug(holder, [plug_item(free_subnet(), bridge="bl-gone")])
    assert "bvnltest00" not in host_links()
    assert [link["ifname"] for link in inside(holder, "link")] == ["lo"]


@pytest.mark.integration
def test_a_stale_veth_of_the_same_name_is_replaced(holder):
    """A restart can find its previous veth not yet reaped by the kernel: the plug deletes it first."""
    subprocess.run(["ip", "link", "add", "bvnltest00", "type", "veth", "peer", "name", "bvnlstale"], check=True)
    net.plug(holder, [plug_item(free_subnet())])
    assert "bvnlstale" not in host_links() and host_links()["bvnltest00"]["master"] == "bl-nltest"
