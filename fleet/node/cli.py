"""The `baleine` command line: verbs, the JSON reply, and exit codes.

This is the only place that prints results or turns errors into exit codes.
With --json every verb prints exactly one JSON object on stdout:
{"ok": true, "data": ..., "version": V} or
{"ok": false, "error": {"message": M, "code": C}, "version": V}.
"""

import os
import sys

from . import VERSION, jsonlite
from .errors import BaleineError

EPILOG = "State lives in $BALEINE_ROOT (default /var/lib/baleine). Add --json for one JSON object on stdout."


class Reply:
    """What a verb returns: data for --json, text for people, the exit status.

    text may be a function, called only when the text is printed. streamed:
    the verb printed its output as it came (a JSON object a line under
    --json), so nothing is added after it.
    """

    def __init__(self, data, text=None, status=0, streamed=False):
        self.data = data
        self.text = text
        self.status = status
        self.streamed = streamed


def _json_flag(command):
    command.option("--json", flag=True, help_text="print one JSON object")


def _leaf(group, name, handler, help_text, description=None):
    verb = group.command(name, help_text, description, handler)
    _json_flag(verb)
    return verb


SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
KINDS = ("image", "network", "volume", "container", "check", "cron", "usage", "events", "df", "info", "prune",
         "mirror", "registry", "login", "logout")  # fmt: skip


def build_parser(kind=None):
    """The command tree: image, network and container verbs, check, cron and usage.

    Given the kind on the command line, only its verbs are built (and their
    handlers' module imported): build what is used.
    """
    from .commandline import Command

    root = Command(
        "baleine",
        description="Run Linux containers on this host with the kernel's own tools: no daemon, no firewall rules.",
        epilog=EPILOG,
    )
    _json_flag(root)
    root.option("--version", flag=True, help_text="print the version and exit")
    root.version = f"baleine {VERSION}"
    verbs = {"image": _image_verbs, "network": _network_verbs, "volume": _volume_verbs, "container": _container_verbs,
             "check": _check_verb, "cron": _cron_verbs, "usage": _usage_verb, "events": _events_verb,
             "df": _bare_verb("df"), "info": _bare_verb("info"), "prune": _prune_verb, "mirror": _mirror_verbs,
             "registry": _registry_verbs, "login": _login_verb, "logout": _logout_verb}  # fmt: skip
    helps = {"image": "ext4 image files", "network": "bridges and their subnets", "container": "containers",
             "volume": "named volumes: directories that outlive their containers",
             "check": "the cron pass: record dead containers, apply restart policies",
             "cron": "install, remove or show the cron entry that runs check",
             "usage": "CPU, memory, io and pids used, summed from check's records",
             "events": "what happened to containers, when and by whom",
             "df": "disk space: images, containers, logs, history, and what prune would free",
             "info": "this host: kernel, cgroups, filesystem, seccomp, init, cron, and what baleine holds",
             "prune": "remove what nothing uses: stopped containers, networks (images, volumes if asked)",
             "mirror": "registry mirrors pulls try first (pull-through caches)",
             "registry": "registries known here: logins, mirrors, and which take plain HTTP",
             "login": "check a registry login and keep it for pulls and pushes",
             "logout": "forget a registry login"}  # fmt: skip
    for name in KINDS:
        sub = root.command(name, helps[name])
        if kind in (None, name):
            verbs[name](sub)
    return root


