"""App specs are checked whole, with errors naming the file and key (pure)."""

import pytest

from fleet import apps
from fleet.apps import SpecError

GOOD = {
    "network": {"name": "farm", "subnet": "10.42.0.0/24"},
    "apps": {
        "web": {"image": "page", "replicas": 3, "env": {"PAGE": "v1"}, "health": {"http": "/", "interval": 2}},
        "proxy": {"image": "nginx", "proxy": {"fronts": "web", "listen": 80}, "hosts": ["node1"]},
    },
}


def with_change(path, value):
    import copy

    data = copy.deepcopy(GOOD)
    *parents, last = path
    table = data
    for key in parents:
        table = table.setdefault(key, {})
    if value is None:
        del table[last]
    else:
        table[last] = value
    return data


def test_the_shipped_webfarm_spec_is_valid():
    spec = apps.load("apps/webfarm.toml")
    assert [app.name for app in spec.ordered()] == ["web", "proxy"]
    assert spec.apps["proxy"].proxy == {"fronts": "web", "listen": 80}
    assert spec.network["slices"] == 8 and 1 <= spec.network["vxlan"] <= 16777215


def test_a_registry_image_as_build():
    web = apps.parse(with_change(("apps", "web", "build"), "pull:ghcr.io/org/page:2"), "f").apps["web"]
    assert web.build == "pull:ghcr.io/org/page:2"


def test_defaults_and_derived_values():
    spec = apps.parse(GOOD, "farm.toml")
    web = spec.apps["web"]
    assert (web.replicas, web.restart, web.port) == (3, "always", 80)
    assert web.probe_options() == ["--health-http", "/", "--health-port", "80"]
    redis = apps.parse(with_change(("apps", "web", "health"), {"tcp": 6379}), "f").apps["web"]
    assert redis.probe_options() == ["--health-tcp", "6379"]
    secure = apps.parse(with_change(("apps", "web", "health"), {"https": "/ready", "port": 8443}), "f").apps["web"]
    assert secure.probe_options() == ["--health-https", "/ready", "--health-port", "8443"]
    assert [app.name for app in spec.ordered()] == ["web", "proxy"]  # backends before their proxy


def test_the_version_follows_what_shapes_the_containers():
    web = apps.parse(GOOD, "f").apps["web"]
    same = apps.parse(GOOD, "f").apps["web"]
    assert web.version("sha256:a") == same.version("sha256:a")
    assert web.version("sha256:a") != web.version("sha256:b")  # a new image
    changed = apps.parse(with_change(("apps", "web", "env"), {"PAGE": "v2"}), "f").apps["web"]
    assert changed.version("sha256:a") != web.version("sha256:a")
    more = apps.parse(with_change(("apps", "web", "replicas"), 5), "f").apps["web"]
    assert more.version("sha256:a") == web.version("sha256:a")  # scaling is not a new version
    logs = apps.parse(with_change(("apps", "web", "log_size"), "20M"), "f").apps["web"]
    assert logs.version("sha256:a") != web.version("sha256:a")
    for key, value in (("stop_signal", "quit"), ("stop_timeout", 30), ("init", True), ("volumes", ["site:/www"]),
                       ("sysctls", {"net.core.somaxconn": 4096}), ("add_hosts", ["db:192.0.2.7"])):  # fmt: skip
        graceful = apps.parse(with_change(("apps", "web", key), value), "f").apps["web"]
        assert graceful.version("sha256:a") != web.version("sha256:a"), key
    assert apps.parse(with_change(("apps", "web", "stop_signal"), "quit"), "f").apps["web"].stop_signal == "SIGQUIT"
    assert web.version("sha256:a") == "0afa8cb"  # as before log_size and stop_* existed: an upgrade redeploys nothing


