"""Runs inside the cgroup-v2 VM (tests/vm.py): the limit checks on a real v2 kernel.

Standard library only. Prints one line per check, 'PASS name' or
'FAIL name: why', then a closing count; tests/node/test_cgroup_v2.py reads them.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

PYZ = sys.argv[1]
ENV = dict(os.environ, BALEINE_ROOT="/tmp/state", BALEINE_CGROUP_PARENT="baleine-vm")
PARENT = Path("/sys/fs/cgroup/baleine-vm")
GROW = "x=a; while true; do x=$x$x; done"
results = []


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-I", "-S", PYZ, *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def ok(*args):
    done = cli("--json", *args)
    reply = json.loads(done.stdout)
    if not reply["ok"]:
        raise AssertionError(f"{args}: {reply['error']['message']}")
    return reply["data"]


def group(name):
    return PARENT / ok("container", "inspect", name)["id"]


def check(function):
    try:
        function()
        results.append(True)
        print(f"PASS {function.__name__}", flush=True)
    except Exception as error:  # noqa: BLE001 - every failure is reported, the run goes on
        results.append(False)
        print(f"FAIL {function.__name__}: {type(error).__name__}: {error}", flush=True)
    for item in ok("container", "list", "--all"):
        cli("container", "rm", "--force", item["name"])


def controllers_are_enabled_for_containers():
    ok("container", "run", "-d", "--name", "c", "bb", "sleep", "300")
    enabled = set((PARENT / "cgroup.subtree_control").read_text().split())
    assert {"cpu", "cpuset", "io", "memory", "pids"} <= enabled, enabled
    assert (group("c") / "pids.max").read_text().strip() == "2048"


def memory_limit_and_oom():
    ok("container", "run", "-d", "--name", "m", "--memory", "32M", "bb", "sleep", "300")
    assert (group("m") / "memory.max").read_text().strip() == str(32 << 20)
    swap = group("m") / "memory.swap.max"
    assert not swap.exists() or swap.read_text().strip() == "0"
    done = cli("container", "run", "--name", "hog", "--memory", "32M", "bb", "sh", "-c", GROW)
    assert done.returncode == 137, (done.returncode, done.stderr)
    hog = ok("container", "inspect", "hog")
    assert hog["reason"] == "oom-killed", hog
    assert ok("container", "inspect", "m")["status"] == "running"


def pids_limit_holds_a_fork_bomb():
    bomb = "(for i in $(seq 120); do sleep 60 & done) 2>/dev/null; exec sleep 60"
    ok("container", "run", "-d", "--name", "bomb", "--pids-limit", "50", "bb", "sh", "-c", bomb)
    events = group("bomb") / "pids.events"
    deadline = time.monotonic() + 60
    while events.read_text().split()[1] == "0" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert int(events.read_text().split()[1]) > 0, events.read_text()
    assert int((group("bomb") / "pids.current").read_text()) <= 50


def cpus_cap_cpu_time():
    ok("container", "run", "-d", "--name", "spin", "--cpus", "0.5", "--cpu-shares", "1024", "bb", "sh", "-c",
       "while :; do :; done")  # fmt: skip
    folder = group("spin")
    assert (folder / "cpu.max").read_text().split() == ["50000", "100000"]
    assert (folder / "cpu.weight").read_text().strip() == "100"

    def used():
        return int(next(line for line in (folder / "cpu.stat").read_text().splitlines() if "usage_usec" in line)
                   .split()[1]) / 1e6  # fmt: skip

    before, started = used(), time.monotonic()
    time.sleep(3)
    seconds = used() - before
    assert seconds <= 0.55 * (time.monotonic() - started), seconds


def cpuset_pins():
    done = cli("container", "run", "--rm", "--cpuset-cpus", "1", "bb", "grep", "Cpus_allowed_list", "/proc/self/status")
    assert done.stdout.split() == ["Cpus_allowed_list:", "1"], done.stdout + done.stderr


def io_write_bps_throttles():
    ok("container", "run", "-d", "--name", "io", "--io-write-bps", "2M", "bb", "sleep", "300")
    assert "wbps=2097152" in (group("io") / "io.max").read_text()
    started = time.monotonic()
    done = cli("container", "exec", "io", "dd", "if=/dev/zero", "of=/blob", "bs=1M", "count=8", "oflag=direct")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert 8 / elapsed <= 2.2, f"8 MiB in {elapsed:.1f} s"


def devices_cannot_be_made():
    done = cli("container", "run", "--rm", "bb", "mknod", "/dev/disk", "b", "8", "0")
    assert done.returncode != 0 and "not permitted" in done.stderr, done.stderr


def devices_are_filtered_even_with_mknod():
    """The BPF device filter: what the v1 devices cgroup would refuse, live update included."""
    done = cli("container", "run", "--rm", "--cap-add", "MKNOD", "bb", "mknod", "/dev/disk", "b", "8", "0")
    assert done.returncode != 0 and "not permitted" in done.stderr, done.stderr
    script = ": < /dev/lc && echo read; : > /dev/lc"  # loop-control: opening it does nothing
    done = cli("container", "run", "--rm", "--device", "/dev/loop-control:/dev/lc:r", "bb", "sh", "-c", script)
    assert done.stdout == "read\n" and "not permitted" in done.stderr, done.stdout + done.stderr
    ok("container", "run", "-d", "--name", "d", "--device-deny", "c 1:7 w", "bb", "sleep", "300")
    done = cli("container", "exec", "d", "sh", "-c", "echo x > /dev/full")
    assert "not permitted" in done.stderr, done.stderr
    ok("container", "update", "d", "--device-allow", "c 1:5 r")  # the rules given replace the deny
    done = cli("container", "exec", "d", "sh", "-c", "echo x > /dev/full")
    assert "No space left" in done.stderr, done.stderr


def update_and_stats_on_v2():
    ok("container", "run", "-d", "--name", "u", "--memory", "32M", "bb", "sleep", "300")
    ok("container", "update", "u", "--memory", "64M", "--cpus", "1")
    assert (group("u") / "memory.max").read_text().strip() == str(64 << 20)
    assert (group("u") / "cpu.max").read_text().split() == ["100000", "100000"]
    [stats] = ok("container", "stats", "u")
    assert stats["memory_limit"] == 64 << 20 and stats["pids"] >= 1, stats


def pause_freezes_through_cgroup_freeze():
    ok("container", "run", "-d", "--name", "p", "--stop-timeout", "5", "bb", "sleep", "300")
    assert ok("container", "pause", "p")["paused"] is True
    assert (group("p") / "cgroup.freeze").read_text().strip() == "1"
    assert "frozen 1" in (group("p") / "cgroup.events").read_text()
    assert [item["paused"] for item in ok("container", "list")] == [True]
    assert ok("container", "unpause", "p")["paused"] is False
    assert "frozen 0" in (group("p") / "cgroup.events").read_text()
    ok("container", "pause", "p")
    assert ok("container", "kill", "p")["exit_code"] == 137


def nothing_left_behind():
    assert not [path for path in PARENT.iterdir() if path.is_dir()] if PARENT.exists() else True


def main():
    done = cli("image", "create", "bb", "--size", "32M", "--from", "busybox")
    print(f"setup: image create exit {done.returncode} {done.stderr.strip()}", flush=True)
    for function in (controllers_are_enabled_for_containers, memory_limit_and_oom, pids_limit_holds_a_fork_bomb,
                     cpus_cap_cpu_time, cpuset_pins, io_write_bps_throttles, devices_cannot_be_made,
                     devices_are_filtered_even_with_mknod, update_and_stats_on_v2, pause_freezes_through_cgroup_freeze,
                     nothing_left_behind):  # fmt: skip
        check(function)
    print(f"vm: {results.count(True)} passed, {results.count(False)} failed", flush=True)


if __name__ == "__main__":
    main()
