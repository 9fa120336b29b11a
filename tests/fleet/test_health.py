"""What `invoke health` reports, and what it records (pure)."""

from fleet import health
from fleet.errors import Unreachable
from fleet.inventory import Host
from fleet.transport import Outcome

N1, N2 = Host("node1", "192.0.2.1"), Host("node2", "192.0.2.2")


def item(name, status, **extra):
    return {"name": name, "status": status, "exit_code": None, "reason": None, "health": None,
            "stopped_by": None, **extra}  # fmt: skip


def test_problems_cover_exits_health_restarts_and_unreachable_hosts():
    report = {"rebooted": False, "restarted": [{"name": "api", "attempt": 2}], "failed": [], "waiting": []}
    containers = [
        item("web", "running", health="healthy"),
        item("worker", "exited", exit_code=3, reason="exited"),
        item("stopped", "exited", exit_code=0, stopped_by="user"),
        item("cache", "running", health="unhealthy"),
        item("oom", "exited", exit_code=137, reason="oom-killed"),
    ]
    outcomes = [Outcome(N1, value={"report": report, "containers": containers}),
                Outcome(N2, error=Unreachable("node2", "no answer"))]  # fmt: skip
    assert health.problems(outcomes) == [
        ["node1", "api", "restarted", "restart #2 by its policy"],
        ["node1", "worker", "exited", "exit code 3"],
        ["node1", "cache", "unhealthy", "its health check fails"],
        ["node1", "oom", "exited", "oom-killed"],
        ["node2", "", "unreachable", "no answer"],
    ]


def test_a_skipped_check_is_a_problem_of_the_host():
    report = {"skipped": "another check pass (pid 42) was still running after 60 s"}
    outcomes = [Outcome(N1, value={"report": report, "containers": [item("web", "running")]})]
    assert health.problems(outcomes) == [["node1", "", "check skipped", report["skipped"]]]


def test_a_failed_log_rotation_is_a_problem_of_its_container():
    report = {"rotation_failed": [{"name": "web", "error": "No space left on device: /x/log.1"}]}
    outcomes = [Outcome(N1, value={"report": report, "containers": [item("web", "running")]})]
    assert health.problems(outcomes) == [["node1", "web", "log rotation failed", "No space left on device: /x/log.1"]]


def test_low_space_is_a_problem_of_the_host():
    report = {"low_space": "/var/lib/baleine has 1G free of 20G (5%): remove what is unused"}
    outcomes = [Outcome(N1, value={"report": report, "containers": []})]
    assert health.problems(outcomes) == [["node1", "", "low space", report["low_space"]]]


def test_history_is_appended_with_one_header(tmp_path):
    path = tmp_path / "fleet-health.csv"
    quiet = {"report": {"restarted": []}, "containers": [item("web", "running")]}
    health.record(str(path), health.history_rows([Outcome(N1, value=quiet)], now=0))
    health.record(str(path), health.history_rows([Outcome(N2, error=Unreachable("node2", "refused"))], now=60))
    assert path.read_text().splitlines() == [
        "time;host;state;problems",
        "1970-01-01T00:00:00Z;node1;ok;",
        "1970-01-01T00:01:00Z;node2;unreachable;refused",
    ]
    assert [row["host"] for row in health.read_history(str(path), last=1)] == ["node2"]


def test_the_history_and_its_log_move_aside_past_their_size(tmp_path):
    path = tmp_path / "fleet-health.csv"
    quiet = {"report": {"restarted": []}, "containers": [item("web", "running")]}
    (tmp_path / "fleet-health.csv.log").write_text("nothing wrong\n" * 20)  # what cron appended
    for now in (0, 60, 120):
        health.record(str(path), health.history_rows([Outcome(N1, value=quiet)], now=now), size=60)
    assert (tmp_path / "fleet-health.csv.1").read_text().splitlines() == [
        "time;host;state;problems", "1970-01-01T00:00:00Z;node1;ok;", "1970-01-01T00:01:00Z;node1;ok;"]  # fmt: skip
    assert path.read_text().splitlines() == ["time;host;state;problems", "1970-01-01T00:02:00Z;node1;ok;"]
    assert (tmp_path / "fleet-health.csv.log.1").exists() and not (tmp_path / "fleet-health.csv.log").exists()


def test_reading_the_last_lines_keeps_only_those_in_memory(tmp_path):
    """A year of checks every minute over a few hosts is millions of lines; --last 50 must not hold them all."""
    import tracemalloc

    path = tmp_path / "fleet-health.csv"
    path.write_text("time;host;state;problems\n" + "".join(f"{n};node{n % 7};ok;\n" for n in range(100_000)))
    tracemalloc.start()
    try:
        rows = health.read_history(str(path), last=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [row["time"] for row in rows] == ["99997", "99998", "99999"]
    assert peak < 4 << 20  # all 100,000 rows as dicts take some 34 MiB


def test_control_entry_runs_invoke_health_with_the_inventory(tmp_path):
    text = health.control_entry("node*", 5, "h.csv", "/srv/fleet", "/srv/fleet/hosts")
    line = text.splitlines()[-1]
    assert line.startswith("*/5 * * * * root cd /srv/fleet && BALEINE_INVENTORY=/srv/fleet/hosts ")
    assert "invoke health --hosts 'node*' --record" in line and line.endswith("h.csv.log 2>&1")
    assert text.splitlines()[1].startswith("PATH=")


def test_control_entry_refuses_a_bad_interval():
    import pytest

    from fleet.errors import FleetError

    with pytest.raises(FleetError, match="invalid --every 0"):
        health.control_entry("all", 0, "h.csv", ".")
