"""Where image.push and deploy take an image from: files, this machine's images, a registry."""

import hashlib

import pytest

from fleet import images
from fleet.errors import FleetError


def test_an_image_file_is_pushed_under_the_given_name_with_its_sha256(tmp_path):
    path = tmp_path / "web.ext4"
    path.write_bytes(b"\0" * 4096 + b"data")
    source = images.file_source(str(path), "web")
    assert source.meta["name"] == "web" and source.meta["source"] == "file:web.ext4"
    assert source.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert images.payload_bytes(str(path)) >= 4


def test_a_missing_file_or_local_image_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FleetError, match="no image file"):
        images.file_source(str(tmp_path / "none.ext4"), "web")
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    with pytest.raises(FleetError, match=r"no such image 'web'.* on this machine; use --from HOST"):
        images.local_source("web")


@pytest.mark.integration
def test_deploy_pulls_an_image_here_when_the_spec_says_so(tmp_path, monkeypatch, podman_archives):
    """build = "pull:REF": this machine pulls it once, then pushes it (the hosts need no registry access).

    The registry wants a login: the one `docker login` left on this machine serves.
    """
    import base64
    import json

    import registry

    from fleet import apps
    from fleet.tasks import deploy

    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "here"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with registry.running(tmp_path / "registry", "basic") as hub:
        hub.push(f"docker-archive:{podman_archives / 'webfx-docker.tar'}", "webfx:1")
        spec = {"network": {"name": "farm", "subnet": "10.42.0.0/24"},
                "apps": {"web": {"image": "page", "build": f"pull:{hub.address}/webfx:1"}}}  # fmt: skip
        app = apps.parse(spec, "f").apps["web"]
        assert deploy.image_source(app, dry_run=True) is None  # a dry run builds nothing
        with pytest.raises(FleetError, match=f"could not build image 'page' from pull:{hub.address}/webfx:1"):
            deploy.image_source(app, dry_run=False)  # no login yet
        (tmp_path / "docker").mkdir()
        login = base64.b64encode(":".join(hub.credentials).encode()).decode()
        (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {hub.address: {"auth": login}}}))
        source = deploy.image_source(app, dry_run=False)
    assert source.meta["name"] == "page" and source.meta["source"].startswith(f"pull:{hub.address}/webfx:1@sha256:")
    assert source.meta["config"]["WorkingDir"] == "/www"
    source.close()
