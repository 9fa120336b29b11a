"""The seccomp filter's program, run here by a small classic-BPF interpreter, and its syscall tables."""

import re
import struct
from pathlib import Path

import pytest

from fleet.node import parse, seccomp
from fleet.node.errors import Invalid

KILL, ALLOW, EPERM, ENOSYS = 0x80000000, 0x7FFF0000, 0x00050001, 0x00050026
DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID")


def run_filter(program, nr, arch, arg0=0):
    """What the kernel would do with this call: the filter's return value."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    steps = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        code, true, false, k = steps[pc]
        if code == 0x20:  # load a word of seccomp_data
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:
            return k
        elif code in (0x15, 0x35, 0x45):
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: bool(accumulator & k)}[code]
            pc += true if taken else false
        else:
            raise AssertionError(f"unknown instruction {code:#x}")
        pc += 1


@pytest.mark.parametrize("arch", list(seccomp.ARCHITECTURES))
def test_what_the_filter_refuses_and_lets_through(arch):
    audit, column = seccomp.ARCHITECTURES[arch]
    number = {name: numbers[column] for name, numbers in seccomp.NUMBERS.items()}
    program = seccomp.program(DEFAULT, arch)
    assert len(program) // 8 < 4096  # the kernel's limit on one filter
    verdict = lambda name, arg0=0: run_filter(program, number[name], audit, arg0)  # noqa: E731
    for name in ("keyctl", "add_key", "io_uring_setup", "mount", "bpf", "init_module", "reboot", "setns"):
        assert verdict(name) == EPERM, name
    assert verdict("clone3") == ENOSYS  # libc then uses clone, whose flags the filter can read
    assert verdict("clone", 0x10000000 | 0x11) == EPERM and verdict("unshare", 0x10000000) == EPERM
    assert verdict("clone", 0x01200011) == ALLOW and verdict("unshare", 0x04000000) == ALLOW  # fork, new uts
    assert run_filter(program, 39 if arch == "x86_64" else 172, audit) == ALLOW  # getpid
    assert run_filter(program, 20, 0x40000003) == KILL  # an i386 call: its numbers mean other things
    with_admin = seccomp.program((*DEFAULT, "SYS_ADMIN"), arch)
    assert run_filter(with_admin, number["mount"], audit) == ALLOW
    assert run_filter(with_admin, number["clone"], audit, 0x10000000) == ALLOW
    assert run_filter(with_admin, number["keyctl"], audit) == EPERM  # no capability guards the keyring


def test_x32_calls_are_killed_on_x86_64():
    program = seccomp.program(DEFAULT, "x86_64")
    assert run_filter(program, 0x40000000 | 39, 0xC000003E) == KILL


def test_an_unknown_machine_is_refused_with_the_way_out():
    with pytest.raises(seccomp.Unsupported, match="knows x86_64, aarch64, riscv64, not ppc64le: run with "):
        seccomp.program(DEFAULT, "ppc64le")


def _header_numbers(path):
    """{name: number} of a unistd header's __NR_name (and asm-generic's __NR3264_name) lines."""
    found = re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", Path(path).read_text())
    return {match.group(1): int(match.group(2)) for match in found}


def test_the_tables_match_the_kernel_headers():
    """x86_64 from its own header, aarch64 and riscv64 from asm-generic (libc6-dev and linux-libc-dev)."""
    x86 = _header_numbers("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    generic = _header_numbers("/usr/include/asm-generic/unistd.h")
    for name, (on_x86, on_generic) in seccomp.NUMBERS.items():
        assert x86.get(name) == on_x86, name
        assert generic.get(name) == on_generic, name


@pytest.mark.parametrize(
    ("values", "chosen"),
    [((), "default"), (("seccomp=unconfined",), "unconfined"), (("seccomp:unconfined",), "unconfined"),
     (("no-new-privileges",), "default"), (("seccomp=unconfined", "seccomp=default"), "default")],
)  # fmt: skip
def test_security_options(values, chosen):
    assert parse.security_options(values) == chosen


@pytest.mark.parametrize("value", ["seccomp=/etc/profile.json", "apparmor=unconfined", "no-new-privileges=false", ""])
def test_other_security_options_are_refused(value):
    with pytest.raises(Invalid, match=f"unknown security option {value!r}: use seccomp=unconfined"):
        parse.security_options([value])
