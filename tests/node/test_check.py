"""`baleine check` for real: dead containers recorded, restart policies, reboots, cron, the waiter's size."""

import concurrent.futures
import contextlib
import os
import signal
import time

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration


@pytest.fixture
def quick(busybox):
    """Back-off starts at 2 s instead of 5 s (exits are recorded to the second)."""
    busybox.env["BALEINE_RESTART_BACKOFF"] = "2"
    return busybox


def kill_main(node, name):
    pid = node.ok("container", "inspect", name)["pid"]
    os.kill(pid, signal.SIGKILL)
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.01)


def test_kill_9_is_recorded_and_on_failure_restarts_with_the_same_address(quick):
    quick.ok("network", "create", "farm", "--subnet", free_subnet())
    quick.ok("container", "run", "-d", "--name", "svc", "--network", "farm", "--restart", "on-failure", "bb",
             "sleep", "300")  # fmt: skip
    address = quick.ok("container", "inspect", "svc")["networks"][0]["address"]
    kill_main(quick, "svc")
    report = quick.ok("check")
    assert report["exited"] == [{"name": "svc", "exit_code": "137", "reason": "killed by signal 9"}]
    assert report["restarted"] == [{"name": "svc", "attempt": 1}]
    item = quick.ok("container", "inspect", "svc")
    assert (item["status"], item["restarts"], item["networks"][0]["address"]) == ("running", 1, address)
    assert quick.exec_out("svc", "sh", "-c", "ip -o -4 addr show eth0 | grep -c " + address) == "1\n"


def test_kill_delivers_a_signal_and_sigkill_is_a_person_s_stop(quick):
    reload = "trap 'echo reloaded' HUP; echo ready; while true; do sleep 0.1; done"  # as nginx: HUP reloads
    quick.ok("container", "run", "-d", "--name", "svc", "--restart", "always", "bb", "sh", "-c", reload)
    quick.wait_for_log("svc", "ready")
    assert quick.ok("container", "kill", "--signal", "hup", "svc")["status"] == "running"
    quick.wait_for_log("svc", "reloaded")
    assert quick.cli("container", "logs", "svc").stdout == "ready\nreloaded\n"
    assert quick.ok("check")["restarted"] == []  # HUP ended nothing

    item = quick.ok("container", "kill", "svc")  # SIGKILL: gone at once, recorded, left alone by its policy
    assert (item["status"], item["exit_code"], item["reason"]) == ("exited", 137, "killed by signal 9")
    assert quick.ok("check")["restarted"] == []
    kills = [(e["action"], e.get("signal")) for e in quick.ok("events", "svc") if e["action"] == "kill"]
    assert kills == [("kill", "SIGHUP"), ("kill", "SIGKILL")]
    refused = quick.cli("container", "kill", "svc")
    assert refused.returncode != 0
    assert "container 'svc' is not running (status: exited): nothing to signal" in refused.stderr

    quick.ok("container", "start", "svc")  # a start forgets the person's stop: the policy holds again
    kill_main(quick, "svc")
    assert [item["name"] for item in quick.ok("check")["restarted"]] == ["svc"]


def test_update_changes_the_restart_policy_the_next_pass_follows(quick):
    quick.ok("container", "run", "-d", "--name", "svc", "bb", "sleep", "300")
    kill_main(quick, "svc")
    assert quick.ok("check")["restarted"] == []  # no policy yet
    quick.ok("container", "update", "svc", "--restart", "on-failure:2")
    assert quick.ok("container", "inspect", "svc")["config"]["restart"] == {"policy": "on-failure", "max": 2}
    assert quick.ok("check")["restarted"] == [{"name": "svc", "attempt": 1}]
    reply = quick.call("container", "update", "svc", "--restart", "sometimes")
    assert reply["error"]["message"].startswith("invalid --restart 'sometimes': use no, on-failure[:N]")


def test_policy_no_records_137_and_leaves_it(quick):
    quick.ok("container", "run", "-d", "--name", "plain", "bb", "sleep", "300")
    kill_main(quick, "plain")
    report = quick.ok("check")
    assert report["restarted"] == [] and report["exited"][0]["exit_code"] == "137"
    item = quick.ok("container", "inspect", "plain")
    assert (item["exit_code"], item["reason"]) == (137, "killed by signal 9")


