"""Attacks from inside a container: each test fails if the attack works.

Root inside keeps only Podman's default capabilities, runs under
no_new_privs, sees masked and read-only kernel files, and inherits no host
file descriptor.

Every attack is chosen to be harmless to the host even if it succeeds (a
regression must fail a test, not damage the machine): the clock is set to
the time it already shows, a sysctl is written its own value, sysrq gets
'h' (print help), writes to /sys aim at the container's own loopback.
"""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DEFAULT_BOUNDING = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID",
                    "SETPCAP", "SETUID", "SYS_CHROOT"}  # fmt: skip


def inside(node, script, *options):
    """Run a shell script in a fresh container; returns (exit code, stdout + stderr)."""
    done = node.cli("container", "run", "--rm", *options, "bb", "sh", "-c", script)
    return done.returncode, done.stdout + done.stderr


def status_field(node, field, *options):
    code, out = inside(node, f"grep '^{field}:' /proc/self/status", *options)
    assert code == 0, out
    return out.split(":", 1)[1].strip()


def capability_names(mask_hex):
    from fleet.node.linux import CAPABILITIES

    mask = int(mask_hex, 16)
    return {name for number, name in enumerate(CAPABILITIES) if mask >> number & 1}


def test_bounding_set_is_podmans_default(busybox):
    assert capability_names(status_field(busybox, "CapBnd")) == DEFAULT_BOUNDING
    assert capability_names(status_field(busybox, "CapEff")) == DEFAULT_BOUNDING  # root gets them at exec


def test_cap_add_and_cap_drop(busybox):
    added = capability_names(status_field(busybox, "CapBnd", "--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN"))
    assert added == DEFAULT_BOUNDING - {"CHOWN"} | {"NET_ADMIN"}
    assert capability_names(status_field(busybox, "CapBnd", "--cap-drop", "ALL")) == set()
    reply = busybox.call("container", "create", "--cap-add", "SUPERPOWER", "bb")
    assert not reply["ok"] and "unknown capability 'SUPERPOWER'" in reply["error"]["message"]


def test_no_new_privs_and_no_capabilities_for_other_users(busybox):
    assert status_field(busybox, "NoNewPrivs") == "1"
    assert capability_names(status_field(busybox, "CapEff", "--user", "nobody")) == set()


@pytest.mark.parametrize(
    ("attack", "script"),
    [
        ("mount a filesystem", "mkdir -p /m && mount -t tmpfs none /m"),
        ("unmount /proc", "umount /proc"),
        ("unmount a masked path", "umount /proc/keys"),
        ("remount / elsewhere", "mkdir -p /m && mount --bind / /m"),
        ("write /proc/sysrq-trigger", "echo h > /proc/sysrq-trigger"),
        ("change a sysctl", "cat /proc/sys/vm/swappiness > /tmp/v && cat /tmp/v > /proc/sys/vm/swappiness"),
        ("make a block device", "mknod /tmp/disk b 8 0"),
        ("make a char device", "mknod /tmp/mem c 1 1"),
        ("set the clock", "date -s @$(date +%s)"),
        ("reboot", "reboot -f"),
        ("load a module", "insmod /etc/passwd"),
        ("raw socket", "ping -c 1 -W 1 127.0.0.1"),
        ("write /sys", "cat /sys/class/net/lo/mtu > /tmp/m && cat /tmp/m > /sys/class/net/lo/mtu"),
        ("leave its cgroup", "echo $$ > /sys/fs/cgroup/cgroup.procs"),
        ("change the host name of the host", "echo x > /proc/sys/kernel/hostname"),
        ("read kernel messages", "cat /dev/kmsg"),
    ],
)
def test_attack_fails(busybox, attack, script):
    code, out = inside(busybox, script)
    refused = code != 0 or "not permitted" in out  # busybox date reports EPERM yet exits 0
    assert refused, f"{attack} worked: {out}"


def test_masked_kernel_files_are_empty(busybox):
    script = "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; ls /proc/acpi | wc -l"
    code, out = inside(busybox, script)  # (this kernel has no /proc/kcore)
    assert code == 0 and out.split() == ["0", "0", "0", "0"], out


