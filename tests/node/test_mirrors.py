"""Registry mirrors: `baleine mirror add|rm|list` (mirrors.csv), and pulls that try them first."""

import json
import subprocess
from urllib.parse import parse_qsl, urlsplit

import pytest
import registry
from test_imports import EXPECTED, image_tree

from fleet.node import mirrors
from fleet.node.errors import Conflict, Invalid, NotFound
from fleet.node.registry import Reference


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


def test_mirrors_are_kept_in_the_order_pulls_try_them(root):
    mirrors.add("https://index.docker.io/v1/", "mirror.gcr.io")  # Docker's own name for Docker Hub
    mirrors.add("docker.io", "cache.lan:5000", insecure=True)
    mirrors.add("ghcr.io", "ghcr-cache.lan")
    assert mirrors.of("docker.io") == [("mirror.gcr.io", False), ("cache.lan:5000", True)]
    assert mirrors.of("ghcr.io") == [("ghcr-cache.lan", False)] and mirrors.of("quay.io") == []
    assert mirrors.of("GHCR.io") == mirrors.of("ghcr.io") and mirrors.of("index.docker.io") == mirrors.of("docker.io")
    lines = (root / "mirrors.csv").read_text().splitlines()
    assert lines[0] == "mirror;registry;insecure;created" and lines[2].startswith("cache.lan:5000;docker.io;1;")
    assert mirrors.remove("mirror.gcr.io")["registry"] == "docker.io"
    assert [row["mirror"] for row in mirrors.list_all()] == ["cache.lan:5000", "ghcr-cache.lan"]


def test_a_mirror_path_goes_before_each_repository(root):
    row = mirrors.add("docker.io", "https://harbor.lan:8443/dockerhub/proxy/")  # as a URL: the scheme, / dropped
    assert row["mirror"] == "harbor.lan:8443/dockerhub/proxy"
    mirrors.add("docker.io", "harbor.lan:8443")  # the same host without the path: another mirror
    assert [mirror for mirror, _ in mirrors.of("docker.io")] == ["harbor.lan:8443/dockerhub/proxy", "harbor.lan:8443"]
    moved = Reference("nginx:1.27").on(row["mirror"])
    assert (moved.domain, moved.repository, moved.tag) == ("harbor.lan:8443", "dockerhub/proxy/library/nginx", "1.27")
    assert Reference("ghcr.io/org/app@sha256:" + "a" * 64).on("cache.lan").repository == "org/app"
    assert mirrors.remove("harbor.lan:8443/dockerhub/proxy/")["mirror"] == "harbor.lan:8443/dockerhub/proxy"
    assert [mirror for mirror, _ in mirrors.of("docker.io")] == ["harbor.lan:8443"]


@pytest.mark.parametrize(
    "registry_text, mirror_text, error, message",
    [("docker.io", "DOCKER.IO", Invalid, "invalid mirror 'DOCKER.IO': it is the registry itself"),
     ("docker.io", "https://cache.lan/Docker Hub", Invalid,
      "invalid mirror 'https://cache.lan/Docker Hub': its path 'Docker Hub' is not a repository path (lowercase "
      "letters, digits, . _ - between them, / between parts); use HOST[:PORT][/PATH], e.g. mirror.gcr.io or "
      "harbor.lan/dockerhub"),
     ("docker.io", "bad host", Invalid,
      "invalid mirror 'bad host': use HOST[:PORT][/PATH], e.g. mirror.gcr.io or harbor.lan/dockerhub"),
     ("docker.io", "cache.lan//x", Invalid, "invalid mirror 'cache.lan//x': its path '/x' is not a repository path"),
     ("bad!", "cache.lan", Invalid, "invalid registry 'bad!': use HOST[:PORT]"),
     ("ghcr.io", "taken.lan", Conflict,
      "taken.lan already mirrors docker.io: remove it first (baleine mirror rm taken.lan)")],
)  # fmt: skip
def test_bad_mirrors_are_refused_by_name_and_change_nothing(root, registry_text, mirror_text, error, message):
    mirrors.add("docker.io", "taken.lan")
    before = (root / "mirrors.csv").read_bytes()
    with pytest.raises(error) as raised:
        mirrors.add(registry_text, mirror_text)
    assert raised.value.message.startswith(message)
    with pytest.raises(NotFound, match=r"no such mirror 'nope.lan' \(known: taken.lan\)"):
        mirrors.remove("nope.lan")
    assert (root / "mirrors.csv").read_bytes() == before


