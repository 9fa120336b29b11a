"""Control groups, v1 and v2 behind one interface.

The layout is read from /proc/self/mountinfo at run time, so pure v1, hybrid
(v1 controllers plus an empty v2 "unified" tree, as on Debian 11/12 hosts
booted that way) and pure v2 all work. Each container gets
<mount>/<parent>/<container id> in every hierarchy; the parent defaults to
"baleine" and BALEINE_CGROUP_PARENT moves it (the tests use a unique one).
"""

import _signal
import errno
import os
import time

from .errors import BaleineError, Missing

DEFAULT_PARENT = "baleine"
DEVICE_FILTER = "(device filter)"  # limits.device_writes' pseudo-file on v2: the rules for devicefilter.py
V2_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")


def parent_name():
    """The directory every container's cgroup lives under."""
    return os.environ.get("BALEINE_CGROUP_PARENT") or DEFAULT_PARENT


_LAYOUT = []  # this process's: read once (a listing looks at every running container's cgroup)
_FREEZER_V2 = {}  # parent name -> whether its containers freeze through cgroup v2


def hierarchies(mountinfo=None):
    """[(mount point, version, controllers)] for each mounted cgroup hierarchy (this process's by default)."""
    if mountinfo is None:
        if not _LAYOUT:
            _LAYOUT.append(hierarchies("/proc/self/mountinfo"))
        return _LAYOUT[0]
    found, seen = [], set()
    with open(mountinfo, encoding="utf-8") as handle:
        for line in handle:
            before, _, after = line.partition(" - ")
            fstype, _source, options = after.split()[:3]
            mount_point = before.split()[4].replace("\\040", " ")
            if fstype == "cgroup2" and "v2" not in seen:
                seen.add("v2")
                found.append((mount_point, 2, frozenset()))
            elif fstype == "cgroup":
                controllers = frozenset(opt for opt in options.split(",") if opt not in ("rw", "ro"))
                if controllers not in seen:
                    seen.add(controllers)
                    found.append((mount_point, 1, controllers))
    return found


