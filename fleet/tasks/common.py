"""What every fleet task shares: --hosts/--parallel/--timeout/--json, errors, the exit status.

A task parses its options, opens a Fleet, fans one function out over it and
hands the outcomes to `finish`, which prints them (a table, or one JSON
object) and exits non-zero naming the hosts that failed.
"""

import functools
import json
import shlex
import sys

import invoke
from invoke import Exit
from invoke.parser import Argument

from .. import client, inventory, transport, view
from ..errors import FleetError

HOSTS_HELP = "hosts: names, groups, globs (node*) or all, comma-separated (inventory: hosts/*.toml)"
COMMON_HELP = {
    "hosts": HOSTS_HELP,
    "parallel": f"how many hosts at once (default {transport.DEFAULT_PARALLEL})",
    "timeout": "seconds allowed per host, connecting included",
    "json": "print one JSON object instead of a table",
}


def helps(**specific):
    return {**COMMON_HELP, **specific}


class _CheckedArgument(Argument):
    """An option Invoke casts to its default's type: a value that does not cast is a one-line error.

    Invoke lets the ValueError of int("abc") escape as a traceback; every
    other bad input of a task is `error: ...` and exit status 2, so this is too.
    """

    def set_value(self, value, cast=True):
        try:
            super().set_value(value, cast)
        except ValueError:
            raise Exit(f"error: invalid --{self.names[0]} {value!r}: use a whole number", code=2) from None

    def __repr__(self):  # Invoke's own parse errors show it: "Flag --options needed value and was not given one!"
        return f"--{self.names[0]}"


class _CheckedTask(invoke.Task):
    def get_arguments(self, ignore_unknown_help=None):
        arguments = super().get_arguments(ignore_unknown_help)
        for argument in arguments:
            argument.__class__ = _CheckedArgument  # same state, checked casting
        return arguments


task = functools.partial(invoke.task, klass=_CheckedTask)


def fleet_task(function):
    """Turn a FleetError into a one-line message and exit status 2 (and, under --json, one object)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except FleetError as error:  # InventoryError and SpecError too
            if kwargs.get("json_"):  # a script reads stdout: it gets the reason there too, not an empty line
                payload = {"ok": False, "data": None, "failed": [], "error": error.as_dict()}
                sys.stdout.write(json.dumps(payload) + "\n")
            raise Exit(f"error: {error}", code=2) from None

    return wrapper


def shell_words(text, what):
    """text split as a shell would split it; an unclosed quote is a one-line error naming what held it."""
    try:
        return shlex.split(text)
    except ValueError as error:  # "No closing quotation", "No escaped character"
        reason = str(error)[:1].lower() + str(error)[1:]
        raise FleetError(f"cannot split {what} {text!r}: {reason} (quote it as a shell would)") from None


def checked(check, *args):
    """check(*args), a function of fleet.node: a value every host would refuse is refused once, here."""
    from ..node.errors import BaleineError

    try:
        return check(*args)
    except BaleineError as error:
        raise FleetError(error.message) from None


def check_words(argv):
    """Read a helper's argv with the node's own command line, here: a mistyped option is one error, not one per host.

    Only the words are checked (options known, values present); what the
    values mean is for each host to judge against its own state.
    """
    import contextlib
    import io

    from ..node import cli

    argv = [str(arg) for arg in argv]
    kind = next((word for word in argv if word in cli.KINDS), None)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # what --help would print is not wanted here
            checked(cli.build_parser(kind).parse, client.with_json(argv))
    except SystemExit:  # --help or --version among the words
        raise FleetError(f"--help and --version only print: leave them out of `baleine {' '.join(argv)}`") from None


def one_host(spec, flag):
    """The name of the one host spec selects (a name, or a group or glob that matches one host)."""
    chosen = inventory.load().select(spec)
    if len(chosen) != 1:
        names = ", ".join(host.name for host in chosen)
        raise FleetError(f"invalid {flag} {spec!r}: it selects {len(chosen)} hosts ({names}); give one")
    return chosen[0].name


def open_fleet(hosts, parallel=transport.DEFAULT_PARALLEL, timeout=transport.DEFAULT_TIMEOUT):
    loaded = inventory.load()
    chosen = loaded.select(hosts)
    # Invoke has cast both to int (a value that is not one never gets here); Fleet checks their range.
    return transport.Fleet(chosen, parallel=parallel, timeout=timeout, ssh_config=loaded.ssh_config)


def finish(outcomes, as_json, columns=None, rows=None, data=None, what="hosts"):
    """Print the result and exit 1 when any host failed (after printing every host's result)."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if as_json:
        payload = {"ok": not failed, "data": view.merged(outcomes) if data is None else data,
                   "failed": [outcome.error.as_dict() for outcome in failed]}  # fmt: skip
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        if columns is not None:
            print(view.table(columns, rows if rows is not None else []))
        for outcome in outcomes:
            for note in outcome.notes:
                print(f"{outcome.host.name}: {note}", file=sys.stderr)
        print(view.summary(outcomes, what), file=sys.stderr)
    if failed:
        raise Exit(code=1)


def removed_text(names, freed=None, nothing="nothing to remove"):
    """The RESULT of a prune on one host: what went, and the space that freed when known."""
    if not names:
        return nothing
    from ..node.parse import human_size

    text = f"removed {', '.join(names)}"
    return text if freed is None else f"{text} (freed {human_size(freed)})"


def result_rows(outcomes, describe=lambda value: "ok"):
    """HOST | RESULT rows for verbs whose answer is short (start, stop, rm...)."""
    rows = []
    for outcome in outcomes:
        if outcome.ok:
            rows.append([outcome.host.name, describe(outcome.value)])
        else:
            rows.append(view.failed_row(outcome, 2))
    return rows


def each_host(hosts, parallel, timeout, as_json, args, describe=lambda value: "ok", stdin=None):
    """Run one helper verb on every host (stdin: bytes each one reads); a HOST | RESULT table."""
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, *args, stdin=stdin))
    finish(outcomes, as_json, ("HOST", "RESULT"), result_rows(outcomes, describe))


def stream(hosts, argv, as_json, timeout):
    """Run a following helper verb on every host at once and print its lines as they come, `HOST | line`."""
    from ..follow import follow

    if as_json:
        raise FleetError("--follow prints lines as they come: it has no --json (use it without --follow)")

    def write(text):
        sys.stdout.write(text)
        sys.stdout.flush()

    with open_fleet(hosts, timeout=timeout) as fleet:  # every host at once, whatever --parallel says
        try:
            outcomes = follow(fleet, argv, write)
        except KeyboardInterrupt:
            raise Exit(code=130) from None  # Ctrl-C: the streams are closed, and their followers end
    failed = [outcome for outcome in outcomes if not outcome.ok]
    finish(outcomes, False, ("HOST", "RESULT") if failed else None, result_rows(failed))
