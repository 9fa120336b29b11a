"""Named volumes: made on first use, kept across containers, removed only when no container names them."""

import os
import shutil
import struct
import subprocess

import pytest
from hostnet import free_subnet

pytestmark = pytest.mark.integration


def test_a_named_volume_outlives_its_containers(busybox):
    busybox.ok("container", "run", "--rm", "-v", "data:/data", "bb", "sh", "-c", "echo kept > /data/f")
    (volume,) = busybox.ok("volume", "list")
    assert (volume["name"], volume["path"], volume["containers"]) == (
        "data",
        str(busybox.root / "volumes" / "data"),
        [],
    )
    assert (busybox.root / "volumes" / "data" / "f").read_text() == "kept\n" and volume["bytes"] > 0
    done = busybox.cli("container", "run", "--rm", "-v", "data:/in:ro", "bb", "sh", "-c", "cat /in/f; touch /in/g")
    assert done.stdout == "kept\n" and "Read-only file system" in done.stderr

    busybox.ok("container", "create", "--name", "user", "-v", "data:/data", "bb", "true")
    assert busybox.ok("volume", "inspect", "data")["containers"] == ["user"]
    reply = busybox.call("volume", "rm", "data")
    assert (reply["error"]["code"], reply["error"]["message"]) == (
        "conflict", "volume 'data' is in use by container user: remove the container first")  # fmt: skip
    assert busybox.ok("volume", "prune") == []  # in use: kept
    busybox.ok("container", "rm", "user")
    (pruned,) = busybox.ok("volume", "prune")
    assert pruned["name"] == "data" and pruned["freed"] > 0
    assert busybox.ok("volume", "list") == [] and not (busybox.root / "volumes" / "data").exists()


