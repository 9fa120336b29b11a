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


class Damaged(BaleineError):
    """A state file that cannot be read as baleine wrote it (edited by hand, cut short): named, with the line."""

    code = "damaged"


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


class KernelRefused(BaleineError):
    """The kernel refused a request we made to it directly (netlink), with its errno and reason."""

    code = "kernel_refused"


class StartFailed(BaleineError):
    """A container's command could not be started (Docker's 125/126/127)."""

    code = "start_failed"

    def __init__(self, message, exit_status=125):
        super().__init__(message)
        self.exit_status = exit_status


def try_each(names, act):
    """[act(name) for each name], every one tried, as `docker rm a b c` does; one error for all that failed.

    The error says how many failed, the first reason and what was done; it
    carries every failure in its details, and the first one's code and exit status.
    """
    done, failed = [], []
    for name in names:
        try:
            done.append(act(name))
        except BaleineError as error:
            failed.append((name, error))
    if not failed:
        return done
    first = failed[0][1]
    summary = f"{len(failed)} of {len(names)} failed: {first.message}"
    error = BaleineError(
        summary + (f" (done: {', '.join(data['name'] for data in done)})" if done else ""),
        done=[data["name"] for data in done],
        failed=[{"name": name, "message": problem.message, "code": problem.code} for name, problem in failed],
    )
    error.code, error.exit_status = first.code, first.exit_status
    raise error