class Cgroup:
    """One container's cgroup in every mounted hierarchy."""

    def __init__(self, name, parent=None, layout=None):
        self.name = name
        self.parent = parent or parent_name()
        self.layout = hierarchies() if layout is None else layout

    def paths(self):
        return [os.path.join(mount, self.parent, self.name) for mount, _, _ in self.layout]

    def _primary(self):
        """The directory whose cgroup.procs lists every process (v2 when mounted)."""
        for (_mount, version, _), path in zip(self.layout, self.paths()):
            if version == 2:
                return path
        return self.paths()[0]

    def create(self):
        for (mount, version, controllers), path in zip(self.layout, self.paths()):
            if version == 2:
                _enable_controllers(mount, os.path.dirname(path))
            _makedirs_racing_removal(path)
            if "cpuset" in controllers:
                # v1 cpuset children start empty and refuse tasks until filled in,
                # at every level below the mount (the parent may be nested: a/b).
                level = mount
                for part in os.path.relpath(path, mount).split(os.sep):
                    level = os.path.join(level, part)
                    _inherit_cpuset(mount, level)

    def path_for(self, controller):
        """The directory holding a controller's files (v2 when controller is None)."""
        for (_mount, version, controllers), path in zip(self.layout, self.paths()):
            if (controller is None and version == 2) or (controller in controllers and version == 1):
                return path
        if controller is None:
            for (_mount, version, _), path in zip(self.layout, self.paths()):
                if version == 2:
                    return path
        raise Missing(f"this host has no {controller or 'cgroup v2'} cgroup controller mounted")

    def apply(self, writes):
        """Write [(controller, file, value)] (see limits.writes); attach the v2 device filter they carry."""
        for controller, name, value in writes:
            if name == DEVICE_FILTER:
                self._filter_devices(*value)
                continue
            optional = name.endswith("?")
            target = os.path.join(self.path_for(controller), name.rstrip("?"))
            if optional and not os.path.exists(target):
                continue
            try:
                with open(target, "w") as handle:
                    handle.write(str(value))
            except FileNotFoundError:
                raise Missing(f"this kernel has no {name} (needed for that limit)") from None
            except OSError as error:
                raise BaleineError(f"the kernel refused {value} in {name}: {error.strerror}") from None

    def _filter_devices(self, allow, deny):
        from . import devicefilter

        try:
            devicefilter.attach(self.path_for(None), allow, deny)
        except OSError as error:
            raise BaleineError(
                f"cannot attach the device filter (a BPF program) to the cgroup: {error.strerror} "
                "(device rules on cgroup v2 need CAP_BPF or CAP_SYS_ADMIN, and CONFIG_CGROUP_BPF)"
            ) from None

    def read(self, controller, name, default=None):
        """A cgroup file's text, or default when the host lacks it."""
        try:
            with open(os.path.join(self.path_for(controller), name)) as handle:
                return handle.read()
        except (OSError, Missing):
            return default

    def usage(self):
        """What the container uses now: cpu_ns, memory, memory_limit, io_read, io_write, pids, oom_kills."""
        return _usage_v2(self) if self.version_for("memory") == 2 else _usage_v1(self)

    def version_for(self, controller):
        """2 when the v2 tree offers this controller here, else 1 (hybrid and v1 hosts)."""
        return 2 if controller in (self.read(None, "cgroup.controllers") or "").split() else 1

    def frozen(self):
        """True while the cgroup is frozen, or asked to be (by `container pause`, or through its files)."""
        controller, name, thawed = (None, "cgroup.freeze", b"0") if self._freezes_in_v2() else (
            "freezer", "freezer.state", b"THAWED")  # fmt: skip
        try:  # os.read, not open(): a listing asks this of every running container
            fd = os.open(os.path.join(self.path_for(controller), name), os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, Missing):
            return False
        try:
            return os.read(fd, 64).strip() not in (thawed, b"")
        except OSError:  # removed between open and read (ENODEV): nothing is left to be frozen
            return False
        finally:
            os.close(fd)

    def _freezes_in_v2(self):
        if not any(v == 1 and "freezer" in c for _, v, c in self.layout):
            return True
        if self.parent not in _FREEZER_V2:  # the same for every container under one parent: looked up once
            _FREEZER_V2[self.parent] = self.version_for("memory") == 2
        return _FREEZER_V2[self.parent]

    def freeze(self, frozen=True, timeout=5.0):
        """Stop (or let go) every process in the cgroup, and wait until the kernel says so."""
        if self._freezes_in_v2():
            control, wanted, events = "cgroup.freeze", "1" if frozen else "0", "cgroup.events"
            self.apply([(None, control, wanted)])
            done = lambda: f"frozen {wanted}" in (self.read(None, events) or "")  # noqa: E731
        else:
            state = "FROZEN" if frozen else "THAWED"
            self.apply([("freezer", "freezer.state", state)])
            done = lambda: (self.read("freezer", "freezer.state") or "").strip() == state  # noqa: E731
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise BaleineError("the container's processes did not freeze in time")
            time.sleep(0.01)

    def thaw(self):
        """Let the processes go if the cgroup is frozen (a signal sent meanwhile reaches them now)."""
        if self.frozen():
            self.freeze(frozen=False)

    def join(self, pid):
        """Move pid (and its future children) into this cgroup everywhere."""
        for path in self.paths():
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write(str(pid))

    def pids(self):
        try:
            with open(os.path.join(self._primary(), "cgroup.procs")) as handle:
                return [int(line) for line in handle if line.strip()]
        except OSError as error:
            # Gone, or removed between open and read (an attached run's own cleanup, or `check`,
            # took it while `stop` looked): its files then answer ENODEV. Either way: no process.
            if error.errno in (errno.ENOENT, errno.ENODEV):
                return []
            raise

    def exists(self):
        return any(os.path.isdir(path) for path in self.paths())

    def kill(self, timeout=5.0):
        """SIGKILL every process in the cgroup and wait until it is empty."""
        kill_file = os.path.join(self._primary(), "cgroup.kill")
        deadline = time.monotonic() + timeout
        looked = False
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            if looked:  # still there: if paused, the v1 freezer holds SIGKILL until the thaw
                self.thaw()
            looked = True
            if os.path.exists(kill_file):
                try:
                    with open(kill_file, "w") as handle:
                        handle.write("1")
                except OSError as error:
                    # Emptied and removed meanwhile (`check` cleans up after a dead container):
                    # its files answer ENODEV, or are gone. The next look finds no pid.
                    if error.errno not in (errno.ENODEV, errno.ENOENT):
                        raise
            else:
                for pid in pids:
                    try:
                        os.kill(pid, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.01)

    def remove(self, timeout=5.0):
        """Remove the cgroup everywhere; each level of the parent too once it is empty."""
        for path in self.paths():
            _rmdir_retry(path, timeout)
            level = os.path.dirname(path)
            for _ in self.parent.split("/"):
                try:
                    os.rmdir(level)
                except OSError:
                    break  # other containers still live under it
                level = os.path.dirname(level)


def _makedirs_racing_removal(path, attempts=5):
    """makedirs, again if another container's rm took the (empty) parent away in between.

    Once our directory is in it, the parent cannot be removed any more.
    """
    for attempt in range(attempts):
        try:
            os.makedirs(path, exist_ok=True)
            return
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise


