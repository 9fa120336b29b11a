"""Health verdicts: retries, and the start period in which failures do not count."""

import pytest

from fleet.node import health, state
from fleet.node.errors import Invalid

STARTED = "2026-11-29T10:00:00Z"


def row(status="starting", failures=0):
    return {"started": STARTED, "health": status, "health_failures": str(failures)}


def at(seconds):
    return state.epoch(STARTED) + seconds


def test_failures_in_a_row_make_it_unhealthy_and_a_success_resets_them():
    settings = health.from_options("true", retries="2")
    assert health.verdict(row("healthy"), False, settings, at(5)) == {"health": "healthy", "health_failures": 1}
    assert health.verdict(row("healthy", 1), False, settings, at(6)) == {"health": "unhealthy", "health_failures": 2}
    assert health.verdict(row("unhealthy", 2), True, settings, at(7)) == {"health": "healthy", "health_failures": 0}


def test_within_the_start_period_failures_do_not_count_and_successes_do():
    settings = health.from_options("true", retries="1", start_period="60")
    assert settings["start_period"] == 60.0
    assert health.verdict(row(), False, settings, at(59)) == {"health": "starting", "health_failures": 0}
    assert health.verdict(row(), True, settings, at(30)) == {"health": "healthy", "health_failures": 0}
    assert health.verdict(row("healthy"), False, settings, at(40)) == {"health": "healthy", "health_failures": 0}
    assert health.verdict(row(), False, settings, at(60)) == {"health": "unhealthy", "health_failures": 1}
    no_period = health.from_options("true", retries="1")
    assert health.verdict(row(), False, no_period, at(1))["health"] == "unhealthy"


def test_a_probe_setting_without_a_probe_is_refused():
    with pytest.raises(Invalid, match="need --health-cmd"):
        health.from_options(start_period="30")
    with pytest.raises(Invalid, match="--health-start-period"):
        health.from_options("true", start_period="soon")
