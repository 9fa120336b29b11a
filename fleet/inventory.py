"""The inventory: hosts/*.toml, and what `--hosts` selects from it.

Every *.toml under the inventory directory is read (hosts/ by default,
$BALEINE_INVENTORY to use another directory or one file), except
example.toml, which documents the keys. Files are merged; a host or group
defined twice is an error naming both files.

    [defaults]          keys every host inherits unless it sets them
    [hosts.NAME]        address, user, port, identity, sudo, python, labels...
    [groups]            NAME = ["host", "other-group", "web*"]

`--hosts` is a comma-separated list of host names, group names, globs over
host names (node*) and `all`. A name the inventory does not know is looked up
in ~/.ssh/config the way ssh would (a Host pattern other than `*` must match
it); failing that it is an error listing the known names.
"""

import fnmatch
import os
from dataclasses import dataclass, field

from .errors import FleetError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DEFAULT_DIR = "hosts"
SKIPPED = ("example.toml",)
ROOT_HELPER_DIR = "/var/lib/baleine/helper"
USER_HELPER_DIR = ".cache/baleine"  # relative to the login directory

HOST_KEYS = {
    "address": str,
    "user": str,
    "port": int,
    "identity": str,
    "sudo": bool,
    "python": str,
    "helper_dir": str,
    "known_hosts": str,
    "connect_timeout": (int, float),
    "labels": dict,
}
TOP_KEYS = ("defaults", "hosts", "groups", "ssh_config")
KIND_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", dict: "a table",
              list: "a list"}  # fmt: skip
ONE_WORD_KEYS = ("address", "user", "python")  # a host name, a login, a program: no space can belong in one


class InventoryError(FleetError):
    """A bad inventory file or selection: the message names the file, key or name."""

    kind = "inventory"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str = "root"
    port: int = 22
    identity: str = ""
    sudo: bool = False
    python: str = "python3"
    helper_dir: str = ""
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout: float = 10
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    from_ssh_config: bool = False

    @property
    def helper_directory(self):
        """Where the helper lives on the host: root's state directory, or the user's cache."""
        if self.helper_dir:
            return self.helper_dir
        return ROOT_HELPER_DIR if self.user == "root" else USER_HELPER_DIR


@dataclass
class Inventory:
    hosts: dict = field(default_factory=dict)  # name -> Host
    groups: dict = field(default_factory=dict)  # name -> [member patterns]
    ssh_config: str = "~/.ssh/config"
    sources: dict = field(default_factory=dict)  # "host NAME"/"group NAME" -> file

    def select(self, spec):
        """The Hosts `spec` names, in inventory order, each once."""
        words = [word.strip() for word in (spec or "").split(",") if word.strip()]
        if not words:
            raise InventoryError("no hosts selected: give --hosts NAME[,NAME...] (names, groups, globs, or all)")
        chosen = []
        for word in words:
            for host in self._expand(word, ()):
                if host not in chosen:
                    chosen.append(host)
        if not chosen:
            why = "" if self.hosts else (": the inventory has none yet (add hosts/NAME.toml, see "
                                         "hosts/example.toml, or run invoke lab.up)")  # fmt: skip
            raise InventoryError(f"--hosts {spec} selects no host{why}")
        return chosen

    def _expand(self, word, seen):
        if word == "all":
            return list(self.hosts.values())
        if word in self.hosts:
            return [self.hosts[word]]
        if word in self.groups:
            if word in seen:
                raise InventoryError(f"group {word!r} includes itself ({' -> '.join((*seen, word))})")
            found = []
            for member in self.groups[word]:
                found += self._expand(member, (*seen, word))
            return found
        if any(c in word for c in "*?["):
            found = [host for name, host in self.hosts.items() if fnmatch.fnmatchcase(name, word)]
            if not found:
                raise InventoryError(f"no host matches {word!r} (known: {self.known()})")
            return found
        host = self._from_ssh_config(word)
        if host is None:
            raise InventoryError(f"unknown host or group {word!r} (known: {self.known()})")
        return [host]

    def known(self):
        names = [*self.hosts, *(f"{group} (group)" for group in self.groups)]
        return ", ".join(names) or "none: add hosts to hosts/*.toml"

    def _from_ssh_config(self, name):
        """A Host for `name` when ~/.ssh/config has a Host block (not just `*`) matching it."""
        import paramiko

        path = os.path.expanduser(self.ssh_config)
        if not os.path.isfile(path):
            return None
        config = paramiko.SSHConfig.from_path(path)
        patterns = [p for p in config.get_hostnames() if p != "*" and not p.startswith("!")]
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return None
        entry = config.lookup(name)
        identity = (entry.get("identityfile") or [""])[0]
        return Host(
            name=name,
            address=entry.get("hostname", name),
            user=entry.get("user", "root"),
            port=_ssh_config_port(path, name, entry.get("port", "22")),
            identity=identity,
            known_hosts=(entry.get("userknownhostsfile") or "~/.ssh/known_hosts").split()[0],
            from_ssh_config=True,
        )


def _ssh_config_port(path, name, text):
    from .node.parse import ascii_number

    port = ascii_number(str(text), 65535)
    if not port:
        raise InventoryError(f"{path}: Port {text!r} for {name} is not a TCP port (1-65535)")
    return port


