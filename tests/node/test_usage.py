"""Usage records: usage/DAY.csv written by check, summed by `baleine usage`, and the Prometheus textfile."""

import os
import time

import pytest

from fleet.node import state, usage
from fleet.node.errors import Invalid

HEADER = "time;name;id;started;cpu_seconds;memory_peak;io_read_bytes;io_write_bytes;pids\n"


@pytest.fixture
def records(tmp_path, monkeypatch):
    """Writes rows to the file of their day, as check does."""
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path))

    def write(*rows):
        for row in rows:
            path = tmp_path / "usage" / f"{row[0][:10]}.csv"
            path.parent.mkdir(exist_ok=True)
            with open(path, "a") as handle:
                handle.write((HEADER if not handle.tell() else "") + ";".join(map(str, row)) + "\n")

    return write


def sample(stamp, cpu, name="web", started="2026-11-01T00:00:00Z", container_id=None):
    return (stamp, name, container_id or f"id-{name}", started, cpu, 100, 0, 0, 1)


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


def test_a_malformed_line_in_the_history_is_skipped(records, tmp_path):
    """A pass cut short, or a hand, may leave a line short or odd: the rows around it still count."""
    records(("2026-11-23T10:00:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "10.0", 100, 1000, 2000, 3))
    with open(tmp_path / "usage" / "2026-11-23.csv", "a") as handle:
        handle.write("garbage\n2026-11-23T10:00:30Z;web;aaa\n;;;;;;;;\n" + "x;" * 11 + "x\n")
        handle.write("2026-11-23T10:00:40Z;web;aaa;2026-11-23T09:00:00Z;lots;100;0;0;1\n")
    records(("2026-11-23T10:01:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "16.5", 300, 1500, 2600, 5))
    [web] = usage.summary("web")
    assert (web["cpu_seconds"], web["io_read_bytes"], web["memory_peak"], web["samples"]) == (16.5, 1500, 300, 2)


def test_since_counts_from_the_last_sample_before_it(records):
    records(
        ("2026-11-23T10:00:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "10.0", 100, 1000, 0, 3),
        ("2026-11-23T10:05:00Z", "web", "aaa", "2026-11-23T09:00:00Z", "12.0", 100, 1300, 0, 3),
    )
    since = usage.parse_since("2026-11-23T10:01:00Z")
    [web] = usage.summary("web", since)
    assert (web["cpu_seconds"], web["io_read_bytes"], web["samples"]) == (2.0, 300, 1)
    assert usage.summary("web", usage.parse_since("2026-11-24")) == []


def test_a_period_reads_its_days_and_the_one_before(records, monkeypatch):
    for day in range(10, 20):
        records(sample(f"2026-11-{day}T23:59:00Z", float(day)))
    read = []
    real_rows = state.rows_of
    monkeypatch.setattr(state, "rows_of", lambda path: read.append(path.rsplit("/", 1)[1]) or real_rows(path))
    [web] = usage.summary("web", usage.parse_since("2026-11-18T12:00:00Z"))
    assert (web["cpu_seconds"], web["samples"]) == (2.0, 2)  # 19.0 - 17.0: the base is the 17th's
    assert read == ["2026-11-17.csv", "2026-11-18.csv", "2026-11-19.csv"]


def test_a_base_older_than_the_day_before_is_looked_for(records):
    """No pass ran from the 12th to the 17th (cron was down): the base is the 11th's sample."""
    records(sample("2026-11-10T10:00:00Z", 1.0), sample("2026-11-11T10:00:00Z", 3.0),
            sample("2026-11-18T10:00:00Z", 10.0))  # fmt: skip
    [web] = usage.summary("web", usage.parse_since("2026-11-18"))
    assert (web["cpu_seconds"], web["samples"]) == (7.0, 1)
    records(sample("2026-11-18T10:05:00Z", 0.5, name="new", started="2026-11-18T10:04:00Z"))
    assert usage.summary("new", usage.parse_since("2026-11-18"))[0]["cpu_seconds"] == 0.5  # began within


def test_the_file_written_before_daily_files_is_still_read(records, tmp_path):
    (tmp_path / "usage.csv").write_text(HEADER + ";".join(map(str, sample("2026-11-01T10:00:00Z", 4.0))) + "\n")
    records(sample("2026-11-20T10:00:00Z", 6.0))
    assert usage.summary("web")[0]["cpu_seconds"] == 6.0
    assert usage.summary("web", usage.parse_since("2026-11-20"))[0]["cpu_seconds"] == 2.0


def test_memory_follows_instances_not_rows(tmp_path, monkeypatch):
    """A month of passes for three containers: 130,000 rows, summed in a few hundred KiB."""
    import tracemalloc

    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path))
    (tmp_path / "usage").mkdir()
    with open(tmp_path / "usage" / "2026-11-01.csv", "w") as handle:
        handle.write(HEADER)
        for minute in range(43200):
            stamp = f"2026-11-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z"
            for name in ("web", "db", "cache"):
                handle.write(f"{stamp};{name};id-{name};2026-10-31T00:00:00Z;{minute}.0;{minute};0;0;1\n")
    tracemalloc.start()
    try:
        totals = usage.summary()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(item["name"], item["cpu_seconds"], item["samples"]) for item in totals] == [
        ("cache", 43199.0, 43200), ("db", 43199.0, 43200), ("web", 43199.0, 43200)
    ]  # fmt: skip
    assert peak < 1 << 20, peak  # a list of its rows would take over 100 MiB


def test_a_container_is_its_id_through_renames_and_name_reuse(records):
    """Billing follows the container: a rename does not split it, a new one under an old name is not merged in."""
    records(
        sample("2026-11-20T10:00:00Z", 5.0, name="web", container_id="aaa"),
        sample("2026-11-20T10:01:00Z", 7.0, name="front", container_id="aaa"),  # renamed while running
        sample("2026-11-20T10:02:00Z", 1.0, name="web", container_id="bbb"),  # a new container took the name
    )
    totals = usage.summary()
    assert [(item["name"], item["id"], item["cpu_seconds"], item["samples"]) for item in totals] == [
        ("front", "aaa", 7.0, 2), ("web", "bbb", 1.0, 1)]  # fmt: skip
    assert [item["id"] for item in usage.summary("front")] == ["aaa"]
    assert [item["id"] for item in usage.summary("web")] == ["aaa", "bbb"]  # both were called web
    now = usage.summary(current={"aaa": "edge"})  # renamed again since the last pass: the name of now
    assert [(item["name"], item["id"]) for item in now] == [("edge", "aaa"), ("web", "bbb")]
    assert [item["id"] for item in usage.summary("edge", current={"aaa": "edge"})] == ["aaa"]
    assert usage.summary("nobody") == []


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
    first_day = time.strftime("%Y-%m-%d.csv", time.gmtime())
    busybox.ok("check")
    busybox.ok("container", "rename", "idle", "calm")  # one container still: its records are not split
    time.sleep(1.5)
    prom = tmp_path / "baleine.prom"
    busybox.ok("check", "--prom", str(prom))
    days = set(os.listdir(busybox.root / "usage"))  # the file of the day; two if midnight came between the passes
    assert days in ({first_day}, {first_day, time.strftime("%Y-%m-%d.csv", time.gmtime())})
    totals = {item["name"]: item for item in busybox.ok("usage")}
    assert totals["busy"]["samples"] == 2 and totals["busy"]["cpu_seconds"] > 0.5
    assert totals["calm"]["cpu_seconds"] < 0.5 and totals["calm"]["memory_peak"] > 0 and "idle" not in totals
    calm_id = busybox.ok("container", "inspect", "calm")["id"][:12]
    assert totals["calm"]["samples"] == 2 and totals["calm"]["id"] == calm_id
    assert busybox.ok("usage", "idle", "--since", "1h") == busybox.ok("usage", "calm", "--since", "1h")
    assert busybox.cli("usage", "calm").stdout.splitlines()[1].split()[:2] == ["calm", totals["calm"]["id"]]
    text = prom.read_text()
    assert 'baleine_container_up{name="busy"' in text and "# TYPE baleine_container_cpu_seconds_total counter" in text
    cpu_line = next(
        line for line in text.splitlines() if line.startswith('baleine_container_cpu_seconds_total{name="busy"')
    )
    assert float(cpu_line.split()[-1]) > 0.5
    reply = busybox.call("usage", "--since", "last tuesday")
    assert not reply["ok"] and "--since" in reply["error"]["message"]
