"""Image pull from a registry: `baleine image pull` against `podman pull`, the same image, the same registry.

Debian's docker-registry (distribution 2.8) runs on loopback, as the tests run
it (tests/registry.py). The image has 5 layers, each with 16 MiB of random
bytes (compression gains nothing), the first also a copy of this machine's
Python standard library (thousands of small files). skopeo puts it in the registry once. Each
run pulls it whole and removes it after: baleine ends with one ext4 file,
podman with its layers in containers/storage. Runs alternate; medians go to
bench/results/pull.csv and pull.png.

Two cases: the registry on loopback, as fast as this machine goes, and the
registry on an address of its own behind an HTTP proxy that carries each
connection at CAP MiB/s at most, as a distant registry or a CDN would (both
tools read HTTP_PROXY; Go and baleine never proxy loopback, hence the address).
"""

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import registry  # noqa: E402  (tests/registry.py)
from common import paired_bars, pyplot, run, write_csv  # noqa: E402

LAYERS = 5
CAP = 40  # MiB/s per connection, in the second case


def build_archive(work):
    """A docker-archive of LAYERS layers, written with the tests' tar helpers."""
    from tarfiles import write_files

    layers, diff_ids = {}, []
    library = Path("/usr/lib/python3.11")
    for index in range(LAYERS):
        path = work / f"layer{index}.tar"
        with tarfile.open(path, "w") as tar:
            blob = tarfile.TarInfo(f"data/blob{index}")
            blob.size = 16 << 20
            with open("/dev/urandom", "rb") as random:
                tar.addfile(blob, random)
            if index == 0:
                tar.add(library, arcname="usr/lib/python3.11", filter=_without_tests)
        diff_ids.append("sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
        layers[f"layer{index}.tar"] = path.read_bytes()
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()  # fmt: skip
    manifest = [{"Config": "config.json", "RepoTags": ["localhost/big:1"], "Layers": list(layers)}]
    return write_files(
        work / "big.tar", {"config.json": config, **layers, "manifest.json": json.dumps(manifest).encode()}
    )


def _without_tests(info):
    return None if "/test" in info.name else info


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per tool (default 5)")
    args = parser.parse_args()
    if not shutil.which("podman"):
        raise SystemExit("podman is not installed (make bench installs it)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="baleine-bench-pull-") as directory:
        work = Path(directory)
        env = dict(os.environ, BALEINE_ROOT=str(work / "state"))
        archive = build_archive(work)
        with registry.running(work / "registry") as hub:
            hub.push(f"docker-archive:{archive}", "big:1")
            rows.append({"case": "local", **measure(f"{hub.address}/big:1", env, args.runs, "local")})
        with capped_registry(work / "far") as (hub, proxy):
            hub.push(f"docker-archive:{archive}", "big:1")
            capped = {**env, "HTTP_PROXY": f"http://{proxy.address}"}
            case = f"capped at {CAP} MiB/s"
            rows.append({"case": case, **measure(f"{hub.address}/big:1", capped, args.runs, case)})
        for row in rows:
            row["layers"], row["bytes"] = LAYERS, os.path.getsize(archive)
    write_csv(HERE / "results" / "pull.csv", rows)
    plot(rows, HERE / "results" / "pull.png")


@contextlib.contextmanager
def capped_registry(directory):
    """(registry, proxy): the registry on an address of this private namespace that is not loopback (a bridge of
    its own, on a subnet the host does not use), and a proxy carrying each connection at CAP MiB/s."""
    from hostnet import free_subnet

    address = str(next(ipaddress.ip_network(free_subnet()).hosts()))
    subprocess.run(["ip", "link", "add", "pullbench0", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "pullbench0"], check=True)
        subprocess.run(["ip", "link", "set", "pullbench0", "up"], check=True)
        with registry.proxying(rate=CAP << 20) as proxy, registry.running(directory, host=address) as hub:
            yield hub, proxy
    finally:
        subprocess.run(["ip", "link", "del", "pullbench0"], check=True)


def measure(reference, env, runs, case):
    baleine = [sys.executable, "-m", "fleet.node"]

    def baleine_pull():
        run([*baleine, "image", "pull", reference, "--name", "big", "--json", "--insecure"], env)

    def podman_pull():
        run(["podman", "pull", "-q", "--tls-verify=false", reference], env)

    def forget():
        run([*baleine, "image", "rm", "big"], env)
        run(["podman", "rmi", "-f", reference], env)

    baleine_pull()  # once, unmeasured: caches warm
    podman_pull()
    forget()
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(timed(baleine_pull))
        theirs.append(timed(podman_pull))
        forget()
    subprocess.run(["podman", "image", "prune", "-f"], capture_output=True)
    row = {"baleine_s": round(statistics.median(ours), 3), "podman_s": round(statistics.median(theirs), 3)}
    row["baleine_vs_podman"] = round(row["baleine_s"] / row["podman_s"], 2)
    print(f"pull, {case}: baleine {row['baleine_s']:.2f} s, podman {row['podman_s']:.2f} s "
          f"(baleine / podman = {row['baleine_vs_podman']})", flush=True)  # fmt: skip
    return row


def plot(rows, path):
    figure, axes = pyplot().subplots(figsize=(6, 4))
    paired_bars(axes, [row["case"] for row in rows], [row["baleine_s"] for row in rows],
                [row["podman_s"] for row in rows], ("baleine image pull", "podman pull"))  # fmt: skip
    axes.set_ylabel("median seconds")
    axes.set_title(
        f"{rows[0]['layers']} layers, {rows[0]['bytes'] >> 20} MiB: registry local, or capped per connection"
    )
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    main()
