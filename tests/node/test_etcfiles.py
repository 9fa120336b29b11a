import os

from fleet.node import etcfiles


def test_hosts_lists_itself_then_neighbours():
    text = etcfiles.hosts_text("web1", "web1", ["10.1.0.2"], [("10.1.0.3", "db"), ("10.1.0.3", "db")])
    assert text.splitlines() == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "10.1.0.2\tweb1",
        "10.1.0.3\tdb",
    ]


def test_hosts_without_network_names_itself_on_loopback():
    assert "127.0.1.1\thost name" in etcfiles.hosts_text("host", "name", [], [])


def test_rewrite_keeps_the_inode(tmp_path):
    """/etc/hosts is bind-mounted: a new inode would not reach the container."""
    path = tmp_path / "hosts"
    path.write_text("a much longer first version\n")
    inode = path.stat().st_ino
    etcfiles.write_in_place(str(path), "short\n")
    assert path.read_text() == "short\n" and os.stat(path).st_ino == inode


def test_hosts_puts_given_entries_ahead_of_neighbours():
    """--add-host is the operator's word: it must win over a neighbour of the same name."""
    text = etcfiles.hosts_text("web1", "web1", ["10.1.0.2"], [("10.1.0.3", "db")], [("db", "192.0.2.7")])
    assert text.splitlines()[2:] == ["10.1.0.2\tweb1", "192.0.2.7\tdb", "10.1.0.3\tdb"]


def _resolv(tmp_path, text, upstream=None):
    source = tmp_path / "resolv.conf"
    source.write_text(text)
    paths = {"host_resolv": str(source), "upstream": str(tmp_path / "upstream.conf")}
    if upstream is not None:
        (tmp_path / "upstream.conf").write_text(upstream)
    return paths


def test_resolv_drops_loopback_servers(tmp_path):
    paths = _resolv(tmp_path, "nameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nsearch lab\n")
    assert etcfiles.resolv_text(**paths) == "nameserver 192.0.2.53\nsearch lab\n"


def test_resolv_behind_a_stub_uses_the_servers_behind_it(tmp_path):
    """systemd-resolved (Ubuntu's default) lists only 127.0.0.53: a bridged container would have no DNS."""
    paths = _resolv(tmp_path, "nameserver 127.0.0.53\nsearch lab\n", upstream="nameserver 192.0.2.53\nsearch lab\n")
    assert etcfiles.resolv_text(**paths) == "nameserver 192.0.2.53\nsearch lab\n"
    assert etcfiles.resolv_text(host_network=True, **paths) == "nameserver 127.0.0.53\nsearch lab\n"


def test_resolv_on_the_hosts_network_is_the_hosts(tmp_path):
    text = "# managed by the host\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n"
    assert etcfiles.resolv_text(host_network=True, **_resolv(tmp_path, text)) == text


def test_resolv_given_settings_replace_the_hosts(tmp_path):
    paths = _resolv(tmp_path, "nameserver 192.0.2.53\ndomain old\nsearch lab\noptions edns0\n")
    dns = {"servers": ["192.0.2.1", "2001:db8::1"], "search": ["a.example", "b.example"], "options": ["ndots:2"]}
    assert etcfiles.resolv_text(dns, **paths).splitlines() == [
        "nameserver 192.0.2.1",
        "nameserver 2001:db8::1",
        "search a.example b.example",
        "options ndots:2",
    ]
    only = etcfiles.resolv_text({"options": ["timeout:1"]}, **paths).splitlines()
    assert only == ["nameserver 192.0.2.53", "domain old", "search lab", "options timeout:1"]
    none = etcfiles.resolv_text({"search": ["."]}, **paths).splitlines()
    assert none == ["nameserver 192.0.2.53", "options edns0"]


def test_resolv_without_a_host_file_holds_only_what_was_given(tmp_path):
    paths = {"host_resolv": str(tmp_path / "none"), "upstream": str(tmp_path / "none2")}
    assert etcfiles.resolv_text(**paths) == ""
    assert etcfiles.resolv_text({"servers": ["192.0.2.1"]}, **paths) == "nameserver 192.0.2.1\n"