def _image_verbs(verbs):
    from . import handlers as h

    create = _leaf(
        verbs, "create", h.image_create, "build an image file",
        "Build an ext4 image file NAME of --size bytes from --from SOURCE:\n"
        "  busybox                   the host's static busybox and its applets (no network needed)\n"
        "  debootstrap:SUITE[,variant=minbase][,include=pkg+pkg][,mirror=URL]\n"
        "  DIRECTORY                 a root filesystem tree\n"
        "  FILE.tar[.gz|.xz]         a root filesystem tarball",
    )  # fmt: skip
    create.positional("name", help_text="image name")
    create.option("--size", required=True, help_text="file size, e.g. 64M or 2G (sparse: unused space costs nothing)")
    create.option("--from", dest="source", required=True, metavar="SOURCE",
                  help_text="busybox | debootstrap:SUITE | DIR | TARBALL")  # fmt: skip
    imported = _leaf(
        verbs, "import", h.image_import, "make an image of a docker-archive or OCI archive (layers flattened)"
    )
    imported.positional(
        "file", metavar="FILE|-", help_text="the archive (docker save, podman save, oci-archive); - for stdin"
    )
    imported.option("--name", help_text="image name (default: from the archive's tag, e.g. webfx-1)")
    imported.option("--tag", metavar="REF", help_text="which image, when the archive holds several")
    imported.option("--size", help_text="file size (default: the files plus half again plus 16M)")
    pulled = _leaf(
        verbs, "pull", h.image_pull,
        "make an image of one in a registry (Docker Hub, GHCR, a private one; layers flattened)",
        "Fetch the manifest (an index: this host's platform), then stream the config and\n"
        "each layer, every digest checked, into one ext4 image file. HTTPS_PROXY, HTTP_PROXY\n"
        "and NO_PROXY are read as Docker reads them. Examples:\n"
        "  baleine image pull nginx:1.27-alpine\n"
        "  baleine image pull ghcr.io/org/app:2 --name app --username bot --password-stdin < token\n"
        "  baleine image pull registry.lan:5000/web@sha256:<64 hex> --insecure",
    )  # fmt: skip
    pulled.positional("reference", metavar="REF", help_text="[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]")
    pulled.option("--name", help_text="image name (default: from REF, e.g. nginx-1.27-alpine)")
    pulled.option("--size", help_text="file size (default: the files plus half again plus 16M)")
    pulled.option("--platform", metavar="OS/ARCH[/VARIANT]", help_text="from an index (default: this host's)")
    _registry_login_options(pulled)
    pushed = _leaf(
        verbs, "push", h.image_push, "put an image in a registry as REF (one layer, its config kept)",
        "Upload the image as one gzip layer and its config, the blobs the registry\n"
        "lacks only, then tag the manifest; prints REF@DIGEST. Examples:\n"
        "  baleine image push web registry.lan:5000/farm/web:2\n"
        "  baleine image push web ghcr.io/org/web:2 --username bot --password-stdin < token",
    )  # fmt: skip
    pushed.positional("name", help_text="image name")
    pushed.positional("reference", metavar="REF", help_text="[REGISTRY/]REPOSITORY[:TAG] (default tag: latest)")
    _registry_login_options(pushed)
    exported = _leaf(verbs, "export", h.image_export, "write an image as a one-layer docker-archive or OCI archive")
    exported.positional("name", help_text="image name")
    exported.positional("file", metavar="FILE|-", help_text="where to write it; - for stdout")
    exported.option("--format", default="docker-archive", help_text="docker-archive (default) or oci-archive")
    exported.option("--tag", metavar="REF", help_text="the name it carries (default: localhost/NAME:latest)")
    sent = _leaf(verbs, "send", h.image_send, "write an image as a stream on stdout (for image receive)")
    sent.positional("name", help_text="image name")
    _leaf(
        verbs, "receive", h.image_receive,
        "register an image from a stream on stdin (from image send)",
        "Read a stream written by `baleine image send NAME` from stdin and register the image,\n"
        "only once the whole file has arrived and its sha256 matches. Example:\n"
        "  ssh node1 baleine image send web | baleine image receive",
    )  # fmt: skip
    tagged = _leaf(verbs, "tag", h.image_tag, "give an image a second name: a copy of its file (a reflink if it can)")
    tagged.positional("source", help_text="image name")
    tagged.positional("name", help_text="the new image's name, e.g. web-v1")
    _leaf(verbs, "list", h.image_list, "list images")
    verbs.alias("ls", "list")
    _names(_leaf(verbs, "rm", h.image_rm, "delete images no container uses"), "image names")
    _leaf(verbs, "prune", h.image_prune, "delete every image no container uses (created, running or exited)")
    _leaf(verbs, "inspect", h.image_inspect, "show everything known about an image").positional(
        "name", help_text="image name"
    )


