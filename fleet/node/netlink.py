"""rtnetlink, just what plugging a container needs: a veth pair, its address, its default route; deleting a link.

A container start with a network used to run `ip -batch` twice (once on the
host, once inside the container's namespace): two fork/execs of ip, about
6 ms of every start. These are the same requests ip sends, made from our own
process, and a link is deleted the same way (a restart often finds its
old veth not yet reaped). Everything else (making bridges and VXLAN ports,
reading addresses and routes) still goes through ip, where its argv lists
are easier to read and a few milliseconds do not matter.

Messages are the kernel's structs from <linux/netlink.h>, <linux/rtnetlink.h>
and <linux/if_link.h>, packed in native byte order.
"""

import _socket
import os
import struct

from . import linux

NETLINK_ROUTE = 0
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # in an error reply: the request was cut; TLVs follow it
NLMSGERR_ATTR_MSG = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 1, 3, 4, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS, IFA_F_NODAD = 1, 2, 8, 0x02
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
NLA_F_NESTED = 0x8000

HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
IFADDR = struct.Struct("=BBBBi")  # ifaddrmsg: family, prefix length, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst len, src len, tos, table, protocol, scope, type, flags


class NetlinkError(OSError):
    """The kernel refused a request: errno, what we asked, and its own words when it gave them."""


def aligned(length):
    """length rounded up to netlink's 4-byte alignment."""
    return (length + 3) & ~3


def attribute(kind, data):
    """One rtattr: length, type, data, padded to 4 bytes."""
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (aligned(length) - length)


def nested(kind, *attributes):
    return attribute(kind | NLA_F_NESTED, b"".join(attributes))


def name_attribute(name):
    return attribute(IFLA_IFNAME, name.encode() + b"\0")


def u32(kind, value):
    return attribute(kind, struct.pack("=I", value))


def mac_bytes(mac):
    return bytes(int(part, 16) for part in mac.split(":"))


def family_of(address):
    return _socket.AF_INET6 if ":" in address else _socket.AF_INET


def packed(address):
    return _socket.inet_pton(family_of(address), address)


class Route:
    """A NETLINK_ROUTE socket of the network namespace we are in when it is made."""

    def __init__(self):
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # the kernel's reason with its errno
        except OSError:
            pass  # before Linux 4.12: the errno alone
        self.sock.bind((0, 0))
        self.sequence = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def request(self, kind, flags, body, what):
        """Send one request and wait for its acknowledgement; returns the answers before it (a get's).

        NetlinkError, naming what, if the kernel refused it.
        """
        self.sequence += 1
        message = HEADER.pack(HEADER.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self.sequence, 0)
        self.sock.send(message + body)
        answers = []
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, reply, reply_flags, sequence, _ = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    break  # malformed: never loop on it
                if sequence == self.sequence and reply != NLMSG_ERROR:
                    answers.append(data[offset + HEADER.size : offset + length])
                elif sequence == self.sequence:
                    (error,) = struct.unpack_from("=i", data, offset + HEADER.size)
                    if error:
                        reason = _extended_reason(data[offset : offset + length], reply_flags)
                        raise NetlinkError(-error, f"{what}: {reason or os.strerror(-error)}")
                    return answers
                offset += aligned(length)

    def index(self, name):
        """The index of interface name in this socket's namespace; NetlinkError (ENODEV) if it has none."""
        body = IFINFO.pack(_socket.AF_UNSPEC, 0, 0, 0, 0) + name_attribute(name)
        answers = self.request(RTM_GETLINK, 0, body, f"find interface {name}")
        return IFINFO.unpack_from(answers[0])[2]

    def add_veth(self, name, peer, peer_pid, mtu=None, peer_mac=None):
        """A veth pair: name here, peer (with peer_mac) in process peer_pid's network namespace."""
        peer_attributes = [name_attribute(peer), u32(IFLA_NET_NS_PID, peer_pid)]
        common = [u32(IFLA_MTU, mtu)] if mtu else []
        if peer_mac:
            peer_attributes.append(attribute(IFLA_ADDRESS, mac_bytes(peer_mac)))
        peer_info = IFINFO.pack(_socket.AF_UNSPEC, 0, 0, 0, 0) + b"".join(peer_attributes + common)
        kind = nested(IFLA_LINKINFO, attribute(IFLA_INFO_KIND, b"veth\0"),
                      nested(IFLA_INFO_DATA, nested(VETH_INFO_PEER, peer_info)))  # fmt: skip
        body = IFINFO.pack(_socket.AF_UNSPEC, 0, 0, 0, 0) + name_attribute(name) + b"".join(common) + kind
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add veth {name} (peer {peer})")

    def delete_link(self, index, name):
        self.request(RTM_DELLINK, 0, IFINFO.pack(_socket.AF_UNSPEC, 0, index, 0, 0), f"delete {name}")

    def set_up(self, index, name, master=None):
        """Bring interface index up, on bridge master (an index) if given."""
        body = IFINFO.pack(_socket.AF_UNSPEC, 0, index, linux.IFF_UP, linux.IFF_UP)
        if master is not None:
            body += u32(IFLA_MASTER, master)
        self.request(RTM_NEWLINK, 0, body, f"set {name} up")

    def add_address(self, index, name, address, prefixlen):
        """address/prefixlen on interface index; IPv6 without duplicate detection, so usable at once."""
        family = family_of(address)
        flags = IFA_F_NODAD if family == _socket.AF_INET6 else 0
        body = IFADDR.pack(family, prefixlen, flags, RT_SCOPE_UNIVERSE, index)
        body += attribute(IFA_LOCAL, packed(address)) + attribute(IFA_ADDRESS, packed(address))
        if flags:
            body += u32(IFA_FLAGS, flags)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add {address}/{prefixlen} to {name}")

    def replace_default_route(self, gateway, index, name):
        """The default route of gateway's family via gateway on interface index, replacing any."""
        family = family_of(gateway)
        body = RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        body += attribute(RTA_GATEWAY, packed(gateway)) + u32(RTA_OIF, index)
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body, f"route default via {gateway} dev {name}")


def _extended_reason(reply, flags):
    """The kernel's message in an extended acknowledgement, if it sent one."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    request_length = HEADER.unpack_from(reply, HEADER.size + 4)[0]
    offset = HEADER.size + 4 + (HEADER.size if flags & NLM_F_CAPPED else aligned(request_length))
    while offset + 4 <= len(reply):
        length, kind = struct.unpack_from("=HH", reply, offset)
        if length < 4:
            break
        if kind == NLMSGERR_ATTR_MSG:
            return reply[offset + 4 : offset + length].split(b"\0", 1)[0].decode(errors="replace")
        offset += aligned(length)
    return ""


def route_in(pid):
    """A Route of process pid's network namespace: made there, it stays bound to it when we come back."""
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(target, linux.CLONE_NEWNET)
        try:
            return Route()
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)
