"""The fleet for real: a 3-node lab (namespaces, real sshd, the shipped helper) driven by `invoke`."""

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import labfleet
import pytest
from labfleet import Lab

from fleet import client, inventory, lab, ship, transport, view
from fleet.node import boot, transfer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet_lab(tmp_path_factory):
    the_lab = Lab.start(tmp_path_factory.mktemp("fleet"), 3)
    try:
        the_lab.local("image", "create", "bb", "--size", "32M", "--from", "busybox")
        yield the_lab
    finally:
        the_lab.stop()


def helper_files(the_lab, node):
    directory = the_lab.node_dir(node) / "state" / "helper"
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in directory.glob("baleine-*.pyz")}


def test_helper_is_shipped_once_per_host(fleet_lab):
    first = fleet_lab.ok("ps")
    assert sorted(line.split(":")[0] for line in first.stderr.splitlines() if "shipped" in line) == [
        "node1", "node2", "node3"]  # fmt: skip
    before = {node: helper_files(fleet_lab, node) for node in ("node1", "node2", "node3")}
    assert all(len(files) == 1 for files in before.values()), before
    again = fleet_lab.ok("ps")
    assert "shipped" not in again.stderr
    assert {node: helper_files(fleet_lab, node) for node in before} == before
    for node, files in before.items():  # the link cron runs: at the helper shipped last
        assert os.readlink(fleet_lab.node_dir(node) / "state" / "helper" / "baleine.pyz") == next(iter(files))
    # Calls run the helper unpacked beside its zipapp; a host without that directory is shipped it again.
    tree = fleet_lab.node_dir("node1") / "state" / "helper" / f"baleine-{ship.current().sha}"
    assert (tree / "fleet" / "node" / "__pycache__" / f"cli.{sys.implementation.cache_tag}.pyc").is_file()
    shutil.rmtree(tree)
    third = fleet_lab.ok("ps")
    assert [line.split(":")[0] for line in third.stderr.splitlines() if "shipped" in line] == ["node1"]
    assert (tree / "fleet" / "node" / "cli.py").is_file()


def test_a_newer_helper_takes_over_the_cron_entry_when_shipped(fleet_lab):
    fleet_lab.ok("health.schedule", "--hosts", "node1", "--every", "3", "--cron-file", fleet_lab.base / "cron-1",
                 "--history", fleet_lab.base / "history-1")  # fmt: skip
    entry = (fleet_lab.node_dir("node1") / "cron.d" / "baleine").read_text().splitlines()[-1]
    assert " /var/lib/baleine/helper/baleine.pyz check >> " in entry  # the link, not one build
    data = io.BytesIO(ship.current().data)
    with zipfile.ZipFile(data, "a") as archive:
        archive.writestr("NEWER", "a later release, as far as the host can tell")
    newer = ship.Build(data.getvalue())
    hosts = inventory.load(fleet_lab.env["BALEINE_INVENTORY"]).select("node1")
    with transport.Fleet(hosts) as fleet:
        client.upload(fleet.sessions["node1"], newer)
    helper = fleet_lab.node_dir("node1") / "state" / "helper"
    assert os.readlink(helper / "baleine.pyz") == f"baleine-{newer.sha}.pyz"
    assert (helper / "baleine.pyz").read_bytes() == newer.data  # what cron runs from its next pass on
    assert sorted(path.name for path in helper.iterdir() if "tmp" in path.name) == []
    with transport.Fleet(hosts) as fleet:
        client.upload(fleet.sessions["node1"], ship.current())  # back to this build, for the other tests


