"""Human output: aligned tables and short durations. JSON needs none of this."""

import time

from . import state
from .parse import ASCII_ALNUM, human_size


def table(headers, rows):
    """Left-aligned columns separated by three spaces, header first."""
    cells = [list(headers)] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells)


def shorten(text, width):
    """text cut to width, ending in '...' when cut, so a cut is never mistaken for the whole."""
    return text if len(text) <= width else text[: width - 3] + "..."


def ago(stamp, now=None):
    """'3 minutes' for a table timestamp (UTC, ISO 8601), '' when empty."""
    if not stamp:
        return ""
    then = state.epoch(stamp)
    return duration((now or time.time()) - then)


def duration(seconds):
    seconds = max(0, int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def images(items):
    return table(
        ("NAME", "ID", "SIZE", "USED", "SOURCE", "CREATED"),
        [(i["name"], i["id"], human_size(i["size"]), human_size(i["used"]), shown_source(i["source"]), i["created"])
         for i in items],
    )  # fmt: skip


def shown_source(source):
    """An image's source as tables show it: a pulled one's digest cut to 12 hex digits, as Docker shows ids."""
    head, at, digest = source.rpartition("@sha256:")
    return f"{head}{at}{digest[:12]}" if at and len(digest) == 64 else source


def networks(items):
    rows = [(n["name"], n["bridge"], n["subnet"], shown_gateway(n), n["containers"], n["running"]) for n in items]
    return table(("NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS", "RUNNING"), rows)


def shown_gateway(item):
    """A network's gateway as tables show it: an internal one's is reserved, on no interface."""
    return "internal" if item.get("internal") else item["gateway"]


def shown_status(item):
    """A listed container's status as people and --filter status= see it: a frozen running one is 'paused'."""
    return "paused" if item.get("paused") else item["status"]


def container_status(item):
    status = shown_status(item)
    if status == "exited" and item["exit_code"] is not None:
        reason = ", OOM-killed" if item.get("reason") == "oom-killed" else ""
        status = f"exited ({item['exit_code']}{reason})"
    elif status == "exited" and item.get("reason"):
        status = f"exited ({item['reason']})"
    if item.get("health"):
        status += f" ({item['health']})"
    if item.get("restarts"):
        status += f", {item['restarts']} restart{'s' if item['restarts'] > 1 else ''}"
    return status


def limits_summary(limits):
    """'mem 256M, cpus 0.5, pids 2048': the limits people look for first."""
    parts = []
    if limits.get("memory"):
        parts.append(f"mem {human_size(limits['memory'])}")
    if limits.get("cpus"):
        parts.append(f"cpus {limits['cpus']:g}")
    if limits.get("pids"):
        parts.append(f"pids {limits['pids']}")
    return ", ".join(parts)


# What shlex.quote leaves bare. shlex compiles a pattern for it, and re costs a `container list` 6 ms.
_SHELL_SAFE = ASCII_ALNUM | frozenset("_@%+=:,./-")


def shell_words(argv):
    """argv as a shell line, quoted as shlex.join quotes it."""
    return " ".join(_shell_word(word) for word in argv)


def _shell_word(word):
    if word and _SHELL_SAFE.issuperset(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def addresses_text(item):
    """A container's addresses, or 'host' when it shares the host's network."""
    return "host" if item.get("host_network") else ",".join(n["address"] for n in item["networks"])


def containers(items):
    sizes = any("disk_bytes" in item for item in items)  # list --size
    rows = []
    for item in items:
        addresses = addresses_text(item)
        uptime = ago(item["started"]) if item["status"] == "running" else ""
        command = shell_words(item.get("command") or [])
        space = (human_size(item["disk_bytes"]), human_size(item["log_bytes"])) if sizes else ()
        limits = limits_summary(item.get("limits") or {})
        rows.append((item["name"], item["id"], item["image"], container_status(item), item["pid"] or "",
                     addresses, uptime, limits, *space, shorten(command, 40)))  # fmt: skip
    headers = ("NAME", "ID", "IMAGE", "STATUS", "PID", "IP", "UPTIME", "LIMITS", *(("DISK", "LOGS") if sizes else ()))
    return table((*headers, "COMMAND"), rows)


def stats(items):
    rows = []
    for item in items:
        limit = human_size(item["memory_limit"]) if item["memory_limit"] else "-"
        rows.append((item["name"], item["id"], f"{item['cpu_percent']:.1f}%", f"{human_size(item['memory'])} / {limit}",
                     f"{human_size(item['io_read'])} / {human_size(item['io_write'])}", item["pids"]))  # fmt: skip
    return table(("NAME", "ID", "CPU %", "MEM USAGE / LIMIT", "BLOCK I/O", "PIDS"), rows)


def top(items):
    rows = [(i["pid"], i["host_pid"], i["ppid"], i["uid"], i["state"], _cpu_time(i["cpu_seconds"]), ago(i["started"]),
             shorten(shell_words(i["command"]), 80)) for i in items]  # fmt: skip
    return table(("PID", "HOST PID", "PPID", "UID", "STATE", "TIME", "UP", "COMMAND"), rows)


def _cpu_time(seconds):
    """ps's TIME: 0:03.25 (minutes:seconds), hours first past an hour."""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:05.2f}" if hours else f"{minutes}:{rest:05.2f}"


def events(items):
    """TIME ACTION CONTAINER BY DETAILS: what `baleine events` prints."""
    rows = [(i["time"], i["action"], i["container"], i.get("by", ""), event_details(i)) for i in items]
    return table(("TIME", "ACTION", "CONTAINER", "BY", "DETAILS"), rows)


def event_line(event):
    """One event on one line, for `events --follow`: TIME ACTION CONTAINER [by=WHO] [DETAILS]."""
    words = [event["time"], event["action"], event["container"]]
    words += [f"by={event['by']}"] if event.get("by") else []
    details = event_details(event)
    return " ".join(words + ([details] if details else []))


def event_details(event):
    """What an event says beyond when, what, which and who: 'exit_code=137 reason=...'."""
    known = ("time", "action", "container", "id", "by", "host")
    return " ".join(f"{key}={value}" for key, value in event.items() if key not in known)


def df(found):
    """`baleine df`: a table of what takes the space, then the filesystem's free space."""
    rows = []
    kinds = (("images", "image prune"), ("containers", "container prune"), ("volumes", "volume prune"), ("logs", ""),
             ("history", ""))  # fmt: skip
    for kind, hint in kinds:
        item = found[kind]
        reclaimable = f"{human_size(item['reclaimable'])} ({hint})" if "reclaimable" in item else ""
        rows.append((kind, item.get("count", ""), human_size(item["bytes"]), reclaimable))
    free = f"{found['root']}: {human_size(found['free'])} free of {human_size(found['size'])} ({free_share(found)})"
    return table(("WHAT", "COUNT", "SPACE", "RECLAIMABLE"), rows) + "\n" + free


def info(found):
    """`baleine info`: one line per fact, name first."""
    counts = found["containers"]
    schedule = found["cron"]
    cron = f"every {schedule['every']} min" if schedule["installed"] else "not installed (baleine cron install)"
    lines = [
        ("version", f"baleine {found['version']} (python {found['python']})"),
        ("kernel", f"{found['kernel']} {found['arch']}"),
        ("cgroups", f"{found['cgroups']}, containers under {found['cgroup_parent']}"),
        ("state", f"{found['root']} on {found['filesystem']}, "
                  f"{'reflink copies' if found['reflink'] else 'sparse copies (no reflink)'}"),
        ("free", f"{human_size(found['free'])} of {human_size(found['size'])} ({free_share(found)})"),
        ("seccomp", "default filter" if found["seccomp"] else f"none for {found['arch']} (seccomp=unconfined only)"),
        ("init", found["init"] or "none (--init needs tini or catatonit)"),
        ("cron", cron),
        ("containers", f"{counts['total']}: {counts['running']} running, {counts['paused']} paused, "
                       f"{counts['created']} created, {counts['exited']} exited"),
        ("images", found["images"]),
        ("networks", found["networks"]),
        ("volumes", found["volumes"]),
        ("logins", ", ".join(f"{i['registry']} ({i['username']})" for i in found["logins"]) or "none (baleine login)"),
    ]  # fmt: skip
    return "\n".join(f"{name + ':':<12}{value}" for name, value in lines)


def mirrors(items):
    rows = [(i["registry"], i["mirror"] + (" (insecure)" if i["insecure"] else ""), i["created"]) for i in items]
    return table(("REGISTRY", "MIRROR", "ADDED"), rows)


def registries(items):
    rows = [(i["registry"], i["login"] or "-", ", ".join(i["mirrors"]) or "-",
             "plain HTTP" if i["insecure"] else "HTTPS") for i in items]  # fmt: skip
    return table(("REGISTRY", "LOGIN", "MIRRORS", "REACHED"), rows)


def volumes(items):
    rows = [(i["name"], human_size(i["bytes"]), ", ".join(i["containers"]), i["created"]) for i in items]
    return table(("NAME", "USED", "CONTAINERS", "CREATED"), rows)


def free_share(found):
    """'25%': the free part of a `df` summary's filesystem."""
    return f"{100 * found['free'] // found['size'] if found['size'] else 0}%"
