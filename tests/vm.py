"""A small cgroup-v2 machine for the tests: Debian's cloud kernel under qemu.

This host runs hybrid cgroups (v1 controllers), but most hosts today are pure
cgroup v2, so the v2 code is proven on a real v2 kernel: qemu in software
emulation boots linux-image-cloud-amd64 (fetched with `apt-get download`,
unpacked with `dpkg -x`, never installed) with an initramfs we build from
this host's files: busybox, python3 and its libraries, mkfs.ext4, loop.ko,
the baleine zipapp and a check script. Its /init mounts cgroup2 only, runs
the script, and powers off; the script's lines come back on the serial console.
"""

import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "vm"
PYTHON = "/usr/bin/python3.11"
PY_LIB = "/usr/lib/python3.11"
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils",
               "unittest", "__pycache__", "config-3.11-x86_64-linux-gnu", "site-packages", "dist-packages"}  # fmt: skip
TOOLS = ("/bin/busybox", "/usr/sbin/mkfs.ext4", "/usr/sbin/mke2fs", "/usr/sbin/debugfs")

INIT = """#!/bin/sh
# Copy ourselves onto a tmpfs and switch to it: pivot_root cannot leave the initial rootfs.
if [ "$$" = 1 ] && [ ! -e /.switched ]; then
  /bin/busybox mkdir -p /new && /bin/busybox mount -t tmpfs -o size=900m root /new
  /bin/busybox cp -a /bin /etc /lib /lib64 /usr /sbin /check /init /new/ 2>/dev/null
  /bin/busybox touch /new/.switched
  exec /bin/busybox switch_root /new /init
fi
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
insmod /lib/modules/loop.ko
ip link set lo up
echo "vm: cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
/usr/bin/python3.11 -I -S /check/inside.py /check/baleine.pyz
echo "vm: done $?"
poweroff -f
"""


def kernel():
    """(vmlinuz, loop.ko) from the cloud kernel package, downloaded once."""
    target = CACHE / "kernel"
    found = sorted(target.glob("boot/vmlinuz-*"))
    if not found:
        target.mkdir(parents=True, exist_ok=True)
        depends = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
        package = next(line.split()[-1] for line in depends.splitlines() if "Depends:" in line)
        subprocess.run([*host_network(), "apt-get", "download", package], cwd=CACHE, check=True, capture_output=True,
                       pass_fds=host_fds())  # fmt: skip
        deb = next(CACHE.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
        deb.unlink()
        found = sorted(target.glob("boot/vmlinuz-*"))
    loop = next(target.glob("lib/modules/*/kernel/drivers/block/loop.ko"))
    return found[-1], loop


def host_fds():
    """The fd of the host's network namespace scripts/isolated keeps open, for pass_fds (none outside it)."""
    fd = os.environ.get("BALEINE_TEST_HOST_NETNS_FD")
    return (int(fd),) if fd else ()


def host_network():
    """argv prefix reaching the Debian mirror from inside scripts/isolated (see there)."""
    return ["nsenter", f"--net=/proc/self/fd/{host_fds()[0]}", "--"] if host_fds() else []


def libraries(paths):
    """Every shared library the ELF files need (from ldd), with the loader."""
    needed = set()
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            words = line.split()
            if "=>" in words and len(words) > 2 and words[2].startswith("/"):
                needed.add(words[2])
            elif words and words[0].startswith("/"):
                needed.add(words[0])
    return needed


def stage(root, zipapp, check_script, loop_module):
    """Lay out the VM's files under root."""

    def copy(source, destination=None):
        target = root / (destination or source).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=True)

    for tool in (PYTHON, *TOOLS):
        copy(tool)
    for applet in subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True).stdout.split():
        link = root / applet
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    shutil.copytree(PY_LIB, root / PY_LIB.lstrip("/"), symlinks=True,
                    ignore=lambda _dir, names: [n for n in names if n in STDLIB_SKIP])  # fmt: skip
    dynload = list((root / PY_LIB.lstrip("/") / "lib-dynload").glob("*.so"))
    for library in libraries([PYTHON, *TOOLS, *dynload]):
        copy(library)
    copy(str(loop_module), "/lib/modules/loop.ko")
    copy(str(zipapp), "/check/baleine.pyz")
    copy(str(check_script), "/check/inside.py")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")


def cpio_newc(root):
    """The tree under root as a newc cpio archive (what the kernel unpacks as initramfs)."""
    out = bytearray()
    inode = 1

    def entry(name, mode, data=b"", nlink=1):
        nonlocal inode
        encoded = name.encode() + b"\0"
        fields = [inode, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.extend(b"070701" + b"".join(b"%08X" % field for field in fields) + encoded)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
        inode += 1

    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        info = path.lstat()
        if path.is_symlink():
            entry(name, info.st_mode, os.readlink(path).encode())
        elif path.is_dir():
            entry(name, info.st_mode, nlink=2)
        else:
            entry(name, info.st_mode, path.read_bytes())
    entry("TRAILER!!!", 0)
    return bytes(out)


def build(zipapp, check_script):
    """(vmlinuz, initramfs path), rebuilt only when the zipapp or the check script change."""
    vmlinuz, loop_module = kernel()
    digest = hashlib.sha256(Path(zipapp).read_bytes() + Path(check_script).read_bytes() + INIT.encode()).hexdigest()
    image = CACHE / f"initramfs-{digest[:16]}.cpio.gz"
    if not image.exists():
        root = CACHE / "stage"
        shutil.rmtree(root, ignore_errors=True)
        stage(root, zipapp, check_script, loop_module)
        for old in CACHE.glob("initramfs-*.cpio.gz"):
            old.unlink()
        image.write_bytes(gzip.compress(cpio_newc(root), compresslevel=1))
        shutil.rmtree(root)
    return vmlinuz, image


def boot(vmlinuz, initramfs, timeout=600):
    """Boot the VM (no network, no disk); returns its console output."""
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1536", "-smp", "2", "-nographic", "-no-reboot",
            "-nic", "none", "-kernel", str(vmlinuz), "-initrd", str(initramfs),
            "-append", "console=ttyS0 panic=-1 quiet cgroup_no_v1=all"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return done.stdout + done.stderr
