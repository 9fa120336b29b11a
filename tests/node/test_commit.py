"""container commit and export: a container's disk becomes an image or a tar, stopped or frozen while running."""

import time

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


def test_export_writes_the_container_s_files_running_or_not(busybox, tmp_path):
    import io
    import subprocess
    import tarfile

    script = "mkdir /data && echo kept > /data/hello && touch -d '2020-01-02 03:04:05' /data/hello && echo v > /vol/f"
    busybox.ok("container", "run", "-d", "--name", "live", "-v", "side:/vol", "bb", "sh", "-c", f"{script}; sleep 300")
    deadline = time.monotonic() + 10
    while busybox.cli("container", "exec", "live", "test", "-e", "/vol/f").returncode and time.monotonic() < deadline:
        time.sleep(0.05)
    done = busybox.cli("container", "export", "live", str(tmp_path / "live.tar"))
    assert done.returncode == 0 and done.stdout == f"{tmp_path / 'live.tar'}: the files of live\n", done.stderr
    with tarfile.open(tmp_path / "live.tar") as tar:
        hello = tar.getmember("data/hello")
        assert tar.extractfile(hello).read() == b"kept\n" and hello.mtime == 1577934245  # times kept
        assert "vol/f" not in tar.getnames() and "bin/busybox" in tar.getnames()  # the disk, not its volumes
    item = busybox.ok("container", "inspect", "live")
    assert item["status"] == "running" and item["paused"] is False  # frozen only while its disk was copied

    busybox.ok("container", "stop", "--time", "0", "live")
    streamed = subprocess.run(busybox.argv("container", "export", "live", "-"), env=busybox.env, capture_output=True)
    assert streamed.returncode == 0, streamed.stderr
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        assert tar.extractfile("data/hello").read() == b"kept\n"
    busybox.ok("image", "create", "restored", "--size", "64M", "--from", str(tmp_path / "live.tar"))
    assert busybox.cli("container", "run", "--rm", "restored", "cat", "/data/hello").stdout == "kept\n"
    for args, message in ((("ghost", str(tmp_path / "x.tar")), "no such container"),
                          (("live", str(tmp_path)), "it is a directory"),
                          (("--json", "live", "-"), "both want stdout")):  # fmt: skip
        reply = busybox.call("container", "export", *args)
        assert not reply["ok"] and message in reply["error"]["message"], reply
    assert not (tmp_path / "x.tar").exists()


def test_an_image_committed_from_a_running_container_exports(busybox, tmp_path, monkeypatch):
    """A copy of a live ext4 has a journal to replay, and then mounts read-only only with EROFS."""
    from fleet.node import images

    busybox.ok("container", "run", "-d", "--name", "busy", "bb", "sh", "-c", "echo hi > /f; exec sleep 300")
    busybox.ok("container", "commit", "busy", "snap")
    disk = busybox.ok("image", "inspect", "snap")["file"]
    assert not images.needs_recovery(disk)  # replayed at commit
    assert busybox.cli("image", "export", "snap", str(tmp_path / "snap.tar")).returncode == 0
    monkeypatch.setenv("BALEINE_ROOT", str(busybox.root))
    staged = busybox.root / "images" / "old.ext4.staged"
    busybox.ok("container", "pause", "busy")
    images.copy_file(busybox.ok("container", "inspect", "busy")["disk"], str(staged))  # as earlier commits did
    busybox.ok("container", "unpause", "busy")
    images.register("old", str(staged), {}, "commit:busy (an earlier release)")
    old = images.image_file("old")
    assert images.needs_recovery(old)
    digest = busybox.ok("image", "inspect", "old")["digest"]
    done = busybox.cli("image", "export", "old", str(tmp_path / "old.tar"))
    assert done.returncode == 0, done.stderr
    assert images.needs_recovery(old) and images.file_sha256(old) == digest.split(":")[1]  # replayed on a copy


def test_diff_lists_what_the_container_changed_running_or_not(busybox):
    script = "echo new > /etc/added && rm /bin/ls && echo v > /vol/f && exec sleep 300"
    busybox.ok("container", "run", "-d", "--name", "d", "-v", "side:/vol", "bb", "sh", "-c", script)
    deadline = time.monotonic() + 10
    while busybox.cli("container", "exec", "d", "test", "-e", "/vol/f").returncode and time.monotonic() < deadline:
        time.sleep(0.05)
    found = {(item["kind"], item["path"]) for item in busybox.ok("container", "diff", "d")}
    assert {("A", "/etc/added"), ("D", "/bin/ls"), ("C", "/etc")} <= found, found
    assert not [path for _, path in found if path.startswith("/vol/")]  # a volume is not the disk
    assert busybox.ok("container", "inspect", "d")["paused"] is False
    busybox.ok("container", "stop", "--time", "0", "d")
    lines = busybox.cli("container", "diff", "d").stdout.splitlines()
    assert "A /etc/added" in lines and "D /bin/ls" in lines
    busybox.ok("container", "create", "--name", "fresh", "--userns", "bb", "true")
    assert busybox.ok("container", "diff", "fresh") == []  # its owners shifted: compared shifted back
