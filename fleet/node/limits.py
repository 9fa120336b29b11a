"""Resource limits: parse them, check them, and turn them into cgroup file writes.

Pure functions: `writes(limits, version, disk)` says which files get which
values for cgroup v1 or v2; cgroups.Cgroup applies them. The same limits
dict lives in a container's config.json and is shown by list and inspect.
"""

import math
import os

from . import parse
from .cgroups import DEVICE_FILTER
from .errors import Invalid

DEFAULT_PIDS = 2048
PIDS_MOST = 4 << 20  # the kernel's PID_MAX_LIMIT: pids.max takes no more
CFS_PERIOD = 100_000  # microseconds
IO_KEYS = ("io_read_bps", "io_write_bps", "io_read_iops", "io_write_iops")
_V1_IO_FILES = {
    "io_read_bps": "blkio.throttle.read_bps_device",
    "io_write_bps": "blkio.throttle.write_bps_device",
    "io_read_iops": "blkio.throttle.read_iops_device",
    "io_write_iops": "blkio.throttle.write_iops_device",
}
_V2_IO_KEYS = {"io_read_bps": "rbps", "io_write_bps": "wbps", "io_read_iops": "riops", "io_write_iops": "wiops"}
# The nodes a container's /dev holds (sandbox.DEVICES) plus its ptys: all it may open by default.
DEFAULT_DEVICES = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm",
                   "c 136:* rwm")  # fmt: skip
_DEVICE_RULE = r"[abc] (\d+|\*):(\d+|\*) [rwm]{1,3}"
_CPU_LIST = r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*"  # ASCII digits: the kernel reads no other
CPU_LIMIT = 8192  # the kernel's largest NR_CPUS: a CPU number is below it


def shares_to_weight(shares):
    """cgroup v1 cpu.shares -> v2 cpu.weight, as runc and crun convert today.

    cpu.weight = ceil(10^(L^2/612 + 125L/612 - 7/34)) with L = log2(shares):
    it maps the ranges' ends onto each other (2 -> 1, 262144 -> 10000) and the
    defaults too (1024 -> 100), which the older linear formula did not (39).
    """
    shares = min(max(int(shares), 2), 262_144)
    level = math.log2(shares)
    return min(10_000, math.ceil(10 ** (level * level / 612 + 125 * level / 612 - 7 / 34)))


def cpu_list(text):
    """Expand '0-2,5' to {0, 1, 2, 5}."""
    if not parse.matches(_CPU_LIST, text):
        raise Invalid(f"invalid CPU list {text!r}: use numbers and ranges such as 0-1,3")
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = _cpu_number(low, text), _cpu_number(high or low, text)
        if last < first:
            raise Invalid(f"invalid CPU list {text!r}: the range {part} runs backwards; use {high}-{low}")
        cpus.update(range(first, last + 1))
    return cpus


def _cpu_number(digits, text):
    """A CPU's number, refused past what any kernel has (before a range of billions is counted out)."""
    number = parse.ascii_number(digits, CPU_LIMIT - 1)
    if number is None:
        raise Invalid(f"invalid CPU list {text!r}: CPU {digits} is past the last a kernel can have, {CPU_LIMIT - 1}")
    return number


def io_rate(text, what, rate_kind):
    """'[DEV:]RATE' -> (device 'MAJ:MIN' or None for the container's own disk, number)."""
    device, sep, rate = text.rpartition(":")
    if sep and not device:
        raise Invalid(f"invalid {what} {text!r}: use RATE or DEVICE:RATE")
    if rate_kind == "bps":
        number = parse.size(rate, what)
    else:
        number = parse.positive_int(rate, what)
        if number == 0:
            raise Invalid(f"invalid {what} {text!r}: must be at least 1")
    return (block_device(device, what) if device else None), number


def block_device(path, what):
    """A block device path (or 'MAJ:MIN') as 'MAJ:MIN'; it must exist."""
    if parse.matches(r"\d+:\d+", path):
        return path
    try:
        info = os.stat(path)
    except OSError:
        raise Invalid(f"invalid {what}: no such device {path!r}") from None
    import stat

    if not stat.S_ISBLK(info.st_mode):
        raise Invalid(f"invalid {what}: {path!r} is not a block device")
    return f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"


def device_rule(text):
    """A devices cgroup rule: 'TYPE MAJ:MIN ACCESS', e.g. 'c 10:200 rwm'."""
    rule = " ".join(text.split())
    if not parse.matches(_DEVICE_RULE, rule):
        raise Invalid(f"invalid device rule {text!r}: use TYPE MAJ:MIN ACCESS such as 'c 10:200 rwm' (types a b c)")
    return rule


def from_options(memory=None, cpus=None, cpu_shares=None, cpuset_cpus=None, pids_limit=None, device_allow=(),
                 device_deny=(), host_cpus=None, **io):  # fmt: skip
    """Validated limits from command-line values (None: not given). Refuses before anything changes."""
    limits = {}
    if memory is not None:
        limits["memory"] = parse.size(memory, "--memory", minimum=4 << 20)
    if cpus is not None:
        limits["cpus"] = _cpus(cpus, host_cpus)
    if cpu_shares is not None:
        shares = parse.positive_int(cpu_shares, "--cpu-shares")
        if not 2 <= shares <= 262_144:
            raise Invalid(f"invalid --cpu-shares {cpu_shares!r}: use 2 to 262144 (1024 is the default weight)")
        limits["cpu_shares"] = shares
    if cpuset_cpus is not None:
        _cpuset(cpuset_cpus, host_cpus)
        limits["cpuset_cpus"] = cpuset_cpus
    if pids_limit is not None:
        limits["pids"] = parse.positive_int(pids_limit, "--pids-limit", PIDS_MOST) or None
        if limits["pids"] is None:
            raise Invalid(f"invalid --pids-limit {pids_limit!r}: use 1 or more")
    for key in IO_KEYS:
        values = io.pop(key, None) or []
        if values:
            what = "--" + key.replace("_", "-")
            limits[key] = [io_rate(value, what, "bps" if key.endswith("bps") else "iops") for value in values]
    if io:
        raise TypeError(f"unknown limits {sorted(io)}")
    if device_allow or device_deny:
        allow, deny = [device_rule(r) for r in device_allow], [device_rule(r) for r in device_deny]
        limits["devices"] = {"allow": allow, "deny": deny}
    return limits


