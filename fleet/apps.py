"""App specs (apps/*.toml): what `invoke deploy` makes true on each host.

    [network]                 the network the apps share, spanning the hosts
    name = "farm"             (VXLAN between the hosts' bridges; each host gets
    subnet = "10.42.0.0/24"    its own slice of the subnet and its own gateway)
    vxlan = 42                optional (default: derived from the name)

    [apps.web]                one table per app
    image = "page"            image name on the hosts
    build = "busybox"         how to make it here when missing: busybox,
                              debootstrap:SUITE[,...], a directory, a root tarball,
                              import:ARCHIVE (docker/OCI archive), pull:REF (from a
                              registry, pulled here: the hosts need no access to it)
                              or file:PATH (an ext4 image file, pushed as it is)
    size = "32M"              image size (default 64M; import:, pull: from its files)
    command = ["httpd", "-f"] default: the image's
    replicas = 3              per host
    hosts = ["node1"]         only these of the deployed hosts (default: all); names,
                              groups or globs of the inventory, as --hosts takes them
    env = { K = "V" }
    secrets = ["DB_PASSWORD"] environment variables taken from this machine's environment
                              when deploying (never written in the file): they reach each
                              container on the helper's stdin, in no command line; a new
                              value is a new version
    memory = "64M"            limits: memory, cpus, pids
    restart = "always"        no | on-failure[:N] | always | unless-stopped
    log_size = "20M"          each container's log is rotated past this (default 10M, "0": never)
    stop_signal = "SIGQUIT"   what stopping it sends first (default: the image's, else SIGTERM)
    stop_timeout = 30         seconds from that signal to SIGKILL (default 10)
    init = true               a small init (tini) as pid 1: reaps orphans, passes signals on
    volumes = ["data:/var/lib/app"]  named volumes ([:ro]); every replica and version on a
                              host shares them, so what they hold outlives a deploy
    sysctls = { "net.core.somaxconn" = "4096" }  the containers' own kernel settings (net.*, IPC)
    add_hosts = ["db:192.0.2.7"]  lines in each container's /etc/hosts (NAME:host-gateway: the host)
    network = "host"          share the host's network instead of [network]
    port = 80                 the port the proxy sends to
    keep = 2                  earlier versions kept, stopped, for `invoke rollback`
    [apps.web.health]         cmd = "...", http = "/path" or https = "/path" (+ port), or
                              tcp = PORT: http(s) and tcp are made by baleine itself, in the
                              container's network (the image needs no wget); http passes on
                              200-399 (https: over TLS, certificate unchecked), tcp on a connection
    interval = 2              seconds, also used by the cron check; retries; timeout
    start_period = 60         seconds after a start when the cron check counts no failure
    [apps.proxy.proxy]        this app is the reverse proxy (nginx) in front of another
    fronts = "web"
    listen = 80

The whole file is checked before any host is touched; every error names the
file and the key.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field

from .errors import FleetError
from .inventory import InventoryError, read_toml, type_problem

APP_KEYS = {
    "image": str, "build": str, "size": str, "command": list, "replicas": int, "hosts": list, "env": dict,
    "memory": str, "cpus": (int, float, str), "pids": int, "restart": str, "network": str, "port": int,
    "health": dict, "proxy": dict, "keep": int, "log_size": str,
    "stop_signal": str, "stop_timeout": (int, float), "init": bool, "volumes": list, "sysctls": dict,
    "add_hosts": list, "secrets": list,
}  # fmt: skip
HEALTH_KEYS = {"cmd": str, "http": str, "https": str, "port": int, "tcp": int, "interval": (int, float), "retries": int,
               "timeout": (int, float), "wait": (int, float), "start_period": (int, float)}  # fmt: skip
NETWORK_KEYS = {"name": str, "subnet": str, "vxlan": int, "slices": int}
PROXY_KEYS = {"fronts": str, "listen": int}
NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESTART = re.compile(r"no|always|unless-stopped|on-failure(:[1-9][0-9]*)?")


class SpecError(FleetError):
    pass


@dataclass
class App:
    name: str
    image: str
    build: str = ""
    size: str = ""
    command: list = field(default_factory=list)
    replicas: int = 1
    hosts: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    memory: str = ""
    cpus: str = ""
    pids: int = 0
    restart: str = "always"
    network: str = ""  # "" = the spec's network, "host" = the host's
    port: int = 80
    health: dict = field(default_factory=dict)
    proxy: dict = field(default_factory=dict)
    keep: int = 2  # earlier versions kept (stopped) on each host for `invoke rollback`
    log_size: str = ""  # "" = the node's default
    stop_signal: str = ""  # "" = the image's, else SIGTERM
    stop_timeout: float = 0  # 0 = the node's default (10 s)
    init: bool = False
    volumes: list = field(default_factory=list)  # "NAME:/path[:ro]": named volumes, made on each host's first use
    sysctls: dict = field(default_factory=dict)  # KEY = VALUE, as --sysctl takes them
    add_hosts: list = field(default_factory=list)  # "NAME:IP", as --add-host takes them
    secrets: list = field(default_factory=list)  # names of variables from this machine's environment
    secret_values: dict = field(default_factory=dict, repr=False)  # read at load time; never printed

    def secret_input(self):
        """The secrets as --env-file lines for the helper's stdin (bytes), or None when there are none."""
        if not self.secrets:
            return None
        return "".join(f"{name}={self.secret_values[name]}\n" for name in self.secrets).encode()

    def probe_options(self):
        """The `container run` options of the health probe: a command inside, or an HTTP GET baleine makes
        in the container's network (the image needs no wget); [] without a health check."""
        if self.health.get("cmd"):
            return ["--health-cmd", self.health["cmd"]]
        for kind in ("http", "https"):
            if self.health.get(kind):
                return [f"--health-{kind}", self.health[kind], "--health-port", str(self.health.get("port", self.port))]
        if self.health.get("tcp"):
            return ["--health-tcp", str(self.health["tcp"])]
        return []

    def version(self, image_digest, extra=()):
        """A short hash of everything that makes a container of this app what it is."""
        fields = {key: getattr(self, key) for key in ("command", "env", "memory", "cpus", "pids", "restart",
                                                      "network", "port", "health", "proxy")}  # fmt: skip
        # Only when given: a spec without them keeps the version it had.
        for key in ("log_size", "stop_signal", "stop_timeout", "init", "volumes", "sysctls", "add_hosts"):
            if getattr(self, key):
                fields[key] = getattr(self, key)
        if self.secrets:  # their values, hashed with the rest: a changed secret is a new version
            fields["secrets"] = sorted(self.secret_values.items())
        text = json.dumps([fields, image_digest, *extra], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:7]


