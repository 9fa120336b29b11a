"""`invoke mirror.add|rm|list`: the registry mirrors each host's pulls try first (`baleine mirror`)."""

from invoke import Collection

from .. import view
from .common import each_host, fleet_task, helps, task
from .views import fleet_table

COLUMNS = ("HOST", "REGISTRY", "MIRROR", "ADDED")


@task(
    help=helps(
        registry="HOST[:PORT] it mirrors, e.g. docker.io",
        mirror="HOST[:PORT][/PATH] of the mirror, e.g. mirror.gcr.io, cache.lan:5000 or harbor.lan/dockerhub",
        insecure="plain HTTP, or HTTPS with an unchecked certificate",
    )
)
@fleet_task
def add(c, registry, mirror, hosts, insecure=False, json_=False, parallel=32, timeout=60):
    """Have each host's pulls from REGISTRY try MIRROR first (after the mirrors it has)."""
    args = ["mirror", "add", registry, mirror, *(["--insecure"] if insecure else [])]
    each_host(hosts, parallel, timeout, json_, args, lambda row: f"{row['mirror']} mirrors {row['registry']}")


@task(help=helps(mirror="HOST[:PORT][/PATH] of the mirror"))
@fleet_task
def rm(c, mirror, hosts, json_=False, parallel=32, timeout=60):
    """Forget a mirror on each host."""
    each_host(hosts, parallel, timeout, json_, ["mirror", "rm", mirror], lambda _row: "removed")


@task(help=helps())
@fleet_task
def mirrors(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Every host's registry mirrors, in the order its pulls try them."""
    fleet_table(hosts, parallel, timeout, json_, ("mirror", "list"), COLUMNS, _rows)


def _rows(outcomes):
    def row(host, item):
        return [host, item["registry"], item["mirror"] + (" (insecure)" if item["insecure"] else ""), item["created"]]

    return view.rows(outcomes, COLUMNS, row)


namespace = Collection("mirror", add, rm, list=mirrors)
