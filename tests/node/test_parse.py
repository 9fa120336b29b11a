import os

import pytest

from fleet.node import parse
from fleet.node.errors import Invalid


@pytest.mark.parametrize("good", ["a", "web1", "Web_1.prod-2", "x" * 63, "1abc"])
def test_names_accepted(good):
    assert parse.name(good) == good


@pytest.mark.parametrize("bad", ["", "-web", "_a", ".a", "a b", "a/b", "a:b", "x" * 64, "é", "a;b"])
def test_names_refused_with_the_rule(bad):
    with pytest.raises(Invalid) as error:
        parse.name(bad, "container name")
    assert repr(bad) in error.value.message and "at most 63 characters" in error.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4096", 4096), ("64M", 64 << 20), ("64m", 64 << 20), ("1G", 1 << 30), ("1Gi", 1 << 30),
     ("512MiB", 512 << 20), ("1.5G", 3 << 29), ("2k", 2048)],
)  # fmt: skip
def test_sizes(text, expected):
    assert parse.size(text) == expected


@pytest.mark.parametrize("bad", ["", "M", "-1M", "12Q", "1..2M", "ten"])
def test_bad_sizes(bad):
    with pytest.raises(Invalid, match="invalid size"):
        parse.size(bad)


@pytest.mark.parametrize("huge", ["8388608T", "9223372036854775808", "9" * 400, "9" * 5000 + "M"])
def test_sizes_past_what_the_kernel_counts_are_refused_not_crashed_on(huge):
    with pytest.raises(Invalid) as raised:
        parse.size(huge, "--memory")
    assert str(raised.value) == f"invalid --memory {huge!r}: must be less than 8388608T"
    assert parse.size("8388607T") == 8388607 << 40


def candidates(alphabet, longest):
    """Every string of alphabet up to 3 long, then some longer ones: what a hand-written check can get wrong."""
    import itertools
    import random

    found = ["".join(chars) for n in range(4) for chars in itertools.product(alphabet, repeat=n)]
    rng = random.Random(7)
    found += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(longest))) for _ in range(3000)]
    return found


def accepts(check, text):
    try:
        check(text)
    except Invalid:
        return False
    return True


def test_names_follow_the_documented_pattern_exactly():
    import re

    for text in [*candidates("aZ09_.-/é ", 70), "x" * 63, "x" * 64, "a\n"]:
        assert accepts(parse.name, text) == bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", text)), text


def test_sizes_follow_the_documented_pattern_exactly():
    import re

    for text in candidates("09.kMgTiIBb \t-٣", 9):
        expected = re.fullmatch(r"(\d+(?:\.\d+)?)[ \t]*([KMGT]?)(i?)B?", text.strip(), re.IGNORECASE | re.ASCII)
        assert accepts(lambda text: parse.size(text, minimum=0), text) == bool(expected), text
        if expected:
            number, unit, _ = expected.groups()
            assert parse.size(text, minimum=0) == int(float(number) * {"": 1, "K": 1024, "M": 1 << 20, "G": 1 << 30,
                                                             "T": 1 << 40}[unit.upper()])  # fmt: skip


def test_size_minimum_names_it():
    with pytest.raises(Invalid, match="at least 8M"):
        parse.size("1M", minimum=8 << 20)


def test_human_size_round_trips_common_figures():
    assert [parse.human_size(n) for n in (100, 2048, 64 << 20, 3 << 29)] == ["100B", "2K", "64M", "1.5G"]


def test_network_refs_with_v4_and_v6_addresses():
    assert parse.network_ref("farm") == ("farm", None)
    assert parse.network_ref("farm:10.0.0.5") == ("farm", "10.0.0.5")
    assert parse.network_ref("farm:fd00::5") == ("farm", "fd00::5")


@pytest.mark.parametrize("bad", ["farm:", "farm:10.0.0.300", "-x", "farm:abc"])
def test_bad_network_refs(bad):
    with pytest.raises(Invalid):
        parse.network_ref(bad)


