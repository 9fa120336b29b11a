"""`baleine events --follow`, in process: the history, then each new event once, across check's rotations."""

import os
import threading
import time

import pytest

from fleet.node import events, logs, state


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path))
    return tmp_path


def record(number, name="web"):
    events.record("start", {"name": name, "id": f"{number:012d}"}, by="test", n=number)


class Follower:
    """events.follow in a thread, printing to a pipe whose reading end the test closes to stop it."""

    def __init__(self, container=None):
        self.seen = []
        self.read_end, write_end = os.pipe()
        self.write_end = write_end
        self.thread = threading.Thread(target=events.follow, daemon=True,
                                       args=(container, None, self.seen.append, write_end))  # fmt: skip
        self.thread.start()

    def wait_for(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [event.get("n") for event in self.seen]

    def stop(self):
        os.close(self.read_end)  # the reader leaves: the follower must notice and return
        self.thread.join(10)
        alive = self.thread.is_alive()
        os.close(self.write_end)
        return alive


def test_history_then_each_new_event_once(root):
    record(1)
    record(2, name="db")
    follower = Follower()
    assert follower.wait_for(2) == [1, 2]
    record(3)
    assert follower.wait_for(3) == [1, 2, 3]
    assert follower.stop() is False


def test_a_container_s_events_only(root):
    record(1)
    record(2, name="db")
    follower = Follower("db")
    record(3, name="db")
    record(4)
    assert follower.wait_for(2) == [2, 3]
    time.sleep(3 * logs.POLL)
    assert [event["n"] for event in follower.seen] == [2, 3]  # web's 4 never came
    assert follower.stop() is False


def test_check_s_rotation_loses_and_repeats_nothing(root):
    """check moves the file's head to events.log.1 (at a block boundary) while the follower is behind."""
    for number in range(1, 101):
        record(number)
    follower = Follower()
    assert follower.wait_for(100) == list(range(1, 101))
    for number in range(101, 301):
        record(number)
    assert logs.rotate(state.path(events.FILE), 4096) > 0
    record(301)
    assert follower.wait_for(301) == list(range(1, 302))
    time.sleep(3 * logs.POLL)
    assert len(follower.seen) == 301
    assert follower.stop() is False


def test_a_line_cut_short_is_skipped_and_the_next_event_kept(root):
    record(1)
    follower = Follower()
    assert follower.wait_for(1) == [1]
    with open(state.path(events.FILE), "a") as log:
        log.write('{"time": "2026-1')  # a command killed in the middle of its write
    record(2)
    assert follower.wait_for(2) == [1, 2]
    assert follower.stop() is False