def test_no_host_process_visible_or_reachable(busybox):
    host_pid = os.getpid()
    _, out = inside(busybox, f"kill -0 {host_pid} 2>&1 || echo unreachable; ls /proc | grep -c '^[0-9]'")
    assert "unreachable" in out or str(host_pid) not in out
    assert int(out.split()[-1]) <= 3  # sh, ls, grep


def test_proc_1_root_and_dotdot_stay_inside(busybox, tmp_path):
    marker = tmp_path / "host-secret"
    marker.write_text("secret")
    script = f"cat /proc/1/root{marker} /proc/1/root/../../..{marker} /../../..{marker} 2>/dev/null; ls /proc/1/root/.."
    _, out = inside(busybox, script)
    assert "secret" not in out and "work" not in out.split()


def test_no_host_mount_is_visible(busybox):
    code, out = inside(busybox, "cat /proc/self/mountinfo")
    mount_points = {line.split()[4] for line in out.splitlines()}
    assert code == 0 and "/" in mount_points and "/etc/hosts" in mount_points, out
    assert not {point for point in mount_points if point.startswith(("/work", "/tmp/", "/var/lib", "/boot"))}, out


def test_only_its_own_interfaces(busybox):
    _, out = inside(busybox, "ls /sys/class/net")
    assert out.split() == ["lo"], out


def test_no_host_file_descriptor_reaches_the_container(busybox):
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        done = subprocess.run(busybox.argv("container", "run", "-d", "--name", "fds", "bb", "sleep", "300"),
                              env=busybox.env, capture_output=True, text=True, pass_fds=(write_end,))  # fmt: skip
        assert done.returncode == 0, done.stderr
        listing = subprocess.run(busybox.argv("container", "exec", "fds", "ls", "/proc/1/fd", "/proc/self/fd"),
                                 env=busybox.env, capture_output=True, text=True, pass_fds=(write_end,))  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    pid1, own = listing.stdout.split("\n\n")
    assert pid1.split()[1:] == ["0", "1", "2"], listing.stdout  # the first word is the heading
    assert own.split()[1:] == ["0", "1", "2", "3"], listing.stdout  # 3: ls reading its own directory


def test_image_making_proc_a_symlink_is_refused(node, tmp_path):
    import shutil

    from fleet.node import images

    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    shutil.copy(images.find_static_busybox(), tree / "bin/busybox")
    os.symlink("busybox", tree / "bin/sh")
    os.symlink("/", tree / "proc")
    node.ok("image", "create", "evil", "--size", "16M", "--from", str(tree))
    done = node.cli("container", "run", "--rm", "evil", "/bin/sh", "-c", "true")
    assert done.returncode == 125 and "/proc a symlink" in done.stderr


def test_read_only_root_keeps_its_etc_files_and_dev_writable(busybox):
    script = "touch /x 2>&1; touch /tmp/x 2>&1; echo ok > /dev/shm/x && cat /dev/shm/x; cat /etc/hostname"
    _, out = inside(busybox, script, "--read-only", "--hostname", "ro1")
    assert out.count("Read-only file system") == 2 and "ok\n" in out and "ro1" in out, out
    _, writable = inside(busybox, "touch /x && echo wrote")
    assert "wrote" in writable


def test_no_suid_mounts_the_disk_nosuid(busybox):
    _, out = inside(busybox, "grep ' / / ' /proc/self/mountinfo", "--no-suid")
    assert "nosuid" in out.split()[5] and "nodev" in out.split()[5], out
    _, default = inside(busybox, "grep ' / / ' /proc/self/mountinfo")
    assert "nosuid" not in default.split()[5] and "nodev" in default.split()[5], default


def test_a_device_node_shipped_in_the_image_is_useless(node, tmp_path):
    """Even with every capability: the disk is mounted nodev (and the devices cgroup denies it)."""
    import shutil

    from fleet.node import images

    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    shutil.copy(images.find_static_busybox(), tree / "bin/busybox")
    os.symlink("busybox", tree / "bin/sh")
    disk = os.stat("/").st_dev
    os.mknod(tree / "hostdisk", 0o666 | 0o060000, os.makedev(os.major(disk), os.minor(disk)))  # a block device
    node.ok("image", "create", "devimg", "--size", "16M", "--from", str(tree))
    done = node.cli("container", "run", "--rm", "--cap-add", "ALL", "devimg", "/bin/busybox", "head", "-c", "1",
                    "/hostdisk")  # fmt: skip
    assert done.returncode != 0 and "ermission denied" in done.stderr, done.stdout + done.stderr


