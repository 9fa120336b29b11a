"""Turn user input into values, refusing anything unclear with a one-line reason."""

from .errors import Invalid

NAME_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 63 characters"
ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_NAME_CHARACTERS = ASCII_ALNUM | frozenset("_.-")
# Patterns, not compiled ones, for the options that need one: re is imported
# (about 6 ms with the enum it loads) and each pattern compiled on first use.
# Names and sizes, which nearly every command checks, are read without re.
_ENV_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_LABEL_KEY = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}"
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_USER_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_TOO_MANY_BYTES = 1 << 63  # a file or a limit in bytes is a signed 64-bit number to the kernel
_MOST = _TOO_MANY_BYTES - 1  # and so is any other count or limit it keeps
YEAR = 366 * 24 * 3600  # seconds: the longest wait anyone means
_ENV_FILE_MOST = 1 << 20  # bytes: a program's arguments and environment together get 2 MiB at most


def name(value, kind="name"):
    """A resource name, the same rule for images, networks and containers."""
    if not _is_name(value):
        raise Invalid(f"invalid {kind} {value!r}: use {NAME_RULE}")
    return value


def _is_name(value):
    return (
        isinstance(value, str)
        and 0 < len(value) <= 63
        and value[0] in ASCII_ALNUM
        and _NAME_CHARACTERS.issuperset(value)
    )


def size(value, what="size", minimum=1):
    """Bytes from '64M', '1.5G', '512Mi', '4096'; K/M/G/T are powers of 1024."""
    parts = _size_parts(str(value).strip())
    if parts is None:
        raise Invalid(f"invalid {what} {value!r}: use a number with an optional K, M, G or T suffix, e.g. 64M")
    number, unit = parts
    scaled = float(number) * _UNITS[unit]
    if scaled >= _TOO_MANY_BYTES:  # inf too, from a number of hundreds of digits
        raise Invalid(f"invalid {what} {value!r}: must be less than {human_size(_TOO_MANY_BYTES)}")
    result = int(scaled)
    if result < minimum:
        raise Invalid(f"invalid {what} {value!r}: must be at least {human_size(minimum)}")
    return result


def _size_parts(text):
    """'1.5 GiB' -> ('1.5', 'G'): NUMBER[.DIGITS], spaces, then K/M/G/T, i and B, each optional, any case."""
    if text[-1:] in ("B", "b"):
        text = text[:-1]
    if text[-1:] in ("I", "i"):
        text = text[:-1]
    unit = text[-1:].upper()
    if unit in ("K", "M", "G", "T"):
        text = text[:-1]
    else:
        unit = ""
    number = text.rstrip(" \t")
    whole, dot, fraction = number.partition(".")
    if not ascii_digits(whole) or (dot and not ascii_digits(fraction)):
        return None
    return number, unit


def ascii_digits(text):
    """Whether text is one or more of 0-9 (str.isdigit alone takes other scripts' digits too)."""
    return text.isascii() and text.isdigit()


def ascii_number(text, most):
    """The number text spells in ASCII digits if it is at most `most`, else None.

    The length is looked at first: int() refuses a string of thousands of digits.
    """
    significant = text.lstrip("0") if ascii_digits(text) else None
    if significant is None or len(significant) > len(str(most)):
        return None
    number = int(significant or "0")
    return number if number <= most else None


def matches(pattern, text):
    """Whether all of text matches pattern (a regular expression)."""
    import re

    return re.fullmatch(pattern, text) is not None


def human_size(count):
    """Bytes as a short figure people read: 64M, 1.5G, 512K, 100B."""
    for unit in ("T", "G", "M", "K"):
        scale = _UNITS[unit]
        if count >= scale:
            figure = count / scale
            return f"{figure:.1f}{unit}".replace(".0" + unit, unit)
    return f"{count}B"


