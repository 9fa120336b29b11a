"""Call the node helper on a host: ship it when missing, run a verb, parse its one JSON reply.

The helper is shipped to the host as <helper_dir>/baleine-<sha256>.pyz and
unpacked beside it, into <helper_dir>/baleine-<sha256>/ with bytecode of the
host's own Python (fleet/node/unpack.py): calls run it from there, 2.5 ms
sooner each than through the zipapp. Only when that directory is not there
(exit 97 from the guard below) is the zipapp uploaded, checked against its
sha256 on the host, renamed into place and unpacked, and the call repeated.
A host that already has this build costs no extra round trip. Beside them,
<helper_dir>/baleine.pyz links to the zipapp shipped last: the host's cron
entry runs it.
"""

import json
import shlex

from . import ship
from .errors import HelperError, NoPython
from .node import boot
from .node.cron import LATEST

VERB_KINDS = ("image", "network", "volume", "container", "cron", "mirror", "registry")  # `baleine KIND VERB`
HELPER_MISSING = 97
PYTHON_MISSING = 98


def helper_path(host, sha):
    """The shipped zipapp (what the cron entry's link points at)."""
    return f"{helper_tree(host, sha)}.pyz"


def helper_tree(host, sha):
    """The directory the zipapp is unpacked into: what calls run."""
    return f"{host.helper_directory.rstrip('/')}/baleine-{sha}"


def call(session, *args, stdin=None):
    """Run `baleine ARGS --json` on the session's host; returns the reply's data or raises HelperError."""
    argv = [str(arg) for arg in args]
    build = ship.current()
    if stdin is not None and not session.helper_ready:
        ensure_helper(session)  # a stream cannot be replayed after a missing-helper exit
    line = _guarded(session, build.sha, with_json(argv))
    done = session.run(None, stdin=stdin, raw=line)
    if done.exit_code == HELPER_MISSING:
        upload(session, build)
        done = session.run(None, stdin=stdin, raw=line)
    session.helper_ready = True
    return parse_reply(session.host.name, argv, done)


def with_json(argv):
    """argv with --json right after the verb: after a container's COMMAND it would be the command's."""
    at = 2 if argv and argv[0] in VERB_KINDS else 1
    return [*argv[:at], "--json", *argv[at:]]


def start(session, *args):
    """Start a helper verb whose stdout is data (image send); returns its channel."""
    ensure_helper(session)
    return session.start(None, raw=_guarded(session, ship.current().sha, [str(arg) for arg in args]))


def ensure_helper(session):
    """Make sure this build of the helper is on the host (one `test -d` when it is)."""
    build = ship.current()
    tree = helper_tree(session.host, build.sha)
    done = session.run(None, raw=f"test -d {shlex.quote(tree)} || exit {HELPER_MISSING}")
    if done.exit_code == HELPER_MISSING:
        upload(session, build)
    session.helper_ready = True


def upload(session, build):
    """Send the zipapp in one command: written to a temporary name, checked, renamed, then unpacked.

    Then the directory's baleine.pyz link is pointed at it (renamed over, never
    missing): the host's cron entry runs that link, so it runs this helper now.
    """
    host = session.host
    path = helper_path(host, build.sha)
    temp = f"{path}.tmp-upload"
    directory, name = path.rsplit("/", 1)
    link, link_temp = f"{directory}/{LATEST}", f"{directory}/.{LATEST}.tmp-upload"
    q = shlex.quote
    unpack = shlex.join([host.python, "-I", "-S", "-c", boot.UNPACK_LINE, path, helper_tree(host, build.sha)])
    script = (
        f"umask 022 && mkdir -p {q(directory)} && cat > {q(temp)} && "
        f"printf '%s  %s\\n' {build.sha} {q(temp)} | sha256sum -c --status && mv -f {q(temp)} {q(path)} "
        f"&& {{ {unpack} || exit $?; }} "
        f"&& ln -sfn {q(name)} {q(link_temp)} && mv -f {q(link_temp)} {q(link)} "
        f"|| {{ rm -f {q(temp)} {q(link_temp)}; exit 1; }}"
    )
    done = session.run(None, stdin=build.data, raw=script)
    if done.exit_code == boot.PYTHON_TOO_OLD:
        _refuse_old_python(host.name, ["upload", path], done)
    if done.exit_code != 0:
        raise HelperError(
            host.name, ["upload", path], done.exit_code, f"could not install the helper at {path}", done.stderr
        )
    session.notes.append(f"helper {build.sha[:12]} shipped")


def _guarded(session, sha, argv):
    """The command line: fail with 98 without python3, 97 without this helper, else run it."""
    host = session.host
    tree = helper_tree(host, sha)
    python = shlex.quote(host.python)
    run = session.command_line([*boot.argv(host.python, tree), *argv])
    return (
        f"command -v {python} >/dev/null 2>&1 || exit {PYTHON_MISSING}; "
        f"test -d {shlex.quote(tree)} || exit {HELPER_MISSING}; exec {run}"
    )


def _refuse_old_python(host, argv, done):
    message = done.stderr.decode("utf-8", "replace").strip().removeprefix("baleine: error: ")
    raise NoPython(host, argv, done.exit_code, message or "python3 is older than 3.9", done.stderr)


def parse_reply(host, argv, done):
    """The data of a helper's JSON reply, or the HelperError it describes."""
    if done.exit_code == PYTHON_MISSING:
        raise NoPython(host, argv, done.exit_code, "no python3 on this host: install python3 (3.9 or later)")
    if done.exit_code == boot.PYTHON_TOO_OLD:
        _refuse_old_python(host, argv, done)
    lines = [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    try:
        reply = json.loads(lines[-1])
        ok = reply["ok"]
    except (IndexError, ValueError, KeyError, TypeError):
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        what = f"exit {done.exit_code}" + (f": {said[-1][:300]}" if said else ", no output")
        raise HelperError(host, argv, done.exit_code, f"baleine {' '.join(argv)}: no JSON reply ({what})",
                          done.stderr) from None  # fmt: skip
    if not ok:
        error = reply.get("error") or {}
        raise HelperError(
            host, argv, done.exit_code, error.get("message", "failed"), done.stderr, code=error.get("code")
        )
    return reply.get("data")