@pytest.fixture
def attack_image(node, tmp_path):
    """An image holding busybox and tests/attacks/escape.c built static, also as a setuid-root copy."""
    import shutil

    from fleet.node import images

    tree = tmp_path / "attack-tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "etc").mkdir()
    shutil.copy(images.find_static_busybox(), tree / "bin/busybox")
    os.symlink("busybox", tree / "bin/sh")
    (tree / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    source = Path(__file__).resolve().parents[1] / "attacks" / "escape.c"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(tree / "bin/escape"), str(source)], check=True)
    shutil.copy(tree / "bin/escape", tree / "bin/suid-escape")
    os.chmod(tree / "bin/suid-escape", 0o4755)  # owned by root: a setuid-root program
    node.ok("image", "create", "attack", "--size", "32M", "--from", str(tree))
    return node


def test_chroot_escape_stays_in_the_container(attack_image, tmp_path):
    marker = tmp_path / "host-marker"
    marker.write_text("host")
    done = attack_image.cli("container", "run", "--rm", "attack", "/bin/escape", "chroot", str(marker))
    assert done.stdout == "contained\n", done.stdout + done.stderr  # pivot_root left no host root to climb to


def test_setuid_root_binary_gives_nothing_under_no_new_privs(attack_image):
    done = attack_image.cli("container", "run", "--rm", "--user", "nobody", "attack", "/bin/suid-escape", "euid")
    assert done.stdout == "65534\n", done.stdout + done.stderr


FILTERED = "getpid ok\nkeyctl EPERM\nio_uring EPERM\nclone3 ENOSYS\nunshare-user EPERM\nunshare-uts EPERM\n"


def test_the_seccomp_filter_refuses_what_capabilities_do_not_guard(busybox, attack_image):
    assert status_field(busybox, "Seccomp") == "2"  # filter mode
    done = attack_image.cli("container", "run", "--rm", "attack", "/bin/escape", "syscalls")
    assert done.stdout == FILTERED, done.stdout + done.stderr  # no user namespace: unshare-uts stays refused
    attack_image.ok("container", "run", "-d", "--name", "held", "attack", "/bin/busybox", "sleep", "60")
    assert attack_image.exec_out("held", "/bin/escape", "syscalls") == FILTERED  # exec runs under it too
    done = attack_image.cli("container", "run", "--rm", "--cap-add", "SYS_ADMIN", "attack", "/bin/escape", "syscalls")
    lifted = {"clone3 ENOSYS": "clone3 EINVAL", "unshare-user EPERM": "unshare-user ok",
              "unshare-uts EPERM": "unshare-uts ok"}  # fmt: skip
    expected = FILTERED
    for refused, allowed in lifted.items():
        expected = expected.replace(refused, allowed)
    assert done.stdout == expected, done.stdout  # SYS_ADMIN lifts the user namespace rule, not the keyring's


def test_seccomp_unconfined_runs_without_the_filter(busybox, attack_image):
    assert status_field(busybox, "Seccomp", "--security-opt", "seccomp=unconfined") == "0"
    done = attack_image.cli(
        "container", "run", "--rm", "--security-opt", "seccomp=unconfined", "attack", "/bin/escape", "syscalls"
    )
    # what the filter is for: in a user namespace of its own, root without SYS_ADMIN gets it back
    assert done.stdout == "getpid ok\nkeyctl ok\nio_uring ok\nclone3 EINVAL\nunshare-user ok\nunshare-uts ok\n"
    name = attack_image.ok("container", "create", "--security-opt", "seccomp=unconfined", "attack", "true")["name"]
    assert attack_image.ok("container", "inspect", name)["config"]["seccomp"] == "unconfined"
    reply = attack_image.call("container", "create", "--security-opt", "apparmor=x", "attack", "true")
    assert (reply["ok"], reply["error"]["code"]) == (False, "invalid")
    assert reply["error"]["message"].startswith("unknown security option 'apparmor=x': use seccomp=unconfined")
