"""Usage records for billing: usage/DAY.csv, `baleine usage`, a Prometheus textfile.

Each `check` pass appends one row per running container with its cgroup's
cumulative counters (CPU seconds, block io bytes), its memory peak seen so
far and its pids, to the file of the day (UTC): usage/2026-11-23.csv. A
container instance is its id plus its start time: the counters begin at zero
with each start. `baleine usage` sums, per container (its id: a rename does
not split it, a new container under an old name is not merged into it), what
each instance's counters grew by within the period (from the last sample
before it, or from zero for an instance started within it).

A file per day keeps a query's cost to the days it asks about (a pass a
minute makes 1440 rows a day per container) and lets operators archive or
delete old days. Rows are streamed: memory follows the number of instances,
not of rows.
"""

import os
import time

from . import state

COLUMNS = ("time", "name", "id", "started", "cpu_seconds", "memory_peak", "io_read_bytes", "io_write_bytes", "pids")
DIRECTORY = "usage"
_NUMBERS = (("cpu_seconds", float), ("memory_peak", int), ("io_read_bytes", int), ("io_write_bytes", int),
            ("pids", int))  # fmt: skip
LEGACY = "usage.csv"  # one file for every day, as written before usage/; still read


def record(samples):
    """Append one row per sample: (row, usage dict from cgroups.Cgroup.usage())."""
    if not samples:
        return
    import _csv  # not csv, which imports re: check writes this every minute
    import io

    buffer = io.StringIO()
    writer = _csv.writer(buffer, delimiter=";", lineterminator="\n")
    stamp = state.now()
    for row, figures in samples:
        writer.writerow([stamp, row["name"], row["id"][:12], row["started"], f"{figures['cpu_ns'] / 1e9:.3f}",
                         figures["memory_peak"], figures["io_read"], figures["io_write"], figures["pids"]])  # fmt: skip
    os.makedirs(state.path(DIRECTORY), mode=0o711, exist_ok=True)
    _append(state.path(DIRECTORY, f"{stamp[:10]}.csv"), buffer.getvalue())


def _append(path, text):
    # Appending whole lines under the state lock: readers see complete rows.
    new = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, ((";".join(COLUMNS) + "\n") if new else "").encode() + text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def day_files():
    """[(day, path)], oldest first; the legacy usage.csv, if any, comes first (day '')."""
    folder = state.path(DIRECTORY)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        names = []
    files = [(name[:-4], os.path.join(folder, name)) for name in names if _is_day_file(name)]
    if os.path.exists(state.path(LEGACY)):
        files.append(("", state.path(LEGACY)))
    return sorted(files)


def _is_day_file(name):
    day = name[:-4]
    return name.endswith(".csv") and len(day) == 10 and day[4] + day[7] == "--" and day.replace("-", "").isdigit()


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


class _Instance:
    """What the period needs of one instance's samples: its base, its last, its peaks, their number."""

    def __init__(self):
        self.base = None  # the last sample before the period
        self.last = None
        self.memory_peak = self.pids_peak = self.samples = 0

    def add(self, row):
        self.last = row
        self.memory_peak = max(self.memory_peak, int(row["memory_peak"]))
        self.pids_peak = max(self.pids_peak, int(row["pids"]))
        self.samples += 1


def summary(name=None, since=None, current=None):
    """Per container: CPU seconds, block io bytes, memory peak and most pids within the period.

    current: {short id: name} of the containers that exist, whose names are
    shown instead of the ones recorded; name keeps the containers recorded
    under it or called so now.
    """
    files = day_files()
    # Times compare as text (one fixed-width UTC format). Read from the day before since's:
    # the last sample before the period is there when the passes ran.
    since_stamp = time.strftime(state.STAMP, time.gmtime(since)) if since is not None else None
    first = 0
    if since_stamp is not None:
        first = next((i for i, (day, _) in enumerate(files) if day >= since_stamp[:10]), len(files))
        first = max(0, first - 1)
    instances, latest, called = {}, {}, {}
    for _, path in files[first:]:
        for row in _samples(path):
            instance = instances.setdefault((row["id"], row["started"]), _Instance())
            latest[row["id"]] = row["name"]  # rows are in time order
            called.setdefault(row["id"], set()).add(row["name"])
            if since_stamp is not None and row["time"] < since_stamp:
                instance.base = row
            else:
                instance.add(row)
    _find_older_bases(instances, files[:first], since_stamp)
    totals = _totals(instances, {**latest, **(current or {})})  # an existing container under its name of now
    return [item for item in totals if name is None or name == item["name"] or name in called.get(item["id"], ())]


def _samples(path):
    """A usage file's well-formed rows: one a pass cut short, or a hand, left malformed is skipped.

    History is read leniently (state.rows_of): a short row's cells are None.
    """
    for row in state.rows_of(path):
        if None in row:  # cells no column names
            continue
        try:
            for key, kind in _NUMBERS:
                kind(row[key])
        except (KeyError, TypeError, ValueError):  # a cell missing (None), or not a number
            continue
        yield row


def _find_older_bases(instances, older_files, since_stamp):
    """Bases the files read did not hold (no pass ran for a while): in older files, newest first."""
    if since_stamp is None:
        return  # no period: everything was read
    missing = {key for key, instance in instances.items()
               if instance.samples and instance.base is None and key[1] < since_stamp}  # fmt: skip
    for day, path in reversed(older_files):
        if day:  # a day's file holds samples of instances started by then; the legacy file, of any
            missing = {key for key in missing if key[1][:10] <= day}
        if not missing:
            return
        found = {}
        for row in _samples(path):
            key = (row["id"], row["started"])
            if key in missing:
                found[key] = row  # rows are in time order: the last one wins
        for key, row in found.items():
            instances[key].base = row
            missing.discard(key)


def _totals(instances, names):
    totals = {}
    for (container_id, _started), instance in instances.items():
        if not instance.samples:
            continue
        last, base = instance.last, instance.base
        total = totals.setdefault(container_id, _empty_total(names[container_id], container_id))
        for key, kind in (("cpu_seconds", float), ("io_read_bytes", int), ("io_write_bytes", int)):
            total[key] += kind(last[key]) - (kind(base[key]) if base else 0)
        total["cpu_seconds"] = round(total["cpu_seconds"], 3)
        total["memory_peak"] = max(total["memory_peak"], instance.memory_peak)
        total["pids_peak"] = max(total["pids_peak"], instance.pids_peak)
        total["samples"] += instance.samples
    return sorted(totals.values(), key=lambda item: (item["name"], item["id"]))


def _empty_total(name, container_id):
    return {"name": name, "id": container_id, "cpu_seconds": 0.0, "io_read_bytes": 0, "io_write_bytes": 0,
            "memory_peak": 0, "pids_peak": 0, "samples": 0}  # fmt: skip


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