def _network_verbs(verbs):
    from . import handlers as h

    create = _leaf(verbs, "create", h.network_create, "create a bridge network (its subnet must be free on this host)")
    create.positional("name", help_text="network name")
    create.option("--subnet", required=True, metavar="CIDR", help_text="CIDR, e.g. 10.88.0.0/24")
    create.option("--gateway", metavar="IP",
                  help_text="the bridge's address (default: the first host address of --range or subnet)")  # fmt: skip
    create.option("--range", metavar="CIDR", help_text="this host's part of the subnet: its containers' addresses")
    create.option("--vxlan", metavar="ID", help_text="join the bridges of several hosts: a VXLAN id, 1-16777215")
    create.option("--peer", repeat=True, metavar="IP",
                  help_text="another host of the network (repeat): VXLAN frames go to it by unicast")  # fmt: skip
    create.option("--mtu", help_text="MTU of the bridge and the containers' interfaces (default 1450 with --vxlan)")
    create.option("--internal", flag=True,
                  help_text="no address on the bridge: its containers reach one another, not this host")  # fmt: skip
    peers = _leaf(verbs, "peers", h.network_peers, "replace a spanning network's peers (the other hosts), live")
    peers.positional("name", help_text="network name")
    peers.positional("peers", nargs="*", metavar="IP", help_text="the other hosts' addresses")
    _leaf(verbs, "list", h.network_list, "list networks with the number of containers attached")
    verbs.alias("ls", "list")
    _names(_leaf(verbs, "rm", h.network_rm, "delete networks no container is attached to"), "network names")
    _leaf(verbs, "prune", h.network_prune, "delete every network no container is attached to (whatever its status)")
    _leaf(verbs, "inspect", h.network_inspect, "show a network and its containers").positional(
        "name", help_text="network name"
    )
    connect = _leaf(verbs, "connect", h.network_connect, "attach a container to a network, live if it runs")
    connect.option("--ip", metavar="IP", help_text="its address there (default: the first free one)")
    disconnect = _leaf(verbs, "disconnect", h.network_disconnect,
                       "detach a container from a network, live if it runs: its interface goes")  # fmt: skip
    for verb in (connect, disconnect):
        verb.positional("network", help_text="network name")
        verb.positional("container", help_text="container name or id")


def _volume_verbs(verbs):
    from . import handlers as h

    _leaf(verbs, "create", h.volume_create, "create a named volume (--volume NAME:/path makes one too)").positional(
        "name", help_text="volume name"
    )
    _leaf(verbs, "list", h.volume_list, "list volumes: space used and the containers naming them")
    verbs.alias("ls", "list")
    _names(_leaf(verbs, "rm", h.volume_rm, "delete volumes no container names, with what they hold"), "volume names")
    _leaf(verbs, "inspect", h.volume_inspect, "show a volume: its path, space used, containers").positional(
        "name", help_text="volume name"
    )
    _leaf(verbs, "prune", h.volume_prune, "delete every volume no container names (created, running or exited)")


def _limit_options(verb):
    """Resource limits, shared by create, run and update."""
    from .limits import DEFAULT_PIDS

    verb.section("limits (sizes and rates take K, M, G; Ki, Mi, Gi too)")
    verb.option("--memory", "-m", metavar="SIZE", help_text="memory limit, swap off, e.g. 256M")
    verb.option("--cpus", metavar="N", help_text="CPU time, e.g. 0.5 for half a CPU")
    verb.option("--cpu-shares", metavar="N", help_text="relative CPU weight, 2 to 262144 (default 1024)")
    verb.option("--cpuset-cpus", metavar="LIST", help_text="CPUs it may run on, e.g. 0-1,3")
    verb.option("--pids-limit", metavar="N", help_text=f"most processes at once (default {DEFAULT_PIDS})")
    for name, what in (("read-bps", "bytes read"), ("write-bps", "bytes written"),
                       ("read-iops", "reads"), ("write-iops", "writes")):  # fmt: skip
        verb.option(f"--io-{name}", repeat=True, metavar="[DEV:]RATE",
                    help_text=f"{what} per second; without DEV, on its own disk")  # fmt: skip
    verb.option("--device-allow", repeat=True, metavar="RULE",
                help_text="also allow a device: TYPE MAJ:MIN ACCESS, e.g. 'c 10:200 rwm' (types a b c)")  # fmt: skip
    verb.option(
        "--device-deny", repeat=True, metavar="RULE", help_text="take access off an allowed device, e.g. 'c 1:3 w'"
    )


def _registry_login_options(verb, default="the login kept by baleine login, else anonymous"):
    verb.option("--username", help_text=f"log in as this user (default: {default})")
    verb.option("--password-stdin", flag=True, help_text="read the password or token from stdin's first line")
    verb.option("--insecure", flag=True,
                help_text="plain HTTP, or HTTPS unchecked (loopback registries are so already)")  # fmt: skip


