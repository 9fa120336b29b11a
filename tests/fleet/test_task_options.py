"""Bad values given to the invoke tasks: one line naming the value, exit 2, and no host touched.

The inventory's hosts point at a closed loopback port: a task that reached
for a host would print its "connection refused" rows instead of the error.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
INVENTORY = """
[defaults]
port = 1
connect_timeout = 2
[hosts.node1]
address = "127.0.0.1"
[hosts.node2]
address = "127.0.0.1"
"""


@pytest.fixture
def run_invoke(tmp_path):
    (tmp_path / "hosts.toml").write_text(INVENTORY)
    (tmp_path / "tmp").mkdir()  # what a task leaves in its temporary directory shows here
    env = dict(os.environ, BALEINE_INVENTORY=str(tmp_path / "hosts.toml"), TMPDIR=str(tmp_path / "tmp"))

    def run(*args):
        return subprocess.run([INVOKE, "-r", str(REPO), *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    return run


def refused(done, message):
    assert (done.returncode, done.stdout) == (2, ""), done.stdout + done.stderr
    assert done.stderr.splitlines() == [message]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ps", "--parallel", "abc"], "error: invalid --parallel 'abc': use a whole number"),
        (["ps", "--parallel", "1e20"], "error: invalid --parallel '1e20': use a whole number"),
        (["ps", "--timeout", "2.5"], "error: invalid --timeout '2.5': use a whole number"),
        (["deploy", "--lock-wait", "soon"], "error: invalid --lock-wait 'soon': use a whole number"),
        (
            ["container.logs", "web", "--hosts", "node1", "--tail", "all"],
            "error: invalid --tail 'all': use a whole number",
        ),
        (["lab.up", "--nodes", "three"], "error: invalid --nodes 'three': use a whole number"),
    ],
)
def test_a_number_that_is_not_one_is_a_one_line_error(run_invoke, args, message):
    refused(run_invoke(*args), message)


def test_numbers_beyond_what_sockets_and_sleeps_take_are_refused(run_invoke):
    refused(run_invoke("ps", "--timeout", "99999999999999999999"),
            "error: invalid --timeout 99999999999999999999: use a number of seconds above 0, "
            "at most 31622400 (a year)")  # fmt: skip
    refused(run_invoke("container.logs", "web", "--hosts", "node1", "--tail", "-5"),
            "error: invalid --tail -5: use a whole number, 0 or more")  # fmt: skip
    refused(run_invoke("deploy", "--lock-wait", "-1"),
            "error: invalid --lock-wait -1: use a number of seconds from 0 to 31622400 (a year)")  # fmt: skip


def test_a_command_a_shell_could_not_split_is_refused_before_any_host(run_invoke):
    unsplit = "no closing quotation (quote it as a shell would)"
    refused(run_invoke("container.exec", "web", "echo 'unclosed", "--hosts", "node1"),
            f"error: cannot split COMMAND \"echo 'unclosed\": {unsplit}")  # fmt: skip
    refused(run_invoke("container.exec", "web", "  ", "--hosts", "node1"),
            "error: COMMAND is empty: give the command to run in the container, e.g. 'cat /etc/hostname'")  # fmt: skip
    refused(run_invoke("container.run", "bb", "--options", "--label 'a", "--hosts", "node1"),
            f"error: cannot split --options \"--label 'a\": {unsplit}")  # fmt: skip


def test_push_takes_its_image_from_one_host(run_invoke, tmp_path):
    refused(run_invoke("image.push", "web", "--hosts", "node1", "--from", "node*"),
            "error: invalid --from 'node*': it selects 2 hosts (node1, node2); give one")  # fmt: skip
    one = run_invoke("image.push", "web", "--hosts", "node1", "--from", "node2*")  # a glob of one host is that host
    assert one.returncode == 2 and one.stderr.startswith("error: cannot take image 'web' from node2: node2: connec")
    assert not list((tmp_path / "tmp").iterdir())  # no directory for an image that never came


def test_a_bad_interval_installs_nothing_anywhere(run_invoke, tmp_path):
    cron_file = tmp_path / "cron"
    for every in ("abc", "0", "60", "1.5"):
        done = run_invoke("health.schedule", "--hosts", "node1", "--every", every, "--cron-file", str(cron_file))
        refused(done, f"error: invalid --every '{every}': use a number of minutes from 1 to 59")
    assert not cron_file.exists()
    os.mkfifo(tmp_path / "fifo")
    for where, message in [(tmp_path / "none" / "cron", f"cannot write {tmp_path}/none/cron: no such directory"),
                           (tmp_path / "fifo", f"cannot write {tmp_path}/fifo: it is a pipe, not a file")]:  # fmt: skip
        done = run_invoke("health.schedule", "--hosts", "node1", "--cron-file", str(where))
        assert (done.returncode, done.stdout) == (2, "") and done.stderr.startswith(f"error: {message}"), done.stderr


def test_build_never_replaces_a_device_or_a_pipe(run_invoke, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    refused(run_invoke("build", "--output", str(tmp_path / "fifo")),
            f"error: cannot write {tmp_path}/fifo: it is a pipe, not a file; give a file's path")  # fmt: skip
    built = run_invoke("build", "--output", str(tmp_path / "b" / "baleine.pyz"))
    assert built.returncode == 0 and built.stdout.endswith(f"  {tmp_path}/b/baleine.pyz\n"), built.stderr


def test_history_takes_a_count_of_lines(run_invoke, tmp_path):
    (tmp_path / "h.csv").write_text("time;host;state;problems\n1;node1;ok;\n2;node2;ok;\n3;node1;ok;\n")
    refused(run_invoke("health.history", "--history", "h.csv", "--last", "-1"),
            "error: invalid --last -1: use a number of lines, 0 or more (0: all of them)")  # fmt: skip
    every = run_invoke("health.history", "--history", "h.csv", "--last", "0")
    assert every.returncode == 0 and len(every.stdout.splitlines()) == 4, every.stderr
    last = run_invoke("health.history", "--history", "h.csv", "--last", "2")
    assert [line.split()[1] for line in last.stdout.splitlines()[1:]] == ["node2", "node1"]


def test_a_dry_run_that_could_not_plan_every_host_fails(run_invoke):
    done = run_invoke("deploy", "--dry-run", "--app", str(REPO / "apps" / "webfarm.toml"))
    assert done.returncode == 1
    assert [line.split()[:2] for line in done.stdout.splitlines()[1:]] == [["node1", "FAILED:"], ["node2", "FAILED:"]]
    assert done.stderr.splitlines()[-1] == "could not plan: node1, node2 (dry run: nothing changed)"


def test_run_options_are_read_here_with_the_nodes_own_command_line(run_invoke):
    run = ("container.run", "bb", "--hosts", "node1,node2")
    refused(run_invoke(*run, "--options", "--read-only --bogus"),
            "error: unknown option '--bogus' (see: baleine container run --help)")  # fmt: skip
    refused(run_invoke(*run, "--options", "--rm"),
            "error: --rm is not allowed with --detach/-d (see: baleine container run --help)")  # fmt: skip
    refused(run_invoke(*run, "--options", "--pids-limit"),  # which takes the image for its value, as Docker's would
            "error: missing IMAGE (see: baleine container run --help)")  # fmt: skip
    refused(
        run_invoke(*run, "--options", "--help"),
        "error: --help and --version only print: leave them out of `baleine container run --detach --help bb`",
    )
    # After the image the words are the command's own: they reach the hosts (here: refused connections).
    passed = run_invoke(*run, "--options", "--read-only", "--command", "grep --help")
    assert passed.returncode == 1 and "node1   UNREACHABLE: connection refused" in passed.stdout, passed.stderr


def test_under_json_the_error_is_one_object_on_stdout_too(run_invoke):
    import json

    done = run_invoke("ps", "--json", "--hosts", "node9")
    assert done.returncode == 2 and done.stderr.startswith("error: unknown host or group 'node9'")
    assert json.loads(done.stdout) == {"ok": False, "data": None, "failed": [], "error": {
        "kind": "inventory", "message": "unknown host or group 'node9' (known: node1, node2)"}}  # fmt: skip
    unsplit = json.loads(run_invoke("container.exec", "web", "'", "--json", "--hosts", "node1").stdout)
    assert unsplit["error"]["message"].startswith("cannot split COMMAND")


def test_what_every_host_would_refuse_is_refused_once_here(run_invoke):
    create = ("network.create", "farm", "--hosts", "node1,node2", "--subnet")
    refused(run_invoke(*create, "10.42.0.0/33"),
            "error: invalid subnet '10.42.0.0/33': the prefix length is a whole number from 0 to 32")  # fmt: skip
    refused(run_invoke(*create, "10.42.0.0/24", "--gateway", "gw"),
            "error: invalid gateway 'gw': use a host address inside 10.42.0.0/24")  # fmt: skip
    refused(run_invoke("network.create", "host", "--hosts", "node1", "--subnet", "10.42.0.0/24"),
            "error: 'host' is reserved: `--network host` shares the host's own network")  # fmt: skip
    refused(run_invoke("image.pull", "Web:1", "--hosts", "node1"),
            "error: invalid image reference 'Web:1': use [REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST], "
            "e.g. busybox, nginx:1.27, ghcr.io/org/app:2")  # fmt: skip
    refused(run_invoke("container.kill", "web", "--hosts", "node1", "--signal", "SIGNOPE"),
            "error: invalid --signal 'SIGNOPE': use a signal name or number, "
            "e.g. SIGTERM, SIGQUIT, SIGINT or 15")  # fmt: skip
    refused(run_invoke("container.stop", "web", "--hosts", "node1", "--time", "soon"),
            "error: invalid --time 'soon': use a number of seconds from 0 to 31622400 (a year)")  # fmt: skip
    fine = run_invoke(*create, "10.42.0.0/24", "--gateway", "10.42.0.254")  # then each host checks its routes
    assert fine.returncode == 1 and fine.stdout.splitlines()[1].startswith("node1   UNREACHABLE"), fine.stderr


def test_retry_failed_reads_the_failed_hosts_under_the_deploy_lock(run_invoke, tmp_path):
    """Another deploy holds the lock: its failures are not written yet, so this one must wait or refuse."""
    import fcntl
    import json

    (tmp_path / ".deploy-failed.json").write_text(json.dumps({}))
    app = str(REPO / "apps" / "webfarm.toml")
    with open(tmp_path / ".deploy.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("ops@ctl pid 4242 since 2026-12-06T05:00:00Z\n")
        held.flush()
        done = run_invoke("deploy", "--app", app, "--retry-failed")
    assert done.returncode == 2 and done.stderr.startswith(
        "error: a deploy is already running: ops@ctl pid 4242 since 2026-12-06T05:00:00Z"), done.stdout  # fmt: skip
    after = run_invoke("deploy", "--app", app, "--retry-failed")  # the lock free: nothing failed last time
    assert after.returncode == 0 and after.stdout == f"no host failed in the last deploy of {app}: nothing to retry\n"
