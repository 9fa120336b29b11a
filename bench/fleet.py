"""Fleet listing over lab fleets: `invoke ps` against Ansible and pyinfra reading the same state.

For lab fleets of 1, 10 and 25 nodes (namespaces with their own sshd, as
`invoke lab.up` makes them), each node running two containers:

- baleine:  invoke ps --hosts all  (one connection per host, the helper's
            `container list`, merged into one table)
- ansible:  ansible all -m command -a 'cat /var/lib/baleine/containers.csv' -f NODES
- pyinfra:  pyinfra inventory.py exec -- cat /var/lib/baleine/containers.csv
- ssh floor: bench/ssh_floor.py, invoke ps's SSH fan-out running `true` instead
            of the helper (no Invoke either): how far down baleine's own work could go

The four alternate within one process, RUNS times per fleet size; we report
medians, ratios and write bench/results/fleet.csv and fleet.png. Runs inside
scripts/isolated (make bench does that), with the peers from bench/.venv.
"""

import argparse
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

from common import VENV, pyplot, run, write_csv  # noqa: E402
from hostnet import free_subnet  # noqa: E402

from fleet import lab  # noqa: E402

STATE = "/var/lib/baleine/containers.csv"


def timed(argv, env):
    started = time.perf_counter()
    run(argv, env)
    return time.perf_counter() - started


def write_peer_inventories(work, record):
    key, known = work / "lab" / "id_ed25519", work / "lab" / "known_hosts"
    lines = ["[all]"] + [f"{n['name']} ansible_host={n['address']}" for n in record["nodes"]]
    lines += ["[all:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={key}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={known}'",
              "ansible_python_interpreter=/usr/bin/python3"]  # fmt: skip
    (work / "ansible.ini").write_text("\n".join(lines) + "\n")
    hosts = ", ".join(
        f"({n['address']!r}, {{'ssh_user': 'root', 'ssh_key': {str(key)!r}, 'ssh_known_hosts_file': {str(known)!r},"
        f" 'ssh_strict_host_key_checking': 'yes'}})"
        for n in record["nodes"]
    )
    (work / "pyinfra_inventory.py").write_text(f"hosts = [{hosts}]\n")


def measure(nodes, runs, work):
    record = lab.up(nodes, subnet=free_subnet(), directory=str(work / "lab"),
                    inventory=str(work / "hosts" / "lab.toml"), say=lambda _text: None)  # fmt: skip
    # Ansible as people run it (its SSH ControlPersist included), with its control sockets
    # kept here: a lab's addresses come back in the next lab, and a master left from one
    # would hang the other.
    env = dict(os.environ, BALEINE_INVENTORY=str(work / "hosts"), BALEINE_ROOT=str(work / "local"),
               ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_STDOUT_CALLBACK="minimal",
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / "cp"), ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"))  # fmt: skip
    try:
        invoke = [str(VENV / "invoke")]
        run([sys.executable, "-m", "fleet.node", "image", "create", "bb", "--size", "32M", "--from", "busybox"], env)
        run([*invoke, "image.push", "bb", "--hosts", "all"], env)
        for index in (1, 2):
            run([*invoke, "container.run", "bb", "--hosts", "all", "--name", f"c{index}", "--command", "sleep 3600"],
                env)  # fmt: skip
        write_peer_inventories(work, record)
        ansible = [str(VENV / "ansible"), "all", "-i", str(work / "ansible.ini"), "-m", "command",
                   "-a", f"cat {STATE}", "-f", str(nodes)]  # fmt: skip
        pyinfra = [str(VENV / "pyinfra"), str(work / "pyinfra_inventory.py"), "--parallel", str(nodes),
                   "exec", "--", "cat", STATE]  # fmt: skip
        argvs = {"baleine": [*invoke, "ps", "--hosts", "all"], "ansible": ansible, "pyinfra": pyinfra,
                 "ssh_floor": [str(VENV / "python"), str(HERE / "ssh_floor.py")]}  # fmt: skip
        for argv in argvs.values():  # once each, unmeasured: helper shipped, caches warm
            run(argv, env)
        times = {tool: [] for tool in argvs}
        for _ in range(runs):
            for tool, argv in argvs.items():
                times[tool].append(timed(argv, env))
        return {tool: statistics.median(values) for tool, values in times.items()}
    finally:
        close_ssh_masters(work / "cp")
        lab.down(str(work / "lab"), say=lambda _text: None)


def close_ssh_masters(directory):
    """End Ansible's ControlPersist masters (ours) before their lab goes away under them."""
    for socket_path in directory.glob("*") if directory.is_dir() else []:
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "lab"], capture_output=True,
                       timeout=10)  # fmt: skip


def plot(rows, path):
    sizes = [row["nodes"] for row in rows]
    figure, axes = pyplot().subplots(figsize=(7, 4))
    for tool in ("baleine", "ansible", "pyinfra", "ssh_floor"):
        style = {"linestyle": ":", "color": "grey"} if tool == "ssh_floor" else {}
        axes.plot(sizes, [row[tool] for row in rows], marker="o", label=tool.replace("_", " "), **style)
    axes.set_xlabel("nodes")
    axes.set_ylabel("median seconds to list every host's containers")
    axes.set_title("Fleet listing: invoke ps vs ansible vs pyinfra")
    axes.set_ylim(bottom=0)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,25", help="fleet sizes (default 1,10,25)")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool and size (default 5)")
    args = parser.parse_args()
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    rows = []
    for nodes in [int(size) for size in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="baleine-bench-fleet-") as work:
            medians = measure(nodes, args.runs, Path(work))
        row = {"nodes": nodes, **{tool: round(value, 3) for tool, value in medians.items()},
               "ansible_ratio": round(medians["ansible"] / medians["baleine"], 1),
               "pyinfra_ratio": round(medians["pyinfra"] / medians["baleine"], 1)}  # fmt: skip
        rows.append(row)
        print(
            f"{nodes:3} nodes: baleine {row['baleine']:.3f} s, ansible {row['ansible']:.3f} s "
            f"({row['ansible_ratio']}x), pyinfra {row['pyinfra']:.3f} s ({row['pyinfra_ratio']}x), "
            f"ssh floor {row['ssh_floor']:.3f} s",
            flush=True,
        )
    write_csv(results / "fleet.csv", rows)
    plot(rows, results / "fleet.png")
    if len(rows) > 1:
        for tool in ("baleine", "ssh_floor"):
            print(f"largest / smallest fleet, {tool}: {rows[-1][tool] / rows[0][tool]:.2f}x")


if __name__ == "__main__":
    main()
