"""`invoke image.push|pull|login|logout|rm|prune|list`: image files and registry logins on many hosts."""

from invoke import Collection

from .. import images as pushing
from ..errors import FleetError
from .common import checked, each_host, finish, fleet_task, helps, one_host, open_fleet, removed_text, result_rows, task
from .views import images


@task(help=helps(name="image name", from_="take the image from this host instead of this machine"))
@fleet_task
def push(c, name, hosts, from_=None, json_=False, parallel=32, timeout=3600):
    """Send an image to hosts that lack it (same sha256 present: skipped), with a progress bar."""
    from_ = one_host(from_, "--from") if from_ else None
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


PASSWORD_VARIABLE = "BALEINE_REGISTRY_PASSWORD"


@task(
    help=helps(
        reference="[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST], e.g. nginx:1.27-alpine",
        name="image name (default: from the reference, e.g. nginx-1.27-alpine)",
        platform="OS/ARCH[/VARIANT] from an index (default: each host's own)",
        username=f"log in as this user; the password or token from ${PASSWORD_VARIABLE}, else asked for",
        insecure="plain HTTP, or HTTPS with an unchecked certificate",
        size="image file size (default: the files plus half again plus 16M)",
    )
)
@fleet_task
def pull(c, reference, hosts, name=None, platform=None, username=None, insecure=False, size=None, json_=False,
         parallel=32, timeout=3600):  # fmt: skip
    """Each host pulls an image from a registry itself; the digest each got, to compare."""
    from ..node.registry import Reference

    checked(Reference, reference)
    args = ["image", "pull", reference]
    for flag, value in (("--name", name), ("--platform", platform), ("--size", size), ("--username", username)):
        if value:
            args += [flag, value]
    if insecure:
        args.append("--insecure")
    password = None
    if username:
        args.append("--password-stdin")
        password = (_registry_password(username) + "\n").encode()
    each_host(hosts, parallel, timeout, json_, args, _pulled, stdin=password)


def _registry_password(username):
    """The registry password: from the environment (scripts, CI), else asked on the terminal."""
    import os
    import sys

    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if not sys.stdin.isatty():
        raise FleetError(f"--username {username}: set ${PASSWORD_VARIABLE}, or run from a terminal to be asked")
    import getpass

    return getpass.getpass(f"registry password for {username}: ")


@task(
    help=helps(
        registry="HOST[:PORT], e.g. ghcr.io or docker.io",
        username=f"the login's user; the password or token from ${PASSWORD_VARIABLE}, else asked for",
        insecure="plain HTTP, or HTTPS with an unchecked certificate",
    )
)
@fleet_task
def login(c, registry, username, hosts, insecure=False, json_=False, parallel=32, timeout=120):
    """Each host checks a registry login and keeps it for its pulls and pushes (baleine login)."""
    args = ["login", registry, "--username", username, "--password-stdin"] + (["--insecure"] if insecure else [])
    password = (_registry_password(username) + "\n").encode()
    each_host(hosts, parallel, timeout, json_, args, _logged_in, stdin=password)


def _logged_in(done):
    return f"logged in as {done['username']}" + ("" if done["checked"] else " (unchecked: the registry asks for none)")


@task(help=helps(registry="HOST[:PORT], e.g. ghcr.io or docker.io"))
@fleet_task
def logout(c, registry, hosts, json_=False, parallel=32, timeout=120):
    """Each host forgets the login it keeps for a registry."""
    each_host(hosts, parallel, timeout, json_, ["logout", registry],
              lambda done: "logged out" if done["removed"] else "no login kept")  # fmt: skip


def _pulled(row):
    return f"{row['name']}: {row['source'].rpartition('@')[2][:19]}" + (" (up to date)" if row["up_to_date"] else "")


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
    return removed_text(
        [item["name"] for item in removed], sum(item["freed"] for item in removed), "no image to remove"
    )


namespace = Collection("image", push, pull, login, logout, rm, prune, list=images)
