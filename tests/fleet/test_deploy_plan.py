"""Deploy planning: desired state against the fleet view, per host (pure)."""

import os

import pytest

from fleet import apps, deploy, proxy
from fleet.errors import FleetError

SPEC = {
    "network": {"name": "farm", "subnet": "10.42.0.0/24"},
    "apps": {"web": {"image": "page", "replicas": 2}},
}


def web():
    return apps.parse(SPEC, "f").apps["web"]


def item(name, status="running", created="2026-01-01T00:00:00Z", health=None, address="10.42.0.2"):
    return {"name": name, "status": status, "created": created, "health": health,
            "networks": [{"network": "farm", "address": address}]}  # fmt: skip


def view(containers=(), images=(("page", "sha256:a"),), networks=()):
    return {"containers": list(containers), "images": [{"name": n, "digest": d} for n, d in images],
            "networks": list(networks), "digest": "sha256:a"}  # fmt: skip


def test_an_empty_host_gets_everything():
    plan = deploy.plan_host(web(), "aaaaaaa", "node1", view(images=()))
    assert plan.push_image and plan.start == ["web-aaaaaaa-1", "web-aaaaaaa-2"]
    assert plan.retire == [] and plan.changes()


def test_the_same_version_running_is_no_change():
    current = [item("web-aaaaaaa-1"), item("web-aaaaaaa-2")]
    plan = deploy.plan_host(web(), "aaaaaaa", "node1", view(current))
    assert not plan.changes() and plan.describe() == "no change"


def test_a_new_version_starts_beside_the_old_and_retires_it():
    current = [item("web-aaaaaaa-1"), item("web-aaaaaaa-2"), item("other-1234567-1")]
    plan = deploy.plan_host(web(), "bbbbbbb", "node1", view(current))
    assert plan.start == ["web-bbbbbbb-1", "web-bbbbbbb-2"]
    assert plan.retire == ["web-aaaaaaa-1", "web-aaaaaaa-2"] and plan.remove == []  # kept for rollback
    assert "then stop web-aaaaaaa-1" in plan.describe()


def test_versions_older_than_the_kept_ones_are_removed():
    current = [item("web-aaaaaaa-1", "exited", "2026-01-01T00:00:00Z"),
               item("web-ddddddd-1", "exited", "2026-01-02T00:00:00Z"),
               item("web-ccccccc-1", "running", "2026-01-03T00:00:00Z")]  # fmt: skip
    plan = deploy.plan_host(web(), "bbbbbbb", "node1", view(current))  # keep = 2: ccccccc and ddddddd
    assert plan.retire == ["web-ccccccc-1"] and plan.remove == ["web-aaaaaaa-1"]
    one = apps.parse({**SPEC, "apps": {"web": {"image": "page", "replicas": 2, "keep": 1}}}, "f").apps["web"]
    plan = deploy.plan_host(one, "bbbbbbb", "node1", view(current))
    assert plan.retire == ["web-ccccccc-1"] and sorted(plan.remove) == ["web-aaaaaaa-1", "web-ddddddd-1"]


def test_stopped_containers_of_this_version_are_restarted_and_surplus_removed():
    current = [item("web-aaaaaaa-1", "exited"), item("web-aaaaaaa-2"), item("web-aaaaaaa-3")]
    plan = deploy.plan_host(web(), "aaaaaaa", "node1", view(current))
    assert plan.revive == ["web-aaaaaaa-1"] and plan.remove == ["web-aaaaaaa-3"] and plan.start == []


def test_network_slices_gateways_and_peers():
    network = dict(SPEC["network"], slices=8, vxlan=42)
    views = {"node1": view(), "node2": view()}
    actions = deploy.plan_networks(network, ["node1", "node2"], views, {"node1": "192.0.2.1", "node2": "192.0.2.2"})
    assert actions["node1"] == {"action": "create", "range": "10.42.0.0/27", "gateway": "10.42.0.1",
                                "peers": ["192.0.2.2"]}  # fmt: skip
    assert actions["node2"] == {"action": "create", "range": "10.42.0.32/27", "gateway": "10.42.0.32",
                                "peers": ["192.0.2.1"]}  # fmt: skip


def test_a_host_keeps_its_slice_and_gets_new_peers():
    network = dict(SPEC["network"], slices=8, vxlan=42)
    row = {"name": "farm", "subnet": "10.42.0.0/24", "range": "10.42.0.0/27", "peers": "192.0.2.2"}
    views = {"node1": view(networks=[row]), "node2": view(), "node3": view()}
    addresses = {"node1": "192.0.2.1", "node2": "192.0.2.2", "node3": "192.0.2.3"}
    actions = deploy.plan_networks(network, ["node1", "node2", "node3"], views, addresses)
    assert actions["node1"] == {"action": "peers", "peers": ["192.0.2.2", "192.0.2.3"]}
    assert actions["node2"]["range"] == "10.42.0.32/27" and actions["node3"]["range"] == "10.42.0.64/27"


