"""container commit: a container's disk becomes an image, stopped or frozen while running."""

import pytest

pytestmark = pytest.mark.integration


def test_commit_a_stopped_container(busybox):
    busybox.cli("container", "run", "--name", "maker", "--env", "MODE=made", "--workdir", "/srv", "bb", "sh", "-c",
                "echo kept > /srv/note")  # fmt: skip
    item = busybox.ok("container", "commit", "maker", "made")
    assert item["source"] == "commit:maker (from bb)"
    config = busybox.ok("image", "inspect", "made")["config"]
    assert config["Parent"] == "bb" and config["WorkingDir"] == "/srv" and "MODE=made" in config["Env"]
    done = busybox.cli("container", "run", "--rm", "made", "sh", "-c", "cat note; echo $MODE")
    assert done.stdout == "kept\nmade\n", done.stdout + done.stderr


def test_commit_a_running_container_freezes_it_and_lets_it_go(busybox):
    script = "echo alive > /state; i=0; while true; do i=$((i+1)); echo $i > /counter; sleep 0.05; done"
    busybox.ok("container", "run", "-d", "--name", "busy", "bb", "sh", "-c", script)
    import time

    time.sleep(0.5)
    busybox.ok("container", "commit", "busy", "snapshot")
    assert busybox.ok("container", "inspect", "busy")["status"] == "running"
    before = int(busybox.exec_out("busy", "cat", "/counter"))
    time.sleep(0.3)
    assert int(busybox.exec_out("busy", "cat", "/counter")) > before  # thawed: it goes on
    done = busybox.cli("container", "run", "--rm", "snapshot", "sh", "-c", "cat /state; test -s /counter && echo ok")
    assert done.stdout == "alive\nok\n", done.stdout + done.stderr


def test_commit_refuses_an_existing_name(busybox):
    busybox.ok("container", "create", "--name", "c", "bb", "true")
    for image, message in (("bb", "already exists"), ("bad name", "invalid image name")):
        reply = busybox.call("container", "commit", "c", image)
        assert not reply["ok"] and message in reply["error"]["message"]


def test_a_committed_image_carries_the_container_s_health_check(busybox):
    busybox.ok("container", "create", "--name", "probed", "--health-cmd", "test -e /etc", "--health-interval", "7",
               "bb", "true")  # fmt: skip
    busybox.ok("container", "commit", "probed", "probed-image")
    check = busybox.ok("image", "inspect", "probed-image")["config"]["Healthcheck"]
    assert check["Test"] == ["CMD-SHELL", "test -e /etc"] and check["Interval"] == 7_000_000_000
    busybox.ok("container", "create", "--name", "heir", "probed-image", "true")
    health = busybox.ok("container", "inspect", "heir")["config"]["health"]
    assert (health["cmd"], health["interval"]) == ("test -e /etc", 7.0)