def test_a_persons_stop_is_respected(quick):
    for policy in ("always", "unless-stopped"):
        quick.ok("container", "run", "-d", "--name", policy, "--restart", policy, "bb", "sleep", "300")
        quick.ok("container", "stop", "--time", "0", policy)
    assert quick.ok("check")["restarted"] == []
    quick.ok("container", "start", "always")  # a person's start clears it
    kill_main(quick, "always")
    assert [item["name"] for item in quick.ok("check")["restarted"]] == ["always"]


def wait_for_restart(node, name, attempt, limit):
    """Check until the restart comes; returns the back-off it announced first."""
    announced = None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        report = node.ok("check")
        if report["restarted"]:
            assert report["restarted"] == [{"name": name, "attempt": attempt}]
            return announced
        announced = announced or report["waiting"][0]["due_in"]
        time.sleep(0.25)
    raise AssertionError(f"{name} was not restarted within {limit} s")


def test_backoff_doubles_between_restarts(quick):
    quick.ok("container", "run", "-d", "--name", "flaky", "--restart", "always", "bb", "sleep", "300")
    kill_main(quick, "flaky")
    assert wait_for_restart(quick, "flaky", 1, limit=1) is None  # the first restart comes at once
    kill_main(quick, "flaky")
    second = wait_for_restart(quick, "flaky", 2, limit=4)
    kill_main(quick, "flaky")
    third = wait_for_restart(quick, "flaky", 3, limit=6)
    # 2 s, then 4 s; exits are recorded to the second, so up to 1 s of each has gone by (plus the pass's own time)
    assert 0.9 <= second <= 2 and 2.9 <= third <= 4


def stamp(seconds):
    from fleet.node import state

    return time.strftime(state.STAMP, time.gmtime(seconds))


def test_a_container_that_ran_steadily_is_restarted_at_once(quick, monkeypatch):
    """Many restarts long ago do not delay the next one: the last run lasted an hour."""
    from fleet.node import state

    quick.ok("container", "run", "-d", "--name", "steady", "--restart", "always", "bb", "sleep", "300")
    steady = quick.ok("container", "inspect", "steady")["id"]
    monkeypatch.setenv("BALEINE_ROOT", str(quick.root))
    with state.locked():  # as if it had been restarted 6 times, the last an hour ago
        state.CONTAINERS.update(steady, restarts="6", started=stamp(time.time() - 3600))
    kill_main(quick, "steady")
    assert quick.ok("check")["restarted"] == [{"name": "steady", "attempt": 7}]
    with state.locked():  # a run of a second after 7 restarts: a crash loop, 2 s * 2**6 later
        state.CONTAINERS.update(steady, started=stamp(time.time() - 1))
    kill_main(quick, "steady")
    report = quick.ok("check")
    assert report["restarted"] == [] and 120 < report["waiting"][0]["due_in"] <= 128


def test_one_pass_at_a_time(quick):
    """A pass waits for the one before it; past BALEINE_CHECK_WAIT it gives way, saying so."""
    import fcntl
    import threading

    quick.ok("container", "run", "-d", "--name", "svc", "--restart", "always", "bb", "sleep", "300")
    kill_main(quick, "svc")
    quick.env["BALEINE_CHECK_WAIT"] = "0.5"
    with open(quick.root / "check.lock", "w") as held:  # another pass, as pid 4242
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        done = quick.cli("check")
        assert (done.returncode, done.stdout) == (
            0, "skipped: another check pass (pid 4242) was still running after 0.5 s\n"
        )  # fmt: skip
        assert quick.ok("container", "inspect", "svc")["restarts"] == 0  # the skipped pass restarted nothing
        unwritable = quick.cli("check", "--prom", "/nonexistent/x.prom")  # said even when the pass gives way
        assert (unwritable.returncode, unwritable.stderr) == (
            2, "baleine: error: cannot write /nonexistent/x.prom: no such directory /nonexistent; "
               "the pass itself was skipped: another check pass (pid 4242) was still running after 0.5 s\n"
        )  # fmt: skip
        quick.env["BALEINE_CHECK_WAIT"] = "20"
        threading.Timer(0.5, held.close).start()  # the other pass ends: this one then runs
        report = quick.ok("check")
    assert "skipped" not in report and report["restarted"] == [{"name": "svc", "attempt": 1}]