def pull(node, *args):
    """baleine image pull ARGS: (exit status, stdout, stderr lines)."""
    done = subprocess.run(node.argv("image", "pull", *args), env=node.env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr.splitlines()


@pytest.mark.integration
def test_pulls_try_each_mirror_then_the_registry(node, tmp_path, podman_archives):
    archive = f"docker-archive:{podman_archives / 'webfx-docker.tar'}"
    with registry.running(tmp_path / "upstream") as upstream, registry.running(tmp_path / "mirror", "basic") as cache:
        upstream.push(archive, "farm/webfx:1")
        upstream.push(archive, "farm/webfx:2")
        cache.push(archive, "farm/webfx:1")  # the mirror has :1 only
        dead = f"127.0.0.1:{registry.free_port()}"
        node.ok("mirror", "add", upstream.address, dead)
        added = node.cli("mirror", "add", upstream.address, cache.address)
        assert (
            added.stdout == f"pulls from {upstream.address} now try {dead}, {cache.address}, then {upstream.address}\n"
        )
        # No login kept for the mirror yet: each mirror fails in turn, the registry serves.
        code, out, said = pull(node, f"{upstream.address}/farm/webfx:2")
        assert code == 0 and out.startswith("webfx-2: sha256:") and "mirror" not in out, said
        assert said[0].startswith(f"mirror {dead}: cannot reach registry {dead}: ") and said[0].endswith(
            "; trying the next"
        ), said
        assert said[1] == f"mirror {cache.address}: registry {cache.address} wants a login: give --username and " + (
            f"--password-stdin, or keep one: baleine login {cache.address}; trying the next"
        )
        # The mirror's own login, kept, and the registry gone: the mirror serves the whole image.
        user, password = cache.credentials
        node.cli("login", cache.address, "--username", user, "--password-stdin", input=password + "\n")
        upstream.stop()
        code, out, said = pull(node, f"{upstream.address}/farm/webfx:1")
        assert code == 0 and out.endswith(f" (from mirror {cache.address})\n"), said
        assert said[1] == f"{upstream.address}/farm/webfx:1: from mirror {cache.address}", said
        item = node.ok("image", "inspect", "webfx-1")
        assert item["source"].startswith(
            f"pull:{upstream.address}/farm/webfx:1@sha256:"
        )  # the reference, not the mirror
        assert image_tree(node, "webfx-1", tmp_path / "tree") == EXPECTED
        reply = json.loads(subprocess.run(node.argv("--json", "image", "pull", f"{upstream.address}/farm/webfx:1"),
                                          env=node.env, capture_output=True, text=True, timeout=60).stdout)  # fmt: skip
        assert reply["data"]["up_to_date"] is True and reply["data"]["mirror"] == cache.address, reply
        # What no mirror has and the registry cannot give: the registry's own error, nothing kept.
        before = node.state_files()
        code, out, said = pull(node, f"{upstream.address}/farm/webfx:2", "--name", "nowhere")
        assert said[1].startswith(f"mirror {cache.address}: no manifest {cache.address}/farm/webfx:2 on ")
        assert code == 1 and said[-1].startswith(f"baleine: error: cannot reach registry {upstream.address}: "), said
        assert node.state_files() == before


@pytest.mark.integration
def test_a_mirror_that_fails_on_a_blob_is_left_for_the_registry(node, tmp_path, podman_archives):
    archive = f"docker-archive:{podman_archives / 'webfx-docker.tar'}"
    with registry.running(tmp_path / "upstream") as upstream, registry.running(tmp_path / "mirror") as cache:
        upstream.push(archive, "webfx:1")
        cache.push(archive, "webfx:1")
        node.ok("mirror", "add", upstream.address, cache.address)
        blobs = sorted((cache.directory / "storage").rglob("blobs/sha256/*/*/data"), key=lambda p: p.stat().st_size)
        blobs[-1].unlink()  # the biggest layer: the manifest is there, the blob is not
        code, out, said = pull(node, f"{upstream.address}/webfx:1")
        assert code == 0 and "mirror" not in out, said
        [failed] = [line for line in said if line.startswith(f"mirror {cache.address} failed midway: ")]
        assert failed.endswith("; trying the next") and "blob" in failed, said
        assert image_tree(node, "webfx-1", tmp_path / "tree") == EXPECTED
        assert [p.name for p in (node.root / "images").iterdir() if p.name.startswith(".build")] == []


@pytest.mark.integration
def test_a_mirror_with_a_path_serves_repositories_under_it(node, tmp_path, podman_archives):
    """A Harbor proxy-cache project: the mirror's path goes before the repository, its token asked for that."""
    archive = f"docker-archive:{podman_archives / 'webfx-docker.tar'}"
    with registry.running(tmp_path / "upstream") as upstream, registry.running(tmp_path / "harbor", "token") as cache:
        cache.push(archive, "hub-proxy/farm/webfx:1")
        user, password = cache.credentials
        node.cli("login", cache.address, "--username", user, "--password-stdin", input=password + "\n")
        node.ok("mirror", "add", upstream.address, f"http://{cache.address}/hub-proxy/")
        assert node.ok("mirror", "list")[0]["mirror"] == f"{cache.address}/hub-proxy"
        upstream.stop()  # only the mirror can serve
        cache.tokens.asked.clear()
        code, out, said = pull(node, f"{upstream.address}/farm/webfx:1")
        assert code == 0 and out.endswith(f" (from mirror {cache.address}/hub-proxy)\n"), said
        assert said[0] == f"{upstream.address}/farm/webfx:1: from mirror {cache.address}/hub-proxy", said
        scopes = {dict(parse_qsl(urlsplit(path).query)).get("scope") for path, _ in cache.tokens.asked}
        assert scopes == {"repository:hub-proxy/farm/webfx:pull"}, cache.tokens.asked
        assert node.ok("image", "inspect", "webfx-1")["source"].startswith(f"pull:{upstream.address}/farm/webfx:1@")
        assert image_tree(node, "webfx-1", tmp_path / "tree") == EXPECTED
