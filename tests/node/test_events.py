"""`baleine events`: what happened to containers, when and by whom, from events.log."""

import json
import os
import select
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.integration


def actions(node, *args):
    return [(e["action"], e["container"], e.get("by")) for e in node.ok("events", *args)]


def test_a_container_s_life_is_recorded_with_who_did_what(busybox):
    busybox.env.update(USER="root", SUDO_USER="alice")
    busybox.ok("container", "run", "-d", "--name", "web", "--stop-timeout", "0.3", "bb", "sleep", "300")
    busybox.ok("container", "update", "web", "--memory", "64M", "--restart", "always")
    busybox.ok("container", "stop", "web")  # sleep ignores SIGTERM as pid 1: killed after 0.3 s
    busybox.ok("container", "commit", "web", "snap")
    busybox.ok("container", "rm", "web")
    assert actions(busybox) == [
        ("create", "web", "alice"), ("start", "web", "alice"), ("update", "web", "alice"),
        ("stop", "web", "alice"), ("kill", "web", "alice"), ("die", "web", None),
        ("commit", "web", "alice"), ("rm", "web", "alice"),
    ]  # fmt: skip
    events = busybox.ok("events", "web")
    assert events[0]["image"] == "bb" and events[2]["changed"] == ["memory", "restart"]
    assert (events[3]["signal"], events[3]["timeout"], events[4]["after"]) == ("SIGTERM", 0.3, 0.3)
    assert (events[5]["exit_code"], events[5]["reason"]) == (137, "killed by signal 9")
    assert events[6]["image"] == "snap" and all(e["id"] == events[0]["id"] for e in events)
    assert busybox.ok("events", events[0]["id"][:5]) == events  # by id, though it is gone

    text = busybox.cli("events", "web").stdout.splitlines()
    assert text[0].split() == ["TIME", "ACTION", "CONTAINER", "BY", "DETAILS"]
    assert text[6].split()[1:] == ["die", "web", "exit_code=137", "reason=killed", "by", "signal", "9"]


def test_who_ran_what_in_a_container_is_recorded_but_not_check_s_probes(busybox):
    busybox.env.update(USER="root", SUDO_USER="bob")
    busybox.ok("container", "run", "-d", "--name", "box", "--health-cmd", "true", "--health-interval", "0", "bb",
               "sleep", "300")  # fmt: skip
    busybox.ok("container", "exec", "-u", "nobody", "box", "id", "-u")
    busybox.ok("container", "exec", "-d", "box", "sleep", "1")
    busybox.ok("check")  # its health probe runs through exec too: not a person's
    execs = [event for event in busybox.ok("events", "box") if event["action"] == "exec"]
    assert [(e["by"], e["command"], e.get("user"), e.get("detach")) for e in execs] == [
        ("bob", ["id", "-u"], "nobody", None), ("bob", ["sleep", "1"], None, True)]  # fmt: skip


def test_what_check_does_is_by_check(busybox):
    busybox.env["BALEINE_RESTART_BACKOFF"] = "2"
    busybox.ok("container", "run", "-d", "--name", "svc", "--restart", "on-failure", "bb", "sleep", "300")
    pid = busybox.ok("container", "inspect", "svc")["pid"]
    os.kill(pid, signal.SIGKILL)
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.01)
    busybox.ok("check")
    assert actions(busybox, "svc")[-2:] == [("die", "svc", None), ("start", "svc", "check")]
    assert busybox.ok("events", "svc")[-1]["attempt"] == 1


def test_since_and_a_line_cut_short(busybox):
    busybox.ok("container", "create", "--name", "one", "bb", "true")
    with open(busybox.root / "events.log", "a") as log:
        log.write('{"time": "2026-1')  # a command killed in the middle of its write
    busybox.ok("container", "create", "--name", "two", "bb", "true")
    assert [name for _, name, _ in actions(busybox)] == ["one", "two"]
    assert busybox.ok("events", "--since", "2h") == busybox.ok("events")
    assert busybox.ok("events", "--since", "2999-01-01") == []
    reply = busybox.call("events", "--since", "yesterday")
    assert reply["error"]["message"].startswith("invalid --since 'yesterday'")
    assert busybox.ok("events", "nobody") == []


def test_each_line_is_one_json_object(busybox):
    busybox.ok("container", "create", "--name", "c", "bb", "true")
    lines = (busybox.root / "events.log").read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["create"]


class Lines:
    """What a process prints, read unbuffered (select sees only the pipe), a whole line at a time."""

    def __init__(self, fd):
        self.fd, self.data = fd, b""

    def first(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.data.count(b"\n") < count:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"{count} lines expected, got {self.data!r}"
            self.data += os.read(self.fd, 4096)
        return self.data.decode().splitlines()[:count]


@pytest.mark.parametrize("as_json", [False, True])
def test_follow_prints_each_event_as_it_comes_and_ends_with_its_reader(busybox, as_json):
    busybox.ok("container", "create", "--name", "before", "bb", "true")
    argv = busybox.argv(*(["--json"] if as_json else []), "events", "--follow")
    follower = subprocess.Popen(argv, env=busybox.env, stdout=subprocess.PIPE)
    try:
        printed = Lines(follower.stdout.fileno())
        assert len(printed.first(1)) == 1  # the history first
        busybox.ok("container", "run", "-d", "--name", "after", "bb", "sleep", "300")
        lines = printed.first(3)
        if as_json:
            assert [(e["action"], e["container"]) for e in map(json.loads, lines)] == [
                ("create", "before"), ("create", "after"), ("start", "after")]  # fmt: skip
        else:
            words = [line.split() for line in lines]
            assert [w[1:3] for w in words] == [["create", "before"], ["create", "after"], ["start", "after"]]
            assert words[0][0].endswith("Z") and words[0][3].startswith("by=") and "image=bb" in lines[0]
        follower.stdout.close()  # the reader leaves, as sshd closes it when `invoke events --follow` ends
        assert follower.wait(10) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
