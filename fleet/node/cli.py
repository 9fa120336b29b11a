"""The `baleine` command line: verbs, the JSON reply, and exit codes.

This is the only place that prints results or turns errors into exit codes.
With --json every verb prints exactly one JSON object on stdout:
{"ok": true, "data": ..., "version": V} or
{"ok": false, "error": {"message": M, "code": C}, "version": V}.
"""

import argparse
import os
import sys

from . import VERSION
from .errors import BaleineError, Invalid

EPILOG = "State lives in $BALEINE_ROOT (default /var/lib/baleine). Add --json for one JSON object on stdout."


class Parser(argparse.ArgumentParser):
    """argparse that raises Invalid instead of printing usage and exiting."""

    def error(self, message):
        raise Invalid(f"{message} (see: {self.prog} --help)")


class Reply:
    """What a verb returns: data for --json, text for people, the exit status."""

    def __init__(self, data, text=None, status=0):
        self.data = data
        self.text = text
        self.status = status


def _json_flag(parser):
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")


def _leaf(group, name, handler, help_text, description=None):
    parser = group.add_parser(name, help=help_text, description=description or help_text, epilog=EPILOG)
    parser.set_defaults(handler=handler)
    _json_flag(parser)
    return parser


SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
KINDS = ("image", "network", "container", "check", "cron", "usage")


def build_parser(kind=None):
    """The argparse tree: image, network and container verbs.

    Given the kind on the command line, only its verbs are built: every
    command pays argparse's construction time, so build what is used.
    """
    parser = Parser(
        prog="baleine",
        description="Run Linux containers on this host with the kernel's own tools: no daemon, no firewall rules.",
        epilog=EPILOG,
    )
    parser.add_argument("--json", action="store_true", default=False, help="print one JSON object")
    parser.add_argument("--version", action="version", version=f"baleine {VERSION}")
    kinds = parser.add_subparsers(dest="kind", metavar="{image,network,container,check,cron,usage}", required=True)
    verbs = {"image": _image_verbs, "network": _network_verbs, "container": _container_verbs,
             "check": _check_verb, "cron": _cron_verbs, "usage": _usage_verb}  # fmt: skip
    helps = {"image": "ext4 image files", "network": "bridges and their subnets", "container": "containers",
             "check": "the cron pass: record dead containers, apply restart policies",
             "cron": "install, remove or show the cron entry that runs check",
             "usage": "CPU, memory, io and pids used, summed from check's records"}  # fmt: skip
    for name in KINDS:
        sub = kinds.add_parser(name, help=helps[name], epilog=EPILOG)
        if kind in (None, name):
            verbs[name](sub)
    return parser


def _image_verbs(parser):
    from . import handlers as h

    verbs = parser.add_subparsers(dest="verb", required=True)
    create = _leaf(
        verbs, "create", h.image_create, "build an image file",
        "Build an ext4 image file NAME of --size bytes from --from SOURCE:\n"
        "  busybox                   the host's static busybox and its applets (no network needed)\n"
        "  debootstrap:SUITE[,variant=minbase][,include=pkg+pkg][,mirror=URL]\n"
        "  DIRECTORY                 a root filesystem tree\n"
        "  FILE.tar[.gz|.xz]         a root filesystem tarball",
    )  # fmt: skip
    create.formatter_class = argparse.RawDescriptionHelpFormatter
    create.add_argument("name", help="image name")
    create.add_argument("--size", required=True, help="file size, e.g. 64M or 2G (sparse: unused space costs nothing)")
    create.add_argument("--from", dest="source", required=True, help="busybox | debootstrap:SUITE | DIR | TARBALL")
    imported = _leaf(
        verbs, "import", h.image_import, "make an image of a docker-archive or OCI archive (layers flattened)"
    )
    imported.add_argument(
        "file", metavar="FILE|-", help="the archive (docker save, podman save, oci-archive); - for stdin"
    )
    imported.add_argument("--name", help="image name (default: from the archive's tag, e.g. webfx-1)")
    imported.add_argument("--tag", metavar="REF", help="which image, when the archive holds several")
    imported.add_argument("--size", help="file size (default: the files plus half again plus 16M)")
    exported = _leaf(verbs, "export", h.image_export, "write an image as a one-layer docker-archive or OCI archive")
    exported.add_argument("name", help="image name")
    exported.add_argument("file", metavar="FILE|-", help="where to write it; - for stdout")
    exported.add_argument("--format", default="docker-archive", help="docker-archive (default) or oci-archive")
    exported.add_argument("--tag", metavar="REF", help="the name it carries (default: localhost/NAME:latest)")
    sent = _leaf(verbs, "send", h.image_send, "write an image as a stream on stdout (for image receive)")
    sent.add_argument("name", help="image name")
    _leaf(
        verbs, "receive", h.image_receive,
        "register an image from a stream on stdin (from image send)",
        "Read a stream written by `baleine image send NAME` from stdin and register the image,\n"
        "only once the whole file has arrived and its sha256 matches. Example:\n"
        "  ssh node1 baleine image send web | baleine image receive",
    ).formatter_class = argparse.RawDescriptionHelpFormatter  # fmt: skip
    _leaf(verbs, "list", h.image_list, "list images")
    for name, handler, text in (("rm", h.image_rm, "delete an image no container uses"),
                                ("inspect", h.image_inspect, "show everything known about an image")):  # fmt: skip
        _leaf(verbs, name, handler, text).add_argument("name", help="image name")


