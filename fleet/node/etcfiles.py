"""The files baleine writes for a container's /etc: hostname, hosts, resolv.conf.

They live in the container's directory and are bind-mounted over the image's
own, so /etc/hosts can be kept current while the container runs. They are
views derived from containers.csv and the container's config, rewritten
whenever a neighbour comes or goes.
"""

import os

HOST_RESOLV = "/etc/resolv.conf"
# systemd-resolved's list of the servers behind its 127.0.0.53 stub (Ubuntu's default).
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"
NO_SEARCH = "."  # --dns-search . : no search domain at all (Docker's spelling)


def hosts_text(hostname, name, own, neighbours, extra=()):
    """/etc/hosts: loopback, the container itself, --add-host entries, then its running neighbours.

    own: [address] of this container; extra: [(name, address)] given at create,
    ahead of the neighbours so that a name given by hand wins; neighbours:
    [(address, name)].
    """
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    aliases = hostname if hostname == name else f"{hostname} {name}"
    lines += [f"{address}\t{aliases}" for address in own]
    if not own:
        lines.append(f"127.0.1.1\t{aliases}")
    lines += [f"{address}\t{host}" for host, address in extra]
    lines += [f"{address}\t{other}" for address, other in sorted(set(neighbours))]
    return "\n".join(lines) + "\n"


def resolv_text(dns=None, host_network=False, host_resolv=HOST_RESOLV, upstream=RESOLVED_UPSTREAM):
    """The container's resolv.conf: the host's, with what --dns, --dns-search and --dns-option replace.

    A container on its own network cannot reach the host's loopback, so
    loopback servers are dropped; where the host lists only loopback servers
    and systemd-resolved publishes the servers behind its stub, those are used.
    With the host's network the host's file is kept as it is.
    """
    lines = _lines(host_resolv)
    if not host_network:
        servers = _servers(lines)
        if servers and all(_is_loopback(server) for server in servers):
            lines = _lines(upstream) or lines
        lines = [line for line in lines if not _is_loopback(_server(line))]
    return "\n".join(_override(lines, dns or {})) + "\n" if lines or dns else ""


def _override(lines, dns):
    """Lines with each keyword --dns* gave replaced by the given values."""
    replaced = {
        "servers": ("nameserver",),
        "search": ("search", "domain"),  # domain is search's older, one-name form: the later line wins
        "options": ("options",),
    }
    for key, keywords in replaced.items():
        if dns.get(key):
            lines = [line for line in lines if line.split()[:1] not in ([word] for word in keywords)]
    lines += [f"nameserver {server}" for server in dns.get("servers", ())]
    search = [domain for domain in dns.get("search", ()) if domain != NO_SEARCH]
    if search:
        lines.append("search " + " ".join(search))
    if dns.get("options"):
        lines.append("options " + " ".join(dns["options"]))
    return lines


def _lines(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _server(line):
    words = line.split()
    return words[1] if words[:1] == ["nameserver"] and len(words) > 1 else None


def _servers(lines):
    return [server for server in map(_server, lines) if server]


def _is_loopback(address):
    return bool(address) and (address.startswith("127.") or address == "::1")


def write_in_place(path, text):
    """Rewrite a bind-mounted file: the same inode, so the container sees the change."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
