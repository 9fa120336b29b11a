"""Limits of running containers: change them live (update) and read their figures (stats)."""

from . import limits, parse, state
from .containers import RUNNING, cgroup_of, current, describe, get, read_config, reconcile, refuse_if_busy, write_config
from .errors import Conflict, Invalid


def update(ref, resources, settings=None):
    """Change a container's limits, live when it runs, and settings of its config (log_size, restart...).

    Refused whole if the kernel would refuse one limit.
    """
    if not resources and not settings:
        raise Invalid(
            "nothing to update: give a limit (e.g. --memory 256M), --log-size, --restart, --stop-signal "
            "or --stop-timeout"
        )
    with state.locked():
        row = current(ref)
        refuse_if_busy(row)
        config = read_config(row)
        merged = {**config.get("limits", {}), **resources}
        config.update(settings or {})
        if row["status"] == RUNNING and resources:
            group = cgroup_of(row)
            _refuse_below_usage(row, group, resources)
            version = group.version_for("memory")
            group.apply(limits.writes(resources, version, config.get("limits", {}).get("memory")))
            if any(key in resources for key in (*limits.IO_KEYS, "devices")):
                group.apply(limits.disk_writes(merged, version, _disk_of(row), config.get("devices", ())))
        config["limits"] = merged
        write_config(row, config)
    from . import events

    events.record("update", row, changed=sorted([*resources, *(settings or {})]))
    return describe(row, config)


def _refuse_below_usage(row, group, resources):
    if "memory" in resources:
        used = group.usage()["memory"]
        if resources["memory"] < used:
            raise Conflict(
                f"container {row['name']!r} already uses {parse.human_size(used)}: "
                f"a memory limit of {parse.human_size(resources['memory'])} would kill it"
            )


def _disk_of(row):
    """The running container's root device 'MAJ:MIN', from its init's mount table."""
    with open(f"/proc/{row['pid']}/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == "/":
                return fields[2]
    raise Conflict(f"cannot find the disk of container {row['name']!r}")


def stats(refs=(), interval=0.5):
    """podman-stats figures of running containers: CPU % over `interval`, memory, block io, pids."""
    import time

    rows = reconcile(state.CONTAINERS.read())
    chosen = [get(ref, rows) for ref in refs] if refs else [row for row in rows if row["status"] == RUNNING]
    idle = [row["name"] for row in chosen if row["status"] != RUNNING]
    if idle:
        raise Conflict(f"container {idle[0]!r} is not running")
    groups = {row["name"]: cgroup_of(row) for row in chosen}
    first, started = {name: group.usage() for name, group in groups.items()}, time.monotonic()
    time.sleep(interval if chosen else 0)
    elapsed = time.monotonic() - started
    result = []
    for row in chosen:
        now = groups[row["name"]].usage()
        cpu = (now["cpu_ns"] - first[row["name"]]["cpu_ns"]) / 1e9 / elapsed * 100
        result.append({"name": row["name"], "id": row["id"][:12], "cpu_percent": round(cpu, 1), **now})
    return result
