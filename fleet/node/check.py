"""`baleine check`, the cron pass that replaces a daemon.

Each pass: notice a reboot (the kernel's boot id changed since the last
pass), record every container whose process is gone (exit code, OOM), and
start again those whose restart policy says so once their back-off has
passed. Safe at any moment, also while other commands run: decisions are
made under the state lock, starts go through containers.start like any other.
"""

import os
import time

from . import containers, restart, state
from .errors import BaleineError, Invalid

CHECK_LOG_SIZE = 1 << 20  # cron appends each pass's report to check.log: rotated like a container's log
# Each pass warns while the state's filesystem has less than both of these free:
# a tenth of a small disk, 5 GiB of a big one (a tenth of 2 TB is not "low").
LOW_SPACE_SHARE = 0.10
LOW_SPACE_BYTES = 5 << 30
PASS_WAIT = 60.0  # seconds a pass waits for the one before it (BALEINE_CHECK_WAIT), then gives way


def run(prom=None):
    """One pass; returns a report of what was found and done.

    It also appends the running containers' usage to usage/DAY.csv and, given
    prom, writes node_exporter's textfile there. One pass at a time: health
    probes that hang until their timeout can make a pass outlast the cron
    period, and two passes would probe, count failures and restart twice.
    """
    report = {"rebooted": False, "repaired": [], "exited": [], "removed": [], "restarted": [], "waiting": [],
              "failed": [], "unhealthy": [], "rotated": [], "rotation_failed": []}  # fmt: skip
    wait = float(os.environ.get("BALEINE_CHECK_WAIT") or PASS_WAIT)
    prom, refused = _prom_path(prom)
    state.ensure_layout()
    with state.exclusive(state.path("check.lock"), wait, str(os.getpid())) as holder:
        if holder:
            report["skipped"] = f"another check pass (pid {holder}) was still running after {wait:g} s"
        else:
            report = _pass(report, prom)
    if refused:  # said whether this pass ran or gave way: a cron line's mistake must show either way
        raise Invalid(f"{refused}; the pass itself " + (f"was skipped: {report['skipped']}" if holder else "ran"))
    return report


def _prom_path(prom):
    """(path to write, None), or (None, why not) when --prom names no file that can be written.

    Asked before the pass, not after its work; a textfile that cannot be
    written does not stop the pass (restarts matter more than metrics).
    """
    if prom is None:
        return None, None
    if not prom:
        return None, "invalid --prom '': give the textfile's path, such as /var/lib/node_exporter/baleine.prom"
    try:
        return state.writable_file(prom, "baleine.prom"), None
    except Invalid as error:
        return None, error.message


def _pass(report, prom):
    from . import repair

    report["repaired"] = repair.run()
    with state.locked():
        before = {row["name"]: row for row in state.CONTAINERS.read()}
        report["rebooted"] = _forget_previous_boot()
        rows = containers.reconcile(state.CONTAINERS.read())
    for row in rows:
        if row["status"] == containers.EXITED and before.get(row["name"], {}).get("status") == containers.RUNNING:
            report["exited"].append({"name": row["name"], "exit_code": row["exit_code"], "reason": row.get("reason")})
    for row in rows:
        if row["status"] == containers.EXITED:
            _after_exit(row, report)
        elif row["status"] == containers.RUNNING:
            _probe_health(row, report)
    _record_usage(prom)
    _rotate_logs(rows, report)
    _look_at_space(report)
    return report


def _look_at_space(report):
    """Warn while the state's filesystem has little room left (LOW_SPACE_*): before it is full."""
    from .parse import human_size

    info = os.statvfs(state.root())
    free, size = info.f_bavail * info.f_frsize, info.f_blocks * info.f_frsize
    report["space"] = {"free": free, "size": size}
    if size and free < min(LOW_SPACE_SHARE * size, LOW_SPACE_BYTES):
        report["low_space"] = (
            f"{state.root()} has {human_size(free)} free of {human_size(size)} ({100 * free // size}%): "
            "remove what is unused (stopped containers, images), or give it more room"
        )


def _rotate_logs(rows, report):
    """Keep each container's log within its --log-size, and cron's check.log within CHECK_LOG_SIZE."""
    from . import logs

    for row in rows:
        path = os.path.join(containers.directory(row), "log")
        try:
            if os.path.getsize(path) <= logs.SMALLEST_LIMIT:
                continue  # no limit is smaller: no need to read the config
        except FileNotFoundError:
            continue  # never started, or removed meanwhile
        _rotate(row["name"], path, containers.config_or_empty(row).get("log_size", logs.DEFAULT_LIMIT), report)
    _rotate("check.log", state.path("check.log"), CHECK_LOG_SIZE, report)
    from . import events

    _rotate(events.FILE, state.path(events.FILE), events.SIZE, report)


