"""Type-strict comparison of results, and the option sets every file is checked under (shared by
the conformance and engine tests)."""
from __future__ import annotations

import math
import reprlib

#: Option sets every file is checked under: name -> keyword arguments of get_fields.
OPTION_SETS = {
    "defaults": {},
    "no_expand": {"expand_sequences": False},
    "private": {"include_private": True},
    "file_meta": {"include_file_meta": True},
    "delimiter": {"delimiter": "__"},
    "skip": {
        "skip_fields": [
            "ReferencedImageSequence",
            "PatientName",
            "OverlayData",
            "CodeValue",
            "(0019,1001)",
            "(0029,0010)",
            "TransferSyntaxUID",
        ],
        "include_private": True,
        "include_file_meta": True,
    },
    "everything": {
        "expand_sequences": False,
        "include_private": True,
        "include_file_meta": True,
        "delimiter": ".",
    },
    "private_delimiter": {"include_private": True, "delimiter": "/"},
}

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = 8


def _short(value) -> str:
    return _REPR.repr(value)


def assert_same(actual, expected, where: str = "result") -> None:
    """``actual`` equals ``expected``, recursively, with the same types and key order.

    Dicts must have the same keys in the same order; lists the same length; every leaf
    must have exactly the same type (``type(x) is type(y)``) and be equal, where float
    NaN equals NaN and -0.0 differs from 0.0.
    """
    if type(actual) is not type(expected):
        raise AssertionError(
            f"{where}: type {type(actual).__name__} != expected {type(expected).__name__} "
            f"({_short(actual)} vs expected {_short(expected)})"
        )
    if isinstance(expected, dict):
        got, want = list(actual), list(expected)
        if got != want:
            missing = [k for k in want if k not in actual]
            extra = [k for k in got if k not in expected]
            detail = []
            if missing:
                detail.append(f"missing keys {_short(missing)}")
            if extra:
                detail.append(f"unexpected keys {_short(extra)}")
            if not missing and not extra:
                i = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
                detail.append(f"key order differs at position {i}: {got[i]!r} vs expected {want[i]!r}")
            raise AssertionError(f"{where}: " + "; ".join(detail))
        for key in want:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        if len(actual) != len(expected):
            raise AssertionError(
                f"{where}: list of {len(actual)} items != expected {len(expected)} "
                f"({_short(actual)} vs expected {_short(expected)})"
            )
        for i, (a, b) in enumerate(zip(actual, expected)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        same = (math.isnan(actual) and math.isnan(expected)) or (
            actual == expected and math.copysign(1.0, actual) == math.copysign(1.0, expected)
        )
        if not same:
            raise AssertionError(f"{where}: {actual!r} != expected {expected!r}")
    elif actual != expected:
        raise AssertionError(f"{where}: {_short(actual)} != expected {_short(expected)}")
