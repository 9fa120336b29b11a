"""Containers for real: namespaces, pivot_root, loop devices, bridges, cgroups."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostnet import free_subnet
from web import fetch

pytestmark = pytest.mark.integration

HTTPD = "mkdir -p /www && echo page-of-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def address_of(node, name, network=0):
    return node.ok("container", "inspect", name)["networks"][network]["address"]


def test_busybox_prints_hello(busybox):
    done = busybox.cli("container", "run", "--rm", "bb", "echo", "hello")
    assert (done.returncode, done.stdout) == (0, "hello\n"), done.stderr
    assert busybox.ok("container", "list", "--all") == []


# What each would add to every command: re with the enum it loads (6 ms), json and csv (which load re),
# signal's enum (3 ms), contextlib and ipaddress with the functools they load (3 to 5 ms), ctypes' type
# set-up (2.5 ms; linux.py uses _ctypes beneath it). The commands run most often do without them.
SLOW_IMPORTS = {"re", "enum", "json", "csv", "signal", "contextlib", "functools", "ipaddress", "ctypes"}


def test_run_list_stop_and_check_load_no_slow_module(busybox, subnet):
    busybox.ok("network", "create", "farm", "--subnet", subnet)
    for args in (["container", "run", "--rm", "--network", "farm", "--memory", "64M", "bb", "true"],
                 ["container", "run", "-d", "--name", "up", "--network", "farm", "bb", "sleep", "60"],
                 ["container", "run", "--rm", "--memory", "64M", "bb", "true"],
                 ["--json", "container", "list"], ["container", "list", "--all"], ["container", "inspect", "up"],
                 ["container", "exec", "up", "true"], ["container", "logs", "up"], ["check"],
                 ["container", "stop", "-t", "0", "up"], ["container", "start", "up"],
                 ["container", "rm", "--force", "up"]):  # fmt: skip
        python, *rest = busybox.argv(*args)
        done = subprocess.run([python, "-X", "importtime", *rest], env=busybox.env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        loaded = {row.rsplit("|", 1)[-1].strip() for row in done.stderr.splitlines() if "|" in row}
        assert "fleet.node.cli" in loaded and not loaded & SLOW_IMPORTS, (args, loaded & SLOW_IMPORTS)


def test_attached_run_returns_the_exit_code(busybox):
    assert busybox.cli("container", "run", "--rm", "bb", "sh", "-c", "exit 7").returncode == 7
    reply = busybox.call("container", "run", "--name", "seven", "bb", "sh", "-c", "echo out; exit 7")
    assert reply["exit"] == 7 and reply["data"]["exit_code"] == 7 and reply["data"]["output"] == "out\n"
    assert busybox.ok("container", "inspect", "seven")["exit_code"] == 7
    removed = busybox.call("container", "run", "--rm", "bb", "echo", "gone")
    assert removed["data"]["output"] == "gone\n" and busybox.ok("container", "list", "--all")[0]["name"] == "seven"


def test_missing_command_is_127_and_not_executable_126(busybox):
    missing = busybox.cli("container", "run", "--rm", "bb", "no-such-program")
    assert missing.returncode == 127 and missing.stderr.count("no-such-program") == 1, missing.stderr  # one line
    denied = busybox.cli("container", "run", "--rm", "bb", "/etc/passwd")
    assert denied.returncode == 126 and "permission denied" in denied.stderr
    # Detached, the reason is also in the container's log, for whoever reads it later.
    background = busybox.cli("container", "run", "-d", "--name", "lost", "bb", "no-such-program")
    assert background.returncode == 127 and background.stderr.count("no-such-program") == 1, background.stderr
    assert "no-such-program: executable file not found" in busybox.cli("container", "logs", "lost").stdout


def test_entrypoint_replaces_the_image_s_command(busybox):
    done = busybox.cli("container", "run", "--rm", "--entrypoint", "echo", "bb", "from", "echo")
    assert (done.returncode, done.stdout) == (0, "from echo\n"), done.stderr
    busybox.ok("container", "create", "--name", "e", "--entrypoint", "/bin/true", "bb")
    assert busybox.ok("container", "inspect", "e")["command"] == ["/bin/true"]


def test_root_is_the_image_not_the_host(busybox, tmp_path):
    marker = tmp_path / "host-only-file"
    marker.write_text("secret")
    done = busybox.cli("container", "run", "--rm", "bb", "sh", "-c", f"cat {marker}; echo ---; ls /")
    missing, listing = done.stdout.split("---\n")
    assert missing == "" and "No such file or directory" in done.stderr
    assert {"bin", "etc", "proc", "dev"} <= set(listing.split())
    assert not {"work", "boot", "opt", "lib"} & set(listing.split())  # the host's, not the image's


def test_ps_sees_only_the_containers_own_processes(busybox):
    busybox.ok("container", "run", "-d", "--name", "sleeper", "bb", "sleep", "300")
    processes = busybox.exec_out("sleeper", "ps", "-o", "pid,comm").splitlines()[1:]
    assert sorted(line.split()[1] for line in processes) == ["ps", "sleep"]
    assert "1 sleep" in " ".join(processes)


def test_dev_proc_sys_and_hostname(busybox):
    script = "ls /dev; cat /etc/hostname; hostname; touch /sys/x 2>&1; echo > /dev/null && echo null-ok"
    out = busybox.cli("container", "run", "--rm", "--hostname", "box1", "bb", "sh", "-c", script).stdout
    listed = set(out.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"} <= listed
    assert not {"sda", "vda", "mem", "kmsg", "loop0"} & listed
    assert out.count("box1") == 2 and "Read-only file system" in out and "null-ok" in out


def test_two_containers_reach_each_other_and_the_host_reaches_httpd(busybox, subnet):
    busybox.ok("network", "create", "farm", "--subnet", subnet)
    busybox.ok("container", "run", "-d", "--name", "web1", "--network", "farm", "bb", "sh", "-c", HTTPD)
    busybox.ok("container", "run", "-d", "--name", "web2", "--network", "farm", "bb", "sh", "-c", HTTPD)
    assert fetch(f"http://{address_of(busybox, 'web1')}/") == "page-of-web1\n"
    from_web2 = busybox.exec_out("web2", "wget", "-q", "-O", "-", "http://web1/")
    assert from_web2 == "page-of-web1\n"  # by name, through /etc/hosts


def test_etc_hosts_follows_neighbours(busybox, subnet):
    busybox.ok("network", "create", "farm", "--subnet", subnet)
    busybox.ok("container", "run", "-d", "--name", "a", "--network", "farm", "bb", "sleep", "300")
    assert "\tb" not in busybox.exec_out("a", "cat", "/etc/hosts")
    busybox.ok("container", "run", "-d", "--name", "b", "--network", "farm", "bb", "sleep", "300")
    assert f"{address_of(busybox, 'b')}\tb" in busybox.exec_out("a", "cat", "/etc/hosts")
    busybox.ok("container", "stop", "--time", "0", "b")
    assert "\tb" not in busybox.exec_out("a", "cat", "/etc/hosts")


def test_files_survive_stop_start_and_go_with_rm(busybox, subnet):
    busybox.ok("network", "create", "farm", "--subnet", subnet)
    busybox.ok("container", "run", "-d", "--name", "keep", "--network", "farm", "bb", "sleep", "300")
    before = address_of(busybox, "keep")
    busybox.exec_out("keep", "sh", "-c", "echo kept > /data.txt")
    busybox.ok("container", "stop", "--time", "0", "keep")
    assert busybox.ok("container", "inspect", "keep")["status"] == "exited"
    busybox.ok("container", "start", "keep")
    assert busybox.exec_out("keep", "cat", "/data.txt") == "kept\n"
    assert address_of(busybox, "keep") == before
    busybox.ok("container", "rm", "--force", "keep")
    busybox.ok("container", "run", "-d", "--name", "keep", "bb", "sleep", "300")
    gone = busybox.ok("container", "exec", "keep", "cat", "/data.txt")
    assert gone["exit_code"] == 1 and "No such file or directory" in gone["stderr"], gone


def test_restart_keeps_files_and_addresses_and_starts_a_stopped_one(busybox, subnet):
    busybox.ok("network", "create", "farm", "--subnet", subnet)
    busybox.ok("container", "run", "-d", "--name", "again", "--network", "farm", "bb", "sleep", "300")
    before = busybox.ok("container", "inspect", "again")
    busybox.exec_out("again", "sh", "-c", "echo kept > /data.txt")
    after = busybox.ok("container", "restart", "--time", "0", "again")
    assert after["status"] == "running" and after["pid"] != before["pid"]
    assert busybox.exec_out("again", "cat", "/data.txt") == "kept\n"
    assert address_of(busybox, "again") == before["networks"][0]["address"]
    busybox.ok("container", "stop", "--time", "0", "again")
    running = busybox.ok("container", "restart", "again")  # a stopped one just starts
    assert running["status"] == "running" and running["stopped_by"] is None  # its restart policy applies again
    reply = busybox.call("container", "restart", "--time", "soon", "again")
    assert not reply["ok"] and "invalid --time" in reply["error"]["message"]
    assert busybox.ok("container", "inspect", "again")["pid"] == running["pid"]  # refused: not restarted
    assert busybox.call("container", "restart", "ghost")["error"]["code"] == "not_found"


def test_start_stop_and_rm_take_several_names_and_try_each(busybox):
    for name in ("a", "b"):
        busybox.ok("container", "create", "--name", name, "bb", "sleep", "300")
    assert [item["status"] for item in busybox.ok("container", "start", "a", "b")] == ["running", "running"]
    reply = busybox.call("container", "stop", "-t", "0", "a", "ghost", "b")
    assert reply["exit"] == 1 and reply["error"]["code"] == "not_found"
    assert reply["error"]["message"] == "1 of 3 failed: no such container 'ghost' (done: a, b)"
    assert reply["error"]["done"] == ["a", "b"] and reply["error"]["failed"][0]["name"] == "ghost"
    assert {item["status"] for item in busybox.ok("container", "list", "-a")} == {"exited"}  # b too, after ghost
    done = busybox.cli("container", "rm", "a", "b")
    assert (done.returncode, done.stdout) == (0, "a\nb\n")
    assert busybox.ok("container", "list", "-a") == []


def test_wait_blocks_until_each_exits_and_gives_its_code(busybox):
    busybox.ok("container", "run", "-d", "--name", "slow", "bb", "sh", "-c", "sleep 0.6; exit 7")
    busybox.ok("container", "run", "-d", "--name", "quick", "bb", "sh", "-c", "exit 3")
    done = busybox.cli("container", "wait", "slow", "quick")
    assert (done.returncode, done.stdout) == (0, "7\n3\n"), done.stderr
    assert busybox.ok("container", "wait", "slow")["exit_code"] == 7  # already exited: at once
    busybox.ok("container", "create", "--name", "idle", "bb", "true")
    assert "has not been started" in busybox.call("container", "wait", "idle")["error"]["message"]


def test_prune_removes_every_container_not_running(busybox):
    assert busybox.ok("container", "prune") == []
    busybox.ok("container", "create", "--name", "made", "bb", "true")
    busybox.ok("container", "run", "--name", "ran", "bb", "true")
    busybox.ok("container", "run", "-d", "--name", "runs", "bb", "sleep", "300")
    done = busybox.cli("container", "prune")
    assert (done.returncode, done.stdout) == (0, "made\nran\n")
    assert [item["name"] for item in busybox.ok("container", "list", "-a")] == ["runs"]
    busybox.ok("container", "stop", "-t", "0", "runs")
    assert [item["name"] for item in busybox.ok("container", "prune")] == ["runs"]  # one: a list all the same
    assert busybox.ok("container", "list", "-a") == []


def test_stop_uses_sigterm_then_sigkill(busybox):
    trap = "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done"
    busybox.ok("container", "run", "-d", "--name", "polite", "bb", "sh", "-c", trap)
    busybox.wait_for_log("polite", "ready")
    assert busybox.ok("container", "stop", "polite")["exit_code"] == 3
    assert busybox.cli("container", "logs", "polite").stdout == "ready\ngot-term\n"
    busybox.ok("container", "run", "-d", "--name", "deaf", "bb", "sleep", "300")  # pid 1 ignores SIGTERM
    started = time.monotonic()
    assert busybox.ok("container", "stop", "--time", "0.5", "deaf")["exit_code"] == 137
    assert time.monotonic() - started < 8
    logs = busybox.cli("container", "logs", "deaf")
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "", "")  # the waiter's "Killed" is not the container's


def test_stop_signal_and_stop_timeout_are_the_container_s_own(busybox):
    graceful = "trap 'echo graceful; exit 0' QUIT; echo ready; while true; do sleep 0.1; done"  # as nginx: QUIT drains
    busybox.ok("container", "run", "-d", "--name", "drains", "--stop-signal", "quit", "bb", "sh", "-c", graceful)
    busybox.wait_for_log("drains", "ready")
    assert busybox.ok("container", "inspect", "drains")["config"]["stop_signal"] == "SIGQUIT"
    assert busybox.ok("container", "stop", "drains")["exit_code"] == 0
    assert busybox.cli("container", "logs", "drains").stdout == "ready\ngraceful\n"

    busybox.ok("container", "run", "-d", "--name", "deaf", "--stop-timeout", "0.5", "bb", "sleep", "300")
    started = time.monotonic()
    assert busybox.ok("container", "stop", "deaf")["exit_code"] == 137  # no --time: its own 0.5 s, not 10
    assert time.monotonic() - started < 8

    busybox.ok("container", "commit", "drains", "drainer")  # the image keeps it, and gives it to its containers
    assert busybox.ok("image", "inspect", "drainer")["config"]["StopSignal"] == "SIGQUIT"
    busybox.ok("container", "create", "--name", "heir", "drainer")
    assert busybox.ok("container", "inspect", "heir")["config"]["stop_signal"] == "SIGQUIT"
    busybox.ok("container", "create", "--name", "own", "--stop-signal", "15", "drainer")
    assert busybox.ok("container", "inspect", "own")["config"]["stop_signal"] == "SIGTERM"

    busybox.ok("container", "run", "-d", "--name", "later", "bb", "sh", "-c", graceful)  # told after it started
    busybox.ok("container", "update", "later", "--stop-signal", "SIGQUIT", "--stop-timeout", "30")
    assert busybox.ok("container", "inspect", "later")["config"]["stop_timeout"] == 30.0
    busybox.wait_for_log("later", "ready")
    assert busybox.ok("container", "stop", "later")["exit_code"] == 0


def test_init_is_pid_1_passes_signals_on_and_reaps_orphans(busybox):
    orphans = "(sleep 0.2 &); sleep 1; echo pid $$; ps -o stat,args | grep -c '^Z' || true"
    done = busybox.cli("container", "run", "--rm", "--init", "bb", "sh", "-c", orphans)
    assert done.stdout == "pid 2\n0\n", done.stderr  # the command is pid 2; the orphaned sleep was reaped
    busybox.ok("container", "run", "-d", "--name", "plain", "--init", "bb", "sleep", "300")
    assert [p["command"][0] for p in busybox.ok("container", "top", "plain")] == ["/dev/init", "sleep"]
    assert busybox.ok("container", "inspect", "plain")["config"]["command"] == ["sleep", "300"]
    # sleep has no SIGTERM handler: as pid 1 it would ignore it; as pid 2 it dies of it (128 + 15), no SIGKILL
    assert busybox.ok("container", "stop", "plain")["exit_code"] == 143


def test_init_needs_a_static_binary_on_the_host(busybox):
    for chosen, message in (("/nonexistent", "is not a statically linked executable"),
                            ("/bin/ls", "is not a statically linked executable")):  # fmt: skip
        busybox.env["BALEINE_INIT"] = chosen
        reply = busybox.call("container", "create", "--init", "bb", "true")
        assert (reply["ok"], reply["error"]["code"]) == (False, "missing")
        assert reply["error"]["message"] == f"BALEINE_INIT={chosen!r} {message}: --init needs one"
    busybox.env["BALEINE_INIT"] = "/usr/bin/catatonit"  # podman's, where tini is not
    busybox.ok("container", "run", "--rm", "--init", "bb", "true")
    assert busybox.ok("container", "list", "-a") == []


def test_env_files_then_env_for_run_and_exec(busybox, tmp_path):
    (tmp_path / "app.env").write_text("# settings\nA=from-file\nB=from-file\n")
    (tmp_path / "more.env").write_text("C=more\n")
    busybox.ok("container", "run", "-d", "--name", "app", "--env-file", str(tmp_path / "app.env"),
               "--env-file", str(tmp_path / "more.env"), "-e", "B=given", "bb", "sleep", "300")  # fmt: skip
    assert busybox.exec_out("app", "sh", "-c", "echo $A $B $C") == "from-file given more\n"
    (tmp_path / "exec.env").write_text("A=for-exec\n")
    done = busybox.ok("container", "exec", "--env-file", str(tmp_path / "exec.env"), "app", "sh", "-c", "echo $A $B")
    assert done["stdout"] == "for-exec given\n"
    reply = busybox.call("container", "create", "--env-file", str(tmp_path / "none.env"), "bb", "true")
    assert reply["error"]["message"].startswith("cannot read --env-file") and reply["error"]["code"] == "invalid"
    # - is stdin: values kept out of every command line (deploy's secrets)
    piped = subprocess.run(
        busybox.argv("container", "run", "-d", "--name", "piped", "--env-file", "-", "-e", "B=b", "bb", "sleep", "300"),
        env=busybox.env,
        input="TOKEN=s3cr=t\n# note\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0, piped.stderr
    assert busybox.exec_out("piped", "sh", "-c", "echo $TOKEN $B") == "s3cr=t b\n"
    broken = subprocess.run(
        busybox.argv("--json", "container", "create", "--env-file", "-", "bb", "true"),
        env=busybox.env,
        input="not a line\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(broken.stdout)["error"]["message"] == (
        "-:1: invalid environment variable 'not a line': use KEY=VALUE, KEY made of letters, digits and '_'"
    )


def test_tmpfs_gives_a_read_only_container_somewhere_to_write(busybox):
    script = (
        "touch /run/ok && echo run-ok; touch /x 2>/dev/null || echo root-ro; stat -c %a /tmp; "
        "df -k /tmp | tail -1 | awk '{print $2}'; printf '#!/bin/sh\\necho ran\\n' > /run/s; chmod +x /run/s; "
        "/run/s 2>/dev/null || echo noexec; grep -c ' /run tmpfs ' /proc/mounts"
    )
    done = busybox.cli("container", "run", "--rm", "--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp:size=1M,mode=700",
                       "bb", "sh", "-c", script)  # fmt: skip
    assert done.stdout == "run-ok\nroot-ro\n700\n1024\nnoexec\n1\n", done.stderr
    done = busybox.cli("container", "run", "--rm", "--tmpfs", "/scratch:exec,mode=755", "--userns", "bb", "sh", "-c",
                       "cp /bin/busybox /scratch/ && /scratch/busybox true && stat -c %u:%a /scratch")  # fmt: skip
    assert done.stdout == "0:755\n", done.stderr  # the container's root owns it, even in its own id range


def test_killed_container_shows_as_exited(busybox):
    busybox.ok("container", "run", "-d", "--name", "victim", "bb", "sleep", "300")
    pid = busybox.ok("container", "inspect", "victim")["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert busybox.ok("container", "list") == []
    [row] = busybox.ok("container", "list", "--all")
    assert (row["status"], row["exit_code"], row["pid"]) == ("exited", 137, None)


def test_a_command_at_work_on_a_container_is_not_disturbed(busybox):
    """A row left 'starting' by a live command is refused; by a dead one, repaired."""
    busybox.ok("container", "create", "--name", "busy", "bb", "sleep", "300")
    csv_path = busybox.root / "containers.csv"
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    me = f"{os.getpid()};{stat.rsplit(')', 1)[1].split()[19]}"  # this test process: alive
    text = csv_path.read_text()
    csv_path.write_text(text.replace(";created;;;", f";starting;{me};"))
    for verb in (("stop", "busy"), ("rm", "--force", "busy"), ("start", "busy")):
        reply = busybox.call("container", *verb)
        assert not reply["ok"] and "starting" in reply["error"]["message"], verb
    csv_path.write_text(text.replace(";created;;;", ";starting;999999;1;"))  # its starter is gone
    assert busybox.ok("container", "inspect", "busy")["status"] == "exited"
    busybox.ok("container", "rm", "busy")


def test_a_row_left_half_created_says_how_to_clean_up(busybox):
    busybox.ok("container", "create", "--name", "half", "bb", "true")
    csv_path = busybox.root / "containers.csv"
    csv_path.write_text(csv_path.read_text().replace(";created;;;", ";creating;999999;1;"))  # its creator died
    reply = busybox.call("container", "start", "half")
    assert not reply["ok"] and "half-created" in reply["error"]["message"] and "rm half" in reply["error"]["message"]
    busybox.ok("container", "rm", "half")


def test_attached_run_forwards_signals_to_the_container(busybox):
    import subprocess

    trap = "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done"
    attached = subprocess.Popen(busybox.argv("container", "run", "--name", "fg", "bb", "sh", "-c", trap),
                                env=busybox.env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert attached.stdout.readline() == "ready\n"
    attached.send_signal(signal.SIGTERM)
    assert attached.wait(timeout=20) == 3
    assert attached.stdout.read() == "got-term\n"
    assert busybox.ok("container", "inspect", "fg")["status"] == "exited"


def _parent(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_attached_init_is_forked_and_detached_waits_in_a_shell(busybox):
    """Attached, the starting command's child waits (no second Python starts); detached, a shell does."""
    import subprocess

    argv = busybox.argv("container", "run", "--name", "fg2", "bb", "sh", "-c", "echo ready; sleep 60")
    attached = subprocess.Popen(argv, env=busybox.env, stdout=subprocess.PIPE, text=True)
    assert attached.stdout.readline() == "ready\n"
    waiter = _parent(busybox.ok("container", "inspect", "fg2")["pid"])
    assert _parent(waiter) == attached.pid
    assert os.readlink(f"/proc/{waiter}/exe") == os.readlink(f"/proc/{attached.pid}/exe")  # python, forked
    busybox.ok("container", "run", "-d", "--name", "bg2", "bb", "sleep", "60")
    waiter = _parent(busybox.ok("container", "inspect", "bg2")["pid"])
    assert os.readlink(f"/proc/{waiter}/exe") == os.path.realpath("/bin/sh")
    busybox.ok("container", "rm", "--force", "bg2")
    busybox.ok("container", "stop", "--time", "0", "fg2")
    assert attached.wait(timeout=20) == 137  # SIGKILL, reported as a shell would
    assert busybox.ok("container", "inspect", "fg2")["exit_code"] == 137  # the exit file, written by the waiter


