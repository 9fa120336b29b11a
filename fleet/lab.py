"""A lab fleet on one machine: each node a network + mount namespace with its own sshd.

Node N is a process started by `unshare --net --mount` that sets up its mount
namespace (its own /var/lib/baleine, /etc/cron.d, /run, and an empty /root as
on a fresh host: this machine's shell start-up files stay out), starts Debian's
cron daemon and then becomes sshd. Its network namespace gets one veth whose
other end is on the lab bridge, where the control machine has the gateway
address. Keys and known_hosts are generated for the lab, and an inventory
(hosts/lab.toml) written, so every task works on the lab as on real hosts.

Each node's containers live under their own cgroup parent (given to SSH
sessions by sshd's SetEnv, and from there to the cron entry), so nodes never
see each other's cgroups.

Everything the lab makes is recorded in DIR/lab.json; `down` removes it all,
ending only the processes the lab started (by pid, and whatever still runs in
a node's network namespace, which only the lab's own processes can be in).
"""

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from .errors import FleetError

BRIDGE = "baleine-lab"
DEFAULT_DIR = ".lab"
DEFAULT_INVENTORY = "hosts/lab.toml"
SSHD = "/usr/sbin/sshd"
NODE_STATE = "/var/lib/baleine"
CANDIDATES = [f"10.{second}.{third}.0/24" for second in (213, 214, 215) for third in range(0, 256, 7)]

# Runs as each node's first process, inside its new namespaces, then becomes sshd.
NODE_SCRIPT = """\
set -e
node=$1
mount --bind "$node/state" /var/lib/baleine
mount --bind "$node/cron.d" /etc/cron.d
mount --bind /dev/null /etc/crontab
mount -t tmpfs -o mode=755 lab-run /run
mount -t tmpfs -o mode=700 lab-home /root
mkdir -p /run/sshd
if [ -d /var/spool/cron/crontabs ]; then mount -t tmpfs -o mode=1730 lab-crontabs /var/spool/cron/crontabs; fi
ip link set lo up
if command -v cron >/dev/null; then cron -f -L 0 & echo $! > "$node/cron.pid"; fi
echo $$ > "$node/ready"
exec /usr/sbin/sshd -D -e -f "$node/sshd_config"
"""


class LabError(FleetError):
    pass


def lab_file(directory):
    return os.path.join(directory, "lab.json")


