"""Merging per-host results into one fleet table (pure)."""

from fleet import view
from fleet.errors import HelperError, Unreachable
from fleet.inventory import Host
from fleet.transport import Outcome

N1, N2, N3 = Host("node1", "192.0.2.1"), Host("node2", "192.0.2.2"), Host("node3", "192.0.2.3")


def container(name, status="running", **extra):
    item = {"name": name, "image": "bb", "status": status, "exit_code": None, "reason": None, "restarts": 0,
            "health": None, "networks": [{"network": "farm", "address": "10.9.0.2"}], "started": None,
            "limits": {"memory": 64 << 20}}  # fmt: skip
    item.update(extra)
    return item


def outcomes():
    return [
        Outcome(N1, value=[container("web1", health="healthy"), container("web2", paused=True)]),
        Outcome(N2, value=[container("api", status="exited", exit_code=3, networks=[])]),
        Outcome(N3, error=Unreachable("node3", "connection refused by 192.0.2.3:22 (is sshd running?)")),
    ]


def test_rows_are_host_first_and_every_host_appears():
    rows = view.container_rows(outcomes())
    assert [row[:2] for row in rows] == [["node1", "web1"], ["node1", "web2"], ["node2", "api"],
                                         ["node3", "UNREACHABLE: connection refused by 192.0.2.3:22 "
                                                   "(is sshd running?)"]]  # fmt: skip
    assert rows[0][3:6] == ["running", "healthy", "10.9.0.2"]
    assert rows[1][3] == "paused"  # `container pause`: still running, frozen
    assert rows[0][7] == "mem 64M"
    assert rows[2][3] == "exited (3)"
    assert all(len(row) == len(view.CONTAINER_COLUMNS) for row in rows)


def test_table_has_the_columns_and_the_unreachable_host():
    text = view.table(view.CONTAINER_COLUMNS, view.container_rows(outcomes()))
    lines = text.splitlines()
    assert lines[0].split() == list(view.CONTAINER_COLUMNS)
    assert lines[-1].startswith("node3") and "UNREACHABLE" in lines[-1]


def test_merged_json_keeps_items_and_errors():
    merged = view.merged(outcomes())
    assert [row["host"] for row in merged] == ["node1", "node1", "node2", "node3"]
    assert merged[0]["name"] == "web1"
    assert merged[3]["error"] == {"kind": "unreachable", "host": "node3",
                                  "message": "connection refused by 192.0.2.3:22 (is sshd running?)"}  # fmt: skip


def test_merged_json_of_one_answer_per_host():
    answers = [Outcome(N1, value={"exit_code": 0, "stdout": "hi"}), Outcome(N2, value=None)]
    assert view.merged(answers) == [{"host": "node1", "exit_code": 0, "stdout": "hi"},
                                    {"host": "node2", "value": None}]  # fmt: skip


def test_a_helper_failure_shows_as_failed_not_unreachable():
    failed = Outcome(N2, error=HelperError("node2", ["image", "list"], 1, "state is locked", "boom"))
    rows = view.image_rows([failed])
    assert rows == [["node2", "FAILED: state is locked", "", "", "", "", ""]]


def test_summary_names_the_failed_hosts():
    assert view.summary(outcomes()) == "2 of 3 hosts ok; failed: node3"
    assert view.summary(outcomes()[:2]) == "2 hosts ok"
    assert view.summary(outcomes()[:1]) == "1 host ok"


def test_image_and_network_rows():
    images = [Outcome(N1, value=[{"name": "bb", "id": "abc", "size": 32 << 20, "used": 3 << 20,
                                  "source": "busybox", "created": "2026-01-01T00:00:00Z"}])]  # fmt: skip
    assert view.image_rows(images) == [["node1", "bb", "abc", "32M", "3M", "busybox", "2026-01-01T00:00:00Z"]]
    images[0].value[0]["source"] = "pull:ghcr.io/org/app:2@sha256:" + "0123456789ab" + "f" * 52
    assert view.image_rows(images)[0][5] == "pull:ghcr.io/org/app:2@sha256:0123456789ab"  # JSON keeps it whole
    networks = [Outcome(N1, value=[{"name": "farm", "bridge": "bl-farm", "subnet": "10.9.0.0/24",
                                    "gateway": "10.9.0.1", "containers": 2, "running": 1}])]  # fmt: skip
    assert view.network_rows(networks) == [["node1", "farm", "bl-farm", "10.9.0.0/24", "10.9.0.1", 2, 1]]


def test_events_of_all_hosts_are_one_timeline():
    def event(time, action, **extra):
        return {"time": time, "action": action, "container": "web", "id": "abc", "by": "alice", **extra}

    mixed = [
        Outcome(N1, value=[event("2026-11-29T10:00:00Z", "create"), event("2026-11-29T10:00:05Z", "die", exit_code=0)]),
        Outcome(N2, value=[event("2026-11-29T10:00:01Z", "start")]),
        Outcome(N3, error=Unreachable("node3", "connection refused by 192.0.2.3:22 (is sshd running?)")),
    ]
    rows = view.event_rows(mixed)
    assert [row[:3] for row in rows[:3]] == [["node1", "2026-11-29T10:00:00Z", "create"],
                                             ["node2", "2026-11-29T10:00:01Z", "start"],
                                             ["node1", "2026-11-29T10:00:05Z", "die"]]  # fmt: skip
    assert rows[2][5] == "exit_code=0" and rows[3][:2] == ["node3", "UNREACHABLE: connection refused by "
                                                           "192.0.2.3:22 (is sshd running?)"]  # fmt: skip
    assert all(len(row) == len(view.EVENT_COLUMNS) for row in rows)


def test_space_is_one_row_per_host():
    df = {"root": "/var/lib/baleine", "free": 3 << 30, "size": 12 << 30, "logs": {"bytes": 1 << 20},
          "images": {"count": 2, "bytes": 100 << 20, "reclaimable": 40 << 20},
          "containers": {"count": 3, "bytes": 200 << 20, "reclaimable": 10 << 20}, "history": {"bytes": 0}}  # fmt: skip
    rows = view.space_rows([Outcome(N1, value=df), Outcome(N3, error=Unreachable("node3", "timed out"))])
    assert rows[0] == ["node1", "3G (25%)", "12G", "100M", "200M", "1M", "50M"]
    assert rows[1][:2] == ["node3", "UNREACHABLE: timed out"] and len(rows[1]) == len(view.SPACE_COLUMNS)


def test_info_is_one_row_per_host():
    item = {"kernel": "6.1.0", "cgroups": "v2", "filesystem": "xfs", "reflink": True, "images": 2,
            "containers": {"total": 5, "running": 3, "paused": 1, "created": 0, "exited": 1},
            "free": 50 << 30, "size": 100 << 30, "cron": {"installed": True, "every": 1},
            "version": "0.1.0", "python": "3.11.2"}  # fmt: skip
    found = view.info_rows([Outcome(N1, value=item), Outcome(N3, error=Unreachable("node3", "timed out"))])
    assert found[0] == ["node1", "6.1.0", "v2", "xfs (reflink)", "3 (+1 paused)", 5, 2, "50G (50%)", "every 1 min",
                        "0.1.0, python 3.11.2"]  # fmt: skip
    assert found[1][:2] == ["node3", "UNREACHABLE: timed out"] and len(found[1]) == len(view.INFO_COLUMNS)
