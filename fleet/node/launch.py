"""Process mechanics: start a container's namespaces and init, exec inside one.

Process tree of a running container, with nothing of baleine resident:

    /bin/sh waiter  (host pid namespace, container's other namespaces)
      `- pid 1 of the container: sandbox init, then exec'd into the command

The waiter is a fixed shell script (inputs arrive as argv, never spliced into
it): it holds the container's exit-status file open, runs the init, writes
the status when it ends (128+N for a signal, as shells report it) and exits.
Its memory is a shell's, not a Python interpreter's.

An attached container (`run` without -d) has the starting command itself
waiting for it, so nothing is saved by a small waiter: there the forked child
stays Python, does the waiter's job, and forks the init from the modules it
already has instead of starting a second interpreter (about 15 ms).

`exec --detach` leaves a command running with a shell of the same kind as its
parent, outside the container's pid namespace: it reaps the command whatever
the container's pid 1 does (most commands never reap an orphan, which would
stay a zombie), and the `exec` itself can leave at once.
"""

# The builtin _socket, not socket: that module costs every start 3 ms (enum
# conversions, selectors) for a listener, an accept and a line reader.
import _signal
import _socket
import os
import select
import struct
import sys

from . import jsonlite, linux
from .errors import StartFailed

# dash reports a child killed by a signal ("Killed") on its stderr, which must not be
# the container's log: the shell's own stderr is /dev/null. The subshell takes the
# log back as stderr and execs the init (no second fork); a redirection on a plain
# command would instead be made in the shell itself, around its wait.
WAITER = 'exec 3>"$1" 4>&2 2>/dev/null; shift; ( "$@" 2>&4 3>&- 4>&- ); s=$?; echo "$s" >&3; exit "$s"'
NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET
NAMESPACES |= linux.CLONE_NEWCGROUP | linux.CLONE_NEWPID
JOIN_ORDER = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # mnt last: it changes our root
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from fleet.node.sandbox import main; main(sys.argv[2:])"
# exec --detach: the shell starts the command's Python in the background, so that
# it can close its own copy of the report pipe (fd 3), and waits for it.
DETACHED_WAITER = '"$@" & exec 3>&-; wait "$!"'
DETACHED_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from fleet.node.launch import detached_child; "
    "detached_child(int(sys.argv[2]))"
)
REPORT_FD = 3  # exec --detach: the command's setup writes "STATUS MESSAGE" there if it fails
CONFIG_VARIABLE = "BALEINE_EXEC"  # exec --detach: the command's settings (root-only, unlike argv)
HANDSHAKE_TIMEOUT = 30.0
SOCKET_NAME = "start.sock"  # bound and reached relative to the container directory


def _bind_short(sock, directory, name):
    """bind() by a relative name: a unix socket path is capped at 108 bytes, deep roots are not."""
    here = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(directory)
        sock.bind(name)
    finally:
        os.fchdir(here)
        os.close(here)