def _names(verb, what):
    """NAME... of a verb that takes several (rm a b c)."""
    verb.positional(
        "names", nargs="*", metavar="NAME", required=True, help_text=f"{what}: each is tried, whatever the others do"
    )


def _interactive_option(verb):
    verb.option("--interactive", "-i", flag=True, help_text="stdin is connected anyway: accepted for -it habits")


def _env_file_option(verb):
    verb.option("--env-file", repeat=True, metavar="FILE",
                help_text="KEY=VALUE lines (# comments), - for stdin; --env given too wins")  # fmt: skip


def _restart_option(verb):
    verb.option("--restart", metavar="POLICY",
                help_text="no (default), on-failure[:N], always or unless-stopped (by baleine check)")  # fmt: skip


def _stop_options(verb):
    verb.option("--stop-signal", metavar="SIG",
                help_text="what stop sends first, e.g. SIGQUIT (default: the image's, else SIGTERM)")  # fmt: skip
    verb.option("--stop-timeout", metavar="S", help_text="seconds stop waits before SIGKILL (default 10)")


def _log_size_option(verb):
    verb.option("--log-size", metavar="SIZE",
                help_text="past SIZE, check moves the log's older part to log.1 (default 10M, 0: never)")  # fmt: skip


def _check_verb(verb):
    from . import handlers as h

    verb.handler = h.check
    verb.option("--prom", metavar="FILE", help_text="also write node_exporter's textfile (.prom) there")
    _json_flag(verb)


def _usage_verb(verb):
    from . import handlers as h

    verb.handler = h.usage
    verb.positional("name", nargs="?", help_text="one container (default: all)")
    _since_option(verb)


def _prune_verb(verb):
    from . import handlers as h

    verb.handler = h.prune
    verb.option("--images", flag=True, help_text="also every image no container uses")
    verb.option("--volumes", flag=True, help_text="also every volume no container names, with what it holds")
    _json_flag(verb)


def _mirror_verbs(verbs):
    from . import handlers as h

    added = _leaf(
        verbs, "add", h.mirror_add, "have pulls from REGISTRY try MIRROR first",
        "Pulls from REGISTRY ask each of its mirrors for the image first, in the order\n"
        "they were added, then REGISTRY itself; a mirror that fails is said and skipped.\n"
        "A mirror's own login is the one baleine login keeps for it. A mirror's /PATH\n"
        "goes before each repository, as a Harbor proxy-cache project wants. Examples:\n"
        "  baleine mirror add docker.io mirror.gcr.io\n"
        "  baleine mirror add docker.io cache.lan:5000 --insecure\n"
        "  baleine mirror add docker.io harbor.lan/dockerhub   # nginx: harbor.lan/dockerhub/library/nginx",
    )  # fmt: skip
    added.positional("registry", metavar="REGISTRY", help_text="HOST[:PORT] it mirrors, e.g. docker.io")
    added.positional("mirror", metavar="MIRROR", help_text="HOST[:PORT][/PATH] of the mirror")
    added.option("--insecure", flag=True, help_text="plain HTTP, or HTTPS unchecked (loopback mirrors are so already)")
    _names(_leaf(verbs, "rm", h.mirror_rm, "forget mirrors"), "mirror")
    _leaf(verbs, "list", h.mirror_list, "show each registry's mirrors, in the order pulls try them")
    verbs.alias("ls", "list")


def _registry_verbs(verbs):
    from . import handlers as h

    insecure = _leaf(
        verbs, "insecure", h.registry_insecure, "let pulls and pushes use plain HTTP or unchecked HTTPS for REGISTRY",
        "As Docker's insecure-registries: every pull, push, login check and run --pull\n"
        "of REGISTRY, and its use as a mirror, accept plain HTTP or a certificate not\n"
        "checked, as --insecure does for one command. Loopback registries are so already.\n"
        "  baleine registry insecure registry.lan:5000\n"
        "  baleine container run -d registry.lan:5000/web:2     (pulled over plain HTTP)",
    )  # fmt: skip
    insecure.positional("registry", metavar="REGISTRY", help_text="HOST[:PORT], e.g. registry.lan:5000")
    secure = _leaf(verbs, "secure", h.registry_secure, "HTTPS with checked certificates again for REGISTRY (default)")
    secure.positional("registry", metavar="REGISTRY", help_text="HOST[:PORT]")
    _leaf(verbs, "list", h.registry_list, "show each registry known here: its login, its mirrors, plain HTTP or not")
    verbs.alias("ls", "list")


