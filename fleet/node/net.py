"""Bridges, veth pairs, addresses and IPAM: `ip` argv lists; netlink for the plug every start makes and deletes.

No firewall rule is ever written: containers reach each other and the host
through a plain Linux bridge that holds the network's gateway address.
"""

import _socket

from . import jsonlite, linux
from .errors import Conflict, Invalid, KernelRefused

IFNAMSIZ = 15  # the kernel's limit on interface names, without the NUL
VXLAN_PORT = 4789  # IANA's


def link_exists(ifname):
    """Whether this network namespace has the interface (sysfs may show another one's)."""
    return link_index(ifname) is not None


def link_index(ifname):
    """The interface's index in this network namespace, or None if it has none by that name."""
    import _socket  # not socket, whose import costs 3 ms

    try:
        return _socket.if_nametoindex(ifname)
    except OSError:
        return None


def bridge_name_for(network, taken):
    """A bridge interface name for network: 'bl-NAME' when it fits and is free."""
    import secrets  # only here: it costs every other command 3 ms of start-up

    candidate = f"bl-{network}"
    while len(candidate) > IFNAMSIZ or candidate in taken or link_exists(candidate):
        candidate = f"bl-{network[:7]}-{secrets.token_hex(2)}"
    return candidate


def container_mac(container_id, index):
    """The MAC of a container's index-th interface, the same at every start.

    A restarted container keeps its addresses; with a new MAC each time, its
    neighbours would keep sending to the old one until their ARP entries aged.
    """
    return "02:" + ":".join(container_id[i : i + 2] for i in range(0, 8, 2)) + f":{index:02x}"


def veth_name(container_id, index):
    """Host end of a container's index-th interface: 'bv' + 10 hex of its id + index."""
    return f"bv{container_id[:10]}{index}"


def default_gateway(subnet, pool=None):
    """The first address of pool (default: the subnet) that is neither the subnet's network nor broadcast address."""
    edges = (subnet.network_address, subnet.broadcast_address)
    return next(address for address in (pool or subnet) if address not in edges)


def check_gateway(subnet, gateway):
    """The gateway as an address inside subnet, or Invalid."""
    import ipaddress  # in the functions that use it: list and most verbs never do, and it costs 1.7 ms

    try:
        address = ipaddress.ip_address(gateway)
    except ValueError:  # not an address at all: the same advice
        address = None
    if address is None or address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise Invalid(f"invalid gateway {gateway!r}: use a host address inside {subnet}")
    return address


def host_networks(own_bridges=()):
    """[(network, description)] of every route and address this host has.

    Routes and addresses on baleine's own bridges are left out: those are
    reported as the baleine network they belong to.
    """
    import ipaddress

    found = []
    for family in ("-4", "-6"):
        for route in jsonlite.loads(linux.run(["ip", "-j", family, "route", "show", "table", "all"]) or "[]"):
            dst = route.get("dst", "")
            if dst in ("", "default") or route.get("dev") in own_bridges:
                continue
            where = f" dev {route['dev']}" if route.get("dev") else ""
            found.append((ipaddress.ip_network(dst, strict=False), f"route {dst}{where}"))
    for link in jsonlite.loads(linux.run(["ip", "-j", "addr", "show"]) or "[]"):
        if link.get("ifname") in own_bridges:
            continue
        for info in link.get("addr_info", []):
            interface = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
            found.append((interface.network, f"address {interface} on {link['ifname']}"))
    return found


def find_overlap(subnet, networks):
    """The description of the first (network, description) overlapping subnet, or None."""
    for other, description in networks:
        if other.version == subnet.version and other.overlaps(subnet):
            return description
    return None


def create_bridge(ifname, gateway, prefixlen, mtu=None, with_address=True):
    """The bridge with its gateway address (unless not with_address: internal), up.

    No STP delay: ports forward at once.
    """
    nodad = " nodad" if ":" in str(gateway) else ""  # IPv6: no duplicate-address wait
    batch = [f"link add name {ifname}{_mtu(mtu)} address {bridge_mac(gateway)} type bridge forward_delay 0"]
    if with_address:
        batch.append(f"addr add {gateway}/{prefixlen} dev {ifname}{nodad}")
    batch.append(f"link set dev {ifname} up")
    linux.run(["ip", "-batch", "-"], stdin="\n".join(batch) + "\n")


def bridge_mac(gateway):
    """A fixed, locally administered MAC for the bridge, from its gateway address.

    A bridge left to itself takes the lowest MAC of its ports, so it changes
    as containers come and go, and neighbours that cached the old one lose
    the gateway until their ARP entry expires. Fixed, it never moves; derived
    from the gateway, the bridges of hosts sharing a VXLAN never clash.
    """
    import ipaddress

    packed = ipaddress.ip_address(gateway).packed[-4:]
    return "02:b1:" + ":".join(f"{byte:02x}" for byte in packed)


def _mtu(mtu):
    return f" mtu {mtu}" if mtu else ""


def vxlan_name(bridge):
    """The VXLAN port of bridge 'bl-NAME': 'vx-NAME' (the same length, so it fits too)."""
    return "vx-" + bridge[3:]


def create_vxlan(bridge, vni, peers, mtu):
    """A unicast VXLAN port on the bridge: frames for unknown MACs go to every peer, no multicast."""
    ifname = vxlan_name(bridge)
    batch = [
        f"link add name {ifname} mtu {mtu} type vxlan id {vni} dstport {VXLAN_PORT}",
        f"link set dev {ifname} master {bridge}",
        f"link set dev {ifname} up",
    ]
    linux.run(["ip", "-batch", "-"], stdin="\n".join(batch) + "\n")
    set_peers(bridge, (), peers)


