"""The container's init: runs as pid 1 of the new namespaces, then execs the command.

Runs inside fresh mount, uts, ipc, net, cgroup and pid namespaces: a fresh
interpreter started by a detached container's shell waiter, or forked by an
attached container's Python waiter (launch.py). It mounts the container's
disk copy, pivots into it (never a bare chroot), builds a minimal /dev, binds
baleine's /etc files and the volumes, waits for the network to be plugged,
and execs the command. Every mount
after pivot_root resolves inside the container, so a symlink in the image can
never aim a mount at the host. It talks to the starting command over a unix
socket that exec closes: EOF means the command is running.
"""

# The init's start-up time is every container's start-up time: use the builtin
# _socket and _signal (the socket and signal modules pull in enum) and receive
# the config as marshal data instead of importing json.
import _signal
import _socket
import os
import stat
import sys

from . import linux, seccomp
from .linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))  # fmt: skip
ETC_FILES = ("hostname", "hosts", "resolv.conf")
INIT = "/dev/init"  # where --init's host binary is bound: /dev is the container's own tmpfs
# What baleine makes in /dev: a --device may not take one of these paths.
DEV_PATHS = (*(f"/dev/{name}" for name, _, _ in DEVICES), *(f"/dev/{name}" for name, _ in DEV_LINKS), INIT,
             "/dev/pts", "/dev/shm")  # fmt: skip
# What root in a container may still do: Podman's default set.
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP",
                        "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")  # fmt: skip
# Kernel files that tell too much or control the host: hidden (files under
# /dev/null, directories under an empty read-only tmpfs) or made read-only.
MASKED_PATHS = ("/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug",
                "/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware")  # fmt: skip
READ_ONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHM_SIZE = 64 << 20  # /dev/shm, as in Docker


class SetupError(Exception):
    """Init could not start the command; status follows Docker (125/126/127)."""

    def __init__(self, message, status=125):
        super().__init__(message)
        self.status = status


def main(argv, config=None):
    """Entry point: argv is [container directory]; the start socket is in it.

    config: given by a forked init, which has it from its parent's memory and
    so builds the root while the starting command plugs the network; a
    started one receives it once the starting command has accepted it.
    """
    import marshal

    (directory,) = argv
    os.chdir(directory)  # a relative socket name: unix socket paths are capped at 108 bytes
    channel = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    channel.connect("start.sock")
    try:
        if config is None:
            config = {}  # until it arrives: the error reports below read it
            config = marshal.loads(_receive(channel, int.from_bytes(_receive(channel, 8), "big")))
        disk = prepare(directory, config)
        channel.sendall(f"disk {disk}\n".encode())  # io limits and device rules need it
        if _receive(channel, 3) != b"go\n":
            raise SetupError("the starting command went away before the network was ready")
        if config.get("userns"):
            linux.unshare(linux.CLONE_NEWUSER)  # after every mount: those need the host's root
            channel.sendall(b"userns\n")
            if _receive(channel, 3) != b"ok\n":
                raise SetupError("the starting command did not map the user namespace")
        if config.get("tty"):
            _hand_over_terminal(channel)
        if config.get("init"):  # it runs as pid 1: it reaps orphans and passes signals on to the command
            config = dict(config, command=[INIT, "--", *config["command"]])
        enter(config)
    except SetupError as error:
        _report(channel, error.status, str(error), config.get("log_errors", True))
    except OSError as error:
        _report(channel, 125, f"container setup failed: {error}", config.get("log_errors", True))


def _hand_over_terminal(channel):
    """run -t: a pty of the container's /dev/pts; its master goes to the starting command, the slave is our stdio."""
    from .terminal import open_pty  # loaded by the attached waiter: nothing can load from our root now

    master, slave = open_pty("/dev/pts")
    channel.sendmsg([b"tty\n"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, sys.byteorder))])
    os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)


def _report(channel, status, message, to_stderr):
    """Tell the starting command why the start failed (it says so itself), then exit.

    to_stderr: our stderr is the container's log, where the reason belongs
    too. An attached run's stderr is the person's terminal, which the starting
    command's own error line reaches already: once is enough there, unless
    the starting command has gone.
    """
    line = f"baleine: {message}\n"
    if to_stderr:
        sys.stderr.write(line)
    try:
        channel.sendall(f"error {status} {message}\n".encode())
    except OSError:
        if not to_stderr:
            sys.stderr.write(line)
    finally:
        os._exit(status)


