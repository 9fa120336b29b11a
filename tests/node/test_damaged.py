"""State edited out of shape by hand: every command names the file and the line, and changes nothing."""

import pytest

pytestmark = pytest.mark.integration


def test_a_config_that_is_not_json_is_named_and_the_container_can_still_go(busybox):
    busybox.ok("container", "create", "--name", "a", "bb", "true")
    config = busybox.root / "containers" / busybox.ok("container", "inspect", "a")["id"] / "config.json"
    config.write_text("{broken\n")
    assert [item["name"] for item in busybox.ok("container", "list", "--all")] == ["a"]  # the others still list
    done = busybox.cli("container", "start", "a")
    message = (
        f"{config} is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
    )
    assert (done.returncode, done.stderr) == (1, f"baleine: error: {message}: restore it, or remove the container\n")
    assert busybox.ok("container", "list", "--all")[0]["status"] == "created"  # refused before the row changed
    busybox.ok("container", "rm", "a")
    assert busybox.ok("container", "list", "--all") == []


def test_an_image_config_that_is_not_json_is_named(busybox):
    config = busybox.root / "images" / "bb.json"
    config.write_text("[1,")
    done = busybox.cli("container", "create", "--name", "a", "bb", "true")
    message = f"{config} is not valid JSON (Expecting value: line 1 column 4 (char 3))"
    assert (done.returncode, done.stderr) == (1, f"baleine: error: {message}: restore it, or create the image again\n")
    assert busybox.ok("container", "list", "--all") == []


def test_a_table_row_out_of_shape_is_named_and_nothing_is_written(busybox):
    busybox.ok("container", "create", "--name", "a", "bb", "true")
    table = busybox.root / "containers.csv"
    table.write_text(table.read_text() + "half a row;\n")
    before = table.read_bytes()
    for args in (("container", "list", "--all"), ("container", "create", "--name", "b", "bb", "true"), ("check",)):
        reply = busybox.call(*args)
        assert (reply["ok"], reply["error"]["code"], reply["exit"]) == (False, "damaged", 1), reply
        assert reply["error"]["message"] == (
            f"{table} line 3: 2 cells where the header has 18: fix that line, or remove it")  # fmt: skip
    assert table.read_bytes() == before
    table.write_text(before.decode().replace("half a row;\n", ""))
    assert [item["name"] for item in busybox.ok("container", "list", "--all")] == ["a"]
