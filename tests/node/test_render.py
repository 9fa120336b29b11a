"""Human tables: what an operator reads must not mislead."""

import shlex

import pytest

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


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0:00.00"), (3.25, "0:03.25"), (61.5, "1:01.50"), (3725, "1:02:05.00")]
)
def test_cpu_time_reads_as_ps_shows_it(seconds, shown):
    assert render._cpu_time(seconds) == shown


def test_a_pulled_images_digest_is_cut_in_tables():
    digest = "sha256:" + "ab" * 32
    assert render.shown_source(f"pull:reg.lan:5000/web:1@{digest}") == "pull:reg.lan:5000/web:1@sha256:abababababab"
    assert render.shown_source("import:localhost/webfx:1") == "import:localhost/webfx:1"
    assert render.shown_source("pull:web@sha256:short") == "pull:web@sha256:short"  # only a whole digest is cut
    line = render.images([{"name": "web", "id": "1", "size": 1 << 20, "used": 0, "source": f"pull:web@{digest}",
                           "created": "c"}]).splitlines()[1]  # fmt: skip
    assert "pull:web@sha256:abababababab   c" in line


@pytest.mark.parametrize("argv", [
    [], [""], ["httpd", "-f", "-p", "80"], ["sh", "-c", "echo 'hi' && exit 7"], ["a b", "tab\there", "new\nline"],
    ["$HOME", "*.txt", "~", "a;b", "it's", '"q"', "back\\slash"], ["user@host:/path,x=1+2%3"], ["é", "中文", "🐳"],
])  # fmt: skip
def test_commands_are_quoted_as_shlex_quotes_them(argv):
    assert render.shell_words(argv) == shlex.join(argv)
