"""`invoke ps`, `invoke images`, `invoke networks`: one table over the whole fleet."""

from invoke import task

from .. import client, view
from .common import finish, fleet_task, helps, open_fleet


@task(help=helps(all="also containers that are not running"))
@fleet_task
def ps(c, hosts="all", all_=False, json_=False, parallel=32, timeout=60):
    """Every container on every selected host, in one table (HOST first)."""
    args = ("container", "list", "--all") if all_ else ("container", "list")
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, *args))
    finish(outcomes, json_, view.CONTAINER_COLUMNS, view.container_rows(outcomes))


@task(help=helps())
@fleet_task
def images(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Every image on every selected host, in one table."""
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, "image", "list"))
    finish(outcomes, json_, view.IMAGE_COLUMNS, view.image_rows(outcomes))


@task(help=helps())
@fleet_task
def networks(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Every network (bridge) on every selected host, in one table."""
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, "network", "list"))
    finish(outcomes, json_, view.NETWORK_COLUMNS, view.network_rows(outcomes))
