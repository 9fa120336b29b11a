"""`invoke network.create|rm|prune|list|connect|disconnect`: bridges on many hosts at once."""

from invoke import Collection

from .common import checked, each_host, fleet_task, helps, removed_text, task
from .views import networks


@task(help=helps(name="network name", subnet="CIDR, e.g. 10.42.0.0/24 (checked against each host's routes)",
                 gateway="gateway address (default: the subnet's first)",
                 internal="no address on the bridges: the containers reach one another only"))  # fmt: skip
@fleet_task
def create(c, name, subnet, hosts, gateway=None, internal=False, json_=False, parallel=32, timeout=120):
    """Create a network (a bridge with its gateway address) on each host."""
    from ..node import networks

    checked(networks.addressing, name, subnet, gateway)  # the routes each host has are for it to judge
    args = ["network", "create", name, "--subnet", subnet, *(["--gateway", gateway] if gateway else [])]
    args += ["--internal"] if internal else []
    each_host(hosts, parallel, timeout, json_, args, lambda row: f"{row['bridge']} {row['subnet']}")


@task(help=helps(name="network name"))
@fleet_task
def rm(c, name, hosts, json_=False, parallel=32, timeout=120):
    """Remove a network on each host (refused where containers are attached)."""
    each_host(hosts, parallel, timeout, json_, ["network", "rm", name], lambda _row: "removed")


@task(help=helps())
@fleet_task
def prune(c, hosts, json_=False, parallel=32, timeout=120):
    """Remove every network no container is attached to on each host (created and exited ones count)."""
    each_host(hosts, parallel, timeout, json_, ["network", "prune"], _pruned)


def _pruned(removed):
    return removed_text([item["name"] for item in removed], nothing="no network to remove")


@task(help=helps(network="network name", container="container name or id"))
@fleet_task
def connect(c, network, container, hosts, json_=False, parallel=32, timeout=120):
    """Attach a container to a network on each host, live if it runs (its first free address there)."""
    each_host(hosts, parallel, timeout, json_, ["network", "connect", network, container], _addresses)


@task(help=helps(network="network name", container="container name or id"))
@fleet_task
def disconnect(c, network, container, hosts, json_=False, parallel=32, timeout=120):
    """Detach a container from a network on each host, live if it runs: its interface there goes."""
    each_host(hosts, parallel, timeout, json_, ["network", "disconnect", network, container], _addresses)


def _addresses(row):
    return ", ".join(f"{n['network']} {n['address']}" for n in row["networks"]) or "no network"


namespace = Collection("network", create, rm, prune, connect, disconnect, list=networks)
