"""`invoke deploy`: an app spec -> a plan per host -> a rolling, health-gated apply.

Containers of an app are named APP-VERSION-N: VERSION is a short hash of
everything that shapes them (image digest, command, env, limits, health...),
so the fleet view alone says which version runs where, and deploying the same
spec twice finds nothing to do.

For each app (backends first, then proxies), on every host at once:
  1. push the image where its sha256 is missing, make sure the network is there
     (its VXLAN peers current), start the new version's containers;
  2. wait until each answers its health check (logs shown when one never does;
     it is then removed and that host keeps its old version, still serving);
then:
  3. point the proxies at what now serves: the new version where it came up,
     the old one where it did not (nginx reloads without dropping connections);
  4. stop the old version's containers, keeping the last one stopped for
     `invoke rollback`, and remove anything older.
"""

import ipaddress
import re
import socket
import time
from dataclasses import dataclass, field

from . import client, proxy
from .errors import FleetError, HelperError, HostError

NAME = re.compile(r"(?P<app>[a-z][a-z0-9-]*)-(?P<version>[0-9a-f]{7})-(?P<index>[0-9]+)")
HEALTH_WAIT = 60.0


# ----------------------------------------------------------------- planning (pure)


@dataclass
class HostPlan:
    host: str
    app: str
    version: str
    push_image: bool = False
    network: dict = None  # {"action": "create"|"peers", ...} or None
    start: list = field(default_factory=list)  # new containers (this version)
    revive: list = field(default_factory=list)  # this version's, stopped: start them again
    retire: list = field(default_factory=list)  # other versions' running containers
    remove: list = field(default_factory=list)  # versions older than the one kept for rollback

    def changes(self):
        return bool(self.push_image or self.network or self.start or self.revive or self.retire or self.remove)

    def describe(self):
        if not self.changes():
            return "no change"
        parts = []
        if self.push_image:
            parts.append("push image")
        if self.network:
            parts.append(f"network {self.network['action']}")
        if self.start:
            parts.append(f"start {', '.join(self.start)}")
        if self.revive:
            parts.append(f"restart {', '.join(self.revive)}")
        if self.retire:
            parts.append(f"then stop {', '.join(self.retire)}")
        if self.remove:
            parts.append(f"remove {', '.join(self.remove)}")
        return "; ".join(parts)


def parse_name(name):
    match = NAME.fullmatch(name)
    return match.groupdict() if match else None


def app_containers(app_name, containers):
    """{version: [items]} of the app's containers on one host, newest version first."""
    versions = {}
    for item in containers:
        parsed = parse_name(item["name"])
        if parsed and parsed["app"] == app_name:
            versions.setdefault(parsed["version"], []).append(item)
    return dict(sorted(versions.items(), key=lambda pair: max(i["created"] for i in pair[1]), reverse=True))


def plan_host(app, version, host, view, network=None):
    """What to do on one host for one app. view: {"containers", "images", "networks"} of that host."""
    wanted = [f"{app.name}-{version}-{index}" for index in range(1, app.replicas + 1)]
    plan = HostPlan(host=host, app=app.name, version=version)
    plan.push_image = not any(image["name"] == app.image and image.get("digest") == view.get("digest")
                              for image in view["images"])  # fmt: skip
    plan.network = network
    by_name = {item["name"]: item for item in view["containers"]}
    for name in wanted:
        item = by_name.get(name)
        if item is None:
            plan.start.append(name)
        elif item["status"] != "running":
            plan.revive.append(name)
    versions = app_containers(app.name, view["containers"])
    others = [v for v in versions if v != version]
    running_other = [v for v in others if any(i["status"] == "running" for i in versions[v])]
    # Keep app.keep other versions for rollback, newest first: the one running now, if any,
    # then the newest stopped ones. Older versions go once this deploy changes something.
    kept = (running_other + [v for v in others if v not in running_other])[: app.keep]
    for other in others:
        for item in versions[other]:
            if item["status"] == "running":
                plan.retire.append(item["name"])
            elif other not in kept and (plan.start or plan.revive or running_other):
                plan.remove.append(item["name"])
    surplus = [i["name"] for i in versions.get(version, []) if i["name"] not in wanted]
    plan.remove += surplus  # replicas lowered
    return plan


def slices(network_spec):
    """The per-host slices of the spec's subnet."""
    subnet = ipaddress.ip_network(network_spec["subnet"])
    extra = network_spec["slices"].bit_length() - 1
    return list(subnet.subnets(prefixlen_diff=extra))


