"""One thin wrapper per kernel primitive, and the one place tools are run.

Constants first, wrappers next; decisions live in the modules that call them.
libc is reached through _ctypes, the C module under ctypes, on first use: most
verbs never make a raw syscall, and `import ctypes` itself costs a process
2.5 ms of type set-up for the few types used here.
"""

import errno
import os
import struct

from .errors import CommandFailed, Missing

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_V3 = 0x20080522
_SYS_CAPGET, _SYS_CAPSET = {"x86_64": (125, 126), "aarch64": (90, 91), "riscv64": (90, 91)}.get(
    os.uname().machine, (None, None)
)

# Capability numbers (linux/capability.h), by their names without CAP_.
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]

AT_FDCWD = -100
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10
_SYS_OPEN_TREE = 428  # same number on every architecture (the unified syscall table)
_SYS_MOVE_MOUNT = 429

LOOP_SET_FD = 0x4C00
LOOP_SET_STATUS64 = 0x4C04
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4

# glibc has no pivot_root() wrapper; the syscall number depends on the CPU.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217, "armv7l": 218}

RTLD_NOW = 2
_libc = []
_types = []


class _Libc:
    """The C library's functions as attributes, each returning a C int and keeping errno for
    oserror(): what ctypes.CDLL(None, use_errno=True) gives."""

    def __init__(self):
        import _ctypes

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = c_types().int

        self._handle = _ctypes.dlopen(None, RTLD_NOW)  # the libc this Python runs on
        self._function = Function

    def __getattr__(self, name):  # only for names not looked up before
        function = self._function((name, self))
        setattr(self, name, function)
        return function


def libc():
    """The C library, loaded once."""
    if not _libc:
        _libc.append(_Libc())
    return _libc[0]


def c_types():
    """C int, unsigned long and char, as ctypes defines them (made once)."""
    if not _types:
        from _ctypes import _SimpleCData

        class Int(_SimpleCData):
            _type_ = "i"

        class UnsignedLong(_SimpleCData):
            _type_ = "L"

        class Char(_SimpleCData):  # arrays of it have .raw and .value, as ctypes' c_char arrays
            _type_ = "c"

        _types.append(_CTypes(Int, UnsignedLong, Char))
    return _types[0]


class _CTypes:
    def __init__(self, int_type, ulong, char):
        self.int, self.ulong, self.char = int_type, ulong, char


def c_buffer(init):
    """A C char array the kernel may read and write: a copy of init (bytes), or init zero bytes."""
    data = bytearray(init)
    return (c_types().char * len(data)).from_buffer(data)  # it keeps data alive


def address(buffer):
    """Where a c_buffer lies in memory, for structures that point at it."""
    from _ctypes import addressof

    return addressof(buffer)


def last_errno():
    """errno as the last libc() call left it."""
    from _ctypes import get_errno

    return get_errno()


def oserror(what, filename=None):
    """Raise OSError from the errno the last libc call left."""
    number = last_errno()
    raise OSError(number, f"{what}: {os.strerror(number)}", filename)


def unshare(flags):
    if libc().unshare(flags) < 0:
        oserror("unshare")


def setns(fd, nstype=0):
    if libc().setns(fd, nstype) < 0:
        oserror("setns")


def loopback_up():
    """Set lo up in this process's network namespace, as `ip link set lo up` does, with no process to start."""
    import _socket  # not socket: the init would pay 3 ms for it
    import fcntl

    probe = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        flags = struct.unpack("16sh", fcntl.ioctl(probe, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
    finally:
        probe.close()


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1  # <linux/sockios.h>, <net/if.h>


def mount(source, target, fstype=None, flags=0, data=None):
    def enc(text):
        return None if text is None else os.fsencode(text)

    if libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)) < 0:
        oserror(f"mount {target}", target)


def umount(target, flags=0):
    if libc().umount2(os.fsencode(target), flags) < 0:
        oserror(f"umount {target}", target)


def pivot_root(new_root, put_old):
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise Missing(f"pivot_root: unknown syscall number on {os.uname().machine}")
    if libc().syscall(number, os.fsencode(new_root), os.fsencode(put_old)) < 0:
        oserror("pivot_root", new_root)