def test_rm_refuses_a_running_container(busybox):
    busybox.ok("container", "run", "-d", "--name", "busy", "bb", "sleep", "300")
    reply = busybox.call("container", "rm", "busy")
    assert not reply["ok"] and "--force" in reply["error"]["message"] and reply["exit"] != 0
    assert busybox.ok("container", "inspect", "busy")["status"] == "running"


def test_add_plugs_a_working_second_interface(busybox):
    first, second = free_subnet(), free_subnet()
    busybox.ok("network", "create", "front", "--subnet", first)
    busybox.ok("network", "create", "back", "--subnet", second)
    busybox.ok("container", "run", "-d", "--name", "db", "--network", "back", "bb", "sh", "-c", HTTPD)
    busybox.ok("container", "run", "-d", "--name", "app", "--network", "front", "bb", "sleep", "300")
    # Not on db's network yet: no eth1, and db is no name in app's /etc/hosts. (No wget -T:
    # Debian 12's static busybox wget crashes with it, which would pass any check for failure.)
    assert "eth1" not in busybox.exec_out("app", "ip", "-o", "link")
    before = busybox.ok("container", "exec", "app", "wget", "-q", "-O", "-", "http://db/")
    assert before["exit_code"] == 1 and "bad address 'db'" in before["stderr"], before
    busybox.ok("container", "add", "app", "--network", "back")
    assert busybox.exec_out("app", "wget", "-q", "-O", "-", "http://db/") == "page-of-db\n"
    assert "eth1" in busybox.exec_out("app", "ip", "-o", "addr")
    busybox.ok("container", "stop", "--time", "0", "app")
    busybox.ok("container", "start", "app")  # remembered across stop/start
    assert [n["network"] for n in busybox.ok("container", "inspect", "app")["networks"]] == ["front", "back"]
    assert busybox.exec_out("app", "wget", "-q", "-O", "-", "http://db/") == "page-of-db\n"


