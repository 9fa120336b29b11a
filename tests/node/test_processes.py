"""`container top`: a running container's processes, from the host's /proc."""

import pytest

pytestmark = pytest.mark.integration


def test_top_lists_the_container_s_processes_with_both_pids(busybox):
    busybox.ok("container", "run", "-d", "--name", "box", "--user", "1000", "bb", "sh", "-c", "sleep 300 & wait")
    init = int(busybox.ok("container", "inspect", "box")["pid"])
    processes = busybox.ok("container", "top", "box")
    assert [(p["pid"], p["ppid"], p["uid"], p["command"]) for p in processes] == [
        (1, 0, 1000, ["sh", "-c", "sleep 300 & wait"]),
        (2, 1, 1000, ["sleep", "300"]),
    ]  # the shell waiter outside its pid namespace is not one of them
    assert processes[0]["host_pid"] == init and processes[1]["host_pid"] not in (init, 2)
    with open(f"/proc/{processes[1]['host_pid']}/cmdline", "rb") as handle:
        assert handle.read() == b"sleep\x00300\x00"  # the host pid is the one to give kill or strace here
    assert all(p["state"] == "S" and p["started"].endswith("Z") for p in processes)

    text = busybox.cli("container", "top", "box").stdout.splitlines()
    assert text[0].split() == ["PID", "HOST", "PID", "PPID", "UID", "STATE", "TIME", "UP", "COMMAND"]
    assert text[2].split()[:5] == ["2", str(processes[1]["host_pid"]), "1", "1000", "S"]
    assert text[2].endswith("sleep 300")


def test_top_shows_the_ids_a_userns_container_sees(busybox):
    busybox.ok("container", "run", "-d", "--name", "shifted", "--userns", "bb", "sleep", "300")
    (only,) = busybox.ok("container", "top", "shifted")
    assert (only["pid"], only["uid"], only["command"]) == (1, 0, ["sleep", "300"])  # root inside, not the host's id


def test_top_needs_a_running_container(busybox):
    busybox.ok("container", "create", "--name", "idle", "bb", "true")
    reply = busybox.call("container", "top", "idle")
    assert (reply["ok"], reply["error"]["code"], reply["exit"]) == (False, "conflict", 1)
    assert reply["error"]["message"] == "container 'idle' is not running (status: created): no processes to show"
    assert busybox.call("container", "top", "ghost")["error"]["code"] == "not_found"