def seconds(value, what="time"):
    """A number of seconds from 0 to a year: sleeps and deadlines overflow long before inf."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        result = -1.0
    if not 0 <= result <= YEAR:
        raise Invalid(f"invalid {what} {value!r}: use a number of seconds from 0 to {YEAR} (a year)")
    return result


def network_ref(value):
    """'NET' or 'NET:IP' (an IPv6 address may follow the first colon) -> (net, ip or None)."""
    net_name, sep, address = value.partition(":")
    name(net_name, "network name")
    if sep and not address:
        raise Invalid(f"invalid network {value!r}: use NET or NET:IP")
    return net_name, (ip_address(address) if address else None)


def ip_address(value):
    """An IPv4 or IPv6 address, as its canonical text."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f"invalid IP address {value!r}: use a dotted IPv4 or an IPv6 address") from None


def subnet(value):
    """A CIDR network such as 10.88.0.0/24 (host bits must be zero).

    Each part is checked on its own, so that the error says which is wrong:
    ipaddress says only that the whole "does not appear to be" a network.
    """
    import ipaddress

    address, slash, prefix = value.partition("/")
    try:
        first = ipaddress.ip_address(address)
    except ValueError:
        raise Invalid(
            f"invalid subnet {value!r}: {address!r} is not an IPv4 or IPv6 address; use a CIDR such as 10.88.0.0/24"
        ) from None
    if not slash:
        raise Invalid(f"invalid subnet {value!r}: give the prefix length, e.g. {value}/24")
    if ascii_number(prefix, first.max_prefixlen) is None:
        raise Invalid(f"invalid subnet {value!r}: the prefix length is a whole number from 0 to {first.max_prefixlen}")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError as error:  # both parts are right, yet it is refused (an IPv6 scope, say)
        raise Invalid(f"invalid subnet {value!r}: {error}") from None
    if net.network_address != first:
        raise Invalid(f"invalid subnet {value!r}: host bits are set: the network is {net}")
    if net.num_addresses < 4:
        raise Invalid(f"invalid subnet {value!r}: too small, it needs room for a gateway and a container")
    return net


def env(value):
    """'KEY=VALUE' -> (key, value)."""
    key, sep, val = value.partition("=")
    if not sep or not matches(_ENV_KEY, key):
        raise Invalid(f"invalid environment variable {value!r}: use KEY=VALUE, KEY made of letters, digits and '_'")
    return key, val


def label(value):
    """'KEY=VALUE' (or 'KEY', for an empty value) -> (key, value), as Docker's --label takes them."""
    key, _, val = value.partition("=")
    if not matches(_LABEL_KEY, key) or "\n" in val or "\0" in val or len(val) > 1024:
        raise Invalid(
            f"invalid label {value!r}: use KEY=VALUE, KEY made of letters, digits and . _ - / (at most 128), "
            "VALUE one line of at most 1024 characters"
        )
    return key, val


