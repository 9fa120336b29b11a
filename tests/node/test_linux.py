"""linux.run: the one way tools are run (fork/exec, no subprocess import)."""

import os

import pytest

from fleet.node import linux
from fleet.node.errors import CommandFailed, Missing


def test_output_and_input():
    assert linux.run(["cat"], stdin="hello\n") == "hello\n"
    assert linux.run(["sh", "-c", "echo out; echo err >&2"]) == "out\n"


def test_large_output_does_not_deadlock():
    text = linux.run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\\\0' x; echo tail >&2"])
    assert len(text) == 300000


def test_large_input_to_a_tool_that_stops_reading():
    with pytest.raises(CommandFailed):
        linux.run(["sh", "-c", "exit 3"], stdin="x" * 1_000_000)


def test_failure_carries_status_and_stderr():
    with pytest.raises(CommandFailed) as error:
        linux.run(["sh", "-c", "echo nope >&2; exit 4"])
    assert error.value.details["status"] == 4 and "nope" in error.value.message
    assert linux.run(["sh", "-c", "exit 4"], check=False) == ""


def test_missing_program():
    with pytest.raises(Missing, match="no-such-tool-here"):
        linux.run(["no-such-tool-here"])


def test_no_descriptor_leaks():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        linux.run(["true"])
    assert len(os.listdir("/proc/self/fd")) == before
