"""`invoke deploy` end to end on a 2-node lab: VXLAN farm network, nginx proxy, rolling updates."""

import os
import threading
import time
import urllib.request

import pytest
from hostnet import free_subnet
from labfleet import CONTROL_ROOT, Lab, build_nginx_image

from fleet import lab

pytestmark = pytest.mark.integration

SPEC = """
[network]
name = "farm"
subnet = "{subnet}"

[apps.web]
image = "webfarm-page"
build = "busybox"
size = "32M"
replicas = 3
env = {{ PAGE = "{page}" }}
secrets = ["FARM_TOKEN"]
command = ["/bin/sh", "-c", '''mkdir -p /www && echo "$PAGE $(hostname) $BALEINE_HOST" > /www/index.html
echo "$PAGE" >> /var/starts/log
trap 'kill $!; exit 0' TERM; httpd -f -p 80 -h /www & wait''']
volumes = ["starts:/var/starts"]
add_hosts = ["gw:host-gateway"]
sysctls = {{ "net.core.somaxconn" = 1024 }}
memory = "32M"
port = 80
health = {{ http = "{path}", interval = 1, retries = 2, timeout = 2, wait = {wait} }}

[apps.proxy]
image = "webfarm-nginx"
replicas = 1
hosts = ["node1"]
proxy = {{ fronts = "web", listen = 80 }}
"""


SECRET = "t0ken with spaces=and equals"


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    the_lab = Lab.start(tmp_path_factory.mktemp("deploy"), 2)
    the_lab.env["BALEINE_ROOT"] = str(CONTROL_ROOT)
    the_lab.env["FARM_TOKEN"] = SECRET
    the_lab.farm_subnet = free_subnet()
    the_lab.proxy_url = f"http://{the_lab.record['nodes'][0]['address']}/"
    try:
        build_nginx_image(the_lab.env)
        yield the_lab
    finally:
        the_lab.stop()


def spec(farm, page, path="/", wait=20):
    path_file = farm.base / f"{page.replace(' ', '-')}.toml"
    path_file.write_text(SPEC.format(subnet=farm.farm_subnet, page=page, path=path, wait=wait))
    return path_file


def get(url):
    with urllib.request.urlopen(url, timeout=3) as reply:
        return reply.read().decode().strip()


def answers(farm, count=12):
    return [get(farm.proxy_url) for _ in range(count)]


def ps(farm):
    code, reply = farm.invoke_json("ps", "--all")
    assert code == 0, reply
    return sorted((row["host"], row["name"], row["status"]) for row in reply["data"])


def test_deploy_reaches_every_backend_on_both_nodes(farm):
    done = farm.invoke("deploy", "--hosts", "node1,node2", "--app", spec(farm, "v1"))
    assert done.returncode == 0, done.stdout + done.stderr
    pages = answers(farm)
    backends = {tuple(page.split()[1:]) for page in pages}
    assert {host for _name, host in backends} == {"node1", "node2"}
    assert len(backends) == 6, pages  # 3 containers on each node, round robin
    assert all(page.startswith("v1 ") for page in pages)
    web = next(name for _host, name, status in ps(farm) if status == "running" and name.startswith("web-"))
    done = farm.invoke("container.exec", web, "cat /proc/sys/net/core/somaxconn", "--hosts", "node1")
    assert "exit 0: 1024" in done.stdout, done.stdout + done.stderr  # the spec's sysctls, in its own namespace
    done = farm.invoke("container.exec", web, "grep -c gw /etc/hosts", "--hosts", "node1")
    assert "exit 0: 1" in done.stdout, done.stdout + done.stderr  # add_hosts: the host, by name
    done = farm.invoke("container.exec", web, "sh -c 'echo \"$FARM_TOKEN\"'", "--hosts", "node1")
    assert f"exit 0: {SECRET}" in done.stdout, done.stdout + done.stderr  # the secret, from this machine's env


def test_a_second_deploy_and_a_dry_run_change_nothing(farm):
    before = ps(farm)
    again = farm.invoke("deploy", "--hosts", "node1,node2", "--app", spec(farm, "v1"))
    assert again.returncode == 0
    assert [line.split()[1:] for line in again.stdout.splitlines()[1:]] == [["no", "change"], ["no", "change"]]
    dry = farm.invoke("deploy", "--hosts", "node1,node2", "--app", spec(farm, "v2"), "--dry-run")
    assert dry.returncode == 0 and "start web-" in dry.stdout
    assert ps(farm) == before
    assert {page.split()[0] for page in answers(farm)} == {"v1"}


