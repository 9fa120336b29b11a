"""Container start: `baleine container run --rm` against `podman run --rm --runtime runc`.

Both run the same busybox root filesystem and the command `true` under a
64 MiB memory limit, with a
network (baleine: one bridge network, podman: its default network) and
without. Runs alternate between the tools within one process so both see the
same machine state; we report medians and the ratio podman / baleine in
bench/results/start.csv and start.png.

baleine is timed as the control side runs it on a host: the zipapp unpacked
(fleet/node/unpack.py), under `python3 -I -S`, entered by boot.LINE
(fleet/node/boot.py).
Runs inside scripts/isolated (make bench does that): podman's bridge and its
firewall rules then live in a private network namespace and die with it.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from common import paired_bars, pyplot, write_csv  # noqa: E402
from hostnet import free_subnet  # noqa: E402

from fleet import ship  # noqa: E402
from fleet.node import boot, images  # noqa: E402

PODMAN_IMAGE = "localhost/baleine-bench-busybox"


def sh(*argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


class Baleine:
    def __init__(self, work):
        self.pyz = work / "baleine.pyz"
        ship.build(str(self.pyz))
        self.tree = work / "baleine"
        self.python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        sh(self.python, "-I", "-S", "-c", boot.UNPACK_LINE, str(self.pyz), str(self.tree))  # as client.upload does
        self.env = dict(
            os.environ, BALEINE_ROOT=str(work / "root"), BALEINE_CGROUP_PARENT=f"baleine-bench-{os.getpid()}"
        )

    def __call__(self, *args):
        return sh(*self.command(), *args, env=self.env)

    def command(self):
        return boot.argv(self.python, str(self.tree))

    def setup(self):
        self("image", "create", "bb", "--size", "64M", "--from", "busybox")
        self("network", "create", "bench", "--subnet", free_subnet())

    def teardown(self):
        self("network", "rm", "bench")
        self("image", "rm", "bb")

    def cases(self):
        return {
            "network": [*self.command(), "container", "run", "--rm", "--network", "bench", "--memory", "64M", "bb",
                        "true"],
            "no network": [*self.command(), "container", "run", "--rm", "--memory", "64M", "bb", "true"],
        }  # fmt: skip


class Podman:
    def __init__(self, work):
        self.env = dict(os.environ, CONTAINERS_CONF=str(HERE / "podman" / "containers.conf"))
        self.work = work

    def setup(self):
        rootfs = self.work / "rootfs"
        rootfs.mkdir()
        images.populate_busybox(str(rootfs))  # the very files baleine's image holds
        tarball = self.work / "rootfs.tar"
        sh("tar", "-C", str(rootfs), "-cf", str(tarball), ".")
        sh("podman", "import", str(tarball), PODMAN_IMAGE, env=self.env)

    def teardown(self):
        subprocess.run(["podman", "rmi", "-f", PODMAN_IMAGE], env=self.env, capture_output=True)
        # podman's cgroupfs manager leaves an empty libpod_parent in every hierarchy: ours to tidy
        # when empty (rmdir refuses a cgroup in use, so another podman's is safe).
        for parent in Path("/sys/fs/cgroup").glob("*/libpod_parent"):
            for folder in [*sorted(parent.rglob("*"), reverse=True), parent]:
                if folder.is_dir():
                    try:
                        folder.rmdir()
                    except OSError:
                        pass

    def cases(self):
        base = ["podman", "run", "--rm", "--runtime", "runc", "--memory", "64m"]
        return {
            "network": [*base, PODMAN_IMAGE, "true"],
            "no network": [*base, "--network", "none", PODMAN_IMAGE, "true"],
        }


def timed(argv, env):
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(tools, runs):
    """{(case, tool): [seconds]}, tools alternating run by run."""
    samples = {}
    for run in range(runs + 1):
        for name, tool in tools.items():
            for case, argv in tool.cases().items():
                seconds = timed(argv, tool.env)
                if run:  # the first round only warms caches
                    samples.setdefault((case, name), []).append(seconds)
    return samples


def report(samples, output):
    rows = []
    for case in ("network", "no network"):
        ours = statistics.median(samples[(case, "baleine")])
        theirs = statistics.median(samples[(case, "podman")])
        rows.append({"case": case, "runs": len(samples[(case, "baleine")]), "baleine_ms": f"{ours * 1000:.1f}",
                     "podman_ms": f"{theirs * 1000:.1f}", "ratio": f"{theirs / ours:.1f}"})  # fmt: skip
    write_csv(output, rows)
    print(f"{'case':<12}{'runs':>6}{'baleine ms':>12}{'podman ms':>12}{'podman/baleine':>16}")
    for row in rows:
        print(f"{row['case']:<12}{row['runs']:>6}{row['baleine_ms']:>12}{row['podman_ms']:>12}{row['ratio']:>15}x")
    plot(rows, output.with_suffix(".png"))
    print(f"machine: {os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs; written to {output}")


def plot(rows, path):
    figure, axes = pyplot().subplots(figsize=(7, 4))
    cases = [f"{row['case']} ({row['ratio']}x)" for row in rows]
    paired_bars(axes, cases, [float(row["baleine_ms"]) for row in rows], [float(row["podman_ms"]) for row in rows],
                ("baleine container run --rm", "podman run --rm --runtime runc"))  # fmt: skip
    axes.set_ylabel("median ms, start to exit of `true`")
    axes.set_title("Container start (podman / baleine in brackets)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per tool and case (default 20)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "start.csv", help="CSV to write")
    args = parser.parse_args()
    if not os.environ.get("BALEINE_TEST_HOST_NETNS"):
        sys.exit("run me inside scripts/isolated (make bench does)")
    work = Path(tempfile.mkdtemp(prefix="baleine-bench-"))
    tools = {"baleine": Baleine(work), "podman": Podman(work)}
    try:
        for tool in tools.values():
            tool.setup()
        report(measure(tools, args.runs), args.output)
    finally:
        for tool in tools.values():
            try:
                tool.teardown()
            except subprocess.CalledProcessError as error:
                print(f"teardown: {error.stderr}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
