"""The command line: JSON protocol, help, and every bad input refused cleanly."""

import json
import os
import re

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration


def test_json_reply_shape(busybox):
    reply = busybox.call("image", "list")
    assert reply["ok"] is True and reply["version"] and reply["data"][0]["name"] == "bb"
    reply = busybox.call("image", "inspect", "nope")
    assert reply["ok"] is False and reply["exit"] != 0
    assert set(reply["error"]) >= {"message", "code"} and reply["error"]["code"] == "not_found"


def test_json_flag_after_the_verb_and_usage_errors_in_json(busybox):
    done = busybox.cli("image", "list", "--json")
    assert json.loads(done.stdout)["ok"]
    done = busybox.cli("--json", "container", "frobnicate")
    reply = json.loads(done.stdout)
    assert done.returncode == 2 and reply["error"]["code"] == "invalid"


def test_human_errors_are_one_line(busybox):
    done = busybox.cli("container", "start", "ghost")
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "ghost" in done.stderr


def test_a_user_who_is_not_root_is_told_so(zipapp):
    """Not root: one line naming the file refused and why, not an errno's repr."""
    import shutil
    import subprocess
    import tempfile

    place = tempfile.mkdtemp(prefix="baleine-nobody-")  # /tmp itself: pytest's tmp_path is closed to others
    try:
        os.chmod(place, 0o755)
        helper = shutil.copy(zipapp, place)
        os.chmod(helper, 0o644)
        root = os.path.join(place, "state")
        os.mkdir(root)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-I", "-S", helper,
                "network", "create", "farm", "--subnet", "10.99.0.0/24"]  # fmt: skip
        done = subprocess.run(argv, env={"BALEINE_ROOT": root}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        expected = f"baleine: error: permission denied: {re.escape(root)}/\\S+ \\(baleine needs root\\)\n"
        assert re.fullmatch(expected, done.stderr), done.stderr
        assert os.listdir(root) == []
    finally:
        shutil.rmtree(place)


def test_output_is_flushed_before_the_quick_exit_and_a_closed_pipe_is_no_error(busybox):
    import subprocess

    # Through a pipe, stdout is block-buffered: this reply exists only if exit_now flushed it.
    done = busybox.cli("image", "list")
    assert done.returncode == 0 and done.stdout.startswith("NAME") and "bb" in done.stdout
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `baleine image list | true` leaves it
    done = subprocess.run(busybox.argv("image", "list"), env=busybox.env, stdout=write_end, stderr=subprocess.PIPE,
                          text=True, timeout=60)  # fmt: skip
    os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


def test_help_teaches(node):
    text = node.cli("image", "create", "--help").stdout
    assert "debootstrap:SUITE" in text and "busybox" in text and "--size" in text
    assert "--time" in node.cli("container", "stop", "--help").stdout


def bad_inputs(subnet, other, tiny):
    prefix = subnet.rsplit(".", 1)[0]
    return [
        (("image", "create", "bad name", "--size", "32M", "--from", "busybox"), "invalid image name"),
        (("image", "create", "x" * 64, "--size", "32M", "--from", "busybox"), "at most 63"),
        (("image", "create", "ok", "--size", "lots", "--from", "busybox"), "invalid image size"),
        (("image", "create", "ok", "--size", "1M", "--from", "busybox"), "at least"),
        (("image", "create", "ok", "--size", "32M", "--from", "nowhere:x"), "invalid image source"),
        (("image", "create", "bb", "--size", "32M", "--from", "busybox"), "already exists"),
        (("image", "create", "ok", "--size", "32M", "--from", "/"), "invalid image source '/': it holds baleine's"),
        (("network", "create", "_bad", "--subnet", subnet), "invalid network name"),
        (("network", "create", "n", "--subnet", "10.0.0.0/33"), "invalid subnet"),
        (("network", "create", "n", "--subnet", "10.0.0.1/24"), "host bits"),
        (("network", "create", "n", "--subnet", "banana"), "invalid subnet"),
        (("network", "create", "n", "--subnet", other, "--gateway", "192.0.2.1"), "invalid gateway"),
        (
            ("network", "create", "n", "--subnet", other, "--gateway", "gw"),
            "invalid gateway 'gw': use a host address in",
        ),
        (("network", "create", "farm", "--subnet", other), "already exists"),
        (("network", "rm", "nonet"), "no such network"),
        (("network", "disconnect", "tiny", "taken"), "container 'taken' is not on network 'tiny'"),
        (("network", "disconnect", "nonet", "taken"), "no such network"),
        (("network", "disconnect", "farm", "ghost"), "no such container"),
        (("network", "connect", "farm", "taken"), "container 'taken' is already on network 'farm'"),
        (("network", "connect", "--ip", "10.0.0.999", "tiny", "taken"), "invalid IP address '10.0.0.999'"),
        (("container", "create", "--name", "bad/name", "bb"), "invalid container name"),
        (("container", "create", "ghostimage"), "no such image"),
        (("container", "create", "--network", "nonet", "bb"), "no such network"),
        (("container", "create", "--name", "taken", "bb"), "already in use"),
        (("container", "create", "--network", "farm:10.255.255.1", "bb"), "outside network 'farm'"),
        (("container", "create", "--network", f"farm:{prefix}.2", "bb"), "on network 'farm' is already taken"),
        (("container", "create", "--network", f"farm:{prefix}.1", "bb"), "gateway"),
        (("container", "create", "--network", "farm:999.1.1.1", "bb"), "invalid IP address"),
        (("container", "create", "--network", "tiny", "bb"), f"network 'tiny' ({tiny}) has no free address left"),
        (("container", "create", "--network", "farm", "--network", "farm", "bb"), "given twice"),
        (("container", "create", "--env", "1=x", "bb"), "invalid environment"),
        (("container", "create", "--volume", "/nonexistent-dir:/x", "bb"), "does not exist"),
        (("container", "create", "-v", "/tmp:/", "bb"), "may not be / nor in /proc"),
        (("container", "create", "-v", "/tmp:/x:nocopy", "bb"), "nocopy is for named volumes"),
        (("container", "create", "-v", "data:/x:ro,fast", "bb"), "OPTIONS ro or rw, and nocopy for a volume"),
        (("container", "create", "-v", "/tmp:/x", "-v", "/etc:/x/", "bb"), "/x is given twice as a container path"),
        (
            ("container", "create", "--log-size", "1K", "bb"),
            "invalid --log-size '1K': use 0 (never rotate) or at least",
        ),
        (("container", "create", "--log-size", "lots", "bb"), "invalid --log-size 'lots'"),
        (("container", "create", "--hostname", "bad_host", "bb"), "invalid hostname"),
        (("container", "create", "--device", "/dev/no-such-node", "bb"), "no such device '/dev/no-such-node'"),
        (("container", "create", "--sysctl", "vm.swappiness=1", "bb"), "vm.swappiness is the host's"),
        (("container", "create", "--sysctl", "net.core.somaxconn", "bb"), "invalid --sysctl 'net.core.somaxconn'"),
        (("container", "create", "--network", "host", "--sysctl", "net.core.somaxconn=9", "bb"), "with --network host"),
        (("container", "create", "--shm-size", "lots", "bb"), "invalid --shm-size 'lots'"),
        (("container", "create", "--group-add", "a b", "bb"), "invalid --group-add 'a b'"),
        (("container", "create", "--mount", "type=bind,src=/nonexistent-dir,dst=/x", "bb"), "does not exist"),
        (("container", "create", "--mount", "type=volume,dst=/x", "bb"), "type=volume takes a volume name"),
        (("container", "create", "--oom-score-adj", "1001", "bb"), "invalid --oom-score-adj '1001': use a whole"),
        (("container", "create", "--oom-score-adj", "high", "bb"), "invalid --oom-score-adj 'high'"),
        (("container", "create", "--device", "/etc/hostname", "bb"), "is not a device node"),
        (("container", "create", "--device", "/dev/fuse:/dev/null", "bb"), "must be under /dev and not one"),
        (("container", "create", "--device", "/dev/fuse:/dev/f:rx", "bb"), "use HOST[:CONTAINER][:PERMS]"),
        (("container", "create", "--device", "/dev/fuse", "--device", "/dev/net/tun:/dev/fuse", "bb"), "given twice"),
        (("container", "create", "--dns", "ns1.example", "bb"), "invalid --dns 'ns1.example': use a name server's"),
        (("container", "create", "--dns-search", "bad_domain", "bb"), "invalid --dns-search 'bad_domain'"),
        (("container", "create", "--dns-search", ".", "--dns-search", "lab", "bb"), "'.' means no search domain"),
        (("container", "create", "--dns-option", "ndots 2", "bb"), "invalid --dns-option 'ndots 2'"),
        (("container", "create", "--add-host", "db", "bb"), "invalid --add-host 'db': use NAME:IP"),
        (("container", "create", "--add-host", "db:10.0.0.300", "bb"), "invalid --add-host 'db:10.0.0.300'"),
        (("container", "create", "--add-host", "gw:host-gateway", "bb"), "host-gateway needs a bridge network"),
        (("container", "create", "--tmpfs", "run", "bb"), "invalid --tmpfs 'run': 'run' is not an absolute path"),
        (("container", "create", "--tmpfs", "/run:size=lots", "bb"), "invalid --tmpfs size in '/run:size=lots'"),
        (("container", "create", "--tmpfs", "/run:suid", "bb"), "'suid' is not an option here"),
        (("container", "create", "--tmpfs", "/proc/x", "bb"), "may not be / nor in /proc"),
        (("container", "create", "-v", "/tmp:/run", "--tmpfs", "/run/", "bb"), "/run is given twice"),
        (("container", "create", "--stop-signal", "SIGNOPE", "bb"), "invalid --stop-signal 'SIGNOPE': use a signal"),
        (("container", "create", "--stop-timeout", "-1", "bb"), "invalid --stop-timeout '-1'"),
        (("container", "create", "--security-opt", "seccomp=x", "bb"), "unknown security option 'seccomp=x'"),
        (("container", "create", "--workdir", "relative", "bb"), "invalid working directory"),
        (("container", "create", "--user", "a:b:c", "bb"), "invalid user"),
        (("container", "start", "ghost"), "no such container"),
        (("container", "stop", "--time", "-3", "taken"), "invalid --time"),
        (("container", "kill", "--signal", "SIGNOPE", "taken"), "invalid --signal 'SIGNOPE': use a signal name"),
        (("container", "pause", "taken"), "container 'taken' is not running (status: created)"),
        (("container", "list", "--filter", "color=red"), "invalid --filter 'color=red': use KEY=VALUE"),
        (("container", "create", "--label", "bad key=1", "bb"), "invalid label 'bad key=1': use KEY=VALUE"),
        (("container", "rename", "taken", "filler"), "container name 'filler' is already in use"),
        (("container", "rename", "taken", "x:y"), "invalid container name 'x:y'"),
        (("container", "rename", "ghost", "fine"), "no such container"),
        (("container", "unpause", "ghost"), "no such container"),
        (("container", "kill", "taken"), "container 'taken' is not running (status: created): nothing to signal"),
        (("container", "rm", "ghost"), "no such container"),
        (("container", "exec", "taken", "true"), "not running"),
        (("container", "exec", "ghost", "true"), "no such container"),
        (("container", "add", "taken", "--network", "nonet"), "no such network"),
        (("container", "add", "onhost", "--network", "farm"), "container 'onhost' uses the host's network"),
        (("network", "connect", "farm", "onhost"), "container 'onhost' uses the host's network"),
        (("container", "add", "taken", "--network", "host"), "--network host is for create and run"),
        (("container", "logs", "--tail", "-1", "taken"), "--tail"),
        (("container", "run", "-d", "--rm", "bb"), "not allowed with"),
        (("image", "rm", "ghost"), "no such image"),
        (("image", "tag", "ghost", "fine"), "no such image"),
        (("image", "tag", "bb", "bb"), "image 'bb' already exists"),
        (("image", "tag", "bb", "bad/name"), "invalid image name 'bad/name'"),
    ]


def test_bad_inputs_error_cleanly_and_change_nothing(busybox):
    subnet = free_subnet()
    busybox.ok("network", "create", "farm", "--subnet", subnet)
    busybox.ok("container", "create", "--name", "taken", "--network", "farm", "bb", "true")
    other = free_subnet()
    tiny = free_subnet(prefix=30)  # the gateway and one container fill it
    busybox.ok("network", "create", "tiny", "--subnet", tiny)
    busybox.ok("container", "create", "--name", "filler", "--network", "tiny", "bb", "true")
    busybox.ok("container", "create", "--name", "onhost", "--network", "host", "bb", "true")
    before = busybox.state_files()
    for args, message in bad_inputs(subnet, other, tiny):
        reply = busybox.call(*args)
        assert not reply["ok"], args
        assert reply["exit"] != 0, args
        assert message in reply["error"]["message"], (args, reply["error"])
        assert "\n" not in reply["error"]["message"], args
        assert busybox.state_files() == before, f"{args} changed the state files"
        human = busybox.cli(*args)
        assert human.returncode != 0 and human.stderr.startswith("baleine: error: ") and human.stderr.count("\n") == 1
    assert busybox.state_files() == before


def test_image_and_network_rm_take_several_names(busybox):
    busybox.ok("image", "create", "spare", "--size", "32M", "--from", "busybox")
    busybox.ok("container", "create", "--name", "user", "bb", "true")
    reply = busybox.call("image", "rm", "bb", "spare")
    assert reply["error"]["code"] == "conflict" and reply["error"]["done"] == ["spare"]
    assert reply["error"]["message"].startswith("1 of 2 failed: image 'bb' is in use by container user")
    assert [item["name"] for item in busybox.ok("image", "list")] == ["bb"]
    for name in ("n1", "n2"):
        busybox.ok("network", "create", name, "--subnet", free_subnet())
    assert busybox.cli("network", "rm", "n1", "n2").stdout == "n1\nn2\n"
    assert busybox.ok("network", "list") == []