def inventory_path():
    return os.environ.get("BALEINE_INVENTORY") or DEFAULT_DIR


def load(path=None):
    """Read the inventory at path (a directory of *.toml or one file)."""
    path = path or inventory_path()
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, name) for name in os.listdir(path) if name.endswith(".toml") and name not in SKIPPED
        )
    elif os.path.isfile(path):
        files = [path]
    else:
        raise InventoryError(f"no inventory at {path!r}: create hosts/NAME.toml (see hosts/example.toml)")
    inventory = Inventory()
    for file in files:
        merge(inventory, read_toml(file), file)
    for group, members in inventory.groups.items():
        for member in members:
            known = member in inventory.hosts or member in inventory.groups or member == "all"
            if not known and not any(c in member for c in "*?["):
                where = inventory.sources[f"group {group}"]
                raise InventoryError(f"{where}: group {group!r} names unknown host or group {member!r}")
    return inventory


def read_toml(file):
    try:
        with open(file, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise InventoryError(f"{file}: not valid TOML: {error}") from None


def merge(inventory, data, file):
    """Add one parsed file's hosts and groups to inventory (pure: no I/O)."""
    for key in data:
        if key not in TOP_KEYS:
            raise InventoryError(f"{file}: unknown key {key!r} (use: {', '.join(TOP_KEYS)})")
    if "ssh_config" in data:
        inventory.ssh_config = _typed(file, "ssh_config", data["ssh_config"], str)
    defaults = _host_fields(file, "defaults", data.get("defaults", {}), allow_address=False)
    for name, table in _table(file, "hosts", data.get("hosts", {})).items():
        _check_name(file, "host", name)
        if f"host {name}" in inventory.sources:
            raise InventoryError(f"{file}: host {name!r} is already defined in {inventory.sources[f'host {name}']}")
        fields = {**defaults, **_host_fields(file, f"hosts.{name}", table)}
        fields.setdefault("address", name)
        inventory.hosts[name] = Host(name=name, **fields)
        inventory.sources[f"host {name}"] = file
    for name, members in _table(file, "groups", data.get("groups", {})).items():
        _check_name(file, "group", name)
        if name in inventory.hosts or f"group {name}" in inventory.sources:
            raise InventoryError(f"{file}: group {name!r} clashes with a host or group of the same name")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise InventoryError(f"{file}: groups.{name} must be a list of host or group names")
        inventory.groups[name] = members
        inventory.sources[f"group {name}"] = file
    return inventory


def _table(file, key, value):
    if not isinstance(value, dict):
        raise InventoryError(f"{file}: {key} must be a table")
    return value


def _host_fields(file, where, table, allow_address=True):
    fields = {}
    for key, value in _table(file, where, table).items():
        if key not in HOST_KEYS or (key == "address" and not allow_address):
            accepted = ", ".join(k for k in HOST_KEYS if allow_address or k != "address")
            raise InventoryError(f"{file}: unknown key {where}.{key} (accepted: {accepted})")
        fields[key] = _typed(file, f"{where}.{key}", value, HOST_KEYS[key])
    if "port" in fields and not 0 < fields["port"] < 65536:
        raise InventoryError(f"{file}: {where}.port {fields['port']} is not a TCP port (1-65535)")
    if "connect_timeout" in fields and not 0 < fields["connect_timeout"] <= 3600:  # TOML takes inf and nan too
        raise InventoryError(
            f"{file}: {where}.connect_timeout {fields['connect_timeout']} must be above 0 and at most 3600 seconds"
        )
    if "labels" in fields and not all(isinstance(v, (str, int, bool)) for v in fields["labels"].values()):
        raise InventoryError(f"{file}: {where}.labels values must be strings, numbers or booleans")
    for key in ("address", "user", "python", "identity", "known_hosts", "helper_dir"):
        if key in fields:
            _check_text(file, f"{where}.{key}", fields[key], one_word=key in ONE_WORD_KEYS)
    return fields


def _check_text(file, where, value, one_word):
    """An empty value, or a space in a name, would only fail later as a puzzling SSH or shell error."""
    if not value.strip():
        raise InventoryError(f"{file}: {where} is empty: give a value, or leave the key out for the default")
    if one_word and (value.startswith("-") or any(c.isspace() or not c.isprintable() for c in value)):
        raise InventoryError(f"{file}: {where} = {value!r} must be one word: no spaces, not starting with '-'")


def type_problem(value, kind):
    """What is wrong with a TOML value meant to be of kind (a type, or a tuple of them); None if nothing."""
    # TOML booleans are ints to isinstance; `port = true` must still be refused.
    if isinstance(value, bool) == (kind is bool) and isinstance(value, kind):
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:  # a number, whole or not: "a whole number or a number" says it twice
        kinds = tuple(k for k in kinds if k is not int)
    return f"{value!r} must be {' or '.join(KIND_WORDS[k] for k in kinds)}"


def _typed(file, where, value, kind):
    problem = type_problem(value, kind)
    if problem:
        raise InventoryError(f"{file}: {where} = {problem}")
    return value


def _check_name(file, kind, name):
    if name == "all" or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise InventoryError(f"{file}: bad {kind} name {name!r}: use letters, digits, '-', '_', '.' (not 'all')")
