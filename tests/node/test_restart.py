import pytest

from fleet.node import restart
from fleet.node.errors import Invalid


def test_parse():
    assert restart.parse(None) == {"policy": "no", "max": None}
    assert restart.parse("on-failure:3") == {"policy": "on-failure", "max": 3}
    assert restart.parse("unless-stopped") == {"policy": "unless-stopped", "max": None}
    for bad in ("sometimes", "always:3", "on-failure:0", "on-failure:x", "on-failure:"):
        with pytest.raises(Invalid, match="--restart"):
            restart.parse(bad)


def test_backoff_doubles_and_is_capped(monkeypatch):
    monkeypatch.delenv("BALEINE_RESTART_BACKOFF", raising=False)
    assert [restart.backoff(n) for n in range(5)] == [0, 5, 10, 20, 40]
    assert restart.backoff(30) == restart.BACKOFF_CAP
    assert restart.backoff(30, ran_for=restart.STEADY - 1) == restart.BACKOFF_CAP  # still a crash loop
    assert restart.backoff(30, ran_for=restart.STEADY) == 0.0  # ran steadily: at once


@pytest.mark.parametrize(
    ("policy", "code", "reason", "restarts", "by_user", "after_reboot", "expected"),
    [
        ("no", 1, None, 0, False, False, False),
        ("on-failure", 1, None, 0, False, False, True),
        ("on-failure", 0, None, 0, False, False, False),
        ("on-failure", 137, "oom-killed", 0, False, False, True),
        ("on-failure:2", 1, None, 2, False, False, False),
        ("on-failure", 1, None, 0, True, False, False),
        ("on-failure", None, "host rebooted", 0, False, True, False),
        ("always", 0, None, 9, False, False, True),
        ("always", 0, None, 0, True, False, False),
        ("always", None, "host rebooted", 0, True, True, True),
        ("unless-stopped", 0, None, 0, False, False, True),
        ("unless-stopped", None, "host rebooted", 0, True, True, False),
    ],
)
def test_policy_decisions(policy, code, reason, restarts, by_user, after_reboot, expected):
    assert restart.wanted(restart.parse(policy), code, reason, restarts, by_user, after_reboot) is expected
