"""Container logs: the tail is found from the end, whatever the log's size; rotation loses no line."""

import fcntl
import io
import os
import subprocess
import threading

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
    assert logs.tail_start([handle], count)[0] == 0
    assert data[logs.tail_start([handle], count)[1] :] == expected


def test_the_tail_of_a_big_log_reads_only_its_end():
    line = b"x" * 99 + b"\n"
    data = line * 200_000  # 20 MB
    handle = CountingFile(data)
    _, start = logs.tail_start([handle], 3)
    assert data[start:] == line * 3
    assert handle.bytes_read <= logs.CHUNK + 1


def test_lines_across_chunk_boundaries():
    lines = [f"{n:05d}".encode() * (n % 37) for n in range(3000)]  # lines of many lengths, some empty
    data = b"\n".join(lines) + b"\n"
    for count in (1, 100, 2999, 3000, 3001):
        _, start = logs.tail_start([io.BytesIO(data)], count)
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


@pytest.mark.parametrize("cut", [0, 1, 5, 6, 7, 11, 12])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 9])
def test_the_tail_runs_across_the_older_part(cut, count):
    """log.1 and log are one stream, cut anywhere (a rotation cuts at a block, mid-line)."""
    data = b"one\ntwo\nthree\n"
    older, log = io.BytesIO(data[:cut]), io.BytesIO(data[cut:])
    out = io.BytesIO()
    logs._write_parts([older, log], count, out)
    assert out.getvalue() == (b"".join(line + b"\n" for line in data.split(b"\n")[:-1][-count:]) if count else b"")
    assert older.closed and not log.closed


def numbered(first, last):
    return b"".join(b"line %06d\n" % n for n in range(first, last))