def test_disconnect_unplugs_live_keeps_the_other_names_and_moves_the_default_route(busybox):
    first, second, third = free_subnet(), free_subnet(), free_subnet()
    for name, subnet in (("front", first), ("back", second), ("side", third)):
        busybox.ok("network", "create", name, "--subnet", subnet)
    busybox.ok("container", "run", "-d", "--name", "db", "--network", "back", "bb", "sh", "-c", HTTPD)
    busybox.ok("container", "run", "-d", "--name", "peer", "--network", "front", "bb", "sleep", "300")
    busybox.ok("container", "run", "-d", "--name", "app", "--network", "front", "--network", "back", "bb", "sh", "-c",
               HTTPD)  # fmt: skip
    front_address, back_address = address_of(busybox, "app", 0), address_of(busybox, "app", 1)
    assert "app" in busybox.exec_out("peer", "cat", "/etc/hosts")

    item = busybox.ok("network", "disconnect", "front", "app")
    assert [(n["network"], n["address"]) for n in item["networks"]] == [("back", back_address)]
    links = busybox.exec_out("app", "ip", "-o", "link")
    assert "eth0" not in links and "eth1" in links  # pulled out live; the other keeps its name
    gateway = busybox.ok("network", "inspect", "back")["gateway"]
    assert busybox.exec_out("app", "ip", "route", "show", "default").split()[:5] == [
        "default", "via", gateway, "dev", "eth1"]  # fmt: skip
    assert "app" not in busybox.exec_out("peer", "cat", "/etc/hosts")
    assert busybox.exec_out("app", "wget", "-q", "-O", "-", "http://db/") == "page-of-db\n"
    assert busybox.ok("network", "inspect", "front")["members"] == ["peer"]
    busybox.ok("container", "run", "-d", "--name", "heir", "--network", "front", "bb", "sleep", "300")
    assert address_of(busybox, "heir") == front_address  # the address was freed

    busybox.ok("network", "connect", "side", "app")  # after the gap: eth2, not a second eth1
    assert [n["network"] for n in busybox.ok("container", "inspect", "app")["networks"]] == ["back", "side"]
    assert "eth2" in busybox.exec_out("app", "ip", "-o", "addr")
    busybox.ok("network", "disconnect", "side", "app")
    assert "eth2" not in busybox.exec_out("app", "ip", "-o", "link")
    busybox.ok("container", "stop", "--time", "0", "app")
    busybox.ok("network", "connect", "--ip", front_address.rsplit(".", 1)[0] + ".200", "front", "app")
    busybox.ok("container", "start", "app")  # numbered afresh: back is eth0, front eth1
    assert busybox.exec_out("app", "ip", "-o", "-4", "addr", "show", "eth0").split()[3].split("/")[0] == back_address
    assert fetch(f"http://{front_address.rsplit('.', 1)[0]}.200/") == "page-of-app\n"

    moves = [(e["action"], e["network"]) for e in busybox.ok("events", "app") if "network" in e]
    assert moves == [("disconnect", "front"), ("connect", "side"), ("disconnect", "side"), ("connect", "front")]
    refused = busybox.call("network", "disconnect", "side", "app")
    assert refused["error"]["message"] == "container 'app' is not on network 'side'"
    assert busybox.call("network", "disconnect", "ghost", "app")["error"]["code"] == "not_found"


