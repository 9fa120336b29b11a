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


def test_resolv_drops_loopback_servers(tmp_path):
    source = tmp_path / "resolv.conf"
    source.write_text("nameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nsearch lab\n")
    assert etcfiles.resolv_text(str(source)) == "nameserver 192.0.2.53\nsearch lab\n"


def test_rewrite_keeps_the_inode(tmp_path):
    """/etc/hosts is bind-mounted: a new inode would not reach the container."""
    path = tmp_path / "hosts"
    path.write_text("a much longer first version\n")
    inode = path.stat().st_ino
    etcfiles.write_in_place(str(path), "short\n")
    assert path.read_text() == "short\n" and os.stat(path).st_ino == inode
