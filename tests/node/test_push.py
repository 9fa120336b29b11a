"""image push to a real registry (distribution 2.8 on loopback), checked with skopeo and by pulling it back."""

import json
import subprocess
from urllib.parse import parse_qsl, urlsplit

import pytest
import registry
from test_imports import EXPECTED, image_tree
from test_pull import pull

pytestmark = pytest.mark.integration


def push(node, *args, password=None):
    """baleine --json image push ARGS; the parsed reply (password: given on stdin)."""
    done = subprocess.run(node.argv("--json", "image", "push", *args), env=node.env, capture_output=True, text=True,
                          input=password and password + "\n", timeout=120)  # fmt: skip
    reply = json.loads(done.stdout)
    reply["exit"] = done.returncode
    return reply


def test_a_pushed_image_comes_back_whole_and_a_second_push_sends_nothing(node, tmp_path, podman_archives):
    node.ok("image", "import", str(podman_archives / "webfx-docker.tar"), "--name", "web")
    with registry.running(tmp_path / "registry") as hub:
        reply = push(node, "web", f"{hub.address}/farm/web:2")
        assert reply["ok"], reply
        pushed = reply["data"]
        assert pushed["reference"] == f"{hub.address}/farm/web:2" and pushed["sent"] > 512 << 10
        seen = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{hub.address}/farm/web:2"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        inspected = json.loads(seen.stdout)
        assert inspected["Digest"] == pushed["digest"] and len(inspected["Layers"]) == 1
        assert "GREETING=bonjour" in inspected["Env"] and inspected["Architecture"] == "amd64"
        again = node.cli("image", "push", "web", f"{hub.address}/farm/web:2")  # the same bytes: nothing to send
        assert again.stdout == f"{hub.address}/farm/web:2@{pushed['digest']} (nothing sent: the registry had " + (
            "every blob)\n"
        ), again.stderr
        assert [line.split(": ")[1] for line in again.stderr.splitlines()] == ["already there", "already there"]
        back = pull(node, f"{hub.address}/farm/web:2", "--name", "back")
        assert back["ok"] and back["data"]["source"] == f"pull:{hub.address}/farm/web:2@{pushed['digest']}", back
    assert image_tree(node, "back", tmp_path / "tree") == EXPECTED
    config = node.ok("image", "inspect", "back")["config"]
    assert config["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"] and config["WorkingDir"] == "/www"


def test_a_push_logs_in_for_push_and_refusals_change_nothing(node, tmp_path):
    node.ok("image", "create", "bb", "--size", "16M", "--from", "busybox")
    with registry.running(tmp_path / "registry", "token") as hub:
        user, password = hub.credentials
        dead = f"127.0.0.1:{registry.free_port()}"
        before = node.state_files()
        for args, message in [
            (("bb", f"{hub.address}/bb:1"), f"the login service of {hub.address} refused anonymous access"),
            (("bb", f"{hub.address}/bb@sha256:" + "a" * 64), "to push to: give a tag (a digest is what a push makes)"),
            (("nope", f"{hub.address}/bb:1"), "no such image 'nope' (known: bb)"),
            (("bb", f"{dead}/bb:1"), f"cannot reach registry {dead}"),
        ]:
            reply = push(node, *args)
            assert not reply["ok"] and reply["exit"] != 0 and message in reply["error"]["message"], (args, reply)
        assert node.state_files() == before and [p.name for p in (node.root / "images").iterdir()] == [
            "bb.ext4", "bb.json"]  # fmt: skip
        hub.tokens.asked.clear()
        reply = push(node, "bb", f"{hub.address}/bb:1", "--username", user, "--password-stdin", password=password)
        assert reply["ok"], reply
        [(path, _authorization)] = hub.tokens.asked
        assert "scope=repository%3Abb%3Apull%2Cpush" in path
        back = pull(node, f"{hub.address}/bb:1", "--name", "bb2", "--username", user, "--password-stdin",
                    password=password)  # fmt: skip
        assert back["ok"], back
    done = node.cli("container", "run", "--rm", "bb2", "echo", "round trip")
    assert done.stdout == "round trip\n", done.stderr