def package_root():
    """The directory (or zipapp) holding the `fleet` package, to restart Python from it."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(os.path.dirname(here))


class Launch:
    """One start in progress: the waiter's pid, then the init's pid once it calls in."""

    def __init__(self, directory, config, cgroup, detach, log_output):
        self.directory = directory
        self.config = config
        self.socket_path = os.path.join(directory, SOCKET_NAME)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        _bind_short(self.listener, directory, SOCKET_NAME)
        self.listener.listen(1)
        self.channel = None
        self.pending = b""  # what the init sent beyond the last line read
        self.init_pid = None
        self.terminal = None  # run -t: the pty master the init hands over
        self.log_output = log_output
        self.init_has_config = init_builds_while_plugging(config, detach)
        ready, told = os.pipe()
        self.waiter_pid = os.fork()
        if self.waiter_pid == 0:
            os.close(ready)
            self._become_waiter(cgroup, detach, log_output, told)
        os.close(told)
        self._unshared = ready
        # Load libc's bindings while the child loads its own: the helper that sets up
        # the container's network (setns) is forked from us and then need not.
        linux.libc()

    def _become_waiter(self, cgroup, detach, log_output, told):
        """In the forked child: unshare, join the cgroup, exec the waiter. Never returns.

        The parent hears (on told) as soon as the network namespace exists, and
        plugs the network while this process joins the cgroup (a move that waits
        for an RCU grace period on cgroup v1) and the init boots.
        """
        try:
            if detach:
                os.setsid()
            if log_output:
                _stdio_to(os.path.join(self.directory, "log"))
            _close_inherited(keep=told)
            # --network host: every namespace but the network one
            wanted = NAMESPACES & ~linux.CLONE_NEWNET if self.config.get("host_network") else NAMESPACES
            linux.unshare(wanted & ~linux.CLONE_NEWCGROUP)
            os.write(told, b"u")
            os.close(told)
            cgroup.join(os.getpid())
            linux.unshare(linux.CLONE_NEWCGROUP)  # after the move: the container's cgroup is its root
            os.chdir("/")
            exit_file = os.path.join(self.directory, "exit")
            if not detach:
                given = self.init_config() if self.init_has_config else None
                _wait_for_forked_init(self.directory, exit_file, given, self.config.get("tty"))
            init = [sys.executable, "-I", "-S", "-c", BOOT, package_root(), self.directory]
            os.execv("/bin/sh", ["sh", "-c", WAITER, "baleine-waiter", exit_file, *init])
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(2, f"baleine: cannot start the container: {error}\n".encode())
        finally:
            os._exit(125)

    def namespaces(self):
        """Wait until the container's namespaces exist; returns a pid inside them (the waiter's).

        Its network namespace is the container's: veths can go in before the init runs.
        """
        try:
            ready, _, _ = select.select([self._unshared], [], [], HANDSHAKE_TIMEOUT)
            told = os.read(self._unshared, 1) if ready else b""
        finally:
            os.close(self._unshared)
            self._unshared = None
        if told != b"u":  # it died before: gone, or going
            raise StartFailed(f"the container's namespaces were not made ({self._failure(wait=True)})")
        return self.waiter_pid

    def accept(self):
        """Wait for the init to call in; returns its pid as the host sees it."""
        waiter = os.pidfd_open(self.waiter_pid)
        try:
            ready, _, _ = select.select([self.listener, waiter], [], [], HANDSHAKE_TIMEOUT)
        finally:
            os.close(waiter)
        if self.listener not in ready:
            raise StartFailed(f"the container's init did not start ({self._failure()})")
        self._take_call()
        credentials = self.channel.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
        self.init_pid = struct.unpack("3i", credentials)[0]
        if not self.init_has_config:
            import marshal

            # The init reads marshal: no json import in its start-up.
            blob = marshal.dumps(self.init_config())
            self.channel.sendall(len(blob).to_bytes(8, "big") + blob)
        return self.init_pid

    def reported_failure(self):
        """StartFailed with the init's own reason if it has sent one already (never waits); else None.

        An init given its config builds the root while the network is
        plugged: if it fails meanwhile, its namespace goes and the plug fails
        too, for a reason that is not the one to tell.
        """
        if self.channel is None:
            ready, _, _ = select.select([self.listener], [], [], 0)
            if not ready:
                return None
            self._take_call()
        self.channel.setblocking(False)
        try:
            while chunk := self.channel.recv(4096):
                self.pending += chunk
        except BlockingIOError:
            pass
        finally:
            self.channel.setblocking(True)
        for line in self.pending.decode(errors="replace").splitlines():
            try:
                _raise_if_error(line.strip())
            except StartFailed as failure:
                return failure
        return None

    def _take_call(self):
        """Accept the init's connection: the channel of the rest of the start."""
        self.channel = _socket.socket(fileno=self.listener._accept()[0])

    def init_config(self):
        """The container's config as its init wants it; log_errors: its stderr is the log."""
        return {**self.config, "log_errors": self.log_output}

    def disk(self):
        """The container disk's 'MAJ:MIN', once the init has mounted it."""
        reply = self._reply()
        if not reply.startswith("disk "):
            raise StartFailed(f"unexpected reply from the container's init: {reply!r}")
        return reply.split(" ", 1)[1]

    def release(self):
        """Let the init exec the command; raises StartFailed if it could not."""
        self.channel.sendall(b"go\n")
        if self.config.get("userns"):  # the init makes its user namespace: give it the container's ids
            self._expect(self._reply(), "userns")
            from . import userns

            userns.write_maps(self.init_pid, self.config["userns"])
            self.channel.sendall(b"ok\n")
        if self.config.get("tty"):
            self.terminal = self._receive_terminal()
        self._expect(self._reply(), "")

    def take_terminal(self):
        """run -t: the pty master, now the caller's to relay and close."""
        master, self.terminal = self.terminal, None
        return master

    def _receive_terminal(self):
        """The pty master the init sends with its "tty" line: read with its ancillary data, which recv drops."""
        data, ancillary, _, _ = self.channel.recvmsg(4096, _socket.CMSG_SPACE(4))
        rights = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)
        fds = [int.from_bytes(fd_data[i : i + 4], sys.byteorder) for level, kind, fd_data in ancillary
               if (level, kind) == rights for i in range(0, len(fd_data) - 3, 4)]  # fmt: skip
        if data == b"tty\n" and fds:
            return fds[0]
        for fd in fds:
            os.close(fd)
        self._expect(_raise_if_error(data.decode(errors="replace").strip()), "tty")

    @staticmethod
    def _expect(reply, wanted):
        if reply != wanted:
            raise StartFailed(f"unexpected reply from the container's init: {reply!r}")

    def _reply(self):
        """The init's next line ('' once exec closed the socket); StartFailed on its error."""
        while b"\n" not in self.pending:
            chunk = self.channel.recv(4096)
            if not chunk:
                break
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return _raise_if_error(line.decode(errors="replace").strip())

    def _failure(self, wait=False):
        done, status = os.waitpid(self.waiter_pid, 0 if wait else os.WNOHANG)
        if not done:
            return f"no answer after {HANDSHAKE_TIMEOUT:.0f} s"
        return f"it exited with status {shell_status(status)}; see `baleine container logs`"

    def close(self):
        if self.terminal is not None:
            os.close(self.terminal)
            self.terminal = None
        if self._unshared is not None:
            os.close(self._unshared)
            self._unshared = None
        for sock in (self.channel, self.listener):
            if sock is not None:
                sock.close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def wait(self):
        """Wait for the waiter (our child when attached); its exit code is the command's."""
        _, status = os.waitpid(self.waiter_pid, 0)
        return shell_status(status)