def plan_networks(network_spec, hosts, views, addresses):
    """{host: None | {"action", ...}} for the spec's network on each host.

    A host that has the network keeps its slice; a new one gets the lowest free
    slice. Each host's peers are the other deployed hosts' addresses.
    """
    if not network_spec:
        return {host: None for host in hosts}
    name = network_spec["name"]
    pieces = slices(network_spec)
    taken, current = set(), {}
    for host in hosts:
        for row in views[host]["networks"]:
            if row["name"] == name:
                current[host] = row
                if row.get("range"):
                    taken.add(row["range"])
    result = {}
    for host in hosts:
        peers = sorted(addresses[other] for other in hosts if other != host)
        row = current.get(host)
        if row is None:
            free = [piece for piece in pieces if str(piece) not in taken]
            if not free:
                raise FleetError(f"network {name}: no slice of {network_spec['subnet']} left for {host} "
                                 f"(raise network.slices)")  # fmt: skip
            piece = free[0]
            taken.add(str(piece))
            subnet = ipaddress.ip_network(network_spec["subnet"])
            gateway = next(a for a in piece if a != subnet.network_address)
            result[host] = {"action": "create", "range": str(piece), "gateway": str(gateway), "peers": peers}
        elif row.get("subnet") != network_spec["subnet"]:
            raise FleetError(f"{host}: network {name} exists with subnet {row.get('subnet')}, "
                             f"the spec says {network_spec['subnet']}: remove it there first")  # fmt: skip
        elif sorted(p for p in (row.get("peers") or "").split(",") if p) != peers:
            result[host] = {"action": "peers", "peers": peers}
        else:
            result[host] = None
    return result


# ----------------------------------------------------------------- talking to hosts


def host_view(session):
    """What the planner needs from one host."""
    return {
        "containers": client.call(session, "container", "list", "--all"),
        "images": client.call(session, "image", "list"),
        "networks": client.call(session, "network", "list"),
    }


def underlay_address(host):
    """The host's IP address as its peers reach it (VXLAN needs addresses, not names)."""
    try:
        return socket.gethostbyname(host.address)
    except OSError as error:
        raise HostError(host.name, f"cannot resolve {host.address}: {error}") from None


def run_argv(app, spec, name, host_name, extra_env=()):
    """The `baleine container run` arguments for one container of app."""
    argv = ["container", "run", "--detach", "--name", name, "--restart", app.restart,
            "--env", f"BALEINE_HOST={host_name}", "--env", f"BALEINE_APP={app.name}"]  # fmt: skip
    for key, value in sorted(app.env.items()):
        argv += ["--env", f"{key}={value}"]
    for key, value in extra_env:
        argv += ["--env", f"{key}={value}"]
    if app.secrets:
        argv += ["--env-file", "-"]  # the secrets, on stdin: app.secret_input()
    argv += ["--network", "host" if app.network == "host" else spec.network["name"]]
    optional = (("--memory", app.memory), ("--cpus", app.cpus), ("--pids-limit", app.pids),
                ("--log-size", app.log_size), ("--stop-signal", app.stop_signal),
                ("--stop-timeout", app.stop_timeout))  # fmt: skip
    for flag, value in optional:
        if value:
            argv += [flag, str(value)]
    if app.init:
        argv.append("--init")
    for volume in app.volumes:  # shared by the replicas and by the next version: state outlives a deploy
        argv += ["--volume", volume]
    for key, value in sorted(app.sysctls.items()):
        argv += ["--sysctl", f"{key}={value}"]
    for entry in app.add_hosts:
        argv += ["--add-host", entry]
    probe = app.probe_options()
    if probe:
        interval = app.health.get("interval", 10)
        argv += [*probe, "--health-interval", str(interval),
                 "--health-retries", str(app.health.get("retries", 3)),
                 "--health-timeout", str(app.health.get("timeout", 5))]  # fmt: skip
        if "start_period" in app.health:
            argv += ["--health-start-period", str(app.health["start_period"])]
    return [*argv, app.image, *app.command]


def prepare_host(session, plan, app, spec, image_source, extra_env=()):
    """Steps 1 and 2 on one host; returns the names now serving there (new version) or raises."""
    from . import images as pushing

    if plan.push_image and pushing.plan(session, image_source) == "send":
        pushing.send(session, image_source)
    if plan.network:
        _ensure_network(session, spec.network, plan.network)
    for name in plan.revive:
        client.call(session, "container", "start", name)
    started = []
    try:
        for name in plan.start:
            client.call(session, *run_argv(app, spec, name, session.host.name, extra_env), stdin=app.secret_input())
            started.append(name)
        for name in plan.start + plan.revive:
            wait_healthy(session, app, name)
    except FleetError:
        for name in started:  # a version that does not come up is not left behind
            try:
                client.call(session, "container", "rm", "--force", name)
            except FleetError:
                pass
        raise
    return [f"{app.name}-{plan.version}-{index}" for index in range(1, app.replicas + 1)]


