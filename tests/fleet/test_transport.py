"""Fan-out: bounded, every host's outcome collected, failures typed (pure: no SSH is opened)."""

import threading
import time

import pytest

from fleet import transport
from fleet.errors import FleetError, HostKeyRefused, TimedOut, Unreachable
from fleet.inventory import Host

HOSTS = [Host(f"n{index}", f"192.0.2.{index}") for index in range(1, 7)]


def test_parallel_bounds_the_hosts_at_once_and_keeps_their_order():
    running, peak, lock = [0], [0], threading.Lock()
    pair = threading.Barrier(2, timeout=30)  # two at once, however slowly the second thread starts

    def work(session):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        pair.wait()
        time.sleep(0.01)  # a third, were it let in, would come now
        with lock:
            running[0] -= 1
        return session.host.name.upper()

    with transport.Fleet(HOSTS, parallel=2) as fleet:
        outcomes = fleet.each(work)
    assert peak[0] == 2
    assert [outcome.value for outcome in outcomes] == ["N1", "N2", "N3", "N4", "N5", "N6"]


def test_one_host_failing_never_stops_the_others():
    def work(session):
        if session.host.name == "n2":
            raise Unreachable("n2", "connection refused")
        if session.host.name == "n3":
            raise KeyError("a bug")
        return "ok"

    with transport.Fleet(HOSTS, parallel=3) as fleet:
        outcomes = fleet.each(work)
    assert [outcome.ok for outcome in outcomes] == [True, False, False, True, True, True]
    assert outcomes[1].error.kind == "unreachable"
    assert outcomes[2].error.reason == "internal error: KeyError: 'a bug'"


def test_the_per_host_timeout_is_a_deadline(monkeypatch):
    now = [1000.0]  # a clock of our own: a loaded machine may stall longer than any timeout a test can wait
    monkeypatch.setattr(transport.time, "monotonic", lambda: now[0])
    session = transport.Session(HOSTS[0], timeout=0.05)
    now[0] += 0.04
    assert session.remaining() == pytest.approx(0.01)
    now[0] += 0.01
    with pytest.raises(TimedOut, match=r"n1: gave up after the per-host timeout of 0\.05 s"):
        session.remaining()


@pytest.mark.parametrize(("parallel", "timeout"), [(0, 10), ("x", 10), (4, 0), (4, -1)])
def test_bad_parallel_or_timeout_is_refused(parallel, timeout):
    with pytest.raises(FleetError, match=r"invalid --(parallel|timeout)"):
        transport.Fleet(HOSTS, parallel=parallel, timeout=timeout)


def test_known_hosts_entries_and_fingerprints():
    assert transport.known_hosts_entry("192.0.2.1", 22) == "192.0.2.1"
    assert transport.known_hosts_entry("192.0.2.1", 2222) == "[192.0.2.1]:2222"
    key = type("Key", (), {"asbytes": lambda self: b"key bytes"})()  # sha256, base64, no padding, as ssh-keygen -l
    assert transport.fingerprint(key) == "SHA256:FfqziWBi01n8BnganYyFFwjmHS+bkHo2N1PvnUgPvEo"


def test_recording_a_key_changes_only_what_names_the_host(tmp_path):
    """Comments, markers (@revoked!) and other hosts stay; paramiko's own save dropped the markers."""
    import paramiko

    key, old = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024).get_base64()
    hashed = paramiko.HostKeys.hash_host("[192.0.2.7]:2222")
    lines = [
        "# the team's hosts",
        f"@cert-authority *.example.org ssh-rsa {old}",
        f"@revoked [192.0.2.7]:2222 ssh-rsa {old}",
        "",
        f"other.example ssh-rsa {old}",
        f"alias,[192.0.2.7]:2222 ssh-rsa {old}",
        f"{hashed} ssh-rsa {old}",
    ]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    known.chmod(0o644)
    transport.record_key(str(known), "[192.0.2.7]:2222", key)
    assert known.read_text().splitlines() == [
        *lines[:5],
        f"alias ssh-rsa {old}",
        f"[192.0.2.7]:2222 ssh-rsa {key.get_base64()}",
    ]
    assert known.stat().st_mode & 0o777 == 0o644 and sorted(p.name for p in tmp_path.iterdir()) == ["known_hosts"]
    keys = paramiko.HostKeys()
    assert transport.load_known_hosts(str(known), keys) == {("ssh-rsa", old)}
    assert keys.lookup("[192.0.2.7]:2222")["ssh-rsa"] == key
    fresh = tmp_path / "new" / "known_hosts"
    transport.record_key(str(fresh), "node1", key)
    assert fresh.read_text() == f"node1 ssh-rsa {key.get_base64()}\n" and fresh.stat().st_mode & 0o777 == 0o600


