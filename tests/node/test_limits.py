"""Limits as cgroup writes, v1 and v2, checked without a kernel (fake trees)."""

import pytest

from fleet.node import cgroups, devicefilter, limits
from fleet.node.errors import BaleineError, Invalid, Missing


def test_shares_to_weight_maps_ends_and_defaults():
    assert [limits.shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 100, 10000]
    assert limits.shares_to_weight(1) == 1 and limits.shares_to_weight(10**9) == 10000
    assert 1 < limits.shares_to_weight(512) < 100 < limits.shares_to_weight(2048) < 10000


def test_v1_writes():
    wanted = limits.from_options(memory="32M", cpus="0.5", cpu_shares="512", cpuset_cpus="0", pids_limit="50",
                                 host_cpus=2)  # fmt: skip
    assert limits.writes(wanted, 1) == [
        ("memory", "memory.limit_in_bytes", 32 << 20),
        ("memory", "memory.memsw.limit_in_bytes?", 32 << 20),
        ("memory", "memory.swappiness", 0),
        ("cpu", "cpu.cfs_period_us", 100000),
        ("cpu", "cpu.cfs_quota_us", 50000),
        ("cpu", "cpu.shares", 512),
        ("cpuset", "cpuset.cpus", "0"),
        ("pids", "pids.max", 50),
    ]


def test_v1_memsw_is_raised_before_memory_and_lowered_after():
    raise_it = limits.writes({"memory": 64 << 20}, 1, previous_memory=32 << 20)
    lower_it = limits.writes({"memory": 16 << 20}, 1, previous_memory=32 << 20)
    assert [name for _, name, _ in raise_it][:2] == ["memory.memsw.limit_in_bytes?", "memory.limit_in_bytes"]
    assert [name for _, name, _ in lower_it][:2] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes?"]


def test_v2_writes():
    wanted = limits.from_options(memory="1G", cpus="1.5", cpu_shares="1024", pids_limit="10", host_cpus=4)
    assert limits.writes(wanted, 2) == [
        (None, "memory.max", 1 << 30),
        (None, "memory.swap.max?", 0),
        (None, "cpu.max", "150000 100000"),
        (None, "cpu.weight", 100),
        (None, "pids.max", 10),
    ]


def test_io_limits_default_to_the_containers_disk():
    wanted = limits.from_options(io_write_bps=["2M"], io_read_iops=["7:9:100"])
    assert limits.io_writes(wanted, 1, "7:3") == [
        ("blkio", "blkio.throttle.write_bps_device", "7:3 2097152"),
        ("blkio", "blkio.throttle.read_iops_device", "7:9 100"),
    ]
    assert limits.io_writes(wanted, 2, "7:3") == [
        (None, "io.max", "7:3 wbps=2097152"),
        (None, "io.max", "7:9 riops=100"),
    ]


def test_device_rules_deny_all_but_our_nodes_as_v1_files_or_one_v2_filter():
    wanted = limits.from_options(device_allow=["c 10:200 rwm"], device_deny=["c 1:9 rwm"])
    rules = limits.device_writes(wanted, 1)
    assert rules[0] == ("devices", "devices.deny", "a")
    assert ("devices", "devices.allow", "c 1:3 rwm") in rules and ("devices", "devices.allow", "c 10:200 rwm") in rules
    assert rules[-1] == ("devices", "devices.deny", "c 1:9 rwm")
    [(controller, name, (allow, deny))] = limits.device_writes(wanted, 2)
    assert (controller, name) == (None, cgroups.DEVICE_FILTER)
    assert allow == (*limits.DEFAULT_DEVICES, "c 10:200 rwm") and deny == ("c 1:9 rwm",)
    fuse = {"type": "c", "major": 10, "minor": 229, "access": "r"}
    assert ("devices", "devices.allow", "c 10:229 r") in limits.device_writes({}, 1, [fuse])
    assert limits.device_writes({}, 2, [fuse])[0][2] == ((*limits.DEFAULT_DEVICES, "c 10:229 r"), ())