def with_defaults(limits):
    """Limits a new container starts with: the given ones, pids capped by default."""
    return {"pids": DEFAULT_PIDS, **limits}


def _cpus(text, host_cpus):
    try:
        cpus = float(text)
    except ValueError:
        cpus = -1.0
    host = host_cpus or len(os.sched_getaffinity(0))
    if not 0.01 <= cpus <= host:
        raise Invalid(f"invalid --cpus {text!r}: use a number from 0.01 to {host} (the CPUs this host has)")
    return cpus


def _cpuset(text, host_cpus):
    wanted = cpu_list(text)
    available = set(range(host_cpus)) if host_cpus else os.sched_getaffinity(0)
    missing = sorted(wanted - available)
    if missing:
        raise Invalid(f"invalid --cpuset-cpus {text!r}: CPU {missing[0]} is not available (this host has "
                      f"{','.join(map(str, sorted(available)))})")  # fmt: skip


def writes(limits, version, previous_memory=None):
    """[(controller, file, value)] applying the limits set before any process joins.

    previous_memory: the memory limit in force (None: unlimited), to order v1's writes.

    controller names the v1 hierarchy to write in (None on v2); a file name
    ending in '?' is written only where the kernel offers that file.
    """
    out = []
    if "memory" in limits:
        out += _memory(limits["memory"], version, previous_memory)
    if "cpus" in limits:
        quota = max(1000, int(limits["cpus"] * CFS_PERIOD))
        out += [("cpu", "cpu.cfs_period_us", CFS_PERIOD), ("cpu", "cpu.cfs_quota_us", quota)] if version == 1 else [
            (None, "cpu.max", f"{quota} {CFS_PERIOD}")]  # fmt: skip
    if "cpu_shares" in limits:
        out += [("cpu", "cpu.shares", limits["cpu_shares"])] if version == 1 else [
            (None, "cpu.weight", shares_to_weight(limits["cpu_shares"]))]  # fmt: skip
    if "cpuset_cpus" in limits:
        out.append(("cpuset" if version == 1 else None, "cpuset.cpus", limits["cpuset_cpus"]))
    if limits.get("pids"):
        out.append(("pids" if version == 1 else None, "pids.max", limits["pids"]))
    return out


def disk_writes(limits, version, disk, devices=()):
    """What waits until the container's disk is mounted: io throttling and device rules.

    Device rules wait because the init itself must open the loop device first.
    devices: the container's --device nodes, allowed with their PERMS.
    """
    return io_writes(limits, version, disk) + device_writes(limits, version, devices)


def _memory(size, version, previous):
    if version == 2:
        return [(None, "memory.max", size), (None, "memory.swap.max?", 0)]  # swap.max: with swap accounting
    # memsw (memory + swap) equal to memory: no swap; only there with swap accounting on.
    # The kernel wants memsw >= memory at every step: raise memsw first, lower it last.
    memory = ("memory", "memory.limit_in_bytes", size)
    memsw = ("memory", "memory.memsw.limit_in_bytes?", size)
    ordered = [memsw, memory] if previous is not None and size > previous else [memory, memsw]
    return [*ordered, ("memory", "memory.swappiness", 0)]


def io_writes(limits, version, disk):
    """The io throttling writes; those without a device need the disk's MAJ:MIN."""
    rules = {}
    for key in IO_KEYS:
        for device, rate in limits.get(key, []):
            device = device or disk
            if device is not None:
                rules.setdefault(device, {})[key] = rate
    if version == 1:
        return [("blkio", _V1_IO_FILES[key], f"{device} {rate}") for device, rates in rules.items()
                for key, rate in rates.items()]  # fmt: skip
    return [(None, "io.max", f"{device} " + " ".join(f"{_V2_IO_KEYS[k]}={v}" for k, v in rates.items()))
            for device, rates in rules.items()]  # fmt: skip


def device_writes(limits, version, devices=()):
    """Device rules: deny all, allow our /dev nodes and --device ones, then the user's allow and deny rules.

    v1 takes them as writes to devices.deny and devices.allow, in that order.
    v2 has no such files: one pseudo-write, DEVICE_FILTER, carries (allow, deny)
    for Cgroup.apply to attach as a BPF program deciding the same (devicefilter.py).
    """
    extra = limits.get("devices", {})
    passed = [f"{node['type']} {node['major']}:{node['minor']} {node['access']}" for node in devices]
    allow, deny = (*DEFAULT_DEVICES, *passed, *extra.get("allow", [])), tuple(extra.get("deny", []))
    if version == 2:
        return [(None, DEVICE_FILTER, (allow, deny))]
    out = [("devices", "devices.deny", "a")]
    out += [("devices", "devices.allow", rule) for rule in allow]
    out += [("devices", "devices.deny", rule) for rule in deny]
    return out