@dataclass
class Spec:
    file: str
    apps: dict  # name -> App, backends before proxies
    network: dict = field(default_factory=dict)

    def ordered(self):
        return sorted(self.apps.values(), key=lambda app: bool(app.proxy))


def load(path):
    try:
        data = read_toml(path)
    except OSError as error:
        raise SpecError(f"cannot read app spec {path}: {error.strerror}") from None
    except FleetError:
        raise
    except Exception as error:  # noqa: BLE001 - the inventory's TOML error type, re-worded
        raise SpecError(str(error)) from None
    return parse(data, path)


def parse(data, file):
    """Check a whole spec (a parsed TOML table); returns a Spec or raises SpecError naming file and key."""

    def fail(key, message):
        raise SpecError(f"{file}: {key}: {message}")

    for key in data:
        if key not in ("network", "apps"):
            fail(key, "unknown key (use [network] and [apps.NAME])")
    network = _table(data.get("network", {}), NETWORK_KEYS, "network", fail)
    if network:
        for key in ("name", "subnet"):
            if key not in network:
                fail(f"network.{key}", "missing")
        _node_check("name", network["name"], "network.name", fail, "network name")
        _subnet(network, fail)
    apps = {}
    tables = data.get("apps")
    if not isinstance(tables, dict) or not tables:
        fail("apps", "no app: add an [apps.NAME] table")
    for name, table in tables.items():
        apps[name] = _app(name, table, network, fail)
    for app in apps.values():
        if app.proxy:
            fronted = app.proxy.get("fronts")
            if fronted not in apps or apps[fronted].proxy:
                fail(f"apps.{app.name}.proxy.fronts", f"{fronted!r} is not an app of this file that is not a proxy")
            if "listen" not in app.proxy:
                fail(f"apps.{app.name}.proxy.listen", "missing: the port the proxy listens on")
    return Spec(file=file, apps=apps, network=network)


def resolve_hosts(spec, inventory):
    """Each app's `hosts` as host names: names, groups and globs read by the inventory, as --hosts is.

    A name the inventory does not know is an error here: it would otherwise
    match no host of the deploy, and the app would silently run nowhere.
    """
    for app in spec.apps.values():
        if app.hosts:
            try:
                app.hosts = [host.name for host in inventory.select(",".join(app.hosts))]
            except InventoryError as error:
                raise SpecError(f"{spec.file}: apps.{app.name}.hosts: {error}") from None