def _receive(channel, size):
    """Exactly size bytes from the starting command (fewer only if it went away)."""
    data = b""
    while len(data) < size:
        chunk = channel.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def prepare(directory, config):
    """Mount the disk, pivot into it, then build /proc, /sys, /dev, /etc files, volumes.

    Returns the disk's loop device as 'MAJ:MIN'.
    """
    linux.mount(None, "/", None, MS_REC | linux.MS_PRIVATE)
    if not config.get("host_network"):
        linux.loopback_up()  # its own network namespace: 127.0.0.1 works with no network too, as Docker's none
    number = _mount_disk(directory, config)
    sources = _open_sources(directory, config)
    empty_volumes = _empty_volumes(config)
    if config.get("init"):
        sources[INIT] = (linux.open_tree(config["init"]), True)
    _pivot(os.path.join(directory, "rootfs"))
    _refuse_kernel_symlinks()
    _mount_kernel_files()
    _mount_dev(config)
    _set_sysctls(config.get("sysctls", {}))  # before /proc/sys turns read-only
    if config.get("userns"):  # its network stays the host user namespace's: let root inside bind port 80
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", "w") as handle:
            handle.write("0")
    _mask_and_protect()
    _fill_volumes(empty_volumes)
    _bind_sources(sources, config, tmpfs=config.get("tmpfs", ()))
    linux.sethostname(config["hostname"])
    return f"{os.major(number)}:{os.minor(number)}"


def enter_files(directory, config):
    """Make this process's root the container's files as it sees them, without running it.

    For `container cp` on a container that is not running: the disk with
    baleine's /etc files and the volumes on it, read-only where the container
    has them so. The caller has unshared its mount namespace: nothing of this
    is seen outside, and it all goes when the process exits.
    """
    linux.mount(None, "/", None, MS_REC | linux.MS_PRIVATE)
    _mount_disk(directory, config)
    written = [name for name in ETC_FILES if os.path.exists(os.path.join(directory, name))]  # at its first start
    sources = _open_sources(directory, config, written)
    _pivot(os.path.join(directory, "rootfs"))
    _bind_sources(sources, config)


def _mount_disk(directory, config):
    """Mount the container's disk copy on its rootfs directory; returns the loop device's number."""
    device, loop_fd = linux.loop_attach(os.path.join(directory, "disk.ext4"))
    try:
        linux.mount(device, os.path.join(directory, "rootfs"), "ext4", _disk_flags(config))
        return os.fstat(loop_fd).st_rdev
    finally:
        os.close(loop_fd)  # the mount now holds the loop device; autoclear frees it after


def _disk_flags(config):
    return MS_NODEV | (MS_NOSUID if config.get("no_suid") else 0)


def _bind_sources(sources, config, tmpfs=()):
    """Attach the /etc files and volumes (from _open_sources) and the tmpfs mounts, then make the root
    read-only if asked."""
    for target, (fd, read_only) in sources.items():
        _bind_fd(fd, target, read_only)
    root = int(config.get("userns") or 0)  # the container's root, as the host knows it
    for mount in tmpfs:
        _make_mount_point(mount["target"], is_dir=True)
        flags = MS_NOSUID | MS_NODEV | (0 if mount["exec"] else MS_NOEXEC)
        data = f"size={mount['size']},mode={mount['mode']:o},uid={root},gid={root}"
        linux.mount("tmpfs", mount["target"], "tmpfs", flags, data)
    if config.get("read_only"):  # last: the mount points above had to be made first
        linux.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | _disk_flags(config))


def _open_sources(directory, config, etc_files=ETC_FILES):
    """Detached bind mounts (open_tree) of host files, made before the host root is gone."""
    sources = {}
    for name in etc_files:
        sources[f"/etc/{name}"] = (linux.open_tree(os.path.join(directory, name)), False)
    for volume in config.get("volumes", []):
        try:
            sources[volume["target"]] = (linux.open_tree(volume["source"]), volume["mode"] == "ro")
        except FileNotFoundError:
            raise SetupError(f"volume {volume['source']}:{volume['target']}: {volume['source']} is gone "
                             "from the host") from None  # fmt: skip
    return sources


def _empty_volumes(config):
    """[(volume, descriptor on its host directory)] for the named volumes to fill from the image."""
    wanted = [volume for volume in config.get("volumes", []) if volume.get("fill")]
    if not wanted:
        return []
    from . import prefill  # only now: loaded before the pivot, as after it our files are out of reach

    found = []
    for volume in wanted:
        fd = prefill.open_if_empty(volume["source"])
        if fd is not None:
            found.append((volume, fd))
    return found