def test_an_upload_cut_off_is_started_again(node, tmp_path, lan_address, podman_archives):
    node.ok("image", "import", str(podman_archives / "webfx-docker.tar"), "--name", "web")
    with registry.proxying(cut_uploads=2) as proxy, registry.running(tmp_path / "plain", host=lan_address) as plain:
        forward = {**node.env, "HTTP_PROXY": f"http://{proxy.address}"}
        done = subprocess.run(node.argv("image", "push", "web", f"{plain.address}/web:1", "--insecure"), env=forward,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0 and proxy.cut_uploads == 0, done.stderr
        again = [line for line in done.stderr.splitlines() if line.endswith("; starting the upload again")]
        assert len(again) == 2 and all(f"cannot reach registry {plain.address}" in line for line in again), again
        back = pull(
            node,
            f"{plain.address}/web:1",
            "--name",
            "back",
            "--insecure",
            env={"HTTP_PROXY": f"http://{proxy.address}"},
        )
        assert back["ok"], back  # the registry holds the whole layer: every digest checked on the way back
        proxy.cut_uploads = 10  # a repository that lacks the layer: it is uploaded, and cut off each time
        argv = node.argv("--json", "image", "push", "back", f"{plain.address}/other:1", "--insecure")
        reply = json.loads(subprocess.run(argv, env=forward, capture_output=True, text=True, timeout=120).stdout)
        assert reply["error"]["message"].startswith("the upload of blob sha256:"), reply
        assert " broke off 3 times, the last: cannot reach registry " in reply["error"]["message"]
        assert proxy.cut_uploads == 7


def test_a_push_elsewhere_on_the_registry_mounts_the_layer_and_reads_no_file(node, tmp_path, podman_archives):
    node.ok("image", "import", str(podman_archives / "webfx-docker.tar"), "--name", "web")
    with registry.running(tmp_path / "registry", "token") as hub:
        user, password = hub.credentials
        node.cli("login", hub.address, "--username", user, "--password-stdin", input=password + "\n")
        first = push(node, "web", f"{hub.address}/farm/web:1")
        assert first["ok"] and first["data"]["sent"] > 512 << 10, first
        image = node.ok("image", "inspect", "web")
        kept = image["config"]["Layer"]  # what the push learnt, for this very image file
        assert kept["Image"] == image["digest"] and kept["Repositories"] == [f"{hub.address}/farm/web"], kept
        # The image file spoilt under its recorded digest: a push that read it would fail.
        disk = node.root / "images" / "web.ext4"
        saved = disk.read_bytes()
        disk.write_bytes(bytes(len(saved)))
        hub.tokens.asked.clear()
        done = subprocess.run(node.argv("image", "push", "web", f"{hub.address}/prod/web:1"), env=node.env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        said = done.stderr.splitlines()
        assert said[1] == f"layer {kept['Digest'][:19]}: mounted from farm/web", said
        # The token for the mount lets us push here and read the source.
        scopes = [[value for key, value in parse_qsl(urlsplit(path).query) if key == "scope"]
                  for path, _ in hub.tokens.asked]  # fmt: skip
        assert ["repository:prod/web:pull,push", "repository:farm/web:pull"] in scopes, scopes
        kept = node.ok("image", "inspect", "web")["config"]["Layer"]
        assert kept["Repositories"] == [f"{hub.address}/farm/web", f"{hub.address}/prod/web"]
        disk.write_bytes(saved)
        back = pull(node, f"{hub.address}/prod/web:1", "--name", "back")
        assert back["ok"], back
        assert image_tree(node, "back", tmp_path / "tree") == EXPECTED
        # Sources that no longer hold it (their links gone): the mounts are refused, the layer is made and sent.
        for link in (hub.directory / "storage").rglob("_layers/sha256/*/link"):
            if link.parent.name == kept["Digest"][7:]:
                link.unlink()
        again = push(node, "web", f"{hub.address}/third/web:1")
        assert again["ok"] and again["data"]["sent"] > 512 << 10, again
