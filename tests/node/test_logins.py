"""Registry logins: `baleine login|logout`, kept in auth.json (Docker's format) and used by pull, push and run."""

import base64
import json
import os
import subprocess

import pytest
import registry
from test_pull import pull
from test_push import push

from fleet.node import logins
from fleet.node.errors import BaleineError, Invalid


def _encoded(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """This test's state root and Docker config directory, in the environment logins reads."""
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "root").mkdir()
    return tmp_path / "root", tmp_path / "docker"


def test_kept_logins_are_dockers_format_and_root_only(roots):
    root, _docker = roots
    logins.save("docker.io", "hubuser", "p:ss")
    logins.save("ghcr.io", "bot", "first")
    logins.save("ghcr.io", "bot2", "second")  # replaces: one login per registry
    path = root / "auth.json"
    assert path.stat().st_mode & 0o777 == 0o600
    hub_key = "https://index.docker.io/v1/"  # Docker's own key for Docker Hub
    assert json.loads(path.read_text()) == {"auths": {hub_key: {"auth": _encoded("hubuser", "p:ss")},
                                                      "ghcr.io": {"auth": _encoded("bot2", "second")}}}  # fmt: skip
    assert logins.find("docker.io") == ("hubuser", "p:ss", str(path))
    assert logins.find("GHCR.io")[:2] == ("bot2", "second")
    assert logins.listed() == [{"registry": "docker.io", "username": "hubuser"},
                               {"registry": "ghcr.io", "username": "bot2"}]  # fmt: skip
    assert logins.remove("ghcr.io") is True and logins.remove("ghcr.io") is False
    assert logins.find("ghcr.io") is None and [i["registry"] for i in logins.listed()] == ["docker.io"]


def test_dockers_own_logins_are_read_after_ours(roots):
    root, docker = roots
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({
        "auths": {"https://index.docker.io/v1/": {"auth": _encoded("fromdocker", "pw")},
                  "helped.example": {},  # a credential helper's entry: no password here
                  "token.example": {"identitytoken": "x"}, "broken.example": {"auth": "%%%"},
                  "ghcr.io": {"auth": _encoded("dockerbot", "pw2")}}}))  # fmt: skip
    assert logins.find("docker.io") == ("fromdocker", "pw", str(docker / "config.json"))
    assert [logins.find(name) for name in ("helped.example", "broken.example")] == [None] * 2
    assert logins.find("token.example") == ("<token>", "x", str(docker / "config.json"))  # an identity token
    logins.save("ghcr.io", "ours", "pw3")
    assert logins.find("ghcr.io") == ("ours", "pw3", str(root / "auth.json"))
    assert logins.listed() == [{"registry": "ghcr.io", "username": "ours"}]  # only what baleine keeps
    (docker / "config.json").write_text("{not json")  # docker's file, broken: not ours to refuse
    assert logins.find("docker.io") is None


HELPER = """#!/bin/sh
# A Docker credential helper: `get`, the server on stdin, JSON on stdout (or "credentials not found").
[ "$1" = get ] || exit 3
read -r server
echo "$server" >> "$0.asked"
case "$server" in
  ghcr.io) echo '{"ServerURL": "ghcr.io", "Username": "helped", "Secret": "s3cret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL": "x", "Username": "hubhelped", "Secret": "hub"}' ;;
  token.example) echo '{"ServerURL": "x", "Username": "<token>", "Secret": "refresh"}' ;;
  odd.example) echo 'not json' ;;
  broken.example) echo "the keychain is locked" >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


@pytest.fixture
def helper(roots, tmp_path, monkeypatch):
    """docker-credential-fake on PATH; the servers it was asked for, in order, are in its .asked file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-fake"
    program.write_text(HELPER)
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return roots[1], program.with_name("docker-credential-fake.asked")


def _docker_config(directory, **document):
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(document))


