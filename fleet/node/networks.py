"""Networks: rows of bridges.csv, and how containers join them.

net.py speaks to the kernel (ip argv lists); this module decides: which
subnet is free, which address a container gets, which veth goes where, and
what each container's /etc/hosts says about its neighbours.
"""

import os

from . import etcfiles, net, parse, state
from .errors import Conflict, Invalid
from .faults import point

HOST = "host"  # `--network host`: no network namespace of its own
MAX_VXLAN = (1 << 24) - 1  # a VXLAN id (VNI) is 24 bits; 0 is not one


def get(name, rows=None):
    """The network's row, or NotFound naming the known networks."""
    return state.NETWORKS.get(name, rows)


def subnet_of(row):
    import ipaddress  # in the functions that use it: list and most verbs never do, and it costs 1.7 ms

    return ipaddress.ip_network(row["subnet"])


def create(name, subnet_text, gateway=None, range_text=None, vxlan=None, peers=(), mtu=None, internal=False):
    """A bridge holding the gateway address, for a subnet nothing else on this host uses.

    internal: the bridge holds no address, so the containers reach one another
    and nothing else, not even this host (Docker's --internal); the gateway's
    address stays reserved, given to no container.

    A network spanning hosts adds: range, this host's slice of the subnet (its
    containers get addresses from it only); vxlan, the VXLAN id joining the
    bridges; peers, the other hosts' addresses (unicast, no multicast); mtu
    (default 1450 with VXLAN: its 50 bytes of headers must fit the hosts' 1500).
    """
    subnet, pool, gateway = addressing(name, subnet_text, gateway, range_text)
    vni, peers = _vxlan(vxlan, peers)
    mtu = parse.positive_int(mtu, "--mtu") if mtu else (1450 if vni else None)
    if mtu and not 576 <= mtu <= 65535:
        raise Invalid(f"invalid --mtu {mtu}: use 576 to 65535")
    with state.locked():
        rows = state.NETWORKS.read()
        if state.NETWORKS.find(name, rows):
            raise Conflict(f"network {name!r} already exists")
        _refuse_overlap(subnet, rows)
        bridge = net.bridge_name_for(name, {row["bridge"] for row in rows})
        row = {"name": name, "bridge": bridge, "subnet": str(subnet), "gateway": str(gateway), "created": state.now(),
               "range": str(pool) if range_text else "", "vxlan": str(vni or ""), "peers": ",".join(peers),
               "mtu": str(mtu or ""), "internal": "1" if internal else ""}  # fmt: skip
        # The row first: a crash then leaves a network whose bridge start() recreates,
        # never a bridge nobody knows is ours.
        state.NETWORKS.upsert(row)
        point("network:recorded")
        try:
            _make_bridge(row)
        except BaseException:
            state.NETWORKS.remove(name)
            raise
        return row


def addressing(name, subnet_text, gateway=None, range_text=None):
    """(subnet, pool or None, gateway) from create's arguments alone, before any state is read.

    The control side calls it too: a network created on many hosts is
    refused once, here, rather than by each host.
    """
    parse.name(name, "network name")
    if name == HOST:
        raise Invalid("'host' is reserved: `--network host` shares the host's own network")
    subnet = parse.subnet(subnet_text)
    pool = _range(range_text, subnet)
    if gateway:
        gateway = net.check_gateway(subnet, gateway)
        if pool and gateway not in pool:
            raise Invalid(f"invalid gateway {gateway}: this host's gateway must be inside its --range {pool}")
    else:
        gateway = net.default_gateway(subnet, pool)
    return subnet, pool, gateway


def _range(text, subnet):
    if not text:
        return None
    pool = parse.subnet(text)
    if pool.version != subnet.version or not pool.subnet_of(subnet):
        raise Invalid(f"invalid --range {text}: use a part of the subnet {subnet}")
    return pool


def _vxlan(vxlan, peers):
    peers = [parse.ip_address(peer) for peer in peers]
    if not vxlan:
        if peers:
            raise Invalid("--peer needs --vxlan ID: peers are the other ends of a VXLAN")
        return None, []
    vni = parse.positive_int(vxlan, "--vxlan")
    if vni > MAX_VXLAN:
        raise Invalid(f"invalid --vxlan {vxlan}: a VXLAN id is 1 to {MAX_VXLAN}")
    return vni, sorted(set(peers))


def set_peers(name, peers):
    """Replace a spanning network's peers (the other hosts), live."""
    peers = sorted({parse.ip_address(peer) for peer in peers})
    with state.locked():
        row = get(name)
        if not row.get("vxlan"):
            raise Invalid(f"network {name!r} spans no hosts (it was created without --vxlan)")
        old = [peer for peer in (row.get("peers") or "").split(",") if peer]
        if net.link_exists(net.vxlan_name(row["bridge"])):
            net.set_peers(row["bridge"], old, peers)
        return state.NETWORKS.update(name, peers=",".join(peers))


def _refuse_overlap(subnet, rows):
    for row in rows:
        if subnet_of(row).overlaps(subnet):
            raise Conflict(f"subnet {subnet} overlaps baleine network {row['name']!r} ({row['subnet']})")
    found = net.find_overlap(subnet, net.host_networks(own_bridges={row["bridge"] for row in rows}))
    if found:
        raise Conflict(f"subnet {subnet} overlaps this host's {found}: choose another subnet")


