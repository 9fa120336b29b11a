"""Health checks: a shell command run inside a container by `baleine check` when due.

`--health-cmd CMD` runs as `/bin/sh -c CMD` through exec, at most every
`--health-interval` seconds (check runs from cron, so in practice at most
once per pass), killed after `--health-timeout`. Exit 0 is healthy; after
`--health-retries` failures in a row the container is unhealthy, and under
on-failure, always or unless-stopped, check restarts it.
"""

from . import parse, state
from .errors import Invalid

DEFAULTS = {"interval": 30.0, "retries": 3, "timeout": 10.0}


def from_options(cmd=None, interval=None, retries=None, timeout=None):
    """The health config, or None without a command."""
    if not cmd:
        if any(value is not None for value in (interval, retries, timeout)):
            raise Invalid("--health-interval, --health-retries and --health-timeout need --health-cmd")
        return None
    health = dict(DEFAULTS, cmd=cmd)
    if interval is not None:
        health["interval"] = parse.seconds(interval, "--health-interval")
    if timeout is not None:
        health["timeout"] = parse.seconds(timeout, "--health-timeout")
    if retries is not None:
        health["retries"] = parse.positive_int(retries, "--health-retries")
    if health["retries"] < 1 or health["timeout"] <= 0:
        raise Invalid("--health-retries must be 1 or more and --health-timeout more than 0")
    return health


def due(row, health, now):
    """Whether the container's next probe is due."""
    if not row.get("health_at"):
        return True
    last = state.epoch(row["health_at"])
    return now - last >= health["interval"]


def verdict(row, passed, health):
    """The health columns after one probe."""
    failures = 0 if passed else int(row.get("health_failures") or 0) + 1
    if passed:
        status = "healthy"
    elif failures >= health["retries"]:
        status = "unhealthy"
    else:
        status = row.get("health") or "starting"
    return {"health": status, "health_failures": failures}
