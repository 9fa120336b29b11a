"""Inventory files and --hosts selection (pure: temporary files only)."""

import pytest

from fleet import inventory
from fleet.inventory import InventoryError

BASIC = """
[defaults]
user = "deploy"
sudo = true
identity = "~/.ssh/lab"

[hosts.web1]
address = "192.0.2.1"
labels = { role = "web" }

[hosts.web2]
address = "192.0.2.2"

[hosts.db1]
address = "192.0.2.3"
user = "root"
sudo = false
port = 2222

[groups]
web = ["web*"]
all-db = ["db1"]
everything = ["web", "all-db"]
"""


def load_text(tmp_path, text, name="fleet.toml"):
    (tmp_path / name).write_text(text)
    return inventory.load(str(tmp_path))


def names(hosts):
    return [host.name for host in hosts]


def test_defaults_apply_and_hosts_override(tmp_path):
    inv = load_text(tmp_path, BASIC)
    web1, db1 = inv.hosts["web1"], inv.hosts["db1"]
    assert (web1.user, web1.sudo, web1.port, web1.identity) == ("deploy", True, 22, "~/.ssh/lab")
    assert (db1.user, db1.sudo, db1.port) == ("root", False, 2222)
    assert web1.labels == {"role": "web"}


def test_helper_directory_depends_on_the_user(tmp_path):
    inv = load_text(tmp_path, BASIC)
    assert inv.hosts["db1"].helper_directory == "/var/lib/baleine/helper"
    assert inv.hosts["web1"].helper_directory == ".cache/baleine"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("web1", ["web1"]),
        ("all", ["web1", "web2", "db1"]),
        ("web", ["web1", "web2"]),
        ("web*", ["web1", "web2"]),
        ("db1,web1,db1", ["db1", "web1"]),
        ("everything", ["web1", "web2", "db1"]),
        (" web2 , db1 ", ["web2", "db1"]),
    ],
)
def test_selection(tmp_path, spec, expected):
    assert names(load_text(tmp_path, BASIC).select(spec)) == expected


def test_unknown_name_lists_the_known_ones(tmp_path):
    inv = load_text(tmp_path, BASIC)
    inv.ssh_config = str(tmp_path / "no-such-config")
    with pytest.raises(InventoryError, match=r"unknown host or group 'web3' \(known: web1, web2, db1, web \(group\)"):
        inv.select("web1,web3")


def test_glob_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(InventoryError, match="no host matches 'cache\\*'"):
        load_text(tmp_path, BASIC).select("cache*")


def test_empty_selection_is_an_error(tmp_path):
    with pytest.raises(InventoryError, match="no hosts selected"):
        load_text(tmp_path, BASIC).select(" , ")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InventoryError, match="--hosts all selects no host: the inventory has none yet"):
        inventory.load(str(tmp_path / "empty")).select("all")


