"""`invoke deploy` and `invoke rollback`: apps/*.toml onto the fleet, rolling and health-gated."""

import json
import os
import subprocess
import sys
import time

from invoke import Exit

from .. import inventory, lock, view
from ..errors import FleetError
from ..inventory import inventory_path
from ..node import parse
from .common import HOSTS_HELP, checked, fleet_task, open_fleet, task

DEFAULT_APP = "apps/webfarm.toml"


def _state_dir():
    path = inventory_path()
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def _failed_file():
    return os.path.join(_state_dir(), ".deploy-failed.json")


def _read_failed():
    try:
        with open(_failed_file(), encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return {}


def _record_failed(spec_file, hosts):
    from ..node import state

    failed = _read_failed()
    failed[os.path.abspath(spec_file)] = sorted(hosts)
    with state.replacing(_failed_file()) as handle:
        handle.write(json.dumps(failed, indent=2).encode())


def image_source(app, dry_run):
    """The app's image from this machine's state, built here first if the spec says how."""
    from .. import images as pushing

    if app.build.startswith("file:"):
        return pushing.file_source(os.path.expanduser(app.build[len("file:") :]), app.image)
    try:
        return pushing.local_source(app.image)
    except FleetError:
        if dry_run:
            return None
        if not app.build:
            raise FleetError(f"image {app.image!r} is not on this machine and app {app.name} has no build") from None
    if app.build.startswith(("import:", "pull:")):
        verb, _, source = app.build.partition(":")
        argv = ["image", verb, source, "--name", app.image]
        argv += ["--size", app.size] if app.size else []
    else:
        argv = ["image", "create", app.image, "--size", app.size or "64M", "--from", app.build]
    print(f"building image {app.image} here from {app.build}", file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "fleet.node", *argv], stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise FleetError(f"could not build image {app.image!r} from {app.build}")
    return pushing.local_source(app.image)


HELP = {
    "hosts": HOSTS_HELP,
    "app": f"the app spec (default {DEFAULT_APP})",
    "dry_run": "print the plan per host and change nothing",
    "retry_failed": "deploy only to the hosts that failed last time with this spec",
    "lock_wait": "seconds to wait for another deploy to finish (default 0: refuse at once)",
    "parallel": "how many hosts at once (default 32)",
    "timeout": "seconds allowed per host (default 900)",
}


def _run(hosts, app, dry_run, retry_failed, lock_wait, parallel, timeout, rollback=False):
    # Here, not at the top: every invoke command loads this module, and these
    # two (dataclasses built at import) cost each of them 17 ms.
    from .. import apps, deploy

    lock_wait = checked(parse.seconds, lock_wait, "--lock-wait")
    spec = apps.load(app)
    apps.resolve_hosts(spec, inventory.load())
    lock_file = os.path.join(_state_dir(), ".deploy.lock")
    # The failed hosts are read and written under the lock: the next deploy's --retry-failed reads this one's.
    with lock.held(lock_file, lock_wait):
        if retry_failed:
            previous = _read_failed().get(os.path.abspath(app))
            if not previous:
                print(f"no host failed in the last deploy of {app}: nothing to retry")
                return
            hosts = ",".join(previous)
        with open_fleet(hosts, parallel, timeout) as fleet:
            report = deploy.run(fleet, spec, image_source, dry_run=dry_run, rollback=rollback,
                                say=lambda text: print(time.strftime("%H:%M:%S"), text, file=sys.stderr))  # fmt: skip
            names = [host.name for host in fleet.hosts]
        if not dry_run and not rollback:
            _record_failed(app, report.failed)
    print(view.table(("HOST", "RESULT"), report.summary(names)))
    if dry_run:
        if report.failed:  # a plan that could not be made is no all-clear for scripts
            raise Exit(f"could not plan: {', '.join(sorted(report.failed))} (dry run: nothing changed)", code=1)
        return
    if report.failed:
        raise Exit(f"failed: {', '.join(sorted(report.failed))} (invoke deploy --retry-failed retries them)", code=1)


@task(help=HELP)
@fleet_task
def deploy_(c, hosts="all", app=DEFAULT_APP, dry_run=False, retry_failed=False, lock_wait=0, parallel=32,
            timeout=900):  # fmt: skip
    """Deploy an app spec: plan per host, then start, health-check, switch the proxy, retire the old."""
    _run(hosts, app, dry_run, retry_failed, lock_wait, parallel, timeout)


@task(help={k: v for k, v in HELP.items() if k != "retry_failed"})
@fleet_task
def rollback(c, hosts="all", app=DEFAULT_APP, dry_run=False, lock_wait=0, parallel=32, timeout=900):
    """Bring back the version kept by the last deploy, health-gated, and stop the current one."""
    _run(hosts, app, dry_run, False, lock_wait, parallel, timeout, rollback=True)