@pytest.mark.parametrize("bad, why", [
    ("10.0.0.0", "give the prefix length, e.g. 10.0.0.0/24"),
    ("10.0.0.1/24", "host bits are set: the network is 10.0.0.0/24"),
    ("fd00::1/64", "host bits are set: the network is fd00::/64"),
    ("10.0.0.0/33", "the prefix length is a whole number from 0 to 32"),
    ("fd00::/129", "the prefix length is a whole number from 0 to 128"),
    ("10.0.0.0/x", "the prefix length is a whole number from 0 to 32"),
    ("10.0.0.0/-1", "the prefix length is a whole number from 0 to 32"),
    ("10.0.0.0/", "the prefix length is a whole number from 0 to 32"),
    ("10.0.0.0/" + "9" * 5000, "the prefix length is a whole number from 0 to 32"),  # past int()'s digit limit
    ("10.0.0.0/\u0662\u0664", "the prefix length is a whole number from 0 to 32"),  # Arabic-Indic 24
    ("nope/24", "'nope' is not an IPv4 or IPv6 address; use a CIDR such as 10.88.0.0/24"),
    ("10.0.0/24", "'10.0.0' is not an IPv4 or IPv6 address; use a CIDR such as 10.88.0.0/24"),
    ("", "'' is not an IPv4 or IPv6 address; use a CIDR such as 10.88.0.0/24"),
    ("banana", "'banana' is not an IPv4 or IPv6 address; use a CIDR such as 10.88.0.0/24"),
    ("10.0.0.0/31", "too small, it needs room for a gateway and a container"),
])  # fmt: skip
def test_bad_subnets_say_which_part_is_wrong(bad, why):
    with pytest.raises(Invalid) as raised:
        parse.subnet(bad)
    assert str(raised.value) == f"invalid subnet {bad!r}: {why}"


@pytest.mark.parametrize("good", ["10.88.0.0/24", "10.88.0.0/024", "fd00:1::/64", "0.0.0.0/0", "172.16.0.0/12"])
def test_good_subnets_are_ipaddress_networks(good):
    import ipaddress

    assert parse.subnet(good) == ipaddress.ip_network(good)


def test_volume(tmp_path):
    assert parse.volume(f"{tmp_path}:/data:ro") == {"source": str(tmp_path), "target": "/data", "mode": "ro"}
    assert parse.volume(f"{tmp_path}://data/")["target"] == "/data"
    assert parse.volume("db:/var/lib/db") == {
        "volume": "db", "source": None, "target": "/var/lib/db", "mode": "rw", "fill": True}  # fmt: skip
    assert parse.volume("db:/db:nocopy,ro") == {"volume": "db", "source": None, "target": "/db", "mode": "ro",
                                                "fill": False}  # fmt: skip
    assert parse.volume(f"{tmp_path}:/data:rw")["mode"] == "rw"
    with pytest.raises(Invalid, match="nocopy is for named volumes; a host directory is never filled"):
        parse.volume(f"{tmp_path}:/data:nocopy")
    bad_ones = (
        "rel/dir:/data",
        "bad!name:/data",
        f"{tmp_path}:data",
        f"{tmp_path}:/a/../b",
        f"{tmp_path}:/d:rx",
        "v:/d:ro,rw",
        "v:/d:ro,ro",
        "v:/d:",
    )
    for bad in (*bad_ones, "/no/such/dir:/d"):
        with pytest.raises(Invalid, match="invalid volume"):
            parse.volume(bad)
    for covered in ("/", "//", "/proc", "/proc/sys", "/./proc/"):  # the image's root, the container's own /proc
        with pytest.raises(Invalid, match=f"invalid volume '{tmp_path}:{covered}': the container path may not be / no"):
            parse.volume(f"{tmp_path}:{covered}")
    assert parse.volume(f"{tmp_path}:/processes")["target"] == "/processes"


def test_env_user_hostname_workdir():
    assert parse.env("A_1=x=y") == ("A_1", "x=y")
    assert parse.user("www-data:33") == "www-data:33"
    assert parse.hostname("web-1.farm") == "web-1.farm"
    for call, bad in ((parse.env, "1A=x"), (parse.env, "NOVALUE"), (parse.user, "a:b:c"), (parse.user, "a b"),
                      (parse.hostname, "under_score"), (parse.hostname, "-x"), (parse.workdir, "rel/dir")):  # fmt: skip
        with pytest.raises(Invalid):
            call(bad)


def test_name_service_settings():
    assert parse.dns_server("2001:DB8::1") == "2001:db8::1"
    assert parse.dns_search("corp.example.") == "corp.example" and parse.dns_search(".") == "."
    assert parse.dns_option("ndots:2") == "ndots:2" and parse.dns_option("edns0") == "edns0"
    assert parse.extra_host("db:192.0.2.7") == ("db", "192.0.2.7")
    assert parse.extra_host("v6.db:2001:db8::7") == ("v6.db", "2001:db8::7")  # the address follows the first colon
    assert parse.extra_host("v6=[2001:db8::7]") == ("v6", "2001:db8::7")
    assert parse.extra_host("gw:host-gateway") == ("gw", parse.HOST_GATEWAY)
    for call, bad in ((parse.dns_server, "ns1"), (parse.dns_search, "a..b"), (parse.dns_search, ""),
                      (parse.dns_option, "a b"), (parse.dns_option, ""), (parse.extra_host, "db"),
                      (parse.extra_host, "db:"), (parse.extra_host, ":192.0.2.7"), (parse.extra_host, "d_b:192.0.2.7"),
                      (parse.extra_host, "db:host")):  # fmt: skip
        with pytest.raises(Invalid):
            call(bad)


