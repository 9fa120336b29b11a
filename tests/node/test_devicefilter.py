"""cgroup v2's device filter: v1's rule arithmetic, the eBPF program, and the kernel deciding as v1 does.

The kernel test runs on this hybrid host, which has both: a child process in a
v1 devices cgroup and one in a v2 cgroup carrying our program try the same
opens and mknods; every answer must agree, and match what the rules mean.
"""

import ast
import contextlib
import errno
import os
import stat
import struct

import pytest
from conftest import CGROUP_PARENT

from fleet.node import devicefilter, limits, seccomp

CHAR, BLOCK = 2, 1
RW, RM, R, W, M, RWM = 6, 3, 2, 4, 1, 7


@pytest.mark.parametrize(
    ("allow", "deny", "expected"),
    [
        (["c 1:3 rwm", "c 1:5 r"], [], (False, {(CHAR, 1, 3): RWM, (CHAR, 1, 5): R})),
        (["c 1:3 r", "c 1:3 w"], [], (False, {(CHAR, 1, 3): RW})),  # merged into one exception
        (["c 1:3 rwm"], ["c 1:3 w"], (False, {(CHAR, 1, 3): RM})),  # taken off that very node
        (["c 1:3 rw"], ["c 1:3 rw"], (False, {})),
        # What the v1 kernel shows in devices.list for these writes, checked by hand on this host:
        # a deny takes nothing from another node's exception, even one its wildcard covers.
        (["c 1:* rwm", "c 1:3 rwm"], ["c 1:3 w", "c 1:* m", "b *:* r"],
         (False, {(CHAR, 1, None): RW, (CHAR, 1, 3): RM})),
        (["c 1:3 rwm", "a *:* rwm"], ["c 1:5 r", "b *:* m"], (True, {(CHAR, 1, 5): R, (BLOCK, None, None): M})),
        (["a 9:9 r"], [], (True, {})),  # a rule of kind a is every device, whatever follows
        (["c 1:3 rwm"], ["a *:* rwm"], (False, {})),
    ],
)  # fmt: skip
def test_effective_rules_follow_the_v1_kernel(allow, deny, expected):
    assert devicefilter.effective(allow, deny) == expected


def decoded(instructions):
    return [
        (code, regs & 0xF, regs >> 4, off, imm) for code, regs, off, imm in struct.iter_unpack("<BBhi", instructions)
    ]


def test_the_program_is_one_block_per_exception_ending_in_the_default():
    steps = decoded(devicefilter.program(["c 1:3 rwm", "c 1:5 r", "b 7:* rw"], []))
    assert steps[-2:] == [(0xB7, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]  # r0 = 0 (deny), exit
    exits = [index for index, step in enumerate(steps) if step[0] == 0x95]
    assert len(exits) == 4 and [steps[index - 1][4] for index in exits] == [1, 1, 1, 0]
    for index, (code, _dst, _src, off, _imm) in enumerate(steps):
        if code in (0x55, 0x15, 0x45):  # a jump lands on the first instruction of the next block
            assert steps[index + off][0] == 0x95 and index + off + 1 in (6, *[e + 1 for e in exits])
    # c 1:3 rwm: kind and both numbers compared, no access test; b 7:* rw: no minor test, an access test.
    assert [step[4] for step in steps[6:9]] == [CHAR, 1, 3] and steps[9] == (0xB7, 0, 0, 0, 1)
    block = steps[exits[1] + 1 : exits[2] + 1]
    assert [(s[0], s[1], s[4]) for s in block[:3]] == [(0x55, 2, BLOCK), (0x55, 4, 7), (0x45, 3, M)]


def test_everything_allowed_but_some_is_a_list_of_denials():
    steps = decoded(devicefilter.program(["a *:* rwm"], ["c 1:5 r"]))
    assert steps[-2][4] == 1  # allowed by default
    assert (0x54, 6, 0, 0, R) in steps and (0x15, 6, 0, 2, 0) in steps  # refused when the request asks for r


# The kernel's answers. Only harmless nodes are ever opened; the others are only made (mknod).
OPENED = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "urandom": (1, 9)}
MADE = {"mem": ("c", 1, 1), "disk": ("b", 8, 0), "loop": ("b", 7, 200), "tun": ("c", 10, 200)}
EVERYTHING = {*(f"{name} {access}" for name in OPENED for access in ("r", "w", "rw", "m")), *(f"{n} m" for n in MADE)}
WRITES = {f"{name} {access}" for name in OPENED for access in ("w", "rw")}
# (allow, deny, what is refused)
RULE_SETS = {
    "defaults": (limits.DEFAULT_DEVICES, (), {"mem m", "disk m", "loop m", "tun m"}),
    "denies of exact nodes": (
        (*limits.DEFAULT_DEVICES, "c 10:200 rwm", "b 7:* m"), ("c 1:9 rwm", "c 1:3 w", "c 1:5 m"),
        {"mem m", "disk m", "urandom r", "urandom w", "urandom rw", "urandom m", "null w", "null rw", "zero m"},
    ),
    "denies taking nothing from wildcards": (  # only 1:5 r is taken, off the 1:5 exception
        ("c 1:* rw", "c 1:5 r", "c 1:5 w", "b *:* m"), ("c 1:3 w", "c 1:5 r", "b 8:* m"),
        {"mem m", "tun m", "null m", "zero m", "full m", "urandom m"},
    ),
    "all allowed then denials": (
        ("c 1:3 rwm", "a *:* rwm"), ("c 1:5 r", "b *:* m", "c 1:* w", "c 10:200 m"),
        {"zero r", "zero rw", *WRITES, "disk m", "loop m", "tun m"},
    ),
    "all denied at the end": (limits.DEFAULT_DEVICES, ("a *:* rwm",), EVERYTHING),
}  # fmt: skip


