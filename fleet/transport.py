"""SSH to the hosts: one Fabric connection per host, a bounded pool, per-host outcomes.

A task opens one `Fleet` for the hosts it was given. Each host gets one
connection, opened on first use and reused for every command of the task.
`Fleet.each(work)` runs `work(session)` on every host, at most `parallel` at a
time; whatever happens on one host (refused, timed out, a bug) becomes that
host's Outcome and never stops the others.

Commands are argv lists. SSH carries a command line, so the argv is quoted
here, once, with shlex; nothing from input is ever pasted into a shell string.

Host keys are checked against the host's known_hosts file: an unknown or
changed key refuses the connection (Fabric's default would accept any key).
`trust()` records a key the user has decided to trust.
"""

import base64
import hashlib
import os
import shlex
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import FleetError, HostError, HostKeyRefused, TimedOut, Unreachable
from .node.parse import YEAR

DEFAULT_PARALLEL = 32
DEFAULT_TIMEOUT = 300
READ_SIZE = 1 << 16


@dataclass
class Completed:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass
class Outcome:
    """One host's result: value when it worked, error (a FleetError) when not."""

    host: object
    value: object = None
    error: FleetError = None
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def ok(self):
        return self.error is None


def fingerprint(key):
    """SHA256:... as ssh-keygen -l prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class _PromptSocket(socket.socket):
    """A TCP socket that sends at once (no Nagle) and acknowledges at once (quick ACK).

    paramiko leaves both to the kernel's defaults, and sshd keeps Nagle on for
    sessions without a terminal. In SSH's request-reply rhythm a small message
    then waits for the peer's delayed ACK: 40 ms per command here, where
    OpenSSH's client takes under 5. The kernel drops quick-ACK mode by itself,
    so it is asked for again before every read.
    """

    def recv(self, size, flags=0):
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return super().recv(size, flags)


def _prompt_socket(address, port, timeout):
    plain = socket.create_connection((address, port), timeout=timeout)
    sock = _PromptSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def known_hosts_entry(address, port):
    return address if port == 22 else f"[{address}]:{port}"


class Session:
    """One host's SSH connection for the length of a task."""

    def __init__(self, host, timeout=DEFAULT_TIMEOUT, ssh_config=None):
        self.host = host
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.ssh_config = ssh_config
        self.connection = None
        self.helper_ready = False  # this build of the helper is known to be on the host (client.py)
        self.notes = []  # what was done on the way (helper shipped...), for the task to report

    # ------------------------------------------------------------ connecting

    def open(self):
        if self.connection is not None:
            return self.connection
        import fabric

        host = self.host
        kwargs = {}
        if host.identity:
            kwargs["key_filename"] = os.path.expanduser(host.identity)
            kwargs["look_for_keys"] = False
        config = _fabric_config(self.ssh_config)
        connection = fabric.Connection(
            host.address,
            user=host.user,
            port=host.port,
            config=config,
            connect_timeout=max(1, int(min(host.connect_timeout, self.remaining()))),
            connect_kwargs=kwargs,
        )
        client = connection.client
        known = os.path.expanduser(host.known_hosts)
        revoked = load_known_hosts(known, client.get_host_keys()) if os.path.isfile(known) else set()
        client.set_missing_host_key_policy(_RefuseUnknown(host, known, revoked))
        try:
            if not connection.gateway:  # a ProxyJump/ProxyCommand brings its own socket
                # connection.host: the ssh config's HostName for the address, as Fabric resolved it
                sock = _prompt_socket(connection.host, connection.port, connection.connect_timeout)
                connection.connect_kwargs["sock"] = sock
            connection.open()
        except BaseException:  # noqa: BLE001 - closed, then re-raised as a FleetError or unchanged
            client.close()  # no half-open transport thread left behind
            raise self._connect_error(sys.exc_info()[1], known) from None
        self.connection = connection
        return connection

    def _connect_error(self, error, known):
        """The FleetError saying why connecting failed."""
        import paramiko

        host = self.host
        try:
            raise error
        except FleetError:
            return error
        except paramiko.BadHostKeyException as error:
            return HostKeyRefused(
                host.name,
                f"host key CHANGED for {host.address}: offered {fingerprint(error.key)}, {known} has "
                f"{fingerprint(error.expected_key)}. If the host was really reinstalled: "
                f"invoke hosts.trust --hosts {host.name} --replace",
            )
        except paramiko.AuthenticationException as error:
            identity = f" with {host.identity}" if host.identity else ""
            return Unreachable(host.name, f"authentication failed for {host.user}@{host.address}{identity}: {error}")
        except (socket.timeout, TimeoutError):
            return Unreachable(host.name, f"no answer from {host.address}:{host.port} (timed out)")
        except paramiko.ssh_exception.NoValidConnectionsError as error:
            # paramiko tried each address of the name; say why the last one failed.
            reasons = {type(cause) for cause in error.errors.values()}
            if reasons == {ConnectionRefusedError}:
                return Unreachable(host.name, f"connection refused by {host.address}:{host.port} (is sshd running?)")
            return Unreachable(host.name, f"cannot connect to {host.address}:{host.port}: {error.strerror}")
        except ConnectionRefusedError:
            return Unreachable(host.name, f"connection refused by {host.address}:{host.port} (is sshd running?)")
        except socket.gaierror as error:
            return Unreachable(host.name, f"cannot resolve {host.address!r}: {error.strerror}")
        except (paramiko.SSHException, OSError, EOFError) as error:
            return Unreachable(host.name, f"{host.address}:{host.port}: {error or type(error).__name__}")
        except BaseException as other:  # noqa: BLE001 - KeyboardInterrupt and bugs pass through unchanged
            return other

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut(self.host.name, f"gave up after the per-host timeout of {self.timeout:g} s")
        return left

    # ------------------------------------------------------------ commands

    def command_line(self, argv):
        """The remote command line for argv (with sudo when the inventory says so)."""
        if self.host.sudo and self.host.user != "root":
            argv = ["sudo", "-n", "--", *argv]
        return shlex.join(argv)

    def run(self, argv, stdin=None, raw=None):
        """Run argv on the host; stdin: bytes or an iterable of bytes. Returns Completed.

        raw: a shell command line to run instead of argv (only ever built by
        this package from quoted pieces).
        """
        channel = self._exec(raw or self.command_line(argv))
        stderr = _StderrReader(channel)
        try:
            if stdin is not None:
                for piece in [stdin] if isinstance(stdin, bytes) else stdin:
                    channel.sendall(piece)
                channel.shutdown_write()
            stdout = b"".join(_chunks(channel, self))
            code = channel.recv_exit_status()
        except (socket.timeout, TimeoutError):
            raise TimedOut(self.host.name, f"{argv or raw} did not finish within {self.timeout:g} s") from None
        finally:
            channel.close()
            stderr.join()
        return Completed(code, stdout, stderr.data)

    def start(self, argv, raw=None):
        """Start argv (or raw) and return its channel, for a caller that reads stdout itself and closes it."""
        return self._exec(raw or self.command_line(argv))

    def _exec(self, command_line):
        import paramiko

        connection = self.open()
        try:
            channel = connection.client.get_transport().open_session(timeout=self.remaining())
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise Unreachable(self.host.name, f"the SSH connection broke: {error}") from None
        channel.settimeout(self.remaining())
        channel.exec_command(command_line)
        return channel


