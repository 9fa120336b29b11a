"""Health checks: a shell command run inside a container, or an HTTP request to it, by `baleine check` when due.

`--health-http PATH` (port: `--health-port`, 80 by default) asks
http://127.0.0.1:PORT/PATH from inside the container's network namespace,
from baleine itself: the image needs no shell, wget or curl. An answer
200-399 is healthy, as for Kubernetes' httpGet probes. `--health-https PATH`
asks the same over TLS (port 443 by default), without checking the
certificate, as Kubernetes' HTTPS probes do: a server that only speaks TLS
is probed as it is. `--health-tcp PORT` only connects (a database, a
cache): healthy when 127.0.0.1:PORT accepts.

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


PROBES = "--health-cmd, --health-http, --health-https or --health-tcp"


def from_options(cmd=None, interval=None, retries=None, timeout=None, start_period=None, base=None, http=None,
                 port=None, tcp=None, https=None):  # fmt: skip
    """The health config, or None without a probe (given, or base's: the image's, from from_image)."""
    if sum(bool(probe) for probe in (cmd, http, https, tcp)) > 1:
        raise Invalid("--health-cmd, --health-http, --health-https and --health-tcp do not mix: give one probe")
    if port is not None and not (http or https):
        raise Invalid("--health-port needs --health-http or --health-https")
    if not (cmd or http or https or tcp) and base is None:
        if any(value is not None for value in (interval, retries, timeout, start_period)):
            raise Invalid(f"--health-interval, --health-retries, --health-timeout and --health-start-period need "
                          f"{PROBES}")  # fmt: skip
        return None
    health = dict(base or DEFAULTS)
    if cmd:
        health["cmd"] = cmd
    if http or https:
        health.pop("cmd", None)  # instead of the image's own
        option, default_port = ("--health-http", 80) if http else ("--health-https", 443)
        health.update(http=_http_path(http or https, option),
                      port=default_port if port is None else parse.port(port, "--health-port"))  # fmt: skip
        if https:
            health["tls"] = True
    if tcp:
        health.pop("cmd", None)
        health["tcp"] = parse.port(tcp, "--health-tcp")
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


def run_now(ref):
    """Probe a running container once, as check would, recording nothing: {name, healthy, said}."""
    from . import containers

    row = containers.current(ref)
    containers.require_running(row)
    containers.refuse_if_paused(row)
    settings = containers.read_config(row).get("health")
    if not settings:
        raise Invalid(f"container {row['name']!r} has no health check: give {PROBES} when creating it")
    passed, said = probe(row, settings)
    return {"name": row["name"], "healthy": passed, "said": said}


def _http_path(text, option):
    """--health-http's (or --health-https's) PATH: absolute, printable, no spaces (it goes in a request line)."""
    if not text.startswith("/") or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise Invalid(f"invalid {option} {text!r}: a path starting with /, without spaces, e.g. /healthz")
    return text


def probe(row, health):
    """Run the container's probe once: (passed, what it said). An error of baleine's (stopped meanwhile) raises."""
    if health.get("http"):
        return http_probe(row, health["port"], health["http"], health["timeout"], tls=health.get("tls", False))
    if health.get("tcp"):
        return tcp_probe(row, health["tcp"], health["timeout"])
    from .containers import exec_command

    code, out, err = exec_command(row["id"], ["/bin/sh", "-c", health["cmd"]], capture=True,
                                  timeout=health["timeout"], audit=False)  # fmt: skip
    said = (out or err or "").strip().splitlines()
    return code == 0, f"exit {code}" + (f": {said[-1][:200]}" if said else "")


def http_probe(row, port, path, timeout, tls=False):
    """GET http(s)://127.0.0.1:port/path in the container's network namespace: (status 200-399, what it said)."""
    answer = _in_network(row, port, path, timeout, tls)
    status = answer.split(" ", 2)[1] if answer.startswith("HTTP/") and answer.count(" ") >= 1 else ""
    return status.isdigit() and 200 <= int(status) < 400, answer


def tcp_probe(row, port, timeout):
    """Whether 127.0.0.1:port accepts a connection in the container's network namespace: (passed, what it said)."""
    answer = _in_network(row, port, None, timeout)
    return answer.startswith("connected"), answer


def _in_network(row, port, path, timeout, tls=False):
    """What a child that joins the container's network namespace found at 127.0.0.1:port (path: GET it).

    setns affects the process that calls it, so a child does it and reports on a
    pipe: the status line, "connected" (no path), or why there is none. It is
    killed when timeout passes.
    """
    import os
    import select

    from . import linux
    from .errors import BaleineError

    try:
        namespace = os.open(f"/proc/{int(row['pid'])}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        raise BaleineError(f"container {row['name']!r} is not running") from None
    try:
        if not linux.is_alive(row["pid"], row["pid_start"]):  # the pid was another process's by now
            raise BaleineError(f"container {row['name']!r} is not running")
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(reading)
            _ask_in_child(namespace, writing, port, path, timeout, tls)
        os.close(writing)
    finally:
        os.close(namespace)
    try:
        ready = select.select([reading], [], [], timeout)[0]
        answer = os.read(reading, 4096).decode(errors="replace") if ready else f"no answer within {timeout:g} s"
    finally:
        os.close(reading)
        try:
            os.kill(child, 9)
        except ProcessLookupError:
            pass
        os.waitpid(child, 0)
    return answer.strip() or "no answer"


def _ask_in_child(namespace, writing, port, path, timeout, tls=False):
    """In the probe's child: join the network namespace, connect (and ask), write what came. Never returns."""
    import os
    import socket

    from . import linux

    said = "no answer"
    try:
        linux.setns(namespace, linux.CLONE_NEWNET)
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            said = f"connected to 127.0.0.1:{port}"
            if path is not None:
                said = _get(connection, port, path, tls)
    except OSError as error:
        said = f"cannot connect to 127.0.0.1:{port}: {error.strerror or error}"
    finally:
        try:
            os.write(writing, said.encode()[:4096])
        finally:
            os._exit(0)


def _get(connection, port, path, tls):
    """GET path on connection, over TLS if asked: the answer's status line, or why there is none."""
    if tls:
        import ssl  # only here: its import costs a probe 10 ms

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # as Kubernetes' HTTPS probes: the server is ours, on loopback
        try:
            connection = context.wrap_socket(connection)
        except OSError as error:
            return f"no TLS from 127.0.0.1:{port}: {getattr(error, 'reason', None) or error.strerror or error}"
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: baleine-health\r\n\r\n"
    try:
        connection.sendall(request.encode())
        line = connection.makefile("rb").readline(1024).decode(errors="replace").strip()
    except OSError as error:
        return f"no answer from 127.0.0.1:{port}: {error.strerror or error}"
    return line or "the connection closed before an answer"


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
    """A health config as an image's Healthcheck (for commit); None for baleine's own probes: images cannot hold one."""
    if "cmd" not in health:
        return None
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