def holds_a_pidfd(pid):
    """Whether process pid has a pidfd open (`container wait` once it waits on a container's process)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[pidfd]" for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_rename_keeps_everything_but_the_name_and_commands_in_flight_follow(busybox, subnet):
    import subprocess

    busybox.ok("network", "create", "farm", "--subnet", subnet)
    busybox.ok("container", "run", "-d", "--name", "web", "--network", "farm", "bb", "sh", "-c", HTTPD)
    busybox.ok("container", "run", "-d", "--name", "peer", "--network", "farm", "bb", "sleep", "300")
    before = busybox.ok("container", "inspect", "web")
    waiter = subprocess.Popen(busybox.argv("container", "wait", "web"), env=busybox.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    while not holds_a_pidfd(waiter.pid):  # it has found web and waits on its process
        time.sleep(0.02)

    item = busybox.ok("container", "rename", "web", "front")
    assert (item["name"], item["id"], item["networks"]) == ("front", before["id"][:12], before["networks"])
    hosts = busybox.exec_out("peer", "cat", "/etc/hosts")
    assert f"{before['networks'][0]['address']}\tfront" in hosts and "\tweb" not in hosts
    assert busybox.exec_out("front", "hostname") == "web\n"  # as in Docker: its hostname stays
    assert busybox.call("container", "inspect", "web")["error"]["code"] == "not_found"
    assert busybox.ok("container", "stop", "--time", "0", "front")["exit_code"] == 137
    out, err = waiter.communicate(timeout=30)
    assert (waiter.returncode, out.strip()) == (0, "137"), err  # the wait that began as 'web' ended cleanly
    events = [(e["action"], e["container"]) for e in busybox.ok("events", "front")]
    assert events[:3] == [("create", "web"), ("start", "web"), ("rename", "front")] and ("die", "front") in events

    assert busybox.call("container", "rename", "front", "peer")["error"]["message"] == (
        "container name 'peer' is already in use")  # fmt: skip
    assert busybox.call("container", "rename", "front", "bad/name")["error"]["code"] == "invalid"
    assert busybox.call("container", "rename", "front", "front")["error"]["message"] == (
        "container 'front' is already called 'front': give it another name")  # fmt: skip

    attached = busybox.argv("container", "run", "--rm", "--name", "job", "bb", "sh", "-c", "sleep 1; exit 3")
    job = subprocess.Popen(attached, env=busybox.env, stderr=subprocess.PIPE, text=True)
    while busybox.call("container", "rename", "job", "job2")["ok"] is False:  # as soon as it is there
        time.sleep(0.05)
    _, err = job.communicate(timeout=30)
    assert job.returncode == 3, err  # its exit recorded and --rm done under the new name
    assert [item["name"] for item in busybox.ok("container", "list", "--all")] == ["front", "peer"]


def test_pause_freezes_every_process_and_stop_or_kill_still_end_it(busybox):
    counter = "trap 'echo bye; exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i > /n; sleep 0.05; done"
    busybox.ok("container", "run", "-d", "--name", "busy", "--stop-timeout", "5", "bb", "sh", "-c", counter)
    pid = busybox.ok("container", "inspect", "busy")["pid"]
    count = Path(f"/proc/{pid}/root/n")
    while not count.exists():
        time.sleep(0.05)

    assert busybox.ok("container", "pause", "busy")["paused"] is True
    frozen_at = count.read_text()
    time.sleep(0.5)
    assert count.read_text() == frozen_at  # not one more step
    assert busybox.cli("container", "list").stdout.splitlines()[1].split()[3] == "paused"
    assert busybox.call("container", "exec", "busy", "true")["error"]["message"] == (
        "container 'busy' is paused: `baleine container unpause busy` first")  # fmt: skip
    assert busybox.call("container", "pause", "busy")["error"]["message"] == "container 'busy' is already paused"
    busybox.ok("container", "commit", "busy", "snapshot")  # froze it itself: leaves it paused
    assert busybox.ok("container", "inspect", "busy")["paused"] is True
    assert busybox.ok("container", "unpause", "busy")["paused"] is False
    while count.read_text() == frozen_at:
        time.sleep(0.05)
    assert busybox.call("container", "unpause", "busy")["error"]["message"] == "container 'busy' is not paused"

    busybox.ok("container", "pause", "busy")
    item = busybox.ok("container", "stop", "busy")  # SIGTERM, then the thaw: its trap runs
    assert (item["exit_code"], busybox.cli("container", "logs", "busy").stdout) == (0, "bye\n")
    actions = [e["action"] for e in busybox.ok("events", "busy") if e["action"] in ("pause", "unpause")]
    assert actions == ["pause", "unpause", "pause"]
    busybox.ok("container", "start", "busy")
    busybox.ok("container", "pause", "busy")
    assert busybox.ok("container", "kill", "busy")["exit_code"] == 137
    assert busybox.call("container", "pause", "busy")["error"]["message"] == (
        "container 'busy' is not running (status: exited)")  # fmt: skip

    busybox.ok("container", "start", "busy")  # what lab.down and a finalize do: kill the cgroup's processes
    busybox.ok("container", "pause", "busy")
    from conftest import CGROUP_PARENT

    from fleet.node import cgroups

    assert cgroups.Cgroup(busybox.ok("container", "inspect", "busy")["id"], parent=CGROUP_PARENT).kill(timeout=20)
    deadline = time.monotonic() + 20  # its zombie is reaped a moment later
    while busybox.ok("container", "inspect", "busy")["status"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert busybox.ok("container", "inspect", "busy")["status"] == "exited"  # the v1 freezer let SIGKILL through


def test_exec_returns_the_exit_code_and_uses_the_containers_env(busybox):
    busybox.ok("container", "run", "-d", "--name", "e", "--env", "GREETING=salut", "--workdir", "/tmp", "bb",
               "sleep", "300")  # fmt: skip
    assert busybox.cli("container", "exec", "e", "sh", "-c", "exit 4").returncode == 4
    assert busybox.exec_out("e", "sh", "-c", "echo $GREETING; pwd") == "salut\n/tmp\n"


def test_exec_user_env_and_workdir_are_for_one_command(busybox):
    busybox.ok("container", "run", "-d", "--name", "x", "--env", "A=1", "--env", "B=2", "bb", "sleep", "300")
    script = "id -u; echo $A$B$C; pwd"
    data = busybox.ok(
        "container", "exec", "-u", "nobody", "-e", "B=3", "-e", "C=4", "-w", "/tmp", "x", "sh", "-c", script
    )
    assert data["stdout"] == "65534\n134\n/tmp\n", data
    assert busybox.exec_out("x", "sh", "-c", script) == "0\n12\n/\n"  # the container's own again
    for args, message in ((("-u", "a:b:c"), "invalid user"), (("-e", "1=x"), "invalid environment"),
                          (("-w", "relative"), "invalid working directory")):  # fmt: skip
        reply = busybox.call("container", "exec", *args, "x", "true")
        assert not reply["ok"] and message in reply["error"]["message"], reply
    done = busybox.cli("container", "exec", "-u", "ghost", "x", "true")
    assert done.returncode == 125 and "unable to find user 'ghost'" in done.stderr
    for detach in ((), ("-d",)):  # an exec changes no file of the container's: no working directory is made
        done = busybox.cli("container", "exec", *detach, "-w", "/nowhere", "x", "pwd")
        message = "working directory /nowhere: no such directory in the container"
        assert (done.returncode, done.stdout) == (126, "") and message in done.stderr, done
    assert busybox.cli("container", "exec", "x", "test", "-e", "/nowhere").returncode == 1


def _process_status(pid):
    """/proc/PID/status as a dict, or None once the process is gone (a zombie counts as there)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return None
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while _process_status(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return _process_status(pid) is None


def test_exec_detach_leaves_the_command_running_and_reaps_it(busybox):
    """pid 1 is sleep, which reaps nothing: a detached command's parent must be ours, outside the container."""
    busybox.ok("container", "run", "-d", "--name", "x", "--env", "WHO=x", "bb", "sleep", "300")
    init = busybox.ok("container", "inspect", "x")["pid"]
    done = busybox.cli("container", "exec", "-d", "-e", "N=1", "x", "sh", "-c", "echo job$N $WHO; exec sleep 300")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # returned: no pipe of ours held open
    started = busybox.ok("container", "exec", "--detach", "-w", "/tmp", "x", "sh", "-c", "pwd; echo $$; sleep 0.3")
    assert started["name"] == "x" and started["pid"]
    short = started["pid"]
    status = _process_status(short)
    assert os.readlink(f"/proc/{short}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")  # inside the container
    assert Path(f"/proc/{short}/cgroup").read_text() == Path(f"/proc/{init}/cgroup").read_text()
    waiter = int(status["PPid"])
    assert os.readlink(f"/proc/{waiter}/ns/pid") != os.readlink(f"/proc/{init}/ns/pid")  # its parent is outside
    sleeper = _process_status(busybox.ok("container", "exec", "-d", "x", "sleep", "299")["pid"])
    assert int(sleeper["SigIgn"], 16) & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGQUIT - 1)) == 0  # not a bg job's
    assert _wait_gone(short) and _wait_gone(waiter)  # ended, reaped, and the shell gone with it
    assert "Z" not in busybox.exec_out("x", "ps", "-o", "stat")  # no zombie under the sleeping pid 1
    lines = busybox.ok("container", "logs", "x")["lines"]
    assert "job1 x" in lines and lines[-2:] == ["/tmp", lines[-1]] and lines[-1].isdigit()
    long_running = [line.split() for line in busybox.exec_out("x", "ps", "-o", "pid,args").splitlines()]
    assert sum(words[1:] == ["sleep", "300"] for words in long_running) == 2  # pid 1 and the first detached one
    assert sum(words[1:] == ["sleep", "299"] for words in long_running) == 1
    busybox.ok("container", "stop", "--time", "1", "x")  # the detached command ends with its container
    busybox.ok("container", "rm", "x")


