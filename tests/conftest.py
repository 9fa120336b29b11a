"""Shared test machinery: isolation checks, a built zipapp, a per-test state root, leak checks.

Integration tests need root inside a private network and mount namespace,
which `make test` (scripts/isolated) provides; run outside it they fail with a
message saying so instead of touching the host.
"""

import ipaddress
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hostnet import free_subnet

from fleet.node import boot

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CGROUP_PARENT = f"baleine-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
os.environ["BALEINE_CGROUP_PARENT"] = CGROUP_PARENT


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: real namespaces, loop devices and cgroups (run by make test)")


def in_private_netns():
    """True inside scripts/isolated: it records the host's netns before unsharing."""
    host = os.environ.get("BALEINE_TEST_HOST_NETNS")
    return bool(host) and os.readlink("/proc/self/ns/net") != host


@pytest.fixture(autouse=True)
def _refuse_host_namespace(request):
    """Integration tests never run in the host's network namespace."""
    isolated = os.geteuid() == 0 and in_private_netns()
    if request.node.get_closest_marker("integration") and not isolated:
        pytest.fail("integration tests need root in a private network namespace: run `make test`")
    yield


def firewall_ruleset():
    """iptables and nftables rules of the current network namespace, sorted."""
    rules = []
    for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        done = subprocess.run(argv, capture_output=True, text=True)
        rules += [line for line in done.stdout.splitlines() if not line.startswith("#")]
    return sorted(rules)


@pytest.fixture(scope="session", autouse=True)
def _no_firewall_rule_ever():
    """baleine never writes a firewall rule: the namespace's ruleset ends as it began."""
    before = firewall_ruleset() if in_private_netns() else None
    yield
    if before is not None:
        assert firewall_ruleset() == before, "the firewall ruleset changed during the tests"


@pytest.fixture(scope="session", autouse=True)
def _no_cgroup_left_at_the_end():
    """The tests' cgroup parent goes once its last container does, in every hierarchy."""
    yield
    if in_private_netns():
        left = [str(mount / CGROUP_PARENT) for mount in Path("/sys/fs/cgroup").iterdir()
                if (mount / CGROUP_PARENT).is_dir()]  # fmt: skip
        assert left == [], f"cgroups left behind: {left}"


@pytest.fixture(scope="session")
def podman_archives():
    """The directory of image archives podman wrote: ../shared/fixtures beside the clone, or $BALEINE_FIXTURES."""
    path = Path(os.environ.get("BALEINE_FIXTURES") or REPO.parent / "shared" / "fixtures")
    missing = [name for name in ("webfx-docker.tar", "webfx-oci.tar") if not (path / name).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not in {path}: clone beside ../shared, or set BALEINE_FIXTURES")
    return path


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory):
    """The node helper as shipped: one zipapp, run under python3 -I -S."""
    from fleet import ship

    path = tmp_path_factory.mktemp("zipapp") / "baleine.pyz"
    ship.build(str(path))
    return path