def test_rolling_update_drops_no_request(farm):
    failures, served, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            try:
                served.append(get(farm.proxy_url).split()[0])
            except OSError as error:
                failures.append(f"{time.strftime('%H:%M:%S')} {error!r}")

    thread = threading.Thread(target=client)
    thread.start()
    try:
        done = farm.invoke("deploy", "--hosts", "node1,node2", "--app", spec(farm, "v2"))
    finally:
        time.sleep(0.5)
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stdout + done.stderr
    assert failures == [], (failures, done.stderr)
    assert "v1" in served and served[-1] == "v2" and len(served) > 20
    assert {page.split()[0] for page in answers(farm)} == {"v2"}
    stopped = [name for host, name, status in ps(farm) if status == "exited"]
    assert len(stopped) == 6 and all(name.startswith("web-") for name in stopped)  # v1, kept for rollback
    for node in ("node1", "node2"):  # the app's named volume outlived v1: every start of both versions wrote to it
        starts = (farm.node_dir(node) / "state" / "volumes" / "starts" / "log").read_text().split()
        assert sorted(set(starts)) == ["v1", "v2"] and starts.count("v2") == 3, starts


def test_a_broken_version_is_not_switched_in_and_rollback_works(farm):
    broken = farm.invoke("deploy", "--hosts", "node1,node2", "--app", spec(farm, "v3", path="/missing", wait=4))
    assert broken.returncode == 1
    assert "never became healthy" in broken.stdout and "failed: node1, node2" in broken.stderr
    assert {page.split()[0] for page in answers(farm)} == {"v2"}
    assert not [name for _host, name, _status in ps(farm) if name.startswith("web-") and
                _status == "running" and "v3" in name]  # fmt: skip

    back = farm.invoke("rollback", "--hosts", "node1,node2", "--app", spec(farm, "v2"))
    assert back.returncode == 0, back.stdout + back.stderr
    assert {page.split()[0] for page in answers(farm)} == {"v1"}


def test_an_unreachable_host_is_reported_and_retried(farm):
    lab.stop_sshd(str(farm.dir), "node2")
    try:
        done = farm.invoke("deploy", "--hosts", "node1,node2", "--app", spec(farm, "v4"))
        assert done.returncode == 1
        rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
        assert "start web-" in rows["node1"] and "FAILED" in rows["node2"] and "connection refused" in rows["node2"]
        pages = answers(farm)
        assert {page.split()[0] for page in pages if page.endswith("node1")} == {"v4"}
    finally:
        lab.up(directory=str(farm.dir), say=lambda _text: None)
    retried = farm.invoke("deploy", "--app", spec(farm, "v4"), "--retry-failed")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert [line.split()[0] for line in retried.stdout.splitlines()[1:]] == ["node2"]
    assert {page.split()[0] for page in answers(farm)} == {"v4"}


def test_a_second_deploy_waits_for_the_lock(farm):
    from fleet import lock

    with lock.held(str(farm.base / "hosts" / ".deploy.lock")):
        done = farm.invoke("deploy", "--hosts", "node1", "--app", spec(farm, "v4"))
    assert done.returncode == 2
    assert "a deploy is already running:" in done.stderr and "since" in done.stderr


def test_a_killed_web_container_is_restarted_by_cron_while_the_farm_serves(farm):
    """The nodes' own cron runs `baleine check` (at most a minute away): no daemon involved."""
    farm.ok("health.schedule", "--hosts", "node1,node2", "--cron-file", farm.base / "cron",
            "--history", farm.base / "health.csv")  # fmt: skip
    _code, reply = farm.invoke_json("ps", "--hosts", "node1")
    victim = next(row for row in reply["data"] if row["name"].startswith("web-"))
    os.kill(victim["pid"], 9)
    deadline, failures, served = time.monotonic() + 150, [], 0
    while time.monotonic() < deadline:
        try:
            get(farm.proxy_url)
            served += 1
        except OSError as error:
            failures.append(repr(error))
        rows = {row["name"]: row for row in farm.invoke_json("ps", "--all", "--hosts", "node1")[1]["data"]}
        if rows[victim["name"]]["status"] == "running" and rows[victim["name"]]["restarts"] >= 1:
            break
        time.sleep(1)
    else:
        pytest.fail(f"{victim['name']} was not restarted by cron within 150 s")
    assert failures == [] and served > 0
    assert rows[victim["name"]]["pid"] != victim["pid"]
    assert get(farm.proxy_url)