def test_exec_detach_joins_a_user_namespace_too(busybox):
    busybox.ok("container", "run", "-d", "--name", "u", "--userns", "bb", "sleep", "300")
    init = busybox.ok("container", "inspect", "u")["pid"]
    pid = busybox.ok("container", "exec", "-d", "u", "sleep", "298")["pid"]
    assert (
        os.readlink(f"/proc/{pid}/ns/user") == os.readlink(f"/proc/{init}/ns/user") != os.readlink("/proc/self/ns/user")
    )
    assert _process_status(pid)["Uid"].split()[0] == _process_status(init)["Uid"].split()[0] != "0"  # root inside only


def test_exec_detach_says_why_a_command_could_not_start(busybox):
    busybox.ok("container", "run", "-d", "--name", "x", "bb", "sleep", "300")
    for args, status, message in (
        (("x", "no-such-program"), 127, "no-such-program: executable file not found in the container's PATH"),
        (("-u", "ghost", "x", "true"), 125, "unable to find user 'ghost'"),
        (("-w", "/etc/passwd", "x", "true"), 125, "/etc/passwd"),
    ):
        done = busybox.cli("container", "exec", "-d", *args)
        assert done.returncode == status and message in done.stderr and done.stderr.count("\n") == 1, (args, done)
    reply = busybox.call("container", "exec", "-d", "-t", "x", "true")
    assert not reply["ok"] and "--detach and --tty do not mix" in reply["error"]["message"]
    busybox.ok("container", "stop", "--time", "1", "x")
    reply = busybox.call("container", "exec", "-d", "x", "true")
    assert not reply["ok"] and "is not running" in reply["error"]["message"]


