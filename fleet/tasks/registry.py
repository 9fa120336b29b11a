"""`invoke registry.insecure|secure|list`: each host's registry settings (`baleine registry`)."""

from invoke import Collection

from .. import view
from .common import each_host, fleet_task, helps, task
from .views import fleet_table

COLUMNS = ("HOST", "REGISTRY", "LOGIN", "MIRRORS", "REACHED")


@task(help=helps(registry="HOST[:PORT], e.g. registry.lan:5000"))
@fleet_task
def insecure(c, registry, hosts, json_=False, parallel=32, timeout=60):
    """Let each host's pulls and pushes reach REGISTRY over plain HTTP or unchecked HTTPS (insecure-registries)."""
    each_host(hosts, parallel, timeout, json_, ["registry", "insecure", registry], _said)


@task(help=helps(registry="HOST[:PORT]"))
@fleet_task
def secure(c, registry, hosts, json_=False, parallel=32, timeout=60):
    """HTTPS with checked certificates again for REGISTRY on each host (the default)."""
    each_host(hosts, parallel, timeout, json_, ["registry", "secure", registry], _said)


@task(help=helps())
@fleet_task
def registries(c, hosts="all", json_=False, parallel=32, timeout=60):
    """Every registry each host knows: its login, its mirrors, plain HTTP or HTTPS."""
    fleet_table(hosts, parallel, timeout, json_, ("registry", "list"), COLUMNS, _rows)


def _said(done):
    reached = "plain HTTP allowed" if done["insecure"] else "HTTPS only"
    return f"{done['registry']}: {reached}" + ("" if done["changed"] else " (already)")


def _rows(outcomes):
    def row(host, item):
        reached = "plain HTTP" if item["insecure"] else "HTTPS"
        return [host, item["registry"], item["login"] or "-", ", ".join(item["mirrors"]) or "-", reached]

    return view.rows(outcomes, COLUMNS, row)


namespace = Collection("registry", insecure, secure, list=registries)