def _fill_volumes(empty_volumes):
    if not empty_volumes:
        return  # and no import: after the pivot, prefill can only come from sys.modules
    from . import prefill  # loaded by _empty_volumes

    for volume, fd in empty_volumes:
        try:
            prefill.fill(volume["target"], fd)
        except OSError as error:
            raise SetupError(
                f"could not fill volume {volume['volume']!r} with the image's {volume['target']}: "
                f"{error.strerror}; the volume is left empty"
            ) from None


def _pivot(rootfs):
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching
    # it leaves only the container's tree, with nothing of the host reachable.
    os.chdir(rootfs)
    linux.pivot_root(".", ".")
    linux.umount(".", linux.MNT_DETACH)
    os.chdir("/")


def _refuse_kernel_symlinks():
    # An image whose /proc is a symlink could aim our /proc mount anywhere in it.
    for path in ("/proc", "/sys", "/dev"):
        if os.path.islink(path):
            raise SetupError(f"the image makes {path} a symlink: refusing to start it")


def _mask_and_protect():
    for path in MASKED_PATHS:
        if os.path.isdir(path) and not os.path.islink(path):
            linux.mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k")
        elif os.path.exists(path):
            linux.mount("/dev/null", path, None, MS_BIND)
    for path in READ_ONLY_PATHS:
        if os.path.exists(path):
            linux.mount(path, path, None, MS_BIND | MS_REC)
            linux.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def capability_numbers(names):
    """Capability names (without CAP_) as the kernel's numbers."""
    return {linux.CAPABILITIES.index(name) for name in names}


def _mount_kernel_files():
    for path in ("/proc", "/sys", "/dev"):
        os.makedirs(path, mode=0o755, exist_ok=True)
    linux.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    linux.mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _mount_dev(config):
    """A small tmpfs /dev with only the harmless nodes, its own ptys and shm, and the --device nodes."""
    root = int(config.get("userns") or 0)  # the container's root as the host knows it: it owns what root does
    linux.mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755,size=1024k")
    for name, major, minor in DEVICES:
        os.mknod(f"/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"/dev/{name}", 0o666)
    for device in config.get("devices", ()):  # made now, by the host's root: a user namespace could not
        os.makedirs(os.path.dirname(device["path"]), mode=0o755, exist_ok=True)
        kind = stat.S_IFCHR if device["type"] == "c" else stat.S_IFBLK
        os.mknod(device["path"], kind | device["mode"], os.makedev(device["major"], device["minor"]))
        os.chown(device["path"], device["uid"] + root, device["gid"] + root)
        os.chmod(device["path"], device["mode"])  # mknod's went through the umask
    os.mkdir("/dev/pts", 0o755)
    linux.mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.mkdir("/dev/shm", 0o1777)
    shm_size = config.get("shm_size", SHM_SIZE)
    linux.mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={shm_size}")
    os.chmod("/dev/shm", 0o1777)
    for name, target in DEV_LINKS:
        os.symlink(target, f"/dev/{name}")


def _set_sysctls(sysctls):
    """--sysctl: kernel settings of the container's own namespaces (its network, its IPC)."""
    for key, value in sysctls.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:  # os-level: after the pivot, open() could not load a codec from the host's library
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except FileNotFoundError:
            raise SetupError(f"--sysctl {key}: no such setting in this kernel") from None
        except OSError as error:
            raise SetupError(f"--sysctl {key}={value}: the kernel refused it ({error.strerror})") from None


def _bind_fd(fd, target, read_only):
    """Attach the detached bind mount fd at target; target resolves inside the container."""
    is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    _make_mount_point(target, is_dir)
    linux.move_mount(fd, target)
    if read_only:
        linux.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    os.close(fd)


def _make_mount_point(target, is_dir):
    """Make target, in the container, ready to mount a directory or a file on.

    SetupError when the image has the other kind there: the kernel would only say EEXIST or EINVAL.
    """
    if is_dir:
        if os.path.lexists(target) and not os.path.isdir(target):
            raise SetupError(f"cannot mount a directory on {target}: the image has a file there")
        os.makedirs(target, mode=0o755, exist_ok=True)
        return
    if os.path.isdir(target) and not os.path.islink(target):
        raise SetupError(f"cannot mount a file on {target}: the image has a directory there")
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if os.path.islink(target):
        os.unlink(target)  # images often link resolv.conf elsewhere; ours replaces it
    if not os.path.exists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def enter(config, joining=False):
    """Become the configured user in the working directory and exec the command.

    A container's start makes its working directory, as Docker's does; a
    command joining it (exec) does not change its files: a missing one is an error.
    """
    env = dict(item.split("=", 1) for item in config.get("env", []))
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = config["hostname"]
    uid, gid, groups, home = resolve_user(config.get("user") or "0", group_add=config.get("group_add", ()))
    env.setdefault("HOME", home)
    workdir = config.get("workdir") or "/"
    try:
        if not joining:
            os.makedirs(workdir, mode=0o755, exist_ok=True)
        os.chdir(workdir)
    except FileNotFoundError:
        raise SetupError(f"working directory {workdir}: no such directory in the container", 126) from None
    except (FileExistsError, NotADirectoryError):
        raise SetupError(f"working directory {workdir}: a file of the image is in the way") from None
    except OSError as error:
        raise SetupError(f"working directory {workdir}: {error.strerror}") from None
    if config.get("tty"):
        from .terminal import take_as_controlling  # loaded before the namespaces changed (launch.exec_in)

        take_as_controlling(0)
    capabilities = config.get("capabilities", DEFAULT_CAPABILITIES)
    linux.limit_capabilities(capability_numbers(capabilities))
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)  # no setuid binary or file capability raises privileges
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    for number in (_signal.SIGPIPE, _signal.SIGXFSZ):  # Python ignores these; the command must not
        _signal.signal(number, _signal.SIG_DFL)
    if config.get("seccomp") != seccomp.UNCONFINED:  # last: nothing but the exec runs under it here
        try:
            seccomp.install(capabilities)
        except seccomp.Unsupported as error:
            raise SetupError(str(error)) from None
    execute(config["command"], env)