def _login_verb(verb):
    from . import handlers as h

    verb.handler = h.login
    verb.description = (
        "Ask the registry to check a login (as docker login does), then keep it in\n"
        "$BALEINE_ROOT/auth.json (Docker's format, mode 0600, not encrypted): image pull,\n"
        "image push and container run --pull use it when no --username is given.\n"
        "Failing that, pulls use what Docker's config gives (its credential helpers,\n"
        "else the logins docker login kept in ~/.docker/config.json). Examples:\n"
        "  baleine login ghcr.io --username bot --password-stdin < token\n"
        "  baleine login registry.lan:5000 --username ci     (asks for the password)\n"
        "  baleine login ghcr.io                             (checks the login pulls would use)"
    )
    verb.positional("registry", nargs="?", metavar="REGISTRY", help_text="HOST[:PORT] (default: docker.io)")
    _registry_login_options(verb, "check again the login pulls would use, Docker's included")
    _json_flag(verb)


def _logout_verb(verb):
    from . import handlers as h

    verb.handler = h.logout
    verb.positional("registry", nargs="?", metavar="REGISTRY", help_text="HOST[:PORT] (default: docker.io)")
    _json_flag(verb)


def _bare_verb(name):
    """The builder of a verb with no argument but --json, answered by handlers.NAME (df, info)."""

    def build(verb):
        from . import handlers

        verb.handler = getattr(handlers, name)
        _json_flag(verb)

    return build


def _events_verb(verb):
    from . import handlers as h

    verb.handler = h.events
    verb.positional("name", nargs="?", help_text="one container, name or id (default: all, removed ones too)")
    verb.option("--follow", "-f", flag=True,
                help_text="then each new event as it comes, a line each (with --json: an object a line)")  # fmt: skip
    _since_option(verb)


def _since_option(verb):
    verb.option("--since", metavar="T", help_text="a date, a UTC time (2026-11-23T10:00:00Z) or 90m, 2h, 7d")
    _json_flag(verb)


def _cron_verbs(verbs):
    from . import handlers as h

    install = _leaf(verbs, "install", h.cron_install, "run `baleine check` from cron (idempotent)")
    install.option("--every", default="1", metavar="MINUTES", help_text="minutes between passes, 1 to 59 (default 1)")
    _leaf(verbs, "remove", h.cron_remove, "remove the cron entry")
    _leaf(verbs, "status", h.cron_status, "show the cron entry")