def test_on_failure_gives_up_after_n_and_ignores_success(quick):
    quick.ok("container", "run", "-d", "--name", "once", "--restart", "on-failure:1", "bb", "sleep", "300")
    kill_main(quick, "once")
    assert quick.ok("check")["restarted"] == [{"name": "once", "attempt": 1}]
    kill_main(quick, "once")
    assert quick.ok("check")["restarted"] == [] and quick.ok("check")["waiting"] == []
    quick.ok("container", "run", "-d", "--name", "fine", "--restart", "on-failure", "bb", "true")
    time.sleep(0.5)
    assert quick.ok("check")["restarted"] == []
    assert quick.ok("container", "inspect", "fine")["exit_code"] == 0


def test_oom_kill_is_reported_as_oom(quick):
    quick.ok("container", "run", "-d", "--name", "hog", "--memory", "32M", "bb", "sh", "-c",
             "x=a; while true; do x=$x$x; done")  # fmt: skip
    deadline = time.monotonic() + 20
    report = quick.ok("check")
    while not report["exited"] and time.monotonic() < deadline:
        time.sleep(0.2)
        report = quick.ok("check")
    assert report["exited"] == [{"name": "hog", "exit_code": "137", "reason": "oom-killed"}]


def test_after_a_reboot_always_containers_come_back(quick):
    quick.ok("check")  # records this boot
    for policy in ("always", "on-failure"):
        quick.ok("container", "run", "-d", "--name", policy, "--restart", policy, "bb", "sleep", "300")
    for name in ("always", "on-failure"):
        kill_main(quick, name)  # what a reboot does to every process
    (quick.root / "boot_id").write_text("00000000-0000-0000-0000-000000000000\n")
    report = quick.ok("check")
    assert report["rebooted"] and [item["name"] for item in report["restarted"]] == ["always"]
    assert quick.ok("container", "inspect", "on-failure")["reason"] == "host rebooted"


def test_a_run_rm_whose_run_was_killed_is_removed_by_check_once_it_ends(busybox):
    """As Docker's --rm when its client goes: the container runs on, and no one starts it again."""
    import subprocess

    runner = subprocess.Popen(busybox.argv("container", "run", "--rm", "--name", "once", "bb", "sh", "-c",
                                           "while [ ! -e /go ]; do sleep 0.05; done; exit 3"),
                              env=busybox.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while [item["status"] for item in busybox.ok("container", "list", "--all")] != ["running"]:
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.05)
    finally:
        runner.kill()
        runner.wait()
    assert busybox.ok("check")["removed"] == []  # it still runs: it keeps running
    busybox.ok("container", "exec", "once", "touch", "/go")
    while busybox.ok("container", "list", "--all")[0]["status"] == "running":
        time.sleep(0.05)
    refused = busybox.call("container", "start", "once")
    assert refused["exit"] == 1 and refused["error"]["message"] == (
        "container 'once' was run with --rm: it is removed when it ends, not started again; "
        "remove it now with `baleine container rm once`")  # fmt: skip
    assert busybox.ok("check")["removed"] == [{"name": "once"}]
    assert busybox.ok("container", "list", "--all") == [] and os.listdir(busybox.root / "containers") == []


def test_a_run_rm_ends_in_one_write_with_its_die_and_rm_events(busybox):
    done = busybox.cli("container", "run", "--rm", "--name", "brief", "bb", "sh", "-c", "exit 3")
    assert done.returncode == 3, done.stderr
    events = busybox.ok("events", "brief")
    assert [event["action"] for event in events] == ["create", "start", "die", "rm"]
    assert events[2]["exit_code"] == 3
    assert busybox.ok("container", "list", "--all") == [] and os.listdir(busybox.root / "containers") == []


def test_a_run_rm_whose_disk_is_held_at_its_end_says_so_and_check_removes_it_later(busybox):
    """A `container cp` holding the disk when the command ends: the row cannot go with the exit."""
    import fcntl
    import subprocess

    runner = subprocess.Popen(busybox.argv("container", "run", "--rm", "--name", "held", "bb", "sh", "-c",
                                           "while [ ! -e /go ]; do sleep 0.05; done"),
                              env=busybox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while [item["status"] for item in busybox.ok("container", "list", "--all")] != ["running"]:
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.05)
    disk = busybox.root / "containers" / busybox.ok("container", "inspect", "held")["id"] / "disk.ext4"
    held = os.open(disk, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_SH)  # as `container commit` holds it
        busybox.ok("container", "exec", "held", "touch", "/go")
        _, stderr = runner.communicate(timeout=60)
        assert runner.returncode == 1 and "is busy: a `container cp` or `container commit`" in stderr, stderr
        assert busybox.ok("container", "inspect", "held")["status"] == "exited"
    finally:
        os.close(held)
    assert busybox.ok("check")["removed"] == [{"name": "held"}]