def _network_verbs(parser):
    from . import handlers as h

    verbs = parser.add_subparsers(dest="verb", required=True)
    create = _leaf(verbs, "create", h.network_create, "create a bridge network (its subnet must be free on this host)")
    create.add_argument("name", help="network name")
    create.add_argument("--subnet", required=True, help="CIDR, e.g. 10.88.0.0/24")
    create.add_argument("--gateway", help="the bridge's address (default: the first host address of --range or subnet)")
    create.add_argument("--range", metavar="CIDR", help="this host's part of the subnet: its containers' addresses")
    create.add_argument("--vxlan", metavar="ID", help="join the bridges of several hosts: a VXLAN id, 1-16777215")
    create.add_argument("--peer", action="append", default=[], metavar="IP",
                        help="another host of the network (repeat): VXLAN frames go to it by unicast")  # fmt: skip
    create.add_argument("--mtu", help="MTU of the bridge and the containers' interfaces (default 1450 with --vxlan)")
    peers = _leaf(verbs, "peers", h.network_peers, "replace a spanning network's peers (the other hosts), live")
    peers.add_argument("name", help="network name")
    peers.add_argument("peers", nargs="*", metavar="IP", help="the other hosts' addresses")
    _leaf(verbs, "list", h.network_list, "list networks with the number of containers attached")
    for name, handler, text in (("rm", h.network_rm, "delete a network no container is attached to"),
                                ("inspect", h.network_inspect, "show a network and its containers")):  # fmt: skip
        _leaf(verbs, name, handler, text).add_argument("name", help="network name")


def _limit_options(parser):
    """Resource limits, shared by create, run and update."""
    from .limits import DEFAULT_PIDS

    group = parser.add_argument_group("limits (sizes and rates take K, M, G; Ki, Mi, Gi too)")
    group.add_argument("--memory", "-m", metavar="SIZE", help="memory limit, swap off, e.g. 256M")
    group.add_argument("--cpus", metavar="N", help="CPU time, e.g. 0.5 for half a CPU")
    group.add_argument("--cpu-shares", metavar="N", help="relative CPU weight, 2 to 262144 (default 1024)")
    group.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs it may run on, e.g. 0-1,3")
    group.add_argument("--pids-limit", metavar="N", help=f"most processes at once (default {DEFAULT_PIDS})")
    for name, what in (("read-bps", "bytes read"), ("write-bps", "bytes written"),
                       ("read-iops", "reads"), ("write-iops", "writes")):  # fmt: skip
        group.add_argument(f"--io-{name}", action="append", default=[], metavar="[DEV:]RATE",
                           help=f"{what} per second; without DEV, on its own disk")  # fmt: skip
    group.add_argument("--device-allow", action="append", default=[], metavar="RULE",
                       help="also allow a device, e.g. 'c 10:200 rwm' (cgroup v1)")  # fmt: skip
    group.add_argument("--device-deny", action="append", default=[], metavar="RULE", help="deny a device (cgroup v1)")


