"""Usage records: usage.csv written by check, summed by `baleine usage`, and the Prometheus textfile."""

import time

import pytest

from fleet.node import usage
from fleet.node.errors import Invalid

HEADER = "time;name;id;started;cpu_seconds;memory_peak;io_read_bytes;io_write_bytes;pids\n"


@pytest.fixture
def records(tmp_path, monkeypatch):
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path))
    path = tmp_path / "usage.csv"

    def write(*rows):
        path.write_text(HEADER + "".join(";".join(map(str, row)) + "\n" for row in rows))

    return write


def test_counters_grow_per_instance_and_restarts_begin_at_zero(records):
    records(
        ("2026-11-23T10:00:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "10.0", 100, 1000, 2000, 3),
        ("2026-11-23T10:01:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "16.5", 300, 1500, 2600, 5),
        ("2026-11-23T10:02:00Z", "web", "aaa", "2026-11-23T10:01:30Z", "2.0", 50, 0, 10, 1),  # restarted
        ("2026-11-23T10:02:00Z", "db", "bbb", "2026-11-23T08:00:00Z", "1.0", 7, 0, 0, 1),
    )
    web = usage.summary("web")[0]
    assert (web["cpu_seconds"], web["io_read_bytes"], web["io_write_bytes"]) == (18.5, 1500, 2610)
    assert (web["memory_peak"], web["pids_peak"], web["samples"]) == (300, 5, 3)
    assert [item["name"] for item in usage.summary()] == ["db", "web"]


def test_since_counts_from_the_last_sample_before_it(records):
    records(
        ("2026-11-23T10:00:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "10.0", 100, 1000, 0, 3),
        ("2026-11-23T10:05:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "12.0", 100, 1300, 0, 3),
    )
    since = usage.parse_since("2026-11-23T10:01:00Z")
    [web] = usage.summary("web", since)
    assert (web["cpu_seconds"], web["io_read_bytes"], web["samples"]) == (2.0, 300, 1)
    assert usage.summary("web", usage.parse_since("2026-11-24")) == []


def test_since_forms():
    assert abs(usage.parse_since("2h") - (time.time() - 7200)) < 5
    assert usage.parse_since("2026-11-23") == usage.parse_since("2026-11-23T00:00:00Z")
    for bad in ("yesterday", "2h30", "23/11/2026"):
        with pytest.raises(Invalid, match="--since"):
            usage.parse_since(bad)


@pytest.mark.integration
def test_check_records_usage_and_writes_the_prom_file(busybox, tmp_path):
    busybox.ok("container", "run", "-d", "--name", "busy", "bb", "sh", "-c", "while :; do :; done")
    busybox.ok("container", "run", "-d", "--name", "idle", "bb", "sleep", "300")
    busybox.ok("check")
    time.sleep(1.5)
    prom = tmp_path / "baleine.prom"
    busybox.ok("check", "--prom", str(prom))
    totals = {item["name"]: item for item in busybox.ok("usage")}
    assert totals["busy"]["samples"] == 2 and totals["busy"]["cpu_seconds"] > 0.5
    assert totals["idle"]["cpu_seconds"] < 0.5 and totals["idle"]["memory_peak"] > 0
    assert busybox.ok("usage", "idle", "--since", "1h")[0]["name"] == "idle"
    text = prom.read_text()
    assert 'baleine_container_up{name="busy"' in text and "# TYPE baleine_container_cpu_seconds_total counter" in text
    cpu_line = next(
        line for line in text.splitlines() if line.startswith('baleine_container_cpu_seconds_total{name="busy"')
    )
    assert float(cpu_line.split()[-1]) > 0.5
    reply = busybox.call("usage", "--since", "last tuesday")
    assert not reply["ok"] and "--since" in reply["error"]["message"]