def _chunks(channel, session):
    while True:
        channel.settimeout(session.remaining())
        data = channel.recv(READ_SIZE)
        if not data:
            return
        yield data


class _StderrReader(threading.Thread):
    """Drains a channel's stderr meanwhile: a chatty command must not stall on a full window."""

    def __init__(self, channel):
        super().__init__(daemon=True)
        self.channel = channel
        self.parts = []
        self.start()

    def run(self):
        try:
            while True:
                data = self.channel.recv_stderr(READ_SIZE)
                if not data:
                    return
                self.parts.append(data)
        except (OSError, EOFError):
            return

    @property
    def data(self):
        return b"".join(self.parts)


def _fabric_config(ssh_config):
    """Fabric's settings, reading the inventory's ssh config file (as ssh would) when it exists."""
    import fabric

    path = os.path.expanduser(ssh_config) if ssh_config else None
    if path and os.path.isfile(path):
        return fabric.Config(runtime_ssh_path=path)
    return fabric.Config()


def load_known_hosts(path, keys):
    """Add an OpenSSH known_hosts file's keys to paramiko HostKeys keys; returns the revoked ones.

    paramiko knows no markers: an @cert-authority or @revoked line made its own
    loader raise, so no host could be reached. Here @revoked keys are returned
    (and never trusted, whatever else the file says); @cert-authority lines
    are skipped (paramiko checks no host certificates), as is any line it
    cannot parse. Returns {(key type, base64)}.
    """
    from paramiko.hostkeys import HostKeyEntry, InvalidHostKey
    from paramiko.ssh_exception import SSHException

    revoked, entries = set(), []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if fields[0] == "@revoked" and len(fields) >= 4:
                revoked.add((fields[2], fields[3]))
            if fields[0].startswith("@"):
                continue
            try:
                entry = HostKeyEntry.from_line(" ".join(fields[:3]))
            except (InvalidHostKey, SSHException, ValueError):
                continue
            if entry is not None:
                entries.append(entry)
    for entry in entries:
        if (entry.key.get_name(), entry.key.get_base64()) not in revoked:
            for name in entry.hostnames:
                keys.add(name, entry.key.get_name(), entry.key)
    return revoked