def test_image_push_sends_only_what_is_missing(fleet_lab):
    image = fleet_lab.local("image", "inspect", "bb")
    sent_before = fleet_lab.tx_bytes("node1")
    first = fleet_lab.ok("image.push", "bb", "--hosts", "node1,node2")
    first_bytes = fleet_lab.tx_bytes("node1") - sent_before
    assert "node1   sent" in first.stdout and "node2   sent" in first.stdout
    assert image["used"] * 0.5 < first_bytes < image["size"] * 0.5  # the data went, the holes did not

    sent_before = fleet_lab.tx_bytes("node1")
    again = fleet_lab.ok("image.push", "bb", "--hosts", "node1,node2")
    resent = fleet_lab.tx_bytes("node1") - sent_before
    assert again.stdout.count("already there (same sha256): nothing sent") == 2
    assert resent < 64 << 10, f"{resent} bytes went to node1 for an image it already had"
    code, reply = fleet_lab.invoke_json("images", "--hosts", "node1,node2")
    assert code == 0
    assert {(row["host"], row["digest"]) for row in reply["data"]} == {("node1", image["digest"]),
                                                                       ("node2", image["digest"])}  # fmt: skip


def test_image_push_from_another_host(fleet_lab):
    fleet_lab.ok("image.push", "bb", "--hosts", "node1")
    done = fleet_lab.ok("image.push", "bb", "--hosts", "node3", "--from", "node1")
    assert "node3   sent" in done.stdout
    code, reply = fleet_lab.invoke_json("images", "--hosts", "node3")
    assert code == 0 and [row["name"] for row in reply["data"]] == ["bb"]