def test_rotation_keeps_every_line_and_the_tail(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(numbered(0, 20_000))  # 240 kB
    assert logs.rotate(str(path), 300_000) == 0  # under the limit: untouched
    assert not (tmp_path / "log.1").exists()
    moved = logs.rotate(str(path), 100_000)
    assert moved > 0 and (tmp_path / "log.1").stat().st_size == moved
    assert path.stat().st_size < 100_000
    assert logs.read_lines(str(path)) == [f"line {n:06d}" for n in range(20_000)]
    assert logs.read_lines(str(path), 3) == ["line 019997", "line 019998", "line 019999"]
    with open(path, "ab") as log:  # the container's own descriptor: O_APPEND
        log.write(numbered(20_000, 30_000))
    logs.rotate(str(path), 100_000)  # log.1 replaced: only the newest older part is kept
    assert logs.read_lines(str(path), 2) == ["line 029998", "line 029999"]
    assert logs.read_lines(str(path))[-1] == "line 029999"
    assert sorted(os.listdir(tmp_path)) == ["log", "log.1"]  # no temporary file left


@pytest.mark.integration
def test_rotation_on_ext4_removes_the_head_in_place_while_the_container_writes(tmp_path):
    """Collapse-range: a writer appending all along loses nothing, and its next line lands at the end."""
    with mounted(tmp_path, "ext4") as where:
        path = where / "log"
        writer = subprocess.Popen(
            ["sh", "-c", f'i=0; while [ $i -lt 30000 ]; do echo "line $i"; i=$((i+1)); done >> {path}']
        )
        try:
            moved = 0
            while writer.poll() is None:
                moved += logs.rotate(str(path), logs.SMALLEST_LIMIT)
        finally:
            writer.wait()
        assert moved > 0
        older = (where / "log.1").read_bytes()
        assert len(older) % os.statvfs(where).f_bsize == 0  # whole blocks moved...
        assert logs.read_lines(str(path))[-1] == "line 29999"  # ...and the log never emptied
        # log.1's first line may be the end of one an earlier rotation cut: from its second on, nothing lost
        kept = [int(line.split()[1]) for line in logs.read_lines(str(path))[1:]]
        assert kept == list(range(kept[0], 30000))


@pytest.mark.integration
def test_rotation_where_collapse_range_is_missing_truncates(tmp_path):
    with mounted(tmp_path, "tmpfs") as where:
        path = where / "log"
        path.write_bytes(numbered(0, 10_000))
        moved = logs.rotate(str(path), logs.SMALLEST_LIMIT)
        assert moved == 120_000 and path.stat().st_size == 0
        assert (where / "log.1").read_bytes() == numbered(0, 10_000)
        with open(path, "ab") as log:
            log.write(b"after\n")
        assert logs.read_lines(str(path), 2) == ["line 009999", "after"]


def test_without_fallocate_the_log_is_truncated(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # no util-linux fallocate to run
    path = tmp_path / "log"
    path.write_bytes(numbered(0, 10_000))
    assert logs.rotate(str(path), logs.SMALLEST_LIMIT) == 120_000 and path.stat().st_size == 0
    assert logs.read_lines(str(path)) == [f"line {n:06d}" for n in range(10_000)]


class mounted:
    """A small filesystem of the given type, mounted in the test's private mount namespace."""

    def __init__(self, tmp_path, kind):
        self.point, self.kind, self.disk = tmp_path / kind, kind, tmp_path / f"{kind}.img"

    def __enter__(self):
        self.point.mkdir()
        if self.kind == "ext4":
            subprocess.run(["truncate", "-s", "32M", str(self.disk)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", str(self.disk)], check=True)
            subprocess.run(["mount", "-o", "loop", str(self.disk), str(self.point)], check=True)
        else:
            subprocess.run(["mount", "-t", self.kind, "-o", "size=32m", "baleine-test", str(self.point)], check=True)
        return self.point

    def __exit__(self, *_):
        subprocess.run(["umount", str(self.point)], check=True)


def test_a_follower_prints_each_byte_once_across_a_rotation(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(numbered(0, 10_000))
    ahead, behind = logs.Position(str(path)), logs.Position(str(path))
    behind.offset = 50_000  # it had printed less when the rotation came
    with open(path, "ab") as log:
        log.write(numbered(10_000, 10_500))
    logs.rotate(str(path), logs.SMALLEST_LIMIT)
    with open(path, "ab") as log:
        log.write(numbered(10_500, 11_000))
    for position, expected in ((ahead, numbered(10_000, 11_000)), (behind, numbered(0, 11_000)[50_000:])):
        out = io.BytesIO()
        position.copy_new(out)
        assert out.getvalue() == expected
        out = io.BytesIO()
        position.copy_new(out)
        assert out.getvalue() == b""


def test_a_follower_is_woken_by_the_container_s_end_not_by_its_next_look(tmp_path, monkeypatch):
    from fleet.node import containers, linux

    path = tmp_path / "log"
    path.write_bytes(b"")
    writer = subprocess.Popen(["sh", "-c", f"read go; echo last >> {path}"], stdin=subprocess.PIPE)
    row = {"status": "running", "pid": str(writer.pid), "pid_start": str(linux.pid_start_time(writer.pid))}
    monkeypatch.setattr(containers, "current", lambda name: row)
    monkeypatch.setattr(logs, "POLL", 3600.0)  # a follower that looked again only after its poll would hang
    out = io.BytesIO()
    follower = threading.Thread(target=logs.follow, args=("c", str(path), out))
    follower.start()
    writer.communicate(b"go\n")
    follower.join(60)
    assert not follower.is_alive() and out.getvalue() == b"last\n"  # and what it wrote just before its end

    row["pid"] = str(os.getpid())  # its pid now another process's (ours): not the container, nothing to wait for
    waiter = threading.Thread(target=logs.wait_until_stopped, args=("c",), daemon=True)
    waiter.start()
    waiter.join(60)
    assert not waiter.is_alive()


def test_a_follower_ends_when_its_reader_goes_away(tmp_path, monkeypatch):
    """Over SSH: when invoke stops following, sshd closes the pipe, and the follower must not stay on the host."""
    from fleet.node import containers, linux

    path = tmp_path / "log"
    path.write_bytes(b"")
    sleeper = subprocess.Popen(["sleep", "300"])
    row = {"status": "running", "pid": str(sleeper.pid), "pid_start": str(linux.pid_start_time(sleeper.pid))}
    monkeypatch.setattr(containers, "current", lambda name: row)
    monkeypatch.setattr(logs, "POLL", 3600.0)
    read_end, write_end = os.pipe()
    with open(write_end, "wb", buffering=0) as out:
        follower = threading.Thread(target=logs.follow, args=("c", str(path), out), daemon=True)
        follower.start()
        try:
            os.close(read_end)
            follower.join(60)
            assert not follower.is_alive() and sleeper.poll() is None  # the container runs on; the follower is gone
        finally:
            sleeper.kill()
            sleeper.wait()


def test_readers_wait_while_a_rotation_holds_the_log(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"one\n")
    out = io.BytesIO()
    with open(path, "rb") as rotation:
        fcntl.flock(rotation, fcntl.LOCK_EX)
        reader = threading.Thread(target=logs.write, args=(str(path), None, out))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and out.getvalue() == b""
    reader.join()
    assert out.getvalue() == b"one\n"


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("64K", 65536), ("10M", 10 << 20), ("1G", 1 << 30)])
def test_log_size_values(value, expected):
    assert logs.parse_limit(value) == expected


@pytest.mark.parametrize("value", ["1K", "63K", "-1", "ten", ""])
def test_bad_log_sizes_are_refused(value):
    from fleet.node.errors import Invalid

    with pytest.raises(Invalid, match="--log-size"):
        logs.parse_limit(value)