def _container_options(verb):
    verb.option("--name", help_text="container name (default: IMAGE-xxxxxx)")
    verb.option("--pull", metavar="POLICY", default="missing",
                help_text="for a reference: missing (pull if not yet), always (ask the registry), never")  # fmt: skip
    verb.option("--network", repeat=True, metavar="NET[:IP]",
                help_text="join a network, optionally at a given address (repeat for more)")  # fmt: skip
    verb.option("--hostname", help_text="host name inside (default: the container name)")
    verb.option("--dns", repeat=True, metavar="IP", help_text="name server for /etc/resolv.conf (default: the host's)")
    verb.option("--dns-search", repeat=True, metavar="DOMAIN",
                help_text="search domain for short names (default: the host's; '.' for none)")  # fmt: skip
    verb.option("--dns-option", repeat=True, metavar="OPT", help_text="resolver option, e.g. ndots:2")
    verb.option("--add-host", repeat=True, metavar="NAME:IP",
                help_text="a line in /etc/hosts; IP host-gateway: the host on the first network")  # fmt: skip
    verb.option("--label", "-l", repeat=True, metavar="KEY=VALUE",
                help_text="metadata for people and scripts, e.g. role=web (list --filter label=role=web)")  # fmt: skip
    verb.option("--env", "-e", repeat=True, metavar="K=V", help_text="environment variable")
    _env_file_option(verb)
    verb.option("--volume", "-v", repeat=True, metavar="SRC:DST[:ro]",
                help_text="a host path, or a named volume (an empty one gets the image's files)")  # fmt: skip
    verb.option("--mount", repeat=True, metavar="KEY=VALUE,...",
                help_text="Docker's form: type=bind|volume|tmpfs,source=SRC,target=DST[,readonly]...")  # fmt: skip
    verb.option("--workdir", "-w", metavar="DIR", help_text="working directory inside")
    verb.option("--entrypoint", metavar="PROGRAM",
                help_text="instead of the image's ENTRYPOINT and CMD ('': none, then COMMAND or CMD)")  # fmt: skip
    verb.option("--user", "-u", metavar="U[:G]", help_text="user (and group), names or ids from the image")
    verb.option("--group-add", repeat=True, metavar="GROUP",
                help_text="one more supplementary group, a name from the image or an id")  # fmt: skip
    verb.option("--read-only", flag=True, help_text="mount the container's root filesystem read-only")
    verb.option("--tmpfs", repeat=True, metavar="DIR[:OPTS]",
                help_text="a private tmpfs at DIR, e.g. /run:size=16M,mode=755 (default 64M, noexec)")  # fmt: skip
    verb.option("--no-suid", flag=True, help_text="ignore setuid bits on the container's disk")
    verb.option("--sysctl", repeat=True, metavar="KEY=VALUE",
                help_text="a setting of its own namespaces (net.*, IPC), e.g. net.core.somaxconn=1024")  # fmt: skip
    verb.option("--shm-size", metavar="SIZE", help_text="size of its /dev/shm (default 64M)")
    verb.option("--oom-score-adj", metavar="N",
                help_text="-1000 (never OOM-killed) to 1000 (first); below 0 needs CAP_SYS_RESOURCE")  # fmt: skip
    verb.option("--device", repeat=True, metavar="HOST[:CTR][:PERMS]",
                help_text="a host device node in the container's /dev, e.g. /dev/fuse (PERMS: rwm)")  # fmt: skip
    verb.option("--health-cmd", metavar="CMD",
                help_text="probe run as /bin/sh -c CMD by check (default: the image's HEALTHCHECK)")  # fmt: skip
    verb.option("--health-http", metavar="PATH",
                help_text="probe: GET 127.0.0.1:PORT/PATH in its network, by baleine "
                          "(the image needs no wget); 200-399 pass")  # fmt: skip
    verb.option("--health-https", metavar="PATH",
                help_text="probe: the same over TLS, its certificate not checked "
                          "(a server that only speaks TLS)")  # fmt: skip
    verb.option("--health-port", metavar="PORT", help_text="the port --health-http(s) asks (default 80, 443)")
    verb.option("--health-tcp", metavar="PORT",
                help_text="probe: a connection to 127.0.0.1:PORT in its network, by baleine "
                          "(a database, a cache)")  # fmt: skip
    verb.option("--health-interval", metavar="S", help_text="seconds between probes (default 30)")
    verb.option("--health-retries", metavar="N", help_text="failures in a row that make it unhealthy (default 3)")
    verb.option("--health-timeout", metavar="S", help_text="seconds before a probe counts as failed (default 10)")
    verb.option("--no-healthcheck", flag=True, help_text="without the image's own HEALTHCHECK")
    verb.option("--health-start-period", metavar="S",
                help_text="seconds after a start when failures do not count, successes do (default 0)")  # fmt: skip
    _restart_option(verb)
    verb.option("--userns", flag=True,
                help_text="root inside is an unprivileged id range outside (files are chowned on copy)")  # fmt: skip
    verb.option("--cap-add", repeat=True, metavar="CAP",
                help_text="give root inside one more capability, e.g. NET_ADMIN (ALL for every one)")  # fmt: skip
    verb.option("--cap-drop", repeat=True, metavar="CAP",
                help_text="take a capability away from the default set (ALL for every one)")  # fmt: skip
    _stop_options(verb)
    verb.option("--init", flag=True,
                help_text="run a small init as pid 1 (tini): it reaps orphans and passes signals on")  # fmt: skip
    verb.option("--ulimit", repeat=True, metavar="NAME=SOFT[:HARD]",
                help_text="a resource limit, e.g. nofile=65536 (default: the host's pid 1's)")  # fmt: skip
    verb.option("--security-opt", repeat=True, metavar="OPT",
                help_text="seccomp=unconfined: without baleine's seccomp filter (see README)")  # fmt: skip
    _limit_options(verb)
    _log_size_option(verb)
    verb.positional("image", help_text="image name, or the reference it was pulled from (nginx:1.27)")
    verb.positional("command", nargs="...", metavar="COMMAND", help_text="command and arguments (default: the image's)")


