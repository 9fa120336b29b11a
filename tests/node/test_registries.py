"""Registry settings: `baleine registry insecure|secure|list` (registries.csv), used by every registry client."""

import subprocess

import pytest
import registry

from fleet.node import logins, mirrors, registries
from fleet.node.errors import Invalid
from fleet.node.registry import Client, Reference


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


def test_an_insecure_registry_is_kept_once_and_every_client_sees_it(root):
    assert Client(Reference("registry.lan:5000/web:1")).insecure is False
    assert registries.make_insecure("http://Registry.LAN:5000/") == {"registry": "registry.lan:5000",
                                                                     "insecure": True, "changed": True}  # fmt: skip
    again = registries.make_insecure("registry.lan:5000")
    assert again["changed"] is False and len((root / "registries.csv").read_text().splitlines()) == 2
    assert (root / "registries.csv").read_text().startswith("registry;insecure;created\nregistry.lan:5000;1;")
    assert Client(Reference("registry.lan:5000/web:1")).insecure is True
    assert Client(Reference("registry.lan:5000/web:1").on("registry.lan:5000/cache")).insecure is True  # as a mirror
    assert Client(Reference("other.lan/web:1")).insecure is False
    assert registries.make_secure("registry.lan:5000")["changed"] is True
    assert registries.make_secure("registry.lan:5000")["changed"] is False
    assert Client(Reference("registry.lan:5000/web:1")).insecure is False


def test_the_list_gathers_logins_mirrors_and_settings_by_registry(root):
    logins.save("ghcr.io", "bot", "pw")
    logins.save("127.0.0.1:5000", "local", "pw")
    mirrors.add("docker.io", "mirror.gcr.io")
    mirrors.add("docker.io", "cache.lan:5000")
    registries.make_insecure("cache.lan:5000")
    assert registries.list_all() == [
        {"registry": "127.0.0.1:5000", "login": "local", "mirrors": [], "insecure": True},  # loopback: always
        {"registry": "cache.lan:5000", "login": None, "mirrors": [], "insecure": True},
        {"registry": "docker.io", "login": None, "mirrors": ["mirror.gcr.io", "cache.lan:5000"], "insecure": False},
        {"registry": "ghcr.io", "login": "bot", "mirrors": [], "insecure": False},
    ]


@pytest.mark.parametrize("text", ["bad host!", "", "a b:5000"])
def test_bad_registries_are_refused_by_name_and_change_nothing(root, text):
    for call in (registries.make_insecure, registries.make_secure):
        with pytest.raises(Invalid, match=r"invalid registry .*: use HOST\[:PORT\], e.g. ghcr.io"):
            call(text)
    assert not (root / "registries.csv").exists()


@pytest.mark.integration
def test_an_insecure_registry_serves_run_pull_without_insecure(node, tmp_path, lan_address, podman_archives):
    """A registry on the LAN over plain HTTP: where no --insecure can be given, the kept setting lets it serve."""
    with registry.running(tmp_path / "registry", host=lan_address) as hub:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        before = node.state_files()
        refused = subprocess.run(node.argv("container", "run", "--rm", f"{hub.address}/webfx:1", "true"),
                                 env=node.env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert refused.returncode != 0 and f"cannot reach registry {hub.address}: " in refused.stderr, refused.stderr
        assert node.state_files() == before
        said = node.cli("registry", "insecure", hub.address).stdout
        assert said == f"{hub.address} may now be reached over plain HTTP or unchecked HTTPS\n"
        ran = node.cli("container", "run", "--rm", f"{hub.address}/webfx:1", "cat", "index.html")
        assert ran.stdout == "hello from layer\n", ran.stderr
        assert node.ok("registry", "list") == [{"registry": hub.address, "login": None, "mirrors": [],
                                                 "insecure": True}]  # fmt: skip
        listed = node.cli("registry", "ls").stdout.splitlines()
        assert listed[0].split() == ["REGISTRY", "LOGIN", "MIRRORS", "REACHED"]
        assert listed[1].split() == [hub.address, "-", "-", "plain", "HTTP"]
        assert node.ok("registry", "secure", hub.address) == {"registry": hub.address, "insecure": False,
                                                              "changed": True}  # fmt: skip
        again = subprocess.run(node.argv("image", "pull", f"{hub.address}/webfx:1", "--name", "again"),
                               env=node.env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert again.returncode != 0 and f"cannot reach registry {hub.address}: " in again.stderr, again.stderr