def test_rm_and_a_restart_policy_are_one_or_the_other(busybox):
    refused = busybox.cli("container", "run", "--rm", "--restart", "always", "bb", "true")
    assert refused.returncode == 2 and refused.stderr == (
        "baleine: error: --rm and --restart always: a container removed when it ends is never restarted; "
        "give one of them\n")  # fmt: skip
    assert busybox.cli("container", "run", "--rm", "--restart", "no", "bb", "true").returncode == 0
    assert busybox.ok("container", "list", "--all") == []


def test_check_alongside_ten_runs_and_removals(busybox):
    stop = time.monotonic() + 30

    def checking():
        passes = 0
        while time.monotonic() < stop and passes < 40:
            busybox.ok("check")
            passes += 1
        return passes

    def churn(index):
        busybox.ok("container", "run", "-d", "--name", f"c{index}", "bb", "sleep", "300")
        busybox.ok("container", "rm", "--force", f"c{index}")
        busybox.ok("container", "run", "-d", "--name", f"c{index}", "bb", "sleep", "300")

    with concurrent.futures.ThreadPoolExecutor(max_workers=11) as pool:
        checker = pool.submit(checking)
        list(pool.map(churn, range(10)))
        stop = time.monotonic()
        assert checker.result() > 0
    listed = busybox.ok("container", "list", "--all")
    assert sorted(item["name"] for item in listed) == sorted(f"c{i}" for i in range(10))
    assert all(item["status"] == "running" for item in listed)


def test_the_waiter_costs_under_one_mib(busybox):
    busybox.ok("container", "run", "-d", "--name", "w", "bb", "sleep", "300")
    pid = busybox.ok("container", "inspect", "w")["pid"]
    with open(f"/proc/{pid}/stat", "rb") as handle:
        waiter = int(handle.read().rsplit(b")", 1)[1].split()[1])
    with open(f"/proc/{waiter}/smaps_rollup") as handle:
        pss = next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
    with open(f"/proc/{waiter}/comm") as handle:
        assert handle.read().strip() in ("sh", "dash", "bash", "busybox")
    assert pss <= 1024, f"the waiter takes {pss} kB"


def test_cron_install_status_remove(node, tmp_path):
    node.env["BALEINE_CRON_FILE"] = str(tmp_path / "cron.d-baleine")
    first = node.ok("cron", "install", "--every", "5")
    assert first["changed"] and not node.ok("cron", "install", "--every", "5")["changed"]
    line = (tmp_path / "cron.d-baleine").read_text().splitlines()[-1]
    assert line.startswith("*/5 * * * * root BALEINE_ROOT=")
    assert str(node.root) in line and str(node.zipapp) in line and line.split(">>")[0].rstrip().endswith(" check")
    assert node.ok("cron", "status") == {"file": str(tmp_path / "cron.d-baleine"), "installed": True, "every": 5,
                                         "entry": line}  # fmt: skip
    reply = node.call("cron", "install", "--every", "90")
    assert not reply["ok"] and "1 to 59" in reply["error"]["message"]
    assert node.ok("cron", "remove")["changed"] and not node.ok("cron", "remove")["changed"]
    assert node.ok("cron", "status")["installed"] is False


def test_health_goes_starting_healthy_unhealthy_and_restarts(quick):
    probe = "test ! -e /tmp/sick"
    quick.ok("container", "run", "-d", "--name", "hc", "--restart", "always", "--health-cmd", probe,
             "--health-interval", "0", "--health-retries", "2", "bb", "sleep", "300")  # fmt: skip
    assert quick.ok("container", "inspect", "hc")["health"] == "starting"
    quick.ok("check")
    assert quick.ok("container", "inspect", "hc")["health"] == "healthy"
    assert "(healthy)" in quick.cli("container", "list").stdout
    quick.exec_out("hc", "touch", "/tmp/sick")
    first = quick.ok("check")
    assert first["unhealthy"] == [] and quick.ok("container", "inspect", "hc")["health"] == "healthy"  # 1 of 2
    second = quick.ok("check")
    assert second["unhealthy"] == [{"name": "hc", "failures": 2}]
    assert second["restarted"] == [{"name": "hc", "attempt": 1}]
    item = quick.ok("container", "inspect", "hc")
    assert (item["status"], item["health"], item["restarts"]) == ("running", "starting", 1)