def test_names_not_in_the_inventory_resolve_through_ssh_config(tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text("Host bastion-*\n  HostName 198.51.100.7\n  User ops\n  Port 2200\n"
                      "  IdentityFile /keys/ops\nHost *\n  ServerAliveInterval 30\n")  # fmt: skip
    inv = load_text(tmp_path, f'ssh_config = "{config}"\n' + BASIC)
    [host] = inv.select("bastion-1")
    assert (host.address, host.user, host.port, host.identity) == ("198.51.100.7", "ops", 2200, "/keys/ops")
    assert host.from_ssh_config
    with pytest.raises(InventoryError, match="unknown host or group 'other'"):
        inv.select("other")  # only `Host *` matches: not a host ssh knows by name
    config.write_text("Host bastion-*\n  Port ssh\n")  # ssh would refuse it too; it raised ValueError here
    with pytest.raises(InventoryError, match=f"^{config}: Port 'ssh' for bastion-1 is not a TCP port \\(1-65535\\)$"):
        inv.select("bastion-1")


def test_files_merge_and_example_is_skipped(tmp_path):
    (tmp_path / "a.toml").write_text('[hosts.a]\naddress = "192.0.2.10"\n')
    (tmp_path / "b.toml").write_text('[hosts.b]\naddress = "192.0.2.11"\n[groups]\nab = ["a", "b"]\n')
    (tmp_path / "example.toml").write_text('[hosts.example]\naddress = "192.0.2.99"\n')
    inv = inventory.load(str(tmp_path))
    assert list(inv.hosts) == ["a", "b"]
    assert names(inv.select("ab")) == ["a", "b"]


def test_the_documented_example_is_valid():
    inv = inventory.load("hosts/example.toml")
    assert names(inv.select("everything")) == ["web1", "web2", "db1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[hosts.a]\nadress = "x"\n', r"unknown key hosts\.a\.adress \(accepted: address, user"),
        ('[hosts.a]\nport = "22"\n', r"hosts\.a\.port = '22' must be a whole number"),
        ("[hosts.a]\nport = 70000\n", r"hosts\.a\.port 70000 is not a TCP port"),
        ("[hosts.a]\nconnect_timeout = -1\n", r"hosts\.a\.connect_timeout -1 must be above 0 and at most 3600 seconds"),
        ("[defaults]\nconnect_timeout = inf\n", r"defaults\.connect_timeout inf must be above 0 and at most 3600"),
        ("[hosts.a]\nconnect_timeout = nan\n", r"hosts\.a\.connect_timeout nan must be above 0"),
        ("[hosts.a]\nport = true\n", r"hosts\.a\.port = True must be a whole number"),
        ('[hosts.a]\naddress = ""\n', r"hosts\.a\.address is empty: give a value, or leave the key out"),
        ('[defaults]\nuser = " "\n', r"defaults\.user is empty"),
        ('[hosts.a]\naddress = "web 1"\n', r"hosts\.a\.address = 'web 1' must be one word: no spaces, not start"),
        ('[hosts.a]\naddress = "-oProxyCommand=x"\n', r"hosts\.a\.address = '-oProxyCommand=x' must be one word"),
        ('[hosts.a]\npython = "python3 -X dev"\n', r"hosts\.a\.python = 'python3 -X dev' must be one word"),
        ('[hosts.a]\nidentity = ""\n', r"hosts\.a\.identity is empty"),
        ("[hosts.a]\nlabels = []\n", r"hosts\.a\.labels = \[\] must be a table"),
        ('[hosts.a]\nconnect_timeout = "5"\n', r"connect_timeout = '5' must be a number$"),
        ('[hosts.a]\nsudo = "yes"\n', r"hosts\.a\.sudo = 'yes' must be true or false"),
        ('[defaults]\naddress = "x"\n', r"unknown key defaults\.address"),
        ('[hosts."bad name"]\n', r"bad host name 'bad name'"),
        ("[hosts.all]\n", r"bad host name 'all'"),
        ('[hosts.a]\n[groups]\na = ["a"]\n', r"group 'a' clashes"),
        ('[groups]\ng = ["nobody"]\n', r"group 'g' names unknown host or group 'nobody'"),
        ('[groups]\ng = "a"\n', r"groups\.g must be a list"),
        ("hosts = 3\n", r"hosts must be a table"),
        ("[servers.a]\n", r"unknown key 'servers'"),
        ("[hosts.a\n", r"not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path, text, message):
    with pytest.raises(InventoryError, match=message) as raised:
        load_text(tmp_path, text)
    assert "fleet.toml" in str(raised.value)


def test_a_host_defined_twice_names_both_files(tmp_path):
    (tmp_path / "a.toml").write_text("[hosts.x]\n")
    (tmp_path / "b.toml").write_text("[hosts.x]\n")
    with pytest.raises(InventoryError, match=r"b\.toml: host 'x' is already defined in .*a\.toml"):
        inventory.load(str(tmp_path))


def test_group_cycle_is_an_error(tmp_path):
    inv = load_text(tmp_path, '[hosts.a]\n[groups]\ng = ["h"]\nh = ["g"]\n')
    with pytest.raises(InventoryError, match="includes itself"):
        inv.select("g")


def test_missing_inventory(tmp_path):
    with pytest.raises(InventoryError, match="no inventory at"):
        inventory.load(str(tmp_path / "nothing"))


def test_environment_variable_moves_the_inventory(tmp_path, monkeypatch):
    (tmp_path / "x.toml").write_text('[hosts.only]\naddress = "192.0.2.5"\n')
    monkeypatch.setenv("BALEINE_INVENTORY", str(tmp_path / "x.toml"))
    assert list(inventory.load().hosts) == ["only"]


def test_invoke_hosts_shows_the_inventory():
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, BALEINE_INVENTORY=str(repo / "hosts" / "example.toml"))
    done = subprocess.run([str(Path(sys.executable).parent / "invoke"), "hosts"], cwd=repo, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0] == ["HOST", "SSH", "SUDO", "GROUPS", "LABELS"]
    assert rows[3][:4] == ["db1", "deploy@203.0.113.21:2222", "sudo", "everything"]
    unknown = subprocess.run([str(Path(sys.executable).parent / "invoke"), "hosts", "--hosts", "nope"], cwd=repo,
                             env=dict(env, HOME=str(repo / "no-home")), capture_output=True, text=True)  # fmt: skip
    assert unknown.returncode == 2 and "unknown host or group 'nope' (known: web1, web2, db1" in unknown.stderr