def _ensure_network(session, network_spec, action):
    name = network_spec["name"]
    if action["action"] == "create":
        argv = ["network", "create", name, "--subnet", network_spec["subnet"], "--range", action["range"],
                "--gateway", action["gateway"], "--vxlan", str(network_spec["vxlan"])]  # fmt: skip
        for peer in action["peers"]:
            argv += ["--peer", peer]
        client.call(session, *argv)
    else:
        client.call(session, "network", "peers", name, *action["peers"])


def wait_healthy(session, app, name, timeout=None):
    """Until the container's health check passes (or, without one, it still runs after a second)."""
    timeout = timeout or app.health.get("wait", HEALTH_WAIT)
    deadline = time.monotonic() + timeout
    while True:
        if app.probe_options():  # the probe it was created with, run now by the helper
            try:
                if client.call(session, "container", "healthcheck", name)["healthy"]:
                    return
            except HelperError:  # not running (any more): said below, with its last output
                pass
        else:
            time.sleep(1.0)
            [info] = [i for i in client.call(session, "container", "list", "--all") if i["name"] == name]
            if info["status"] == "running":
                return
        status = [i for i in client.call(session, "container", "list", "--all") if i["name"] == name]
        if time.monotonic() > deadline or (status and status[0]["status"] != "running"):
            logs = client.call(session, "container", "logs", name, "--tail", "10")["lines"]
            shown = " | ".join(line.rstrip() for line in logs) or "(no output)"
            raise HostError(session.host.name, f"{name} never became healthy within {timeout:g} s; "
                                               f"its last output: {shown}")  # fmt: skip
        time.sleep(min(1.0, app.health.get("interval", 1)))


def retire(session, plan):
    """Step 4: stop the old version (kept for rollback), remove older ones; all at once."""
    from concurrent.futures import ThreadPoolExecutor

    calls = [("container", "stop", name) for name in plan.retire]  # each with its own signal and timeout
    calls += [("container", "rm", "--force", name) for name in plan.remove]
    if calls:  # one SSH connection carries them side by side: a slow stop does not queue the others
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            for future in [pool.submit(client.call, session, *args) for args in calls]:
                future.result()


def serving(app, containers, version):
    """Upstream addresses:port of one host's containers of `version` that run and are not unhealthy."""
    found = []
    for item in containers:
        parsed = parse_name(item["name"])
        if not parsed or parsed["app"] != app.name or parsed["version"] != version:
            continue
        if item["status"] == "running" and item.get("health") != "unhealthy":
            found += [f"{n['address']}:{app.port}" for n in item["networks"]]
    return found


def current_version(app, containers):
    """The version running on a host (the newest if several), or None."""
    for version, items in app_containers(app.name, containers).items():
        if any(item["status"] == "running" for item in items):
            return version
    return None


def switch_proxy(session, proxy_app, upstreams):
    """Write the proxy's nginx config inside each of its containers and reload it gracefully."""
    config = proxy.nginx_config(upstreams, proxy_app.proxy["listen"])
    for item in client.call(session, "container", "list"):
        parsed = parse_name(item["name"])
        if parsed and parsed["app"] == proxy_app.name:
            reply = client.call(session, "container", "exec", item["name"], "/bin/sh", "-c", proxy.RELOAD, "sh",
                                config)  # fmt: skip
            if reply["exit_code"] != 0:
                raise HelperError(session.host.name, ["container", "exec", item["name"]], reply["exit_code"],
                                  f"nginx refused the new configuration: {reply['stderr'].strip()}")  # fmt: skip


# ----------------------------------------------------------------- the whole deploy


@dataclass
class Report:
    """Per host: what was planned and done, and the error that stopped it."""

    lines: dict = field(default_factory=dict)  # host -> [text]
    failed: dict = field(default_factory=dict)  # host -> FleetError

    def note(self, host, text):
        self.lines.setdefault(host, []).append(text)

    def fail(self, host, error):
        self.failed.setdefault(host, error)

    def summary(self, hosts):
        rows = []
        for host in hosts:
            if host in self.failed:
                rows.append([host, f"FAILED: {self.failed[host].reason}"])
            else:
                done = [line for line in self.lines.get(host, []) if not line.endswith("no change")]
                rows.append([host, "; ".join(done) if done else "no change"])
        return rows


def prepare_app(app):
    """A proxy app gets the proxy's command and health check unless the spec gives its own."""
    if app.proxy:
        app.command = app.command or proxy.command()
        app.network = app.network or "host"
        if not app.health:
            app.health = {"cmd": proxy.health_command(), "interval": 1}
    return app


