"""jsonlite writes and reads exactly what json does, without loading json."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.node import jsonlite

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [
    None, True, False, 0, -7, 10**30, 0.1, -2.5e-308, 1e300, "", "plain", 'quote " and \\ and /',
    "tab\tnew\nline\r\x00\x1f\x7f", "héllo wörld", "emoji 🐳 and 中文", "\ud800 lone surrogate",
    [], {}, [[]], [{}], {"": ""}, [1, "two", 3.0, None, [True, {"x": []}]],
    {"b": 1, "a": [1, 2, {"c": None}], "é": {"nested": {"deep": [[], {}]}}},
    (1, 2), {1: "int key", 2.5: "float key", -3: "negative"},
]  # fmt: skip
LAYOUTS = [
    {}, {"indent": 2}, {"indent": 0}, {"indent": "\t"}, {"sort_keys": True}, {"indent": 2, "sort_keys": True},
    {"separators": (",", ":")}, {"sort_keys": True, "separators": (",", ":")},
]  # fmt: skip


def random_value(rng, depth=0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**20), 10**20)
    if kind == 2:
        return rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-200, 1e200])
    if kind in (3, 4):
        return random_text(rng)
    if kind == 5:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_text(rng):
    return "".join(
        chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x30000)])) for _ in range(rng.randrange(8))
    )


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_dumps_writes_what_json_writes(layout):
    for value in SAMPLES:
        assert jsonlite.dumps(value, **layout) == json.dumps(value, **layout)


def test_literal_keys_are_written_as_json_writes_them():
    value = {True: "t", False: "f", None: "n", float("nan"): "nan"}
    assert jsonlite.dumps(value) == json.dumps(value) == '{"true": "t", "false": "f", "null": "n", "NaN": "nan"}'


def test_random_documents_round_trip_as_json_does():
    rng = random.Random(20261205)
    for _ in range(500):
        value = random_value(rng)
        for layout in ({}, {"indent": 2, "sort_keys": True}):
            text = jsonlite.dumps(value, **layout)
            assert text == json.dumps(value, **layout)
            assert jsonlite.loads(text) == json.loads(text)


def test_special_floats_are_written_and_read_as_json_does():
    text = jsonlite.dumps([float("inf"), float("-inf"), float("nan")])
    assert text == "[Infinity, -Infinity, NaN]"
    inf, minus_inf, nan = jsonlite.loads(text)
    assert (inf, minus_inf, nan != nan) == (float("inf"), float("-inf"), True)


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, "x", null, true]}', '  \n\t"padded" \r\n', "[]", "-0", "1E+2", '"\\u00e9\\ud83d\\udc33"',
    b'{"bytes": "\xc3\xa9"}', b'\xef\xbb\xbf{"bom": 1}',
])  # fmt: skip
def test_loads_reads_what_json_reads(text):
    expected = json.loads(text.decode("utf-8-sig") if isinstance(text, bytes) else text)
    assert jsonlite.loads(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "Expecting value: line 1 column 1 (char 0)"),
    ("   ", "Expecting value: line 1 column 4 (char 3)"),
    ('{"a": 1} x', "Extra data: line 1 column 10 (char 9)"),
    ("[1, 2", "Expecting ',' delimiter: line 1 column 6 (char 5)"),
    ('{"a" 1}', "Expecting ':' delimiter: line 1 column 6 (char 5)"),
    ('"bad \\x escape"', "Invalid \\escape: line 1 column 6 (char 5)"),
    ('"raw\ncontrol"', "Invalid control character at: line 1 column 5 (char 4)"),
    ("[1,]", "Illegal trailing comma before end of array: line 1 column 3 (char 2)"),
])  # fmt: skip
def test_malformed_text_raises_jsons_own_error(text, message):
    with pytest.raises(json.JSONDecodeError) as caught:
        jsonlite.loads(text)
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        expected = str(error)
    # Pythons before 3.13 word a trailing comma as a missing value; the position is the same.
    assert str(caught.value) in (message, expected)


@pytest.mark.parametrize(("value", "message"), [
    ({"a": {1, 2}}, "Object of type set is not JSON serializable"),
    ([b"bytes"], "Object of type bytes is not JSON serializable"),
    ({(1, 2): "tuple key"}, "keys must be str, int, float, bool or None, not tuple"),
])  # fmt: skip
def test_unsupported_values_raise_type_error(value, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(")):
        jsonlite.dumps(value)


MALFORMED = ["", "{broken", '{"a": [1, 2', '{"a" 1}', '"bad \\x escape"', "[1,]", '{"a": 1} x', "nul"]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_text_in_a_process_without_json_raises_jsons_error(text):
    """Pythons 3.10 and 3.11 raised SystemError for an error inside a value until json was imported."""
    probe = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from fleet.node import jsonlite\n"
        "assert 'json' not in sys.modules\n"
        "try:\n    jsonlite.loads(sys.argv[1])\n"
        "except Exception as error:\n    print(type(error).__module__, type(error).__name__, error)"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, text], capture_output=True, text=True, check=True)
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        expected = f"json.decoder JSONDecodeError {error}"
    assert done.stdout.strip() == expected


def test_neither_json_nor_re_is_loaded():
    probe = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from fleet.node import jsonlite; "
        "jsonlite.loads(jsonlite.dumps({'a': [1, 2.5, None, 'x']}, indent=2)); "
        "print(sorted({'json', 're', 'enum'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_without_the_c_accelerator_the_json_module_does_the_work(monkeypatch):
    monkeypatch.setattr(jsonlite, "_json", None)
    value = {"b": [1, 2.5, None, "é"], "a": {}}
    assert jsonlite.dumps(value, indent=2, sort_keys=True) == json.dumps(value, indent=2, sort_keys=True)
    assert jsonlite.loads(b'{"x": [1, "\xc3\xa9"]}') == {"x": [1, "é"]}
    with pytest.raises(json.JSONDecodeError):
        jsonlite.loads("[1,")
