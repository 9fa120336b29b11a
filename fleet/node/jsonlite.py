"""JSON for the helper: the text `json` writes and reads, without importing `json`.

Why: `json` compiles regular expressions at import, so it loads `re`, and
`re` loads `enum` and `functools`: about 7 ms of every helper call, more
than a `container list` spends on its own work. Reading goes through the
same C scanner `json` uses (`_json.make_scanner`); writing is a small
encoder here whose strings are escaped by `json`'s own C function. The
output is byte for byte what `json.dumps` gives with the same arguments
(tests/node/test_jsonlite.py compares them), so files written by older
helpers and by this one are the same text.

Errors are `json`'s own: malformed text raises json.JSONDecodeError (a
ValueError), an unsupported value TypeError. `json` is imported only then.
"""

try:
    import _json
except ImportError:  # a Python without the C accelerator: the standard module does it all
    _json = None

_INFINITY = float("inf")
_CONSTANTS = {"NaN": float("nan"), "Infinity": _INFINITY, "-Infinity": -_INFINITY}
_WHITESPACE = " \t\n\r"


def dumps(value, indent=None, sort_keys=False, separators=None):
    """value as JSON text, as json.dumps(value, indent=..., sort_keys=..., separators=...) writes it."""
    if _json is None:
        import json

        return json.dumps(value, indent=indent, sort_keys=sort_keys, separators=separators)
    if separators is None:
        separators = (", ", ": ") if indent is None else (",", ": ")
    if isinstance(indent, int):
        indent = " " * indent
    out = []
    _Encoder(out, indent, separators, sort_keys).value(value, 0)
    return "".join(out)


def loads(text):
    """The value a JSON text holds (str, or UTF-8 bytes)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8-sig")
    if _json is None:
        import json

        return json.loads(text)
    start = _skip_whitespace(text, 0)
    try:
        value, end = _scanner()(text, start)
    except StopIteration as stop:
        raise _error("Expecting value", text, stop.value) from None
    except SystemError:
        # Python 3.10 and 3.11: the scanner raises an error inside a value (`{broken`) as
        # json.decoder's, which it looks up in sys.modules only; before json is imported it
        # raises SystemError instead. json itself then gives the error, exactly.
        import json

        return json.loads(text)
    end = _skip_whitespace(text, end)
    if end != len(text):
        raise _error("Extra data", text, end)
    return value


def load(handle):
    """The value a JSON file holds."""
    return loads(handle.read())


class _Context:
    """What _json.make_scanner reads off json.JSONDecoder: the defaults of json.loads."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = None  # the scanner, made on first use


def _scanner():
    global _scan
    if _scan is None:
        _scan = _json.make_scanner(_Context())
    return _scan


def _skip_whitespace(text, at):
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _error(message, text, at):
    from json import JSONDecodeError

    return JSONDecodeError(message, text, at)


class _Encoder:
    def __init__(self, out, indent, separators, sort_keys):
        self.out = out
        self.indent = indent
        self.item_separator, self.key_separator = separators
        self.sort_keys = sort_keys

    def value(self, value, level):
        if isinstance(value, str):
            self.out.append(_json.encode_basestring_ascii(value))
        elif value is None or value is True or value is False:
            self.out.append(_literal(value))
        elif isinstance(value, int):
            self.out.append(int.__repr__(value))
        elif isinstance(value, float):
            self.out.append(_float(value))
        elif isinstance(value, (list, tuple)):
            self.array(value, level)
        elif isinstance(value, dict):
            self.object(value, level)
        else:
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    def array(self, items, level):
        if not items:
            self.out.append("[]")
            return
        self.out.append("[")
        for index, item in enumerate(items):
            self.separate(index, level + 1)
            self.value(item, level + 1)
        self.close("]", level)

    def object(self, mapping, level):
        if not mapping:
            self.out.append("{}")
            return
        self.out.append("{")
        pairs = sorted(mapping.items()) if self.sort_keys else mapping.items()
        for index, (key, item) in enumerate(pairs):
            self.separate(index, level + 1)
            self.out.append(_json.encode_basestring_ascii(_key(key)))
            self.out.append(self.key_separator)
            self.value(item, level + 1)
        self.close("}", level)

    def separate(self, index, level):
        if index:
            self.out.append(self.item_separator)
        if self.indent is not None:
            self.out.append("\n" + self.indent * level)

    def close(self, bracket, level):
        if self.indent is not None:
            self.out.append("\n" + self.indent * level)
        self.out.append(bracket)


def _literal(value):
    return "null" if value is None else "true" if value else "false"


def _float(number):
    if number != number:
        return "NaN"
    if number in (_INFINITY, -_INFINITY):
        return "Infinity" if number > 0 else "-Infinity"
    return float.__repr__(number)


def _key(key):
    """A key as json writes it: str as is, numbers, booleans and None as their JSON text."""
    if isinstance(key, str):
        return key
    if key is None or key is True or key is False:
        return _literal(key)
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
