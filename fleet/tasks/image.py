"""`invoke image.push|rm|prune|list`: image files on many hosts."""

from invoke import Collection, task

from .. import images as pushing
from ..errors import FleetError
from .common import each_host, finish, fleet_task, helps, open_fleet, result_rows
from .views import images


@task(help=helps(name="image name", from_="take the image from this host instead of this machine"))
@fleet_task
def push(c, name, hosts, from_=None, json_=False, parallel=32, timeout=3600):
    """Send an image to hosts that lack it (same sha256 present: skipped), with a progress bar."""
    with open_fleet(hosts if not from_ else f"{hosts},{from_}", parallel, timeout) as fleet:
        targets = [host for host in fleet.hosts if host.name != from_]
        source = _source(fleet, name, from_)
        try:
            plans = fleet.each(lambda session: pushing.plan(session, source), hosts=targets)
            needed = [outcome.host for outcome in plans if outcome.ok and outcome.value == "send"]
            progress = pushing.Progress(name, pushing.payload_bytes(source.path), len(needed))
            sent = {o.host.name: o for o in fleet.each(lambda s: pushing.send(s, source, progress), hosts=needed)}
            progress.finish()
        finally:
            source.close()
    outcomes = [sent.get(outcome.host.name, outcome) for outcome in plans]
    for outcome in outcomes:
        if outcome.ok and outcome.value == "present":
            outcome.value = 0  # nothing sent
    finish(outcomes, json_, ("HOST", "RESULT"), result_rows(outcomes, _pushed),
           data=[{"host": o.host.name, "sent": o.value} for o in outcomes if o.ok])  # fmt: skip


def _pushed(sent):
    from ..node.parse import human_size

    return f"sent {human_size(sent)}" if sent else "already there (same sha256): nothing sent"


def _source(fleet, name, from_):
    if not from_:
        return pushing.local_source(name)
    [outcome] = fleet.each(lambda session: pushing.fetched_source(session, name),
                           hosts=[h for h in fleet.hosts if h.name == from_])  # fmt: skip
    if not outcome.ok:
        raise FleetError(f"cannot take image {name!r} from {from_}: {outcome.error}")
    return outcome.value


@task(help=helps(name="image name"))
@fleet_task
def rm(c, name, hosts, json_=False, parallel=32, timeout=120):
    """Remove an image on each host (refused where a container uses it)."""
    each_host(hosts, parallel, timeout, json_, ["image", "rm", name], lambda _row: "removed")


@task(help=helps())
@fleet_task
def prune(c, hosts, json_=False, parallel=32, timeout=120):
    """Remove every image no container uses on each host (created and exited ones count as users)."""
    each_host(hosts, parallel, timeout, json_, ["image", "prune"], _pruned)


def _pruned(removed):
    from ..node.parse import human_size

    if not removed:
        return "no image to remove"
    freed = human_size(sum(item["freed"] for item in removed))
    return f"removed {', '.join(item['name'] for item in removed)} (freed {freed})"


namespace = Collection("image", push, rm, prune, list=images)
