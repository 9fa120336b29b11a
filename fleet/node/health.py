"""Health checks: a shell command run inside a container by `baleine check` when due.

`--health-cmd CMD` runs as `/bin/sh -c CMD` through exec, at most every
`--health-interval` seconds (check runs from cron, so in practice at most
once per pass), killed after `--health-timeout`. Exit 0 is healthy; after
`--health-retries` failures in a row the container is unhealthy, and under
on-failure, always or unless-stopped, check restarts it. Within
`--health-start-period` seconds of a start, failures do not count (a slow
starter is not restarted for being slow) while a success counts at once.

An image's own HEALTHCHECK (kept from an imported archive, written by commit
and export) is the default, as in Docker: the --health-* options given
replace its parts, and --no-healthcheck turns it off.
"""

from . import parse, state
from .errors import Invalid

DEFAULTS = {"interval": 30.0, "retries": 3, "timeout": 10.0, "start_period": 0.0}


def from_options(cmd=None, interval=None, retries=None, timeout=None, start_period=None, base=None):
    """The health config, or None without a command (given, or base's: the image's, from from_image)."""
    if not cmd and base is None:
        if any(value is not None for value in (interval, retries, timeout, start_period)):
            raise Invalid(
                "--health-interval, --health-retries, --health-timeout and --health-start-period need --health-cmd"
            )
        return None
    health = dict(base or DEFAULTS)
    if cmd:
        health["cmd"] = cmd
    if start_period is not None:
        health["start_period"] = parse.seconds(start_period, "--health-start-period")
    if interval is not None:
        health["interval"] = parse.seconds(interval, "--health-interval")
    if timeout is not None:
        health["timeout"] = parse.seconds(timeout, "--health-timeout")
    if retries is not None:
        health["retries"] = parse.positive_int(retries, "--health-retries")
    if health["retries"] < 1 or health["timeout"] <= 0:
        raise Invalid("--health-retries must be 1 or more and --health-timeout more than 0")
    return health


NANOSECONDS = 1_000_000_000  # how image configs give durations


def from_image(image_config, image):
    """The image's HEALTHCHECK as a health config, or None when it has none (or says NONE)."""
    check = image_config.get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL" and len(test) == 2:
        cmd = test[1]
    elif test[0] == "CMD" and len(test) > 1:
        import shlex  # only here: most images have no HEALTHCHECK, and every create reads theirs

        cmd = shlex.join(test[1:])  # run by /bin/sh -c, like every probe: quoted as it was split
    else:
        raise Invalid(f"image {image!r} has a HEALTHCHECK baleine cannot read ({test!r}): "
                      "give --health-cmd, or --no-healthcheck")  # fmt: skip
    health = dict(DEFAULTS, cmd=cmd)
    for key, field in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if check.get(field):
            health[key] = check[field] / NANOSECONDS
    if check.get("Retries"):
        health["retries"] = int(check["Retries"])
    return health


def to_image(health):
    """A health config as an image's Healthcheck (for commit)."""
    return {"Test": ["CMD-SHELL", health["cmd"]], "Interval": int(health["interval"] * NANOSECONDS),
            "Timeout": int(health["timeout"] * NANOSECONDS), "Retries": health["retries"],
            "StartPeriod": int(health.get("start_period", 0) * NANOSECONDS)}  # fmt: skip


def due(row, health, now):
    """Whether the container's next probe is due."""
    if not row.get("health_at"):
        return True
    last = state.epoch(row["health_at"])
    return now - last >= health["interval"]


def verdict(row, passed, health, now):
    """The health columns after one probe (at time now): a failure within the start period is not counted."""
    failures = int(row.get("health_failures") or 0)
    if not passed and row.get("started") and now - state.epoch(row["started"]) < health.get("start_period", 0):
        return {"health": row.get("health") or "starting", "health_failures": failures}
    failures = 0 if passed else failures + 1
    if passed:
        status = "healthy"
    elif failures >= health["retries"]:
        status = "unhealthy"
    else:
        status = row.get("health") or "starting"
    return {"health": status, "health_failures": failures}
