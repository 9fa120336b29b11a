"""`exec -t` and `run -t`: a pseudo-terminal from the container's own /dev/pts, relayed to ours.

The pty comes from the container's devpts instance (opened through
/proc/PID/root for exec; by the init itself for run, which hands the master
over the start socket), so inside it is /dev/pts/N: `tty` names it, and the command
leads a session with it as controlling terminal (job control, ^C and ^Z reach
it, not baleine). Here, our terminal goes raw for the while, its size follows
SIGWINCH, and bytes are copied both ways until the command has exited and
said everything.
"""

import fcntl
import os
import select
import signal
import struct
import termios

CHUNK = 1 << 16
POLL = 0.1  # seconds between looks at whether the command has exited
EOT = b"\x04"  # what a terminal sends for end of input (^D)
# termios lacks these two: their values in asm-generic/ioctls.h (x86, arm, riscv...)
TIOCGPTN = 0x80045430  # the pty's number
TIOCSPTLCK = 0x40045431  # lock or unlock its slave


def open_in(pid):
    """(master, slave) descriptors of a new pty of container process pid's /dev/pts (exec -t)."""
    return open_pty(f"/proc/{pid}/root/dev/pts")


def open_pty(pts):
    """(master, slave) descriptors of a new pty of the devpts mounted at pts."""
    master = os.open(f"{pts}/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlock the slave
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        slave = os.open(f"{pts}/{number}", os.O_RDWR | os.O_NOCTTY)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def with_term(config):
    """The config for a command on a terminal: tty set, and TERM the caller's (as Docker's -t)."""
    return dict(config, tty=True, env=[*config.get("env", []), f"TERM={os.environ.get('TERM') or 'xterm'}"])


def take_as_controlling(fd):
    """In the command's process: lead a new session whose controlling terminal is fd."""
    os.setsid()
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def copy_size(master):
    """Give the pty the size of our terminal (stdin's, else stdout's), if we have one."""
    for fd in (0, 1):
        try:
            size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        except OSError:
            continue
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
        return


def relay(master, child, hang_up=True):
    """Copy stdin to the pty and the pty to stdout until child has exited; returns its wait status.

    hang_up: killed by SIGTERM or SIGHUP meanwhile, it still gives our terminal
    its mode back; closing the pty then hangs up the command's session. (An
    attached run passes those signals on to the container instead.)
    """
    saved = _make_raw(0)
    handlers = {signal.SIGWINCH: lambda *_: copy_size(master)}
    if hang_up:
        handlers.update({signal.SIGTERM: _hang_up, signal.SIGHUP: _hang_up})
    previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
    try:
        copy_size(master)
        return _copy_both_ways(master, child)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _hang_up(number, _frame):
    raise SystemExit(128 + number)


def _copy_both_ways(master, child):
    reading = [master, 0]
    status = None
    while True:
        if status is None:
            done, status = os.waitpid(child, os.WNOHANG)
            status = status if done else None
        ready = select.select(reading, [], [], POLL if status is None else 0)[0]
        if master in ready:
            data = _read(master)
            if data:
                _write_all(1, data)
                continue
            reading.remove(master)  # every slave descriptor is closed
        if status is not None and (master not in ready or master not in reading):
            return status  # exited, and the pty has nothing more to say
        if 0 in ready:
            data = _read(0)
            _write_all(master, data or EOT)
            if not data:
                reading.remove(0)


def _read(fd):
    try:
        return os.read(fd, CHUNK)
    except OSError:  # EIO: a pty master whose slaves are all closed
        return b""


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data) :]


def _make_raw(fd):
    """Put terminal fd in raw mode (keystrokes go through as they are); returns its old mode, or None."""
    import tty

    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return None  # not a terminal: nothing to change
    tty.setraw(fd, termios.TCSADRAIN)  # not TCSAFLUSH: keep what was typed ahead
    return saved
