import os
import subprocess
import sys

import pytest

from fleet.node import state
from fleet.node.errors import NotFound


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("BALEINE_ROOT", str(tmp_path))
    return tmp_path


def test_missing_table_reads_empty():
    assert state.CONTAINERS.read() == []


def test_round_trip_is_semicolon_separated_with_header(root):
    with state.locked():
        state.NETWORKS.upsert({"name": "farm", "bridge": "bl-farm", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1",
                               "created": "2026-01-01T00:00:00Z"})  # fmt: skip
    text = (root / "bridges.csv").read_text()
    assert text.splitlines() == [
        "name;bridge;subnet;gateway;created;range;vxlan;peers;mtu;internal",
        "farm;bl-farm;10.1.0.0/24;10.1.0.1;2026-01-01T00:00:00Z;;;;;",
    ]
    assert state.NETWORKS.find("farm")["gateway"] == "10.1.0.1"


def test_get_names_the_rows_there_are_when_the_one_asked_for_is_not():
    with pytest.raises(NotFound, match=r"^no such image 'bb' \(known: none yet\)$"):
        state.IMAGES.get("bb")
    with state.locked():
        for name in ("farm", "back"):
            state.NETWORKS.upsert({"name": name, "subnet": "10.1.0.0/24"})
    assert state.NETWORKS.get("back")["name"] == "back"
    with pytest.raises(NotFound, match=r"^no such network 'front' \(known: farm, back\)$"):
        state.NETWORKS.get("front")
    rows = state.NETWORKS.read()[:1]  # a caller's own rows are searched, not the file
    with pytest.raises(NotFound, match=r"\(known: farm\)$"):
        state.NETWORKS.get("back", rows)


def test_unknown_columns_from_a_newer_version_survive_a_rewrite(root):
    (root / "images.csv").write_text("name;digest;size;source;created;future\nbb;sha256:1;1;busybox;t;keep\n")
    with state.locked():
        state.IMAGES.update("bb", size=2)
    assert state.IMAGES.find("bb") == {"name": "bb", "digest": "sha256:1", "size": "2", "source": "busybox",
                                       "created": "t", "future": "keep"}  # fmt: skip


def test_cells_with_separators_are_quoted(root):
    with state.locked():
        state.IMAGES.upsert({"name": "x", "source": "dir:/a;b", "digest": "", "size": "", "created": ""})
    assert state.IMAGES.find("x")["source"] == "dir:/a;b"


AWKWARD_TABLE = (
    "name;source;created\n"
    'a;"dir:/x;y";t\n'  # a quoted separator
    "\n"  # a blank line
    'b;"say ""hi""\nthen go";t\n'  # quotes and a newline inside a cell
    "short;only\n"  # a cell missing
    "long;s;t;extra;more\n"  # cells no column names
)


def test_history_files_are_read_as_the_csv_module_reads_them(root):
    import csv

    (root / "usage.csv").write_text(AWKWARD_TABLE)
    with open(root / "usage.csv", newline="") as handle:
        expected = [dict(row) for row in csv.DictReader(handle, delimiter=";")]
    assert list(state.rows_of(root / "usage.csv")) == expected
    assert [row["name"] for row in expected] == ["a", "b", "short", "long"]