def set_peers(bridge, old, new):
    """Replace the VXLAN's flooding list (all-zero MAC entries) from `old` peers to `new`."""
    ifname = vxlan_name(bridge)
    batch = [f"fdb del 00:00:00:00:00:00 dev {ifname} dst {peer}" for peer in old if peer not in new]
    batch += [f"fdb append 00:00:00:00:00:00 dev {ifname} dst {peer}" for peer in new if peer not in old]
    if batch:
        linux.run(["bridge", "-batch", "-"], stdin="\n".join(batch) + "\n")


def delete_link(ifname):
    """Remove an interface if it is still there (a bridge, or a veth's host end).

    A veth also vanishes by itself when its container's namespace is torn
    down, so it may go between our look and our delete: that is success.
    Over netlink: a start that finds its previous veth not yet reaped pays
    no ip process for it.
    """
    from . import netlink

    index = link_index(ifname)
    if index is None:
        return
    try:
        with netlink.Route() as route:
            route.delete_link(index, ifname)
    except netlink.NetlinkError as error:
        if link_exists(ifname):
            raise KernelRefused(f"cannot delete {ifname}: {error.strerror}", errno=error.errno) from None


def allocate(subnet, gateway, taken, wanted=None, pool=None, network="the network"):
    """An address for a container: `wanted` if free, else the first free one of pool (default: subnet).

    subnet and pool are CIDR text as networks.csv keeps it; gateway, taken and
    wanted, addresses as text. A network spanning hosts gives each host a pool
    (its slice of the subnet), so two hosts never hand out the same address.
    Numbers, not ipaddress objects: ipaddress (with the functools it loads)
    costs a `run` 3 to 5 ms to import, for this loop.
    """
    space = Block(subnet)
    hosts = Block(pool) if pool else space
    edges = {space.first, space.last}  # the network's own address and its broadcast
    reserved = {_number(address) for address in (gateway, *taken)}
    if wanted is not None:
        address = _number(wanted)
        if address not in space:
            raise Invalid(f"address {wanted} is outside {network} ({subnet})")
        if address[1] in edges:
            raise Invalid(
                f"address {wanted} is the first or the last of {network} ({subnet}): no container takes those"
            )
        if address not in hosts:
            raise Invalid(f"address {wanted} is outside this host's range {pool} of {network}")
        if address in reserved:
            owner = "the gateway" if address == _number(gateway) else "another container"
            raise Conflict(f"address {wanted} on {network} is already taken by {owner}")
        return wanted
    for number in range(hosts.first, hosts.last + 1):
        if (space.family, number) not in reserved and number not in edges:
            return _text(space.family, number)
    where = f"{network} ({subnet})" if hosts is space else f"this host's range {pool} of {network}"
    raise Conflict(f"{where} has no free address left: remove a container from it, or use another network")


class Block:
    """A CIDR block, as networks.csv keeps it, in numbers: '10.9.0.0/29' is family AF_INET, prefixlen 29,
    first 0x0a090000, last 0x0a090007. What start and IPAM need, without ipaddress."""

    def __init__(self, cidr):
        address, _, length = cidr.partition("/")
        self.family, self.first = _number(address)
        self.prefixlen = int(length)
        self.last = self.first | ((1 << (_BITS[self.family] - self.prefixlen)) - 1)

    def __contains__(self, address):
        family, number = address
        return family == self.family and self.first <= number <= self.last


def _number(address):
    """'10.9.0.2' -> (AF_INET, 0x0a090002): the family and the address as a number."""
    family = _socket.AF_INET6 if ":" in address else _socket.AF_INET
    return family, int.from_bytes(_socket.inet_pton(family, address), "big")


def _text(family, number):
    """The address as ipaddress writes it (which wrote every address already stored)."""
    text = _socket.inet_ntop(family, number.to_bytes(_BITS[family] // 8, "big"))
    if family == _socket.AF_INET6 and "." in text:  # libc writes ::ffff:192.0.2.1, older ipaddress ::ffff:c000:201
        import ipaddress

        return str(ipaddress.IPv6Address(number))
    return text


_BITS = {_socket.AF_INET: 32, _socket.AF_INET6: 128}


def plug(pid, plugs):
    """Give process pid's network namespace one veth per plug, addressed and up.

    Each plug: index, host_if, bridge, address, prefixlen, gateway, default.
    Made over netlink, from this process: no ip to start (see netlink.py).
    KernelRefused, naming the step, if the kernel refuses one; the veths
    made by then are deleted again (a running container keeps what it had).
    """
    from . import netlink

    with netlink.Route() as host:
        made = []
        try:
            for item in plugs:
                made.append(item["host_if"])  # its name is this container's: any link by it is ours to delete
                _plug_host_end(host, item, pid)
            with netlink.route_in(pid) as inside:
                inside.set_up(1, "lo")  # the loopback is always index 1
                for item in plugs:
                    _plug_container_end(inside, item)
        except netlink.NetlinkError as error:
            for name in made:
                delete_link(name)
            raise KernelRefused(f"cannot plug the container's network: {error.strerror}", errno=error.errno) from None


def _plug_host_end(host, item, pid):
    eth = f"eth{item['index']}"
    delete_link(item["host_if"])  # the previous run's, if the kernel has not reaped it yet
    mtu = int(item["mtu"]) if item.get("mtu") else None
    host.add_veth(item["host_if"], eth, pid, mtu, item.get("mac"))
    host.set_up(host.index(item["host_if"]), item["host_if"], master=host.index(item["bridge"]))


def _plug_container_end(inside, item):
    eth = f"eth{item['index']}"
    index = inside.index(eth)
    inside.add_address(index, eth, item["address"], item["prefixlen"])
    inside.set_up(index, eth)
    if item["default"]:
        inside.replace_default_route(item["gateway"], index, eth)  # replace: a repair re-plugs
