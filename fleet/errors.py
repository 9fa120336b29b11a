"""What can go wrong on the control side, per host, as types callers can tell apart.

Every error carries the host it happened on; a helper failure also carries
the command, its exit status, the helper's error code and the tail of its
stderr, so one line says what failed where.
"""


class FleetError(Exception):
    """Base of every control-side error; str() is one line for people."""

    kind = "error"

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def as_dict(self):
        return {"kind": self.kind, "message": self.message}


class HostError(FleetError):
    """Something went wrong on (or on the way to) one host."""

    def __init__(self, host, message):
        super().__init__(f"{host}: {message}")
        self.host = host
        self.reason = message

    def as_dict(self):
        return {"kind": self.kind, "host": self.host, "message": self.reason}


class Unreachable(HostError):
    """No SSH session: refused, timed out, name unknown, authentication failed."""

    kind = "unreachable"


class HostKeyRefused(Unreachable):
    """The host's key is unknown or differs from known_hosts (possible impostor)."""

    kind = "host-key"


class TimedOut(HostError):
    """The host did not finish within the per-host timeout."""

    kind = "timeout"


class HelperError(HostError):
    """The helper ran and failed, or could not run at all."""

    kind = "helper"

    def __init__(self, host, argv, exit_code, message, stderr="", code=None):
        super().__init__(host, message)
        self.argv = list(argv)
        self.exit_code = exit_code
        self.code = code
        self.stderr_tail = tail(stderr)

    def as_dict(self):
        return {
            **super().as_dict(),
            "argv": self.argv,
            "exit_code": self.exit_code,
            "code": self.code,
            "stderr": self.stderr_tail,
        }


class NoPython(HelperError):
    """The host has no python3, or one older than 3.9."""

    kind = "no-python"


def tail(text, lines=5, limit=2000):
    """The last few lines of a command's stderr, enough to say why it failed."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = "\n".join(text.strip().splitlines()[-lines:])
    return kept[-limit:]
