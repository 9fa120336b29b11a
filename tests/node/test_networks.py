"""Networks for real: bridges in the test's private namespace."""

import ipaddress
import json
import subprocess

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration


def links():
    return {link["ifname"]: link for link in json.loads(subprocess.check_output(["ip", "-j", "-d", "link"]))}


def test_prune_removes_the_networks_no_container_is_on(busybox):
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    busybox.ok("network", "create", "spare", "--subnet", free_subnet())
    busybox.ok("network", "create", "idle", "--subnet", free_subnet())
    busybox.ok("container", "create", "--name", "later", "--network", "farm", "bb", "true")  # never started: on it
    busybox.ok("container", "run", "-d", "--name", "gone", "--network", "idle", "bb", "true")
    busybox.ok("container", "rm", "--force", "gone")
    assert {"bl-spare", "bl-idle", "bl-farm"} <= set(links())
    done = busybox.cli("network", "prune")
    assert done.returncode == 0 and done.stdout.splitlines() == ["spare", "idle"], done
    assert [row["name"] for row in busybox.ok("network", "list")] == ["farm"]
    assert "bl-spare" not in links() and "bl-idle" not in links() and "bl-farm" in links()
    assert busybox.ok("network", "prune") == []
    assert busybox.cli("network", "prune").stdout == "no network to remove\n"


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


def fdb_peers(vxlan):
    entries = json.loads(subprocess.check_output(["bridge", "-j", "fdb", "show", "dev", vxlan]))
    return sorted(entry["dst"] for entry in entries if entry["mac"] == "00:00:00:00:00:00")


def test_a_network_spanning_hosts_has_a_vxlan_port_and_a_range(node):
    subnet = ipaddress.ip_network(free_subnet())
    pool = list(subnet.subnets(new_prefix=27))[1]
    row = node.ok("network", "create", "farm", "--subnet", str(subnet), "--range", str(pool), "--vxlan", "42",
                  "--peer", "192.0.2.7", "--peer", "192.0.2.5")  # fmt: skip
    assert (row["range"], row["vxlan"], row["peers"], row["mtu"]) == (str(pool), "42", "192.0.2.5,192.0.2.7", "1450")
    assert row["gateway"] == str(pool[0])  # this host's own gateway, the first of its range
    found = links()
    assert (
        found["vx-farm"]["linkinfo"]["info_kind"] == "vxlan" and found["vx-farm"]["linkinfo"]["info_data"]["id"] == 42
    )
    assert found["vx-farm"]["master"] == "bl-farm" and found["bl-farm"]["mtu"] == 1450
    assert fdb_peers("vx-farm") == ["192.0.2.5", "192.0.2.7"]

    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    node.ok("container", "run", "-d", "--name", "a", "--network", "farm", "bb", "sleep", "300")
    [attached] = node.ok("container", "inspect", "a")["networks"]
    assert attached["address"] == str(pool[1])  # from this host's range, after its gateway
    assert "mtu 1450" in node.exec_out("a", "ip", "link", "show", "eth0")
    refused = node.call("container", "create", "--network", f"farm:{subnet[5]}", "bb", "true")
    assert not refused["ok"] and f"outside this host's range {pool}" in refused["error"]["message"]

    node.ok("network", "peers", "farm", "192.0.2.9", "192.0.2.5")
    assert fdb_peers("vx-farm") == ["192.0.2.5", "192.0.2.9"]
    node.ok("container", "rm", "--force", "a")
    node.ok("network", "rm", "farm")
    assert not {"vx-farm", "bl-farm"} & set(links())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--range", "10.9.9.0/27"), "use a part of the subnet"),
        (("--vxlan", "16777216"), "a VXLAN id is 1 to 16777215"),
        (("--peer", "192.0.2.1"), "--peer needs --vxlan ID"),
        (("--vxlan", "5", "--peer", "not-an-ip"), "not-an-ip"),
        (("--mtu", "100"), "invalid --mtu 100"),
    ],
)
def test_bad_spanning_options_are_refused(node, args, message):
    reply = node.call("network", "create", "farm", "--subnet", free_subnet(), *args)
    assert not reply["ok"] and message in reply["error"]["message"]
    assert node.ok("network", "list") == []


