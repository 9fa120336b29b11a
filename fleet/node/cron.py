"""`baleine cron install|remove|status`: one file in /etc/cron.d runs `baleine check`.

The entry names the baleine that installed it by absolute path and the state
root (and cgroup parent) in use, so cron checks exactly what was installed.
BALEINE_CRON_FILE moves the file (the tests use their own).
"""

import os
import shlex
import sys

from . import state
from .errors import Invalid

DEFAULT_FILE = "/etc/cron.d/baleine"
HEADER = "# baleine check, the cron pass that replaces a daemon (baleine cron install; baleine cron remove)\n"


def cron_file():
    return os.environ.get("BALEINE_CRON_FILE") or DEFAULT_FILE


LATEST = "baleine.pyz"  # beside the shipped helpers: a symlink the control side points at each one it ships


def self_command():
    """argv that runs baleine: the zipapp, or the directory it was unpacked into, under python3 -I -S
    (the latest shipped one), or the installed script.

    A helper shipped by the control side (unpacked, fleet/node/unpack.py)
    sits beside the LATEST link: cron runs the link, so the next helper
    shipped is the one cron runs, without installing the entry again.
    """
    import zipfile

    program = os.path.abspath(sys.argv[0])
    if os.path.isdir(program) or zipfile.is_zipfile(program):
        latest = os.path.join(os.path.dirname(program), LATEST)
        if os.path.islink(latest) and zipfile.is_zipfile(latest):
            program = latest
        return [sys.executable, "-I", "-S", program]
    return [program]


def minutes(every):
    """--every (an int, or its digits as given) as a whole number of minutes from 1 to 59: a cron step
    within the hour. The control side's health.schedule checks its own --every with it too."""
    text = str(every)
    if isinstance(every, bool) or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 59:
        raise Invalid(f"invalid --every {every!r}: use a number of minutes from 1 to 59")
    return int(text)


def entry(every):
    """The cron.d text for a pass every `every` minutes."""
    every = minutes(every)
    environment = [f"BALEINE_ROOT={shlex.quote(state.root())}"]
    parent = os.environ.get("BALEINE_CGROUP_PARENT")
    if parent:
        environment.append(f"BALEINE_CGROUP_PARENT={shlex.quote(parent)}")
    command = shlex.join([*self_command(), "check"])
    log = shlex.quote(state.path("check.log"))
    schedule = "*" if every == 1 else f"*/{every}"
    # cron's own PATH lacks the sbin directories where ip and mkfs.ext4 live.
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    return f"{HEADER}{path}{schedule} * * * * root {' '.join(environment)} {command} >> {log} 2>&1\n"


def install(every=1):
    """Write the cron file; says whether it changed (installing twice is harmless)."""
    text = entry(every)
    changed = _read() != text
    if changed:
        state.write_atomic(cron_file(), text, mode=0o644)
    return {"file": cron_file(), "changed": changed, "entry": text.splitlines()[-1]}


def remove():
    try:
        os.unlink(cron_file())
        return {"file": cron_file(), "changed": True}
    except FileNotFoundError:
        return {"file": cron_file(), "changed": False}


def status():
    text = _read()
    line = text.splitlines()[-1] if text else None
    every = None
    if line:
        minute = line.split()[0]
        every = 1 if minute == "*" else int(minute.split("/")[1])
    return {"file": cron_file(), "installed": text is not None, "every": every, "entry": line}


def _read():
    try:
        with open(cron_file(), encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
