"""`invoke ps`, `images`, `networks`, `events`, `df`, `info`: one table over the whole fleet."""

from .. import client, view
from .common import finish, fleet_task, helps, open_fleet, stream, task


def fleet_table(hosts, parallel, timeout, as_json, args, columns, make_rows):
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, *args))
    finish(outcomes, as_json, columns, make_rows(outcomes))


@task(iterable=["filter_"], help=helps(all="also containers that are not running",
                                       filter="KEY=VALUE, as `baleine container list` takes it (repeat)"))  # fmt: skip
@fleet_task
def ps(c, hosts="all", all_=False, filter_=None, json_=False, parallel=32, timeout=60):
    """Every container on every selected host, in one table (HOST first)."""
    args = ["container", "list", *(["--all"] if all_ else [])]
    for value in filter_ or []:
        args += ["--filter", value]
    fleet_table(hosts, parallel, timeout, json_, args, view.CONTAINER_COLUMNS, view.container_rows)


@task(help=helps())
@fleet_task
def images(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Every image on every selected host, in one table."""
    fleet_table(hosts, parallel, timeout, json_, ("image", "list"), view.IMAGE_COLUMNS, view.image_rows)


@task(help=helps())
@fleet_task
def networks(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Every network (bridge) on every selected host, in one table."""
    fleet_table(hosts, parallel, timeout, json_, ("network", "list"), view.NETWORK_COLUMNS, view.network_rows)


@task(help=helps(container="one container, name or id (default: all)", since="a date, a UTC time, or 90m, 2h, 7d",
                 follow="then each new event as it comes, `HOST | event`, until Ctrl-C"))  # fmt: skip
@fleet_task
def events(c, hosts="all", container=None, since=None, follow=False, json_=False, parallel=32, timeout=60):
    """What happened to containers on every selected host, as one timeline: when, where, what, who."""
    args = ["events", *([container] if container else []), *(["--since", since] if since else [])]
    if follow:
        stream(hosts, [*args, "--follow"], json_, timeout)
        return
    fleet_table(hosts, parallel, timeout, json_, args, view.EVENT_COLUMNS, view.event_rows)


@task(help=helps())
@fleet_task
def df(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Each selected host's disk space: free, what images, containers and logs take, what prune would free."""
    fleet_table(hosts, parallel, timeout, json_, ("df",), view.SPACE_COLUMNS, view.space_rows)


@task(help=helps())
@fleet_task
def info(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Each selected host: kernel, cgroups, state filesystem, containers, images, free space, cron, helper."""
    fleet_table(hosts, parallel, timeout, json_, ("info",), view.INFO_COLUMNS, view.info_rows)
