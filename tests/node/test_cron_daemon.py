"""The real cron daemon (Debian's cron) running baleine's entry restarts a killed container.

Slow by nature (cron wakes once a minute). The daemon runs in a mount
namespace of its own where /etc/cron.d holds only our entry and /etc/crontab,
the users' crontabs and /run are masked: none of this machine's jobs run.
"""

import os
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.integration

DAEMON = """
set -e
mount -t tmpfs cron.d /etc/cron.d
cp "$1" /etc/cron.d/baleine-test
chmod 644 /etc/cron.d/baleine-test
mount --bind /dev/null /etc/crontab
mkdir -p /var/spool/cron/crontabs && mount -t tmpfs crontabs /var/spool/cron/crontabs
mount -t tmpfs run /run
exec cron -f -L 0
"""


def test_cron_runs_check_and_restarts_a_killed_container(busybox, tmp_path):
    entry = tmp_path / "baleine-entry"
    busybox.env["BALEINE_CRON_FILE"] = str(entry)
    busybox.ok("cron", "install", "--every", "1")
    busybox.ok("container", "run", "-d", "--name", "svc", "--restart", "on-failure", "bb", "sleep", "600")
    daemon = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", DAEMON, "daemon",
                               str(entry)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        pid = busybox.ok("container", "inspect", "svc")["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 130
        while time.monotonic() < deadline:
            item = busybox.ok("container", "inspect", "svc")
            if item["restarts"] == 1 and item["status"] == "running":
                break
            assert daemon.poll() is None, daemon.stderr.read().decode()
            time.sleep(2)
        assert (item["status"], item["restarts"]) == ("running", 1), item
        log = (busybox.root / "check.log").read_text()
        assert "restarted: svc (attempt 1)" in log, log
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=10)
