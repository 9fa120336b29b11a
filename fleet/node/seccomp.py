"""The seccomp filter every container command runs under, unless --security-opt seccomp=unconfined.

Capabilities already keep root in a container from mounting, loading
modules or setting the clock; this filter closes what capabilities do not
guard, as Docker's and Podman's default profiles do: the kernel keyring
(not namespaced), io_uring, obsolete calls, and user namespaces, in which
a process would get every capability back over its own namespace and reach
kernel code no container needs. The calls a capability guards are refused
unless the container has that capability (--cap-add SYS_ADMIN gives back
mount and friends). A refused call fails with EPERM; clone3, whose flags
sit in memory a filter cannot read, fails with ENOSYS so that the C library
falls back to clone, whose flags it can. A call made with another
architecture's numbers (32-bit or x32 on x86_64) kills the process: the
numbers below would not mean what they say.

Classic BPF, built here from the tables below for the host's architecture
and loaded with prctl(PR_SET_SECCOMP) just before the command's exec.
"""

import os
import struct

UNCONFINED = "unconfined"

# AUDIT_ARCH_* of each machine, and which column of NUMBERS holds its syscall numbers.
ARCHITECTURES = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1), "riscv64": (0xC00000F3, 1)}
# name: (x86_64, asm-generic: aarch64 and riscv64); None where the call does not exist.
NUMBERS = {
    "clone": (56, 220), "unshare": (272, 97), "clone3": (435, 435), "setns": (308, 268), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "swapon": (167, 224), "swapoff": (168, 225),
    "reboot": (169, 142), "acct": (163, 89), "settimeofday": (164, 170), "clock_settime": (227, 112),
    "iopl": (172, None), "ioperm": (173, None), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "quotactl": (179, 60), "nfsservctl": (180, 42), "uselib": (134, None),
    "ustat": (136, None), "sysfs": (139, None), "_sysctl": (156, None), "syslog": (103, 116),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "lookup_dcookie": (212, 18),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "perf_event_open": (298, 241), "bpf": (321, 280),
    "userfaultfd": (323, 282), "open_by_handle_at": (304, 265), "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432),
    "fspick": (433, 433), "mount_setattr": (442, 442),
}  # fmt: skip
# The calls refused unless the container has the capability (None: refused always).
GUARDED = {
    None: ("keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "uselib",
           "ustat", "sysfs", "_sysctl", "nfsservctl"),
    "SYS_ADMIN": ("mount", "umount2", "pivot_root", "setns", "swapon", "swapoff", "quotactl", "lookup_dcookie",
                  "bpf", "perf_event_open", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
                  "mount_setattr"),
    "SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "SYS_BOOT": ("reboot", "kexec_load", "kexec_file_load"),
    "SYS_TIME": ("settimeofday", "clock_settime"),
    "SYS_PACCT": ("acct",),
    "SYS_RAWIO": ("iopl", "ioperm"),
    "SYS_PTRACE": ("userfaultfd",),
    "DAC_READ_SEARCH": ("open_by_handle_at",),
    "SYSLOG": ("syslog",),
}  # fmt: skip
CLONE_NEWUSER = 0x10000000
X32_SYSCALL_BIT = 0x40000000

_LOAD_WORD, _JEQ, _JGE, _JSET, _RETURN = 0x20, 0x15, 0x35, 0x45, 0x06
_KILL_PROCESS, _ERRNO, _ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (the low word of args[0]: little-endian only)
_EPERM, _ENOSYS = 1, 38


class Unsupported(Exception):
    """No syscall table for this machine."""


def machine():
    return os.uname().machine


def check_supported(arch=None):
    """(AUDIT_ARCH, column of NUMBERS) for this machine (or arch); Unsupported with the way out if none."""
    arch = arch or machine()
    if arch not in ARCHITECTURES:
        raise Unsupported(
            f"baleine's seccomp filter knows {', '.join(ARCHITECTURES)}, not {arch}: "
            f"run with --security-opt seccomp={UNCONFINED}"
        )
    return ARCHITECTURES[arch]


def refused(capabilities, arch=None):
    """The syscall numbers refused with EPERM to a container with these capabilities, ascending."""
    column = check_supported(arch)[1]
    names = [name for cap, calls in GUARDED.items() if cap not in capabilities for name in calls]
    return sorted({NUMBERS[name][column] for name in names} - {None})


def program(capabilities, arch=None):
    """The filter as bytes of struct sock_filter, for this machine (or arch)."""
    arch = arch or machine()
    audit_arch, column = check_supported(arch)
    steps = [(_LOAD_WORD, 0, 0, _ARCH), (_JEQ, 1, 0, audit_arch), (_RETURN, 0, 0, _KILL_PROCESS),
             (_LOAD_WORD, 0, 0, _NR)]  # fmt: skip
    if arch == "x86_64":  # the x32 ABI: same machine, its own numbers
        steps += [(_JGE, 0, 1, X32_SYSCALL_BIT), (_RETURN, 0, 0, _KILL_PROCESS)]
    for number in refused(capabilities, arch):
        steps += [(_JEQ, 0, 1, number), (_RETURN, 0, 0, _ERRNO | _EPERM)]
    if "SYS_ADMIN" not in capabilities:
        clone, unshare, clone3 = (NUMBERS[name][column] for name in ("clone", "unshare", "clone3"))
        steps += [
            (_JEQ, 0, 1, clone3), (_RETURN, 0, 0, _ERRNO | _ENOSYS),
            (_JEQ, 1, 0, clone), (_JEQ, 0, 3, unshare),  # either: look at its flags
            (_LOAD_WORD, 0, 0, _ARG0), (_JSET, 0, 1, CLONE_NEWUSER), (_RETURN, 0, 0, _ERRNO | _EPERM),
        ]  # fmt: skip
    steps.append((_RETURN, 0, 0, _ALLOW))
    return b"".join(struct.pack("=HBBI", *step) for step in steps)


def install(capabilities):
    """Load the filter on this process (no_new_privs must be set); its exec'd command keeps it."""
    from . import linux

    linux.load_seccomp(program(capabilities))