def _rotate(name, path, limit, report):
    from . import logs

    try:
        moved = logs.rotate(path, limit)
    except FileNotFoundError:
        return  # removed meanwhile
    except OSError as error:
        where = error.filename2 or error.filename or path  # a replace names its target second
        report["rotation_failed"].append({"name": name, "error": f"{where}: {error.strerror}"})
        return
    if moved:
        report["rotated"].append({"name": name, "bytes": moved})


def _probe_health(row, report):
    from . import health

    config = containers.read_config(row)
    settings = config.get("health")
    if not settings or not health.due(row, settings, time.time()):
        return
    try:
        passed, _said = health.probe(row, settings)
    except BaleineError:
        return  # it stopped meanwhile: the next pass sees it exited
    with state.locked():
        fresh = containers.by_id(row["id"])
        if fresh is None or fresh["status"] != containers.RUNNING:
            return
        changes = health.verdict(fresh, passed, settings, time.time())
        state.CONTAINERS.update(fresh["id"], health_at=state.now(), **changes)
    if changes["health"] != fresh.get("health"):
        from . import events

        events.record("health", fresh, by="check", status=changes["health"])
    if changes["health"] != "unhealthy":
        return
    report["unhealthy"].append({"name": row["name"], "failures": changes["health_failures"]})
    if config.get("restart", {}).get("policy", "no") != "no":
        containers.stop(row["id"], by_user=False)  # its own stop signal and timeout
        try:
            containers.restart_by_policy(row["id"])
            report["restarted"].append({"name": row["name"], "attempt": int(row.get("restarts") or 0) + 1})
        except BaleineError as error:
            report["failed"].append({"name": row["name"], "error": error.message})


def _record_usage(prom):
    from . import usage

    rows = state.CONTAINERS.read()
    figures = []
    for row in rows:
        if row["status"] == containers.RUNNING:
            try:
                figures.append((row, containers.cgroup_of(row).usage()))
            except OSError:
                continue  # it stopped meanwhile: the next pass records it
    with state.locked():
        usage.record(figures)
    if prom:
        state.write_atomic(prom, usage.prometheus(rows, figures))


def _forget_previous_boot():
    """After a reboot, rows recorded running describe processes that no longer exist."""
    current = state.boot_id()
    recorded = state.recorded_boot_id()
    if recorded == current:
        return False
    state.record_boot_id(current)
    if recorded is None:
        return False  # the first pass on this host: nothing to compare with
    for row in state.CONTAINERS.read():
        if row["status"] in (containers.RUNNING, containers.STARTING, containers.CREATING):
            containers.forget_process(row, reason="host rebooted")
    return True


def _after_exit(row, report):
    """Restart an exited container if its policy says so; remove a run --rm one whose run is gone."""
    from . import linux

    config = containers.read_config(row)
    runner = config.get("auto_remove")
    if not runner:
        _consider(row, config, report)
    elif not linux.is_alive(runner["pid"], runner["pid_start"]):  # killed, or the host rebooted
        _remove(row, report)
    # else its run is at work: it removes the container itself


def _remove(row, report):
    try:
        containers.remove(row["id"])
    except BaleineError:  # removed meanwhile, or a `container cp` holds its disk: the next pass tries again
        return
    report["removed"].append({"name": row["name"]})


def _consider(row, config, report):
    policy = config.get("restart", {"policy": "no"})
    restarts = int(row.get("restarts") or 0)
    code = int(row["exit_code"]) if row["exit_code"] else None
    after_reboot = row.get("reason") == "host rebooted"
    if not restart.wanted(policy, code, row.get("reason"), restarts, row.get("stopped_by") == "user", after_reboot):
        return
    finished = _seconds(row["finished"])
    ran_for = finished - _seconds(row["started"]) if row["started"] and row["finished"] else 0.0
    due = finished + restart.backoff(restarts, ran_for)
    now = time.time()  # now, not the pass's start: this pass may just have stamped the exit
    if now < due:
        report["waiting"].append({"name": row["name"], "due_in": round(due - now, 1)})
        return
    try:
        containers.restart_by_policy(row["id"])
        report["restarted"].append({"name": row["name"], "attempt": restarts + 1})
    except BaleineError as error:
        report["failed"].append({"name": row["name"], "attempt": restarts + 1, "error": error.message})


def _seconds(stamp):
    return state.epoch(stamp) if stamp else 0.0


def needs_attention(report):
    """The pass's exit status: 1 when a restart or a log rotation failed, else 0."""
    return 1 if report["failed"] or report["rotation_failed"] else 0
