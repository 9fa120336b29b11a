"""The command-line parser: the tree baleine builds, parsed without running anything."""

import pytest

from fleet.node.cli import build_parser
from fleet.node.errors import Invalid


def parse(*argv):
    return build_parser(next((word for word in argv if word in ("image", "network", "container")), None)).parse(argv)


def test_options_positionals_and_the_command_line_after_the_image():
    args = parse("container", "run", "--rm", "-e", "A=1", "--env=B=2", "--network", "farm:10.0.0.5", "-m", "64M",
                 "bb", "sh", "-c", "echo --json")  # fmt: skip
    assert args.rm and not args.detach and args.env == ["A=1", "B=2"] and args.network == ["farm:10.0.0.5"]
    assert args.memory == "64M" and args.image == "bb" and args.command == ["sh", "-c", "echo --json"]
    assert args.json is False and args.handler.__name__ == "container_run"


def test_defaults_and_json_anywhere_before_the_command():
    args = parse("--json", "container", "stop", "web")
    assert args.json and args.time is None and args.names == ["web"]  # None: the container's own stop timeout
    assert parse("cron", "install", "--json").every == "1"
    assert parse("container", "rm", "-f", "a", "b").names == ["a", "b"]
    assert parse("container", "list", "--json", "-a").all
    assert parse("container", "exec", "web", "ls", "--json").command == ["ls", "--json"]
    assert parse("container", "create", "bb").command == []
    assert parse("usage").name is None and parse("usage", "web", "--since", "2h").since == "2h"


def test_short_flags_bundle_as_with_getopt():
    args = parse("container", "list", "-aq")
    assert args.all and args.quiet
    args = parse("container", "run", "--rm", "-itv/srv:/srv", "bb", "sh")
    assert args.tty and args.interactive and args.volume == ["/srv:/srv"] and args.command == ["sh"]
    args = parse("container", "run", "-dm", "64M", "bb")
    assert args.detach and args.memory == "64M"
    assert parse("container", "exec", "-it", "web", "sh").tty
    with pytest.raises(Invalid, match="unknown option '-x'"):
        parse("container", "list", "-ax")


def test_values_are_taken_as_given_for_the_verb_to_judge():
    assert parse("container", "stop", "--time", "-3", "web").time == "-3"
    assert parse("container", "logs", "-f", "--tail", "-1", "web").tail == "-1"
    assert parse("image", "import", "-").file == "-"
    assert parse("container", "run", "bb", "--", "x").command == ["--", "x"]  # after the image, all is command


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("container", "frobnicate"), "unknown command 'frobnicate': choose from create, run"),
        (("container",), "missing command"),
        (("container", "list", "--bogus"), "unknown option '--bogus'"),
        (("image", "create", "x", "--from", "busybox"), "missing --size SIZE"),
        (("image", "create", "--size", "64M", "--from", "busybox"), "missing NAME"),
        (("container", "stop", "--time"), "--time/-t needs a value"),
        (("container", "list", "--all=yes"), "--all takes no value"),
        (("container", "inspect", "a", "b"), "unexpected argument 'b'"),
        (("container", "rm", "-f"), "missing NAME"),
        (("container", "run", "-d", "--rm", "bb"), "--rm is not allowed with --detach/-d"),
        (("container", "exec", "web"), "missing COMMAND"),
    ],
)
def test_bad_usage_is_one_line_naming_the_word_and_where_help_is(argv, message):
    with pytest.raises(Invalid) as caught:
        parse(*argv)
    assert message in caught.value.message and caught.value.message.endswith("--help)")
    assert "\n" not in caught.value.message


def test_help_lists_verbs_options_and_their_metavars(capsys):
    with pytest.raises(SystemExit) as done:
        parse("container", "run", "--help")
    text = capsys.readouterr().out
    assert done.value.code == 0
    assert text.startswith("usage: baleine container run [options] IMAGE [COMMAND [ARG...]]")
    with pytest.raises(SystemExit):
        parse("container", "exec", "--help")
    assert capsys.readouterr().out.startswith("usage: baleine container exec [options] NAME COMMAND [ARG...]\n")
    assert "--memory, -m SIZE" in text and "limits (sizes and rates" in text and "--rm" in text
    with pytest.raises(SystemExit):
        parse("container", "--help")
    text = capsys.readouterr().out
    assert "commands:" in text and "exec" in text and "run a command inside a running container" in text
    with pytest.raises(SystemExit):
        parse("--version")
    assert capsys.readouterr().out.startswith("baleine ")


def test_ls_and_ps_are_list_as_in_docker(capsys):
    assert parse("container", "ls", "-aq").handler.__name__ == "container_list"
    assert parse("container", "ps", "--all").all is True
    for kind in ("image", "network", "volume"):
        assert parse(kind, "ls").handler.__name__ == f"{kind}_list"
    with pytest.raises(SystemExit):
        parse("container", "--help")
    assert "  list, ls, ps " in capsys.readouterr().out


def test_list_help_names_every_filter_key(capsys):
    from fleet.node.filters import KEYS

    with pytest.raises(SystemExit):
        parse("container", "list", "--help")
    text = " ".join(capsys.readouterr().out.split())  # the help wraps its lines
    assert [key for key in KEYS if f"{key}=" not in text] == []


def test_json_listing_skips_the_table_and_its_imports(tmp_path):
    """The fleet lists every host with --json: the text table (and its imports) must not be made."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; from fleet.node.cli import main; status = main(['container', 'list', '--json']); "
        "print('table' if 'fleet.node.render' in sys.modules else 'no table', status)"
    )
    repo = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {repo!r}); {code}"],
                          capture_output=True, text=True, env={"BALEINE_ROOT": str(tmp_path)})  # fmt: skip
    assert done.stdout.splitlines()[-1] == "no table 0", done.stderr
    assert '"ok": true' in done.stdout.splitlines()[0]