def probe(directory, scratch):
    """{what: 'refused' or 'allowed'} for opens and mknods done by this process."""
    answers = {}
    for name in OPENED:
        for access, flags in (("r", os.O_RDONLY), ("w", os.O_WRONLY), ("rw", os.O_RDWR)):
            answers[f"{name} {access}"] = _try(_open_and_close, os.path.join(directory, name), flags)
    for name, (kind, major, minor) in {**MADE, **{n: ("c", *numbers) for n, numbers in OPENED.items()}}.items():
        mode = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        target = os.path.join(scratch, f"{name}-{os.getpid()}")
        answers[f"{name} m"] = _try(os.mknod, target, mode | 0o600, os.makedev(major, minor))
        if os.path.exists(target):
            os.unlink(target)
    return answers


def _open_and_close(path, flags):
    os.close(os.open(path, flags))


def _try(action, *args):
    try:
        action(*args)
        return "allowed"
    except OSError as error:
        if error.errno != errno.EPERM:
            raise
        return "refused"


def answers_in(procs_file, directory, scratch):
    """probe() run by a child process that first moves into the cgroup of procs_file."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with open(procs_file, "w") as handle:
                handle.write(str(os.getpid()))
            os.write(writer, repr(probe(directory, scratch)).encode())
        except BaseException as error:  # noqa: BLE001 - told to the parent, whatever it is
            os.write(writer, repr({"error": repr(error)}).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as handle:
        text = handle.read().decode()
    os.waitpid(pid, 0)
    return ast.literal_eval(text)


@pytest.fixture
def nodes(tmp_path):
    directory, scratch = tmp_path / "dev", tmp_path / "scratch"
    directory.mkdir()
    scratch.mkdir()
    for name, (major, minor) in OPENED.items():
        os.mknod(directory / name, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    return str(directory), str(scratch)


@pytest.fixture
def groups():
    """A v1 devices cgroup and a v2 cgroup made per test, removed after."""
    made = []

    def make(kind, name):
        path = f"/sys/fs/cgroup/{kind}/{CGROUP_PARENT}/{name}"
        os.makedirs(path)
        made.append(path)
        return path

    yield make
    for path in reversed(made):
        os.rmdir(path)
    for kind in ("devices", "unified"):
        with contextlib.suppress(OSError):  # the parent goes with its last cgroup, as baleine leaves it
            os.rmdir(f"/sys/fs/cgroup/{kind}/{CGROUP_PARENT}")


@pytest.mark.integration
@pytest.mark.parametrize("rules", RULE_SETS)
def test_the_v2_filter_decides_as_the_v1_cgroup(rules, nodes, groups):
    allow, deny, refused = RULE_SETS[rules]
    v1, v2 = groups("devices", f"v1-{len(allow)}-{len(deny)}"), groups("unified", f"v2-{len(allow)}-{len(deny)}")
    with open(f"{v1}/devices.deny", "w") as handle:
        handle.write("a")
    for file, rule_list in (("devices.allow", allow), ("devices.deny", deny)):
        for rule in rule_list:
            with open(f"{v1}/{file}", "w") as handle:
                handle.write(rule)
    devicefilter.attach(v2, allow, deny)
    by_v1 = answers_in(f"{v1}/cgroup.procs", *nodes)
    by_v2 = answers_in(f"{v2}/cgroup.procs", *nodes)
    assert by_v2 == by_v1
    assert {what for what, answer in by_v2.items() if answer == "refused"} == refused


@pytest.mark.integration
def test_a_new_filter_replaces_the_old_one(nodes, groups):
    group = groups("unified", "replaced")
    devicefilter.attach(group, limits.DEFAULT_DEVICES, ("c 1:7 w",))
    [first] = devicefilter.attached(group)
    assert answers_in(f"{group}/cgroup.procs", *nodes)["full w"] == "refused"
    devicefilter.attach(group, limits.DEFAULT_DEVICES, ())
    [second] = devicefilter.attached(group)
    assert second != first
    assert answers_in(f"{group}/cgroup.procs", *nodes)["full w"] == "allowed"


def test_a_machine_without_a_known_bpf_number_gets_a_clear_error(monkeypatch):
    monkeypatch.setattr(seccomp, "machine", lambda: "sparc64")
    with pytest.raises(OSError, match="no bpf\\(\\) call number on sparc64"):
        devicefilter.attached("/")
