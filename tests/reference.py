"""Reference engine: plain pydicom plus a Python loop applying SPEC rules R2-R8.

This module is the yardstick the conformance tests hold ``deid_fast`` against, and the
"plain pydicom" alternative the benchmarks time. It is written independently of the
``deid_fast`` sources, straight from ``docs/spec.md`` and the documented decisions:

- R2: only the header is read (``dcmread(..., stop_before_pixels=True)``; a ``Dataset``
  given as input is cut at its first top-level pixel data element, (7FE0,0010),
  (7FE0,0008) or (7FE0,0009)). The file meta group is reported only with
  ``include_file_meta=True``, its elements first (``FileMetaInformationGroupLength``
  included).
- R4: an element is reported under its keyword in pydicom's dictionary, unless it is in
  the skip list (matched against its keyword, or a private element's printed tag, at any
  depth) or its value is empty. Private elements (odd groups, private creators
  included) are reported only with ``include_private=True``, keyed ``"(gggg,eeee)"``.
  Public tags without a keyword and group length elements (gggg,0000) never are.
- R5: empty is ``None``, ``""``, ``b""``, a multi-value or a sequence without items.
- R6: values are builtins, converted from what pydicom 3 (default settings) gives.
- R7: sequences are expanded to ``S_K`` / ``S_0_K`` keys (``delimiter`` replaces ``_``),
  or kept as a list of per-item dicts with ``expand_sequences=False``.
- R8: where several elements give one key, the first one wins.
- R3 (``reference_identifiers``): the ``{entity: {item: fields}}`` grouping.

pydicom's warnings about odd values are silenced: they are not part of the result.
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Iterable

import pydicom
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

__all__ = ["reference_fields", "reference_identifiers", "to_builtin", "read_header"]

#: Top-level tags where the header ends (R2).
PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

_EXACT = (str, bytes, int, float)


def to_builtin(value: Any) -> Any:
    """R6: the builtin equal to a non-sequence pydicom value.

    PersonName and UID (and any other ``str`` subclass) become ``str``; DSfloat and
    ISfloat become ``float``; IS and BaseTag (AT) become ``int``; a multi-value becomes
    a ``list`` of converted items; ``bytes``, ``str``, ``int``, ``float`` and ``None``
    are kept. Anything else is a surprise for this reference and raises ``TypeError``.
    """
    kind = type(value)
    if kind in _EXACT or value is None:
        return value
    if isinstance(value, (MultiValue, list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, PersonName) or isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        raise TypeError(f"unexpected bool value {value!r}")
    if isinstance(value, int):  # IS, BaseTag
        return int(value)
    if isinstance(value, float):  # DSfloat, ISfloat
        return float(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"no R6 rule for a value of type {kind.__name__}: {value!r}")


def is_empty(value: Any) -> bool:
    """R5: ``None``, ``""``, ``b""``, or a multi-value/sequence with no items."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, list, tuple, Sequence, MultiValue)):
        return len(value) == 0
    return False


def read_header(source: Any) -> Dataset:
    """R2: the header of a path as pydicom reads it (pixel data not read)."""
    if isinstance(source, Dataset):
        return source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(os.fspath(source), force=True, stop_before_pixels=True)


class _Options:
    __slots__ = ("expand", "skip", "private", "delim")

    def __init__(self, expand_sequences, skip_fields, include_private, delimiter):
        self.expand = bool(expand_sequences)
        self.skip = frozenset(skip_fields or ())
        self.private = bool(include_private)
        self.delim = delimiter


def _element_name(tag: int, opts: _Options) -> str | None:
    """R4: the key of an element, or None if it is never reported."""
    if tag & 0xFFFF == 0 and tag != 0x00020000:
        # Group lengths of the data set, CommandGroupLength (0000,0000) included, are
        # never reported; the file meta's FileMetaInformationGroupLength is (README).
        return None
    if (tag >> 16) & 1:  # private (odd group), private creators included
        if not opts.private:
            return None
        return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return _keyword(int(tag))


@functools.lru_cache(maxsize=None)
def _keyword(tag: int) -> str | None:
    """The keyword of a public tag (repeating groups included), or None if it has none."""
    return keyword_for_tag(tag) or None