def test_a_slow_starter_is_not_restarted_within_its_start_period(quick):
    probe = ("--health-cmd", "test -e /tmp/up", "--health-interval", "0", "--health-retries", "1")
    quick.ok("container", "run", "-d", "--name", "slow", "--restart", "always", *probe, "--health-start-period", "300",
             "bb", "sleep", "300")  # fmt: skip
    for _ in range(2):
        report = quick.ok("check")
        assert report["unhealthy"] == [] and report["restarted"] == []
        item = quick.ok("container", "inspect", "slow")
        assert (item["health"], item["restarts"]) == ("starting", 0)
    quick.exec_out("slow", "touch", "/tmp/up")
    quick.ok("check")
    assert quick.ok("container", "inspect", "slow")["health"] == "healthy"
    assert quick.ok("container", "inspect", "slow")["config"]["health"]["start_period"] == 300.0


def test_a_hanging_probe_times_out(quick):
    quick.ok("container", "run", "-d", "--name", "slow", "--health-cmd", "sleep 30", "--health-timeout", "0.5",
             "--health-interval", "0", "--health-retries", "1", "bb", "sleep", "300")  # fmt: skip
    started = time.monotonic()
    report = quick.ok("check")
    assert report["unhealthy"] == [{"name": "slow", "failures": 1}] and time.monotonic() - started < 10
    assert quick.ok("container", "inspect", "slow")["status"] == "running"  # policy no: reported, not restarted
    processes = quick.exec_out("slow", "ps", "-o", "comm")
    assert "sleep" in processes and processes.count("sleep") == 1  # the probe's sleep was killed


def test_health_options_need_a_command(busybox):
    reply = busybox.call("container", "create", "--health-retries", "3", "bb")
    assert (
        not reply["ok"]
        and "need --health-cmd, --health-http, --health-https or --health-tcp" in (reply["error"]["message"])
    )


