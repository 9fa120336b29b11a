"""`invoke health`, `health.schedule`, `health.history`: scheduled checks across the fleet."""

import os

from invoke import Collection, Exit

from .. import client
from .. import health as checks
from ..inventory import inventory_path
from ..node import state
from ..node.render import table
from .common import checked, finish, fleet_task, helps, open_fleet, result_rows, task


def _check(session):
    return {"report": client.call(session, "check"), "containers": client.call(session, "container", "list", "--all")}


@task(default=True, help=helps(record="append one line per host to this CSV file (fleet-health.csv)"))
@fleet_task
def check(c, hosts="all", record=None, json_=False, parallel=32, timeout=300):
    """Run `baleine check` on every host; show what is wrong (exit 1 if anything is)."""
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(_check)
    if record:
        checks.record(record, checks.history_rows(outcomes))
    rows = checks.problems(outcomes)
    if not json_ and not rows:
        print("nothing wrong")
    finish(outcomes, json_, checks.COLUMNS if rows else None, rows,
           data=[{"host": r[0], "container": r[1], "problem": r[2], "detail": r[3]} for r in rows])  # fmt: skip
    if rows:
        raise Exit(code=1)  # something is wrong: monitoring can act on the status alone


@task(help=helps(every="minutes between checks, 1 to 59 (default 1 on hosts, 5 here)",
                 history=f"the CSV file health.history reads (default {checks.DEFAULT_HISTORY})",
                 cron_file=f"this machine's cron entry (default {checks.DEFAULT_CRON_FILE})"))  # fmt: skip
@fleet_task
def schedule(c, hosts, every=None, history=checks.DEFAULT_HISTORY, cron_file=checks.DEFAULT_CRON_FILE,
             json_=False, parallel=32, timeout=120):  # fmt: skip
    """Install `baleine check` in each host's cron, and `invoke health` in this machine's."""
    # Checked before any host is touched: a bad value must not leave cron entries behind.
    host_every, here_every = (1, 5) if every is None else (checks.minutes(every),) * 2
    target = checked(state.writable_file, cron_file, "baleine-fleet")  # replaced whole: its directory must exist
    inventory = os.environ.get("BALEINE_INVENTORY") or os.path.abspath(inventory_path())
    text = checks.control_entry(hosts, here_every, history, os.getcwd(), inventory)
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, "cron", "install", "--every", str(host_every)))
    with state.replacing(target, 0o644) as handle:  # cron reads it whole or not at all
        handle.write(text.encode())
    if not json_:
        print(f"this machine: {cron_file}: {text.splitlines()[-1]}")
    finish(outcomes, json_, ("HOST", "RESULT"), result_rows(outcomes, lambda data: data["entry"]))


@task(
    help={
        "history": f"the CSV file (default {checks.DEFAULT_HISTORY})",
        "last": "only the last N lines (default 50; 0: all)",
    }
)
@fleet_task
def history(c, history=checks.DEFAULT_HISTORY, last=50):
    """What the scheduled health checks recorded: time, host, state, problems."""
    rows = checks.read_history(history, last)
    print(table(("TIME", "HOST", "STATE", "PROBLEMS"), [[r[f] for f in checks.HISTORY_FIELDS] for r in rows]))


namespace = Collection("health", check, schedule, history)
