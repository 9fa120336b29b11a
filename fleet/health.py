"""Fleet health: what `baleine check` found on each host, the history file, the cron entries.

`problems` is pure: per-host outcomes of {check report, container list} in,
rows of what is wrong out. `record` appends one line per host to
fleet-health.csv (time;host;state;problems), the file `invoke health.history`
reads. `control_entry` is the cron.d text that runs `invoke health` here.
"""

import csv
import io
import os
import shlex
import sys
import time

from .errors import FleetError

COLUMNS = ("HOST", "CONTAINER", "PROBLEM", "DETAIL")
HISTORY_FIELDS = ("time", "host", "state", "problems")
DEFAULT_HISTORY = "fleet-health.csv"
DEFAULT_CRON_FILE = "/etc/cron.d/baleine-fleet"
HISTORY_SIZE = 16 << 20  # bytes: about two months of checks every minute on 25 hosts; one older file is kept


def host_problems(value):
    """[(container, problem, detail)] for one host's {report, containers}."""
    report, items = value["report"], value["containers"]
    found = []
    for item in report.get("restarted", []):
        found.append((item["name"], "restarted", f"restart #{item['attempt']} by its policy"))
    for item in report.get("failed", []):
        found.append((item["name"], "restart failed", item["error"]))
    for item in report.get("rotation_failed", []):
        found.append((item["name"], "log rotation failed", item["error"]))
    for item in report.get("waiting", []):
        found.append((item["name"], "waiting", "restart backing off"))
    for item in items:
        if item["status"] == "exited" and item.get("stopped_by") != "user":
            reason = item.get("reason")
            why = reason if reason and reason != "exited" else f"exit code {item.get('exit_code')}"
            if not any(name == item["name"] for name, _, _ in found):
                found.append((item["name"], "exited", why))
        elif item["status"] == "running" and item.get("health") == "unhealthy":
            found.append((item["name"], "unhealthy", "its health check fails"))
    if report.get("rebooted"):
        found.append(("", "rebooted", "the host restarted since the last check"))
    if report.get("skipped"):
        found.append(("", "check skipped", report["skipped"]))
    if report.get("low_space"):
        found.append(("", "low space", report["low_space"]))
    return found


def problems(outcomes):
    """Table rows: every problem on every host; an unreachable host is one row."""
    rows = []
    for outcome in outcomes:
        if not outcome.ok:
            rows.append([outcome.host.name, "", outcome.error.kind, outcome.error.reason])
            continue
        rows += [[outcome.host.name, *problem] for problem in host_problems(outcome.value)]
    return rows


def history_rows(outcomes, now=None):
    """One history line per host: ok, problems (with a summary) or the error kind."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    rows = []
    for outcome in outcomes:
        if not outcome.ok:
            rows.append({"time": stamp, "host": outcome.host.name, "state": outcome.error.kind,
                         "problems": outcome.error.reason})  # fmt: skip
            continue
        found = host_problems(outcome.value)
        summary = "; ".join(f"{name} {problem}".strip() for name, problem, _ in found)
        rows.append({"time": stamp, "host": outcome.host.name, "state": "problems" if found else "ok",
                     "problems": summary})  # fmt: skip
    return rows


def log_of(history):
    """Where the scheduled `invoke health` appends what it prints."""
    return os.path.abspath(history) + ".log"


def rotate(path, size=HISTORY_SIZE):
    """Past size, path becomes path.1 (the older .1 is dropped): scheduled checks never fill the disk."""
    try:
        if os.path.getsize(path) > size:
            os.replace(path, path + ".1")
    except FileNotFoundError:
        pass


def record(path, rows, size=HISTORY_SIZE):
    """Append rows to the history file (header written once), in one write; rotated past size."""
    rotate(path, size)
    rotate(log_of(path), size)  # what cron appends beside it grows as long
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, delimiter=";", lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerows(rows)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())


def read_history(path, last=None):
    """The recorded lines, oldest first; the last `last` of them when it is above 0."""
    if last is not None and last < 0:
        raise FleetError(f"invalid --last {last}: use a number of lines, 0 or more (0: all of them)")
    from collections import deque

    try:
        with open(path, encoding="utf-8", newline="") as handle:
            # Only the last ones are kept as the file is read: a year of checks is millions of lines.
            rows = deque(csv.DictReader(handle, delimiter=";"), maxlen=last or None)
    except FileNotFoundError:
        raise FleetError(f"no health history at {path} yet (invoke health.schedule records it)") from None
    return list(rows)


def minutes(every):
    """--every as a whole number of minutes from 1 to 59, checked as the hosts' cron entry checks it."""
    from .node import cron
    from .node.errors import BaleineError

    try:
        return cron.minutes(every)
    except BaleineError as error:
        raise FleetError(error.message) from None


def control_entry(hosts, every, history, workdir, inventory=None):
    """The cron.d text that runs `invoke health` on this machine every `every` minutes."""
    every = minutes(every)
    invoke = os.path.join(os.path.dirname(sys.executable), "invoke")
    command = shlex.join([invoke, "health", "--hosts", hosts, "--record", os.path.abspath(history)])
    env = f"BALEINE_INVENTORY={shlex.quote(os.path.abspath(inventory))} " if inventory else ""
    schedule = "*" if every == 1 else f"*/{every}"
    log = shlex.quote(log_of(history))
    return (
        "# baleine fleet health (invoke health.schedule; remove this file to stop it)\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"{schedule} * * * * root cd {shlex.quote(os.path.abspath(workdir))} && {env}{command} >> {log} 2>&1\n"
    )
