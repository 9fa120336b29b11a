"""--ulimit and the limits every container starts from: its host's pid 1's, whoever starts it."""

import subprocess

import pytest

from fleet.node import ulimits

pytestmark = pytest.mark.integration


def _limits_inside(node, *run_args, exec_in=None, caller_nofile=None):
    """{name: (soft, hard)} as /proc/self/limits shows them in a container (or an exec into one)."""
    argv = ["container", "exec", exec_in] if exec_in else ["container", "run", "--rm", *run_args, "bb"]
    argv = node.argv(*argv, "cat", "/proc/self/limits")
    if caller_nofile:  # what a caller with other limits (cron, an SSH session) would hand down
        argv = ["prlimit", f"--nofile={caller_nofile}", "--", *argv]
    done = subprocess.run(argv, env=node.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {line[:26].strip(): tuple(line[26:].split()[:2]) for line in done.stdout.splitlines()[1:]}


def _read(path):
    with open(path) as handle:
        return {line[:26].strip(): tuple(line[26:].split()[:2]) for line in handle.read().splitlines()[1:]}


def _lowest(limit, ceiling):
    if "unlimited" in (limit, ceiling):
        return limit if ceiling == "unlimited" else ceiling
    return str(min(int(limit), int(ceiling)))


def _can_raise_hard_limits():
    with open("/proc/self/status") as handle:
        effective = next(line for line in handle if line.startswith("CapEff:"))
    return bool(int(effective.split()[1], 16) >> 24 & 1)  # CAP_SYS_RESOURCE


def test_ulimits_are_pid_1_s_whatever_the_caller_s(busybox):
    host, ours = _read("/proc/1/limits"), _read("/proc/self/limits")
    if _can_raise_hard_limits():
        expected = host
    else:  # as close to pid 1's as our own hard limits let anyone come (this VM's root lacks CAP_SYS_RESOURCE)
        expected = {line: tuple(_lowest(value, ours[line][1]) for value in pair) for line, pair in host.items()}
    hard = ours["Max open files"][1]
    inside = _limits_inside(busybox, caller_nofile=f"512:{hard}")  # a caller with a low soft limit hands it down
    assert inside == expected and inside["Max open files"][0] != "512"

    set_here = _limits_inside(busybox, "--ulimit", "nofile=1024:4096", "--ulimit", "core=0:unlimited")
    assert set_here["Max open files"] == ("1024", "4096") and set_here["Max core file size"] == ("0", "unlimited")
    busybox.ok("container", "run", "-d", "--name", "held", "--ulimit", "nofile=2048", "bb", "sleep", "60")
    assert busybox.ok("container", "inspect", "held")["config"]["ulimits"] == {"nofile": [2048, 2048]}
    assert _limits_inside(busybox, exec_in="held", caller_nofile=f"512:{hard}")["Max open files"] == ("2048", "2048")


def test_a_limit_of_its_own_that_cannot_be_set_fails_the_start(busybox):
    above = int(_read("/proc/self/limits")["Max open files"][1]) + 1
    done = busybox.cli("container", "run", "--rm", "--ulimit", f"nofile={above}", "bb", "true")
    if _can_raise_hard_limits():
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 125 and done.stderr == (
            f"baleine: error: cannot set --ulimit nofile={above}:{above}: the most this process may set without "
            f"CAP_SYS_RESOURCE is {above - 1}\n"
        )
    assert busybox.ok("container", "list", "-a") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [("nofile", "use NAME=SOFT[:HARD] with NAME one of cpu, fsize"), ("files=10", "with NAME one of"),
     ("nofile=lots", "limits are whole numbers or 'unlimited'"), ("nofile=10:5", "soft limit is above the hard"),
     ("nofile=unlimited", "open files (fs.nr_open)"), ("nofile=999999999999", "open files (fs.nr_open)")],
)  # fmt: skip
def test_bad_ulimits_are_refused_at_create(busybox, value, message):
    reply = busybox.call("container", "create", "--ulimit", value, "bb", "true")
    assert (reply["ok"], reply["error"]["code"]) == (False, "invalid")
    assert (
        reply["error"]["message"].startswith(f"invalid --ulimit {value!r}: ") and message in reply["error"]["message"]
    )
    assert busybox.ok("container", "list", "-a") == []


def test_pid_1_s_limits_are_read_as_the_kernel_writes_them(tmp_path):
    sample = tmp_path / "limits"
    sample.write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max open files            1024                 524288               files     \n"
        "Max core file size        0                    unlimited            bytes     \n"
        "Max realtime timeout      unlimited            unlimited            us        \n"
    )
    assert ulimits.base(str(sample)) == {"nofile": [1024, 524288], "core": [0, -1], "rttime": [-1, -1]}
    assert ulimits.base(str(tmp_path / "missing")) == {}
