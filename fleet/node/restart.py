"""Restart policies: which exited container `baleine check` starts again, and when.

Pure decisions, no side effects: `check` applies them. Like Docker:

- no: never.
- on-failure[:N]: after a non-zero exit (an OOM kill included), at most N times.
- always: after any exit, unless a person stopped it (`container stop`);
  after a reboot, even then.
- unless-stopped: after any exit, unless a person stopped it, reboot or not.

Restarts back off: the first comes at once (a crash is repaired by the pass
that notices it), the second BACKOFF_START seconds after the exit, each next
one twice as long, at most BACKOFF_CAP. A container that ran STEADY seconds or
more before it exited was not crash-looping: it is restarted at once, however
many restarts it has had (as Docker resets its delay after 10 s of running).
"""

from .errors import Invalid

POLICIES = ("no", "on-failure", "always", "unless-stopped")
BACKOFF_START = 5.0
BACKOFF_CAP = 300.0
STEADY = 10.0


def parse(text):
    """'no', 'on-failure', 'on-failure:N', 'always' or 'unless-stopped' -> {'policy', 'max'}."""
    policy, sep, count = (text or "no").partition(":")
    if policy not in POLICIES or (sep and policy != "on-failure"):
        raise Invalid(f"invalid --restart {text!r}: use no, on-failure[:N], always or unless-stopped")
    if sep and not (count.isdigit() and int(count) > 0):
        raise Invalid(f"invalid --restart {text!r}: the most restarts N must be a whole number, 1 or more")
    return {"policy": policy, "max": int(count) if sep else None}


def backoff(restarts, ran_for=0.0):
    """Seconds after an exit before restart number restarts + 1 (BALEINE_RESTART_BACKOFF: the first).

    ran_for: how long the run that just ended lasted.
    """
    import os

    if restarts <= 0 or ran_for >= STEADY:
        return 0.0
    start = float(os.environ.get("BALEINE_RESTART_BACKOFF") or BACKOFF_START)
    return min(BACKOFF_CAP, start * 2 ** (restarts - 1))


def wanted(policy, exit_code, reason, restarts, stopped_by_user, after_reboot=False):
    """Whether an exited container should be started again."""
    name = policy.get("policy", "no")
    if name == "no":
        return False
    if name == "on-failure":
        failed = (exit_code not in (None, 0)) or reason == "oom-killed"
        return failed and not stopped_by_user and (policy.get("max") is None or restarts < policy["max"])
    if name == "always":
        return after_reboot or not stopped_by_user
    return not stopped_by_user  # unless-stopped
