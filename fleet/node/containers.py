"""Containers: records in containers.csv, a directory each, and their lifecycle.

A container's directory (containers/<id>/) holds its disk copy (disk.ext4),
config.json (command, env, volumes, workdir, user, hostname: what does not
fit a cell), the /etc files baleine writes, its log and the waiter's exit
file. Its row holds everything else. Slow work (copying a disk, waiting for a
process) is done outside the state lock; decisions are made inside it.
"""

import _signal
import os

from . import cgroups, etcfiles, events, images, jsonlite, limits, linux, networks, parse, state
from .errors import Conflict, Damaged, Invalid, Missing, NotFound, StartFailed
from .faults import point

RUNNING, CREATED, EXITED = "running", "created", "exited"
CREATING, STARTING = "creating", "starting"  # transitional: a command is at work
INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
STOP_TIMEOUT = 10.0  # seconds from the stop signal to SIGKILL, unless --stop-timeout or stop --time says


def directory(row):
    return state.path("containers", row["id"])


def cgroup_of(row):
    return cgroups.Cgroup(row["id"])


FREED = "-"  # a slot a running container was disconnected from: the interfaces after it keep their names


def slots(row):
    """[(network, address) or None] by interface index, eth0 first; None where a network was disconnected live.

    The gaps go at the next start, which numbers the interfaces afresh.
    """
    cell = row.get("networks") or ""
    return [None if item == FREED else tuple(item.split("=", 1)) for item in cell.split(",") if item]


def attachments(row):
    """[(network, address)] in interface order."""
    return [pair for pair in slots(row) if pair is not None]


def format_attachments(pairs):
    """The networks cell of [(network, address) or None]."""
    return ",".join(FREED if pair is None else f"{pair[0]}={pair[1]}" for pair in pairs)


def read_config(row):
    return state.read_json(config_path(row), "restore it, or remove the container")


def write_config(row, config):
    """Replace the container's config.json; root's alone: its env may hold secrets (as Docker keeps it)."""
    state.write_atomic(config_path(row), jsonlite.dumps(config, indent=2) + "\n", mode=0o600)


def config_path(row):
    return os.path.join(directory(row), "config.json")


def by_id(container_id, rows=None):
    """The row of the container with this full id, or None: what a command that found it by name uses
    afterwards, as a `container rename` may change the name meanwhile."""
    return state.CONTAINERS.find(container_id, rows)


