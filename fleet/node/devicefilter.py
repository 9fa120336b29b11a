"""Device rules on cgroup v2: a small eBPF program attached to the container's cgroup.

cgroup v1 takes rules in devices.allow and devices.deny; v2 has no such files.
There the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program, attached to the
cgroup, about every open and mknod of a device node by the cgroup's processes.
This module writes that program from the rules v1 takes ('TYPE MAJ:MIN ACCESS'),
loads it and attaches it. Once attached, nothing of ours runs or stays open:
the cgroup holds the program, and the kernel frees it with the cgroup.

The program decides as the v1 cgroup does given the same writes (limits.py:
'a' denied, then the allow rules, then the deny rules), quirks included, so a
container's rules mean one thing on every host: see effective().
Programs that systemd attaches to the cgroups above still apply.
"""

import os
import struct

from . import linux

PROG_TYPE_CGROUP_DEVICE = 15
ATTACH_CGROUP_DEVICE = 6
ALLOW_MULTI = 2  # BPF_F_ALLOW_MULTI: ours runs beside the parents', each must allow
_PROG_LOAD, _PROG_ATTACH, _PROG_DETACH, _PROG_GET_FD_BY_ID, _PROG_QUERY = 5, 8, 9, 13, 16
_KINDS = {"a": None, "b": 1, "c": 2}  # None: every device; BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_ALL_ACCESS = 7

# The eBPF opcodes used (class | op | source).
_LOAD_WORD = 0x61  # dst = *(u32 *)(src + off)
_AND, _SHIFT_RIGHT, _MOVE_REG = 0x54, 0x74, 0xBC  # 32-bit ALU: dst &= imm, dst >>= imm, dst = src
_MOVE_IMM = 0xB7  # dst = imm (64-bit)
_JUMP_NE, _JUMP_EQ, _JUMP_SET = 0x55, 0x15, 0x45  # if dst != imm / == imm / & imm: skip off instructions
_EXIT = 0x95
# r1 points at struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}, access_type being
# (access << 16) | kind. Unpacked once: r2 kind, r3 access, r4 major, r5 minor.
_PROLOGUE = [
    (_LOAD_WORD, 2, 1, 0, 0), (_AND, 2, 0, 0, 0xFFFF),
    (_LOAD_WORD, 3, 1, 0, 0), (_SHIFT_RIGHT, 3, 0, 0, 16),
    (_LOAD_WORD, 4, 1, 4, 0), (_LOAD_WORD, 5, 1, 8, 0),
]  # fmt: skip


def parse_rule(text):
    """'c 1:3 rw' -> (kind or None for a, major or None for *, minor or None, access bits)."""
    kind, numbers, access = text.split()
    major, minor = (None if part == "*" else int(part) for part in numbers.split(":"))
    return _KINDS[kind], major, minor, sum(_ACCESS[letter] for letter in set(access))


def effective(allow, deny):
    """What v1 makes of 'deny a', then each allow rule, then each deny rule: (allowed by default, exceptions).

    exceptions: {(kind, major, minor): access bits}, the nodes that go against
    the default. As in the kernel (security/device_cgroup.c): a rule of kind
    'a' is every device whatever it says after the 'a', and sets the default;
    a rule against the default adds to the exception of its very node
    (wildcards being part of the node: 'c 1:*' is not 'c 1:3'); a rule for the
    default takes its access off that exception only.
    """
    allowed, exceptions = False, {}
    for rules, allowing in ((allow, True), (deny, False)):
        for rule in rules:
            kind, major, minor, access = parse_rule(rule)
            node = (kind, major, minor)
            if kind is None:
                allowed, exceptions = allowing, {}
            elif allowing != allowed:
                exceptions[node] = exceptions.get(node, 0) | access
            elif exceptions.get(node, 0) & ~access:
                exceptions[node] &= ~access
            else:
                exceptions.pop(node, None)
    return allowed, exceptions


def program(allow, deny):
    """The filter for these rules (lists of 'TYPE MAJ:MIN ACCESS'), as eBPF instructions (bytes)."""
    allowed, exceptions = effective(allow, deny)
    steps = list(_PROLOGUE)
    for node, access in exceptions.items():
        steps += _exception(node, access, int(not allowed))
    return _encode([*steps, (_MOVE_IMM, 0, 0, 0, int(allowed)), (_EXIT, 0, 0, 0, 0)])


