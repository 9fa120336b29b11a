"""`invoke network.create|rm|list`: bridges on many hosts at once."""

from invoke import Collection, task

from .. import client
from .common import finish, fleet_task, helps, open_fleet, result_rows
from .views import networks


@task(help=helps(name="network name", subnet="CIDR, e.g. 10.42.0.0/24 (checked against each host's routes)",
                 gateway="gateway address (default: the subnet's first)"))  # fmt: skip
@fleet_task
def create(c, name, subnet, hosts, gateway=None, json_=False, parallel=32, timeout=120):
    """Create a network (a bridge with its gateway address) on each host."""
    args = ["network", "create", name, "--subnet", subnet, *(["--gateway", gateway] if gateway else [])]
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, *args))
    finish(outcomes, json_, ("HOST", "RESULT"), result_rows(outcomes, lambda row: f"{row['bridge']} {row['subnet']}"))


@task(help=helps(name="network name"))
@fleet_task
def rm(c, name, hosts, json_=False, parallel=32, timeout=120):
    """Remove a network on each host (refused where containers are attached)."""
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, "network", "rm", name))
    finish(outcomes, json_, ("HOST", "RESULT"), result_rows(outcomes, lambda _row: "removed"))


namespace = Collection("network", create, rm, list=networks)
