"""JSON text of field values, for every output that writes JSON (JSONL, the table's sequence and
map cells, CSV cells): one encoder, so the outputs cannot disagree.

orjson does the work (2-15x the standard library's `json` on the test files'
fields; benchmarks/README.md); what it cannot write as the standard library does goes through
`json` instead, so the meaning never changes with the encoder:

- bytes are base64 text (neither encoder has a JSON form for them);
- a float that is not finite is `NaN`, `Infinity` or `-Infinity`, as Python's `json` writes it
  (orjson would write `null`, which is another value);
- a lone surrogate (the `os.fsdecode` form of a file name that is not UTF-8) and an int past
  64 bits are escaped or written by `json` (orjson refuses them);
- U+2028, U+2029 and U+0085 are escaped (`\\u2028`), so that `str.splitlines()` cannot split a
  JSON line in the middle of a string.
"""
import binascii
import json
import math

import orjson

#: Line separators that `str.splitlines()` honours inside a JSON string, as UTF-8, and their
#: escapes. JSON's own syntax is ASCII, so these bytes can only be inside strings.
_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"),
               (b"\xc2\x85", b"\\u0085"))


def _has_non_finite(value):
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is list:
        return any(_has_non_finite(item) for item in value)
    if kind is dict:
        return any(_has_non_finite(item) for item in value.values())
    return False


def _standard(value):
    """What the standard library writes: ASCII only, so lone surrogates are escaped too."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"),
                      default=base64_text).encode("ascii")


def dumps(value):
    """The JSON text of `value` (builtins: str, int, float, bytes, None, lists and dicts of
    them) as UTF-8 bytes, on one line."""
    try:
        text = orjson.dumps(value, default=base64_text)
    except (orjson.JSONEncodeError, TypeError):
        return _standard(value)
    if b"null" in text and _has_non_finite(value):
        return _standard(value)
    if not text.isascii():
        for separator, escape in _SEPARATORS:
            if separator in text:
                text = text.replace(separator, escape)
    return text


def dumps_text(value):
    """`dumps` as a str."""
    return dumps(value).decode("utf-8")


def loads(text):
    """Values back from `dumps`' text (bytes stay base64 text: JSON cannot tell them apart)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)     # NaN, Infinity and escaped surrogates


def base64_text(value):
    """The base64 text of bytes (how every JSON output writes them); a TypeError for any
    other value (the `default` of `json.dumps`)."""
    if isinstance(value, (bytes, bytearray)):
        return binascii.b2a_base64(value, newline=False).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