def _exception(node, access, verdict):
    """Instructions returning verdict when the request falls under this exception, else going on to the next.

    As v1 matches: an allowing exception must hold every access asked for; a
    denying one refuses a request asking for any access it holds.
    """
    steps = [(_JUMP_NE, register, 0, None, value) for register, value in zip((2, 4, 5), node) if value is not None]
    if access != _ALL_ACCESS:
        if verdict:
            steps.append((_JUMP_SET, 3, 0, None, _ALL_ACCESS & ~access))
        else:
            steps += [(_MOVE_REG, 6, 3, 0, 0), (_AND, 6, 0, 0, access), (_JUMP_EQ, 6, 0, None, 0)]
    steps += [(_MOVE_IMM, 0, 0, 0, verdict), (_EXIT, 0, 0, 0, 0)]
    # A jump taken when the request does not fall under it skips to the end of the block: the next exception.
    return [(code, dst, src, len(steps) - index - 1 if off is None else off, imm)
            for index, (code, dst, src, off, imm) in enumerate(steps)]  # fmt: skip


def _encode(steps):
    return b"".join(struct.pack("<BBhi", code, src << 4 | dst, off, imm) for code, dst, src, off, imm in steps)


def attach(cgroup_path, allow, deny):
    """Put the filter for these rules on a v2 cgroup, in place of the one it had (update)."""
    directory = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        before = _attached(directory)
        loaded = _load(program(allow, deny))
        try:  # attached first, then the old removed: no moment without a filter
            linux.bpf(
                _PROG_ATTACH,
                struct.pack("=IIII", directory, loaded, ATTACH_CGROUP_DEVICE, ALLOW_MULTI),
                "attach of the device filter",
            )
        finally:
            os.close(loaded)
        for program_id in before:
            _detach(directory, program_id)
    finally:
        os.close(directory)


def attached(cgroup_path):
    """The ids of the device programs attached to this cgroup itself (not its parents')."""
    directory = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return _attached(directory)
    finally:
        os.close(directory)


def _attached(directory, room=64):
    ids = linux.c_buffer(4 * room)
    attr = bytearray(struct.pack("=IIIIQI", directory, ATTACH_CGROUP_DEVICE, 0, 0, linux.address(ids), room))
    linux.bpf(_PROG_QUERY, attr, "query of the device filter")
    count = struct.unpack_from("=I", attr, 24)[0]
    return list(struct.unpack_from(f"={count}I", ids.raw))


def _detach(directory, program_id):
    try:
        handle = linux.bpf(_PROG_GET_FD_BY_ID, struct.pack("=I", program_id), "open of the device filter")
    except OSError:
        return  # gone meanwhile
    try:
        linux.bpf(
            _PROG_DETACH, struct.pack("=III", directory, handle, ATTACH_CGROUP_DEVICE), "detach of the device filter"
        )
    finally:
        os.close(handle)


def _load(instructions):
    """A loaded program's fd; the verifier's log in the error when it refuses."""
    code = linux.c_buffer(instructions)
    license_text = linux.c_buffer(b"MIT\0")
    log = linux.c_buffer(4096)

    def attr(log_level):
        return struct.pack("=IIQQIIQII16sII", PROG_TYPE_CGROUP_DEVICE, len(instructions) // 8, linux.address(code),
                           linux.address(license_text), log_level, len(log) if log_level else 0,
                           linux.address(log) if log_level else 0, 0, 0, b"baleine_devices", 0, 0)  # fmt: skip

    try:
        return linux.bpf(_PROG_LOAD, attr(0), "load of the device filter")
    except OSError as error:
        if error.errno != 22:  # EINVAL: the verifier said no; ask again with its log
            raise
    try:
        return linux.bpf(_PROG_LOAD, attr(1), "load of the device filter")
    except OSError as error:
        reason = log.value.decode(errors="replace").strip().splitlines()
        raise OSError(error.errno, f"{error.strerror} ({reason[-1] if reason else 'no log'})") from None