def run(fleet, spec, image_source, dry_run=False, rollback=False, say=print):
    """Deploy (or roll back) every app of spec on the fleet's hosts; returns a Report."""
    report = Report()
    views = {outcome.host.name: outcome for outcome in fleet.each(host_view)}
    for name, outcome in views.items():
        if not outcome.ok:
            report.fail(name, outcome.error)
    live = [host for host in fleet.hosts if host.name not in report.failed]
    addresses = {}
    for host in live:
        try:
            addresses[host.name] = underlay_address(host)
        except HostError as error:
            report.fail(host.name, error)
    live = [host for host in live if host.name not in report.failed]
    networks = plan_networks(spec.network, [h.name for h in live], {h.name: views[h.name].value for h in live},
                             addresses)  # fmt: skip
    for app in spec.ordered():
        prepare_app(app)
        targets = [h for h in live if h.name not in report.failed and (not app.hosts or h.name in app.hosts)]
        source = image_source(app, dry_run)
        version = app.version(source.digest if source else "unbuilt")
        plans = {}
        for host in targets:
            view = dict(views[host.name].value, digest=source.digest if source else None)
            if rollback:
                plans[host.name] = _rollback_plan(app, host.name, view)
                if plans[host.name] is None:
                    say(f"{host.name}: {app.name}: no earlier version kept, nothing to roll back")
            else:
                network = None if app.network == "host" else networks.get(host.name)
                plans[host.name] = plan_host(app, version, host.name, view, network)
        for host in targets:
            if plans.get(host.name):
                say(f"{host.name}: {app.name} {plans[host.name].version}: {plans[host.name].describe()}")
                report.note(host.name, f"{app.name}: {plans[host.name].describe()}")
        if dry_run:
            continue
        _apply_app(fleet, spec, app, plans, source, report, say)
        if app.network != "host":
            networks = {host: None for host in networks}  # made by the first app that joined it
    return report


def _apply_app(fleet, spec, app, plans, source, report, say):
    changed = [host for host in fleet.hosts if plans.get(host.name) and plans[host.name].changes()]
    extra = []
    if app.proxy:
        upstreams = gather_upstreams(fleet, spec.apps[app.proxy["fronts"]], {}, report)
        extra = [(proxy.ENV_NAME, proxy.nginx_config(upstreams, app.proxy["listen"]))]
    outcomes = fleet.each(lambda s: prepare_host(s, plans[s.host.name], app, spec, source, extra), hosts=changed)
    ready = {}
    for outcome in outcomes:
        if outcome.ok:
            ready[outcome.host.name] = plans[outcome.host.name].version
            say(f"{outcome.host.name}: {app.name} {plans[outcome.host.name].version} up and healthy")
        else:
            report.fail(outcome.host.name, outcome.error)
            say(f"{outcome.host.name}: {app.name}: {outcome.error.reason}")
    if not app.proxy and changed:
        for proxy_app in [a for a in spec.apps.values() if a.proxy.get("fronts") == app.name]:
            upstreams = gather_upstreams(fleet, app, ready, report)
            proxy_hosts = [h for h in fleet.hosts if h.name not in report.failed and
                           (not proxy_app.hosts or h.name in proxy_app.hosts)]  # fmt: skip
            for outcome in fleet.each(lambda s, p=proxy_app, u=upstreams: switch_proxy(s, p, u), hosts=proxy_hosts):
                if not outcome.ok:
                    report.fail(outcome.host.name, outcome.error)
                else:
                    say(f"{outcome.host.name}: {proxy_app.name} now sends to {len(upstreams)} backends of {app.name}")
    done = [host for host in changed if host.name in ready and host.name not in report.failed]
    for outcome in fleet.each(lambda s: retire(s, plans[s.host.name]), hosts=done):
        if not outcome.ok:
            report.fail(outcome.host.name, outcome.error)
        elif plans[outcome.host.name].retire:
            say(f"{outcome.host.name}: {app.name}: stopped {', '.join(plans[outcome.host.name].retire)}")


def gather_upstreams(fleet, app, ready, report):
    """Every serving backend of app on every reachable host: the new version where it came up."""
    upstreams = []
    hosts = [host for host in fleet.hosts if not app.hosts or host.name in app.hosts]
    for outcome in fleet.each(lambda s: client.call(s, "container", "list"), hosts=hosts):
        if not outcome.ok:
            report.fail(outcome.host.name, outcome.error)
            continue
        version = ready.get(outcome.host.name) or current_version(app, outcome.value)
        if version:
            upstreams += serving(app, outcome.value, version)
    return upstreams


def _rollback_plan(app, host, view):
    """Start the version kept for rollback (the newest stopped one) and stop the current one; None: none kept."""
    versions = app_containers(app.name, view["containers"])
    running = [v for v, items in versions.items() if any(i["status"] == "running" for i in items)]
    kept = [v for v in versions if v not in running]
    if not kept:
        return None
    plan = HostPlan(host=host, app=app.name, version=kept[0])
    plan.revive = [item["name"] for item in versions[kept[0]]]
    plan.retire = [item["name"] for version in running for item in versions[version]]
    return plan