def init_builds_while_plugging(config, detach):
    """Whether the init is given the config at once, to build the root while the network is plugged.

    Only a forked init (attached) can be: it has it from our memory. Not one
    that sets net.* sysctls: eth0's exist only once it is plugged, and a
    default must not reach it. The others are sent the config after the plug.
    """
    return not detach and not any(key.startswith("net.") for key in config.get("sysctls", {}))


def _raise_if_error(reply):
    """An init's reply line, unless it reports an error: then StartFailed with its status."""
    if reply.startswith("error "):
        _, status, message = reply.split(" ", 2)
        raise StartFailed(message, int(status))
    return reply


def shell_status(wait_status):
    """A wait status as shells report it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _wait_for_forked_init(directory, exit_file, config, tty):
    """The waiter's job, done in Python for an attached container. Never returns.

    The init is forked, not started: it is pid 1 of the namespaces unshared
    above, and runs the same sandbox code the waiter's init would. Given the
    config, it need not wait for the network to be plugged to be sent it.
    """
    status_fd = os.open(exit_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    from . import sandbox  # before the fork: the init must not pay for it

    if tty:
        from . import terminal  # noqa: F401 - nor can it load it (fcntl, termios) from the container's root

    init = os.fork()
    if init == 0:
        try:
            os.close(status_fd)
            sandbox.main([directory], config)  # execs the command, or reports and exits
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(2, f"baleine: cannot start the container: {error}\n".encode())
        finally:
            os._exit(125)
    # Signals for the container reach its pid 1 from the starting command, as
    # they would through the shell waiter; this process only has to outlive it.
    for number in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT):
        _signal.signal(number, _signal.SIG_IGN)
    _, wait_status = os.waitpid(init, 0)
    status = shell_status(wait_status)
    os.write(status_fd, f"{status}\n".encode())
    os._exit(status)


def _close_inherited(keep=None):
    """Close every descriptor but stdio (and keep): none of the caller's may reach a container."""
    if keep is None:
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    else:
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))