class _RefuseUnknown:
    """paramiko policy: an unknown host key ends the connection with advice."""

    def __init__(self, host, known, revoked=frozenset()):
        self.host = host
        self.known = known
        self.revoked = revoked

    def missing_host_key(self, client, hostname, key):
        if (key.get_name(), key.get_base64()) in self.revoked:
            raise HostKeyRefused(
                self.host.name, f"host key {fingerprint(key)} of {self.host.address} is marked @revoked in {self.known}"
            )
        raise HostKeyRefused(
            self.host.name,
            f"unknown host key {fingerprint(key)} for {self.host.address} (not in {self.known}); "
            f"if that is the host's key: invoke hosts.trust --hosts {self.host.name}",
        )


class Fleet:
    """The sessions of one task, one per host, and fan-out over them."""

    def __init__(self, hosts, parallel=DEFAULT_PARALLEL, timeout=DEFAULT_TIMEOUT, ssh_config=None):
        if not isinstance(parallel, int) or parallel < 1:
            raise FleetError(f"invalid --parallel {parallel!r}: use a whole number of hosts, 1 or more")
        if not isinstance(timeout, (int, float)) or not 0 < timeout <= YEAR:  # sockets overflow far below inf
            raise FleetError(f"invalid --timeout {timeout!r}: use a number of seconds above 0, at most {YEAR} (a year)")
        self.hosts = list(hosts)
        self.parallel = parallel
        self.sessions = {host.name: Session(host, timeout, ssh_config) for host in self.hosts}

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def close(self):
        for session in self.sessions.values():
            session.close()

    def each(self, work, hosts=None):
        """[Outcome] of work(session) on each host (all of them, or `hosts`), in order."""
        chosen = self.hosts if hosts is None else list(hosts)
        if not chosen:
            return []
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(chosen))) as pool:
            futures = [pool.submit(self._one, host, work) for host in chosen]
            return [future.result() for future in futures]

    def _one(self, host, work):
        session = self.sessions[host.name]
        started, noted = time.monotonic(), len(session.notes)
        try:
            value = work(session)
            return Outcome(host, value=value, seconds=time.monotonic() - started, notes=session.notes[noted:])
        except FleetError as error:
            return Outcome(host, error=error, seconds=time.monotonic() - started, notes=session.notes[noted:])
        except Exception as error:  # noqa: BLE001 - one host's bug must not stop the others
            failure = HostError(host.name, f"internal error: {type(error).__name__}: {error}")
            return Outcome(host, error=failure, seconds=time.monotonic() - started)


def trust(host, replace=False, timeout=10):
    """Fetch the host's key and record it in its known_hosts; returns (fingerprint, what was done)."""
    import paramiko

    sock = socket.create_connection((host.address, host.port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    finally:
        transport.close()
    path = os.path.expanduser(host.known_hosts)
    keys = paramiko.HostKeys()
    revoked = load_known_hosts(path, keys) if os.path.isfile(path) else set()
    if (key.get_name(), key.get_base64()) in revoked:
        raise HostKeyRefused(host.name, f"{path} marks the key {host.address} offers, {fingerprint(key)}, @revoked")
    entry = known_hosts_entry(host.address, host.port)
    known = keys.lookup(entry) or {}
    if known.get(key.get_name()) == key:
        return fingerprint(key), "already trusted"
    if known and not replace:
        raise HostKeyRefused(
            host.name,
            f"{path} already holds another key for {entry}; the host now offers {fingerprint(key)}. "
            f"Add --replace only if you know why it changed",
        )
    record_key(path, entry, key)
    return fingerprint(key), "replaced" if known else "added"


def record_key(path, entry, key):
    """Make key the one known_hosts trusts for entry, editing the file as text.

    Only what names entry changes: comments, @cert-authority and @revoked
    lines and other hosts stay as they were (paramiko's HostKeys.save drops
    every line it cannot parse, markers included). A line naming several
    hosts loses only entry. The file is replaced whole, its mode kept.
    """
    from .node import state

    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        lines, mode = [], 0o600
    kept = [line for line in (_without_entry(line, entry) for line in lines) if line is not None]
    kept.append(f"{entry} {key.get_name()} {key.get_base64()}")
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    with state.replacing(path, mode) as out:
        out.write(("\n".join(kept) + "\n").encode())


def _without_entry(line, entry):
    """line with entry taken out of its host names; None when it named entry alone."""
    fields = line.split()
    if len(fields) < 3 or fields[0].startswith(("#", "@")):
        return line  # a comment, a blank line or a marker line: never ours to change
    names = fields[0].split(",")
    others = [name for name in names if not _is_entry(name, entry)]
    if len(others) == len(names):
        return line
    return line.replace(fields[0], ",".join(others), 1) if others else None


def _is_entry(name, entry):
    """True if a known_hosts host name (plain or hashed, |1|salt|hash) is entry."""
    if name.startswith("|1|"):
        import paramiko

        return paramiko.HostKeys.hash_host(entry, name) == name
    return name == entry
