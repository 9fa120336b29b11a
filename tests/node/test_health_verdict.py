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


def test_an_image_s_healthcheck_becomes_the_default():
    check = {"Test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1/"], "Interval": 5_000_000_000, "Retries": 2,
             "StartPeriod": 60_000_000_000}  # fmt: skip
    derived = health_of(check)
    assert derived == {"cmd": "wget -q -O- http://127.0.0.1/", "interval": 5.0, "retries": 2, "timeout": 10.0,
                      "start_period": 60.0}  # fmt: skip
    assert health_of({"Test": ["CMD", "pg_isready", "-U", "my user"]})["cmd"] == "pg_isready -U 'my user'"
    assert health_of({"Test": ["NONE"]}) is None and health_of({}) is None
    with pytest.raises(Invalid, match=r"image 'x' has a HEALTHCHECK baleine cannot read \(\['CMD-SHELL'\]\)"):
        health_of({"Test": ["CMD-SHELL"]})
    assert health.from_image({"Healthcheck": health.to_image(health_of(check))}, "x") == health_of(check)  # commit


def health_of(check):
    return health.from_image({"Healthcheck": check} if check else {}, "x")


def test_options_replace_parts_of_the_image_s_healthcheck():
    base = health_of({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000})
    merged = health.from_options(retries="7", base=base)
    assert (merged["cmd"], merged["interval"], merged["retries"]) == ("true", 5.0, 7)
    assert health.from_options("false", base=base)["cmd"] == "false"
    assert health.from_options(base=None) is None


MIXED = "--health-cmd, --health-http, --health-https and --health-tcp do not mix"


def test_an_http_probe_replaces_the_image_s_command_and_bad_ones_are_refused():
    base = health_of({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000})
    http = health.from_options(base=base, http="/healthz?deep=1", port="8080")
    assert (http.get("cmd"), http["http"], http["port"], http["interval"]) == (None, "/healthz?deep=1", 8080, 5.0)
    assert health.from_options(http="/")["port"] == 80 and health.to_image(http) is None  # no image can hold it
    tcp = health.from_options(base=base, tcp="5432")
    assert (tcp.get("cmd"), tcp["tcp"]) == (None, 5432) and health.to_image(tcp) is None
    https = health.from_options(base=base, https="/ready")
    assert (https.get("cmd"), https["http"], https["port"], https["tls"]) == (None, "/ready", 443, True)
    assert health.from_options(https="/", port="8443")["port"] == 8443 and health.to_image(https) is None
    assert "tls" not in http  # plain HTTP stays plain
    for options, message in [({"http": "healthz"}, "invalid --health-http 'healthz': a path starting with /"),
                             ({"http": "/a b"}, "invalid --health-http '/a b': a path starting with /, without"),
                             ({"http": "/", "port": "99999"}, "invalid --health-port '99999': use a TCP port"),
                             ({"https": "ready"}, "invalid --health-https 'ready': a path starting with /"),
                             ({"port": "80"}, "--health-port needs --health-http or --health-https"),
                             ({"cmd": "true", "http": "/"}, MIXED),
                             ({"http": "/", "https": "/"}, MIXED),
                             ({"http": "/", "tcp": "80"}, MIXED),
                             ({"tcp": "0"}, "invalid --health-tcp '0': use a TCP port, 1 to 65535"),
                             ({"retries": "2"}, "need --health-cmd, --health-http, --health-https or "
                                                "--health-tcp")]:  # fmt: skip
        with pytest.raises(Invalid) as raised:
            health.from_options(**options)
        assert raised.value.message.startswith(message) or message in raised.value.message, raised.value.message


def test_an_image_without_a_healthcheck_costs_no_import():
    """Every create reads its image's HEALTHCHECK: shlex (for CMD forms) is loaded only for one that has it."""
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path.insert(0, {repo!r}); from fleet.node import health; "
            "health.from_image({'Cmd': ['sh']}, 'bb'); print('shlex' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert done.stdout == "False\n", done.stderr