def env_file(path):
    """--env-file: its KEY=VALUE lines as env items (# comments and blank lines skipped).

    As with Docker, a line with a KEY alone takes the value from this
    command's environment (left out when unset), and nothing is unquoted.
    path - is standard input, read to its end: values that should appear in
    no command line (deploy's secrets come so over SSH).
    """
    import os

    try:
        if path == "-":
            import sys

            data = sys.stdin.buffer.read(_ENV_FILE_MOST + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(_ENV_FILE_MOST + 1)
        lines = data.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise Invalid(f"cannot read --env-file {path!r}: {getattr(error, 'strerror', None) or error}") from None
    if len(data) > _ENV_FILE_MOST:  # /dev/zero, or a file that is not one: read no further
        raise Invalid(f"cannot read --env-file {path!r}: it holds more than {human_size(_ENV_FILE_MOST)}, "
                      f"more than the kernel passes to a program")  # fmt: skip
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "=" not in line and matches(_ENV_KEY, line.strip()):
            if line.strip() in os.environ:
                items.append(f"{line.strip()}={os.environ[line.strip()]}")
            continue
        try:
            env(line)
        except Invalid as error:
            raise Invalid(f"{path}:{number}: {error.message}") from None
        items.append(line)
    return items


def volume(value):
    """'SRC:DST[:OPTIONS]' -> dict; OPTIONS: ro or rw, and nocopy, comma-separated.

    SRC is an absolute host path that exists, or a named volume's name (then
    'volume' is set, 'source' is left for the caller, and 'fill' says whether
    an empty volume gets the image's files at DST: unless nocopy).
    """
    import os

    parts = value.split(":")
    options = parts.pop().split(",") if len(parts) == 3 else []
    unknown = [option for option in options if option not in ("ro", "rw", "nocopy")]
    if len(parts) != 2 or unknown or len(options) != len(set(options)) or {"ro", "rw"} <= set(options):
        raise Invalid(
            f"invalid volume {value!r}: use SRC:DST[:OPTIONS], SRC a host path or a volume name, "
            "OPTIONS ro or rw, and nocopy for a volume, e.g. data:/var/lib/db:ro,nocopy"
        )
    source, target = parts
    mode = "ro" if "ro" in options else "rw"
    target = _container_path(target, f"volume {value!r}")
    if "/" not in source:
        try:
            name(source, "volume name")
        except Invalid as error:
            raise Invalid(f"invalid volume {value!r}: {error.message}") from None
        return {"volume": source, "source": None, "target": target, "mode": mode, "fill": "nocopy" not in options}
    if "nocopy" in options:
        raise Invalid(f"invalid volume {value!r}: nocopy is for named volumes; a host directory is never filled")
    if not source.startswith("/") or "\0" in source:
        raise Invalid(f"invalid volume {value!r}: {source!r} is not an absolute path")
    if not os.path.exists(source):
        raise Invalid(f"invalid volume {value!r}: {source} does not exist on this host")
    return {"source": os.path.realpath(source), "target": target, "mode": mode}


MOUNT_HELP = ("type=bind|volume|tmpfs,source=SRC,target=DST[,readonly][,volume-nocopy]"
              "[,tmpfs-size=BYTES][,tmpfs-mode=OCTAL]")  # fmt: skip


def mount(value):
    """--mount, Docker's key=value form -> ("volume", a --volume value) or ("tmpfs", a --tmpfs value)."""
    fields = {}
    for item in value.split(","):
        key, sep, setting = item.partition("=")
        key = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(key, key)
        if not key or key in fields:
            raise Invalid(f"invalid --mount {value!r}: {key or 'an empty key'} given twice or empty; use {MOUNT_HELP}")
        fields[key] = setting if sep else "true"
    kind, source, target = fields.pop("type", "volume"), fields.pop("source", ""), fields.pop("target", "")
    flags = {key: _mount_flag(fields.pop(key), key, value) for key in ("readonly", "volume-nocopy") if key in fields}
    tmpfs = {key: fields.pop(key) for key in ("tmpfs-size", "tmpfs-mode") if key in fields}
    if fields:
        raise Invalid(f"invalid --mount {value!r}: {sorted(fields)[0]!r} is not a key baleine takes; use {MOUNT_HELP}")
    if kind not in ("bind", "volume", "tmpfs") or not target:
        wrong = f"type {kind!r}" if target else "no target"
        raise Invalid(f"invalid --mount {value!r}: {wrong}; use {MOUNT_HELP}")
    if kind == "tmpfs":
        if source or flags.get("volume-nocopy"):
            raise Invalid(f"invalid --mount {value!r}: a tmpfs has no source and nothing to copy")
        options = ",".join(f"{key.removeprefix('tmpfs-')}={setting}" for key, setting in tmpfs.items())
        return "tmpfs", f"{target}:{options}" if options else target
    if tmpfs:
        raise Invalid(f"invalid --mount {value!r}: tmpfs-size and tmpfs-mode are for type=tmpfs")
    if kind == "bind" and not source.startswith("/"):
        raise Invalid(f"invalid --mount {value!r}: type=bind takes an absolute host path as its source")
    if kind == "volume" and (not source or "/" in source):
        raise Invalid(f"invalid --mount {value!r}: type=volume takes a volume name as its source")
    options = [option for option, wanted in (("ro", "readonly"), ("nocopy", "volume-nocopy")) if flags.get(wanted)]
    return "volume", ":".join([source, target, *([",".join(options)] if options else [])])


def _mount_flag(setting, key, value):
    if setting.lower() in ("true", "1", ""):
        return True
    if setting.lower() in ("false", "0"):
        return False
    raise Invalid(f"invalid --mount {value!r}: {key}={setting!r}; use {key}, {key}=true or {key}=false")


def _container_path(path, what):
    """An absolute path inside the container, normalized, that a mount may cover."""
    import os

    if not path.startswith("/") or "\0" in path:
        raise Invalid(f"invalid {what}: {path!r} is not an absolute path")
    if any(part == ".." for part in path.split("/")):
        raise Invalid(f"invalid {what}: the container path may not contain '..'")
    path = "/" + os.path.normpath(path).lstrip("/")  # normpath keeps a leading '//'
    if path == "/" or path == "/proc" or path.startswith("/proc/"):
        # Over / it would be hidden by the image's root; over /proc, it would hide the container's own.
        raise Invalid(f"invalid {what}: the container path may not be / nor in /proc")
    return path


TMPFS_SIZE = 64 << 20


def tmpfs(value):
    """'PATH[:OPTIONS]' -> {'target', 'size', 'mode', 'exec'}; OPTIONS: size=SIZE, mode=OCTAL, exec (Docker's)."""
    target, _, options = value.partition(":")
    mount = {"target": _container_path(target, f"--tmpfs {value!r}"), "size": TMPFS_SIZE, "mode": 0o1777,
             "exec": False}  # fmt: skip
    for option in filter(None, options.split(",")):
        key, _, setting = option.partition("=")
        if key == "size" and setting:
            mount["size"] = size(setting, f"--tmpfs size in {value!r}", minimum=4096)
        elif key == "mode" and len(setting) <= 4 and setting and set(setting) <= set("01234567"):
            mount["mode"] = int(setting, 8)
        elif option in ("exec", "noexec"):
            mount["exec"] = option == "exec"
        elif option not in ("rw", "nosuid", "nodev"):  # what it is anyway
            raise Invalid(
                f"invalid --tmpfs {value!r}: {option!r} is not an option here; use size=SIZE, mode=OCTAL, exec"
            )
    return mount


def user(value):
    """'USER[:GROUP]', names or numeric ids, checked for form only."""
    parts = value.split(":")
    if len(parts) > 2 or not all(matches(_USER_PART, part) for part in parts):
        raise Invalid(f"invalid user {value!r}: use USER or USER:GROUP, names or numeric ids")
    return value


def group(value):
    """--group-add: a group name or id, checked for form only (the image's /etc/group says the rest)."""
    if not matches(_USER_PART, value):
        raise Invalid(f"invalid --group-add {value!r}: use a group name or a numeric id, e.g. audio or 29")
    return value


OOM_SCORE_ADJ = (-1000, 1000)


def oom_score_adj(value):
    """--oom-score-adj: -1000 (never killed for memory) to 1000 (killed first)."""
    low, high = OOM_SCORE_ADJ
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise Invalid(f"invalid --oom-score-adj {value!r}: use a whole number from {low} to {high}")
    return number


def hostname(value):
    """An RFC 1123 host name that fits the kernel's 64-byte limit."""
    labels = value.split(".")
    if len(value) > 63 or not all(matches(_HOST_LABEL, label) for label in labels):
        raise Invalid(
            f"invalid hostname {value!r}: use letters, digits and '-' in dot-separated labels, at most 63 characters"
        )
    return value


def device(value, reserved=()):
    """--device 'HOST[:CONTAINER][:PERMS]' -> the node to make in the container's /dev, from the host's.

    PERMS: r, w and m (mknod) as the devices cgroup takes them (default rwm).
    The host node's numbers, mode and owner are taken now, as Docker does.
    reserved: the paths under /dev that baleine makes itself.
    """
    import os
    import stat

    parts = value.split(":")
    access = parts.pop() if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    usage = f"invalid --device {value!r}: use HOST[:CONTAINER][:PERMS], e.g. /dev/fuse or /dev/net/tun:/dev/net/tun:rw"
    if len(parts) > 2 or not access or set(access) - set("rwm") or len(set(access)) != len(access):
        raise Invalid(usage)
    host = parts[0]
    target = parts[1] if len(parts) == 2 else host
    try:
        info = os.stat(host)
    except (OSError, ValueError):
        raise Invalid(f"invalid --device {value!r}: no such device {host!r} on this host") from None
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise Invalid(f"invalid --device {value!r}: {host!r} is not a device node (character or block)")
    target = os.path.normpath(target) if target.startswith("/") and ".." not in target.split("/") else ""
    if not target.startswith("/dev/") or any(target == p or target.startswith(p + "/") for p in reserved):
        raise Invalid(
            f"invalid --device {value!r}: the container path must be under /dev and not one baleine makes there"
        )
    return {"host": host, "path": target, "type": "c" if stat.S_ISCHR(info.st_mode) else "b",
            "major": os.major(info.st_rdev), "minor": os.minor(info.st_rdev), "mode": stat.S_IMODE(info.st_mode),
            "uid": info.st_uid, "gid": info.st_gid, "access": access}  # fmt: skip


# Kernel settings a container's namespaces hold of their own (Docker's list): net.* in
# its network namespace, these in its IPC namespace. Any other would change the host's.
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                "kernel.shmmni", "kernel.shm_rmid_forced")  # fmt: skip
_SYSCTL_KEY = r"[a-z0-9_]+([./][A-Za-z0-9_-]+)+"