def _flatten(ds: Dataset, opts: _Options, out: dict, prefix: str, top: bool) -> dict:
    """Add the fields of one data set (or sequence item) to ``out`` under ``prefix``."""
    delim = opts.delim
    for elem in ds:
        tag = elem.tag
        if top and tag in PIXEL_DATA_TAGS:
            break  # R2: the header ends at the first top-level pixel data element
        name = _element_name(tag, opts)
        if name is None or name in opts.skip:
            continue
        value = elem.value
        if elem.VR == "SQ":
            if value is None or len(value) == 0:  # R5: a sequence without items
                continue
            if opts.expand:  # R7
                if len(value) == 1:
                    _flatten(value[0], opts, out, prefix + name + delim, False)
                else:
                    for index, item in enumerate(value):
                        item_prefix = f"{prefix}{name}{delim}{index}{delim}"
                        _flatten(item, opts, out, item_prefix, False)
                continue
            value = [_flatten(item, opts, {}, "", False) for item in value]
        else:
            value = to_builtin(value)
            if is_empty(value):  # R5
                continue
        key = prefix + name
        if key not in out:  # R8: the first element giving a key wins
            out[key] = value
    return out


def _fields_of(ds: Dataset, opts: _Options, include_file_meta: bool) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict = {}
        file_meta = getattr(ds, "file_meta", None)
        if include_file_meta and file_meta is not None:
            _flatten(file_meta, opts, out, "", False)
        return _flatten(ds, opts, out, "", True)


def reference_fields(
    source: Any,
    expand_sequences: bool = True,
    skip_fields: Iterable[str] = ("PixelData",),
    include_private: bool = False,
    include_file_meta: bool = False,
    delimiter: str = "_",
) -> dict:
    """The ``{field: value}`` dict of one file path or pydicom ``Dataset`` (R2, R4-R8).

    Unlike ``deid_fast.get_fields``, ``skip_fields`` is the whole skip list: pass
    ``"PixelData"`` along with the extra names to mirror the packaged config.
    """
    opts = _Options(expand_sequences, skip_fields, include_private, delimiter)
    return _fields_of(read_header(source), opts, include_file_meta)


def _id_value(ds: Dataset, tag: int) -> str | None:
    """R3: the entity or item of a data set: top level first, then the file meta."""
    for where in (ds, getattr(ds, "file_meta", None)):
        if where is None or tag not in where:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            elem = where[tag]
        if elem.VR == "SQ":
            continue
        value = to_builtin(elem.value)
        if is_empty(value):
            continue
        if isinstance(value, list):
            return "\\".join(str(v) for v in value)
        return str(value)
    return None


def reference_identifiers(
    paths: Iterable[Any],
    entity_id: str = "PatientID",
    item_id: str = "SOPInstanceUID",
    **field_opts: Any,
) -> dict:
    """R3: ``{entity: {item: fields}}`` over ``paths`` (files or Datasets), in input order.

    A file whose entity or item is absent or empty is left out. A later file with the
    same (entity, item) wins: the earlier one's item is dropped and the later one's takes
    its own place in input order, so items always appear in the input order of the files
    they come from ("Items appear in input order"). ``field_opts`` are those of
    ``reference_fields``.
    """
    entity_tag = tag_for_keyword(entity_id)
    item_tag = tag_for_keyword(item_id)
    for keyword, tag in ((entity_id, entity_tag), (item_id, item_tag)):
        if tag is None:
            raise ValueError(f"{keyword!r} is not a keyword of pydicom's dictionary")
    include_file_meta = field_opts.pop("include_file_meta", False)
    opts = _Options(
        field_opts.pop("expand_sequences", True),
        field_opts.pop("skip_fields", ("PixelData",)),
        field_opts.pop("include_private", False),
        field_opts.pop("delimiter", "_"),
    )
    if field_opts:
        raise TypeError(f"unknown options: {sorted(field_opts)}")
    result: dict = {}
    for source in paths:
        ds = read_header(source)
        entity = _id_value(ds, entity_tag)
        item = _id_value(ds, item_tag)
        if entity is None or item is None:
            continue
        items = result.setdefault(entity, {})
        items.pop(item, None)  # a later duplicate wins and moves to its own position
        items[item] = _fields_of(ds, opts, include_file_meta)
    return result