def test_secrets_come_from_this_machines_environment_and_shape_the_version(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "pa ss=word")
    monkeypatch.setenv("API_KEY", "k1")
    web = apps.parse(with_change(("apps", "web", "secrets"), ["DB_PASSWORD", "API_KEY"]), "f").apps["web"]
    assert web.secret_values == {"DB_PASSWORD": "pa ss=word", "API_KEY": "k1"}
    assert web.secret_input() == b"DB_PASSWORD=pa ss=word\nAPI_KEY=k1\n"
    assert "pa ss=word" not in repr(web) and "DB_PASSWORD" in repr(web)  # the names, never the values
    plain = apps.parse(GOOD, "f").apps["web"]
    assert plain.secret_input() is None and web.version("sha256:a") != plain.version("sha256:a")
    monkeypatch.setenv("API_KEY", "k2")  # a new value: a new version, rolled out like any change
    rotated = apps.parse(with_change(("apps", "web", "secrets"), ["DB_PASSWORD", "API_KEY"]), "f").apps["web"]
    assert rotated.version("sha256:a") != web.version("sha256:a")
    for names, message in [(["NOT_SET_HERE"], r"secrets\[0\]: NOT_SET_HERE is not set in this machine's environm"),
                           (["API_KEY", "bad-name"], r"secrets\[1\]: 'bad-name': an environment variable's name"),
                           (["PAGE"], r"secrets\[0\]: PAGE is given twice \(in env, or twice here\)"),
                           ([7], r"secrets\[0\]: 7: an environment variable's name")]:  # fmt: skip
        with pytest.raises(SpecError, match=r"f: apps\.web\." + message):
            apps.parse(with_change(("apps", "web", "secrets"), names), "f")
    monkeypatch.setenv("API_KEY", "two\nlines")
    with pytest.raises(SpecError, match=r"secrets\[0\]: API_KEY holds a line break or a NUL byte"):
        apps.parse(with_change(("apps", "web", "secrets"), ["API_KEY"]), "f")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("apps", "web", "image"), None, r"apps\.web\.image: missing"),
        (("apps", "web", "replicas"), 0, r"apps\.web\.replicas: use 1 to 50"),
        (("apps", "web", "replicas"), "3", r"apps\.web\.replicas: '3' must be a whole number"),
        (("apps", "web", "colour"), "red", r"apps\.web\.colour: unknown key \(accepted: image, build"),
        (("apps", "web", "restart"), "sometimes", r"apps\.web\.restart: 'sometimes': use no, on-failure"),
        (("apps", "web", "command"), ["httpd", 80], r"apps\.web\.command: a list of strings"),
        (("apps", "web", "env"), {"N": 1}, r"apps\.web\.env: values are strings"),
        (("apps", "web", "network"), "other", r"apps\.web\.network: only 'host'"),
        (("apps", "web", "health"), {"cmd": "true", "http": "/"}, r"apps\.web\.health: give exactly one"),
        (
            ("apps", "web", "health"),
            {"http": "/", "tcp": 80},
            r"apps\.web\.health: give exactly one of cmd, http, https or",
        ),
        (("apps", "web", "health"), {"tcp": 70000}, r"apps\.web\.health\.tcp: a TCP port, 1 to 65535"),
        (("apps", "web", "health"), {"http": "status"}, r"apps\.web\.health\.http: a path starting with /"),
        (("apps", "web", "health"), {"https": "ready"}, r"apps\.web\.health\.https: a path starting with /"),
        (("apps", "web", "health"), {"http": "/", "https": "/"}, r"apps\.web\.health: give exactly one"),
        (("apps", "web", "port"), 70000, r"apps\.web\.port: a TCP port"),
        (("apps", "web", "keep"), 11, r"apps\.web\.keep: 0 to 10"),
        (("apps", "web", "log_size"), "1K", r"apps\.web\.log_size: invalid log_size '1K': use 0 \(never rotate\)"),
        (("apps", "web", "log_size"), 10, r"apps\.web\.log_size: 10 must be a string"),
        (
            ("apps", "web", "stop_signal"),
            "SIGNOPE",
            r"apps\.web\.stop_signal: invalid stop_signal 'SIGNOPE': use a sig",
        ),
        (("apps", "web", "stop_timeout"), 0, r"apps\.web\.stop_timeout: 0: a number of seconds above 0"),
        (("apps", "web", "stop_timeout"), "30s", r"apps\.web\.stop_timeout: '30s' must be"),
        (("apps", "web", "init"), "yes", r"apps\.web\.init: 'yes' must be true or false"),
        (("apps", "web", "volumes"), ["/srv/www:/www"], r"apps\.web\.volumes\[0\]: '/srv/www:/www': use a named vol"),
        (("apps", "web", "volumes"), ["ok:/a", "site:www"], r"apps\.web\.volumes\[1\]: invalid volume 'site:www'"),
        (("apps", "web", "volumes"), [3], r"apps\.web\.volumes\[0\]: 3: use a named volume"),
        (("apps", "web", "sysctls"), {"vm.swappiness": "1"}, r"apps\.web\.sysctls\.vm\.swappiness: invalid --sysctl"),
        (
            ("apps", "web", "sysctls"),
            {"net.core.somaxconn": [1]},
            r"sysctls\.net\.core\.somaxconn: \[1\] must be a str",
        ),
        (("apps", "web", "add_hosts"), ["db"], r"apps\.web\.add_hosts\[0\]: invalid --add-host 'db'"),
        (("apps", "web", "build"), "pull:Web:1", r"apps\.web\.build: invalid image reference 'Web:1': use \[REG"),
        (("apps", "web", "add_hosts"), "db:192.0.2.7", r"apps\.web\.add_hosts: 'db:192.0.2.7' must be a list"),
        (("apps", "proxy", "proxy"), {"fronts": "db", "listen": 80}, r"proxy\.fronts: 'db' is not an app"),
        (("apps", "proxy", "proxy"), {"fronts": "web"}, r"apps\.proxy\.proxy\.listen: missing"),
        (("apps", "Web"), {"image": "x"}, r"apps\.Web: app names are lower-case"),
        (("network", "subnet"), "10.42.0.0/28", r"network\.subnet: an IPv4 subnet of /26 or larger"),
        (("network", "subnet"), "nonsense", r"network\.subnet: invalid subnet 'nonsense': 'nonsense' is not an IPv4"),
        (
            ("network", "subnet"),
            "10.42.0.1/24",
            r"subnet '10\.42\.0\.1/24': host bits are set: the network is 10\.42\.0\.0/24",
        ),
        (("network", "slices"), 3, r"network\.slices: 2, 4, 8, 16 or 32"),
        (("network", "vxlan"), 0, r"network\.vxlan: 0: a VXLAN id is 1 to 16777215"),
        (("network", "vxlan"), 1 << 24, r"network\.vxlan: 16777216: a VXLAN id is 1 to 16777215"),
        (("apps", "web", "stop_timeout"), float("inf"), r"apps\.web\.stop_timeout: invalid stop_timeout 'inf': use a"),
        (
            ("apps", "web", "stop_timeout"),
            1e20,
            r"web\.stop_timeout: invalid stop_timeout '1e\+20': use a number of sec",
        ),
        (
            ("apps", "web", "health"),
            {"cmd": "true", "wait": float("inf")},
            r"apps\.web\.health\.wait: invalid wait 'inf'",
        ),
        (("apps", "web", "health"), {"cmd": "true", "interval": -1}, r"apps\.web\.health\.interval: invalid interval"),
        (("network", "name"), None, r"network\.name: missing"),
        (("network", "name"), "my farm", r"network\.name: invalid network name 'my farm': use letters, digits"),
        (("apps", "web", "size"), "32", r"apps\.web\.size: invalid image size '32'"),
        (("apps", "web", "size"), "32Q", r"apps\.web\.size: invalid image size '32Q'"),
        (("apps", "web", "memory"), "lots", r"apps\.web\.memory: invalid --memory 'lots'"),
        (("apps", "web", "memory"), "1M", r"apps\.web\.memory: invalid --memory '1M'"),
        (("apps", "web", "cpus"), float("nan"), r"apps\.web\.cpus: invalid --cpus 'nan': use a number from 0\.01"),
        (("apps", "web", "cpus"), 0, r"apps\.web\.cpus: invalid --cpus '0'"),
        (("apps", "web", "cpus"), [1], r"apps\.web\.cpus: \[1\] must be a number or a string$"),
        (("apps", "web", "pids"), 0, r"apps\.web\.pids: invalid --pids-limit '0': use 1 or more"),
        (("apps", "web", "pids"), 1 << 40, r"apps\.web\.pids: invalid --pids-limit '1099511627776': use a whole num"),
        (("apps", "web", "env"), {"": "x"}, r"apps\.web\.env\.: invalid environment variable '=x'"),
        (("apps", "web", "env"), {"A B": "x"}, r"apps\.web\.env\.A B: invalid environment variable 'A B=x'"),
        (("apps", "web", "hosts"), ["node1", ""], r"apps\.web\.hosts: a list of host names, groups or globs"),
        (("apps", "web", "hosts"), [1], r"apps\.web\.hosts: a list of host names"),
        (("apps", "web", "health"), {"http": "/", "port": 0}, r"apps\.web\.health\.port: a TCP port, 1 to 65535"),
        (("apps", "web", "health"), {"cmd": "true", "retries": 0}, r"apps\.web\.health\.retries: 0: failed probes"),
        (("apps", "web", "health"), {"cmd": "true", "timeout": 0}, r"apps\.web\.health\.timeout: 0: seconds a pr"),
        (("extra",), 1, r"extra: unknown key"),
    ],
)
def test_errors_name_the_file_and_the_key(path, value, message):
    with pytest.raises(SpecError, match=message) as raised:
        apps.parse(with_change(path, value), "apps/farm.toml")
    assert str(raised.value).startswith("apps/farm.toml: ")


