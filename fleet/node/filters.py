"""`container list --filter KEY=VALUE`: which containers a listing shows, as `docker ps --filter` does.

Values given for one key are alternatives; different keys must all hold:
`--filter status=exited --filter status=created --filter image=bb` lists the
containers of image bb that are not running; `--filter label=role=web` those
labelled so (`label=role`: with any value).
"""

from .errors import Invalid

STATUSES = ("created", "running", "paused", "exited")
HEALTHS = ("starting", "healthy", "unhealthy", "none")
KEYS = ("status", "name", "image", "network", "health", "label")


def parse(values):
    """['status=exited', 'name=web*'] -> {'status': {'exited'}, 'name': {'web*'}}; Invalid names the bad one."""
    chosen = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or key not in KEYS or not wanted:
            raise Invalid(
                f"invalid --filter {value!r}: use KEY=VALUE with KEY one of {', '.join(KEYS)}, e.g. status=exited"
            )
        allowed = {"status": STATUSES, "health": HEALTHS}.get(key)
        if allowed and wanted not in allowed:
            raise Invalid(f"invalid --filter {value!r}: {key} is one of {', '.join(allowed)}")
        chosen.setdefault(key, set()).add(wanted)
    return chosen


def matches(item, chosen):
    """Whether a listed container (containers.describe) passes every filter."""
    from fnmatch import fnmatchcase

    from .render import shown_status

    status = shown_status(item)
    facts = {
        "status": lambda wanted: status == wanted,
        "name": lambda wanted: fnmatchcase(item["name"], wanted),
        "image": lambda wanted: item["image"] == wanted,
        "network": lambda wanted: wanted in {n["network"] for n in item["networks"]},
        "health": lambda wanted: (item.get("health") or "none") == wanted,
        "label": lambda wanted: _has_label(item.get("labels") or {}, wanted),
    }
    return all(any(facts[key](wanted) for wanted in values) for key, values in chosen.items())


def _has_label(labels, wanted):
    """label=KEY: the label is there, whatever its value; label=KEY=VALUE: with that value."""
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)