def _container_verbs(verbs):
    from . import handlers as h

    _container_options(_leaf(verbs, "create", h.container_create, "create a container (not started)"))
    run = _leaf(verbs, "run", h.container_run, "create and start a container; attached unless -d")
    run.option("--detach", "-d", flag=True, help_text="run in the background, output to its log")
    run.option("--rm", flag=True, help_text="remove the container when it exits")
    run.option("--tty", "-t", flag=True, help_text="attached, on a terminal of its own, e.g. run --rm -it bb sh")
    _interactive_option(run)
    run.exclude("detach", "rm")
    _container_options(run)
    start = _leaf(verbs, "start", h.container_start, "start created or stopped containers")
    _leaf(verbs, "inspect", h.container_inspect, "show everything known about a container").positional(
        "name", help_text="container name or id"
    )
    stop = _leaf(verbs, "stop", h.container_stop, "stop containers: their stop signal (SIGTERM), SIGKILL after --time")
    kill = _leaf(verbs, "kill", h.container_kill, "send a signal to running containers (default SIGKILL)")
    kill.option("--signal", "-s", metavar="SIG", default="SIGKILL",
                help_text="e.g. SIGHUP to make nginx reload; SIGKILL or its stop signal ends it for good")  # fmt: skip
    rename = _leaf(verbs, "rename", h.container_rename, "give a container another name (id, disk, addresses stay)")
    rename.positional("name", help_text="container name or id")
    rename.positional("new_name", metavar="NEW_NAME", help_text="its new name")
    pause = _leaf(verbs, "pause", h.container_pause, "freeze running containers: memory kept, no CPU used")
    unpause = _leaf(verbs, "unpause", h.container_unpause, "let paused containers run again")
    restart = _leaf(verbs, "restart", h.container_restart, "stop containers if they run, then start them again")
    rm = _leaf(verbs, "rm", h.container_rm, "delete containers, their disk copies and configuration")
    wait = _leaf(verbs, "wait", h.container_wait, "wait until containers exit; print their exit codes")
    _leaf(verbs, "prune", h.container_prune, "delete every container that is not running (created or exited)")
    for verb in (start, stop, kill, pause, unpause, restart, rm, wait):
        _names(verb, "container names or ids")
    for verb in (stop, restart):
        verb.option("--time", "-t", metavar="S",
                    help_text="seconds from the stop signal to SIGKILL (default: its --stop-timeout, 10)")  # fmt: skip
    rm.option("--force", "-f", flag=True, help_text="stop it first if it runs")
    cp = _leaf(verbs, "cp", h.container_cp, "copy files between the host and a container (running or not)")
    cp.positional("source", metavar="SRC", help_text="a host path, or CONTAINER:/PATH")
    cp.positional("destination", metavar="DEST", help_text="CONTAINER:/PATH, or a host path (the other side)")
    logs = _leaf(verbs, "logs", h.container_logs, "print a container's output")
    logs.positional("name", help_text="container name or id")
    logs.option("--follow", "-f", flag=True, help_text="keep printing until the container stops")
    logs.option("--tail", metavar="N", help_text="only the last N lines")
    listing = _leaf(verbs, "list", h.container_list, "list running containers (--all: every container)")
    verbs.alias("ls", "list")
    verbs.alias("ps", "list")
    listing.option("--all", "-a", flag=True, help_text="include created and exited containers")
    listing.option("--quiet", "-q", flag=True, help_text="only their names, one per line")
    listing.option("--size", "-s", flag=True, help_text="also the disk space each takes: its disk copy, its logs")
    listing.option("--filter", "-f", repeat=True, metavar="KEY=VALUE",
                   help_text="status=created|running|paused|exited, name=GLOB, image=, network=, "
                             "health=starting|healthy|unhealthy|none, label=KEY[=VALUE] "
                             "(repeat: one key ORs, keys AND)")  # fmt: skip
    add = _leaf(verbs, "add", h.container_add, "attach a container to one more network (live if running)")
    add.positional("name", help_text="container name or id")
    add.option("--network", required=True, metavar="NET[:IP]", help_text="network, optionally with an address")
    commit = _leaf(verbs, "commit", h.container_commit, "make an image of a container's disk (frozen if running)")
    commit.positional("name", help_text="container name or id")
    commit.positional("image", help_text="name of the new image")
    _leaf(verbs, "diff", h.container_diff,
          "what it changed in its image's files: A added, C changed, D deleted").positional(
        "name", help_text="container name or id"
    )  # fmt: skip
    exported = _leaf(verbs, "export", h.container_export,
                     "write a container's files as a tar (its disk, not its volumes; frozen if running)")  # fmt: skip
    exported.positional("name", help_text="container name or id")
    exported.positional("file", metavar="FILE|-", help_text="where to write it; - for stdout")
    update = _leaf(verbs, "update", h.container_update,
                   "change a container's limits (live if it runs), log size, restart or stop settings")  # fmt: skip
    update.positional("name", help_text="container name or id")
    _limit_options(update)
    _log_size_option(update)
    _restart_option(update)
    _stop_options(update)
    stats = _leaf(verbs, "stats", h.container_stats, "CPU, memory, block io and pids of running containers")
    stats.positional("names", nargs="*", metavar="NAME", help_text="containers (default: every running one)")
    checked = _leaf(verbs, "healthcheck", h.container_healthcheck,
                    "run a container's health probe now: exit 0 healthy, 1 not (nothing recorded)")  # fmt: skip
    checked.positional("name", help_text="container name or id")
    top = _leaf(verbs, "top", h.container_top, "the processes of a running container, with their host pids")
    top.positional("name", help_text="container name or id")
    exec_ = _leaf(verbs, "exec", h.container_exec, "run a command inside a running container")
    exec_.option("--tty", "-t", flag=True,
                 help_text="on a terminal of its own: job control, ^C, full-screen programs")  # fmt: skip
    _interactive_option(exec_)
    exec_.option("--detach", "-d", flag=True,
                 help_text="leave it running in the background, its output in the container's log")  # fmt: skip
    exec_.option("--user", "-u", metavar="U[:G]", help_text="run as this user (and group) instead of the container's")
    exec_.option("--env", "-e", repeat=True, metavar="K=V", help_text="one more environment variable (repeat)")
    _env_file_option(exec_)
    exec_.option("--workdir", "-w", metavar="DIR", help_text="working directory instead of the container's")
    exec_.positional("name", help_text="container name or id")
    exec_.positional("command", nargs="...", metavar="COMMAND", help_text="command and arguments", required=True)


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
        args = build_parser(kind).parse(argv)
        json_mode = args.json
        reply = args.handler(args)
    except BaseException as error:  # noqa: BLE001 - the one place errors become exit codes
        return _fail(error, json_mode)
    _emit_ok(reply, json_mode)
    return reply.status