def test_the_host_s_network_takes_no_net_sysctl_nor_host_gateway():
    on_host = with_change(("apps", "web", "network"), "host")
    on_host["apps"]["web"]["sysctls"] = {"net.core.somaxconn": 1024}
    with pytest.raises(SpecError, match=r"apps\.web\.sysctls\.net\.core\.somaxconn: .*with --network host"):
        apps.parse(on_host, "f")
    proxied = with_change(("apps", "proxy", "sysctls"), {"net.core.somaxconn": 1024})  # a proxy runs on the host's
    with pytest.raises(SpecError, match=r"apps\.proxy\.sysctls\.net\.core\.somaxconn: .*with --network host"):
        apps.parse(proxied, "f")
    on_host["apps"]["web"].update(sysctls={"kernel.shmmax": 1}, add_hosts=["gw:host-gateway"])
    with pytest.raises(SpecError, match=r"apps\.web\.add_hosts\[0\]: host-gateway needs the app on \[network\]"):
        apps.parse(on_host, "f")


def test_an_app_without_network_needs_host_networking():
    data = {"apps": {"solo": {"image": "x"}}}
    with pytest.raises(SpecError, match=r"apps\.solo\.network: the app needs the file's \[network\]"):
        apps.parse(data, "f.toml")
    assert apps.parse({"apps": {"solo": {"image": "x", "network": "host"}}}, "f.toml").apps["solo"].network == "host"