@contextlib.contextmanager
def serving(handler, tls=None):
    """An HTTP server on 127.0.0.1 of this (isolated) namespace, over TLS with tls's certificate; yields its port."""
    import ssl
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls["certificate"], tls["key"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_https_probe_speaks_tls_and_takes_any_certificate(quick, tmp_path):
    """A server that speaks only TLS, with a certificate nobody trusts: healthy. Plain HTTP there is not."""
    from http.server import BaseHTTPRequestHandler

    from registry import self_signed

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ready" else 404)
            self.end_headers()

        def log_message(self, *_):
            pass

    def probed(name, *probe):
        quick.ok("container", "run", "-d", "--name", name, "--network", "host", *probe, "bb", "sleep", "300")
        return quick.ok("container", "healthcheck", name)

    with serving(Ready, tls=self_signed(tmp_path, "127.0.0.1")) as port:
        tls = probed("tls", "--health-https", "/ready", "--health-port", port)
        assert tls == {"name": "tls", "healthy": True, "said": "HTTP/1.0 200 OK"}
        assert quick.ok("container", "inspect", "tls")["config"]["health"]["tls"] is True
        assert not probed("plain", "--health-http", "/ready", "--health-port", port)["healthy"]
        missing = probed("missing", "--health-https", "/nope", "--health-port", port)
        assert missing == {"name": "missing", "healthy": False, "said": "HTTP/1.0 404 Not Found"}
    with serving(Ready) as port:  # TLS asked of a server that does not speak it
        said = probed("mismatch", "--health-https", "/ready", "--health-port", port)
        assert not said["healthy"] and said["said"].startswith(f"no TLS from 127.0.0.1:{port}: "), said


def test_http_and_tcp_probes_need_nothing_in_the_image(quick):
    """baleine asks from the container's network namespace: no shell, wget or curl inside (removed here)."""
    serve = ("mkdir /www && echo ok > /www/ok && rm -f /bin/sh /bin/wget /usr/bin/wget /bin/nc /usr/bin/nc && "
             "exec /bin/busybox httpd -f -p 127.0.0.1:8080 -h /www")  # fmt: skip
    probe = ("--health-http", "/ok", "--health-port", "8080", "--health-interval", "0", "--health-retries", "1")
    quick.ok("container", "run", "-d", "--name", "web", "--restart", "always", *probe, "bb", "sh", "-c", serve)
    for _ in range(50):  # until httpd listens
        now = quick.call("container", "healthcheck", "web")
        if now["ok"] and now["data"]["healthy"]:
            break
        time.sleep(0.1)
    assert now["data"] == {"name": "web", "healthy": True, "said": "HTTP/1.1 200 OK"}, now
    gone = quick.ok("container", "exec", "web", "/bin/busybox", "which", "sh", "wget", "curl", "nc")
    assert (gone["exit_code"], gone["stdout"]) == (1, ""), gone  # none of them in there
    assert quick.ok("container", "inspect", "web")["health"] == "starting"  # healthcheck records nothing
    quick.ok("check")
    assert quick.ok("container", "inspect", "web")["health"] == "healthy"
    quick.ok("container", "update", "web", "--restart", "no")
    quick.exec_out("web", "/bin/busybox", "rm", "/www/ok")
    done = quick.cli("container", "healthcheck", "web")
    assert done.returncode == 1 and done.stdout == "unhealthy: HTTP/1.1 404 Not Found\n", done
    report = quick.ok("check")
    assert report["unhealthy"] == [{"name": "web", "failures": 1}] and report["restarted"] == []
    quick.ok("container", "run", "-d", "--name", "deaf", "--health-http", "/", "--health-port", "9", "bb",
             "sleep", "300")  # fmt: skip
    deaf = quick.ok("container", "healthcheck", "deaf")
    assert deaf == {"name": "deaf", "healthy": False, "said": "cannot connect to 127.0.0.1:9: Connection refused"}
    # TCP: a connection is enough (a database, a cache).
    quick.ok("container", "run", "-d", "--name", "cache", "--health-tcp", "7000", "bb", "httpd", "-f", "-p", "7000")
    for _ in range(50):
        cache = quick.ok("container", "healthcheck", "cache")
        if cache["healthy"]:
            break
        time.sleep(0.1)
    assert cache == {"name": "cache", "healthy": True, "said": "connected to 127.0.0.1:7000"}
    quick.ok("container", "run", "-d", "--name", "closed", "--health-tcp", "7001", "bb", "sleep", "300")
    assert (
        quick.ok("container", "healthcheck", "closed")["said"] == "cannot connect to 127.0.0.1:7001: Connection refused"
    )
    quick.ok("container", "run", "-d", "--name", "plain", "bb", "sleep", "300")
    assert quick.call("container", "healthcheck", "plain")["error"]["message"] == (
        "container 'plain' has no health check: give --health-cmd, --health-http, --health-https or --health-tcp "
        "when creating it"
    )


def test_check_rotates_each_log_past_its_size(busybox):
    chatter = 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; exec sleep 300'
    busybox.ok("container", "run", "-d", "--name", "chatty", "--log-size", "64K", "bb", "sh", "-c", chatter)
    busybox.ok("container", "run", "-d", "--name", "default", "bb", "sh", "-c", chatter)  # 10M: left whole
    busybox.ok("container", "run", "-d", "--name", "stuck", "--log-size", "64K", "bb", "sh", "-c", chatter)
    stuck = busybox.ok("container", "inspect", "stuck")["directory"]
    for name in ("chatty", "default", "stuck"):
        while busybox.ok("container", "logs", "--tail", "1", name)["lines"] != ["line 19999"]:
            time.sleep(0.05)
    os.mkdir(f"{stuck}/log.1")  # its older part cannot take that name
    (busybox.root / "check.log").write_text("an old pass\n" * 100_000)  # 1.2 MB: past check.log's own size
    old = '{"time":"2026-01-01T00:00:00Z","action":"create","container":"old","id":"000000000000","by":"x"}\n'
    with open(busybox.root / "events.log", "a") as history:
        history.write(old * 12_000)  # 1.2 MB of events
    reply = busybox.call("check")
    report = reply["data"]
    assert [item["name"] for item in report["rotated"]] == ["chatty", "check.log", "events.log"]
    assert reply["exit"] == 1
    assert os.path.getsize(busybox.root / "events.log") < 65536 and (busybox.root / "events.log.1").exists()
    assert len(busybox.ok("events", "old")) == 12_000  # read across both parts, none lost at the cut
    assert report["rotation_failed"] == [{"name": "stuck", "error": f"{stuck}/log.1: Is a directory"}]
    assert not [name for name in os.listdir(stuck) if name.endswith(".tmp")]  # no temporary file left
    directory = busybox.ok("container", "inspect", "chatty")["directory"]
    assert os.path.getsize(f"{directory}/log") < 65536 < os.path.getsize(f"{directory}/log.1")
    assert busybox.ok("container", "logs", "--tail", "2", "chatty")["lines"] == ["line 19998", "line 19999"]
    assert busybox.ok("container", "logs", "chatty")["lines"] == [f"line {n}" for n in range(20000)]
    assert os.path.getsize(busybox.root / "check.log") < 65536 and (busybox.root / "check.log.1").exists()
    assert busybox.ok("container", "inspect", "chatty")["config"]["log_size"] == 65536
    assert busybox.ok("container", "inspect", "default")["config"]["log_size"] == 10 << 20
    os.rmdir(f"{stuck}/log.1")
    assert [item["name"] for item in busybox.ok("check")["rotated"]] == ["stuck"]
    assert busybox.ok("check")["rotated"] == []  # all under their size now
    never = busybox.ok("container", "create", "--log-size", "0", "bb")["name"]
    assert busybox.ok("container", "inspect", never)["config"]["log_size"] == 0


def test_the_pass_report_in_words():
    from fleet.node import handlers

    report = {"rebooted": False, "repaired": [], "exited": [], "removed": [{"name": "once"}], "restarted": [],
              "waiting": [], "failed": [], "unhealthy": [], "rotated": [{"name": "chatty", "bytes": 1 << 20}],
              "rotation_failed": [{"name": "full", "error": "No space left on device: /x/log.1"}]}  # fmt: skip
    assert handlers._check_text(report).splitlines() == [
        "removed: once (run with --rm, its run is gone)",
        "log rotated: chatty (1M moved to log.1)",
        "log rotation failed: full: No space left on device: /x/log.1",
    ]


@pytest.mark.parametrize(
    ("size", "free", "low"),
    [(2 << 40, 100 << 30, False), (2 << 40, 4 << 30, True), (20 << 30, 3 << 30, False), (20 << 30, 1 << 30, True)],
)
def test_low_space_is_a_tenth_of_a_small_disk_and_5_gib_of_a_big_one(monkeypatch, size, free, low):
    import os as real_os

    from fleet.node import check

    blocks = real_os.statvfs_result((4096, 4096, size // 4096, free // 4096, free // 4096, 0, 0, 0, 0, 255, 0))
    monkeypatch.setattr(check.os, "statvfs", lambda _path: blocks)
    report = {}
    check._look_at_space(report)
    assert report["space"] == {"free": free, "size": size} and ("low_space" in report) == low


def test_a_prom_file_that_cannot_be_written_is_named_and_the_pass_still_runs(quick, tmp_path):
    """The textfile's directory gone (unmounted, say) must not stop restarts: they matter more than metrics."""
    folder = tmp_path / "folder"
    folder.mkdir()
    for index, (prom, why) in enumerate(
        [
            (tmp_path / "none" / "x.prom", f"cannot write {tmp_path}/none/x.prom: no such directory {tmp_path}/none"),
            (folder, f"cannot write {folder}: it is a directory; give a file name, such as {folder}/baleine.prom"),
            ("", "invalid --prom '': give the textfile's path, such as /var/lib/node_exporter/baleine.prom"),
        ]
    ):
        name = f"svc{index}"  # one each: a second restart of one container would wait for its back-off
        quick.ok("container", "run", "-d", "--name", name, "--restart", "always", "bb", "sleep", "300")
        kill_main(quick, name)
        done = quick.cli("check", "--prom", str(prom))
        assert (done.returncode, done.stderr) == (2, f"baleine: error: {why}; the pass itself ran\n"), done
        item = quick.ok("container", "inspect", name)
        assert (item["status"], item["restarts"]) == ("running", 1)
    assert os.listdir(folder) == [] and not (tmp_path / "none").exists()
