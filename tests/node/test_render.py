"""Human tables: what an operator reads must not mislead."""

import shlex

from fleet.node import render


def row(command):
    return {"name": "web", "id": "0123456789ab", "image": "bb", "status": "exited", "exit_code": 0, "pid": None,
            "networks": [], "started": "", "limits": {}, "command": command}  # fmt: skip


def test_a_long_command_is_marked_as_cut():
    long = ["sh", "-c", "trap 'echo bye; exit 0' TERM; while :; do sleep 1; done"]
    line = render.containers([row(long)]).splitlines()[1]
    assert line.endswith("   " + shlex.join(long)[:37] + "...")


def test_a_short_command_is_shown_whole():
    text = render.containers([row(["httpd", "-f", "-p", "80"])])
    assert text.splitlines()[1].endswith("httpd -f -p 80")