def _stdio_to(log_path):
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def read_exit_file(directory):
    """The exit status the waiter wrote, or None if it has not (yet)."""
    try:
        with open(os.path.join(directory, "exit"), encoding="ascii") as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def clear_exit_file(directory):
    """Forget a recorded status once it has moved into the container's row."""
    try:
        os.unlink(os.path.join(directory, "exit"))
    except FileNotFoundError:
        pass


TIMED_OUT = 124  # as timeout(1) reports it


def exec_in(pid, cgroup, config, argv, stdio=None, timeout=None, tty=False):
    """Run argv inside the namespaces and root of container process pid; returns its exit code.

    stdio: optional (stdout fd, stderr fd) to capture output instead of inheriting ours.
    timeout: seconds after which the command is killed and 124 returned.
    tty: give it a terminal of the container's own /dev/pts, relayed to ours.
    """
    from . import sandbox, ulimits  # load them now: inside the container's root our own files are out of reach

    if tty:
        from . import terminal  # and termios with it, which the command's process needs in there

        master, slave = terminal.open_in(pid)
        config = terminal.with_term(config)
    middle = os.fork()
    if middle == 0:
        status = 125
        try:
            if tty:
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
            elif stdio:
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.dup2(stdio[0], 1)
                os.dup2(stdio[1], 2)
            _close_inherited()
            ulimits.apply(0, config)  # the container's, not our caller's
            status = _join_and_run(pid, cgroup, sandbox, dict(config, command=argv), timeout)
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(2, f"baleine: exec failed: {error}\n".encode())
        finally:
            os._exit(status)
    if not tty:
        return shell_status(os.waitpid(middle, 0)[1])
    os.close(slave)  # the command's copies are the last: when they close, the pty says EOF
    try:
        return shell_status(terminal.relay(master, middle))
    finally:
        os.close(master)


def _join_and_run(pid, cgroup, sandbox, config, timeout=None):
    """In a child: enter every namespace of pid, then fork once more into its pid namespace.

    sandbox is passed in, already imported: after setns(mnt) no module can be loaded.
    """
    cgroup.join(os.getpid())
    _enter_namespaces(pid, JOIN_ORDER, config)
    child = os.fork()
    if child == 0:
        try:
            sandbox.enter(config, joining=True)
        except sandbox.SetupError as error:
            os.write(2, f"baleine: {error}\n".encode())
            os._exit(error.status)
        finally:
            os._exit(125)
    expired = []
    if timeout:
        _signal.signal(_signal.SIGALRM, lambda *_: (expired.append(True), os.kill(child, _signal.SIGKILL)))
        _signal.setitimer(_signal.ITIMER_REAL, timeout)
    _, status = os.waitpid(child, 0)
    _signal.setitimer(_signal.ITIMER_REAL, 0)
    return TIMED_OUT if expired else shell_status(status)