def test_group_add_and_oom_score_adj_for_the_command_and_its_execs(busybox):
    busybox.ok("container", "run", "-d", "--name", "g", "--user", "nobody", "--group-add", "nogroup",
               "--group-add", "29", "--oom-score-adj", "500", "bb", "sleep", "300")  # fmt: skip
    pid = busybox.ok("container", "inspect", "g")["pid"]
    assert Path(f"/proc/{pid}/oom_score_adj").read_text() == "500\n"
    assert busybox.exec_out("g", "id", "-G").split() == ["65534", "29"]  # its own group first
    assert busybox.exec_out("g", "cat", "/proc/self/oom_score_adj") == "500\n"  # an exec is the container's too
    done = busybox.cli("container", "run", "--rm", "--group-add", "no-such-group", "bb", "true")
    assert done.returncode == 125 and "--group-add: unable to find group 'no-such-group'" in done.stderr


def test_user_volume_and_env(busybox, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    script = "id -u; cat /mnt/in.txt; touch /mnt/nope 2>&1 | grep -c Read-only"
    out = busybox.cli("container", "run", "--rm", "--user", "nobody", "--volume", f"{shared}:/mnt:ro", "bb",
                      "sh", "-c", script).stdout  # fmt: skip
    assert out.split("\n")[:3] == ["65534", "from host", "1"]
    busybox.cli("container", "run", "--rm", "--volume", f"{shared}:/mnt", "bb", "sh", "-c", "echo back > /mnt/o")
    assert (shared / "o").read_text() == "back\n"


def test_logs_tail_and_follow(busybox):
    busybox.ok("container", "run", "-d", "--name", "talker", "bb", "sh", "-c", "for i in 1 2 3 4; do echo line$i; done")
    time.sleep(0.5)
    assert busybox.cli("container", "logs", "--tail", "2", "talker").stdout == "line3\nline4\n"
    assert busybox.ok("container", "logs", "talker")["lines"] == ["line1", "line2", "line3", "line4"]
    busybox.ok("container", "run", "-d", "--name", "slow", "bb", "sh", "-c", "sleep 0.5; echo late")
    assert busybox.cli("container", "logs", "--follow", "slow", timeout=20).stdout.endswith("late\n")


def test_list_quiet_gives_names_for_scripts(busybox):
    busybox.ok("container", "create", "--name", "idle", "--label", "role=batch", "bb", "true")
    busybox.ok("container", "run", "-d", "--name", "busy", "-l", "role=web", "-l", "com.example/team=ops", "bb",
               "sleep", "300")  # fmt: skip
    assert busybox.cli("container", "list", "-q").stdout == "busy\n"
    assert busybox.cli("container", "list", "-aq").stdout == "idle\nbusy\n"
    assert busybox.ok("container", "list", "-aq") == ["idle", "busy"]
    assert busybox.ok("container", "list", "-q", "--filter", "status=created") == ["idle"]  # no --all needed
    assert busybox.ok("container", "list", "-aq", "-f", "name=b*", "-f", "image=bb") == ["busy"]
    assert busybox.ok("container", "list", "-aq", "-f", "image=other") == []
    assert busybox.ok("container", "list", "-aq", "-f", "label=role") == ["idle", "busy"]
    assert busybox.ok("container", "list", "-aq", "-f", "label=role=web") == ["busy"]
    assert busybox.ok("container", "list")[0]["labels"] == {"role": "web", "com.example/team": "ops"}
    assert busybox.ok("container", "inspect", "idle")["config"]["labels"] == {"role": "batch"}


def test_list_size_shows_the_disk_space_each_takes(busybox):
    busybox.ok("container", "create", "--name", "idle", "bb", "true")
    script = "dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null && sync && seq 1 50000 && exec sleep 300"
    busybox.ok("container", "run", "-d", "--name", "filler", "bb", "sh", "-c", script)
    while busybox.ok("container", "logs", "--tail", "1", "filler")["lines"] != ["50000"]:
        time.sleep(0.05)
    items = {item["name"]: item for item in busybox.ok("container", "list", "-as")}
    assert items["filler"]["disk_bytes"] >= items["idle"]["disk_bytes"] + (8 << 20)  # the file it wrote
    assert items["filler"]["log_bytes"] >= 288_894 and items["idle"]["log_bytes"] == 0  # seq's output
    lines = busybox.cli("container", "list", "-as").stdout.splitlines()
    assert (
        lines[0].split()[-3:] == ["DISK", "LOGS", "COMMAND"] and "DISK" not in busybox.cli("container", "list").stdout
    )
    assert "disk_bytes" not in busybox.ok("container", "list", "-a")[0]


def test_a_follower_ends_quietly_when_its_container_is_removed(busybox):
    import subprocess

    busybox.ok(
        "container", "run", "-d", "--name", "ticker", "bb", "sh", "-c", "while true; do echo tick; sleep 0.1; done"
    )
    follower = subprocess.Popen(busybox.argv("container", "logs", "-f", "ticker"), env=busybox.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert follower.stdout.readline() == "tick\n"
    busybox.ok("container", "rm", "--force", "ticker")
    _, err = follower.communicate(timeout=20)
    assert (follower.returncode, err) == (0, ""), err


def test_the_tail_of_a_big_log_costs_little_memory(busybox):
    """64 MB of output: `logs --tail` reads the end of the file, not all of it into memory."""
    import subprocess

    line = "0123456789" * 4
    busybox.ok("container", "run", "-d", "--name", "chatty", "bb", "sh", "-c", f"yes {line} | head -c 64000000")
    deadline = time.monotonic() + 60
    while busybox.ok("container", "inspect", "chatty")["status"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.1)
    # A child's peak memory counts what it had before exec, when forked from this big pytest
    # process: a small Python forks it instead, and reports its peak (KiB) on stderr.
    measure = (
        "import os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.execv(sys.argv[1], sys.argv[1:])\n"
        "_, status, usage = os.wait4(pid, 0)\n"
        "print(usage.ru_maxrss, file=sys.stderr)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    argv = [sys.executable, "-I", "-S", "-c", measure, *busybox.argv("container", "logs", "--tail", "2", "chatty")]
    done = subprocess.run(argv, env=busybox.env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    peak = int(done.stderr)
    assert peak < 48 * 1024, f"{peak} KiB"  # the whole log would take over 150 MB
    last = 64000000 % (len(line) + 1)  # head cut the last line short
    assert done.stdout == f"{line}\n{line[:last]}".encode()


def test_ten_parallel_runs_get_ten_distinct_addresses(busybox):
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())

    def start(index):
        return busybox.ok("container", "run", "-d", "--name", f"p{index}", "--network", "farm", "bb", "sleep", "300")

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        started = list(pool.map(start, range(10)))
    addresses = [item["networks"][0]["address"] for item in started]
    assert len(set(addresses)) == 10
    listed = busybox.ok("container", "list")
    assert len(listed) == 10 and all(item["status"] == "running" for item in listed)
    assert busybox.ok("network", "list")[0]["containers"] == 10


def test_a_working_directory_blocked_by_a_file_says_so(busybox):
    for workdir in ("/etc/passwd", "/etc/passwd/below"):
        done = busybox.cli("container", "run", "--rm", "--workdir", workdir, "bb", "true")
        assert (done.returncode, done.stderr) == (
            125, f"baleine: error: working directory {workdir}: a file of the image is in the way\n"), done  # fmt: skip
    done = busybox.cli("container", "run", "--rm", "--workdir", "/srv/new", "bb", "pwd")
    assert (done.returncode, done.stdout) == (0, "/srv/new\n"), done  # made when missing