def sysctl(value, host_network=False):
    """--sysctl 'KEY=VALUE' -> (key with dots, value); only what the container's own namespaces hold."""
    key, sep, setting = value.partition("=")
    key = key.strip().replace("/", ".")  # net/core/somaxconn works too
    if not sep or not matches(_SYSCTL_KEY, key) or not setting or "\n" in setting:
        raise Invalid(f"invalid --sysctl {value!r}: use KEY=VALUE, e.g. net.core.somaxconn=1024")
    namespaced = key.startswith(("net.", "fs.mqueue.")) or key in _IPC_SYSCTLS
    if not namespaced:
        raise Invalid(
            f"invalid --sysctl {value!r}: {key} is the host's, not the container's; "
            "use net.*, fs.mqueue.* or kernel.shm*, msg*, sem"
        )
    if host_network and key.startswith("net."):
        raise Invalid(f"invalid --sysctl {value!r}: with --network host, net.* settings would be the host's")
    return key, setting


HOST_GATEWAY = "host-gateway"  # --add-host's stand-in for the address of the host on the first network
_DNS_OPTION = r"[A-Za-z0-9_-]+(:[0-9]+)?"


def dns_server(value):
    """--dns: a name server's address."""
    try:
        return ip_address(value)
    except Invalid:
        raise Invalid(f"invalid --dns {value!r}: use a name server's IPv4 or IPv6 address, e.g. 192.0.2.53") from None