def _make_bridge(row):
    try:
        net.create_bridge(row["bridge"], row["gateway"], subnet_of(row).prefixlen, row.get("mtu"),
                          with_address=not row.get("internal"))  # fmt: skip
        if row.get("vxlan"):
            peers = [peer for peer in row["peers"].split(",") if peer]
            net.create_vxlan(row["bridge"], row["vxlan"], peers, row.get("mtu") or 1450)
    except BaseException:
        _delete_links(row)
        raise


def _delete_links(row):
    if row.get("vxlan"):
        net.delete_link(net.vxlan_name(row["bridge"]))
    net.delete_link(row["bridge"])


def ensure_bridge(row):
    """Recreate a network's bridge if it is gone (after a reboot, say)."""
    if not net.link_exists(row["bridge"]):
        _make_bridge(row)


def members(name, container_rows):
    """Names of the containers attached to network name, whatever their status."""
    from .containers import attachments

    return [row["name"] for row in container_rows if name in [net_name for net_name, _ in attachments(row)]]


def remove(name):
    """Delete a network no container is attached to."""
    with state.locked():
        row = get(name)
        attached = members(name, state.CONTAINERS.read())
        if attached:
            raise Conflict(f"network {name!r} has containers attached: {', '.join(attached)} (remove them first)")
        _delete_links(row)
        state.NETWORKS.remove(name)
    return {"name": name}


def prune():
    """Delete every network no container is attached to (created, running or exited); returns them."""
    with state.locked():
        container_rows = state.CONTAINERS.read()
        unused = [row["name"] for row in state.NETWORKS.read() if not members(row["name"], container_rows)]
        return [remove(name) for name in unused]


def describe(row, container_rows):
    attached = members(row["name"], container_rows)
    running = [r["name"] for r in container_rows if r["name"] in attached and r["status"] == "running"]
    return dict(row, containers=len(attached), running=len(running), members=attached)


def list_all():
    container_rows = state.CONTAINERS.read()
    return [describe(row, container_rows) for row in state.NETWORKS.read()]


def inspect(name):
    return describe(get(name), state.CONTAINERS.read())


def assign(wanted, container_rows):
    """Addresses for [(network, address or None)]: checked if given, else first free.

    Callers hold the state lock, so two containers can never get one address.
    """
    from .containers import attachments

    network_rows = state.NETWORKS.read()
    pairs = []
    for name, address in wanted:
        row = get(name, network_rows)
        taken = {addr for other in container_rows for net_name, addr in attachments(other) if net_name == name}
        pool = row.get("range") or None
        pairs.append((name, net.allocate(row["subnet"], row["gateway"], taken, address, pool, f"network '{name}'")))
    return pairs


def plugs_for(container_row):
    """What start() plugs in: one veth per network, a default route per address family (not via an
    internal network: its gateway is no one)."""
    from .containers import slots

    network_rows = state.NETWORKS.read()
    plugs, routed = [], set()
    for index, pair in enumerate(slots(container_row)):
        if pair is None:
            continue  # disconnected while it runs: the index stays its own until the next start
        name, address = pair
        row = get(name, network_rows)
        subnet = net.Block(row["subnet"])
        plugs.append({
            "index": index,
            "network": name,
            "host_if": net.veth_name(container_row["id"], index),
            "mac": net.container_mac(container_row["id"], index),
            "bridge": row["bridge"],
            "address": address,
            "prefixlen": subnet.prefixlen,
            "gateway": row["gateway"],
            "mtu": row.get("mtu") or None,
            "default": subnet.family not in routed and not row.get("internal"),
        })  # fmt: skip
        if not row.get("internal"):
            routed.add(subnet.family)
    return plugs


def plug(pid, plugs):
    """Plug veths into process pid's namespace, recreating missing bridges first."""
    network_rows = state.NETWORKS.read()
    for item in plugs:
        ensure_bridge(get(item["network"], network_rows))
    if plugs:
        net.plug(pid, plugs)


def unplug(container_row):
    """Remove host-side veths a dead container may have left (normally gone with its netns)."""
    from .containers import slots

    for index in range(len(slots(container_row))):
        net.delete_link(net.veth_name(container_row["id"], index))


def write_etc_files(row, config, container_rows):
    """Write the hostname, hosts and resolv.conf files a container starts with."""
    from .containers import directory

    folder = directory(row)
    etcfiles.write_in_place(os.path.join(folder, "hostname"), config["hostname"] + "\n")
    resolv = etcfiles.resolv_text(config.get("dns"), bool(config.get("host_network")))
    etcfiles.write_in_place(os.path.join(folder, "resolv.conf"), resolv)
    _write_hosts(row, config, container_rows)


def refresh_hosts(container_rows):
    """Rewrite /etc/hosts of every running container whose neighbours changed."""
    from .containers import read_config

    for row in container_rows:
        if row["status"] == "running":
            try:
                _write_hosts(row, read_config(row), container_rows)
            except FileNotFoundError:
                continue  # removed meanwhile


def _write_hosts(row, config, container_rows):
    from .containers import attachments, directory

    mine = attachments(row)
    my_nets = {name for name, _ in mine}
    neighbours = [
        (address, other["name"])
        for other in container_rows
        if other["name"] != row["name"] and other["status"] == "running"
        for name, address in attachments(other)
        if name in my_nets
    ]
    own = [address for _, address in mine]
    text = etcfiles.hosts_text(config["hostname"], row["name"], own, neighbours, config.get("extra_hosts", ()))
    path = os.path.join(directory(row), "hosts")
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except FileNotFoundError:
        pass
    etcfiles.write_in_place(path, text)