def _enable_controllers(mount, parent):
    """v2: let children of parent use the controllers limits need (those the host offers)."""
    try:
        with open(os.path.join(mount, "cgroup.controllers")) as handle:
            offered = set(handle.read().split())
    except OSError:
        return
    wanted = [name for name in V2_CONTROLLERS if name in offered]
    if not wanted:
        return  # hybrid hosts: the v2 tree only tracks processes
    os.makedirs(parent, exist_ok=True)
    levels = [mount]
    for part in os.path.relpath(parent, mount).split(os.sep):
        levels.append(os.path.join(levels[-1], part))
    for level in levels:
        try:
            with open(os.path.join(level, "cgroup.subtree_control"), "w") as handle:
                handle.write(" ".join(f"+{name}" for name in wanted))
        except OSError:
            pass  # a controller busy higher up: the limit write will say so


def _stat_fields(text):
    fields = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1].isdigit():
            fields[parts[0] if len(parts) == 2 else " ".join(parts[:-1])] = int(parts[-1])
    return fields


def _usage_v1(group):
    memory_limit = int((group.read("memory", "memory.limit_in_bytes") or "0").strip() or 0)
    io = {"Read": 0, "Write": 0}
    for line in (group.read("blkio", "blkio.throttle.io_service_bytes") or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in io:
            io[parts[1]] += int(parts[2])
    return {
        "cpu_ns": int((group.read("cpuacct", "cpuacct.usage") or "0").strip() or 0),
        "memory": int((group.read("memory", "memory.usage_in_bytes") or "0").strip() or 0),
        "memory_peak": int((group.read("memory", "memory.max_usage_in_bytes") or "0").strip() or 0),
        "memory_limit": None if memory_limit >= 1 << 62 else memory_limit,
        "io_read": io["Read"],
        "io_write": io["Write"],
        "pids": int((group.read("pids", "pids.current") or "0").strip() or 0),
        "oom_kills": _stat_fields(group.read("memory", "memory.oom_control")).get("oom_kill", 0),
    }


def _usage_v2(group):
    limit = (group.read(None, "memory.max") or "max").strip()
    io = {"rbytes": 0, "wbytes": 0}
    for line in (group.read(None, "io.stat") or "").splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key in io:
                io[key] += int(value)
    memory = int((group.read(None, "memory.current") or "0").strip() or 0)
    return {
        "cpu_ns": _stat_fields(group.read(None, "cpu.stat")).get("usage_usec", 0) * 1000,
        "memory": memory,
        "memory_peak": int((group.read(None, "memory.peak") or str(memory)).strip()),  # memory.peak: Linux 5.19+
        "memory_limit": None if limit == "max" else int(limit),
        "io_read": io["rbytes"],
        "io_write": io["wbytes"],
        "pids": int((group.read(None, "pids.current") or "0").strip() or 0),
        "oom_kills": _stat_fields(group.read(None, "memory.events")).get("oom_kill", 0),
    }


class Primer:
    """Keeps the kernel's fast path for cgroup moves open while a container starts.

    A write to cgroup.procs after a quiet spell waits for an RCU grace period
    (13-15 ms measured here, on the cgroup thread-group lock); writes within a
    grace period of the previous one are cheap. A throwaway child moves itself
    into the cgroup it is already in (a no-op), again every few milliseconds,
    until stop(): started before the disk copy, it makes the container's own
    move cheap whenever it comes. It also ends if we die (its pipe closes).
    """

    INTERVAL = 0.004  # well inside a grace period

    def __init__(self, layout=None):
        layout = hierarchies() if layout is None else layout
        mount, own = _own_cgroup(layout)
        stop_read, self._stop = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._stop)
            _keep_moving(os.path.join(mount, own.lstrip("/"), "cgroup.procs"), stop_read)
        os.close(stop_read)

    def stop(self):
        if self._stop is not None:
            os.close(self._stop)
            self._stop = None
            os.waitpid(self.pid, 0)


def _keep_moving(procs, stop_read):
    """In the primer child: move into our own cgroup until stop_read says stop. Never returns."""
    import select

    try:
        while True:
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))
            if select.select([stop_read], [], [], Primer.INTERVAL)[0]:
                break
    finally:
        os._exit(0)  # a failure only means no head start


def _own_cgroup(layout):
    """(mount point, our path) in the first hierarchy of layout."""
    mount, version, controllers = layout[0]
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            _, names, path = line.rstrip("\n").split(":", 2)
            listed = frozenset(name for name in names.split(",") if name)
            if (version == 2 and not names) or (version == 1 and listed == controllers):
                return mount, path
    return mount, "/"


def _inherit_cpuset(mount, path):
    for name in ("cpuset.cpus", "cpuset.mems"):
        target = os.path.join(path, name)
        with open(target) as handle:
            if handle.read().strip():
                continue
        source = os.path.dirname(path)
        while True:
            with open(os.path.join(source, name)) as handle:
                value = handle.read().strip()
            if value or source == mount:
                break
            source = os.path.dirname(source)
        with open(target, "w") as handle:
            handle.write(value)


def _rmdir_retry(path, timeout):
    # A cgroup whose last process just died can stay busy for a moment.
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != 16 or time.monotonic() > deadline:
                raise
            time.sleep(0.002)
