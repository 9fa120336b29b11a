"""Container logs: the tail is found from the end, whatever the log's size."""

import io

import pytest

from fleet.node import logs


class CountingFile(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        block = super().read(size)
        self.bytes_read += len(block)
        return block


@pytest.mark.parametrize(
    ("data", "count", "expected"),
    [
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc", 2, b"b\nc"),  # an unfinished last line is a line
        (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
        (b"a\nb\nc\n", 9, b"a\nb\nc\n"),
        (b"a\nb\nc\n", 0, b""),
        (b"", 5, b""),
        (b"\n\n\n", 2, b"\n\n"),  # empty lines count
        (b"a\r\nb\r\n", 1, b"b\r\n"),  # only \n ends a line, as in the container's own output
    ],
)
def test_tail_start(data, count, expected):
    handle = io.BytesIO(data)
    assert data[logs.tail_start(handle, count) :] == expected


def test_the_tail_of_a_big_log_reads_only_its_end():
    line = b"x" * 99 + b"\n"
    data = line * 200_000  # 20 MB
    handle = CountingFile(data)
    start = logs.tail_start(handle, 3)
    assert data[start:] == line * 3
    assert handle.bytes_read <= logs.CHUNK + 1


def test_lines_across_chunk_boundaries():
    lines = [f"{n:05d}".encode() * (n % 37) for n in range(3000)]  # lines of many lengths, some empty
    data = b"\n".join(lines) + b"\n"
    for count in (1, 100, 2999, 3000, 3001):
        start = logs.tail_start(io.BytesIO(data), count)
        assert data[start:].split(b"\n")[:-1] == lines[-count:]


def test_read_lines_and_write(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"one\ntwo\nthr\xffee")
    assert logs.read_lines(str(path)) == ["one", "two", "thr\ufffdee"]
    assert logs.read_lines(str(path), 2) == ["two", "thr\ufffdee"]
    assert logs.read_lines(str(tmp_path / "none")) == []
    out = io.BytesIO()
    logs.write(str(path), 1, out)
    assert out.getvalue() == b"thr\xffee"
    out = io.BytesIO()
    logs.write(str(path), None, out)
    assert out.getvalue() == path.read_bytes()