def dns_search(value):
    """--dns-search: a domain to complete short names with; '.' means none at all."""
    if value == ".":
        return value
    domain = value.rstrip(".") if value.endswith(".") and len(value) > 1 else value
    try:
        return hostname(domain)
    except Invalid:
        raise Invalid(
            f"invalid --dns-search {value!r}: use a domain such as corp.example, or '.' for no search domain"
        ) from None


def dns_option(value):
    """--dns-option: one resolv.conf option, e.g. ndots:2 or edns0."""
    if not matches(_DNS_OPTION, value):
        raise Invalid(f"invalid --dns-option {value!r}: use one resolver option such as ndots:2, timeout:1 or edns0")
    return value


def extra_host(value):
    """--add-host 'NAME:IP' (an IPv6 address may follow the first colon; '=' works too) -> (name, address).

    IP may be host-gateway: the host's address on the container's first network.
    """
    host, sep, address = value.partition("=") if "=" in value else value.partition(":")
    try:
        if not sep or not address:
            raise Invalid("")
        host = hostname(host)
        address = address if address == HOST_GATEWAY else ip_address(address.strip("[]"))
    except Invalid:
        raise Invalid(
            f"invalid --add-host {value!r}: use NAME:IP, e.g. db.internal:192.0.2.7, or NAME:host-gateway"
        ) from None
    return host, address