def test_a_network_with_another_subnet_is_an_error():
    network = dict(SPEC["network"], slices=8, vxlan=42)
    row = {"name": "farm", "subnet": "10.43.0.0/24", "range": "", "peers": ""}
    with pytest.raises(FleetError, match=r"exists with subnet 10\.43\.0\.0/24"):
        deploy.plan_networks(network, ["node1"], {"node1": view(networks=[row])}, {"node1": "192.0.2.1"})


def test_upstreams_are_the_serving_containers_of_one_version():
    containers = [item("web-aaaaaaa-1", address="10.42.0.2"), item("web-aaaaaaa-2", health="unhealthy"),
                  item("web-bbbbbbb-1", address="10.42.0.9"), item("web-aaaaaaa-3", "exited")]  # fmt: skip
    assert deploy.serving(web(), containers, "aaaaaaa") == ["10.42.0.2:80"]
    assert deploy.current_version(web(), containers) in ("aaaaaaa", "bbbbbbb")


def test_nginx_config_lists_every_backend_or_a_placeholder():
    text = proxy.nginx_config(["10.42.0.3:80", "10.42.0.2:80", "10.42.0.2:80"], 8080)
    assert text.count("server 10.42.0.") == 2 and "listen 8080;" in text and "daemon off;" in text
    assert text.index("10.42.0.2:80") < text.index("10.42.0.3:80")
    assert f"server {proxy.PLACEHOLDER};" in proxy.nginx_config([], 80)


def test_run_argv_carries_the_spec():
    table = {"image": "page", "memory": "64M", "env": {"A": "1"}, "health": {"cmd": "true"}, "command": ["httpd", "-f"],
             "log_size": "20M", "stop_signal": "QUIT", "stop_timeout": 30, "init": True,
             "volumes": ["site:/www:ro", "cache:/var/cache"]}  # fmt: skip
    spec = apps.parse({**SPEC, "apps": {"web": table}}, "f")
    argv = deploy.run_argv(spec.apps["web"], spec, "web-aaaaaaa-1", "node1")
    assert argv[argv.index("--log-size") + 1] == "20M"
    assert argv[argv.index("--stop-signal") + 1] == "SIGQUIT" and argv[argv.index("--stop-timeout") + 1] == "30"
    assert "--init" in argv
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "--volume"] == ["site:/www:ro", "cache:/var/cache"]
    for key in ("log_size", "stop_signal", "stop_timeout", "init", "volumes"):
        del table[key]
    plain = deploy.run_argv(apps.parse({**SPEC, "apps": {"web": table}}, "f").apps["web"], spec, "web-aaaaaaa-1", "n1")
    assert not {"--log-size", "--stop-signal", "--stop-timeout", "--init", "--volume"} & set(plain)
    assert argv[:4] == ["container", "run", "--detach", "--name"]
    assert argv[argv.index("--env") : argv.index("--env") + 2] == ["--env", "BALEINE_HOST=node1"]
    assert "--network" in argv and argv[argv.index("--network") + 1] == "farm"
    assert argv[argv.index("--memory") + 1] == "64M" and argv[argv.index("--health-cmd") + 1] == "true"
    assert argv[-3:] == ["page", "httpd", "-f"]
    assert "--health-start-period" not in argv and "--sysctl" not in argv and "--add-host" not in argv
    table.update(sysctls={"net.core.somaxconn": 4096, "net.ipv4.tcp_fin_timeout": "15"}, add_hosts=["db:192.0.2.7"])
    tuned = deploy.run_argv(apps.parse({**SPEC, "apps": {"web": table}}, "f").apps["web"], spec, "web-aaaaaaa-1", "n1")
    assert [tuned[i + 1] for i, word in enumerate(tuned) if word == "--sysctl"] == [
        "net.core.somaxconn=4096", "net.ipv4.tcp_fin_timeout=15"]  # fmt: skip
    assert tuned[tuned.index("--add-host") + 1] == "db:192.0.2.7"
    assert "--env-file" not in tuned
    table["secrets"] = ["HOME"]  # from the environment the deploy runs in: given on stdin, never in argv
    secret = apps.parse({**SPEC, "apps": {"web": table}}, "f").apps["web"]
    hidden = deploy.run_argv(secret, spec, "web-aaaaaaa-1", "n1")
    assert hidden[hidden.index("--env-file") + 1] == "-" and not any(os.environ["HOME"] in word for word in hidden)
    del table["secrets"]
    table["health"] = {"http": "/status", "port": 8080}  # asked by baleine itself: no wget in the image
    asked = deploy.run_argv(apps.parse({**SPEC, "apps": {"web": table}}, "f").apps["web"], spec, "web-aaaaaaa-1", "n1")
    assert asked[asked.index("--health-http") : asked.index("--health-http") + 4] == [
        "--health-http", "/status", "--health-port", "8080"]  # fmt: skip
    assert "--health-cmd" not in asked
    table["health"] = {"cmd": "true", "start_period": 90}
    slow = deploy.run_argv(apps.parse({**SPEC, "apps": {"web": table}}, "f").apps["web"], spec, "web-aaaaaaa-1", "n1")
    assert slow[slow.index("--health-start-period") + 1] == "90"
