"""Errors that carry what went wrong; only cli.main turns them into exit codes."""


class BaleineError(Exception):
    """A failure to report to the user: one-line message, a stable code, an exit status."""

    code = "error"
    exit_status = 1

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(BaleineError):
    """Bad input: refused before any state changes."""

    code = "invalid"
    exit_status = 2


class NotFound(BaleineError):
    """An image, network or container that does not exist."""

    code = "not_found"


class Conflict(BaleineError):
    """The request collides with existing state (duplicate name, overlap, in use)."""

    code = "conflict"


class NoSpace(BaleineError):
    """The filesystem holding the state (or a destination) is full, or the quota spent."""

    code = "no_space"


class Missing(BaleineError):
    """A program or kernel feature this host lacks."""

    code = "missing"
    exit_status = 127


class CommandFailed(BaleineError):
    """A tool we ran (ip, mkfs.ext4...) exited non-zero."""

    code = "command_failed"

    def __init__(self, argv, status, stderr, stdout=""):
        # Some tools (debootstrap) report on stdout: fall back to it.
        lines = [line.strip() for line in (stderr or stdout or "").splitlines() if line.strip()]
        reason = "; ".join(lines)[-400:] if lines else "no message"
        super().__init__(
            f"{argv[0]} exited with status {status}: {reason}",
            argv=list(argv),
            status=status,
            stderr=stderr,
        )


class StartFailed(BaleineError):
    """A container's command could not be started (Docker's 125/126/127)."""

    code = "start_failed"

    def __init__(self, message, exit_status=125):
        super().__init__(message)
        self.exit_status = exit_status
