"""The helper's entry: refuse a Python older than 3.9 in words, then run the command line.

Nothing here may use syntax newer than Python 3.0: an old interpreter has to
get this far to say what is wrong instead of failing on a newer construct.
"""

import sys

PYTHON_TOO_OLD = 96  # the exit status the control side reads as "python3 too old"
# How the control side runs a helper zipapp: `python3 -I -S -c LINE ZIPAPP ARGS` (cron runs the file).
# Running the zipapp itself goes through runpy, whose imports cost every command 3.5 ms.
# sys.argv is left as a zipapp run would leave it: [ZIPAPP, ARGS...].
LINE = "import sys;sys.path[0:0]=sys.argv[1:2];del sys.argv[0];import fleet.node.boot as b;b.run()"
# How the control side unpacks a shipped zipapp into the directory it runs commands from
# (fleet/node/unpack.py): `python3 -I -S -c UNPACK_LINE ZIPAPP DIRECTORY`.
UNPACK_LINE = "import sys;sys.path[0:0]=sys.argv[1:2];import fleet.node.boot as b;b.unpack(*sys.argv[1:3])"


def argv(python, zipapp):
    """The command that runs the helper in zipapp (its arguments go after it)."""
    return [python, "-I", "-S", "-c", LINE, zipapp]


def run():
    _refuse_old_python()
    from fleet.node.cli import exit_now, main

    exit_now(main())


def unpack(zipapp, directory):
    _refuse_old_python()
    from fleet.node.unpack import unpack

    unpack(zipapp, directory)


def _refuse_old_python():
    if sys.version_info < (3, 9):  # noqa: UP036 - the very check an old host needs
        version = "%d.%d" % sys.version_info[:2]  # noqa: UP031 - no f-string: Python 3.0 must parse this file
        sys.stderr.write("baleine: error: python3 is " + version + " on this host; baleine needs 3.9 or later\n")
        sys.exit(PYTHON_TOO_OLD)