def get(ref, rows=None):
    """A container by name, or by a unique prefix (3+ characters) of its id."""
    rows = state.CONTAINERS.read() if rows is None else rows
    for row in rows:
        if row["name"] == ref:
            return row
    matches = [row for row in rows if len(ref) >= 3 and row["id"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    raise NotFound(f"no such container {ref!r}")


# ----------------------------------------------------------------- create


def create(
    image, command=(), name=None, network=(), hostname=None, env=(), volume=(), workdir=None, user=None,
    cap_add=(), cap_drop=(), resources=None, read_only=False, no_suid=False, userns=False, restart_policy=None,
    health=None, log_size=None, security_opt=(), stop_signal=None, stop_timeout=None, ulimit=(), init=False,
    tmpfs=(), labels=(), dns=(), dns_search=(), dns_option=(), add_host=(), device=(), sysctl=(), shm_size=None,
    entrypoint=None, group_add=(), oom_score_adj=None, starting=False, auto_remove=False,
):  # fmt: skip
    """Record a container and give it its own copy of the image; returns its row.

    starting: run() starts it next. The row then stays 'creating', naming this
    process, until start() claims it: one synced write fewer, and a run cut
    short in between leaves a half-created container for check to remove,
    not one that looks made on purpose.
    auto_remove: run --rm's. The container is never started again: this
    process removes it when its command ends, check does if this process is
    gone by then (also after a crash of the host), so its disk copy is not
    synced to the disk.
    """
    if name is not None:
        parse.name(name, "container name")
    wanted = [parse.network_ref(ref) for ref in network]
    _refuse_repeats([net for net, _ in wanted])
    host_network = _host_network(wanted, userns)
    if host_network:
        wanted = []
    image_row = images.for_container(image)
    config = _container_config(
        image_row["name"], list(command), env, volume, workdir, user, hostname, stop_signal, entrypoint
    )
    config["capabilities"] = _capabilities(cap_add, cap_drop)
    config["tmpfs"] = _tmpfs_mounts(tmpfs, config["volumes"])
    config["labels"] = dict(parse.label(value) for value in labels)  # a key given twice: the last one
    config.update(_name_service(dns, dns_search, dns_option, add_host, wanted))
    if device:
        config["devices"] = _devices(device)
    if sysctl:
        config["sysctls"] = dict(parse.sysctl(value, host_network) for value in sysctl)  # a key twice: the last
    if shm_size is not None:
        config["shm_size"] = parse.size(shm_size, "--shm-size", minimum=4096)
    if group_add:
        config["group_add"] = [parse.group(value) for value in group_add]
    if oom_score_adj is not None:
        config["oom_score_adj"] = parse.oom_score_adj(oom_score_adj)
    config.update(_process_settings(security_opt, ulimit, init, stop_timeout))
    config["limits"] = limits.with_defaults(resources or {})
    config["read_only"], config["no_suid"] = bool(read_only), bool(no_suid)
    from . import logs, restart

    config["restart"] = restart.parse(restart_policy)
    if auto_remove:
        if config["restart"]["policy"] != "no":
            raise Invalid(f"--rm and --restart {restart_policy}: a container removed when it ends is never "
                          "restarted; give one of them")  # fmt: skip
        config["auto_remove"] = _worker()  # the process that removes it, while it lives
    config["health"] = health
    config["log_size"] = logs.DEFAULT_LIMIT if log_size is None else log_size
    config["userns"] = bool(userns)  # replaced by the range's start in _reserve
    config["host_network"] = host_network
    row = _reserve(image_row["name"], name, wanted, config)
    point("create:reserved")
    try:
        _ensure_volumes(config)
        disk = os.path.join(directory(row), "disk.ext4")
        images.copy_to(image_row["name"], disk, durable=not auto_remove)
        if config["userns"]:
            from . import userns as user_namespaces

            user_namespaces.shift_disk(disk, config["userns"])
        point("create:copied")
    except BaseException:
        _discard(row)
        raise
    if not starting:
        with state.locked():
            row = state.CONTAINERS.update(row["id"], status=CREATED, pid="", pid_start="")
    events.record("create", row, image=image_row["name"])
    point("create:done")
    return row


def _host_network(wanted, userns):
    """True for `--network host`, which must come alone: the container keeps the host's network."""
    if all(net != networks.HOST for net, _ in wanted):
        return False
    if len(wanted) > 1 or wanted[0][1]:
        raise Invalid("--network host comes alone and without an address: the container uses the host's own")
    if userns:
        raise Invalid("--network host and --userns do not mix: root inside would share the host's network")
    return True


def _name_service(servers, search, options, add_host, wanted):
    """--dns, --dns-search, --dns-option and --add-host, checked; only what was given is kept.

    host-gateway becomes the gateway of the first network, the host's own
    address there, fixed at create as in Docker.
    """
    dns = {
        "servers": [parse.dns_server(value) for value in servers],
        "search": [parse.dns_search(value) for value in search],
        "options": [parse.dns_option(value) for value in options],
    }
    if etcfiles.NO_SEARCH in dns["search"] and len(dns["search"]) > 1:
        raise Invalid("invalid --dns-search: '.' means no search domain, so it comes alone")
    hosts = [parse.extra_host(value) for value in add_host]
    if any(address == parse.HOST_GATEWAY for _, address in hosts):
        if not wanted:
            raise Invalid("--add-host NAME:host-gateway needs a bridge network: the host's address is its gateway")
        first = networks.get(wanted[0][0])
        if first.get("internal"):
            raise Invalid(f"--add-host NAME:host-gateway: network {first['name']!r} is internal, the host is not on it")
        gateway = first["gateway"]
        hosts = [(host, gateway if address == parse.HOST_GATEWAY else address) for host, address in hosts]
    settings = {"dns": {key: values for key, values in dns.items() if values}} if any(dns.values()) else {}
    return dict(settings, extra_hosts=[list(pair) for pair in hosts]) if hosts else settings


def _devices(values):
    """Parsed --device values; two on one container path would be one node."""
    from .sandbox import DEV_PATHS

    devices = [parse.device(value, DEV_PATHS) for value in values]
    paths = [device["path"] for device in devices]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise Invalid(f"invalid --device: {repeated[0]} is given twice as a container path")
    return devices


def _refuse_repeats(nets):
    repeated = {net for net in nets if nets.count(net) > 1}
    if repeated:
        raise Invalid(f"network {sorted(repeated)[0]!r} given twice: a container joins a network once")


def _container_config(image, command, env, volume, workdir, user, hostname, stop_signal, entrypoint=None):
    """Resolve the command, env, workdir, user and stop signal against the image's defaults, Docker's way.

    entrypoint (--entrypoint) replaces the image's ENTRYPOINT and, as in Docker,
    its CMD too; "" leaves none, so the command is the given one or CMD.
    """
    defaults = images.config(image)
    if entrypoint:
        argv = [entrypoint, *command]
    elif entrypoint == "":
        argv = command or list(defaults.get("Cmd") or [])
    else:
        argv = list(defaults.get("Entrypoint") or []) + (command or list(defaults.get("Cmd") or []))
    if not argv:
        raise Invalid(f"no command given and image {image!r} has no default command")
    return {
        "command": argv,
        "env": _merge_env(defaults.get("Env") or [], env),
        "volumes": _volumes(volume),
        "workdir": parse.workdir(workdir) if workdir else defaults.get("WorkingDir") or "/",
        "user": parse.user(user) if user else defaults.get("User") or "",
        "hostname": parse.hostname(hostname) if hostname else None,
        "stop_signal": parse.signal_name(stop_signal) if stop_signal else _image_stop_signal(defaults, image),
    }


def _merge_env(base, more):
    """KEY=VALUE items: base's, with more's (checked) added or replacing them."""
    merged = dict(item.split("=", 1) for item in base if "=" in item)
    merged.update(parse.env(item) for item in more)
    return [f"{key}={value}" for key, value in merged.items()]


def _volumes(values):
    """Parsed --volume values; two on one container path would hide one another."""
    volumes, seen = [], set()
    for value in values:
        volume = parse.volume(value)
        if volume.get("volume"):
            from . import volumes as named

            volume["source"] = named.path(volume["volume"])  # made at create, once its owner is known
        if volume["target"] in seen:
            raise Invalid(f"invalid volume {value!r}: {volume['target']} is given twice as a container path")
        seen.add(volume["target"])
        volumes.append(volume)
    return volumes


def _capabilities(cap_add, cap_drop):
    """The default set, plus --cap-add, minus --cap-drop (drop wins), in kernel order."""
    from .linux import CAPABILITIES
    from .sandbox import DEFAULT_CAPABILITIES

    chosen = set(DEFAULT_CAPABILITIES)
    for name in cap_add:
        chosen |= parse.capability(name)
    for name in cap_drop:
        chosen -= parse.capability(name)
    return [name for name in CAPABILITIES if name in chosen]


def _ensure_volumes(config):
    """Make the named volumes the container is the first to use, owned by its root."""
    named = [volume["volume"] for volume in config["volumes"] if volume.get("volume")]
    if named:
        from . import volumes

        for name in named:
            volumes.ensure(name, owner=int(config["userns"] or 0))


def _tmpfs_mounts(values, volumes):
    """Parsed --tmpfs values; none on a path a volume or another tmpfs already takes."""
    mounts, taken = [], {volume["target"] for volume in volumes}
    for value in values:
        mount = parse.tmpfs(value)
        if mount["target"] in taken:
            raise Invalid(f"invalid --tmpfs {value!r}: {mount['target']} is given twice as a container path")
        taken.add(mount["target"])
        mounts.append(mount)
    return mounts


def _process_settings(security_opt, ulimit, init, stop_timeout):
    """How the container's processes run: seccomp, resource limits, an init, how long a stop waits."""
    from . import ulimits

    return {
        "seccomp": _seccomp(security_opt),
        "ulimits": ulimits.parse(ulimit),
        "init": static_init() if init else "",
        "stop_timeout": STOP_TIMEOUT if stop_timeout is None else parse.seconds(stop_timeout, "--stop-timeout"),
    }


def static_init():
    """The host's statically linked init for --init: $BALEINE_INIT, else tini-static or catatonit."""
    chosen = os.environ.get("BALEINE_INIT")
    for candidate in [chosen] if chosen else INIT_CANDIDATES:
        if os.path.isfile(candidate) and images.is_static_elf(candidate):
            return candidate
        if chosen:
            raise Missing(f"BALEINE_INIT={chosen!r} is not a statically linked executable: --init needs one")
    raise Missing("--init needs a static init on this host: install tini (apt-get install tini) or catatonit")


def _image_stop_signal(defaults, image):
    """The image's StopSignal, else SIGTERM: as a name."""
    stored = defaults.get("StopSignal") or "SIGTERM"
    try:
        return parse.signal_name(stored)
    except Invalid:
        raise Invalid(
            f"image {image!r} has an invalid StopSignal {stored!r}: give one with --stop-signal, e.g. SIGTERM"
        ) from None


def _seccomp(security_opt):
    """'default' (the filter, on a machine it knows) or 'unconfined'."""
    from . import seccomp

    chosen = parse.security_options(security_opt)
    if chosen != seccomp.UNCONFINED:
        try:
            seccomp.check_supported()
        except seccomp.Unsupported as error:
            raise Missing(str(error)) from None
    return chosen


def _reserve(image, name, wanted, config):
    """Under the lock: pick the id, name and addresses, write the 'creating' row."""
    with state.locked():
        rows = state.CONTAINERS.read()
        container_id = _new_id(rows)
        name = name or f"{image}-{container_id[:6]}"
        _refuse_taken(name, rows)
        pairs = networks.assign(wanted, rows)
        config["hostname"] = config["hostname"] or _default_hostname(name)
        if config["userns"]:
            from . import userns

            config["userns"] = userns.allocate({config_or_empty(other).get("userns") for other in rows})
        row = dict.fromkeys(state.CONTAINER_COLUMNS, "")
        row.update(name=name, id=container_id, image=image, status=CREATING, networks=format_attachments(pairs))
        row.update(_worker())
        row["created"] = state.now()
        os.makedirs(os.path.join(directory(row), "rootfs"), mode=0o700)
        write_config(row, config)
        state.CONTAINERS.upsert(row)
        return row


def _refuse_taken(name, rows):
    if any(row["name"] == name for row in rows):
        raise Conflict(f"container name {name!r} is already in use")


def rename(ref, new_name):
    """Give a container another name; its id, hostname, disk and addresses stay.

    Its neighbours' /etc/hosts learn the new name at once. Commands already
    running on it go on: after their first look they find it by id.
    """
    parse.name(new_name, "container name")
    with state.locked():
        rows = reconcile(state.CONTAINERS.read())
        row = get(ref, rows)
        refuse_if_busy(row)
        refuse_if_half_created(row)
        if row["name"] == new_name:
            raise Conflict(f"container {new_name!r} is already called {new_name!r}: give it another name")
        _refuse_taken(new_name, rows)
        old_name = row["name"]
        row = state.CONTAINERS.update(row["id"], name=new_name)
        networks.refresh_hosts(state.CONTAINERS.read())
    events.record("rename", row, old=old_name)
    return row


def _worker():
    """pid and start time of this command, recorded while it works on a row.

    A row in a transitional state names the process at work on it, so others
    can tell "busy" (refuse) from "left behind by a crash" (repair).
    """
    me = os.getpid()
    return {"pid": str(me), "pid_start": str(linux.pid_start_time(me))}


def _created_by_me(row):
    return row["status"] == CREATING and {"pid": row["pid"], "pid_start": row["pid_start"]} == _worker()


def refuse_if_busy(row):
    if row["status"] in (CREATING, STARTING) and linux.is_alive(row["pid"], row["pid_start"]):
        raise Conflict(
            f"container {row['name']!r} is {row['status']} (process {row['pid']}): try again when it is done"
        )


def hold_disk(row, shared=False):
    """Lock a container's disk copy while it is used without the container running; returns the fd to close.

    `container cp` holds it exclusive and `commit` shared. start and rm test
    it under the state lock before they go on (refuse_if_disk_held), and the
    holders take it under that lock after reading the row: a disk is never
    mounted twice, nor removed or started while copied.
    """
    import fcntl

    fd = os.open(os.path.join(directory(row), "disk.ext4"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Conflict(
            f"container {row['name']!r} is busy: a `container cp` or `container commit` is using its disk; "
            "try again when it is done"
        ) from None
    return fd


def refuse_if_disk_held(row):
    try:
        os.close(hold_disk(row))
    except FileNotFoundError:
        pass  # no disk (a create cut short): nothing can be using it


def refuse_if_half_created(row):
    if row["status"] == CREATING:
        raise Conflict(
            f"container {row['name']!r} was left half-created by a command that died: "
            f"remove it with `baleine container rm {row['name']}`"
        )


def _new_id(rows):
    # veth names carry 10 hex digits of the id: keep those unique on the host.
    # os.urandom, not secrets: the same kernel bytes without 5 ms of imports per create.
    taken = {row["id"][:10] for row in rows}
    while True:
        candidate = os.urandom(32).hex()
        if candidate[:10] not in taken:
            return candidate


def _default_hostname(name):
    return name.replace("_", "-").replace(".", "-").strip("-")[:63] or "container"


def _discard(row):
    _remove_directory(row)  # first: on a full disk, that frees the room the table's rewrite needs
    with state.locked():
        state.CONTAINERS.remove(row["id"])


def _remove_directory(row):
    state.remove_tree(directory(row))


# ----------------------------------------------------------------- start / stop


def start(ref, attach=False, log_output=True, by_policy=False, primer=None, tty=False, remove_after=False):
    """Start a created or exited container. Attached: wait and return its exit code.

    A person's start resets the restart count; check's (by_policy) adds one.
    primer: a cgroups.Primer the caller started earlier (run does, before create).
    tty (attached only): the command runs on a terminal of its own, relayed to ours.
    remove_after (attached only): run --rm's; its end removes the row (see finalize).
    """
    from . import ulimits
    from .launch import Launch

    primer = primer or cgroups.Primer()
    try:
        row, plugs, config = _claim_for_start(ref, by_policy)
    except BaseException:
        primer.stop()
        raise
    if row is None:
        primer.stop()
        return None  # already running
    point("start:claimed")
    group = cgroup_of(row)
    if tty:
        from . import terminal

        config = terminal.with_term(config)
    wanted = config.get("limits", {})
    launch = None
    forwarded = {}  # while attached: the handlers our signals had before they were passed on
    try:
        group.create()
        point("start:cgroup")
        version = group.version_for("memory")
        group.apply(limits.writes(wanted, version))  # before any process joins
        point("start:limits")
        launch = Launch(directory(row), config, group, detach=not attach, log_output=log_output)
        point("start:forked")
        networks.plug(launch.namespaces(), plugs)  # while the init boots
        point("start:plugged")
        pid = launch.accept()
        primer.stop()  # the container has moved into its cgroup
        point("start:accepted")
        ulimits.apply(pid, config)  # before its command runs: that inherits them
        if attach:  # from now on a signal for us is meant for the container
            forwarded = _forward_signals(pid)
        pid_start = linux.pid_start_time(pid)
        group.apply(limits.disk_writes(wanted, version, launch.disk(), config.get("devices", ())))
        point("start:disk-limits")
        launch.release()
        master = launch.take_terminal()
        point("start:released")
    except BaseException as error:
        primer.stop()
        _restore_handlers(forwarded)
        failure = _first_failure(launch, error)
        status = failure.exit_status if isinstance(failure, StartFailed) else 125
        _abandon_start(row, group, launch, status)
        if failure is not error:
            raise failure from None
        raise
    launch.close()
    with state.locked():
        point("start:recording")
        row = state.CONTAINERS.update(
            row["id"],
            status=RUNNING,
            pid=pid,
            pid_start=pid_start,
            exit_code="",
            reason="",
            started=state.now(),
            finished="",
            health="starting" if config.get("health") else "",
            health_failures=0,
            health_at="",
        )
        networks.refresh_hosts(state.CONTAINERS.read())
    events.record("start", row, **({"by": "check", "attempt": int(row["restarts"])} if by_policy else {}))
    if not attach:
        return None
    try:
        status = launch.wait() if master is None else _relay(master, launch.waiter_pid)
    finally:
        _restore_handlers(forwarded)
    row = finalize(row["id"], remove=remove_after)
    return int(row["exit_code"]) if row and row["exit_code"] else status


def _relay(master, waiter):
    """run -t: relay the container's terminal until its command exits; returns the exit code."""
    from . import launch, terminal

    try:
        return launch.shell_status(terminal.relay(master, waiter, hang_up=False))
    finally:
        os.close(master)


def _forward_signals(pid):
    """While attached, pass SIGINT, SIGTERM and SIGHUP on to the container's pid 1; returns the old handlers.

    As with Docker's sig-proxy, the command decides: pid 1 of a namespace
    ignores a signal it has no handler for, and we keep waiting for its status.
    """
    forwarded = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)
    return {number: _signal.signal(number, lambda number, _frame: _deliver(pid, number)) for number in forwarded}


def _restore_handlers(previous):
    for number, handler in previous.items():
        _signal.signal(number, handler)


def restart_by_policy(container_id):
    """check's restart: one more attempt counted, its failure recorded in the row."""
    try:
        start(container_id, by_policy=True)
    except StartFailed as error:
        with state.locked():
            row = by_id(container_id)
            if row is not None:
                state.CONTAINERS.update(row["id"], error=error.message)
        raise


def forget_process(row, reason):
    """Mark a container whose process cannot exist any more (the host rebooted) as exited."""
    group = cgroup_of(row)
    group.kill()
    group.remove()
    with state.locked():
        state.CONTAINERS.update(row["id"], status=EXITED, pid="", pid_start="", exit_code="", reason=reason,
                                finished=state.now())  # fmt: skip
    events.record("die", row, by="", exit_code=None, reason=reason)


def _claim_for_start(ref, by_policy=False):
    """Under the lock: mark the row 'starting' and prepare its /etc files and bridges.

    Returns (row, plugs, config), or Nones when it is running already.
    """
    with state.locked():
        rows = reconcile(state.CONTAINERS.read())
        row = get(ref, rows)
        if row["status"] == RUNNING:
            return None, None, None
        if not _created_by_me(row):  # run's own create, not yet marked created
            refuse_if_busy(row)
            refuse_if_half_created(row)
        refuse_if_disk_held(row)
        config = read_config(row)  # a damaged one is named before the row changes
        if config.get("auto_remove") and not _created_by_me(row):
            raise Conflict(
                f"container {row['name']!r} was run with --rm: it is removed when it ends, not started again; "
                f"remove it now with `baleine container rm {row['name']}`"
            )
        if state.recorded_boot_id() is None:  # so that check can tell a reboot from its first pass
            state.record_boot_id(state.boot_id())
        counted = {"restarts": int(row.get("restarts") or 0) + 1} if by_policy else {"restarts": 0, "stopped_by": ""}
        compacted = {"networks": format_attachments(attachments(row))}  # eth0, eth1... with no gap
        row = state.CONTAINERS.update(row["id"], status=STARTING, error="", **counted, **compacted, **_worker())
        plugs = networks.plugs_for(row)
        networks.write_etc_files(row, config, rows)
        return row, plugs, config


def _first_failure(launch, error):
    """What to report for a start that failed with error: the init's own reason, if it sent one.

    An init given its config builds the root while we plug its network and
    set its limits. If it fails meanwhile it exits, and what we were doing to
    it fails too (its namespace or its pid gone), for a reason that is not the
    one to tell. An interrupt is reported as itself. Never raises: the
    caller still has the start to undo.
    """
    if launch is None or not isinstance(error, Exception):
        return error
    try:
        return launch.reported_failure() or error
    except (OSError, ValueError):  # its channel broke, or its line was cut short: nothing to tell
        return error


def _abandon_start(row, group, launch, status):
    """Undo a start that failed part way: no process, cgroup or veth is left.

    The init is killed before its channel closes: seeing it close, a live init
    would say "the starting command went away" on the person's terminal,
    beside the start's own reason.
    """
    group.kill()
    if launch is not None:
        launch.close()
    group.remove()
    networks.unplug(row)
    with state.locked():
        state.CONTAINERS.update(
            row["id"], status=EXITED, pid="", pid_start="", exit_code=status, reason="", finished=state.now()
        )


def stop(ref, timeout=None, by_user=True):
    """The container's stop signal (SIGTERM unless set), then SIGKILL after timeout; keeps the disk and config.

    timeout None: the container's --stop-timeout (10 s unless set).
    A person's stop is remembered: restart policies leave the container alone.
    """
    row = current(ref)
    refuse_if_busy(row)
    if by_user:
        _mark_stopped_by_user(row)
    if row["status"] == RUNNING and linux.is_alive(row["pid"], row["pid_start"]):
        config = read_config(row)
        timeout = float(config.get("stop_timeout", STOP_TIMEOUT)) if timeout is None else timeout
        pid = int(row["pid"])
        stop_signal = config.get("stop_signal") or "SIGTERM"
        _deliver(pid, getattr(_signal, stop_signal))
        cgroup_of(row).thaw()  # the signal waits for it
        point("stop:signalled")
        by = None if by_user else "check"
        events.record("stop", row, by=by, signal=stop_signal, timeout=timeout)
        if not linux.wait_gone(pid, timeout):
            _deliver(pid, _signal.SIGKILL)  # pid 1 dies, and the kernel kills the rest of its namespace
            point("stop:killed")
            events.record("kill", row, by=by, signal="SIGKILL", after=timeout)
            linux.wait_gone(pid, 5.0)
    return finalize(row["id"])


def _mark_stopped_by_user(row):
    with state.locked():
        fresh = by_id(row["id"])
        if fresh is not None:
            state.CONTAINERS.update(fresh["id"], stopped_by="user")


def kill(ref, signal_name="SIGKILL"):
    """Send a signal to the container's command (its pid 1); returns the row, final if the signal ended it.

    SIGKILL, or the container's own stop signal, is a person ending it, as
    `stop` is: restart policies leave it alone. Any other (SIGHUP to reload,
    SIGUSR1...) is only delivered.
    """
    row = current(ref)
    refuse_if_busy(row)
    require_running(row, "nothing to signal")
    ending = signal_name in ("SIGKILL", read_config(row).get("stop_signal") or "SIGTERM")
    if ending:
        _mark_stopped_by_user(row)
    pid = int(row["pid"])
    _deliver(pid, getattr(_signal, signal_name))
    if ending:
        cgroup_of(row).thaw()  # else the signal waits, as the container does, for unpause
    events.record("kill", row, signal=signal_name)
    if signal_name == "SIGKILL" and linux.wait_gone(pid, 5.0):
        return finalize(row["id"])
    return current(row["id"])


def pause(ref):
    """Freeze every process of a running container: they keep their memory and state, and use no CPU."""
    row = _running(current(ref))
    if cgroup_of(row).frozen():
        raise Conflict(f"container {row['name']!r} is already paused")
    cgroup_of(row).freeze()
    events.record("pause", row)
    return row


def unpause(ref):
    """Let a paused container's processes run again."""
    row = _running(current(ref))
    if not cgroup_of(row).frozen():
        raise Conflict(f"container {row['name']!r} is not paused")
    cgroup_of(row).freeze(frozen=False)
    events.record("unpause", row)
    return row


def _running(row):
    refuse_if_busy(row)
    require_running(row)
    return row


def require_running(row, hint=""):
    """Conflict unless the row is running; hint says what could not be done, e.g. 'nothing to signal'."""
    if row["status"] != RUNNING:
        said = f": {hint}" if hint else ""
        raise Conflict(f"container {row['name']!r} is not running (status: {row['status']}){said}")


def paused(row):
    """Whether a running container is frozen (`container pause`), as the kernel says."""
    return row["status"] == RUNNING and cgroup_of(row).frozen()


def refuse_if_paused(row):
    if cgroup_of(row).frozen():
        raise Conflict(f"container {row['name']!r} is paused: `baleine container unpause {row['name']}` first")


def wait(ref):
    """Block until the container has exited; returns its row, with exit code and reason recorded."""
    row = current(ref)
    if row["status"] in (CREATED, CREATING):
        raise Conflict(f"container {row['name']!r} has not been started: nothing to wait for")
    while row["status"] in (RUNNING, STARTING):
        if row["status"] == RUNNING and linux.is_alive(row["pid"], row["pid_start"]):
            linux.wait_gone(int(row["pid"]), 3600.0)  # a pidfd: woken the moment it exits
        else:
            import time

            time.sleep(0.1)  # a start in progress, or an exit being recorded
        row = current(row["id"])
    return row


def _deliver(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def finalize(container_id, remove=False):
    """Record a container whose process is gone as exited and free what it held; returns its row.

    remove: run --rm's own end. The row goes instead of being marked exited,
    in the same write, unless a `container cp` holds the disk; the caller
    then removes the directory (after reading the log it may want).
    """
    row = by_id(container_id)
    if row is None or row["status"] not in (RUNNING, STARTING):
        return row
    from . import launch

    group = cgroup_of(row)
    code = _await_exit_status(directory(row), group)
    point("finalize:awaited")
    reason = exit_reason(code, group.usage()["oom_kills"])
    group.kill()
    group.remove()
    point("finalize:cleaned")
    # No unplug: the kernel deletes the veths with the dead network namespace
    # (waiting for that here costs up to 20 ms); plug() clears a late one.
    with state.locked():
        current = by_id(container_id)
        if current is None or current["status"] not in (RUNNING, STARTING):
            return current  # another command finished it first
        ended = {"status": EXITED, "pid": "", "pid_start": "", "exit_code": "" if code is None else code,
                 "reason": reason, "finished": state.now()}  # fmt: skip
        removing = remove and _disk_free(current)
        if removing:
            state.CONTAINERS.remove(container_id)
            current = dict(current, **ended)
        else:
            current = state.CONTAINERS.update(container_id, **ended)
            launch.clear_exit_file(directory(row))
        networks.refresh_hosts(state.CONTAINERS.read())
    events.record("die", current, by="", exit_code=None if code is None else code, reason=reason)
    if removing:
        events.record("rm", current)
    return current


def _disk_free(row):
    try:
        refuse_if_disk_held(row)
    except Conflict:
        return False
    return True


def exit_reason(code, oom_kills=0):
    """Why a container ended: 'oom-killed', 'killed by signal N', 'exited' (or '' when unknown)."""
    if oom_kills:
        return "oom-killed"
    if code is None:
        return ""
    return f"killed by signal {code - 128}" if code > 128 else "exited"


def _await_exit_status(path, group, timeout=2.0):
    """The waiter writes the status right after the command ends: give it a moment."""
    import time

    from .launch import read_exit_file

    deadline = time.monotonic() + timeout
    while True:
        code = read_exit_file(path)
        if code is not None or not group.pids() or time.monotonic() > deadline:
            return code if code is not None else read_exit_file(path)
        time.sleep(0.01)


def reconcile(rows):
    """Correct rows whose process died behind our back; returns the fresh rows.

    Called by list and by commands that decide on a container's status.
    """
    stale = [row["id"] for row in rows if _is_stale(row)]
    for container_id in stale:
        finalize(container_id)
    return state.CONTAINERS.read() if stale else rows


def current(ref):
    """The container's row, corrected first if its process died."""
    row = get(ref)
    return finalize(row["id"]) if _is_stale(row) else row


def _is_stale(row):
    if row["status"] not in (RUNNING, STARTING):
        return False
    return not linux.is_alive(row["pid"], row["pid_start"])


# ----------------------------------------------------------------- run, rm, add


def run(image, command=(), detach=False, remove_after=False, capture=False, tty=False, **options):
    """create + start. Returns (row, exit code, captured output).

    Attached, it waits for the command; capture sends its output to the log
    and returns it (read before --rm removes the container). tty: attached,
    on a terminal of its own.
    """
    if tty and (detach or capture):
        raise Invalid("--tty is for an attached run, without -d or --json: a terminal needs someone at it")
    primer = cgroups.Primer()  # the kernel's slow first cgroup move happens during create()
    try:
        row = create(image, command, starting=True, auto_remove=remove_after, **options)
        try:
            code = start(row["id"], attach=not detach, log_output=detach or capture, primer=primer, tty=tty,
                         remove_after=remove_after)  # fmt: skip
        except BaseException:  # any failure: a limit the kernel refused as much as a missing command
            if remove_after:
                remove(row["id"], force=True)
            raise
    finally:
        primer.stop()
    output = _read_log(row) if capture else None
    if remove_after and not detach:
        if by_id(row["id"]) is None:  # its end removed the row: the directory is left
            _remove_directory(row)
        else:
            remove(row["id"], force=True)
    return row, code, output


def _read_log(row):
    try:
        with open(os.path.join(directory(row), "log"), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def remove(ref, force=False):
    """Destroy a container's disk copy and configuration."""
    row = current(ref)
    if not _created_by_me(row):  # run --rm undoing its own create
        refuse_if_busy(row)
    if row["status"] == RUNNING:
        if not force:
            raise Conflict(f"container {row['name']!r} is running: stop it first, or use --force")
        stop(row["id"], timeout=0)
    point("rm:stopped")
    group = cgroup_of(row)
    group.kill()
    group.remove()
    point("rm:cgroup")
    with state.locked():
        row = by_id(row["id"]) or row  # its name now, were it renamed meanwhile
        refuse_if_disk_held(row)
        state.CONTAINERS.remove(row["id"])
        networks.refresh_hosts(state.CONTAINERS.read())
    events.record("rm", row)
    point("rm:row")
    _remove_directory(row)
    return {"name": row["name"], "id": row["id"]}


def add_network(ref, network_ref):
    """Attach a container to one more network, live if it runs; remembered for later starts."""
    wanted = parse.network_ref(network_ref)
    if wanted[0] == networks.HOST:
        raise Invalid("--network host is for create and run: a container cannot be moved into the host's network")
    with state.locked():
        rows = reconcile(state.CONTAINERS.read())
        row = get(ref, rows)
        refuse_if_busy(row)
        if read_config(row).get("host_network"):  # its namespace is the host's: a veth there would be the host's
            raise Conflict(f"container {row['name']!r} uses the host's network: it cannot join a bridge network")
        if wanted[0] in [net for net, _ in attachments(row)]:
            raise Conflict(f"container {row['name']!r} is already on network {wanted[0]!r}")
        pairs = slots(row) + networks.assign([wanted], rows)  # after any gap: a live eth name is never reused
        row = state.CONTAINERS.update(row["id"], networks=format_attachments(pairs))
        point("add:recorded")
        if row["status"] == RUNNING:
            try:
                networks.plug(int(row["pid"]), networks.plugs_for(row)[-1:])
                point("add:plugged")
            except BaseException:
                state.CONTAINERS.update(row["id"], networks=format_attachments(pairs[:-1]))
                raise
            networks.refresh_hosts(state.CONTAINERS.read())
        events.record("connect", row, network=wanted[0])
        return row


def remove_network(ref, network_name):
    """Detach a container from a network, live if it runs: its interface goes and its address is freed.

    A running container keeps its other interfaces' names (a gap stands for
    the one removed until its next start), and if the default route went with
    the interface, the next network of that family gives it a new one.
    """
    with state.locked():
        networks.get(network_name)
        rows = reconcile(state.CONTAINERS.read())
        row = get(ref, rows)
        refuse_if_busy(row)
        pairs = slots(row)
        index = next((i for i, pair in enumerate(pairs) if pair and pair[0] == network_name), None)
        if index is None:
            raise Conflict(f"container {row['name']!r} is not on network {network_name!r}")
        running = row["status"] == RUNNING
        if running:
            pairs[index] = None
        else:
            del pairs[index]
        changed = dict(row, networks=format_attachments(pairs))
        if running:
            _unplug_live(row, changed, index)
        row = state.CONTAINERS.update(row["id"], networks=changed["networks"])
        if running:
            networks.refresh_hosts(state.CONTAINERS.read())
    events.record("disconnect", row, network=network_name)
    return row


def _unplug_live(row, changed, index):
    """Remove interface `index` of running row; give the default route to the next network of its family."""
    from . import net

    (removed,) = [plug for plug in networks.plugs_for(row) if plug["index"] == index]
    net.delete_link(removed["host_if"])  # its peer, ethN inside, goes with it
    point("disconnect:unplugged")  # killed here, the row still names the network: check plugs it back
    if removed["default"]:
        family = ":" in removed["gateway"]
        heirs = [plug for plug in networks.plugs_for(changed) if plug["default"] and (":" in plug["gateway"]) == family]
        for plug in heirs:
            route = ["ip", "route", "replace", "default", "via", plug["gateway"], "dev", f"eth{plug['index']}"]
            linux.run(route, netns_pid=int(row["pid"]))


# ----------------------------------------------------------------- exec, logs, views


def exec_command(ref, argv, capture=False, timeout=None, tty=False, user=None, env=(), workdir=None, audit=True):
    """Run argv in a running container; returns (exit code, stdout, stderr) (texts only if captured).

    tty: on a terminal of its own (not with capture). user, env, workdir: for
    this command only, instead of (env: on top of) the container's own.
    audit: write an exec event, who ran what (check's health probes do not).
    """
    from . import launch

    row, config = _exec_target(ref, user, env, workdir)
    if audit:
        events.record("exec", row, command=list(argv), **({"user": user} if user else {}))
    if not capture:
        return launch.exec_in(int(row["pid"]), cgroup_of(row), config, list(argv), tty=tty), None, None
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdio = (out.fileno(), err.fileno())
        code = launch.exec_in(int(row["pid"]), cgroup_of(row), config, list(argv), stdio, timeout)
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def exec_detached(ref, argv, user=None, env=(), workdir=None):
    """Start argv in a running container and leave it running, its output going to the container's log.

    Returns {"name", "pid"}: the command's host pid, None if it has already ended.
    """
    from . import launch

    row, config = _exec_target(ref, user, env, workdir)
    events.record("exec", row, command=list(argv), detach=True, **({"user": user} if user else {}))
    log = os.path.join(directory(row), "log")
    pid = launch.exec_detached(int(row["pid"]), cgroup_of(row), config, list(argv), log)
    return {"name": row["name"], "pid": pid}


def _exec_target(ref, user, env, workdir):
    """The running container's row, and its config with exec's --user, --env and --workdir applied."""
    overrides = _exec_overrides(user, env, workdir)  # checked before anything happens
    row = current(ref)
    require_running(row)
    refuse_if_paused(row)  # the command would join its frozen cgroup and hang
    config = read_config(row)
    config.update(overrides, env=_merge_env(config.get("env", []), env))
    return row, config


def _exec_overrides(user, env, workdir):
    for item in env:
        parse.env(item)
    overrides = {"user": parse.user(user)} if user else {}
    if workdir:
        overrides["workdir"] = parse.workdir(workdir)
    return overrides


def log_path(ref):
    return os.path.join(directory(get(ref)), "log")


def describe(row, config=None):
    """A row plus what is derived from it, for list and inspect."""
    info = {
        "name": row["name"],
        "id": row["id"][:12],
        "image": row["image"],
        "status": row["status"],
        "pid": int(row["pid"]) if row["pid"] and row["status"] == RUNNING else None,
        "exit_code": int(row["exit_code"]) if row["exit_code"] else None,
        "reason": row.get("reason") or None,
        "restarts": int(row.get("restarts") or 0),
        "health": (row.get("health") or None) if row["status"] == RUNNING else None,
        "paused": paused(row),
        "error": row.get("error") or None,
        "stopped_by": row.get("stopped_by") or None,
        "networks": [{"network": net, "address": address} for net, address in attachments(row)],
        "created": row["created"],
        "started": row["started"] or None,
        "finished": row["finished"] or None,
    }
    if config is not None:
        info["command"] = config["command"]
        info["host_network"] = bool(config.get("host_network"))
        info["limits"] = config.get("limits", {})
        info["restart"] = config.get("restart", {"policy": "no", "max": None})
        info["labels"] = config.get("labels", {})
    return info


def list_all(include_stopped=False, sizes=False):
    """Containers as list shows them; sizes adds the disk space each takes (list --size)."""
    rows = reconcile(state.CONTAINERS.read())
    shown = [row for row in rows if include_stopped or row["status"] == RUNNING]
    items = [describe(row, config_or_empty(row)) for row in shown]
    if sizes:
        for item, row in zip(items, shown):
            item.update(space_used(row))
    return items


def space_used(row):
    """Bytes the container's files hold on disk: its disk copy, and its logs (log and log.1)."""
    from .logs import OLDER

    def allocated(name):
        return state.allocated(os.path.join(directory(row), name))

    return {"disk_bytes": allocated("disk.ext4"), "log_bytes": allocated("log") + allocated("log" + OLDER)}


def config_or_empty(row):
    try:
        return read_config(row)
    except (FileNotFoundError, Damaged):
        return {"command": [], "limits": {}}


def inspect(ref):
    row = current(ref)
    info = describe(row, read_config(row))
    info.update(
        id=row["id"],
        config=read_config(row),
        directory=directory(row),
        disk=os.path.join(directory(row), "disk.ext4"),
        log=os.path.join(directory(row), "log"),
        cgroups=cgroup_of(row).paths(),
        interfaces=[
            dict(plug, interface=f"eth{plug['index']}", host_interface=plug["host_if"])
            for plug in networks.plugs_for(row)
        ],
    )
    return info
