"""`exec -t` and `run -t`: a terminal of the container's own, relayed to the caller's, driven here through a pty."""

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

import pytest

pytestmark = pytest.mark.integration


class Screen:
    """The caller's side of a terminal: what a person would type and read."""

    def __init__(self, node, *command):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        self.mode = termios.tcgetattr(slave)
        self.slave = slave
        self.process = subprocess.Popen(node.argv("container", *command), env=node.env, stdin=slave,
                                        stdout=slave, stderr=slave, start_new_session=True)  # fmt: skip
        self.seen = b""

    def type(self, keys):
        os.write(self.master, keys)

    def wait_for(self, text, timeout=20.0):
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"{text!r} never came; the screen shows {self.seen!r}"
            if select.select([self.master], [], [], 0.1)[0]:
                self.seen += os.read(self.master, 4096)
        return self.seen

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def screen(busybox):
    busybox.ok("container", "run", "-d", "--name", "term", "bb", "sleep", "300")
    made = []
    yield lambda *command: made.append(Screen(busybox, "exec", "-t", *command)) or made[-1]
    for item in made:
        item.close()


def test_a_shell_gets_its_own_terminal_of_our_size_with_job_control(busybox, screen):
    converse(busybox, screen("term", "sh"), "term")


def converse(node, shell, container):
    """What a person does at a shell: ask about the terminal, interrupt a job, leave with a status."""
    shell.type(b"tty; stty size; echo $TERM\n")
    assert b"/dev/pts/0\r\n33 101\r\nxterm\r\n" in shell.wait_for(b"xterm\r\n")
    shell.type(b"sleep 299\n")
    while "sleep 299" not in node.exec_out(container, "ps", "-o", "args"):
        time.sleep(0.05)
    shell.type(b"\x03")  # ^C: the terminal interrupts its foreground job, not baleine
    shell.type(b"echo after-$((1+1))\n")
    shell.wait_for(b"after-2\r\n")
    shell.type(b"exit 3\n")
    assert shell.process.wait(timeout=20) == 3
    assert termios.tcgetattr(shell.slave) == shell.mode  # our terminal is as it was (not raw)


def test_run_t_is_an_attached_shell_on_a_terminal_of_its_own(busybox):
    shell = Screen(busybox, "run", "--rm", "-t", "--name", "interactive", "bb", "sh")
    try:
        converse(busybox, shell, "interactive")
    finally:
        shell.close()
    assert busybox.ok("container", "list", "--all") == []  # --rm: removed once the shell exited


def test_run_t_with_a_user_namespace(busybox):
    done = busybox.cli("container", "run", "--rm", "-t", "--userns", "bb", "sh", "-c", "tty; id -u; exit 2")
    assert (done.returncode, done.stdout) == (2, "/dev/pts/0\n0\n"), done.stderr  # text mode: \r\n read as \n


def test_run_t_needs_someone_at_the_terminal(busybox):
    for args in (("-d", "-t"), ("-t",)):
        reply = busybox.call("container", "run", *args, "bb", "true")  # --json: no terminal either
        assert not reply["ok"] and reply["error"]["code"] == "invalid", reply
        assert "--tty is for an attached run" in reply["error"]["message"]
    assert busybox.ok("container", "list", "--all") == []


def test_killed_it_gives_our_terminal_back_and_hangs_up_the_shell(busybox, screen):
    shell = screen("term", "sh")
    shell.type(b"echo ready-$((2*3))\n")
    shell.wait_for(b"ready-6\r\n")
    assert termios.tcgetattr(shell.slave) != shell.mode  # raw while it relays
    shell.process.terminate()
    assert shell.process.wait(timeout=20) == 128 + 15
    assert termios.tcgetattr(shell.slave) == shell.mode
    deadline = time.monotonic() + 20
    while "sh" in busybox.exec_out("term", "ps", "-o", "comm").split():
        assert time.monotonic() < deadline, "the shell outlived its terminal"
        time.sleep(0.05)


def test_run_t_passes_a_signal_on_to_the_command(busybox):
    script = "trap 'echo got-term; exit 7' TERM; echo ready-$((1+1)); while :; do sleep 1; done"
    shell = Screen(busybox, "run", "--rm", "-t", "--name", "signalled", "bb", "sh", "-c", script)
    try:
        shell.wait_for(b"ready-2\r\n")
        shell.process.terminate()  # SIGTERM to baleine: the container's command decides what it means
        shell.wait_for(b"got-term\r\n")
        assert shell.process.wait(timeout=20) == 7
        assert termios.tcgetattr(shell.slave) == shell.mode
    finally:
        shell.close()
    assert busybox.ok("container", "list", "--all") == []


def test_the_command_status_and_all_its_output_come_back(screen):
    printer = screen("term", "sh", "-c", "seq 1 20000; exit 5")
    assert printer.wait_for(b"\r\n20000\r\n").count(b"\r\n") == 20000  # read as it comes: a pty buffers 4 kB
    assert printer.process.wait(timeout=20) == 5


def test_a_tty_is_not_for_json_nor_for_a_stopped_container(busybox):
    busybox.ok("container", "create", "--name", "idle", "bb", "true")
    reply = busybox.call("container", "exec", "-t", "idle", "true")
    assert not reply["ok"] and "--tty and --json do not mix" in reply["error"]["message"]
    done = busybox.cli("container", "exec", "-t", "idle", "true")
    assert done.returncode == 1 and "is not running" in done.stderr