def exit_now(status):
    """Flush our output and end the process, skipping the interpreter's teardown.

    Freeing every module and object costs about 3 ms of each command and does
    nothing a command needs: files are closed where they are written, and no
    atexit hook is registered.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader left (`| head`): what it did not read is not an error
            pass
    os._exit(status or 0)


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
    import errno

    if isinstance(error, PermissionError):
        what = error.filename or error.strerror or error
        return BaleineError(f"permission denied: {what}" + (" (baleine needs root)" if os.geteuid() else ""))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _no_space(error)
    if isinstance(error, OSError):
        return BaleineError(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
    return BaleineError(f"internal error: {type(error).__name__}: {error} (set BALEINE_DEBUG=1 for a traceback)")


def _no_space(error):
    import errno

    from . import state
    from .errors import NoSpace

    where = error.filename or state.root()
    what = "the disk quota is spent" if error.errno == errno.EDQUOT else "the filesystem is full"
    return NoSpace(f"{what} at {where}: remove what is unused (stopped containers, images), or give it more room")


def _jsonable(details):
    return {key: value for key, value in details.items() if key != "stderr"}


def _emit_ok(reply, json_mode):
    if reply.streamed:
        return
    if json_mode:
        _print_json({"ok": True, "data": reply.data})
    else:
        text = reply.text() if callable(reply.text) else reply.text
        if text:
            sys.stdout.write(text.rstrip("\n") + "\n")


def _print_json(payload):
    payload["version"] = VERSION
    sys.stdout.write(jsonlite.dumps(payload) + "\n")
    sys.stdout.flush()
