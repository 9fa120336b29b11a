"""`container top`: the processes of a running container, read from /proc on the host.

Every process in the container's pid namespace is listed, with its pid as
the container sees it and as the host does (the one to give `kill` or
`strace` here). Ids are the container's: under --userns, the host's uid
less the range's first id. Nothing runs inside the container, and no file
of its is read: the figures come from the host's /proc, so a container
cannot change what is shown about it beyond its own command lines.
"""

import os

from . import state
from .errors import Conflict


def top(ref):
    """The container's processes, in the order they started.

    Each a dict: pid, host_pid, ppid (the container's pids), uid, state (ps's letter), cpu_seconds, started
    (UTC, as the tables store times) and command (its arguments).
    """
    from . import containers

    row = containers.current(ref)
    containers.require_running(row, "no processes to show")
    base = int(containers.read_config(row).get("userns") or 0)
    init = int(row["pid"])
    namespace = _pid_namespace(init)
    found = [info for info in map(_read, containers.cgroup_of(row).pids()) if info and info.pop("ns") == namespace]
    inside = {info["host_pid"]: info["pid"] for info in found}
    for info in found:
        info["ppid"] = inside.get(info.pop("host_ppid"), 0)  # the init's parent is outside: 0, as ps shows it
        info["uid"] = info["uid"] - base if base and info["uid"] >= base else info["uid"]
    found.sort(key=lambda info: (info["started"], info["pid"]))
    booted = _boot_time()
    for info in found:
        info["started"] = state.now(booted + info["started"])
    return found


def _boot_time():
    with open("/proc/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"btime "):
                return int(line.split()[1])
    raise Conflict("this kernel's /proc/stat gives no boot time")


def _pid_namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except FileNotFoundError:
        raise Conflict("the container stopped meanwhile") from None


def _read(host_pid):
    """One process's figures from /proc, or None if it has gone meanwhile."""
    try:
        with open(f"/proc/{host_pid}/stat", "rb") as handle:
            stat = handle.read()
        with open(f"/proc/{host_pid}/status", "rb") as handle:
            status = dict(line.split(b":", 1) for line in handle.read().splitlines() if b":" in line)
        with open(f"/proc/{host_pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
        namespace = os.readlink(f"/proc/{host_pid}/ns/pid")
    except (FileNotFoundError, ProcessLookupError):
        return None
    name = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
    fields = stat[stat.rindex(b")") + 2 :].split()  # fields[0] is the state, the kernel's field 3
    ticks = os.sysconf("SC_CLK_TCK")
    arguments = [part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1]]
    return {
        "pid": int(status[b"NSpid"].split()[-1]),  # the innermost namespace's: the container's
        "host_pid": host_pid,
        "host_ppid": int(fields[1]),
        "uid": int(status[b"Uid"].split()[1]),  # effective
        "state": fields[0].decode(),
        "cpu_seconds": round((int(fields[11]) + int(fields[12])) / ticks, 2),
        "started": int(fields[19]) / ticks,  # after boot
        "command": arguments or [f"[{name.decode(errors='replace')}]"],
        "ns": namespace,
    }