def test_an_interrupted_push_leaves_no_image(fleet_lab):
    source = fleet_lab.base / "big.ext4"
    with open(source, "wb") as handle:
        handle.write(os.urandom(24 << 20))
    meta = {"name": "cut", "digest": "sha256:" + "0" * 64, "source": "test", "config": {}}

    def cut_short():
        for index, piece in enumerate(transfer.stream(str(source), meta)):
            if index == 12:
                raise ConnectionAbortedError("the control machine went away")
            yield piece

    hosts = inventory.load(fleet_lab.env["BALEINE_INVENTORY"]).select("node2")
    with transport.Fleet(hosts) as fleet:
        session = fleet.sessions["node2"]
        with pytest.raises(ConnectionAbortedError):
            client.call(session, "image", "receive", stdin=cut_short())
    images = fleet_lab.node_dir("node2") / "state" / "images"
    deadline = time.monotonic() + 10
    while any(path.name.startswith(".build-") for path in images.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(path.name for path in images.iterdir() if "cut" in path.name) == []
    code, reply = fleet_lab.invoke_json("images", "--hosts", "node2")
    assert code == 0 and "cut" not in [row["name"] for row in reply["data"]]


def test_containers_on_two_hosts_in_one_table(fleet_lab):
    fleet_lab.ok("image.push", "bb", "--hosts", "node1,node2")
    fleet_lab.ok("network.create", "farm", "--subnet", "10.77.0.0/24", "--hosts", "node1,node2")
    fleet_lab.ok("container.run", "bb", "--hosts", "node1,node2", "--name", "web", "--network", "farm",
                 "--memory", "64M", "--options", "--stop-timeout 1", "--command", "httpd -f -p 80")  # fmt: skip
    table = fleet_lab.ok("ps").stdout.splitlines()
    assert table[0].split() == ["HOST", "NAME", "IMAGE", "STATUS", "HEALTH", "IPS", "UPTIME", "LIMITS"]
    rows = [line.split() for line in table[1:]]
    assert sorted((row[0], row[1], row[2], row[3]) for row in rows) == [
        ("node1", "web", "bb", "running"),
        ("node2", "web", "bb", "running"),
    ]
    assert all("mem" in " ".join(row) for row in rows)
    code, reply = fleet_lab.invoke_json("ps")
    assert code == 0 and reply["failed"] == []
    assert {(row["host"], row["name"], row["networks"][0]["address"]) for row in reply["data"]} == {
        ("node1", "web", "10.77.0.2"), ("node2", "web", "10.77.0.2")}  # fmt: skip

    done = fleet_lab.ok("container.exec", "web", "hostname", "--hosts", "node1,node2")
    assert done.stdout.count("exit 0: web") == 2
    done = fleet_lab.ok("container.exec", "web", "sh -c 'echo detached-$HOSTNAME; exec sleep 30'", "--detach",
                        "--hosts", "node1,node2")  # fmt: skip
    assert done.stdout.count("started, host pid ") == 2, done.stdout
    deadline = time.monotonic() + 10  # the echo runs a moment after the exec returned
    while True:
        lines = fleet_lab.ok("container.logs", "web", "--hosts", "node1,node2").stdout.splitlines()
        echoed = sorted(line for line in lines if "detached-" in line)
        if len(echoed) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert echoed == ["node1 | detached-web", "node2 | detached-web"]
    started = time.monotonic()
    fleet_lab.ok("container.stop", "web", "--hosts", "node2")  # its own --stop-timeout: httpd ignores SIGTERM
    assert time.monotonic() - started < 8  # not the 10 s default: no --time was passed on
    code, reply = fleet_lab.invoke_json("ps", "--all", "--hosts", "node2")
    assert [row["status"] for row in reply["data"]] == ["exited"]
    fleet_lab.ok("container.start", "web", "--hosts", "node2")
    pid = fleet_lab.invoke_json("ps", "--hosts", "node2")[1]["data"][0]["pid"]
    fleet_lab.ok("container.restart", "web", "--hosts", "node2", "--time", "0.5")
    code, reply = fleet_lab.invoke_json("ps", "--hosts", "node2")
    assert code == 0 and reply["data"][0]["status"] == "running" and reply["data"][0]["pid"] != pid
    done = fleet_lab.ok("network.disconnect", "farm", "web", "--hosts", "node1")
    assert "no network" in done.stdout
    code, reply = fleet_lab.invoke_json("network.connect", "farm", "web", "--hosts", "node1")
    assert code == 0 and reply["data"][0]["networks"] == [{"network": "farm", "address": "10.77.0.2"}], reply
    fleet_lab.ok("container.pause", "web", "--hosts", "node1,node2")
    assert [row.split()[3] for row in fleet_lab.ok("ps").stdout.splitlines()[1:]] == ["paused", "paused"]
    fleet_lab.ok("container.unpause", "web", "--hosts", "node1,node2")
    fleet_lab.ok("container.kill", "web", "--hosts", "node2")
    code, reply = fleet_lab.invoke_json("ps", "--all", "--hosts", "node1,node2")
    assert sorted((row["host"], row["status"], row["exit_code"]) for row in reply["data"]) == [
        ("node1", "running", None), ("node2", "exited", 137)]  # fmt: skip
    code, reply = fleet_lab.invoke_json(
        "ps", "--filter", "status=exited", "--filter", "name=w*", "--hosts", "node1,node2"
    )
    assert code == 0 and [(row["host"], row["name"]) for row in reply["data"]] == [("node2", "web")]
    fleet_lab.ok("container.start", "web", "--hosts", "node2")  # the tests after this one use it
    fleet_lab.ok("container.run", "bb", "--hosts", "node1,node2", "--name", "talker",
                 "--command", "sh -c 'echo hello; sleep 600'")  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        logs = fleet_lab.ok("container.logs", "talker", "--hosts", "node1,node2", "--tail", "5").stdout
        if logs.count("hello") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(logs.splitlines()) == ["node1 | hello", "node2 | hello"]
    fleet_lab.ok("container.rm", "talker", "--force", "--hosts", "node1,node2")
    code, reply = fleet_lab.invoke_json("events", "--hosts", "node1,node2", "--container", "talker")
    assert code == 0 and sorted((e["host"], e["action"]) for e in reply["data"]) == [
        (host, action) for host in ("node1", "node2") for action in ("create", "die", "kill", "rm", "start", "stop")
    ]  # fmt: skip
    timeline = fleet_lab.ok("events", "--hosts", "node1,node2", "--since", "1h").stdout.splitlines()
    assert timeline[0].split() == list(view.EVENT_COLUMNS) and len(timeline) > 12


def followers(verb=b"logs"):
    """Pids of `baleine container logs --follow` (or events) processes on this machine (the lab nodes' helpers)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if verb in argv and b"--follow" in argv and boot.LINE.encode() in argv:
            found.append(int(entry))
    return found


def test_logs_follow_streams_every_host_until_the_containers_stop(fleet_lab):
    fleet_lab.ok("image.push", "bb", "--hosts", "node1,node2")
    script = "echo ready; while [ ! -e /go ]; do sleep 0.1; done; echo one; echo two"
    fleet_lab.ok("container.run", "bb", "--hosts", "node1,node2", "--name", "waiter", "--command", f"sh -c '{script}'")
    follow = subprocess.Popen([labfleet.INVOKE, "container.logs", "waiter", "--follow", "--hosts", "node1,node2"],
                              cwd=labfleet.REPO, env=fleet_lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    seen = [follow.stdout.readline(), follow.stdout.readline()]
    assert sorted(seen) == ["node1 | ready\n", "node2 | ready\n"]
    fleet_lab.ok("container.exec", "waiter", "touch /go", "--hosts", "node1,node2")
    out, err = follow.communicate(timeout=60)  # both containers end: so does the follow, by itself
    assert follow.returncode == 0, err
    for host in ("node1", "node2"):
        assert [line for line in out.splitlines() if line.startswith(host)] == [f"{host} | one", f"{host} | two"]

    done = fleet_lab.invoke("container.logs", "waiter", "--follow", "--hosts", "node1,node3")
    assert done.returncode == 1 and "node1 | two" in done.stdout
    assert "node3" in done.stdout and "no such container 'waiter'" in done.stdout

    quiet = "sh -c 'echo tick; exec sleep 600'"  # then silent: only its closed output can end the follower
    fleet_lab.ok("container.run", "bb", "--hosts", "node1", "--name", "talker", "--command", quiet)
    follow = subprocess.Popen([labfleet.INVOKE, "container.logs", "talker", "--follow", "--hosts", "node1"],
                              cwd=labfleet.REPO, env=fleet_lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert follow.stdout.readline() == "node1 | tick\n" and followers()
    follow.send_signal(signal.SIGINT)  # Ctrl-C
    follow.communicate(timeout=30)
    assert follow.returncode == 130
    deadline = time.monotonic() + 20
    while followers() and time.monotonic() < deadline:  # sshd closed its output: it ends on the host too
        time.sleep(0.1)
    assert followers() == []
    fleet_lab.ok("container.rm", "talker", "--force", "--hosts", "node1")
    fleet_lab.ok("container.rm", "waiter", "--hosts", "node1,node2")


def test_events_follow_streams_every_host_until_ctrl_c(fleet_lab):
    follow = subprocess.Popen([labfleet.INVOKE, "events", "--follow", "--container", "evt", "--hosts", "node1,node2"],
                              cwd=labfleet.REPO, env=fleet_lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    deadline = time.monotonic() + 20
    while len(followers(b"events")) < 2 and time.monotonic() < deadline:  # both hosts' followers are there
        time.sleep(0.1)
    fleet_lab.ok("container.run", "bb", "--hosts", "node1,node2", "--name", "evt", "--command", "sleep 600")
    lines = [follow.stdout.readline().split() for _ in range(4)]  # HOST | TIME ACTION CONTAINER by=WHO ...
    assert all(words[4] == "evt" for words in lines)
    assert sorted((words[0], words[3]) for words in lines) == [
        ("node1", "create"), ("node1", "start"), ("node2", "create"), ("node2", "start")]  # fmt: skip
    follow.send_signal(signal.SIGINT)  # Ctrl-C
    follow.communicate(timeout=30)
    assert follow.returncode == 130
    deadline = time.monotonic() + 20
    while followers(b"events") and time.monotonic() < deadline:  # sshd closed their output: they end on the hosts
        time.sleep(0.1)
    assert followers(b"events") == []
    fleet_lab.ok("container.rm", "evt", "--force", "--hosts", "node1,node2")


def test_health_shows_what_is_wrong(fleet_lab):
    fleet_lab.ok("image.push", "bb", "--hosts", "node3")
    fleet_lab.ok("container.run", "bb", "--hosts", "node3", "--name", "crash", "--command", "sh -c 'exit 3'")
    time.sleep(0.5)
    done = fleet_lab.invoke("health", "--hosts", "node3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [line.split() for line in done.stdout.splitlines()][1:] == [["node3", "crash", "exited", "exit", "code",
                                                                         "3"]]  # fmt: skip
    fleet_lab.ok("container.rm", "crash", "--hosts", "node3")
    assert fleet_lab.ok("health", "--hosts", "node3").stdout.strip() == "nothing wrong"


def test_health_schedule_installs_both_cron_entries(fleet_lab):
    cron_file = fleet_lab.base / "control-cron"
    history = fleet_lab.base / "fleet-health.csv"
    fleet_lab.ok("health.schedule", "--hosts", "node1,node2", "--every", "2", "--cron-file", cron_file,
                 "--history", history)  # fmt: skip
    for node in ("node1", "node2"):
        entry = (fleet_lab.node_dir(node) / "cron.d" / "baleine").read_text().splitlines()[-1]
        assert entry.startswith("*/2 * * * * root BALEINE_ROOT=/var/lib/baleine ")
        assert f"BALEINE_CGROUP_PARENT={fleet_lab.record['cgroup_parent']}/{node} " in entry
        assert " /var/lib/baleine/helper/baleine.pyz check >> /var/lib/baleine/check.log" in entry
    assert not (fleet_lab.node_dir("node3") / "cron.d" / "baleine").exists()
    control = cron_file.read_text().splitlines()[-1]
    assert cron_file.stat().st_mode & 0o777 == 0o644  # cron skips a file others may write
    assert control.startswith("*/2 * * * * root cd ")
    assert f"invoke health --hosts node1,node2 --record {history}" in control
    fleet_lab.ok("health", "--hosts", "node1,node2", "--record", history)
    history_table = fleet_lab.ok("health.history", "--history", history).stdout
    assert [line.split()[1:3] for line in history_table.splitlines()[1:]] == [["node1", "ok"], ["node2", "ok"]]


def write_inventory(fleet_lab, name, **overrides):
    """A one-host inventory for node1 with some keys changed."""
    node = fleet_lab.record["nodes"][0]
    keys = {"address": node["address"], "identity": str(fleet_lab.dir / "id_ed25519"),
            "known_hosts": str(fleet_lab.dir / "known_hosts"), **overrides}  # fmt: skip
    path = fleet_lab.base / f"{name}.toml"
    path.write_text("[hosts.node1]\n" + "".join(f'{key} = "{value}"\n' for key, value in keys.items()))
    return {"BALEINE_INVENTORY": str(path)}


def test_changed_and_unknown_host_keys_are_refused(fleet_lab):
    import subprocess

    impostor = fleet_lab.base / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", impostor], check=True)
    address = fleet_lab.record["nodes"][0]["address"]
    wrong = fleet_lab.base / "wrong_known_hosts"
    wrong.write_text(f"{address} " + " ".join((impostor.with_suffix(".pub")).read_text().split()[:2]) + "\n")
    env = write_inventory(fleet_lab, "changed", known_hosts=wrong)
    code, reply = fleet_lab.invoke_json("ps", env=env)
    assert code == 1
    assert reply["failed"][0]["kind"] == "host-key" and "host key CHANGED" in reply["failed"][0]["message"]
    refused = fleet_lab.invoke("hosts.trust", "--hosts", "node1", env=env)
    assert refused.returncode != 0 and "already holds another key" in refused.stdout
    assert wrong.read_text().split()[2] == impostor.with_suffix(".pub").read_text().split()[1]  # kept

    empty = fleet_lab.base / "empty_known_hosts"
    empty.write_text("")
    env = write_inventory(fleet_lab, "unknown", known_hosts=empty)
    code, reply = fleet_lab.invoke_json("ps", env=env)
    assert code == 1 and "unknown host key SHA256:" in reply["failed"][0]["message"]
    trusted = fleet_lab.invoke("hosts.trust", "--hosts", "node1", env=env)
    assert trusted.returncode == 0 and "added" in trusted.stdout
    assert fleet_lab.invoke("ps", env=env).returncode == 0


def test_known_hosts_markers_are_read_and_revoked_keys_refused(fleet_lab):
    real = (fleet_lab.dir / "known_hosts").read_text()
    node_line = next(line for line in real.splitlines() if line.split()[0] == fleet_lab.record["nodes"][0]["address"])
    key_type, key = node_line.split()[1:3]
    marked = fleet_lab.base / "marked_known_hosts"
    marked.write_text(f"@cert-authority *.example.org {key_type} {key}\n{real}")
    env = write_inventory(fleet_lab, "marked", known_hosts=marked)
    assert fleet_lab.invoke("ps", env=env).returncode == 0  # paramiko's own loader raised on the marker
    marked.write_text(f"{real}@revoked * {key_type} {key}\n")
    code, reply = fleet_lab.invoke_json("ps", env=env)
    assert code == 1 and "is marked @revoked in" in reply["failed"][0]["message"]
    refused = fleet_lab.invoke("hosts.trust", "--hosts", "node1", "--replace", env=env)
    assert refused.returncode != 0 and "@revoked" in refused.stdout
    assert marked.read_text().endswith(f"@revoked * {key_type} {key}\n")  # untouched


def test_no_python_on_a_host_is_a_clear_error(fleet_lab):
    env = write_inventory(fleet_lab, "nopython", python="/opt/none/python3")
    code, reply = fleet_lab.invoke_json("ps", env=env)
    assert code == 1
    assert reply["failed"][0]["kind"] == "no-python"
    assert "no python3 on this host" in reply["failed"][0]["message"]


def test_bad_options_and_names_are_one_line_errors(fleet_lab):
    unknown = fleet_lab.invoke("ps", "--hosts", "node1,nodeX")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: unknown host or group 'nodeX' (known: node1, node2, node3, lab (group))"
    assert "invalid --parallel 0" in fleet_lab.invoke("ps", "--parallel", "0").stderr


def test_a_slow_host_times_out_and_the_others_answer(fleet_lab):
    fleet_lab.ok("container.exec", "web", "touch /slow", "--hosts", "node1")
    done = fleet_lab.invoke("container.exec", "web", "sh -c 'test -e /slow && sleep 20; echo done'",
                            "--hosts", "node1,node2", "--timeout", "3")  # fmt: skip
    assert done.returncode == 1
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert "did not finish within 3 s" in rows["node1"]
    assert rows["node2"].split()[1:] == ["exit", "0:", "done"]
    assert "1 of 2 hosts ok; failed: node1" in done.stderr


def test_image_prune_on_each_host_keeps_what_containers_use(fleet_lab):
    fleet_lab.local("image", "create", "spare", "--size", "16M", "--from", "busybox")
    fleet_lab.ok("image.push", "spare", "--hosts", "node1,node2")
    code, reply = fleet_lab.invoke_json("df", "--hosts", "node1,node2")
    assert code == 0 and [row["host"] for row in reply["data"]] == ["node1", "node2"]
    assert all(row["images"]["reclaimable"] > 0 for row in reply["data"])  # spare: no container uses it
    assert fleet_lab.ok("df", "--hosts", "node1").stdout.splitlines()[0].split()[:2] == ["HOST", "FREE"]
    code, reply = fleet_lab.invoke_json("info", "--hosts", "node1,node2")
    assert code == 0 and [(row["host"], row["kernel"]) for row in reply["data"]] == [
        ("node1", os.uname().release), ("node2", os.uname().release)]  # fmt: skip
    assert all(row["containers"]["running"] >= 1 and row["images"] >= 1 for row in reply["data"])  # web, bb
    lines = fleet_lab.ok("info", "--hosts", "node1,node2").stdout.splitlines()
    assert lines[0].split()[:3] == ["HOST", "KERNEL", "CGROUPS"] and [line.split()[0] for line in lines[1:]] == [
        "node1", "node2"]  # fmt: skip
    done = fleet_lab.ok("image.prune", "--hosts", "node1,node2")
    rows = sorted(line.split()[:3] for line in done.stdout.splitlines()[1:])
    assert rows == [["node1", "removed", "spare"], ["node2", "removed", "spare"]]  # bb: web runs from it
    code, reply = fleet_lab.invoke_json("image.prune", "--hosts", "node1,node2")
    assert (code, reply["data"], reply["failed"]) == (0, [], [])  # nothing left to remove anywhere
    code, reply = fleet_lab.invoke_json("images", "--hosts", "node1,node2")
    assert code == 0 and "spare" not in [row["name"] for row in reply["data"]]  # bb stays where web uses it
    fleet_lab.ok("network.create", "spare", "--subnet", "10.78.0.0/24", "--internal", "--hosts", "node1,node2")
    code, reply = fleet_lab.invoke_json("networks", "--hosts", "node1,node2")
    assert {row["internal"] for row in reply["data"] if row["name"] == "spare"} == {"1"}
    done = fleet_lab.ok("network.prune", "--hosts", "node1,node2")
    assert sorted(line.split()[:3] for line in done.stdout.splitlines()[1:]) == [
        ["node1", "removed", "spare"], ["node2", "removed", "spare"]]  # fmt: skip
    code, reply = fleet_lab.invoke_json("networks", "--hosts", "node1,node2")
    assert code == 0 and sorted({row["name"] for row in reply["data"]}) == ["farm"]  # web is on it
    fleet_lab.local("image", "create", "spare2", "--size", "16M", "--from", "busybox")
    fleet_lab.ok("image.push", "spare2", "--hosts", "node1")
    done = fleet_lab.ok("prune", "--images", "--hosts", "node1")
    assert done.stdout.splitlines()[1].split()[:3] == ["node1", "removed", "image"] and "spare2" in done.stdout
    assert "nothing to remove" in fleet_lab.ok("prune", "--images", "--hosts", "node1").stdout


def test_an_unreachable_host_is_a_row_and_the_others_still_answer(fleet_lab):
    """Runs last: node3's sshd is stopped, then brought back by lab.up."""
    fleet_lab.ok("image.push", "bb", "--hosts", "node3")
    fleet_lab.ok("container.run", "bb", "--hosts", "node3", "--name", "lonely", "--command", "sleep 600")
    lab.stop_sshd(str(fleet_lab.dir), "node3")
    done = fleet_lab.invoke("ps")
    assert done.returncode == 1
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert sorted((row[0], row[1]) for row in rows if row[0] != "node3") == [("node1", "web"), ("node2", "web")]
    [node3] = [row for row in rows if row[0] == "node3"]
    assert node3[1] == "UNREACHABLE:" and "connection refused" in " ".join(node3)
    assert "failed: node3" in done.stderr

    lab.up(directory=str(fleet_lab.dir), say=lambda _text: None)  # restarts node3's sshd
    code, reply = fleet_lab.invoke_json("ps", "--hosts", "node3")
    assert code == 0 and [row["name"] for row in reply["data"]] == ["lonely"]


def test_image_pull_on_each_host_with_a_login(fleet_lab, tmp_path, podman_archives):
    import registry

    # On the lab bridge's gateway: the one address of this machine every node reaches.
    with registry.running(tmp_path / "registry", "basic", host=fleet_lab.record["gateway"]) as hub:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        user, password = hub.credentials
        pull = ("image.pull", f"{hub.address}/webfx:1", "--hosts", "node1,node2", "--insecure", "--username", user)
        asked = fleet_lab.invoke(*pull)  # no $BALEINE_REGISTRY_PASSWORD, no terminal to ask on
        assert asked.returncode == 2 and "set $BALEINE_REGISTRY_PASSWORD" in asked.stderr, asked.stderr
        wrong = fleet_lab.invoke(*pull, env={"BALEINE_REGISTRY_PASSWORD": "nope"})
        assert wrong.returncode == 1 and wrong.stdout.count(f"refused user '{user}'") == 2, wrong.stdout
        done = fleet_lab.invoke(*pull, env={"BALEINE_REGISTRY_PASSWORD": password})
        assert done.returncode == 0, done.stdout + done.stderr
        # A login kept on each host serves later pulls, given no password.
        hosts = ("--hosts", "node1,node2")
        kept = fleet_lab.invoke("image.login", hub.address, "--username", user, "--insecure", *hosts,
                                env={"BALEINE_REGISTRY_PASSWORD": password})  # fmt: skip
        assert kept.returncode == 0 and kept.stdout.count(f"logged in as {user}") == 2, kept.stdout + kept.stderr
        # A mirror on each host, down: said and skipped, the registry serves.
        dead = f"{fleet_lab.record['gateway']}:{registry.free_port()}"
        fleet_lab.ok("mirror.add", hub.address, dead, "--insecure", *hosts)
        code, listed = fleet_lab.invoke_json("mirror.list", *hosts)
        assert code == 0 and [(r["host"], r["mirror"], r["insecure"]) for r in listed["data"]] == [
            ("node1", dead, True), ("node2", dead, True)]  # fmt: skip
        # The registry kept insecure on each host: pulls need no --insecure.
        made = fleet_lab.invoke("registry.insecure", hub.address, *hosts)
        assert made.stdout.count(f"{hub.address}: plain HTTP allowed") == 2, made.stdout + made.stderr
        code, known = fleet_lab.invoke_json("registry.list", *hosts)
        assert code == 0 and [(r["host"], r["registry"], r["login"], r["insecure"]) for r in known["data"]] == [
            ("node1", hub.address, user, True), ("node2", hub.address, user, True)]  # fmt: skip
        assert [r["mirrors"] for r in known["data"]] == [[dead], [dead]]
        again = fleet_lab.invoke("image.pull", f"{hub.address}/webfx:1", *hosts)
        assert again.returncode == 0 and again.stdout.count("(up to date)") == 2, again.stdout + again.stderr
        fleet_lab.ok("registry.secure", hub.address, *hosts)
        fleet_lab.ok("mirror.rm", dead, *hosts)
        assert fleet_lab.invoke_json("mirror.list", *hosts)[1]["data"] == []
        gone = fleet_lab.invoke("image.logout", hub.address, *hosts)
        assert gone.returncode == 0 and gone.stdout.count("logged out") == 2, gone.stdout
        anonymous = fleet_lab.invoke("image.pull", f"{hub.address}/webfx:1", "--insecure", *hosts)
        assert anonymous.returncode == 1 and anonymous.stdout.count("wants a login") == 2, anonymous.stdout
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [row[:2] for row in rows] == [["node1", "webfx-1:"], ["node2", "webfx-1:"]]
    assert rows[0][2] == rows[1][2] and rows[0][2].startswith("sha256:")  # the same digest on both
    code, reply = fleet_lab.invoke_json("images", "--hosts", "node1,node2")
    pulled = [row for row in reply["data"] if row["name"] == "webfx-1"]
    assert code == 0 and [row["host"] for row in pulled] == ["node1", "node2"]
    fleet_lab.ok("image.rm", "webfx-1", "--hosts", "node1,node2")