def test_a_table_edited_out_of_shape_is_named_with_its_line(root):
    """Quoted separators, blank lines and newlines in cells read as csv reads them; a row of another width or
    a header without a column the table needs is Damaged, naming the line (not a KeyError or TypeError later)."""
    from fleet.node.errors import Damaged

    header = ";".join(state.IMAGE_COLUMNS)
    good = f'{header}\na;sha256:1;3;"dir:/x;y";t\n\nb;sha256:2;4;"say ""hi""\nthen go";t\n'
    (root / "images.csv").write_text(good)
    assert [row["source"] for row in state.IMAGES.read()] == ["dir:/x;y", 'say "hi"\nthen go']
    for text, message in [
        (
            good + "short;only\n",
            f"{root}/images.csv line 6: 2 cells where the header has 5: fix that line, or remove it",
        ),
        (good + "junk\n", f"{root}/images.csv line 6: 1 cell where the header has 5: fix that line, or remove it"),
        (
            good + "a;b;c;d;e;f\n",
            f"{root}/images.csv line 6: 6 cells where the header has 5: fix that line, or remove it",
        ),
        (good.replace("name;", "nom;", 1), f"{root}/images.csv: its header (line 1) lacks name: restore that line"),
    ]:
        (root / "images.csv").write_text(text)
        with pytest.raises(Damaged) as damaged:
            state.IMAGES.read()
        assert str(damaged.value) == message
    (root / "containers.csv").write_text("name;id;image;status\n")  # a file lacking columns its first release had
    with pytest.raises(Damaged, match="lacks pid, pid_start, exit_code, networks, created, started, finished"):
        state.CONTAINERS.read()
    later = [column for column in state.CONTAINER_COLUMNS if column not in ("reason", "restarts", "health")]
    (root / "containers.csv").write_text(";".join(later) + "\n" + ";".join(["x"] * len(later)) + "\n")
    assert state.CONTAINERS.read()[0]["id"] == "x"  # one without columns added since still reads


def test_tables_are_written_as_the_csv_module_writes_them(root):
    import csv
    import io

    rows = [{"name": "a", "source": "dir:/x;y", "created": 'say "hi"\nthen'}, {"name": "b", "size": 3, "digest": None}]
    with state.locked():
        state.IMAGES.write(rows)
    header = list(state.IMAGE_COLUMNS)
    expected = io.StringIO()
    writer = csv.DictWriter(expected, fieldnames=header, delimiter=";", lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    assert (root / "images.csv").read_text() == expected.getvalue()
    assert state.IMAGES.read()[0]["created"] == 'say "hi"\nthen'


def test_write_leaves_no_temporary_file(root):
    with state.locked():
        state.IMAGES.upsert({"name": "x"})
    assert sorted(os.listdir(root)) == [".lock", ".reserve", "containers", "images", "images.csv"]


FULL_DISK = """
import resource, signal, sys
sys.path.insert(0, {repo!r})
from fleet.node import state
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    with state.locked():
        state.IMAGES.upsert({{"name": "big", "source": "x" * 10000}})
except OSError as error:
    sys.exit(error.errno)
"""


def test_a_write_that_fails_part_way_keeps_the_old_file_and_leaves_no_temporary_one(root):
    import errno

    with state.locked():
        state.IMAGES.upsert({"name": "x"})
    before = (root / "images.csv").read_bytes()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", FULL_DISK.format(repo=repo)], env=dict(os.environ))
    assert done.returncode == errno.EFBIG
    assert (root / "images.csv").read_bytes() == before
    assert sorted(os.listdir(root)) == [".lock", ".reserve", "containers", "images", "images.csv"]


def test_exclusive_names_its_holder_to_whoever_waits_in_vain(tmp_path):
    path = tmp_path / "some.lock"
    with state.exclusive(str(path), 0, "pid 42") as holder:
        assert holder is None and path.read_text() == "pid 42\n"
        with state.exclusive(str(path), 0.3, "pid 43") as other:  # another open file: flock refuses it too
            assert other == "pid 42"
    assert path.read_text() == ""  # released: the line goes with the lock


def test_exclusive_waits_for_a_holder_that_finishes(tmp_path):
    import threading

    path = tmp_path / "some.lock"
    held, release = threading.Event(), threading.Event()

    def hold():
        with state.exclusive(str(path), 0, "pid 42"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    with state.exclusive(str(path), 30, "pid 43") as other:
        assert other is None and path.read_text() == "pid 43\n"
    holder.join()


def test_lock_is_reentrant_in_one_process():
    with state.locked(), state.locked():
        state.IMAGES.upsert({"name": "x"})
    assert state.IMAGES.find("x")


COUNTER = """
import sys
sys.path.insert(0, {repo!r})
from fleet.node import state
for _ in range(25):
    with state.locked():
        row = state.IMAGES.find("counter")
        state.IMAGES.upsert({{"name": "counter", "size": str(int(row["size"]) + 1)}})
"""


def test_concurrent_writers_lose_no_update(root):
    with state.locked():
        state.IMAGES.upsert({"name": "counter", "size": "0"})
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = COUNTER.format(repo=repo)
    workers = [subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ)) for _ in range(8)]
    assert [worker.wait() for worker in workers] == [0] * 8
    assert state.IMAGES.find("counter")["size"] == str(8 * 25)