def execute(argv, env):
    """execvpe without os.execvpe: after pivot_root the host's stdlib is gone, and
    os.execvpe imports a module lazily. Search PATH as execvp(3) does."""
    program = argv[0]
    candidates = [program] if "/" in program else [os.path.join(d or ".", program) for d in env["PATH"].split(":")]
    denied = None
    for candidate in candidates:
        try:
            os.execve(candidate, argv, env)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError as error:
            denied = error
        except OSError as error:
            raise SetupError(f"{program}: cannot execute: {error.strerror}", 126) from None
    if denied is not None:
        raise SetupError(f"{program}: permission denied (not executable)", 126)
    raise SetupError(f"{program}: executable file not found in the container's PATH", 127)


def resolve_user(spec, etc="/etc", group_add=()):
    """'USER[:GROUP]' (names or ids) -> (uid, gid, supplementary gids, home) from the image.

    group_add: more groups (names or ids, --group-add) among the supplementary ones.
    """
    user_part, _, group_part = spec.partition(":")
    passwd = _read_db(os.path.join(etc, "passwd"))
    entry = _lookup(passwd, user_part, 2)
    if entry is None and not user_part.isdigit():
        raise SetupError(f"unable to find user {user_part!r} in the image's /etc/passwd")
    uid = int(entry[2]) if entry else int(user_part)
    gid = int(entry[3]) if entry else 0  # an id the image does not know: group root, as Docker does
    home = entry[5] if entry and len(entry) > 5 and entry[5] else "/"
    group_db = _read_db(os.path.join(etc, "group"))
    if group_part:
        group = _lookup(group_db, group_part, 2)
        if group is None and not group_part.isdigit():
            raise SetupError(f"unable to find group {group_part!r} in the image's /etc/group")
        gid = int(group[2]) if group else int(group_part)
    name = entry[0] if entry else None
    extra = [int(g[2]) for g in group_db if name and len(g) > 3 and name in g[3].split(",")]
    for wanted in group_add:
        group = _lookup(group_db, wanted, 2)
        if group is None and not wanted.isdigit():
            raise SetupError(f"--group-add: unable to find group {wanted!r} in the image's /etc/group")
        extra.append(int(group[2]) if group else int(wanted))
    return uid, gid, sorted({gid, *extra}), home


def _read_db(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n").split(":") for line in handle if line.count(":") >= 2]
    except OSError:
        return []


def _lookup(rows, key, id_column):
    for row in rows:
        if row[0] == key or (key.isdigit() and row[id_column] == key):
            return row
    return None


if __name__ == "__main__":
    main(sys.argv[1:])