class Node:
    """The baleine command on this (isolated) host, with its own state root."""

    def __init__(self, zipapp, root):
        self.zipapp = zipapp
        self.root = root
        self.env = dict(os.environ, BALEINE_ROOT=str(root), BALEINE_CGROUP_PARENT=CGROUP_PARENT,
                        DOCKER_CONFIG=f"{root}-docker")  # never this machine's docker logins  # fmt: skip

    def argv(self, *args):
        return [*boot.argv(sys.executable, str(self.zipapp)), *map(str, args)]  # as the control side runs it

    def cli(self, *args, timeout=120, host_network=False, env=None, **kwargs):
        """Run baleine, return the CompletedProcess (text).

        host_network: run it in the host's network namespace (to download packages).
        env: variables to set beside the node's own.
        """
        argv = self.argv(*args)
        if host_network:
            fd = int(os.environ["BALEINE_TEST_HOST_NETNS_FD"])
            argv = ["nsenter", f"--net=/proc/self/fd/{fd}", "--", *argv]
            kwargs["pass_fds"] = (fd,)
        env = {**self.env, **(env or {})}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)

    def call(self, *args, timeout=120):
        """Run baleine --json; returns the parsed reply whatever the outcome."""
        done = self.cli("--json", *args, timeout=timeout)
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1, f"expected one JSON line from {args}, got {done.stdout!r} (stderr {done.stderr!r})"
        reply = json.loads(lines[0])
        reply["exit"] = done.returncode
        reply["stderr"] = done.stderr
        return reply

    def ok(self, *args, timeout=120):
        """Run baleine --json and return its data; fail the test if it failed."""
        reply = self.call(*args, timeout=timeout)
        assert reply["ok"], f"baleine {' '.join(map(str, args))} failed: {reply['error']} {reply['stderr']}"
        return reply["data"]

    def wait_for_log(self, name, text, timeout=20.0):
        """Wait until container name's log holds text: a shell that says "ready" after its trap has set it."""
        deadline = time.monotonic() + timeout
        while text not in (logs := self.cli("container", "logs", name).stdout):
            assert time.monotonic() < deadline, f"{name} did not log {text!r} in {timeout} s: {logs!r}"
            time.sleep(0.05)

    def exec_out(self, name, *command):
        data = self.ok("container", "exec", name, *command)
        assert data["exit_code"] == 0, data
        return data["stdout"]

    def state_files(self):
        """The bytes of every CSV table, to prove a refused command changed nothing."""
        return {name: (self.root / name).read_bytes() for name in ("images.csv", "bridges.csv", "containers.csv")
                if (self.root / name).exists()}  # fmt: skip

    def clean(self):
        for item in self.ok("container", "list", "--all"):
            self.ok("container", "rm", "--force", item["name"])
        for item in self.ok("network", "list"):
            self.ok("network", "rm", item["name"])
        for item in self.ok("image", "list"):
            self.ok("image", "rm", item["name"])


def leftovers(root):
    """What a test left behind: loop devices, mounts, cgroups, links. Empty when clean."""
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().startswith(str(root)):
                found.append(f"loop device {backing.parts[3]} -> {backing.read_text().strip()}")
        except OSError:
            pass
    with open("/proc/self/mountinfo") as handle:
        found += [f"mount {line.split()[4]}" for line in handle if str(root) in line.split()[4]]
    for mount in Path("/sys/fs/cgroup").iterdir():
        if (mount / CGROUP_PARENT).exists():
            found += [f"cgroup {path}" for path in (mount / CGROUP_PARENT).iterdir() if path.is_dir()]
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)
    found += [f"link {link['ifname']}" for link in links if link["ifname"].startswith(("bl-", "bv"))]
    return found


def wait_clean(root, timeout=5.0):
    """Loop devices and veths go away asynchronously once their namespace dies."""
    deadline = time.monotonic() + timeout
    while True:
        found = leftovers(root)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def node(tmp_path, zipapp):
    """A fresh state root; afterwards everything is removed and nothing may be left."""
    machine = Node(zipapp, tmp_path / "root")
    yield machine
    machine.clean()
    assert wait_clean(machine.root) == []


@pytest.fixture
def busybox(node):
    """The node with a busybox image named 'bb'."""
    node.ok("image", "create", "bb", "--size", "32M", "--from", "busybox")
    return node


@pytest.fixture
def subnet():
    return free_subnet()


@pytest.fixture
def lan_address(subnet):
    """An address of this test's private network namespace that is not loopback: on a bridge of its own."""
    address = str(next(ipaddress.ip_network(subnet).hosts()))
    subprocess.run(["ip", "link", "add", "reg0", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "reg0"], check=True)
        subprocess.run(["ip", "link", "set", "reg0", "up"], check=True)
        yield address
    finally:
        subprocess.run(["ip", "link", "del", "reg0"], check=True)