def _app(name, table, network, fail):
    from .node.images import MIN_SIZE

    where = f"apps.{name}"
    if not NAME.fullmatch(name):
        fail(where, "app names are lower-case letters, digits and '-', starting with a letter, 20 at most")
    fields = _table(table, APP_KEYS, where, fail)
    if "image" not in fields:
        fail(f"{where}.image", "missing: the image's name on the hosts")
    if not isinstance(fields.get("replicas", 1), int) or not 1 <= fields.get("replicas", 1) <= 50:
        fail(f"{where}.replicas", "use 1 to 50 (containers per host)")
    if not all(isinstance(word, str) for word in fields.get("command", [])):
        fail(f"{where}.command", "a list of strings (argv)")
    if not all(isinstance(value, str) for value in fields.get("env", {}).values()):
        fail(f"{where}.env", "values are strings")
    for key, value in fields.get("env", {}).items():
        _node_check("env", f"{key}={value}", f"{where}.env.{key}", fail)
    if not all(isinstance(host, str) and host.strip() for host in fields.get("hosts", [])):
        fail(f"{where}.hosts", "a list of host names, groups or globs of the inventory, as --hosts takes them")
    if fields.get("size"):
        _node_check("size", fields["size"], f"{where}.size", fail, "image size", MIN_SIZE)
    _limits(fields, where, fail)
    if "restart" in fields and not RESTART.fullmatch(fields["restart"]):
        fail(f"{where}.restart", f"{fields['restart']!r}: use no, on-failure[:N], always or unless-stopped")
    if "log_size" in fields:
        _log_size(fields["log_size"], f"{where}.log_size", fail)
    if "stop_signal" in fields:
        fields["stop_signal"] = _stop_signal(fields["stop_signal"], f"{where}.stop_signal", fail)
    for index, value in enumerate(fields.get("volumes", [])):
        _named_volume(value, f"{where}.volumes[{index}]", fail)
    host_network = fields.get("network") == "host" or "proxy" in fields  # a proxy runs on the host's (deploy)
    for key, value in fields.get("sysctls", {}).items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            fail(f"{where}.sysctls.{key}", f"{value!r} must be a string or an integer")
        _node_check("sysctl", f"{key}={value}", f"{where}.sysctls.{key}", fail, host_network)
    for index, value in enumerate(fields.get("add_hosts", [])):
        _node_check("extra_host", value, f"{where}.add_hosts[{index}]", fail)
        if host_network and str(value).endswith(":host-gateway"):
            fail(f"{where}.add_hosts[{index}]", "host-gateway needs the app on [network], not on the host's network")
    if fields.get("build", "").startswith("pull:"):
        _reference(fields["build"][len("pull:") :], f"{where}.build", fail)
    if "stop_timeout" in fields and not fields["stop_timeout"] > 0:
        fail(f"{where}.stop_timeout", f"{fields['stop_timeout']!r}: a number of seconds above 0 (default 10)")
    _seconds(fields, ("stop_timeout",), where, fail)
    if fields.get("network", "host") != "host":
        fail(f"{where}.network", "only 'host' may be given here; other apps join [network]")
    if not fields.get("network") and not network:
        fail(f"{where}.network", "the app needs the file's [network] table (or network = 'host')")
    health = _table(fields.get("health", {}), HEALTH_KEYS, f"{where}.health", fail)
    if health and sum(bool(health.get(kind)) for kind in ("cmd", "http", "https", "tcp")) != 1:
        fail(f"{where}.health", "give exactly one of cmd, http, https or tcp")
    _port(health.get("tcp"), f"{where}.health.tcp", fail)
    _port(health.get("port"), f"{where}.health.port", fail)
    if not health.get("timeout", 1) > 0:
        fail(f"{where}.health.timeout", f"{health['timeout']!r}: seconds a probe may take, above 0")
    if not 1 <= health.get("retries", 1) <= 1000:
        fail(f"{where}.health.retries", f"{health['retries']!r}: failed probes in a row before unhealthy, 1 to 1000")
    _seconds(health, ("interval", "timeout", "wait", "start_period"), f"{where}.health", fail)
    for kind in ("http", "https"):
        if health.get(kind) and not health[kind].startswith("/"):
            fail(f"{where}.health.{kind}", "a path starting with /")
    proxy = _table(fields.get("proxy", {}), PROXY_KEYS, f"{where}.proxy", fail)
    _port(fields.get("port"), f"{where}.port", fail)
    if not 0 <= fields.get("keep", 2) <= 10:
        fail(f"{where}.keep", "0 to 10 earlier versions")
    _port(proxy.get("listen"), f"{where}.proxy.listen", fail)
    fields["health"], fields["proxy"] = health, proxy
    if "cpus" in fields:
        fields["cpus"] = str(fields["cpus"])
    fields["secret_values"] = _secrets(fields.get("secrets", []), fields.get("env", {}), f"{where}.secrets", fail)
    return App(name=name, **fields)