def test_devices():
    tun = parse.device("/dev/net/tun")
    assert (tun["path"], tun["type"], tun["major"], tun["minor"], tun["access"]) == (
        "/dev/net/tun",
        "c",
        10,
        200,
        "rwm",
    )
    assert tun["mode"] == os.stat("/dev/net/tun").st_mode & 0o7777
    assert parse.device("/dev/net/tun:rw")["access"] == "rw"
    renamed = parse.device("/dev/net/tun:/dev/vpn/tun:r")
    assert (renamed["path"], renamed["access"]) == ("/dev/vpn/tun", "r")
    with pytest.raises(Invalid, match="not one baleine makes"):
        parse.device("/dev/net/tun:/dev/pts/9", ("/dev/pts",))
    for bad in ("/dev/no-such", "/etc/hostname", "/dev/net/tun:/etc/tun",
                "/dev/net/tun:/dev/x:rwx", "/dev/net/tun:/dev/x:r:w", "/dev/net/tun:/dev/../tun"):  # fmt: skip
        with pytest.raises(Invalid, match="--device"):
            parse.device(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("type=volume,src=data,dst=/data", ("volume", "data:/data")),
        ("source=data,target=/d,volume-nocopy,ro=true", ("volume", "data:/d:ro,nocopy")),
        ("type=bind,source=/srv/www,destination=/www,readonly", ("volume", "/srv/www:/www:ro")),
        ("type=bind,src=/srv,dst=/srv,readonly=false", ("volume", "/srv:/srv")),
        ("type=tmpfs,dst=/scratch,tmpfs-size=1048576,tmpfs-mode=1770", ("tmpfs", "/scratch:size=1048576,mode=1770")),
        ("type=tmpfs,target=/run", ("tmpfs", "/run")),
    ],
)
def test_docker_mounts_become_volumes_and_tmpfs(value, expected):
    assert parse.mount(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("type=npipe,dst=/x", "type 'npipe'"),
        ("src=data", "no target"),
        ("dst=/x,dst=/y", "target given twice"),
        ("type=bind,src=rel,dst=/x", "type=bind takes an absolute host path"),
        ("type=volume,dst=/d", "type=volume takes a volume name"),
        ("type=tmpfs,src=x,dst=/t", "a tmpfs has no source"),
        ("type=bind,src=/srv,dst=/x,bind-propagation=shared", "'bind-propagation' is not a key baleine takes"),
        ("src=d,dst=/d,readonly=maybe", "readonly='maybe'"),
        ("src=d,dst=/d,tmpfs-size=1", "tmpfs-size and tmpfs-mode are for type=tmpfs"),
    ],
)
def test_bad_docker_mounts_are_named(value, message):
    with pytest.raises(
        Invalid, match=f"invalid --mount {value!r}: .*{message}".replace("(", r"\(").replace("|", r"\|")
    ):
        parse.mount(value)


def test_groups_and_oom_scores():
    assert parse.group("audio") == "audio" and parse.group("29") == "29"
    assert parse.oom_score_adj("-1000") == -1000 and parse.oom_score_adj("1000") == 1000
    for call, bad in ((parse.group, "a:b"), (parse.group, ""), (parse.oom_score_adj, "-1001"),
                      (parse.oom_score_adj, "1.5"), (parse.oom_score_adj, "")):  # fmt: skip
        with pytest.raises(Invalid):
            call(bad)


def test_sysctls():
    assert parse.sysctl("net.core.somaxconn=1024") == ("net.core.somaxconn", "1024")
    assert parse.sysctl("net/ipv4/ip_local_port_range=1024 65000") == ("net.ipv4.ip_local_port_range", "1024 65000")
    assert parse.sysctl("kernel.shmmax=1") == ("kernel.shmmax", "1") and parse.sysctl("fs.mqueue.msg_max=9")[1] == "9"
    for bad, host in (("kernel.hostname=x", False), ("vm.swappiness=1", False), ("net.core.somaxconn=1", True),
                      ("net.core.somaxconn=", False), ("net.core.somaxconn", False), ("net..x=1", False)):  # fmt: skip
        with pytest.raises(Invalid, match="--sysctl"):
            parse.sysctl(bad, host)