def capability(value):
    """'NET_ADMIN', 'cap_net_admin' or 'ALL' -> the names it stands for (without CAP_)."""
    from .linux import CAPABILITIES

    name = value.upper()
    name = name[4:] if name.startswith("CAP_") else name
    if name == "ALL":
        return set(CAPABILITIES)
    if name not in CAPABILITIES:
        raise Invalid(f"unknown capability {value!r}: use ALL or one of {', '.join(CAPABILITIES)}")
    return {name}


def security_options(values):
    """--security-opt values -> the config's seccomp setting: 'unconfined' or 'default'."""
    chosen = "default"
    for value in values:
        key, _, setting = value.replace(":", "=", 1).partition("=")
        if key == "seccomp" and setting in ("unconfined", "default"):
            chosen = setting
        elif key == "no-new-privileges" and setting in ("", "true"):
            continue  # always on in baleine
        else:
            raise Invalid(
                f"unknown security option {value!r}: use seccomp=unconfined, seccomp=default "
                "or no-new-privileges (always on)"
            )
    return chosen


def signal_name(value, what="--stop-signal"):
    """'SIGQUIT', 'quit' or '3' -> 'SIGQUIT', the name the config keeps (signal.Signals' name for it)."""
    text = str(value).strip().upper()
    numbers, names = _signals()
    if ascii_digits(text):
        found = names.get(ascii_number(text, max(names)))
    else:
        found = names.get(numbers.get(text if text.startswith("SIG") else f"SIG{text}"))
    if found is None:
        raise Invalid(f"invalid {what} {value!r}: use a signal name or number, e.g. SIGTERM, SIGQUIT, SIGINT or 15")
    return found


def _signals():
    """{name: number} of every signal, and {number: name} with the name signal.Signals gives it.

    Read off _signal, not signal, whose enum costs every `run` 3 ms. Where two
    names share a number (SIGIOT and SIGABRT), the enum keeps the first in
    alphabetical order, and so does this.
    """
    import _signal

    numbers = {
        name: getattr(_signal, name) for name in dir(_signal) if name.startswith("SIG") and not name.startswith("SIG_")
    }
    names = {}
    for number, name in sorted((number, name) for name, number in numbers.items()):
        names.setdefault(number, name)
    return numbers, names


def workdir(value):
    """An absolute directory inside the container."""
    if not value.startswith("/") or "\0" in value:
        raise Invalid(f"invalid working directory {value!r}: use an absolute path such as /srv")
    return value


def positive_int(value, what, most=_MOST):
    """A whole number from 0 to most, in ASCII digits."""
    text = str(value).strip()
    result = ascii_number(text, most)
    if result is None:
        rule = f"at most {most}" if ascii_digits(text) else "0 or more"
        raise Invalid(f"invalid {what} {value!r}: use a whole number, {rule}")
    return result


def port(value, what):
    """A TCP port, 1 to 65535."""
    try:
        result = int(value)
    except (TypeError, ValueError):
        result = 0
    if not 0 < result < 65536:
        raise Invalid(f"invalid {what} {value!r}: use a TCP port, 1 to 65535")
    return result