def test_dockers_credential_helpers_are_asked_as_docker_asks_them(helper):
    docker, asked = helper
    helpers = {"ghcr.io": "fake", "token.example": "fake", "odd.example": "fake", "broken.example": "fake",
               "quay.io": "fake", "gone.example": "nosuch"}  # fmt: skip
    inline = {"ghcr.io": {"auth": _encoded("inline", "no")}, "other.example": {"auth": _encoded("o", "p")}}
    _docker_config(docker, credHelpers=helpers, auths=inline)
    assert logins.find("ghcr.io") == ("helped", "s3cret", "docker-credential-fake")  # the helper wins over auths
    assert logins.find("quay.io") is None  # the helper has none: anonymous
    assert logins.find("token.example") == ("<token>", "refresh", "docker-credential-fake")  # an identity token
    assert logins.find("other.example")[:2] == ("o", "p")  # no helper named: the inline login
    for server, message in [("odd.example", "docker-credential-fake answered odd.example with something other "
                                            "than its JSON"),
                            ("broken.example", "docker-credential-fake failed for broken.example: the keychain "
                                               "is locked"),
                            ("gone.example", "Docker's config names the credential helper 'nosuch' for gone.example, "
                                             "but docker-credential-nosuch is not installed")]:  # fmt: skip
        with pytest.raises(BaleineError) as raised:
            logins.find(server)
        assert raised.value.message.startswith(message), raised.value.message
    assert asked.read_text().split() == ["ghcr.io", "quay.io", "token.example", "odd.example", "broken.example"]
    _docker_config(docker, credsStore="fake")  # one helper for every registry, Docker Hub under Docker's key
    assert logins.find("docker.io") == ("hubhelped", "hub", "docker-credential-fake")
    logins.save("docker.io", "ours", "kept")  # what baleine login kept comes first
    assert logins.find("docker.io")[:2] == ("ours", "kept")


def test_a_broken_auth_file_is_refused_by_name_not_overwritten(roots):
    root, _docker = roots
    (root / "auth.json").write_text('{"auths": [')
    for call in (lambda: logins.find("ghcr.io"), lambda: logins.save("ghcr.io", "u", "p")):
        with pytest.raises(BaleineError, match=f"cannot read the registry logins in {root / 'auth.json'}: .*"
                                               "fix or remove the file"):  # fmt: skip
            call()
    assert (root / "auth.json").read_text() == '{"auths": ['


@pytest.mark.parametrize("text", ["bad host!", "", "https://", "a b:5000", "ghcr.io/org name"])
def test_bad_registries_are_refused_by_name(roots, text):
    with pytest.raises(Invalid, match=r"invalid registry .*: use HOST\[:PORT\], e.g. ghcr.io"):
        logins.logout(text)


def login(node, *args, password=None):
    """baleine --json login ARGS; the parsed reply (password: given on stdin)."""
    done = subprocess.run(node.argv("--json", "login", *args), env=node.env, capture_output=True, text=True,
                          input=password and password + "\n", timeout=60)  # fmt: skip
    reply = json.loads(done.stdout)
    reply["exit"] = done.returncode
    return reply