def test_env_files(tmp_path, monkeypatch):
    path = tmp_path / "web.env"
    path.write_text("# the web app\n\nA=1\nURL=http://x/?a=b\n  # indented comment\nFROM_HERE\nNOT_SET\nEMPTY=\n")
    monkeypatch.setenv("FROM_HERE", "caller's")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert parse.env_file(str(path)) == ["A=1", "URL=http://x/?a=b", "FROM_HERE=caller's", "EMPTY="]
    path.write_text("A=1\n1BAD=x\n")
    with pytest.raises(Invalid, match=rf"^{path}:2: invalid environment variable '1BAD=x'"):
        parse.env_file(str(path))
    with pytest.raises(Invalid, match=r"cannot read --env-file '/nonexistent': No such file or directory"):
        parse.env_file("/nonexistent")
    path.write_text("A=" + "x" * ((1 << 20) - 3) + "\n")  # 1 MiB exactly: read
    assert len(parse.env_file(str(path))[0]) == (1 << 20) - 1
    path.write_text("A=" + "x" * ((1 << 20) - 2) + "\n")
    with pytest.raises(Invalid, match=rf"^cannot read --env-file '{path}': it holds more than 1M, more than the ker"):
        parse.env_file(str(path))  # nor is /dev/zero read until memory runs out (not tried here: a regression would)


def test_signal_names():
    for given in ("SIGQUIT", "quit", "Sigquit", "3", " QUIT "):
        assert parse.signal_name(given) == "SIGQUIT"
    assert parse.signal_name("9") == "SIGKILL"
    assert parse.signal_name("0009") == "SIGKILL"
    for bad in ("SIGNOPE", "", "999", "-1", "SIG_IGN", "9" * 5000):
        with pytest.raises(Invalid, match=f"invalid --stop-signal {bad!r}: use a signal name or number"):
            parse.signal_name(bad)


def test_signal_names_are_the_ones_signal_signals_gives():
    import signal

    for member in signal.Signals:
        assert parse.signal_name(str(member.value)) == member.name
        assert parse.signal_name(member.name[3:].lower()) == member.name
    for alias, member in signal.Signals.__members__.items():  # SIGIOT is SIGABRT, SIGCLD is SIGCHLD
        assert parse.signal_name(alias) == member.name
    for number in range(70):
        assert accepts(parse.signal_name, str(number)) == (number in {member.value for member in signal.Signals})


def test_seconds_and_counts():
    assert parse.seconds("2.5") == 2.5
    assert parse.positive_int("3", "--tail") == 3
    assert parse.seconds("31622400") == 366 * 24 * 3600
    for bad in ("-1", "x", "nan", "inf", "1e999", "1e20", "31622401"):  # 1e20 s overflowed `stop --time`'s deadline
        with pytest.raises(Invalid, match=f"invalid time {bad!r}: use a number of seconds from 0 to 31622400"):
            parse.seconds(bad)
    with pytest.raises(Invalid, match="--tail"):
        parse.positive_int("-2", "--tail")
    for bad in ("+3", "1_000", "\u0663", "3.0", "9" * 5000):  # int() takes the first three; the last, it refuses
        with pytest.raises(Invalid, match=r"use a whole number, (0 or more|at most 9223372036854775807)$"):
            parse.positive_int(bad, "--tail")
    with pytest.raises(Invalid, match=r"invalid --tail '9223372036854775808': use a whole number, at most 92233720"):
        parse.positive_int(str(1 << 63), "--tail")  # what the kernel counts in: a signed 64-bit number
    assert parse.positive_int("0050", "--retries", 50) == 50
    with pytest.raises(Invalid, match=r"invalid --retries '51': use a whole number, at most 50"):
        parse.positive_int("51", "--retries", 50)


def test_labels():
    assert parse.label("role=web") == ("role", "web")
    assert parse.label("com.example/tier=a=b") == ("com.example/tier", "a=b")  # the first '=' splits
    assert parse.label("flag") == ("flag", "")
    for bad in ("", "=x", "-x=1", "a b=1", "k=line\nbreak", "k=" + "v" * 1025, "k" * 129):
        with pytest.raises(Invalid, match="invalid label"):
            parse.label(bad)


def test_ascii_number_reads_bounded_whole_numbers_without_int_on_huge_text():
    assert [parse.ascii_number(text, 32) for text in ("0", "32", "0032", "33", "-1", "", "1.0", "\u0663")] == [
        0, 32, 32, None, None, None, None, None]  # fmt: skip
    assert parse.ascii_number("9" * 5000, 8191) is None and parse.ascii_number("0" * 5000 + "7", 8191) == 7