def test_no_network_is_loopback_alone_and_up(busybox):
    """As Docker's --network none: a namespace of its own with lo up, so 127.0.0.1 serves inside."""
    serve = (
        "mkdir /www && echo local > /www/index.html && httpd -p 127.0.0.1:8080 -h /www && wget -q -O- 127.0.0.1:8080"
    )
    done = busybox.cli("container", "run", "--rm", "bb", "sh", "-c", f"{serve} && cat /proc/net/dev")
    assert done.returncode == 0 and done.stdout.startswith("local\n"), done.stderr
    interfaces = [line.split(":")[0].strip() for line in done.stdout.splitlines()[3:]]
    assert interfaces == ["lo"], done.stdout


def test_host_network_shares_the_hosts_interfaces(busybox):
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    busybox.ok("container", "run", "-d", "--name", "h", "--network", "host", "bb", "sleep", "300")
    inside = busybox.exec_out("h", "cat", "/proc/net/dev")
    assert "bl-farm" in inside  # the host's bridge is visible: no network namespace of its own
    info = busybox.ok("container", "inspect", "h")
    assert info["host_network"] is True and info["networks"] == []
    assert busybox.cli("container", "list").stdout.splitlines()[1].split()[5] == "host"
    for args, message in (
        (("--network", "host", "--network", "farm"), "comes alone"),
        (("--network", "host:10.0.0.1"), "comes alone"),
        (("--network", "host", "--userns"), "do not mix"),
    ):
        reply = busybox.call("container", "create", *args, "bb", "true")
        assert not reply["ok"] and message in reply["error"]["message"], reply
    reply = busybox.call("network", "create", "host", "--subnet", free_subnet())
    assert not reply["ok"] and "'host' is reserved" in reply["error"]["message"]


def test_dns_settings_and_added_hosts_reach_the_container(busybox):
    row = busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    busybox.ok("container", "run", "-d", "--name", "db", "--network", "farm", "bb", "sleep", "300")
    busybox.ok(
        "container", "run", "-d", "--name", "app", "--network", "farm", "--dns", "192.0.2.1", "--dns", "2001:db8::1",
        "--dns-search", "corp.example", "--dns-option", "ndots:2", "--add-host", "db:192.0.2.7",
        "--add-host", "gw:host-gateway", "--cap-add", "NET_RAW", "bb", "sleep", "300",
    )  # fmt: skip
    resolv = busybox.exec_out("app", "cat", "/etc/resolv.conf").splitlines()
    assert [line for line in resolv if not line.startswith("#")] == [
        "nameserver 192.0.2.1", "nameserver 2001:db8::1", "search corp.example", "options ndots:2"]  # fmt: skip
    hosts = busybox.exec_out("app", "cat", "/etc/hosts").splitlines()
    given = hosts.index("192.0.2.7\tdb")
    assert hosts[given + 1] == f"{row['gateway']}\tgw"
    assert any(line.endswith("\tdb") for line in hosts[given + 2 :])  # the neighbour too, after the given name
    assert busybox.exec_out("app", "ping", "-c", "1", "-W", "2", "gw").count("1 packets received") == 1
    config = busybox.ok("container", "inspect", "app")["config"]
    assert config["extra_hosts"] == [["db", "192.0.2.7"], ["gw", row["gateway"]]]
    busybox.ok("container", "restart", "--time", "1", "app")  # written again at each start, the same
    assert busybox.exec_out("app", "cat", "/etc/resolv.conf").splitlines() == resolv


