"""Resource limits (setrlimit) of a container's processes: the same whoever starts it.

A process inherits its limits from whoever started it: a container started
by hand from an SSH session, by `check` from cron or by `invoke deploy`
would get three different open-file limits. So every container starts from
the limits of the host's pid 1, what its services start with, read at each
start, and `--ulimit NAME=SOFT[:HARD]` sets any of them (Docker's names).
They are set on the container's init before its command runs, and on every
`exec`; so is `--oom-score-adj`, which the OOM killer adds to a process's
score.
"""

import os

from .errors import Invalid, StartFailed

# Docker's --ulimit names and the line of /proc/PID/limits each one is, in the kernel's order: the
# index is the RLIMIT_ number (asm-generic/resource.h; Python's resource module lacks RLIMIT_LOCKS).
NAMES = {
    "cpu": "Max cpu time", "fsize": "Max file size", "data": "Max data size", "stack": "Max stack size",
    "core": "Max core file size", "rss": "Max resident set", "nproc": "Max processes", "nofile": "Max open files",
    "memlock": "Max locked memory", "as": "Max address space", "locks": "Max file locks",
    "sigpending": "Max pending signals", "msgqueue": "Max msgqueue size", "nice": "Max nice priority",
    "rtprio": "Max realtime priority", "rttime": "Max realtime timeout",
}  # fmt: skip
UNLIMITED = -1  # as stored; RLIM_INFINITY to the kernel


def parse(values):
    """--ulimit values -> {name: [soft, hard]}; the last given for a name wins."""
    chosen = {}
    for value in values:
        name, equals, numbers = value.partition("=")
        if name not in NAMES or not equals:
            raise Invalid(f"invalid --ulimit {value!r}: use NAME=SOFT[:HARD] with NAME one of {', '.join(NAMES)}")
        soft_text, _, hard_text = numbers.partition(":")
        soft, hard = _number(soft_text, value), _number(hard_text or soft_text, value)
        if hard != UNLIMITED and (soft == UNLIMITED or soft > hard):
            raise Invalid(f"invalid --ulimit {value!r}: the soft limit is above the hard one")
        if name == "nofile":
            _refuse_above_nr_open(hard, value)
        chosen[name] = [soft, hard]
    return chosen


def _number(text, value):
    if text in ("unlimited", "-1"):
        return UNLIMITED
    if not text.isdigit():
        raise Invalid(f"invalid --ulimit {value!r}: limits are whole numbers or 'unlimited'")
    return int(text)


def _refuse_above_nr_open(hard, value):
    """The kernel refuses more open files than fs.nr_open: say so now rather than at every start."""
    with open("/proc/sys/fs/nr_open") as handle:
        ceiling = int(handle.read())
    if hard == UNLIMITED or hard > ceiling:
        raise Invalid(f"invalid --ulimit {value!r}: this host allows at most {ceiling} open files (fs.nr_open)")


def base(path="/proc/1/limits"):
    """{name: [soft, hard]} of the host's pid 1 (its services' defaults); {} if it cannot be read."""
    by_line = {line: name for name, line in NAMES.items()}
    found = {}
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        name = by_line.get(line[:26].strip())
        fields = line[26:].split()
        if name and len(fields) >= 2:
            found[name] = [UNLIMITED if text == "unlimited" else int(text) for text in fields[:2]]
    return found


def _oom_score_adj(pid, value):
    """What the kernel's OOM killer adds to the process's score; inherited by all it starts."""
    try:
        fd = os.open(f"/proc/{pid or 'self'}/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except PermissionError:
        raise StartFailed(
            f"cannot set --oom-score-adj {value}: going below the current score takes CAP_SYS_RESOURCE"
        ) from None


def apply(pid, config):
    """Give process pid (0: this one), a child of ours, pid 1's limits with the container's own on top,
    and the container's OOM score adjustment.

    Only the limits that differ from ours (which pid inherited) are set.
    Raising a hard limit takes CAP_SYS_RESOURCE. Without it, a limit of pid
    1's that is above our own hard limit is capped there, and a container's
    own limit that cannot be set fails the start.
    """
    from . import linux

    if "oom_score_adj" in config:
        _oom_score_adj(pid, config["oom_score_adj"])
    own, ours = config.get("ulimits", {}), base("/proc/self/limits")
    for name, (soft, hard) in {**base(), **own}.items():
        if ours.get(name) == [soft, hard]:
            continue
        number = list(NAMES).index(name)
        try:
            linux.prlimit(pid, number, soft, hard)
        except PermissionError:
            ceiling = ours[name][1]
            if name in own:
                raise StartFailed(
                    f"cannot set --ulimit {name}={_text(soft)}:{_text(hard)}: the most this process may set without "
                    f"CAP_SYS_RESOURCE is {_text(ceiling)}"
                ) from None
            linux.prlimit(pid, number, _lowest(soft, ceiling), _lowest(hard, ceiling))
        except OSError as error:
            raise StartFailed(f"the kernel refused {name} {_text(soft)}:{_text(hard)}: {error.strerror}") from None


def _lowest(limit, ceiling):
    """The lower of two limits, either of which may be unlimited (-1)."""
    if UNLIMITED in (limit, ceiling):
        return limit if ceiling == UNLIMITED else ceiling
    return min(limit, ceiling)


def _text(number):
    return "unlimited" if number == UNLIMITED else str(number)