def test_epoch_agrees_with_the_calendar_and_refuses_other_formats():
    import calendar
    import random
    import time

    moments = [0, 951782400, 951868799, 4102444800, 1700000000, *random.Random(7).sample(range(0, 2**33), 200)]
    for moment in moments:  # leap days, centuries, 2100 (no leap day) and a spread to year 2242
        stamp = time.strftime(state.STAMP, time.gmtime(moment))
        assert state.epoch(stamp) == calendar.timegm(time.strptime(stamp, state.STAMP)) == moment
    assert state.epoch(state.now()) == pytest.approx(time.time(), abs=2)
    for bad in ("", "2026-11-23", "2026-11-23 10:00:00Z", "2026-13-01T00:00:00Z", "2026-11-23T24:00:00Z",
                "20x6-11-23T10:00:00Z", "2026-11-23T10:00:00+01"):  # fmt: skip
        with pytest.raises(ValueError):
            state.epoch(bad)


def test_remove_tree_removes_links_never_what_they_point_to(tmp_path):
    keep = tmp_path / "keep"
    (keep / "inner").mkdir(parents=True)
    (keep / "inner" / "file").write_text("mine")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "deep").write_text("x")
    (top / "plain").write_text("y")
    (top / "to-dir").symlink_to(keep)
    (top / "a" / "to-file").symlink_to(keep / "inner" / "file")
    state.remove_tree(str(top))
    assert not os.path.lexists(top)
    assert (keep / "inner" / "file").read_text() == "mine"
    state.remove_tree(str(top))  # gone already: nothing to do, no error


@pytest.mark.parametrize("full", ["ENOSPC", "EDQUOT"])
def test_a_full_disk_or_a_spent_quota_gives_up_the_reserve_for_the_write(root, monkeypatch, full):
    """The kernel says EDQUOT where a quota, not the disk, is what ran out: both free the reserve."""
    import errno

    state.ensure_layout()
    assert (root / state.RESERVE).exists()
    real_fsync, failures = os.fsync, []

    def fsync_once_full(fd):
        if not failures:
            failures.append(fd)
            raise OSError(getattr(errno, full), os.strerror(getattr(errno, full)))
        real_fsync(fd)

    monkeypatch.setattr(state.os, "fsync", fsync_once_full)
    state.write_atomic(str(root / "containers.csv"), "name\n")
    assert (root / "containers.csv").read_text() == "name\n" and not (root / state.RESERVE).exists()
    assert sorted(os.listdir(root)) == ["containers", "containers.csv", "images"]  # no temporary file left


SPACE_ERRORS = [("ENOSPC", "the filesystem is full"), ("EDQUOT", "the disk quota is spent")]


@pytest.mark.parametrize(("full", "what"), SPACE_ERRORS)
def test_a_full_disk_or_a_spent_quota_is_one_clear_line(root, full, what):
    import errno

    from fleet.node import cli

    error = cli._wrap_unexpected(OSError(getattr(errno, full), "no room", str(root / "images" / "x.ext4")))
    assert (error.code, error.message) == (
        "no_space",
        f"{what} at {root}/images/x.ext4: remove what is unused (stopped containers, images), or give it more room",
    )
