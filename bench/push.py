"""Image push to 3 lab nodes: `invoke image.push` against `rsync -S` over the same SSH.

The image is 512 MiB with about 200 MiB of files (random bytes: nothing to
gain from compression). First push: nodes without the image; re-push: nodes
that have it. Bytes on the wire are read from the lab bridge's veth counters.
Runs alternate; medians go to bench/results/push.csv and push.png.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from common import VENV, paired_bars, pyplot, run, write_csv  # noqa: E402
from hostnet import free_subnet  # noqa: E402

from fleet import lab  # noqa: E402

NODES = ("node1", "node2", "node3")
REMOTE_COPY = "/var/lib/baleine/rsync-copy.ext4"


def sent_bytes():
    """Bytes this machine has sent to the lab nodes so far."""
    total = 0
    for name in NODES:
        link = subprocess.run(["ip", "-j", "-s", "link", "show", f"lab-{name}"], capture_output=True, text=True)
        total += json.loads(link.stdout)[0]["stats64"]["tx"]["bytes"]
    return total


def measured(function):
    before, started = sent_bytes(), time.perf_counter()
    function()
    return time.perf_counter() - started, sent_bytes() - before


def build_image(env, work):
    tree = work / "tree"
    tree.mkdir()
    for index in range(4):
        (tree / f"blob{index}").write_bytes(os.urandom(50 << 20))
    run([sys.executable, "-m", "fleet.node", "image", "create", "big", "--size", "512M", "--from", str(tree)], env)
    info = json.loads(run([sys.executable, "-m", "fleet.node", "image", "inspect", "big", "--json"], env).stdout)
    return info["data"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baleine-bench-push-") as directory:
        work = Path(directory)
        record = lab.up(len(NODES), subnet=free_subnet(), directory=str(work / "lab"),
                        inventory=str(work / "hosts" / "lab.toml"), say=lambda _text: None)  # fmt: skip
        env = dict(os.environ, BALEINE_INVENTORY=str(work / "hosts"), BALEINE_ROOT=str(work / "local"))
        try:
            rows = measure(record, env, work, args.runs)
        finally:
            lab.down(str(work / "lab"), say=lambda _text: None)
    write_csv(HERE / "results" / "push.csv", rows)
    plot(rows, HERE / "results" / "push.png")


def measure(record, env, work, runs):
    image = build_image(env, work)
    invoke = str(VENV / "invoke")
    key, known = work / "lab" / "id_ed25519", work / "lab" / "known_hosts"
    ssh = f"ssh -i {key} -o UserKnownHostsFile={known} -o BatchMode=yes"
    addresses = [node["address"] for node in record["nodes"]]
    hosts = ",".join(NODES)

    def baleine_push():
        run([invoke, "image.push", "big", "--hosts", hosts], env)

    def rsync_push():
        argvs = [["rsync", "-S", "-e", ssh, image["file"], f"root@{address}:{REMOTE_COPY}"] for address in addresses]
        processes = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for argv in argvs]
        for process in processes:
            if process.wait() != 0:
                raise SystemExit(f"rsync failed: {process.stderr.read().decode()[-500:]}")

    def forget():
        run([invoke, "image.rm", "big", "--hosts", hosts], env)
        for address in addresses:
            run(["ssh", *ssh.split()[1:], f"root@{address}", "rm", "-f", REMOTE_COPY], env)

    baleine_push()  # once, unmeasured: the helper is shipped, caches warm
    forget()
    figures = {key: [] for key in ("baleine_first", "rsync_first", "baleine_again", "rsync_again")}
    for _ in range(runs):
        figures["baleine_first"].append(measured(baleine_push))
        figures["rsync_first"].append(measured(rsync_push))
        figures["baleine_again"].append(measured(baleine_push))
        figures["rsync_again"].append(measured(rsync_push))
        forget()
    rows = []
    for case in ("first", "again"):
        ours, theirs = figures[f"baleine_{case}"], figures[f"rsync_{case}"]
        row = {
            "case": "first push" if case == "first" else "re-push",
            "baleine_s": round(statistics.median(t for t, _ in ours), 3),
            "rsync_s": round(statistics.median(t for t, _ in theirs), 3),
            "baleine_bytes": int(statistics.median(b for _, b in ours)),
            "rsync_bytes": int(statistics.median(b for _, b in theirs)),
        }
        row["baleine_vs_rsync"] = round(row["baleine_s"] / row["rsync_s"], 2)
        rows.append(row)
        print(f"{row['case']:10}: baleine {row['baleine_s']:.2f} s {row['baleine_bytes'] >> 20} MiB, "
              f"rsync -S {row['rsync_s']:.2f} s {row['rsync_bytes'] >> 20} MiB "
              f"(baleine / rsync = {row['baleine_vs_rsync']})", flush=True)  # fmt: skip
    print(f"image: {image['size'] >> 20} MiB, {image['used'] >> 20} MiB used, to {len(NODES)} nodes")
    return rows


def plot(rows, path):
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(9, 4))
    cases = [row["case"] for row in rows]
    paired_bars(left, cases, [r["baleine_s"] for r in rows], [r["rsync_s"] for r in rows],
                ("invoke image.push", "rsync -S"))  # fmt: skip
    left.set_ylabel("median seconds, 3 nodes")
    paired_bars(right, cases, [r["baleine_bytes"] / 2**20 for r in rows], [r["rsync_bytes"] / 2**20 for r in rows])
    right.set_ylabel("MiB sent to the nodes")
    figure.suptitle("512 MiB image (200 MiB used) to 3 nodes")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