def test_known_hosts_with_markers_load_and_revoked_keys_are_never_trusted(tmp_path):
    """paramiko's own loader raised on any @cert-authority or @revoked line: no host could be reached."""
    import paramiko

    good, bad = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    known = tmp_path / "known_hosts"
    known.write_text(
        "# comment\n"
        f"@cert-authority *.example.org ssh-rsa {good.get_base64()}\n"
        f"@revoked * ssh-rsa {bad.get_base64()}\n"
        f"node1 ssh-rsa {good.get_base64()}\n"
        f"node2,node3 ssh-rsa {bad.get_base64()}\n"
        f"{paramiko.HostKeys.hash_host('node4')} ssh-rsa {good.get_base64()}\n"
        "node5 ssh-rsa not-base64!\n"
        "truncated\n"
    )
    with pytest.raises(Exception, match="Incorrect padding"):
        paramiko.HostKeys(str(known))  # why this loader exists
    keys = paramiko.HostKeys()
    assert transport.load_known_hosts(str(known), keys) == {("ssh-rsa", bad.get_base64())}
    assert keys.lookup("node1")["ssh-rsa"] == good and keys.lookup("node4")["ssh-rsa"] == good
    assert keys.lookup("node2") is None and keys.lookup("node5") is None
    policy = transport._RefuseUnknown(Host("node2", "node2"), str(known), {("ssh-rsa", bad.get_base64())})
    with pytest.raises(HostKeyRefused, match="is marked @revoked in"):
        policy.missing_host_key(None, "node2", bad)
    with pytest.raises(HostKeyRefused, match="unknown host key"):
        policy.missing_host_key(None, "node2", good)


def test_the_ssh_socket_sends_and_acknowledges_at_once():
    """Nagle off and quick ACKs: without them each SSH command waited 40 ms for a delayed ACK."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        sock = transport._prompt_socket("127.0.0.1", server.getsockname()[1], timeout=5)
        peer, _ = server.accept()
        with sock, peer:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert sock.gettimeout() == 5
            peer.sendall(b"SSH-2.0-test\r\n")
            assert sock.recv(64) == b"SSH-2.0-test\r\n"
            assert isinstance(sock, socket.socket)  # paramiko gets a real socket


def test_a_refused_connection_is_the_error_paramiko_would_raise():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        transport._prompt_socket("127.0.0.1", port, timeout=5)


def test_the_socket_goes_where_the_ssh_config_sends_the_address(tmp_path):
    """An address the ssh config renames (HostName) is connected to as Fabric would: by that HostName."""
    import socket

    config = tmp_path / "ssh_config"
    config.write_text("Host alias.invalid\n  HostName 127.0.0.1\n")
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        host = Host("web", "alias.invalid", port=server.getsockname()[1], known_hosts=str(tmp_path / "known"))
        session = transport.Session(host, timeout=10, ssh_config=str(config))
        reached = []

        def answer_and_hang_up():
            peer, _ = server.accept()
            reached.append(peer)
            peer.close()  # no sshd here

        thread = threading.Thread(target=answer_and_hang_up)
        thread.start()
        with pytest.raises(Unreachable):
            session.open()
        thread.join()
    assert reached