def _enter_namespaces(pid, names, config):
    """setns into process pid's namespaces names, in that order, then its user namespace if it has one.

    The user namespace goes last: joining it first would cost the rights to join the others.
    """
    names = tuple(names) + (("user",) if config.get("userns") else ())
    fds = [os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC) for name in names]
    for fd in fds:
        linux.setns(fd)
        os.close(fd)


def exec_detached(pid, cgroup, config, argv, log_path):
    """Start argv inside the namespaces and root of container process pid and leave it running.

    Returns its host pid, or None if it has already ended. Its output goes to
    log_path (the container's log). Raises StartFailed when it could not start
    (no such program, bad user), with the status Docker would give.
    """
    from . import ulimits

    read_end, write_end = os.pipe()
    waiter = os.fork()
    if waiter == 0:
        try:
            os.dup2(write_end, REPORT_FD)  # inheritable: the shell and the command's Python get it
            os.setsid()  # no terminal, no caller's process group: it outlives the exec and its session
            _stdio_to(log_path)
            _close_inherited(keep=REPORT_FD)
            ulimits.apply(0, config)
            cgroup.join(os.getpid())
            _enter_namespaces(pid, ("pid",), {})  # for the children only: the shell itself stays outside
            boot = [sys.executable, "-I", "-S", "-c", DETACHED_BOOT, package_root(), str(pid)]
            environment = {CONFIG_VARIABLE: jsonlite.dumps(dict(config, command=argv))}
            os.execve("/bin/sh", ["sh", "-c", DETACHED_WAITER, "baleine-exec", *boot], environment)
        except BaseException as error:  # noqa: BLE001 - a forked child must never return
            os.write(REPORT_FD, f"125 exec failed: {error}".encode())
        finally:
            os._exit(125)
    os.close(write_end)
    try:
        report = _read_report(read_end, waiter)
    finally:
        os.close(read_end)
    if report:
        status, _, message = report.partition(" ")
        raise StartFailed(message, int(status) if status.isdigit() else 125)
    return _first_child(waiter)


def _read_report(fd, waiter):
    """What the command's setup wrote before its exec closed the pipe: nothing when it started."""
    data, deadline = b"", HANDSHAKE_TIMEOUT
    while True:
        ready, _, _ = select.select([fd], [], [], deadline)
        if not ready:
            os.killpg(waiter, _signal.SIGKILL)
            return f"125 exec failed: the command was not started within {HANDSHAKE_TIMEOUT:.0f} s"
        chunk = os.read(fd, 4096)
        if not chunk:
            return data.decode(errors="replace").strip()
        data += chunk


def _first_child(pid):
    """The one child of process pid (the detached command), or None once it has ended."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            children = handle.read().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None


def detached_child(pid):
    """exec --detach, in the Python the waiting shell started, already in the container's pid namespace.

    Join the container's other namespaces, then become the command. What goes
    wrong before the exec is written to REPORT_FD for the `exec` still waiting.
    """
    from . import sandbox  # before setns(mnt): after it the host's files are out of reach

    os.set_inheritable(REPORT_FD, False)  # the command's exec closes it: the `exec` then reads the end
    status, message = 125, ""
    try:
        config = jsonlite.loads(os.environ[CONFIG_VARIABLE])
        _enter_namespaces(pid, (name for name in JOIN_ORDER if name != "pid"), config)
        # A background job of a shell ignores SIGINT and SIGQUIT; the command must not.
        for number in (_signal.SIGINT, _signal.SIGQUIT):
            _signal.signal(number, _signal.SIG_DFL)
        sandbox.enter(config, joining=True)
    except sandbox.SetupError as error:
        status, message = error.status, str(error)
    except BaseException as error:  # noqa: BLE001 - whatever it is, the `exec` must hear it
        message = f"exec failed: {error}"
    os.write(REPORT_FD, f"{status} {message}".encode())
    os._exit(status)