def open_tree(path):
    """A detached copy of the mount tree at path (a bind mount not yet attached anywhere)."""
    fd = libc().syscall(_SYS_OPEN_TREE, AT_FDCWD, os.fsencode(path), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
    if fd < 0:
        needs = " (Linux 5.2 or later is needed)" if last_errno() == errno.ENOSYS else ""
        oserror(f"open_tree {path}{needs}", path)
    return fd


def move_mount(tree_fd, target):
    """Attach a tree from open_tree() at target, following a symlink there as mount(2) would.

    Callers are inside the container's root: a symlink resolves within it.
    """
    flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS
    if libc().syscall(_SYS_MOVE_MOUNT, tree_fd, b"", AT_FDCWD, os.fsencode(target), flags) < 0:
        oserror(f"move_mount {target}", target)


def syncfs(fd):
    """Flush the filesystem holding fd to its device."""
    if libc().syncfs(fd) < 0:
        oserror("syncfs")


def sethostname(name):
    data = name.encode()
    if libc().sethostname(data, len(data)) < 0:
        oserror("sethostname")


def prctl(option, arg2=0, arg3=0):
    if libc().prctl(option, arg2, arg3, 0, 0) < 0:
        oserror("prctl")


def prlimit(pid, resource, soft, hard):
    """Set a resource limit (RLIMIT_ number) of process pid (0: this one); -1 is unlimited."""
    limits = c_buffer(struct.pack("=QQ", soft & (2**64 - 1), hard & (2**64 - 1)))
    if libc().prlimit(pid, resource, limits, None) < 0:
        oserror("prlimit")


def load_seccomp(program):
    """Load program (struct sock_filter bytes) as a seccomp filter on this thread and what it execs."""
    filters = c_buffer(program)
    fprog = c_buffer(struct.pack("=HxxxxxxQ", len(program) // 8, address(filters)))
    ulong = c_types().ulong
    if libc().prctl(PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ulong(address(fprog)), ulong(0), ulong(0)) < 0:
        oserror("prctl(PR_SET_SECCOMP)")


def bpf(command, attr, what):
    """bpf(2): command with attr (bytes, or a bytearray the kernel may write back into); its result (an fd
    for a load or an open). OSError naming what failed."""
    from . import seccomp

    try:
        number = seccomp.NUMBERS["bpf"][seccomp.check_supported()[1]]
    except seccomp.Unsupported:
        raise OSError(38, f"baleine knows no bpf() call number on {seccomp.machine()}") from None  # ENOSYS
    buffer = (c_types().char * len(attr)).from_buffer(bytearray(attr) if isinstance(attr, bytes) else attr)
    result = libc().syscall(number, command, buffer, len(attr))
    if result < 0:
        oserror(f"bpf {what}")
    return result


def last_capability():
    """The highest capability number this kernel knows."""
    try:  # binary: in a container's init, after pivot_root, no codec module can be loaded
        with open("/proc/sys/kernel/cap_last_cap", "rb") as handle:
            return int(handle.read())
    except OSError:
        return len(CAPABILITIES) - 1


def limit_capabilities(keep):
    """Drop every capability not in keep (numbers) from the bounding and inheritable sets.

    Root gets its bounding set at exec, so this is what root in the container
    may hold; ambient capabilities are cleared; the effective and permitted
    sets are left for the caller's own last steps (setuid, exec).
    """
    for number in range(last_capability() + 1):
        if number not in keep:
            prctl(PR_CAPBSET_DROP, number)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = struct.pack("=Ii", _CAPABILITY_V3, 0)
    data = bytearray(24)  # two __user_cap_data_struct: effective, permitted, inheritable (32 bits each)
    _capability_call(_SYS_CAPGET, header, data)
    mask = sum(1 << number for number in keep)
    for half in (0, 1):
        effective, permitted, inheritable = struct.unpack_from("=3I", data, half * 12)
        struct.pack_into("=3I", data, half * 12, effective, permitted, inheritable & (mask >> (32 * half)) & 0xFFFFFFFF)
    _capability_call(_SYS_CAPSET, header, data)


def _capability_call(number, header, data):
    if number is None:
        raise Missing(f"capget/capset: unknown syscall numbers on {os.uname().machine}")
    buffer = (c_types().char * len(data)).from_buffer(data)
    if libc().syscall(number, header, buffer) < 0:
        oserror("capset" if number == _SYS_CAPSET else "capget")


def loop_attach(image, read_only=False):
    """Attach image to a free loop device that frees itself once unused.

    Returns (device path, open fd). The caller mounts the device, then closes
    the fd: with LO_FLAGS_AUTOCLEAR the kernel detaches the device when the
    last user (the mount) goes away, so a crash can never leak it.
    """
    import fcntl

    flags = LO_FLAGS_AUTOCLEAR | (LO_FLAGS_READ_ONLY if read_only else 0)
    backing = os.open(image, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        for _attempt in range(64):
            number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
            device = f"/dev/loop{number}"
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
            try:
                _loop_configure(fd, backing, flags, image)
                return device, fd
            except OSError as error:
                os.close(fd)
                if error.errno != 16:  # EBUSY: another process took it first
                    raise
        raise OSError(16, "no free loop device after 64 attempts", image)
    finally:
        os.close(control)
        os.close(backing)


def _loop_configure(fd, backing, flags, image):
    import fcntl

    name = os.fsencode(image)[-63:]
    info = struct.pack("=5Q4I64s64s32s2Q", 0, 0, 0, 0, 0, 0, 0, 0, flags, name, b"", b"", 0, 0)
    try:
        fcntl.ioctl(fd, LOOP_CONFIGURE, struct.pack("=II", backing, 0) + info + bytes(64))
    except OSError as error:
        if error.errno not in (22, 25):  # EINVAL/ENOTTY: kernel older than 5.8
            raise
        fcntl.ioctl(fd, LOOP_SET_FD, backing)
        fcntl.ioctl(fd, LOOP_SET_STATUS64, info)


def run(argv, stdin=None, netns_pid=None, check=True, progress=False):
    """Run a tool (argv list), return its stdout; CommandFailed if it fails.

    netns_pid runs it inside that process's network namespace; progress
    copies what the tool prints to our stderr as it comes. Written on
    fork/exec rather than subprocess: importing subprocess alone costs 12 ms,
    paid by every container start that plugs a network.
    """
    netns = os.open(f"/proc/{netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC) if netns_pid is not None else None
    pipes = [os.pipe() for _ in range(4)]  # exec report, stdin, stdout, stderr
    child = os.fork()
    if child == 0:
        _exec_child(argv, netns, pipes)
    for index, (read_end, write_end) in enumerate(pipes):
        os.close(write_end if index != 1 else read_end)
    if netns is not None:
        os.close(netns)
    echo = {pipes[2][0], pipes[3][0]} if progress else set()
    outputs = _exchange(pipes[1][1], (stdin or "").encode(), [pipes[0][0], pipes[2][0], pipes[3][0]], echo)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    report, stdout, stderr = (data.decode(errors="replace") for data in outputs)
    if report:
        step, number, reason = report.split(":", 2)
        if step == "exec" and int(number) == 2:
            raise Missing(f"{argv[0]} not found: install it (see README, 'Requirements')")
        raise CommandFailed(argv, 127, f"cannot {step} {argv[0]}: {reason}")
    if check and code != 0:
        raise CommandFailed(argv, code, stderr, stdout)
    return stdout


def _exec_child(argv, netns, pipes):
    """In the forked child: wire the pipes, enter the namespace, exec; never returns."""
    (_, report), (stdin, _), (_, stdout), (_, stderr) = pipes
    step = "setup"
    try:
        if netns is not None:
            setns(netns, CLONE_NEWNET)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        step = "exec"
        os.execvp(argv[0], argv)  # report is close-on-exec: EOF tells the parent exec worked
    except OSError as error:
        os.write(report, f"{step}:{error.errno}:{error.strerror}".encode())
    finally:
        os._exit(127)


def _exchange(stdin_fd, data, read_fds, echo=()):
    """Feed data to stdin_fd while draining read_fds, until all close; returns their bytes.

    What arrives on the fds in echo is also copied to our stderr.
    """
    import select

    outputs = {fd: bytearray() for fd in read_fds}
    writers = [stdin_fd] if data else []
    if not data:
        os.close(stdin_fd)
    view, open_fds = memoryview(data), list(read_fds)
    while open_fds or writers:
        readable, writable, _ = select.select(open_fds, writers, [])
        for fd in writable:
            try:
                view = view[os.write(fd, view[:65536]) :]
            except BrokenPipeError:  # the tool stopped reading: its exit status will say why
                view = view[:0]
            if not view:
                os.close(fd)
                writers = []
        for fd in readable:
            chunk = os.read(fd, 65536)
            if chunk:
                outputs[fd] += chunk
                if fd in echo:
                    os.write(2, chunk)
            else:
                os.close(fd)
                open_fds.remove(fd)
    return [bytes(outputs[fd]) for fd in read_fds]


def copy_range(source, out, start, end, what):
    """Copy bytes [start, end) of fd source to the same offsets of fd out, in the kernel (copy_file_range)."""
    offset = start
    while offset < end:
        copied = os.copy_file_range(source, out, end - offset, offset, offset)
        if copied == 0:
            raise OSError(5, f"{what} shrank while being copied")
        offset += copied


def collapse_range(path, length):
    """Remove the first length bytes of a file in place (fallocate --collapse-range); False where the
    filesystem cannot (tmpfs, btrfs) or util-linux's fallocate is missing. length: whole blocks."""
    try:
        run(["fallocate", "--collapse-range", "--offset", "0", "--length", str(length), path])
    except (CommandFailed, Missing):
        return False
    return True


def pid_start_time(pid):
    """The process's start time in clock ticks since boot, or None if it is gone.

    A pid alone is not an identity: pids are reused, the (pid, start) pair is not.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


def is_alive(pid, start):
    """True when pid runs and is the same process that started at `start`."""
    if not pid:
        return False
    found = pid_start_time(int(pid))
    return found is not None and str(found) == str(start)


def wait_gone(pid, timeout):
    """Wait until process pid exits (not necessarily our child); True if it did."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0, timeout) * 1000))
    finally:
        os.close(fd)
