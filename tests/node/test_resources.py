"""Resource limits on this host's real cgroups (hybrid v1 here): memory, pids, cpu, io, devices."""

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GROW = "x=a; while true; do x=$x$x; done"  # doubles its memory until something stops it


def cgroup_dir(node, name, controller):
    """The running container's cgroup directory in the given v1 controller's hierarchy."""
    for path in node.ok("container", "inspect", name)["cgroups"]:
        if controller in os.path.basename(os.path.dirname(os.path.dirname(path))).split(","):
            return Path(path)
    raise AssertionError(f"no {controller} cgroup for {name}")


def test_memory_limit_oom_kills_inside_and_spares_the_rest(busybox):
    busybox.ok("container", "run", "-d", "--name", "bystander", "bb", "sleep", "300")
    busybox.ok("container", "run", "-d", "--name", "capped", "--memory", "32M", "bb", "sleep", "300")
    folder = cgroup_dir(busybox, "capped", "memory")
    limit = int((folder / "memory.limit_in_bytes").read_text())
    assert limit == 32 << 20 and (folder / "memory.swappiness").read_text().strip() == "0"
    if (folder / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: memory + swap = memory
        assert int((folder / "memory.memsw.limit_in_bytes").read_text()) == limit
    done = busybox.cli("container", "run", "--name", "hog", "--memory", "32M", "bb", "sh", "-c", GROW)
    assert done.returncode == 137
    hog = busybox.ok("container", "inspect", "hog")
    assert (hog["status"], hog["exit_code"], hog["reason"]) == ("exited", 137, "oom-killed")
    assert "OOM-killed" in busybox.cli("container", "list", "--all").stdout
    running = {item["name"] for item in busybox.ok("container", "list")}
    assert running == {"bystander", "capped"}


def test_fork_bomb_stops_at_the_pids_limit(busybox):
    # busybox sh gives up when fork fails: bomb in a subshell, then pid 1 execs (needs no fork)
    bomb = "(for i in $(seq 120); do sleep 60 & done) 2>/dev/null; exec sleep 60"
    busybox.ok("container", "run", "-d", "--name", "bomb", "--pids-limit", "50", "bb", "sh", "-c", bomb)
    pids = cgroup_dir(busybox, "bomb", "pids")
    deadline = time.monotonic() + 10
    while int((pids / "pids.current").read_text()) < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # it tried 121 processes; the limit held it (its subshell has exited since)
    assert 45 <= int((pids / "pids.current").read_text()) <= 50
    assert busybox.cli("container", "run", "--rm", "bb", "true").returncode == 0  # the host is fine


def test_cpus_caps_cpu_time_by_the_cgroups_own_counter(busybox):
    busybox.ok("container", "run", "-d", "--name", "spin", "--cpus", "0.5", "bb", "sh", "-c", "while :; do :; done")
    usage = cgroup_dir(busybox, "spin", "cpuacct") / "cpuacct.usage"
    before, started = int(usage.read_text()), time.monotonic()
    time.sleep(3)
    used = (int(usage.read_text()) - before) / 1e9
    assert used <= 0.55 * (time.monotonic() - started), f"{used:.2f} s of CPU in 3 s"
    assert used > 0.2  # and it did run
    stats = busybox.ok("container", "stats", "spin")[0]
    assert 20 < stats["cpu_percent"] <= 60 and stats["pids"] >= 1 and stats["memory"] > 0


def test_cpuset_pins_the_container(busybox):
    done = busybox.cli("container", "run", "--rm", "--cpuset-cpus", "0", "bb", "grep", "Cpus_allowed_list",
                       "/proc/self/status")  # fmt: skip
    assert done.stdout.split() == ["Cpus_allowed_list:", "0"], done.stdout + done.stderr


def test_io_write_bps_throttles_direct_writes_to_its_own_disk(busybox):
    started = time.monotonic()
    done = busybox.cli("container", "run", "--rm", "--io-write-bps", "2M", "bb", "dd", "if=/dev/zero",
                       "of=/blob", "bs=1M", "count=8", "oflag=direct")  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert 8 / elapsed <= 2.2, f"8 MiB written in {elapsed:.1f} s"


def test_devices_cgroup_denies_a_host_disk_even_with_mknod(busybox):
    disk = os.stat("/").st_dev
    script = f"mknod /dev/hostdisk b {os.major(disk)} {os.minor(disk)} && head -c 1 /dev/hostdisk > /dev/null"
    done = busybox.cli("container", "run", "--rm", "--cap-add", "MKNOD", "bb", "sh", "-c", script)
    assert done.returncode != 0 and "not permitted" in done.stderr, done.stderr


def test_update_changes_limits_live(busybox):
    busybox.ok("container", "run", "-d", "--name", "u", "--memory", "32M", "--cpus", "0.5", "bb", "sleep", "300")
    busybox.ok("container", "update", "u", "--memory", "64M", "--cpus", "1", "--pids-limit", "99")
    memory = cgroup_dir(busybox, "u", "memory")
    cpu = cgroup_dir(busybox, "u", "cpu")
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 << 20
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == 100000
    assert busybox.ok("container", "inspect", "u")["limits"] == {"pids": 99, "memory": 64 << 20, "cpus": 1.0}
    busybox.ok("container", "update", "u", "--log-size", "1M")  # alone: the limits stay
    item = busybox.ok("container", "inspect", "u")
    assert item["config"]["log_size"] == 1 << 20 and item["limits"] == {"pids": 99, "memory": 64 << 20, "cpus": 1.0}
    busybox.ok("container", "stop", "--time", "0", "u")
    busybox.ok("container", "start", "u")  # kept across restarts
    assert int((cgroup_dir(busybox, "u", "pids") / "pids.max").read_text()) == 99


def test_update_refuses_what_the_kernel_would_and_changes_nothing(busybox):
    fill = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=30 2>/dev/null; exec sleep 300"  # tmpfs: charged to it
    busybox.ok("container", "run", "-d", "--name", "fat", "--memory", "128M", "bb", "sh", "-c", fill)
    deadline = time.monotonic() + 10
    while busybox.ok("container", "stats", "fat", timeout=30)[0]["memory"] < 20 << 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    before = busybox.ok("container", "inspect", "fat")["limits"]
    for args, message in (
        (("--memory", "8M", "--log-size", "1M"), "already uses"),
        (("--log-size", "1K"), "invalid --log-size"),
        (("--cpus", str(os.cpu_count() + 1)), "--cpus"),
        (("--io-write-bps", "/dev/no-such-disk:1M"), "no such device"),
        ((), "nothing to update"),
    ):
        reply = busybox.call("container", "update", "fat", *args)
        assert not reply["ok"] and message in reply["error"]["message"], (args, reply)
    assert busybox.ok("container", "inspect", "fat")["limits"] == before
    assert busybox.ok("container", "inspect", "fat")["config"]["log_size"] == 10 << 20
    memory = cgroup_dir(busybox, "fat", "memory")
    assert int((memory / "memory.limit_in_bytes").read_text()) == 128 << 20


@pytest.mark.parametrize("step", ["start:limits", "start:disk-limits"])  # before the fork, and after it
def test_run_rm_removes_a_container_whose_start_failed(busybox, step):
    """Not only a start whose command fails: any start that fails (a limit the kernel refuses...) leaves
    nothing under --rm, as Docker's."""
    fault = {"BALEINE_FAULT": f"fail:{step}"}
    done = busybox.cli("container", "run", "--rm", "--pids-limit", "50", "bb", "true", env=fault)
    # one line: the init, killed before its channel closes, does not add "the starting command went away"
    assert done.returncode != 0 and done.stderr == f"baleine: error: injected failure at {step}\n"
    assert busybox.ok("container", "list", "--all") == []
    kept = busybox.cli("container", "run", "--name", "kept", "--pids-limit", "50", "bb", "true", env=fault)
    assert kept.returncode != 0 and [item["name"] for item in busybox.ok("container", "list", "--all")] == ["kept"]
    busybox.ok("container", "rm", "kept")


def test_limits_beyond_what_the_kernel_takes_are_refused_before_anything_is_made(busybox):
    done = busybox.cli("container", "run", "--rm", "--pids-limit", "11111111111", "bb", "true")
    assert (done.returncode, done.stderr) == (
        2,
        "baleine: error: invalid --pids-limit '11111111111': use a whole number, at most 4194304\n",
    )
    assert busybox.ok("container", "list", "--all") == []


def test_device_passes_a_host_node_in_with_its_permissions(busybox):
    opened = "ls -l /dev/net/tun && exec 3<>/dev/net/tun && echo opened"
    done = busybox.cli("container", "run", "--rm", "--device", "/dev/net/tun", "bb", "sh", "-c", opened)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "opened", done.stderr
    assert done.stdout.startswith("crw-------") and "10, 200" in done.stdout  # the host's numbers and mode
    done = busybox.cli("container", "run", "--rm", "bb", "sh", "-c", opened)
    assert done.returncode != 0 and "opened" not in done.stdout  # not there unless asked for
    busybox.ok("container", "run", "-d", "--name", "vpn", "--device", "/dev/net/tun", "bb", "sleep", "60")
    assert busybox.exec_out("vpn", "sh", "-c", "exec 3<>/dev/net/tun && echo opened") == "opened\n"  # detached too
    read_only = "exec 3</dev/myfuse && echo read; exec 4>/dev/myfuse && echo written"
    done = busybox.cli("container", "run", "--rm", "--device", "/dev/fuse:/dev/myfuse:r", "bb", "sh", "-c", read_only)
    assert done.stdout == "read\n" and "not permitted" in done.stderr, (done.stdout, done.stderr)
    owner = "stat -c '%u %g' /dev/net/tun"
    done = busybox.cli("container", "run", "--rm", "--userns", "--device", "/dev/net/tun", "bb", "sh", "-c", owner)
    assert done.stdout == "0 0\n", done.stderr  # the container's root owns what the host's root does


def test_sysctls_and_shm_size_are_the_container_s_own(busybox):
    before = Path("/proc/sys/net/core/somaxconn").read_text()
    script = "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmax; df -k /dev/shm | tail -1"
    done = busybox.cli("container", "run", "--rm", "--sysctl", "net.core.somaxconn=1234", "--sysctl",
                       "kernel/shmmax=123456789", "--shm-size", "16M", "bb", "sh", "-c", script)  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[:2] == ["1234", "123456789"] and lines[2].split()[1] == "16384", done.stdout + done.stderr
    assert Path("/proc/sys/net/core/somaxconn").read_text() == before  # its own network namespace's, not ours
    plain = busybox.cli("container", "run", "--rm", "bb", "sh", "-c", "df -k /dev/shm | tail -1").stdout
    assert plain.split()[1] == "65536"  # 64M, as in Docker
    busybox.ok(
        "container", "run", "-d", "--name", "tuned", "--sysctl", "net.ipv4.tcp_fin_timeout=17", "bb", "sleep", "60"
    )
    assert busybox.exec_out("tuned", "cat", "/proc/sys/net/ipv4/tcp_fin_timeout") == "17\n"  # a detached start's init
    done = busybox.cli("container", "run", "--rm", "--sysctl", "net.ipv4.no_such_thing=1", "bb", "true")
    assert done.returncode == 125 and "--sysctl net.ipv4.no_such_thing: no such setting" in done.stderr, done.stderr


def test_a_sysctl_of_the_containers_own_interface_is_set_once_it_is_plugged(busybox):
    """ethN's settings exist only after the plug: an attached run's init, which builds the root meanwhile, waits.

    The pause holds the start for a second between forking the init and plugging: without the wait, the init
    would look for eth1 long before it is there.
    """
    from hostnet import free_subnet

    joined = []
    for index in range(2):
        busybox.ok("network", "create", f"farm{index}", "--subnet", free_subnet())
        joined += ["--network", f"farm{index}"]
    tuned = (*joined, "--sysctl", "net.ipv4.conf.eth1.rp_filter=2", "--sysctl", "net.ipv4.conf.default.rp_filter=0")
    script = "cat /proc/sys/net/ipv4/conf/eth1/rp_filter /proc/sys/net/ipv4/conf/default/rp_filter"
    done = busybox.cli("container", "run", "--rm", *tuned, "bb", "sh", "-c", script,
                       env={"BALEINE_FAULT": "pause:start:forked"})  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "2\n0\n"), done.stderr
    busybox.ok("container", "run", "-d", "--name", "routed", *tuned, "bb", "sleep", "60")
    assert busybox.exec_out("routed", "sh", "-c", script) == "2\n0\n"  # a detached start's init: the same


def test_device_deny_takes_a_node_away(busybox):
    read = "head -c 1 /dev/urandom > /dev/null && echo readable"
    assert "readable" in busybox.cli("container", "run", "--rm", "bb", "sh", "-c", read).stdout
    denied = busybox.cli("container", "run", "--rm", "--device-deny", "c 1:9 rwm", "bb", "sh", "-c", read)
    assert "readable" not in denied.stdout and "not permitted" in denied.stderr, denied.stdout + denied.stderr