def test_docker_s_mount_form_is_a_volume_a_bind_or_a_tmpfs(busybox, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("hi\n")
    script = "cat /www/index.html; echo kept > /data/f; df -k /scratch | tail -1; touch /www/x 2>&1 | grep -c Read-only"
    mounts = ("--mount", "type=volume,src=data,dst=/data",
              "--mount", f"type=bind,source={tmp_path / 'site'},target=/www,readonly",
              "--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1048576")  # fmt: skip
    done = busybox.cli("container", "run", "--rm", *mounts, "bb", "sh", "-c", script)
    lines = done.stdout.splitlines()
    assert lines[0] == "hi" and lines[1].split()[1] == "1024" and lines[2] == "1", done.stdout + done.stderr
    assert (busybox.root / "volumes" / "data" / "f").read_text() == "kept\n"


def test_volume_create_list_rm_and_errors(busybox):
    assert busybox.ok("volume", "create", "empty")["bytes"] == 0
    assert busybox.call("volume", "create", "empty")["error"]["message"] == "volume 'empty' already exists"
    assert busybox.call("volume", "create", "bad/name")["error"]["code"] == "invalid"
    assert busybox.call("volume", "rm", "ghost")["error"]["code"] == "not_found"
    reply = busybox.call("container", "create", "-v", "no_good!:/x", "bb", "true")
    assert reply["error"]["message"].startswith("invalid volume 'no_good!:/x': invalid volume name 'no_good!'")
    lines = busybox.cli("volume", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "USED", "CONTAINERS", "CREATED"] and lines[1].startswith("empty")
    busybox.ok("volume", "rm", "empty")
    assert busybox.ok("volume", "list") == []


def test_a_volume_made_for_a_userns_container_belongs_to_its_root(busybox):
    done = busybox.cli("container", "run", "--rm", "--userns", "-v", "mine:/data", "bb", "sh", "-c",
                       "touch /data/f && stat -c %u /data/f")  # fmt: skip
    assert done.stdout == "0\n", done.stderr
    owner = os.stat(busybox.root / "volumes" / "mine").st_uid
    assert owner >= 1_000_000_000  # the container's root on the host: its id range's first id


SITE = ("mkdir -p /srv/site/sub && echo hi > /srv/site/index.html && ln -s index.html /srv/site/link"
        " && head -c 65536 /dev/zero > /srv/site/sub/big && chown -R 33:33 /srv/site && chmod 0750 /srv/site"
        " && chmod 0640 /srv/site/index.html && mkfifo /srv/site/pipe && ln -s site /srv/alias")  # fmt: skip


@pytest.fixture
def site(busybox):
    """An image 'site' whose /srv/site holds files, a symlink, a fifo, owned by uid 33."""
    busybox.ok("container", "run", "--name", "maker", "bb", "sh", "-c", SITE)
    busybox.ok("container", "commit", "maker", "site")
    busybox.ok("container", "rm", "maker")
    return busybox


def test_an_empty_volume_gets_the_image_s_files_once(site, tmp_path):
    listing = "ls -ln /srv/site | awk 'NR>1 {print $1, $3, $NF}'; cat /srv/site/link"
    done = site.cli("container", "run", "--rm", "-v", "web:/srv/site", "site", "sh", "-c", listing)
    assert done.stdout.splitlines() == [
        "-rw-r----- 33 index.html", "lrwxrwxrwx 33 index.html", "prw-r--r-- 0 pipe", "drwxr-xr-x 33 sub", "hi"
    ], done.stderr  # fmt: skip
    volume = site.root / "volumes" / "web"
    assert sorted(os.listdir(volume)) == ["index.html", "link", "pipe", "sub"]  # no staging directory left
    info = os.stat(volume)
    assert (info.st_uid, oct(info.st_mode & 0o7777)) == (33, "0o750")  # the mount point's own, as /var/lib/mysql
    assert os.path.getsize(volume / "sub" / "big") == 65536

    site.ok("container", "run", "--rm", "-v", "web:/srv/site", "site", "sh", "-c", "echo mine > /srv/site/index.html")
    done = site.cli("container", "run", "--rm", "-v", "web:/srv/site", "site", "cat", "/srv/site/index.html")
    assert done.stdout == "mine\n"  # not empty any more: what a container wrote is never overwritten

    (tmp_path / "bare").mkdir()
    for option in ("web2:/srv/site:nocopy", f"{tmp_path / 'bare'}:/srv/site"):  # asked not to; a host directory
        assert site.cli("container", "run", "--rm", "-v", option, "site", "ls", "-A", "/srv/site").stdout == ""
    assert site.cli("container", "run", "--rm", "-v", "web3:/srv/none", "site", "ls", "-A", "/srv/none").stdout == ""
    done = site.cli("container", "run", "--rm", "-v", "web4:/srv/alias", "site", "cat", "/srv/alias/index.html")
    assert done.stdout == "hi\n", done.stderr  # a symlink in the image at the mount point: followed, as the mount is
    (tmp_path / "bare" / "mine").write_text("host\n")
    bound = f"{tmp_path / 'bare'}:/srv/alias"
    done = site.cli("container", "run", "--rm", "-v", bound, "site", "cat", "/srv/site/mine")
    assert done.stdout == "host\n", done.stderr  # a host directory too: mounted where the symlink leads, inside


def test_a_fill_cut_short_leaves_the_volume_empty_and_the_next_start_fills_it(site):
    path = site.ok("volume", "create", "small")["path"]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", path], check=True)
    try:
        reply = site.call("container", "run", "--rm", "-v", "small:/srv/site", "site", "true")
        assert reply["error"]["message"].endswith(
            "could not fill volume 'small' with the image's /srv/site: No space left on device; "
            "the volume is left empty"
        ), reply
        assert os.listdir(path) == []
    finally:
        subprocess.run(["umount", "-l", path], check=True)
    os.mkdir(os.path.join(path, ".baleine-filling"))  # as a start killed midway leaves it
    done = site.cli("container", "run", "--rm", "-v", "small:/srv/site", "site", "ls", "-A", "/srv/site")
    assert done.stdout.split() == ["index.html", "link", "pipe", "sub"], done.stderr


def test_a_userns_container_s_volume_is_filled_with_its_own_ids(site):
    done = site.cli("container", "run", "--rm", "--userns", "-v", "shifted:/srv/site", "site", "stat", "-c", "%u %a",
                    "/srv/site", "/srv/site/index.html")  # fmt: skip
    assert done.stdout == "33 750\n33 640\n", done.stderr  # as in the image, seen from inside
    assert os.stat(site.root / "volumes" / "shifted" / "index.html").st_uid >= 1_000_000_000 + 33


def _capability(bit):
    """A security.capability value (VFS_CAP_REVISION_2, effective) granting one capability."""
    return struct.pack("<IIIII", 0x02000001, 1 << bit, 0, 0, 0)


def test_a_fill_keeps_hard_links_and_extended_attributes(node, tmp_path):
    """A file capability (ping's cap_net_raw) or a hard-linked pair must survive the copy into the volume."""
    tree = tmp_path / "tree"  # not "root": the node's state is there
    (tree / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox") or "/bin/busybox", tree / "bin" / "busybox")
    data = tree / "srv" / "data"
    (data / "sub").mkdir(parents=True)
    (data / "first").write_text("one inode\n")
    os.link(data / "first", data / "sub" / "second")
    (data / "pinger").write_text("a program\n")
    os.chmod(data / "pinger", 0o755)
    os.setxattr(data / "pinger", "security.capability", _capability(13))  # CAP_NET_RAW
    os.setxattr(data / "sub", "user.origin", b"lab")
    os.setxattr(data, "user.top", b"mount point")
    node.ok("image", "create", "marked", "--size", "16M", "--from", str(tree))
    node.ok("container", "run", "--rm", "-v", "vol:/srv/data", "marked", "/bin/busybox", "true")
    volume = node.root / "volumes" / "vol"
    assert os.stat(volume / "first").st_ino == os.stat(volume / "sub" / "second").st_ino
    assert os.stat(volume / "first").st_nlink == 2 and (volume / "sub" / "second").read_text() == "one inode\n"
    assert os.getxattr(volume / "pinger", "security.capability") == _capability(13)  # set after the chown
    assert os.getxattr(volume / "sub", "user.origin") == b"lab" and os.getxattr(volume, "user.top") == b"mount point"
    assert sorted(os.listdir(volume)) == ["first", "pinger", "sub"]
    node.ok(
        "container", "run", "-d", "--name", "later", "-v", "vol2:/srv/data", "marked", "/bin/busybox", "sleep", "60"
    )
    second = node.root / "volumes" / "vol2"  # filled by a detached start's init: a fresh Python after the pivot
    assert os.stat(second / "first").st_ino == os.stat(second / "sub" / "second").st_ino
    assert os.getxattr(second / "pinger", "security.capability") == _capability(13)


def test_a_mount_onto_the_other_kind_of_thing_says_so(busybox, tmp_path):
    """A directory on an image's file, or a file on its directory: named, not EEXIST or EINVAL."""
    a_file = tmp_path / "a-file"
    a_file.write_text("hi\n")
    for options, message in [
        (("--tmpfs", "/bin/busybox"), "cannot mount a directory on /bin/busybox: the image has a file there"),
        (("-v", f"{tmp_path}:/etc/passwd"), "cannot mount a directory on /etc/passwd: the image has a file there"),
        (("-v", f"{a_file}:/etc"), "cannot mount a file on /etc: the image has a directory there"),
    ]:
        done = busybox.cli("container", "run", "--rm", *options, "bb", "true")
        assert (done.returncode, done.stderr) == (125, f"baleine: error: {message}\n"), done
    done = busybox.cli("container", "run", "--rm", "-v", f"{a_file}:/etc/motd", "bb", "cat", "/etc/motd")
    assert (done.returncode, done.stdout) == (0, "hi\n"), done  # a file where there was none: made for it


@pytest.mark.parametrize("pause", ["start:forked", "start:accepted"])
def test_the_inits_own_reason_is_told_when_it_fails_while_the_start_goes_on(busybox, pause):
    """An attached init builds its root while the start plugs its network and sets its limits. If it fails and
    exits meanwhile, those fail too (its namespace, its pid gone). The pause holds the start until it has gone."""
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    run = ("container", "run", "--rm", "--network", "farm", "--ulimit", "nofile=1000:1000", "--tmpfs", "/bin/busybox")
    done = busybox.cli(*run, "bb", "true", env={"BALEINE_FAULT": f"pause:{pause}"})
    message = "cannot mount a directory on /bin/busybox: the image has a file there"
    assert (done.returncode, done.stderr) == (125, f"baleine: error: {message}\n"), done
    assert busybox.ok("container", "list", "--all") == []


def test_a_bind_source_gone_from_the_host_is_named_at_start(busybox, tmp_path):
    source = tmp_path / "gone"
    source.mkdir()
    busybox.ok("container", "create", "--name", "g", "-v", f"{source}:/data", "bb", "true")
    source.rmdir()
    done = busybox.cli("container", "start", "g")
    message = f"volume {source}:/data: {source} is gone from the host"
    assert done.returncode != 0 and done.stderr == f"baleine: error: {message}\n", done
    assert busybox.ok("container", "inspect", "g")["status"] == "exited"
