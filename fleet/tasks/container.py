"""`invoke container.*`: the node's container verbs on many hosts at once."""

from invoke import Collection

from .. import client
from ..errors import FleetError
from .common import (
    check_words,
    checked,
    each_host,
    finish,
    fleet_task,
    helps,
    open_fleet,
    result_rows,
    shell_words,
    stream,
    task,
)


@task(
    iterable=["network", "env"],
    help=helps(
        image="image name (on each host: see invoke image.push)",
        name="container name (the same on every host)",
        network="network to join, NET or NET:IP (repeat for more)",
        env="environment variable K=V (repeat for more)",
        memory="memory limit, e.g. 256M",
        cpus="CPU limit, e.g. 0.5",
        restart="no, on-failure[:N], always or unless-stopped",
        health_cmd="health probe run by baleine check, e.g. 'wget -q -O- localhost'",
        command="command and arguments, split like a shell would (default: the image's)",
        options="more `baleine container run` options, e.g. '--read-only --pids-limit 64'",
    ),
)
@fleet_task
def run(c, image, hosts, name=None, network=None, env=None, memory=None, cpus=None, restart=None,
        health_cmd=None, command="", options="", json_=False, parallel=32, timeout=300):  # fmt: skip
    """Start a container (detached) from IMAGE on each host."""
    args = ["container", "run", "--detach"]
    for flag, value in (("--name", name), ("--memory", memory), ("--cpus", cpus), ("--restart", restart),
                        ("--health-cmd", health_cmd)):  # fmt: skip
        if value:
            args += [flag, value]
    for value in network or []:
        args += ["--network", value]
    for value in env or []:
        args += ["--env", value]
    args += [*shell_words(options, "--options"), image, *shell_words(command, "--command")]
    check_words(args)
    each_host(hosts, parallel, timeout, json_, args, lambda item: f"{item['name']} running")


@task(help=helps(name="container name or id"))
@fleet_task
def start(c, name, hosts, json_=False, parallel=32, timeout=300):
    """Start a stopped container on each host."""
    each_host(hosts, parallel, timeout, json_, ["container", "start", name])


TIME_HELP = "seconds from its stop signal to SIGKILL (default: the container's --stop-timeout, 10)"


@task(help=helps(name="container name or id", time=TIME_HELP))
@fleet_task
def stop(c, name, hosts, time=None, json_=False, parallel=32, timeout=300):
    """Stop a container on each host (its stop signal, SIGTERM unless set; SIGKILL after --time)."""
    each_host(hosts, parallel, timeout, json_, ["container", "stop", name, *_time(time)])


@task(help=helps(name="container name or id", time=TIME_HELP))
@fleet_task
def restart(c, name, hosts, time=None, json_=False, parallel=32, timeout=300):
    """Stop a container if it runs, then start it again, on each host."""
    each_host(hosts, parallel, timeout, json_, ["container", "restart", name, *_time(time)])


@task(help=helps(name="container name or id", signal="e.g. SIGHUP to make nginx reload (default SIGKILL)"))
@fleet_task
def kill(c, name, hosts, signal="SIGKILL", json_=False, parallel=32, timeout=300):
    """Send a signal to a running container on each host (SIGKILL unless --signal)."""
    from ..node import parse

    checked(parse.signal_name, signal, "--signal")
    each_host(hosts, parallel, timeout, json_, ["container", "kill", "--signal", signal, name])


@task(help=helps(name="container name or id"))
@fleet_task
def pause(c, name, hosts, json_=False, parallel=32, timeout=300):
    """Freeze a running container on each host (memory kept, no CPU used) until container.unpause."""
    each_host(hosts, parallel, timeout, json_, ["container", "pause", name], lambda _item: "paused")


@task(help=helps(name="container name or id"))
@fleet_task
def unpause(c, name, hosts, json_=False, parallel=32, timeout=300):
    """Let a paused container run again on each host."""
    each_host(hosts, parallel, timeout, json_, ["container", "unpause", name], lambda _item: "running")


def _time(time):
    """--time for the helper, checked here as each host would check it."""
    from ..node import parse

    return [] if time is None else ["--time", str(checked(parse.seconds, time, "--time"))]


@task(help=helps(name="container name or id", force="stop it first if it runs"))
@fleet_task
def rm(c, name, hosts, force=False, json_=False, parallel=32, timeout=300):
    """Remove a container (its disk copy and configuration) on each host."""
    each_host(hosts, parallel, timeout, json_, ["container", "rm", name, *(["--force"] if force else [])])


@task(help=helps(name="container name or id", command="the command, split like a shell would",
                 detach="leave it running there, its output in the container's log"))  # fmt: skip
@fleet_task
def exec(c, name, command, hosts, detach=False, json_=False, parallel=32, timeout=300):
    """Run a command in a running container on each host; shows each host's output and exit code."""
    words = shell_words(command, "COMMAND")
    if not words:
        raise FleetError("COMMAND is empty: give the command to run in the container, e.g. 'cat /etc/hostname'")
    args = ["container", "exec", *(["--detach"] if detach else []), name, *words]
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, *args))
    finish(outcomes, json_, ("HOST", "RESULT"), result_rows(outcomes, _started if detach else _ran))


def _ran(data):
    return f"exit {data['exit_code']}: {(data['stdout'] or data['stderr']).strip()}"


def _started(data):
    return f"started, host pid {data['pid']}" if data["pid"] else "started, and already ended"


@task(help=helps(name="container name or id", tail="only the last N lines (default 20)",
                 follow="then every new line as it comes, until the containers stop or Ctrl-C"))  # fmt: skip
@fleet_task
def logs(c, name, hosts, tail=20, follow=False, json_=False, parallel=32, timeout=300):
    """The end of a container's output on each host, each line prefixed with its host."""
    from ..node import parse

    checked(parse.positive_int, tail, "--tail")  # as each host reads it
    if follow:
        stream(hosts, ["container", "logs", "--follow", "--tail", str(tail), name], json_, timeout)
        return
    with open_fleet(hosts, parallel, timeout) as fleet:
        outcomes = fleet.each(lambda session: client.call(session, "container", "logs", name, "--tail", str(tail)))
    if not json_:
        for outcome in outcomes:
            for line in outcome.value["lines"] if outcome.ok else []:
                print(f"{outcome.host.name} | {line.rstrip()}")
    failed = [outcome for outcome in outcomes if not outcome.ok]
    finish(outcomes, json_, ("HOST", "RESULT") if failed else None, result_rows(failed))


namespace = Collection("container", run, start, stop, kill, pause, unpause, restart, rm, exec, logs)
