"""Usage records for billing: usage.csv, `baleine usage`, a Prometheus textfile.

Each `check` pass appends one row per running container with its cgroup's
cumulative counters (CPU seconds, block io bytes), its memory peak seen so
far and its pids. A container instance is its id plus its start time: the
counters begin at zero with each start. `baleine usage` sums, per
container, what each instance's counters grew by within the period (from the
last sample before it, or from zero for an instance started within it).
"""

import os
import time

from . import state

COLUMNS = ("time", "name", "id", "started", "cpu_seconds", "memory_peak", "io_read_bytes", "io_write_bytes", "pids")
USAGE = state.Table("usage.csv", COLUMNS, "usage record", key="time")


def record(samples):
    """Append one row per sample: (row, usage dict from cgroups.Cgroup.usage())."""
    if not samples:
        return
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    stamp = state.now()
    for row, figures in samples:
        writer.writerow([stamp, row["name"], row["id"][:12], row["started"], f"{figures['cpu_ns'] / 1e9:.3f}",
                         figures["memory_peak"], figures["io_read"], figures["io_write"], figures["pids"]])  # fmt: skip
    _append(buffer.getvalue())


def _append(text):
    # Appending whole lines under the state lock: readers see complete rows.
    new = not os.path.exists(USAGE.file)
    fd = os.open(USAGE.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, ((";".join(COLUMNS) + "\n") if new else "").encode() + text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_since(text):
    """'2026-11-23T10:00:00Z', '2026-11-23', or a duration back from now: '90m', '2h', '7d'."""
    from .errors import Invalid

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return time.time() - int(text[:-1]) * units[text[-1]]
    import calendar

    for pattern in (state.STAMP, "%Y-%m-%d"):
        try:
            return calendar.timegm(time.strptime(text, pattern))
        except ValueError:
            continue
    raise Invalid(
        f"invalid --since {text!r}: use a date (2026-11-23), a UTC time (2026-11-23T10:00:00Z) or 90m, 2h, 7d"
    )


def summary(name=None, since=None):
    """Per container: CPU seconds, block io bytes, memory peak and most pids within the period."""
    instances = {}
    for row in USAGE.read():
        if name is not None and row["name"] != name:
            continue
        instance = instances.setdefault((row["name"], row["id"], row["started"]), {"before": None, "within": []})
        if since is not None and state.epoch(row["time"]) < since:
            instance["before"] = row
        else:
            instance["within"].append(row)
    totals = {}
    for (container, _id, _started), instance in instances.items():
        if not instance["within"]:
            continue
        last, base = instance["within"][-1], instance["before"]
        total = totals.setdefault(container, _empty_total(container))
        for key, kind in (("cpu_seconds", float), ("io_read_bytes", int), ("io_write_bytes", int)):
            total[key] += kind(last[key]) - (kind(base[key]) if base else 0)
        total["cpu_seconds"] = round(total["cpu_seconds"], 3)
        total["memory_peak"] = max(total["memory_peak"], *(int(r["memory_peak"]) for r in instance["within"]))
        total["pids_peak"] = max(total["pids_peak"], *(int(r["pids"]) for r in instance["within"]))
        total["samples"] += len(instance["within"])
    return sorted(totals.values(), key=lambda item: item["name"])


def _empty_total(container):
    return {"name": container, "cpu_seconds": 0.0, "io_read_bytes": 0, "io_write_bytes": 0, "memory_peak": 0,
            "pids_peak": 0, "samples": 0}  # fmt: skip


def prometheus(rows, figures):
    """node_exporter textfile text: the figures of running containers and every container's state."""
    lines = [
        "# HELP baleine_container_up 1 when the container runs.",
        "# TYPE baleine_container_up gauge",
    ]
    for row in rows:
        lines.append(f"baleine_container_up{{{_labels(row)}}} {1 if row['status'] == 'running' else 0}")
    metrics = (
        ("cpu_seconds_total", "counter", "CPU time used since the container started.", lambda f: f["cpu_ns"] / 1e9),
        ("memory_bytes", "gauge", "Memory in use.", lambda f: f["memory"]),
        ("memory_peak_bytes", "gauge", "Most memory used since the container started.", lambda f: f["memory_peak"]),
        ("io_read_bytes_total", "counter", "Bytes read from block devices.", lambda f: f["io_read"]),
        ("io_write_bytes_total", "counter", "Bytes written to block devices.", lambda f: f["io_write"]),
        ("pids", "gauge", "Processes and threads.", lambda f: f["pids"]),
        ("oom_kills_total", "counter", "Processes killed for memory.", lambda f: f["oom_kills"]),
    )
    for metric, kind, text, value in metrics:
        lines += [f"# HELP baleine_container_{metric} {text}", f"# TYPE baleine_container_{metric} {kind}"]
        lines += [f"baleine_container_{metric}{{{_labels(row)}}} {value(f):g}" for row, f in figures]
    lines += ["# HELP baleine_container_restarts_total Restarts done by baleine check.",
              "# TYPE baleine_container_restarts_total counter"]  # fmt: skip
    lines += [f"baleine_container_restarts_total{{{_labels(row)}}} {int(row.get('restarts') or 0)}" for row in rows]
    return "\n".join(lines) + "\n"


def _labels(row):
    return f'name="{row["name"]}",id="{row["id"][:12]}",image="{row["image"]}"'