def test_apply_attaches_the_device_filter_to_the_v2_directory(tmp_path, monkeypatch):
    attached = []
    monkeypatch.setattr(devicefilter, "attach", lambda path, allow, deny: attached.append((path, allow, deny)))
    group = cgroups.Cgroup("c1", parent="p", layout=[(str(tmp_path / "devices"), 1, frozenset({"devices"})),
                                                     (str(tmp_path / "unified"), 2, frozenset())])  # fmt: skip
    (tmp_path / "unified/p/c1").mkdir(parents=True)
    group.apply([*limits.device_writes({}, 2), (None, "pids.max", 5)])
    assert (tmp_path / "unified/p/c1/pids.max").read_text() == "5"
    assert attached == [(str(tmp_path / "unified/p/c1"), limits.DEFAULT_DEVICES, ())]
    assert not (tmp_path / "unified/p/c1" / cgroups.DEVICE_FILTER).exists()

    def refuse(*_args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(devicefilter, "attach", refuse)
    with pytest.raises(BaleineError, match=r"cannot attach the device filter .*: Operation not permitted"):
        group.apply(limits.device_writes({}, 2))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"memory": "lots"}, "--memory"),
        ({"memory": "1M"}, "at least 4M"),
        ({"cpus": "3", "host_cpus": 2}, "0.01 to 2"),
        ({"cpus": "0"}, "--cpus"),
        ({"cpu_shares": "1"}, "2 to 262144"),
        ({"cpuset_cpus": "0-7", "host_cpus": 2}, "CPU 2 is not available"),
        ({"cpuset_cpus": "a"}, "invalid CPU list"),
        ({"cpuset_cpus": "\u0661"}, "invalid CPU list"),  # an Arabic-Indic 1: the kernel reads ASCII digits only
        ({"cpuset_cpus": "0-99999999999"}, "CPU 99999999999 is past the last a kernel can have, 8191"),
        ({"cpuset_cpus": "9" * 5000}, "is past the last a kernel can have, 8191"),
        ({"cpuset_cpus": "0,8192"}, "CPU 8192 is past the last a kernel can have, 8191"),
        ({"cpuset_cpus": "1-0"}, "invalid CPU list '1-0': the range 1-0 runs backwards; use 0-1"),
        ({"pids_limit": "0"}, "1 or more"),
        ({"io_write_bps": ["/dev/no-such-disk:1M"]}, "no such device"),
        ({"io_write_bps": ["/etc/passwd:1M"]}, "not a block device"),
        ({"io_read_iops": ["0"]}, "at least 1"),
        ({"device_allow": ["x 1:1 rwm"]}, "invalid device rule"),
    ],
)
def test_bad_limits_are_refused(options, message):
    with pytest.raises(Invalid, match=message):
        limits.from_options(**options)


def test_pids_are_capped_by_default():
    assert limits.with_defaults({}) == {"pids": 2048}
    assert limits.with_defaults({"pids": 5}) == {"pids": 5}


def fake_v2(tmp_path, controllers="cpu cpuset io memory pids"):
    """A cgroup2 tree as the kernel lays it out: files appear with each directory."""
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return [(str(tmp_path), 2, frozenset())]


def test_v2_create_enables_controllers_and_apply_writes_files(tmp_path):
    layout = fake_v2(tmp_path)
    group = cgroups.Cgroup("c1", parent="baleine", layout=layout)
    group.create()
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"
    assert (tmp_path / "baleine" / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"
    group.apply(limits.writes({"memory": 64 << 20, "cpus": 0.25, "pids": 9}, 2))
    folder = tmp_path / "baleine" / "c1"
    assert (folder / "memory.max").read_text() == str(64 << 20)
    assert not (folder / "memory.swap.max").exists()  # no swap accounting in this fake tree: skipped
    assert (folder / "cpu.max").read_text() == "25000 100000"
    assert (folder / "pids.max").read_text() == "9"


def test_v2_usage_is_read_from_the_v2_files(tmp_path):
    layout = fake_v2(tmp_path)
    folder = tmp_path / "baleine" / "c1"
    folder.mkdir(parents=True)
    files = {
        "cgroup.controllers": "cpu io memory pids\n",
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n",
        "memory.current": "1048576\n",
        "memory.max": "max\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        "io.stat": "7:3 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:0 rbytes=1 wbytes=2\n",
        "pids.current": "4\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    group = cgroups.Cgroup("c1", parent="baleine", layout=layout)
    assert group.usage() == {"cpu_ns": 2_500_000_000, "memory": 1 << 20, "memory_peak": 1 << 20, "memory_limit": None,
                             "io_read": 4097, "io_write": 8194, "pids": 4, "oom_kills": 1}  # fmt: skip


def test_a_missing_controller_is_named(tmp_path):
    group = cgroups.Cgroup("c1", parent="baleine", layout=[(str(tmp_path), 1, frozenset({"memory"}))])
    with pytest.raises(Missing, match="no pids cgroup controller"):
        group.apply([("pids", "pids.max", 5)])