@pytest.mark.integration
@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_kept_login_serves_pull_run_and_push(node, tmp_path, auth, podman_archives):
    with registry.running(tmp_path / "registry", auth) as hub:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        user, password = hub.credentials
        auth_file = node.root / "auth.json"
        wrong = login(node, hub.address, "--username", user, "--password-stdin", password="nope")
        assert wrong["exit"] != 0 and f"refused user '{user}'" in wrong["error"]["message"], wrong
        assert not auth_file.exists()
        if hub.tokens:
            hub.tokens.asked.clear()
        done = login(node, hub.address, "--username", user, "--password-stdin", password=password)
        assert done["ok"] and done["data"] == {"registry": hub.address, "username": user, "checked": True}, done
        if auth == "token":  # a login check asks for no repository, as docker login's does
            [(path, _)] = hub.tokens.asked
            assert "scope=" not in path and f"account={user}" in path, path
        assert auth_file.stat().st_mode & 0o777 == 0o600
        assert json.loads(auth_file.read_text()) == {"auths": {hub.address: {"auth": _encoded(user, password)}}}
        assert node.ok("info")["logins"] == [{"registry": hub.address, "username": user}]
        assert f"logins:     {hub.address} ({user})" in node.cli("info").stdout
        again = node.cli("login", hub.address)  # without --username: the kept login, checked again
        assert again.stdout == f"logged in to {hub.address} as {user}\n", again.stderr
        # run --pull missing, pull and push, none given a password
        ran = node.cli("container", "run", "--rm", f"{hub.address}/webfx:1", "cat", "index.html")
        assert ran.stdout == "hello from layer\n", ran.stderr
        assert pull(node, f"{hub.address}/webfx:1")["data"]["up_to_date"] is True
        pushed = push(node, "webfx-1", f"{hub.address}/copy:1")
        assert pushed["ok"], pushed
        # A kept password the registry no longer takes: the error says where it came from and how to renew it.
        auth_file.write_text(json.dumps({"auths": {hub.address: {"auth": _encoded(user, "changed")}}}))
        stale = pull(node, f"{hub.address}/webfx:1", "--name", "stale")
        renew = f"refused user '{user}', the login kept in {auth_file} (renew it: baleine login {hub.address})"
        assert renew in stale["error"]["message"], stale
        assert node.cli("logout", hub.address).stdout == f"logged out of {hub.address}\n"
        assert json.loads(auth_file.read_text()) == {"auths": {}}
        assert node.ok("logout", hub.address) == {"registry": hub.address, "removed": False}
        assert node.cli("logout", hub.address).stdout == f"no login for {hub.address} is kept: nothing to remove\n"
        anonymous = pull(node, f"{hub.address}/webfx:1", "--name", "anonymous")
        assert f"baleine login {hub.address}" in anonymous["error"]["message"], anonymous
        # docker login's file serves too, when baleine keeps none
        docker = node.env["DOCKER_CONFIG"]
        os.makedirs(docker)
        with open(os.path.join(docker, "config.json"), "w") as handle:
            json.dump({"auths": {f"http://{hub.address}": {"auth": _encoded(user, password)}}}, handle)
        assert pull(node, f"{hub.address}/webfx:1", "--name", "viadocker")["ok"]
        # and so does the credential helper it names for the registry
        program = tmp_path / "bin" / "docker-credential-test"
        program.parent.mkdir()
        program.write_text(f'#!/bin/sh\nread -r server\necho \'{{"Username": "{user}", "Secret": "{password}"}}\'\n')
        program.chmod(0o755)
        with open(os.path.join(docker, "config.json"), "w") as handle:
            json.dump({"credHelpers": {hub.address: "test"}}, handle)
        path = {"PATH": f"{program.parent}:{os.environ['PATH']}"}
        assert pull(node, f"{hub.address}/webfx:1", "--name", "viahelper", env=path)["ok"]
        checked = subprocess.run(node.argv("login", hub.address), env={**node.env, **path}, capture_output=True,
                                 text=True, timeout=60)  # fmt: skip
        assert checked.stdout == f"logged in to {hub.address} as {user}\n", checked.stderr
        assert json.loads(auth_file.read_text()) == {"auths": {}}  # Docker's login checked, not copied into ours


def _docker_login(node, address, entry):
    """Docker's config.json for the node's commands, with one inline login entry for address."""
    os.makedirs(node.env["DOCKER_CONFIG"], exist_ok=True)
    path = os.path.join(node.env["DOCKER_CONFIG"], "config.json")
    with open(path, "w") as handle:
        json.dump({"auths": {address: entry}}, handle)
    return path


