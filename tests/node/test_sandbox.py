"""The init's pure parts: user resolution against the image's /etc files."""

import pytest

from fleet.node import sandbox


@pytest.fixture
def etc(tmp_path):
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbad line\n")  # fmt: skip
    (tmp_path / "group").write_text("root:x:0:\nwww:x:33:\nweb:x:80:www,other\n")
    return str(tmp_path)


def test_names_ids_groups_and_home(etc):
    assert sandbox.resolve_user("www", etc) == (33, 33, [33, 80], "/var/www")
    assert sandbox.resolve_user("33", etc) == (33, 33, [33, 80], "/var/www")
    assert sandbox.resolve_user("www:web", etc) == (33, 80, [80], "/var/www")  # as runc: no passwd group
    assert sandbox.resolve_user("0", etc)[:2] == (0, 0)


def test_unknown_numeric_ids_are_allowed_like_docker(etc):
    assert sandbox.resolve_user("1234", etc) == (1234, 0, [0], "/")
    assert sandbox.resolve_user("1234:5678", etc) == (1234, 5678, [5678], "/")


def test_unknown_names_are_refused(etc):
    with pytest.raises(sandbox.SetupError, match="ghost"):
        sandbox.resolve_user("ghost", etc)
    with pytest.raises(sandbox.SetupError, match="nogroup"):
        sandbox.resolve_user("www:nogroup", etc)


def test_only_an_attached_init_without_network_sysctls_builds_while_the_network_is_plugged():
    from fleet.node.launch import init_builds_while_plugging

    assert init_builds_while_plugging({"sysctls": {"kernel.shmmax": "1"}}, detach=False)
    assert init_builds_while_plugging({}, detach=False)
    assert not init_builds_while_plugging({}, detach=True)  # a started init is sent the config anyway
    assert not init_builds_while_plugging({"sysctls": {"net.ipv4.conf.eth0.rp_filter": "2"}}, detach=False)


def test_an_init_that_failed_meanwhile_is_heard_without_waiting(tmp_path):
    """Its reason, not the plug's: the plug fails too once the init's namespace is gone."""
    import _socket
    import os

    from fleet.node.launch import Launch

    def launch_listening():
        launch = Launch.__new__(Launch)
        launch.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        launch.listener.bind(str(tmp_path / "start.sock"))
        launch.listener.listen(1)
        launch.channel, launch.pending = None, b""
        return launch

    def init_says(text):
        init = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        init.connect(str(tmp_path / "start.sock"))
        init.sendall(text)
        return init

    quiet = launch_listening()
    assert quiet.reported_failure() is None  # no init has called in: nothing to wait for
    init = init_says(b"disk 7:0\n")
    assert quiet.reported_failure() is None  # it called in and is fine: never waits for more
    init.close()
    quiet.listener.close()
    os.unlink(tmp_path / "start.sock")

    failed = launch_listening()
    init_says(b"disk 7:0\nerror 125 container setup failed: /proc is a symlink in the image\n").close()
    failure = failed.reported_failure()
    assert (str(failure), failure.exit_status) == ("container setup failed: /proc is a symlink in the image", 125)
    failed.channel.close()
    failed.listener.close()


def test_a_failed_start_tells_the_inits_reason_over_its_own_but_never_hides_an_interrupt():
    from fleet.node.containers import _first_failure
    from fleet.node.errors import StartFailed

    class Launch:
        def __init__(self, reported):
            self.reported = reported

        def reported_failure(self):
            if isinstance(self.reported, Exception) and not isinstance(self.reported, StartFailed):
                raise self.reported
            return self.reported

    theirs, ours = StartFailed("the image has a file there"), OSError(3, "No such process")
    assert _first_failure(Launch(theirs), ours) is theirs
    assert _first_failure(Launch(None), ours) is ours  # the init said nothing: ours is the reason
    assert _first_failure(None, ours) is ours  # failed before there was an init
    assert _first_failure(Launch(ConnectionResetError()), ours) is ours  # hearing it failed: the start is still undone
    assert _first_failure(Launch(ValueError("not enough values to unpack")), ours) is ours  # a line cut short
    interrupt = KeyboardInterrupt()
    assert _first_failure(Launch(theirs), interrupt) is interrupt
