"""One function per verb: parsed arguments in, library call, Reply out.

Modules are imported inside each handler so a verb pays only for what it uses.
"""

import sys

from . import jsonlite
from .cli import Reply


def _pretty(data):
    return jsonlite.dumps(data, indent=2)


# ----------------------------------------------------------------- images


def _interruptible():
    """SIGTERM unwinds like Ctrl-C: an image build then removes its work directory."""
    import signal

    def stop(_number, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def image_create(args):
    from . import images

    _interruptible()
    row = images.create(args.name, args.size, args.source)
    return Reply(images.describe(row), row["name"])


def image_tag(args):
    from . import images

    row = images.tag(args.source, args.name)
    return Reply(images.describe(row), f"{row['name']} (a copy of {args.source}, {images.short_id(row)})")


def image_import(args):
    from . import images

    _interruptible()
    row = images.import_archive(args.file, args.name, args.tag, args.size)
    return Reply(images.describe(row), row["name"])


def image_pull(args):
    from . import images

    password = _registry_password(args)
    _interruptible()
    row = images.pull(args.reference, args.name, args.size, args.platform, args.username, password, args.insecure,
                      _progress(args))  # fmt: skip
    text = f"{row['name']}: {row['source'].rpartition('@')[2]}" + (" (up to date)" if row["up_to_date"] else "")
    text += f" (from mirror {row['mirror']})" if row["mirror"] else ""
    return Reply({**images.describe(row), "up_to_date": row["up_to_date"], "mirror": row["mirror"]}, text)


def image_push(args):
    from . import exports
    from .parse import human_size

    password = _registry_password(args)
    _interruptible()
    result = exports.push(args.name, args.reference, args.username, password, args.insecure, _progress(args))
    sent = f"{human_size(result['sent'])} sent" if result["sent"] else "nothing sent: the registry had every blob"
    return Reply(result, f"{result['reference']}@{result['digest']} ({sent})")


def _registry_password(args):
    """The password for --username: stdin's first line with --password-stdin, else asked on the terminal."""
    from .errors import Invalid

    if args.password_stdin and not args.username:
        raise Invalid("--password-stdin needs --username: the registry login's name")
    if not args.username:
        return None
    if args.password_stdin:
        return _password_from_stdin()
    if not sys.stdin.isatty():
        raise Invalid(f"--username {args.username} needs a password: pipe it in with --password-stdin, "
                      "or run on a terminal to be asked")  # fmt: skip
    import getpass

    password = getpass.getpass(f"password for {args.username}: ")
    if not password:
        raise Invalid("no password was typed: give the password or token of --username")
    return password


def login(args):
    from . import logins
    from .registry import IDENTITY

    done = logins.login(args.registry, args.username, _registry_password(args), args.insecure)
    unchecked = "" if done["checked"] else f" (kept unchecked: {done['registry']} asks for no login)"
    who = "with an identity token" if done["username"] == IDENTITY else f"as {done['username']}"
    return Reply(done, f"logged in to {done['registry']} {who}{unchecked}")


def mirror_add(args):
    from . import mirrors

    row = mirrors.add(args.registry, args.mirror, args.insecure)
    order = ", ".join(mirror for mirror, _ in mirrors.of(row["registry"]))
    return Reply(row, f"pulls from {row['registry']} now try {order}, then {row['registry']}")


def mirror_rm(args):
    from . import mirrors

    return _each(args.names, mirrors.remove, lambda row: f"{row['mirror']} (a mirror of {row['registry']}) removed")


def mirror_list(_args):
    from . import mirrors

    items = mirrors.list_all()
    return Reply(items, _table("mirrors", items))


def registry_insecure(args):
    from . import registries

    done = registries.make_insecure(args.registry)
    already = "" if done["changed"] else " (already)"
    return Reply(done, f"{done['registry']} may now be reached over plain HTTP or unchecked HTTPS{already}")


def registry_secure(args):
    from . import registries

    done = registries.make_secure(args.registry)
    already = "" if done["changed"] else " (already)"
    return Reply(done, f"{done['registry']} is reached over HTTPS with checked certificates{already}")


def registry_list(_args):
    from . import registries

    items = registries.list_all()
    return Reply(items, _table("registries", items))


def logout(args):
    from . import logins

    done = logins.logout(args.registry)
    removed = f"logged out of {done['registry']}"
    return Reply(done, removed if done["removed"] else f"no login for {done['registry']} is kept: nothing to remove")


def _progress(args):
    """Where a long verb tells people how it goes: stderr, line by line; nowhere for --json callers."""
    if getattr(args, "json", False):
        return None

    def say(line):
        import sys

        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return say


def _password_from_stdin():
    """The first line on stdin, as `docker login --password-stdin` reads it."""
    import sys

    from .errors import Invalid

    most = 64 << 10  # a token of a few KiB is long; /dev/zero has no line end to stop at
    line = sys.stdin.readline(most + 1)
    if len(line) > most:
        raise Invalid(f"--password-stdin read more than {most >> 10} KiB without a line end: not a password")
    password = line.rstrip("\r\n")
    if not password:
        raise Invalid("--password-stdin read no password: pipe it in, e.g. < token-file")
    return password


def image_export(args):
    from . import exports

    _refuse_json_with_stdout(args, "archive")
    result = exports.export(args.name, args.file, args.format, args.tag)
    return Reply(result, None if args.file == "-" else f"{args.file}: {result['format']} {result['tag']}")


def _refuse_json_with_stdout(args, what):
    """FILE '-' writes the stream on stdout, where --json's one object would go too."""
    from .errors import Invalid

    if args.file == "-" and getattr(args, "json", False):
        raise Invalid(f"--json and FILE '-' both want stdout: write the {what} to a file, or drop --json")


def image_send(args):
    import sys

    from . import transfer
    from .errors import Invalid

    if getattr(args, "json", False):
        raise Invalid("image send writes the image stream on stdout: drop --json")
    transfer.send(args.name, sys.stdout.buffer)
    return Reply(None)


def image_receive(args):
    import sys

    from . import images, transfer

    _interruptible()
    row = transfer.receive(sys.stdin.buffer)
    return Reply(images.describe(row), row["name"])


def image_list(args):
    from . import images

    items = images.list_all()
    return Reply(items, _table("images", items))


def image_rm(args):
    from . import images

    return _each(args.names, images.remove)


def image_prune(_args):
    from . import images

    return _pruned(images.prune(), "image")


def _pruned(removed, noun):
    """What a prune removed, one name a line, then the space it freed (where it held any)."""
    from .parse import human_size

    lines = [item["name"] for item in removed]
    if not removed:
        lines.append(f"no {noun} to remove")
    elif "freed" in removed[0]:
        lines.append(f"freed {human_size(sum(item['freed'] for item in removed))}")
    return Reply(removed, "\n".join(lines))


def image_inspect(args):
    from . import images

    info = images.inspect(args.name)
    return Reply(info, _pretty(info))


# ----------------------------------------------------------------- networks


def network_create(args):
    from . import networks

    row = networks.create(args.name, args.subnet, args.gateway, args.range, args.vxlan, args.peer, args.mtu,
                          args.internal)  # fmt: skip
    return Reply(row, row["name"])


def network_peers(args):
    from . import networks

    row = networks.set_peers(args.name, args.peers)
    return Reply(row, f"{row['name']}: peers {row['peers'] or 'none'}")


def network_list(args):
    from . import networks

    items = networks.list_all()
    return Reply(items, _table("networks", items))


def network_rm(args):
    from . import networks

    return _each(args.names, networks.remove)


def network_prune(_args):
    from . import networks

    return _pruned(networks.prune(), "network")


def network_connect(args):
    from . import containers, parse

    wanted = args.network if args.ip is None else f"{args.network}:{parse.ip_address(args.ip)}"
    return _networks_of(containers.add_network(args.container, wanted))


def network_disconnect(args):
    from . import containers, parse

    parse.name(args.network, "network name")
    return _networks_of(containers.remove_network(args.container, args.network))


def _networks_of(row):
    from . import containers

    item = containers.describe(row)
    addresses = ", ".join(f"{n['network']} {n['address']}" for n in item["networks"]) or "no network"
    return Reply(item, f"{row['name']}: {addresses}")


def network_inspect(args):
    from . import networks

    info = networks.inspect(args.name)
    return Reply(info, _pretty(info))


# ----------------------------------------------------------------- volumes


def volume_create(args):
    from . import volumes

    return Reply(volumes.create(args.name), args.name)


def volume_list(_args):
    from . import volumes

    items = volumes.list_all()
    return Reply(items, _table("volumes", items))


def volume_rm(args):
    from . import volumes

    return _each(args.names, volumes.remove)


def volume_inspect(args):
    from . import volumes

    info = volumes.inspect(args.name)
    return Reply(info, _pretty(info))


def volume_prune(_args):
    from . import volumes

    return _pruned(volumes.prune(), "volume")


# ----------------------------------------------------------------- containers


def _resources(args):
    from . import limits

    return limits.from_options(
        memory=args.memory,
        cpus=args.cpus,
        cpu_shares=args.cpu_shares,
        cpuset_cpus=args.cpuset_cpus,
        pids_limit=args.pids_limit,
        device_allow=args.device_allow,
        device_deny=args.device_deny,
        io_read_bps=args.io_read_bps,
        io_write_bps=args.io_write_bps,
        io_read_iops=args.io_read_iops,
        io_write_iops=args.io_write_iops,
    )


def _health(args):
    """--health-* over the image's own HEALTHCHECK; none at all with --no-healthcheck."""
    from . import health, images
    from .errors import Invalid

    given = (args.health_interval, args.health_retries, args.health_timeout, args.health_start_period)
    if args.no_healthcheck:
        probes = (args.health_cmd, args.health_http, args.health_https, args.health_port, args.health_tcp)
        if any(probes) or any(value is not None for value in given):
            raise Invalid("--no-healthcheck and the --health-* options do not mix")
        return None
    base = health.from_image(images.config(args.image), args.image)
    return health.from_options(args.health_cmd, *given, base=base, http=args.health_http, port=args.health_port,
                               tcp=args.health_tcp, https=args.health_https)  # fmt: skip


def _log_size(args):
    from . import logs

    return None if args.log_size is None else logs.parse_limit(args.log_size)


def _env(args):
    """--env-file lines first, then --env: a value given on the command line wins."""
    from . import parse

    return [item for path in args.env_file for item in parse.env_file(path)] + list(args.env)


def _mounts(args):
    """--volume and --tmpfs values, those --mount gave (Docker's key=value form) after the others."""
    from . import parse

    given = [parse.mount(value) for value in args.mount]
    volumes = list(args.volume) + [text for kind, text in given if kind == "volume"]
    return volumes, list(args.tmpfs) + [text for kind, text in given if kind == "tmpfs"]


def _create_options(args):
    volumes, tmpfs = _mounts(args)
    return {
        "resources": _resources(args),
        "name": args.name,
        "network": args.network,
        "hostname": args.hostname,
        "env": _env(args),
        "volume": volumes,
        "workdir": args.workdir,
        "user": args.user,
        "read_only": args.read_only,
        "no_suid": args.no_suid,
        "userns": args.userns,
        "restart_policy": args.restart,
        "health": _health(args),
        "log_size": _log_size(args),
        "cap_add": args.cap_add,
        "cap_drop": args.cap_drop,
        "security_opt": args.security_opt,
        "stop_signal": args.stop_signal,
        "stop_timeout": args.stop_timeout,
        "ulimit": args.ulimit,
        "init": args.init,
        "tmpfs": tmpfs,
        "labels": args.label,
        "dns": args.dns,
        "dns_search": args.dns_search,
        "dns_option": args.dns_option,
        "add_host": args.add_host,
        "device": args.device,
        "sysctl": args.sysctl,
        "shm_size": args.shm_size,
        "entrypoint": args.entrypoint,
        "group_add": args.group_add,
        "oom_score_adj": args.oom_score_adj,
    }


def _resolve_image(args):
    """args.image becomes the name of the image to create from, pulled first as --pull says (Docker's --pull)."""
    from . import images

    args.image = images.for_container(args.image, args.pull, _progress(args))["name"]


def container_create(args):
    from . import containers

    _resolve_image(args)
    row = containers.create(args.image, args.command, **_create_options(args))
    return Reply(containers.describe(row), row["name"])


def container_run(args):
    from . import containers

    capture = getattr(args, "json", False) and not args.detach
    _resolve_image(args)
    row, code, output = containers.run(
        args.image, args.command, detach=args.detach, remove_after=args.rm, capture=capture, tty=args.tty,
        **_create_options(args),
    )  # fmt: skip
    if args.detach:
        return Reply(containers.describe(containers.get(row["name"])), row["name"])
    data = {"name": row["name"], "id": row["id"][:12], "exit_code": code}
    if capture:
        data["output"] = output
    return Reply(data, None, status=code)


def container_start(args):
    from . import containers

    def start(ref):
        container_id = containers.get(ref)["id"]
        containers.start(container_id)
        return containers.describe(containers.get(container_id))

    return _each(args.names, start)


def container_stop(args):
    from . import containers, parse

    timeout = None if args.time is None else parse.seconds(args.time, "--time")
    return _each(args.names, lambda name: containers.describe(containers.stop(name, timeout)))


def container_kill(args):
    from . import containers, parse

    name = parse.signal_name(args.signal, "--signal")
    return _each(args.names, lambda ref: containers.describe(containers.kill(ref, name)))


def container_rename(args):
    from . import containers

    row = containers.rename(args.name, args.new_name)
    return Reply(containers.describe(row), row["name"])


def container_pause(args):
    from . import containers

    return _each(args.names, lambda ref: containers.describe(containers.pause(ref)))


def container_unpause(args):
    from . import containers

    return _each(args.names, lambda ref: containers.describe(containers.unpause(ref)))


def container_restart(args):
    from . import containers, parse

    timeout = None if args.time is None else parse.seconds(args.time, "--time")

    def restart(ref):
        container_id = containers.stop(ref, timeout)["id"]
        containers.start(container_id)
        return containers.describe(containers.get(container_id))

    return _each(args.names, restart)


def container_prune(_args):
    from . import prune as pruning

    removed = pruning.stopped_containers()
    return Reply(removed, "\n".join(item["name"] for item in removed))


def prune(args):
    """Containers that do not run and networks no container is on; images and volumes when asked."""
    from . import prune as pruning
    from .parse import human_size

    removed = pruning.everything(args.images, args.volumes)
    lines = [f"{kind[:-1]} {item['name']}" for kind, items in removed.items() if kind != "freed" for item in items]
    lines.append(f"freed {human_size(removed['freed'])}" if lines else "nothing to remove")
    return Reply(removed, "\n".join(lines))


def container_wait(args):
    from . import containers

    def wait(name):
        return containers.describe(containers.wait(name))

    return _each(args.names, wait, lambda data: str(data["exit_code"]))


def container_rm(args):
    from . import containers

    return _each(args.names, lambda name: containers.remove(name, force=args.force))


def _each(names, act, text=lambda data: data["name"]):
    """act(name) for every name given, as `docker rm a b c`: each is tried, whatever the others do.

    act returns the thing's data, text(data) the line people see. One name: its data, or its own error.
    Several: the list of their data, or one error saying how many failed,
    the first reason and what was done, with every failure in its details.
    """
    if len(names) == 1:
        data = act(names[0])
        return Reply(data, text(data))
    from .errors import try_each

    done = try_each(names, act)
    return Reply(done, "\n".join(text(data) for data in done))


def container_inspect(args):
    from . import containers

    info = containers.inspect(args.name)
    return Reply(info, _pretty(info))


def container_list(args):
    from . import containers

    chosen = {}
    if args.filter:
        from . import filters

        chosen = filters.parse(args.filter)
    # A status filter says itself which statuses appear, as in Docker: status=exited needs no --all.
    items = containers.list_all(include_stopped=args.all or "status" in chosen, sizes=args.size)
    if chosen:
        items = [item for item in items if filters.matches(item, chosen)]
    if args.quiet:  # names only, for scripts: for c in $(baleine container list -aq); do ...
        names = [item["name"] for item in items]
        return Reply(names, "\n".join(names))
    return Reply(items, _table("containers", items))


def container_add(args):
    from . import containers

    row = containers.add_network(args.name, args.network)
    return Reply(containers.describe(row), row["name"])


def container_commit(args):
    from . import commit, images

    row = commit.commit(args.name, args.image)
    return Reply(images.describe(row), row["name"])


def container_diff(args):
    from . import changes

    found = changes.diff(args.name)
    return Reply(found, "\n".join(f"{item['kind']} {item['path']}" for item in found))


def container_export(args):
    from . import exports

    _refuse_json_with_stdout(args, "tar")
    done = exports.export_container(args.name, args.file)
    return Reply(done, None if args.file == "-" else f"{args.file}: the files of {done['name']}")


def container_update(args):
    from . import resources

    info = resources.update(args.name, _resources(args), _settings(args))
    return Reply(info, args.name)


def _settings(args):
    """What update changes in the config besides limits, each parsed; used from its next use on."""
    from . import parse, restart

    settings = {}
    if args.log_size is not None:
        settings["log_size"] = _log_size(args)  # check rotates by it from its next pass
    if args.restart is not None:
        settings["restart"] = restart.parse(args.restart)
    if args.stop_signal is not None:
        settings["stop_signal"] = parse.signal_name(args.stop_signal)
    if args.stop_timeout is not None:
        settings["stop_timeout"] = parse.seconds(args.stop_timeout, "--stop-timeout")
    return settings


def container_stats(args):
    from . import resources

    items = resources.stats(args.names)
    return Reply(items, _table("stats", items))


def container_healthcheck(args):
    from . import health

    done = health.run_now(args.name)
    text = "healthy" if done["healthy"] else "unhealthy"
    return Reply(done, f"{text}: {done['said']}", status=0 if done["healthy"] else 1)


def container_top(args):
    from . import processes

    items = processes.top(args.name)
    return Reply(items, _table("top", items))


def container_exec(args):
    from . import containers
    from .errors import Invalid

    capture = getattr(args, "json", False)
    if args.detach:
        if args.tty:
            raise Invalid("--detach and --tty do not mix: a detached command has no terminal to talk to")
        started = containers.exec_detached(args.name, args.command, user=args.user, env=_env(args),
                                           workdir=args.workdir)  # fmt: skip
        return Reply(started, None)
    if capture and args.tty:
        raise Invalid("--tty and --json do not mix: a terminal's output is not captured")
    code, out, err = containers.exec_command(args.name, args.command, capture=capture, tty=args.tty, user=args.user,
                                             env=_env(args), workdir=args.workdir)  # fmt: skip
    return Reply({"exit_code": code, "stdout": out, "stderr": err}, None, status=code)


def container_cp(args):
    from . import filecopy

    done = filecopy.copy(args.source, args.destination)
    where = f"{done['container']}:{done['to']}" if args.destination.startswith(f"{done['container']}:") else done["to"]
    return Reply(done, f"copied {args.source} to {where}")


def container_logs(args):
    from . import containers, logs, parse

    tail = parse.positive_int(args.tail, "--tail") if args.tail is not None else None
    path = containers.log_path(args.name)
    if getattr(args, "json", False):
        if args.follow:
            logs.wait_until_stopped(args.name)
        return Reply({"lines": logs.read_lines(path, tail)}, None)
    logs.write(path, tail, sys.stdout.buffer)
    if args.follow:
        logs.follow(args.name, path, sys.stdout.buffer)
    return Reply(None, None)


# ----------------------------------------------------------------- check, cron


def check(args):
    from . import check as cron_pass

    report = cron_pass.run(prom=args.prom)
    return Reply(report, _check_text(report), status=cron_pass.needs_attention(report))


def _check_text(report):
    from .parse import human_size

    if report.get("skipped"):
        return f"skipped: {report['skipped']}"
    lines = ["host rebooted: containers recorded running were cleaned up"] if report["rebooted"] else []
    lines += [f"repaired: {action}" for action in report["repaired"]]
    lines += [f"exited: {item['name']} ({item['exit_code'] or item['reason']})" for item in report["exited"]]
    lines += [f"removed: {item['name']} (run with --rm, its run is gone)" for item in report["removed"]]
    lines += [f"restarted: {item['name']} (attempt {item['attempt']})" for item in report["restarted"]]
    lines += [f"waiting: {item['name']} (restart in {item['due_in']} s)" for item in report["waiting"]]
    lines += [f"unhealthy: {item['name']} ({item['failures']} failed probes)" for item in report["unhealthy"]]
    lines += [f"restart failed: {item['name']}: {item['error']}" for item in report["failed"]]
    moved = [(item["name"], human_size(item["bytes"])) for item in report["rotated"]]
    lines += [f"log rotated: {name} ({amount} moved to log.1)" for name, amount in moved]
    lines += [f"log rotation failed: {item['name']}: {item['error']}" for item in report["rotation_failed"]]
    lines += [f"low space: {report['low_space']}"] if report.get("low_space") else []
    return "\n".join(lines)


def cron_install(args):
    from . import cron

    result = cron.install(cron.minutes(args.every))
    return Reply(result, f"{'installed' if result['changed'] else 'no change'}: {result['file']}")


def cron_remove(args):
    from . import cron

    result = cron.remove()
    return Reply(result, f"{'removed' if result['changed'] else 'not installed'}: {result['file']}")


def cron_status(args):
    from . import cron

    result = cron.status()
    text = f"installed: every {result['every']} min\n{result['entry']}" if result["installed"] else "not installed"
    return Reply(result, text)


def df(_args):
    from . import space

    found = space.summary()
    return Reply(found, _table("df", found))


def info(_args):
    from . import info as host

    found = host.summary()
    return Reply(found, _table("info", found))


def events(args):
    from . import events as history
    from . import usage

    since = usage.parse_since(args.since) if args.since else None
    if args.follow:
        _follow_events(args.name, since, getattr(args, "json", False))
        return Reply(None, streamed=True)
    items = history.read(args.name, since)
    return Reply(items, _table("events", items))


def _follow_events(name, since, as_json):
    """Print each event on a line of its own (a JSON object with --json) as it comes, until the reader leaves."""
    from . import events as history
    from . import logs, render

    def emit(event):
        sys.stdout.write((jsonlite.dumps(event) if as_json else render.event_line(event)) + "\n")
        sys.stdout.flush()

    try:
        history.follow(name, since, emit, logs.pipe_or_terminal(sys.stdout))
    except BrokenPipeError:
        pass  # the reader left between two looks


def usage(args):
    from . import parse, render
    from . import usage as records
    from .state import CONTAINERS

    since = records.parse_since(args.since) if args.since else None
    items = records.summary(args.name, since, {row["id"][:12]: row["name"] for row in CONTAINERS.read()})
    size = parse.human_size
    rows = [(i["name"], i["id"], f"{i['cpu_seconds']:.1f}", size(i["memory_peak"]), size(i["io_read_bytes"]),
             size(i["io_write_bytes"]), i["pids_peak"], i["samples"]) for i in items]  # fmt: skip
    heading = ("NAME", "ID", "CPU SECONDS", "MEMORY PEAK", "READ", "WRITTEN", "PIDS PEAK", "SAMPLES")
    text = render.table(heading, rows)
    return Reply(items, text)


def _table(kind, items):
    """The table people see, made only when printed: --json callers (the fleet) skip render's imports."""

    def text():
        from . import render

        return getattr(render, kind)(items)

    return text