def load(directory=DEFAULT_DIR):
    try:
        with open(lab_file(directory), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def save(directory, lab):
    from .node import state

    state.write_atomic(lab_file(directory), json.dumps(lab, indent=2))


def alive(pid):
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def choose_subnet(wanted=None, networks=None):
    """The lab's /24: `wanted` if it overlaps nothing here, else the first free candidate."""
    from .node import net

    networks = net.host_networks() if networks is None else networks
    for text in [wanted] if wanted else CANDIDATES:
        try:
            subnet = ipaddress.ip_network(text)
        except ValueError:
            raise LabError(f"invalid --subnet {text!r}: use an IPv4 network such as 10.213.0.0/24") from None
        if subnet.version != 4 or subnet.num_addresses < 64:
            raise LabError(f"invalid --subnet {text}: use an IPv4 network of /26 or larger")
        clash = net.find_overlap(subnet, networks)
        if clash is None:
            return subnet
        if wanted:
            raise LabError(f"subnet {subnet} overlaps {clash} on this machine: choose another with --subnet")
    raise LabError("no free subnet for the lab among 10.213-215.x.0/24: give one with --subnet")


def node_names(count):
    if not isinstance(count, int) or not 1 <= count <= 200:
        raise LabError(f"invalid --nodes {count!r}: use a number from 1 to 200")
    return [f"node{index}" for index in range(1, count + 1)]


def up(count=3, subnet=None, directory=DEFAULT_DIR, inventory=DEFAULT_INVENTORY, cgroup_parent=None, say=print):
    """Start the lab (or restart the sshd of nodes whose sshd died); returns the lab record."""
    directory = os.path.abspath(directory)
    existing = load(directory)
    if existing:
        return _revive(existing, directory, say)
    _require_tools()
    names = node_names(count)
    network = choose_subnet(subnet)
    hosts = list(network.hosts())
    gateway = hosts[0]
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lab = {
        "subnet": str(network),
        "gateway": str(gateway),
        "bridge": BRIDGE,
        "inventory": os.path.abspath(inventory),
        "cgroup_parent": cgroup_parent or os.environ.get("BALEINE_CGROUP_PARENT") or "baleine-lab",
        "made_state_dir": False,
        "nodes": [],
    }
    save(directory, lab)  # from here on, `down` can undo whatever was done
    try:
        if not os.path.isdir(NODE_STATE):
            os.makedirs(NODE_STATE, mode=0o700)
            lab["made_state_dir"] = True
        _keygen(os.path.join(directory, "id_ed25519"))
        _ip("link", "add", "name", BRIDGE, "type", "bridge", "forward_delay", "0")
        lab["bridge_made"] = True
        _ip("addr", "add", f"{gateway}/{network.prefixlen}", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for index, name in enumerate(names):
            node = {"name": name, "address": str(hosts[10 + index]), "veth": f"lab-{name}"}
            lab["nodes"].append(node)
            _start_node(directory, lab, node)
            save(directory, lab)
        _write_known_hosts(directory, lab)
        for node in lab["nodes"]:
            _wait_for_ssh(directory, node)
        write_inventory(directory, lab)
    except BaseException:
        save(directory, lab)
        down(directory, say=lambda _text: None)
        raise
    save(directory, lab)
    say(f"lab up: {len(names)} nodes on {network} (bridge {BRIDGE}), inventory {inventory}")
    return lab


def _require_tools():
    for tool in (SSHD, "ssh-keygen", "ip", "unshare", "nsenter"):
        if not shutil.which(tool):
            raise LabError(f"{tool} not found: the lab needs openssh-server, openssh-client, iproute2, util-linux")


def _ip(*args, netns_pid=None):
    argv = ["ip", *args]
    if netns_pid:
        argv = ["nsenter", "-t", str(netns_pid), "-n", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _keygen(path):
    if not os.path.exists(path):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "baleine-lab", "-f", path], check=True)


def _start_node(directory, lab, node):
    home = os.path.join(directory, node["name"])
    for sub in ("state", "cron.d"):
        os.makedirs(os.path.join(home, sub), mode=0o755, exist_ok=True)
    _keygen(os.path.join(home, "ssh_host_ed25519_key"))
    node["cgroup_parent"] = f"{lab['cgroup_parent']}/{node['name']}"
    with open(os.path.join(home, "sshd_config"), "w", encoding="utf-8") as handle:
        handle.write(sshd_config(directory, home, node))
    with open(os.path.join(home, "node.sh"), "w", encoding="utf-8") as handle:
        handle.write(NODE_SCRIPT)
    node["pid"] = _spawn(["unshare", "--net", "--mount", "--propagation", "private", "--",
                          "/bin/sh", os.path.join(home, "node.sh"), home], home)  # fmt: skip
    # Only once the script has run are its namespaces there: a veth sent to the pid
    # before that would land in this machine's own namespace.
    ready = _read_pid(os.path.join(home, "ready"))
    node["cron_pid"] = _read_pid(os.path.join(home, "cron.pid"), timeout=0.5)  # recorded first: down ends it
    if ready != node["pid"]:
        raise LabError(f"{node['name']} did not start; see {os.path.join(home, 'sshd.log')}")
    node["netns"] = os.stat(f"/proc/{node['pid']}/ns/net").st_ino
    if node["netns"] == os.stat("/proc/self/ns/net").st_ino:
        raise LabError(f"{node['name']} has no network namespace of its own")
    _ip("link", "add", node["veth"], "type", "veth", "peer", "name", "eth0", "netns", str(node["pid"]))
    _ip("link", "set", node["veth"], "master", BRIDGE, "up")
    _ip("addr", "add", f"{node['address']}/{ipaddress.ip_network(lab['subnet']).prefixlen}", "dev", "eth0",
        netns_pid=node["pid"])  # fmt: skip
    _ip("link", "set", "eth0", "up", netns_pid=node["pid"])


def _spawn(argv, home):
    log = open(os.path.join(home, "sshd.log"), "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    finally:
        log.close()
    return process.pid


def _read_pid(path, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    return None


def sshd_config(directory, home, node):
    return "\n".join([
        "# written by invoke lab.up for one lab node",
        "ListenAddress 0.0.0.0:22",
        f"HostKey {home}/ssh_host_ed25519_key",
        "PidFile none",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        f"AuthorizedKeysFile {directory}/id_ed25519.pub",
        "MaxStartups 200",
        "MaxSessions 100",
        "LogLevel ERROR",
        f"SetEnv BALEINE_CGROUP_PARENT={node['cgroup_parent']}",
        "Subsystem sftp internal-sftp",
        "",
    ])  # fmt: skip


def _write_known_hosts(directory, lab):
    lines = []
    for node in lab["nodes"]:
        with open(os.path.join(directory, node["name"], "ssh_host_ed25519_key.pub"), encoding="utf-8") as handle:
            key_type, key = handle.read().split()[:2]
        lines.append(f"{node['address']} {key_type} {key}\n")
    with open(os.path.join(directory, "known_hosts"), "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def _wait_for_ssh(directory, node, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((node["address"], 22), timeout=1):
                return
        except OSError as error:
            if time.monotonic() > deadline or not alive(node["pid"]):
                log = os.path.join(directory, node["name"], "sshd.log")
                where = f"{node['address']}:22"
                raise LabError(f"{node['name']}: sshd does not answer on {where} ({error}); see {log}") from None
            time.sleep(0.05)


def write_inventory(directory, lab):
    lines = [
        "# Written by `invoke lab.up`: the local lab fleet. `invoke lab.down` removes it.",
        "[defaults]",
        'user = "root"',
        f'identity = "{directory}/id_ed25519"',
        f'known_hosts = "{directory}/known_hosts"',
        "connect_timeout = 5",
        "",
    ]
    for node in lab["nodes"]:
        lines += [f"[hosts.{node['name']}]", f'address = "{node["address"]}"', 'labels = { lab = "yes" }', ""]
    lines += ["[groups]", "lab = [" + ", ".join(f'"{node["name"]}"' for node in lab["nodes"]) + "]", ""]
    os.makedirs(os.path.dirname(lab["inventory"]) or ".", exist_ok=True)
    with open(lab["inventory"], "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def _revive(lab, directory, say):
    """lab.up on a running lab: restart any node's sshd that was stopped."""
    for node in lab["nodes"]:
        if alive(node["pid"]):
            continue
        holder = node.get("cron_pid")
        if not alive(holder):
            raise LabError(f"{node['name']}'s namespaces are gone: run invoke lab.down, then lab.up")
        home = os.path.join(directory, node["name"])
        node["pid"] = _spawn(["nsenter", "-t", str(holder), "-n", "-m", "--",
                              SSHD, "-D", "-e", "-f", os.path.join(home, "sshd_config")], home)  # fmt: skip
        _wait_for_ssh(directory, node)
        say(f"{node['name']}: sshd restarted")
    save(directory, lab)
    return lab


def stop_sshd(directory, name):
    """End one node's sshd (its containers and cron keep running): the node becomes unreachable."""
    lab = load(os.path.abspath(directory))
    node = next((n for n in (lab or {}).get("nodes", []) if n["name"] == name), None)
    if node is None:
        raise LabError(f"no lab node {name!r}")
    _end(node["pid"])


def status(directory=DEFAULT_DIR):
    """[{name, address, sshd, cron, ssh}] for each node, or None when no lab is up."""
    lab = load(os.path.abspath(directory))
    if not lab:
        return None
    rows = []
    for node in lab["nodes"]:
        try:
            with socket.create_connection((node["address"], 22), timeout=1):
                answers = True
        except OSError:
            answers = False
        rows.append({
            "name": node["name"],
            "address": node["address"],
            "sshd_pid": node["pid"] if alive(node["pid"]) else None,
            "cron_pid": node.get("cron_pid") if alive(node.get("cron_pid")) else None,
            "ssh": answers,
            "enter": f"nsenter -t {node.get('cron_pid') or node['pid']} -n -m",
        })  # fmt: skip
    return {"subnet": lab["subnet"], "bridge": lab["bridge"], "inventory": lab["inventory"], "nodes": rows}


def down(directory=DEFAULT_DIR, say=print):
    """Remove everything the lab made; returns False when there was no lab."""
    directory = os.path.abspath(directory)
    lab = load(directory)
    if lab is None:
        return False
    for node in lab["nodes"]:
        _empty_node(directory, node)
        for pid in [node.get("pid"), node.get("cron_pid"), *_namespace_members(node)]:
            _end(pid)
        # The kernel drops a dead namespace's veth in its own time; a lab.up right after needs the name now.
        subprocess.run(["ip", "link", "del", node["veth"]], capture_output=True)
    if lab.get("bridge_made"):
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    _end_leftover_containers(lab)
    _remove_cgroups(lab)
    if lab.get("made_state_dir"):
        try:
            os.rmdir(NODE_STATE)
        except OSError:
            pass
    if os.path.exists(lab.get("inventory", "")):
        os.unlink(lab["inventory"])
    shutil.rmtree(directory, ignore_errors=True)
    say(f"lab down: {len(lab['nodes'])} nodes, bridge {BRIDGE} and {directory} removed")
    return True


def _empty_node(directory, node):
    """Remove the node's containers and networks with the helper itself, inside its namespaces."""
    holder = node.get("cron_pid") if alive(node.get("cron_pid")) else node.get("pid")
    if not alive(holder):
        return
    from . import ship
    from .node import boot

    zipapp = os.path.join(directory, "baleine.pyz")
    if not os.path.exists(zipapp):
        ship.build(zipapp)
    env = dict(os.environ, BALEINE_ROOT=NODE_STATE, BALEINE_CGROUP_PARENT=node["cgroup_parent"])
    enter = ["nsenter", "-t", str(holder), "-n", "-m", "--", *boot.argv("python3", zipapp)]

    def helper(*args):
        done = subprocess.run([*enter, *args, "--json"], capture_output=True, text=True, env=env, timeout=120)
        try:
            return json.loads(done.stdout.strip().splitlines()[-1]).get("data") or []
        except (ValueError, IndexError):
            return []

    for item in helper("container", "list", "--all"):
        helper("container", "rm", "--force", item["name"])
    for item in helper("network", "list"):
        helper("network", "rm", item["name"])


def _end(pid, timeout=5.0):
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _namespace_members(node):
    """Pids in the node's network namespace (ssh sessions, cron jobs): only the lab's own can be there.

    Looked up only while one of the node's recorded processes is alive and
    still in the recorded namespace, so the inode cannot belong to a newer one.
    """
    holders = [pid for pid in (node.get("pid"), node.get("cron_pid")) if alive(pid)]
    try:
        if not holders or os.stat(f"/proc/{holders[0]}/ns/net").st_ino != node.get("netns"):
            return []
    except FileNotFoundError:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in holders:
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == node["netns"]:
                    members.append(int(entry))
            except (FileNotFoundError, PermissionError):
                continue
    return members


def _end_leftover_containers(lab):
    """Kill what the helper could not remove (it failed, or the node was broken): each node's containers
    live in cgroups under the node's own cgroup parent, which holds nothing but the lab's."""
    from .node import cgroups

    for node in lab["nodes"]:
        parent = node.get("cgroup_parent")
        if not parent:
            continue
        names = set()
        for mount in _cgroup_mounts():
            level = os.path.join(mount, parent)
            if os.path.isdir(level):
                names |= {name for name in os.listdir(level) if os.path.isdir(os.path.join(level, name))}
        for name in sorted(names):
            group = cgroups.Cgroup(name, parent=parent)
            group.kill()
            group.remove()


def _remove_cgroups(lab):
    """The nodes' (now empty) cgroup parents, and the lab's own once empty."""
    for mount in _cgroup_mounts():
        levels = [node["cgroup_parent"] for node in lab["nodes"] if node.get("cgroup_parent")]
        for level in [*levels, lab["cgroup_parent"]]:
            try:
                os.rmdir(os.path.join(mount, level))
            except OSError:
                pass  # never made on this hierarchy, or still in use


def _cgroup_mounts():
    from .node import cgroups

    return [mount for mount, _version, _controllers in cgroups.hierarchies()]