def _check_verb(parser):
    from . import handlers as h

    parser.set_defaults(handler=h.check)
    parser.add_argument("--prom", metavar="FILE", help="also write node_exporter's textfile (.prom) there")
    _json_flag(parser)


def _usage_verb(parser):
    from . import handlers as h

    parser.set_defaults(handler=h.usage)
    parser.add_argument("name", nargs="?", help="one container (default: all)")
    parser.add_argument("--since", metavar="T", help="a date, a UTC time (2026-11-23T10:00:00Z) or 90m, 2h, 7d")
    _json_flag(parser)


def _cron_verbs(parser):
    from . import handlers as h

    verbs = parser.add_subparsers(dest="verb", required=True)
    install = _leaf(verbs, "install", h.cron_install, "run `baleine check` from cron (idempotent)")
    install.add_argument("--every", default="1", metavar="MINUTES", help="minutes between passes, 1 to 59 (default 1)")
    _leaf(verbs, "remove", h.cron_remove, "remove the cron entry")
    _leaf(verbs, "status", h.cron_status, "show the cron entry")


def _container_options(parser):
    parser.add_argument("--name", help="container name (default: IMAGE-xxxxxx)")
    parser.add_argument("--network", action="append", default=[], metavar="NET[:IP]",
                        help="join a network, optionally at a given address (repeat for more)")  # fmt: skip
    parser.add_argument("--hostname", help="host name inside (default: the container name)")
    parser.add_argument("--env", "-e", action="append", default=[], metavar="K=V", help="environment variable")
    parser.add_argument("--volume", "-v", action="append", default=[], metavar="SRC:DST[:ro]",
                        help="bind a host path into the container")  # fmt: skip
    parser.add_argument("--workdir", "-w", help="working directory inside")
    parser.add_argument("--user", "-u", metavar="U[:G]", help="user (and group), names or ids from the image")
    parser.add_argument("--read-only", action="store_true", help="mount the container's root filesystem read-only")
    parser.add_argument("--no-suid", action="store_true", help="ignore setuid bits on the container's disk")
    parser.add_argument("--health-cmd", metavar="CMD", help="health probe, run as /bin/sh -c CMD by baleine check")
    parser.add_argument("--health-interval", metavar="S", help="seconds between probes (default 30)")
    parser.add_argument("--health-retries", metavar="N", help="failures in a row that make it unhealthy (default 3)")
    parser.add_argument("--health-timeout", metavar="S", help="seconds before a probe counts as failed (default 10)")
    parser.add_argument(
        "--restart", metavar="POLICY", help="no (default), on-failure[:N], always or unless-stopped (by baleine check)"
    )
    parser.add_argument("--userns", action="store_true",
                        help="root inside is an unprivileged id range outside (files are chowned on copy)")  # fmt: skip
    parser.add_argument(
        "--cap-add",
        action="append",
        default=[],
        metavar="CAP",
        help="give root inside one more capability, e.g. NET_ADMIN (ALL for every one)",
    )
    parser.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                        help="take a capability away from the default set (ALL for every one)")  # fmt: skip
    _limit_options(parser)
    parser.add_argument("image", help="image name")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments (default: the image's)")


def _container_verbs(parser):
    from . import handlers as h

    verbs = parser.add_subparsers(dest="verb", required=True)
    _container_options(_leaf(verbs, "create", h.container_create, "create a container (not started)"))
    run = _leaf(verbs, "run", h.container_run, "create and start a container; attached unless -d")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("-d", "--detach", action="store_true", help="run in the background, output to its log")
    mode.add_argument("--rm", action="store_true", help="remove the container when it exits")
    _container_options(run)
    simple = (
        ("start", h.container_start, "start a created or stopped container"),
        ("inspect", h.container_inspect, "show everything known about a container"),
    )
    for name, handler, text in simple:
        _leaf(verbs, name, handler, text).add_argument("name", help="container name or id")
    stop = _leaf(verbs, "stop", h.container_stop, "stop a container: SIGTERM, then SIGKILL after --time")
    stop.add_argument("name", help="container name or id")
    stop.add_argument("--time", "-t", default="10", help="seconds to wait before SIGKILL (default 10)")
    rm = _leaf(verbs, "rm", h.container_rm, "delete a container, its disk copy and configuration")
    rm.add_argument("name", help="container name or id")
    rm.add_argument("--force", "-f", action="store_true", help="stop it first if it runs")
    logs = _leaf(verbs, "logs", h.container_logs, "print a container's output")
    logs.add_argument("name", help="container name or id")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the container stops")
    logs.add_argument("--tail", metavar="N", help="only the last N lines")
    listing = _leaf(verbs, "list", h.container_list, "list running containers (--all: every container)")
    listing.add_argument("--all", "-a", action="store_true", help="include created and exited containers")
    add = _leaf(verbs, "add", h.container_add, "attach a container to one more network (live if running)")
    add.add_argument("name", help="container name or id")
    add.add_argument("--network", required=True, metavar="NET[:IP]", help="network, optionally with an address")
    commit = _leaf(verbs, "commit", h.container_commit, "make an image of a container's disk (frozen if running)")
    commit.add_argument("name", help="container name or id")
    commit.add_argument("image", help="name of the new image")
    update = _leaf(verbs, "update", h.container_update, "change a container's limits, live if it runs")
    update.add_argument("name", help="container name or id")
    _limit_options(update)
    stats = _leaf(verbs, "stats", h.container_stats, "CPU, memory, block io and pids of running containers")
    stats.add_argument("names", nargs="*", metavar="NAME", help="containers (default: every running one)")
    exec_ = _leaf(verbs, "exec", h.container_exec, "run a command inside a running container")
    exec_.add_argument("name", help="container name or id")
    exec_.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def run():
    """Console-script entry point: exit with main()'s status."""
    sys.exit(main())


def main(argv=None):
    """Run one verb; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    json_mode = "--json" in argv
    _complete_path()
    try:
        kind = next((word for word in argv if word in KINDS), None)
        args = build_parser(kind).parse_args(argv)
        json_mode = args.json
        reply = args.handler(args)
    except BaseException as error:  # noqa: BLE001 - the one place errors become exit codes
        return _fail(error, json_mode)
    _emit_ok(reply, json_mode)
    return reply.status


def _complete_path():
    """Add the sbin directories a non-login SSH session or cron leaves out: ip and mkfs live there."""
    current = os.environ.get("PATH", "").split(os.pathsep)
    missing = [d for d in SYSTEM_PATH if d not in current]
    if missing:
        os.environ["PATH"] = os.pathsep.join([p for p in current if p] + missing)


def _fail(error, json_mode):
    if isinstance(error, KeyboardInterrupt):
        error = BaleineError("interrupted")
        error.exit_status = 130
    elif isinstance(error, SystemExit):  # --help and --version print and exit cleanly
        raise error
    elif not isinstance(error, BaleineError):
        if os.environ.get("BALEINE_DEBUG"):
            raise error
        error = _wrap_unexpected(error)
    if json_mode:
        _print_json({"ok": False, "error": {"message": error.message, "code": error.code, **_jsonable(error.details)}})
    else:
        sys.stderr.write(f"baleine: error: {error.message}\n")
    return error.exit_status


def _wrap_unexpected(error):
    if isinstance(error, PermissionError):
        return BaleineError(f"permission denied: {error} (baleine needs root)")
    if isinstance(error, OSError):
        return BaleineError(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
    return BaleineError(f"internal error: {type(error).__name__}: {error} (set BALEINE_DEBUG=1 for a traceback)")


def _jsonable(details):
    return {key: value for key, value in details.items() if key != "stderr"}


def _emit_ok(reply, json_mode):
    if json_mode:
        _print_json({"ok": True, "data": reply.data})
    elif reply.text:
        sys.stdout.write(reply.text.rstrip("\n") + "\n")


def _print_json(payload):
    import json

    payload["version"] = VERSION
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
