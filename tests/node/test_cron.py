"""The cron entry: what it runs (the helper shipped last), when, and with which state root."""

import os
import sys
import zipfile

from fleet.node import cron


def make_zipapp(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__main__.py", "")


def test_cron_runs_the_helper_shipped_last_through_its_link(tmp_path, monkeypatch):
    shipped = tmp_path / "baleine-1111.pyz"
    make_zipapp(shipped)
    monkeypatch.setattr(sys, "argv", [str(shipped), "cron", "install"])
    assert cron.self_command() == [sys.executable, "-I", "-S", str(shipped)]  # no link: the helper itself

    os.symlink("baleine-1111.pyz", tmp_path / cron.LATEST)  # as the control side ships it
    assert cron.self_command() == [sys.executable, "-I", "-S", str(tmp_path / cron.LATEST)]
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path / "root"))
    assert f"{tmp_path / cron.LATEST} check >> " in cron.entry(5)

    (tmp_path / cron.LATEST).unlink()
    (tmp_path / cron.LATEST).write_text("not a link")  # only a link of ours counts
    assert cron.self_command()[-1] == str(shipped)


def test_cron_runs_the_link_when_commands_run_from_the_unpacked_helper(tmp_path, monkeypatch):
    """The control side runs commands from the directory a zipapp is unpacked into: cron still takes the link."""
    unpacked = tmp_path / "baleine-2222"
    unpacked.mkdir()
    (unpacked / "__main__.py").write_text("")
    monkeypatch.setattr(sys, "argv", [str(unpacked), "cron", "install"])
    assert cron.self_command() == [sys.executable, "-I", "-S", str(unpacked)]  # no link: the directory runs too
    make_zipapp(tmp_path / "baleine-2222.pyz")
    os.symlink("baleine-2222.pyz", tmp_path / cron.LATEST)
    assert cron.self_command() == [sys.executable, "-I", "-S", str(tmp_path / cron.LATEST)]


def test_every_is_whole_minutes_within_the_hour_and_the_control_side_checks_it_alike():
    import pytest

    from fleet import health
    from fleet.errors import FleetError
    from fleet.node.errors import Invalid

    assert [cron.minutes(value) for value in ("1", "59", 5)] == [1, 59, 5]
    for value in ("0", "60", "1.5", "abc", " 5", "٣", "", 0, True, 2.0):
        with pytest.raises(Invalid) as refused:
            cron.minutes(value)
        assert refused.value.message == f"invalid --every {value!r}: use a number of minutes from 1 to 59"
        with pytest.raises(FleetError) as here:
            health.minutes(value)
        assert str(here.value) == refused.value.message
