"""The fleet view: every host's rows merged into one table, HOST first.

Pure functions over Outcomes (see transport.py): an Outcome that worked holds
the helper's list of items; one that failed becomes a single row saying why,
so an unreachable host is visible in the table rather than missing from it.
"""

from .node.parse import human_size
from .node.render import (
    addresses_text,
    ago,
    container_status,
    event_details,
    free_share,
    limits_summary,
    shown_gateway,
    shown_source,
)

CONTAINER_COLUMNS = ("HOST", "NAME", "IMAGE", "STATUS", "HEALTH", "IPS", "UPTIME", "LIMITS")
IMAGE_COLUMNS = ("HOST", "NAME", "ID", "SIZE", "USED", "SOURCE", "CREATED")
NETWORK_COLUMNS = ("HOST", "NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS", "RUNNING")
EVENT_COLUMNS = ("HOST", "TIME", "ACTION", "CONTAINER", "BY", "DETAILS")
SPACE_COLUMNS = ("HOST", "FREE", "SIZE", "IMAGES", "CONTAINERS", "LOGS", "RECLAIMABLE")
INFO_COLUMNS = ("HOST", "KERNEL", "CGROUPS", "STATE FS", "RUNNING", "CONTAINERS", "IMAGES", "FREE", "CRON", "HELPER")


def merged(outcomes):
    """JSON-ready: [{host, ...item}] for every item, plus {host, error} for every failed host."""
    rows = []
    for outcome in outcomes:
        if outcome.ok and isinstance(outcome.value, list):
            rows += [{"host": outcome.host.name, **item} for item in outcome.value]
        elif outcome.ok:  # one answer per host (exec, create...)
            value = outcome.value if isinstance(outcome.value, dict) else {"value": outcome.value}
            rows.append({"host": outcome.host.name, **value})
        else:
            rows.append({"host": outcome.host.name, "error": outcome.error.as_dict()})
    return rows


def failed_row(outcome, width):
    """A table row for a host that did not answer: the reason spans the rest of the row."""
    label = "UNREACHABLE" if outcome.error.kind in ("unreachable", "host-key", "timeout") else "FAILED"
    return [outcome.host.name, f"{label}: {outcome.error.reason}", *[""] * (width - 2)]


def rows(outcomes, columns, item_row):
    """Table rows: item_row(host name, item) for each item of each host; one row per failed host."""
    found = []
    for outcome in outcomes:
        if not outcome.ok:
            found.append(failed_row(outcome, len(columns)))
            continue
        found += [item_row(outcome.host.name, item) for item in outcome.value]
    return found


def container_row(host, item):
    return [
        host,
        item["name"],
        item["image"],
        container_status({**item, "health": None}),
        item.get("health") or "",
        addresses_text(item),
        ago(item["started"]) if item["status"] == "running" else "",
        limits_summary(item.get("limits") or {}),
    ]


def image_row(host, item):
    size, used = human_size(item["size"]), human_size(item["used"])
    return [host, item["name"], item["id"], size, used, shown_source(item["source"]), item["created"]]


def network_row(host, item):
    return [
        host,
        item["name"],
        item["bridge"],
        item["subnet"],
        shown_gateway(item),
        item["containers"],
        item["running"],
    ]


def event_row(host, item):
    return [host, item["time"], item["action"], item["container"], item.get("by", ""), event_details(item)]


def event_rows(outcomes):
    """Every host's events in one timeline (oldest first); then a row per host that did not answer."""
    found = rows(outcomes, EVENT_COLUMNS, event_row)
    return sorted(found, key=lambda row: (row[1] == "", row[1], row[0]))  # failed rows have no time


def host_rows(outcomes, columns, host_row):
    """One row per host from its one answer, host_row(host name, answer); a failed host's row says why."""
    return [host_row(o.host.name, o.value) if o.ok else failed_row(o, len(columns)) for o in outcomes]


def info_rows(outcomes):
    """One row per host from its `baleine info`: what it runs on, what it holds, whether cron checks it."""
    return host_rows(outcomes, INFO_COLUMNS, info_row)


def info_row(host, item):
    counts = item["containers"]
    running = f"{counts['running']}" + (f" (+{counts['paused']} paused)" if counts["paused"] else "")
    fs = item["filesystem"] + (" (reflink)" if item["reflink"] else "")
    cron = f"every {item['cron']['every']} min" if item["cron"]["installed"] else "none"
    free = f"{human_size(item['free'])} ({free_share(item)})"
    helper = f"{item['version']}, python {item['python']}"
    return [host, item["kernel"], item["cgroups"], fs, running, counts["total"], item["images"], free, cron, helper]


def space_rows(outcomes):
    """One row per host from its `baleine df`: free space first, then what takes it."""
    return host_rows(outcomes, SPACE_COLUMNS, space_row)


def space_row(host, df):
    free = f"{human_size(df['free'])} ({free_share(df)})"
    reclaimable = sum(df[kind]["reclaimable"] for kind in ("images", "containers", "volumes") if kind in df)
    taken = (df["size"], df["images"]["bytes"], df["containers"]["bytes"], df["logs"]["bytes"], reclaimable)
    return [host, free, *map(human_size, taken)]


def container_rows(outcomes):
    return rows(outcomes, CONTAINER_COLUMNS, container_row)


def image_rows(outcomes):
    return rows(outcomes, IMAGE_COLUMNS, image_row)


def network_rows(outcomes):
    return rows(outcomes, NETWORK_COLUMNS, network_row)


def table(columns, rows):
    from tabulate import tabulate

    return tabulate(rows, headers=columns, tablefmt="plain", disable_numparse=True)


def summary(outcomes, what="hosts"):
    """One line for the end of a task: how many hosts answered, which failed and why."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if len(outcomes) == 1:
        what = what.removesuffix("s")
    if not failed:
        return f"{len(outcomes)} {what} ok"
    names = ", ".join(outcome.host.name for outcome in failed)
    return f"{len(outcomes) - len(failed)} of {len(outcomes)} {what} ok; failed: {names}"
