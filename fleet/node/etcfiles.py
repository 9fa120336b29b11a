"""The files baleine writes for a container's /etc: hostname, hosts, resolv.conf.

They live in the container's directory and are bind-mounted over the image's
own, so /etc/hosts can be kept current while the container runs. They are
views derived from containers.csv, rewritten whenever a neighbour comes or goes.
"""

import os


def hosts_text(hostname, name, own, neighbours):
    """/etc/hosts: loopback, the container itself, then its running neighbours.

    own: [address] of this container; neighbours: [(address, name)].
    """
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    aliases = hostname if hostname == name else f"{hostname} {name}"
    lines += [f"{address}\t{aliases}" for address in own]
    if not own:
        lines.append(f"127.0.1.1\t{aliases}")
    lines += [f"{address}\t{other}" for address, other in sorted(set(neighbours))]
    return "\n".join(lines) + "\n"


def resolv_text(host_resolv="/etc/resolv.conf"):
    """The host's resolv.conf without loopback servers, unreachable from a container."""
    try:
        with open(host_resolv, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    kept = [line for line in lines if not (line.split()[:1] == ["nameserver"] and _is_loopback(line.split()[1:2]))]
    return "\n".join(kept) + "\n"


def _is_loopback(words):
    return bool(words) and (words[0].startswith("127.") or words[0] == "::1")


def write_in_place(path, text):
    """Rewrite a bind-mounted file: the same inode, so the container sees the change."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
