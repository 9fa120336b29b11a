"""Density: 100 and 200 busybox httpd containers at once, baleine against podman (runc).

- memory per container beyond the container's own processes: what stays
  resident on the host to keep each one: baleine's waiter (a /bin/sh holding
  the exit file) against podman's conmon; proportional set size (Pss), so
  shared pages are split among the processes sharing them;
- `baleine container list` (and `podman ps`) with that many containers;
- `baleine check` (the cron pass) at 100 containers: CPU seconds per pass.

Writes bench/results/density.csv and density.png. Runs inside scripts/isolated.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]

from common import paired_bars, pyplot, write_csv  # noqa: E402
from start import PODMAN_IMAGE, Baleine, Podman  # noqa: E402


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def processes(match):
    """Pids whose command line satisfies match(argv)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if match(argv):
                found.append(int(entry))
    return found


def is_waiter(argv):
    return len(argv) > 3 and argv[0] == b"sh" and b"baleine-waiter" in argv


def is_conmon(argv):
    return argv[0].endswith(b"conmon")


def median_seconds(argv, env, runs=5):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def cpu_seconds(argv, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def baleine_round(tool, count):
    base = tool.command()
    names = [f"d{index}" for index in range(count)]
    for name in names:
        tool("container", "run", "-d", "--name", name, "--network", "bench", "--memory", "16M", "bb",
             "httpd", "-f", "-p", "80")  # fmt: skip
    try:
        waiters = processes(is_waiter)
        row = {
            "containers": count,
            "baleine_kib_per_container": round(sum(map(pss_kib, waiters)) / max(1, len(waiters))),
            "baleine_helpers": len(waiters),
            "baleine_list_ms": round(median_seconds([*base, "container", "list"], tool.env) * 1000, 1),
        }
        if count == 100:
            row["baleine_check_cpu_s"] = round(statistics.median(cpu_seconds([*base, "check"], tool.env)
                                                                 for _ in range(3)), 3)  # fmt: skip
        return row
    finally:
        for name in names:
            tool("container", "rm", "--force", name)


def podman_round(tool, count):
    names = [f"baleine-bench-d{index}" for index in range(count)]
    for name in names:
        subprocess.run(["podman", "run", "-d", "--runtime", "runc", "--memory", "16m", "--name", name, PODMAN_IMAGE,
                        "httpd", "-f", "-p", "80"], env=tool.env, check=True, capture_output=True)  # fmt: skip
    try:
        conmons = processes(is_conmon)
        return {
            "podman_kib_per_container": round(sum(map(pss_kib, conmons)) / max(1, len(conmons))),
            "podman_helpers": len(conmons),
            "podman_ps_ms": round(median_seconds(["podman", "ps"], tool.env) * 1000, 1),
        }
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *names], env=tool.env, capture_output=True)


def plot(rows, path):
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(9, 4))
    counts = [str(row["containers"]) for row in rows]
    paired_bars(left, counts, [r["baleine_kib_per_container"] for r in rows],
                [r["podman_kib_per_container"] for r in rows], ("baleine (waiter sh)", "podman (conmon)"))  # fmt: skip
    left.set_xlabel("containers running")
    left.set_ylabel("KiB (Pss) per container, beyond its own processes")
    paired_bars(right, counts, [r["baleine_list_ms"] for r in rows], [r["podman_ps_ms"] for r in rows],
                ("baleine list", "podman ps"))  # fmt: skip
    right.set_xlabel("containers running")
    right.set_ylabel("median ms to list them")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100,200", help="containers at once (default 100,200)")
    args = parser.parse_args()
    if not os.environ.get("BALEINE_TEST_HOST_NETNS"):
        sys.exit("run me inside scripts/isolated (make bench does)")
    work = Path(tempfile.mkdtemp(prefix="baleine-bench-density-"))
    baleine, podman = Baleine(work), Podman(work)
    rows = []
    try:
        baleine.setup()
        podman.setup()
        for count in [int(text) for text in args.counts.split(",")]:
            row = {**baleine_round(baleine, count), **podman_round(podman, count)}
            rows.append(row)
            print(row, flush=True)
    finally:
        for tool in (baleine, podman):
            try:
                tool.teardown()
            except subprocess.CalledProcessError as error:
                print(f"teardown: {error.stderr}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    results = HERE / "results"
    fields = sorted({key for row in rows for key in row}, key=lambda key: (key != "containers", key))
    write_csv(results / "density.csv", rows, fields)
    plot(rows, results / "density.png")


if __name__ == "__main__":
    main()
