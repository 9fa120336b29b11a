"""Helper replies become data or typed errors; command lines are quoted argv (pure)."""

import json
import shlex

import pytest

from fleet import client, ship
from fleet.errors import HelperError, NoPython, TimedOut, Unreachable, tail
from fleet.inventory import Host
from fleet.node import boot
from fleet.transport import Completed, Session

HOST = Host("node1", "192.0.2.1")


def reply(payload, code=0, stderr=b""):
    return Completed(code, (json.dumps(payload) + "\n").encode(), stderr)


def test_ok_reply_gives_its_data():
    assert client.parse_reply("node1", ["image", "list"], reply({"ok": True, "data": [1, 2]})) == [1, 2]


def test_error_reply_is_a_helper_error_with_everything():
    done = reply({"ok": False, "error": {"message": "no such image 'x'", "code": "not-found"}}, 3,
                 b"line1\nline2\nbaleine: error: no such image 'x'\n")  # fmt: skip
    with pytest.raises(HelperError) as raised:
        client.parse_reply("node1", ["image", "rm", "x"], done)
    error = raised.value
    assert (error.host, error.argv, error.exit_code, error.code) == ("node1", ["image", "rm", "x"], 3, "not-found")
    assert str(error) == "node1: no such image 'x'"
    assert error.stderr_tail.endswith("baleine: error: no such image 'x'")
    assert error.as_dict()["kind"] == "helper"


def test_no_json_names_the_exit_and_the_last_stderr_line():
    with pytest.raises(HelperError, match=r"no JSON reply \(exit 1: Traceback: boom\)"):
        client.parse_reply("node1", ["check"], Completed(1, b"", b"Traceback: boom\n"))


def test_missing_python_and_old_python_are_clear():
    with pytest.raises(NoPython, match="no python3 on this host"):
        client.parse_reply("node1", ["check"], Completed(client.PYTHON_MISSING, b"", b""))
    old = b"baleine: error: python3 is 3.7 on this host; baleine needs 3.9 or later\n"
    with pytest.raises(NoPython, match=r"node1: python3 is 3\.7 on this host; baleine needs 3\.9"):
        client.parse_reply("node1", ["check"], Completed(boot.PYTHON_TOO_OLD, b"", old))


def test_the_zipapp_refuses_an_old_python_before_importing_anything(monkeypatch, capsys):
    monkeypatch.setattr("sys.version_info", (3, 8, 18, "final", 0))
    with pytest.raises(SystemExit) as raised:
        exec(compile(ship.MAIN, "__main__.py", "exec"), {"__name__": "__main__"})
    assert raised.value.code == boot.PYTHON_TOO_OLD
    assert "python3 is 3.8 on this host; baleine needs 3.9 or later" in capsys.readouterr().err


def test_json_flag_goes_before_a_containers_command():
    assert client.with_json(["container", "exec", "web", "ls", "-l"]) == ["container", "exec", "--json", "web",
                                                                           "ls", "-l"]  # fmt: skip
    assert client.with_json(["check"]) == ["check", "--json"]


def test_json_goes_after_the_verb_of_every_kind_that_has_verbs():
    from fleet.node import cli

    root = cli.build_parser()
    with_verbs = {kind for kind in cli.KINDS if root.commands[kind].commands}
    assert with_verbs == set(client.VERB_KINDS)


def test_command_line_is_quoted_argv_and_guarded():
    session = Session(Host("n", "192.0.2.1", helper_dir="/opt/b b"))
    line = client._guarded(session, "f" * 64, ["container", "exec", "--json", "web", "echo", "$(reboot); x"])
    assert "exit 98" in line and f"test -d '/opt/b b/baleine-{'f' * 64}' || exit 97" in line
    run = line.split("exec ", 1)[1]
    assert shlex.split(run) == ["python3", "-I", "-S", "-c", boot.LINE, f"/opt/b b/baleine-{'f' * 64}",
                                "container", "exec", "--json", "web", "echo", "$(reboot); x"]  # fmt: skip


def test_sudo_prefix_only_for_non_root_users():
    assert Session(Host("n", "a", user="deploy", sudo=True)).command_line(["id"]) == "sudo -n -- id"
    assert Session(Host("n", "a", user="root", sudo=True)).command_line(["id"]) == "id"


def test_error_types():
    assert Unreachable("n", "refused").as_dict() == {"kind": "unreachable", "host": "n", "message": "refused"}
    assert isinstance(TimedOut("n", "slow"), Exception)
    assert tail("\n".join(str(i) for i in range(20)), lines=3) == "17\n18\n19"