@pytest.mark.integration
def test_an_identity_token_is_traded_for_bearer_tokens(node, tmp_path, podman_archives):
    """As `docker login` keeps one for Azure's registry: the OAuth2 refresh token, POSTed to the realm."""
    with registry.running(tmp_path / "registry", "token") as hub, registry.running(tmp_path / "basic", "basic") as lock:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        null_user = _encoded("00000000-0000-0000-0000-000000000000", "")  # beside it, as az acr login writes it
        config = _docker_login(node, hub.address, {"auth": null_user, "identitytoken": hub.tokens.refresh})
        hub.tokens.asked.clear()
        assert pull(node, f"{hub.address}/webfx:1")["ok"]
        assert push(node, "webfx-1", f"{hub.address}/copy:1")["ok"]
        checked = node.cli("login", hub.address)
        assert checked.stdout == f"logged in to {hub.address} with an identity token\n", checked.stderr
        assert hub.tokens.asked == []  # no GET, so the token was in no URL
        form = {"grant_type": "refresh_token", "refresh_token": hub.tokens.refresh, "client_id": "baleine",
                "service": f"registry-{hub.port}", "content-type": "application/x-www-form-urlencoded"}  # fmt: skip
        scopes = [posted.pop("scope", None) for posted in hub.tokens.posted]
        assert all(posted == form for posted in hub.tokens.posted), hub.tokens.posted
        assert scopes[0] == "repository:webfx:pull" and "repository:copy:pull,push" in scopes and scopes[-1] is None
        # A token the service no longer takes: named, with where it came from and how to renew it.
        _docker_login(node, hub.address, {"auth": null_user, "identitytoken": "expired"})
        stale = pull(node, f"{hub.address}/webfx:1", "--name", "stale")
        assert stale["error"]["message"] == (
            f"the login service of {hub.address} refused the identity token, the login kept in {config} "
            "(renew it: docker login again): 400 Bad Request"
        ), stale
        # A registry that takes only passwords (Basic) is not sent the token.
        lock.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        _docker_login(node, lock.address, {"identitytoken": "anything"})
        refused = pull(node, f"{lock.address}/webfx:1", "--name", "basic")
        assert refused["error"]["message"] == (
            f"registry {lock.address} wants a password (Basic), not the identity token, the login kept in {config} "
            "(renew it: docker login again)"
        ), refused


@pytest.mark.integration
def test_a_registry_that_asks_for_no_login_keeps_it_unchecked(node, tmp_path):
    with registry.running(tmp_path / "registry") as hub:
        done = node.cli("login", hub.address, "--username", "someone", "--password-stdin", input="pw\n")
        assert done.stdout == f"logged in to {hub.address} as someone (kept unchecked: {hub.address} asks for no " + (
            "login)\n"
        ), done.stderr
        assert node.ok("info")["logins"] == [{"registry": hub.address, "username": "someone"}]


@pytest.mark.integration
def test_bad_logins_are_refused_before_anything_is_kept(node, tmp_path):
    dead = f"127.0.0.1:{registry.free_port()}"
    before = node.state_files()
    for args, stdin, message in [
        (("nosuch.example",), None, "no login for nosuch.example is kept: give --username (and --password-stdin)"),
        (
            ("ghcr.io", "--username", "bot"),
            "",
            "--username bot needs a password: pipe it in with --password-stdin, or run on a terminal to be asked",
        ),
        (("ghcr.io", "--password-stdin"), "pw\n", "--password-stdin needs --username: the registry login's name"),
        (("ghcr.io", "--username", "bot", "--password-stdin"), "\n", "--password-stdin read no password"),
        (  # `< /dev/zero` was read until memory ran out
            ("ghcr.io", "--username", "bot", "--password-stdin"),
            "x" * (65 << 10),
            "--password-stdin read more than 64 KiB without a line end: not a password",
        ),
        (("bad host!",), None, "invalid registry 'bad host!': use HOST[:PORT], e.g. ghcr.io"),
        ((dead, "--username", "bot", "--password-stdin"), "pw\n", f"cannot reach registry {dead}"),
    ]:
        given = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        done = subprocess.run(node.argv("--json", "login", *args), env=node.env, capture_output=True, text=True,
                              timeout=60, **given)  # fmt: skip
        reply = json.loads(done.stdout)
        assert done.returncode != 0 and reply["error"]["message"].startswith(message), (args, reply)
    assert node.state_files() == before and not (node.root / "auth.json").exists()