def test_a_missing_or_broken_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read app spec"):
        apps.load(str(tmp_path / "none.toml"))
    (tmp_path / "bad.toml").write_text("[apps.web\n")
    with pytest.raises(Exception, match="not valid TOML"):
        apps.load(str(tmp_path / "bad.toml"))


def test_an_app_s_hosts_are_read_as_hosts_takes_them_and_must_exist():
    from fleet.inventory import Host, Inventory

    fleet = Inventory(hosts={name: Host(name, "192.0.2.1") for name in ("node1", "node2", "db1")},
                      groups={"front": ["node1", "node2"]}, ssh_config="/nonexistent")  # fmt: skip

    def proxy_hosts(hosts):
        spec = apps.parse(with_change(("apps", "proxy", "hosts"), hosts), "f")
        apps.resolve_hosts(spec, fleet)
        return spec.apps["proxy"].hosts, spec.apps["web"].hosts

    assert proxy_hosts(["front"]) == (["node1", "node2"], [])  # an app without hosts stays on every host
    assert proxy_hosts(["node*", "db1"]) == (["node1", "node2", "db1"], [])
    with pytest.raises(SpecError, match=r"^f: apps\.proxy\.hosts: unknown host or group 'node01' \(known: node1,"):
        proxy_hosts(["node01"])  # a typo used to match no host of the deploy: the proxy ran nowhere