def _limits(fields, where, fail):
    """memory, cpus and pids as `container run` reads them; whether a host has that many CPUs is for it to say."""
    from .node import limits

    for key, option in (("memory", "memory"), ("cpus", "cpus"), ("pids", "pids_limit")):
        if key in fields:
            _by_node(f"{where}.{key}", fail, limits.from_options, **{option: str(fields[key])},
                     host_cpus=limits.CPU_LIMIT)  # fmt: skip


def _seconds(table, keys, where, fail):
    """Durations as the node reads them (0 to a year): TOML's inf or 1e20 would overflow a deadline."""
    for key in keys:
        if key in table:
            _node_check("seconds", str(table[key]), f"{where}.{key}", fail, key)


def _port(value, where, fail):
    """Fail unless value (given: None is not) is a TCP port."""
    if value is not None and not 0 < value < 65536:
        fail(where, "a TCP port, 1 to 65535")


def _secrets(names, env, where, fail):
    """{name: value} of each secret, from this machine's environment; fail on a bad, doubled or unset name."""
    import os

    values = {}
    for index, name in enumerate(names):
        at = f"{where}[{index}]"
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            fail(at, f"{name!r}: an environment variable's name (letters, digits, '_')")
        if name in env or name in values:
            fail(at, f"{name} is given twice (in env, or twice here)")
        if name not in os.environ:
            fail(at, f"{name} is not set in this machine's environment: export it before deploying")
        if "\n" in os.environ[name] or "\0" in os.environ[name]:
            fail(at, f"{name} holds a line break or a NUL byte: a secret is one line")
        values[name] = os.environ[name]
    return values


def _stop_signal(value, where, fail):
    """The signal's name as the node keeps it (SIGQUIT for "quit"), or fail."""
    from .node import parse

    return _by_node(where, fail, parse.signal_name, value, "stop_signal")


def _by_node(where, fail, check, *args, **kwargs):
    """check(*args, **kwargs), a function of fleet.node: what it refuses fails this key, with its message."""
    from .node.errors import BaleineError

    try:
        return check(*args, **kwargs)
    except BaleineError as error:
        fail(where, error.message)


def _node_check(kind, value, where, fail, *more):
    """value as the node's parse.KIND reads it, or fail with its message."""
    from .node import parse

    if not isinstance(value, str) or "\n" in value:
        fail(where, f"{value!r} must be a string")
    return _by_node(where, fail, getattr(parse, kind), value, *more)


def _reference(value, where, fail):
    """An image reference as `baleine image pull` takes it."""
    from .node.registry import Reference

    _by_node(where, fail, Reference, value)


def _named_volume(value, where, fail):
    """A named volume as --volume takes it; a host path is refused: it would differ from host to host."""
    from .node import parse

    if not isinstance(value, str) or "/" in value.split(":", 1)[0]:
        fail(where, f"{value!r}: use a named volume, NAME:/path[:ro] (a host path differs from host to host)")
    _by_node(where, fail, parse.volume, value)


def _log_size(value, where, fail):
    from .node import logs

    _by_node(where, fail, logs.parse_limit, value, "log_size")


def _table(value, keys, where, fail):
    if not isinstance(value, dict):
        fail(where, "must be a table")
    for key, item in value.items():
        if key not in keys:
            fail(f"{where}.{key}", f"unknown key (accepted: {', '.join(keys)})")
        problem = type_problem(item, keys[key])
        if problem:
            fail(f"{where}.{key}", problem)
    return dict(value)


def _subnet(network, fail):
    from .node.networks import MAX_VXLAN

    subnet = _node_check("subnet", network["subnet"], "network.subnet", fail)
    if subnet.version != 4 or subnet.prefixlen > 26:
        fail("network.subnet", "an IPv4 subnet of /26 or larger (it is split among the hosts)")
    slices = network.get("slices", 8)
    if slices not in (2, 4, 8, 16, 32) or subnet.prefixlen + slices.bit_length() - 1 > 29:
        fail("network.slices", "2, 4, 8, 16 or 32, leaving each host at least a /29")
    network.setdefault("vxlan", int(hashlib.sha256(network["name"].encode()).hexdigest()[:6], 16) or 1)
    if not 1 <= network["vxlan"] <= MAX_VXLAN:
        fail("network.vxlan", f"{network['vxlan']}: a VXLAN id is 1 to {MAX_VXLAN}")
    network["slices"] = slices