@pytest.fixture
def stub_resolver(tmp_path):
    """This test's /etc/resolv.conf as systemd-resolved's stub writes it (mounts are private to the test run)."""
    fake = tmp_path / "resolv.conf"
    fake.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lab\n")
    subprocess.run(["mount", "--bind", str(fake), "/etc/resolv.conf"], check=True)
    yield fake.read_text()
    subprocess.run(["umount", "/etc/resolv.conf"], check=True)


def test_the_hosts_network_keeps_the_hosts_loopback_resolver(busybox, stub_resolver):
    """127.0.0.53 answers on the host's network; dropped there, the container would have no DNS at all."""
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    busybox.ok("container", "run", "-d", "--name", "h", "--network", "host", "bb", "sleep", "300")
    assert busybox.exec_out("h", "cat", "/etc/resolv.conf") == stub_resolver
    busybox.ok("container", "run", "-d", "--name", "b", "--network", "farm", "bb", "sleep", "300")
    assert "127.0.0.53" not in busybox.exec_out("b", "cat", "/etc/resolv.conf")


def test_an_internal_network_joins_its_containers_and_nothing_else(busybox):
    back = busybox.ok("network", "create", "back", "--subnet", free_subnet(), "--internal")
    front = busybox.ok("network", "create", "front", "--subnet", free_subnet())
    assert back["internal"] == "1" and front["internal"] == ""
    addresses = json.loads(subprocess.check_output(["ip", "-j", "addr", "show", "dev", "bl-back"]))
    assert addresses[0]["addr_info"] == [] and "UP" in addresses[0]["flags"]  # no address: this host is not on it
    ping = ("--cap-add", "NET_RAW")
    busybox.ok("container", "run", "-d", "--name", "db", "--network", "back", *ping, "bb", "sleep", "300")
    busybox.ok("container", "run", "-d", "--name", "app", "--network", "back", "--network", "front", *ping, "bb",
               "sleep", "300")  # fmt: skip
    assert "1 packets received" in busybox.exec_out("app", "ping", "-c", "1", "-W", "2", "db")  # one another
    assert busybox.cli("container", "exec", "db", "ping", "-c", "1", "-W", "1", back["gateway"]).returncode != 0
    assert "default" not in busybox.exec_out("db", "ip", "route")  # no way out
    assert busybox.exec_out("app", "ip", "route").startswith(f"default via {front['gateway']} dev eth1")
    assert "internal" in busybox.cli("network", "list").stdout.splitlines()[1].split()
    reply = busybox.call("container", "create", "--network", "back", "--add-host", "gw:host-gateway", "bb", "true")
    assert not reply["ok"] and "network 'back' is internal" in reply["error"]["message"]


def test_the_bridge_mac_stays_put_as_containers_come_and_go(busybox):
    """A bridge following its ports' MACs would strand neighbours' ARP entries for the gateway."""
    row = busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    mac = links()["bl-farm"]["address"]
    assert mac == "02:b1:" + ":".join(f"{byte:02x}" for byte in ipaddress.ip_address(row["gateway"]).packed)
    for name in ("a", "b", "c"):
        busybox.ok("container", "run", "-d", "--name", name, "--network", "farm", "bb", "sleep", "300")
        assert links()["bl-farm"]["address"] == mac
    busybox.ok("container", "rm", "--force", "a")
    assert links()["bl-farm"]["address"] == mac


def test_a_container_keeps_its_mac_across_restarts(busybox):
    """Neighbours cache the MAC of an address: a restarted container must answer at the same one."""
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    busybox.ok("container", "run", "-d", "--name", "a", "--network", "farm", "bb", "sleep", "300")
    first = busybox.exec_out("a", "cat", "/sys/class/net/eth0/address").strip()
    busybox.ok("container", "stop", "a", "--time", "1")
    busybox.ok("container", "start", "a")
    assert busybox.exec_out("a", "cat", "/sys/class/net/eth0/address").strip() == first
    container_id = busybox.ok("container", "inspect", "a")["id"]
    assert first == "02:" + ":".join(container_id[i : i + 2] for i in range(0, 8, 2)) + ":00"
