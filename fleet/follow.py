"""Follow a stream on many hosts at once (a container's output, the events), as one stream of lines
prefixed with their host.

Each host runs a following verb (`baleine container logs --follow`, `baleine
events --follow`) over its own SSH channel; a thread per host reads it and
prints whole lines only, so lines of two hosts never mix. It ends when every
host's stream has ended (a container's, when it stops), or at Ctrl-C: then the
channels are closed, sshd closes each follower's output, and the followers
end on their hosts too (they watch for that), leaving nothing running there.
"""

import threading
import time

from . import client
from .errors import FleetError, HelperError, HostError
from .transport import READ_SIZE, Outcome


def follow(fleet, argv, write):
    """Print what the helper verb argv prints on every host of fleet as `HOST | line` through write(text);
    [Outcome] per host."""
    lock, channels = threading.Lock(), {}
    outcomes = {}

    def one(host):
        session = fleet.sessions[host.name]
        started = time.monotonic()
        try:
            channel = client.start(session, *argv)
            channels[host.name] = channel
            channel.settimeout(None)  # followed for as long as the container runs: no deadline
            _relay(channel, host.name, lock, write)
            code = channel.recv_exit_status()
            if code != 0:
                said = channel.makefile_stderr("rb").read().decode("utf-8", "replace").strip().splitlines()
                message = said[-1].removeprefix("baleine: error: ") if said else f"exit {code}, no message"
                raise HelperError(host.name, argv, code, message)
            outcomes[host.name] = Outcome(host, value=[], seconds=time.monotonic() - started)
        except FleetError as error:
            outcomes[host.name] = Outcome(host, error=error, seconds=time.monotonic() - started)
        except Exception as error:  # noqa: BLE001 - one host's trouble must not stop the others
            failure = HostError(host.name, f"the stream broke: {type(error).__name__}: {error}")
            outcomes[host.name] = Outcome(host, error=failure, seconds=time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(host,), daemon=True) for host in fleet.hosts]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short waits: Ctrl-C reaches this thread between them
    except KeyboardInterrupt:
        for channel in list(channels.values()):
            channel.close()
        raise
    return [outcomes[host.name] for host in fleet.hosts]


def _relay(channel, host, lock, write):
    """Copy the channel's stdout to write(), whole lines at a time, each prefixed with the host."""
    pending = b""
    while True:
        data = channel.recv(READ_SIZE)
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        if lines:
            text = "".join(f"{host} | {line.decode('utf-8', 'replace')}\n" for line in lines)
            with lock:
                write(text)
    if pending:
        with lock:
            write(f"{host} | {pending.decode('utf-8', 'replace')}\n")
