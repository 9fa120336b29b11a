"""--userns: root inside is an unprivileged id range on the host."""

import os
import stat

import pytest
from hostnet import free_subnet
from web import fetch

from fleet.node import userns


def test_ranges_are_allocated_lowest_free_first():
    assert userns.allocate(set()) == userns.BASE
    assert userns.allocate({userns.BASE, None}) == userns.BASE + 65536
    assert userns.allocate({userns.BASE + 65536}) == userns.BASE


def test_shift_tree_moves_owners_and_keeps_setuid(tmp_path):
    (tmp_path / "bin").mkdir()
    program = tmp_path / "bin" / "tool"
    program.write_text("x")
    os.chown(program, 0, 33)
    os.chmod(program, 0o4755)
    os.symlink("/etc/passwd", tmp_path / "link")  # must be lchowned, never followed
    passwd_owner = os.stat("/etc/passwd").st_uid
    userns.shift_tree(str(tmp_path), 5_000_000)
    assert (program.stat().st_uid, program.stat().st_gid) == (5_000_000, 5_000_033)
    assert stat.S_IMODE(program.stat().st_mode) == 0o4755  # chown cleared it; shift_tree put it back
    assert os.lstat(tmp_path / "link").st_uid == 5_000_000 and os.stat("/etc/passwd").st_uid == passwd_owner
    assert tmp_path.stat().st_uid == 5_000_000
    userns.shift_tree(str(tmp_path), 5_000_000)  # already shifted: left alone
    assert program.stat().st_uid == 5_000_000


@pytest.mark.integration
def test_root_inside_is_an_unprivileged_id_outside(busybox):
    busybox.ok("container", "run", "-d", "--name", "u1", "--userns", "bb", "sleep", "300")
    busybox.ok("container", "run", "-d", "--name", "u2", "--userns", "bb", "sleep", "300")
    owners = []
    for name in ("u1", "u2"):
        pid = busybox.ok("container", "inspect", name)["pid"]
        with open(f"/proc/{pid}/status") as handle:
            uid = next(line.split()[1] for line in handle if line.startswith("Uid:"))
        owners.append(int(uid))
        assert busybox.exec_out(name, "id", "-u") == "0\n"  # exec joins its user namespace too
    assert owners[0] >= userns.BASE and owners[1] >= userns.BASE and owners[0] != owners[1]
    assert busybox.exec_out("u1", "sh", "-c", "touch /mine && stat -c %u /mine") == "0\n"


@pytest.mark.integration
def test_a_root_owned_host_volume_is_read_only_to_it(busybox, tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir(mode=0o755)
    script = "touch /data/x 2>&1 || true"
    denied = busybox.cli(
        "container", "run", "--rm", "--userns", "--volume", f"{volume}:/data", "bb", "sh", "-c", script
    )
    assert "Permission denied" in denied.stdout and not (volume / "x").exists()
    busybox.cli("container", "run", "--rm", "--volume", f"{volume}:/data", "bb", "sh", "-c", script)
    assert (volume / "x").exists()  # the same without --userns: root is root


@pytest.mark.integration
def test_even_every_capability_does_not_reach_the_host(busybox):
    done = busybox.cli("container", "run", "--rm", "--userns", "--cap-add", "ALL", "bb", "sh", "-c",
                       "mkdir -p /m && mount -t tmpfs none /m")  # fmt: skip
    assert done.returncode == 1 and "mount: permission denied" in done.stderr, done.stdout + done.stderr


@pytest.mark.integration
def test_a_server_still_binds_port_80(busybox):
    busybox.ok("network", "create", "farm", "--subnet", free_subnet())
    page = "mkdir -p /www && echo from-userns > /www/index.html && exec httpd -f -p 80 -h /www"
    item = busybox.ok(
        "container", "run", "-d", "--name", "web", "--userns", "--network", "farm", "bb", "sh", "-c", page
    )
    assert fetch(f"http://{item['networks'][0]['address']}/") == "from-userns\n"
