"""The table layout of the bulk outputs (the archive-scale issue): a column per keyword typed by
pydicom's dictionary, nothing lost to values_as_read and private; the JSON encoder every output
shares; the resume set that spills to disk."""
from __future__ import annotations

import json
import math
import os
import sys

import pyarrow as pa
import pytest
from pydicom.datadict import DicomDictionary, RepeatersDictionary

sys.path.insert(0, os.path.dirname(__file__))
from corpus import shipped_files  # noqa: E402
from generate import generate_all  # noqa: E402

import deid_fast  # noqa: E402
from deid_fast import jsontext, table  # noqa: E402
from deid_fast.reader import Record  # noqa: E402
from deid_fast.resume import DonePaths  # noqa: E402

# The README's rule, written here independently of deid_fast.table.
TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR",
            "UT"}
INT_VRS = {"US", "SS", "UL", "SL", "SV", "IS", "AT", "US or SS", "US or SS or OW", "US or OW"}
FLOAT_VRS = {"FL", "FD", "DS"}
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW"}


def dictionary():
    """keyword -> (VR, VM), repeating groups included."""
    entries = {entry[4]: (entry[0], entry[1]) for entry in DicomDictionary.values() if entry[4]}
    for entry in RepeatersDictionary.values():
        entries.setdefault(entry[4], (entry[0], entry[1]))
    return entries


DICTIONARY = dictionary()


def expected_type(vr, vm):
    if vr in TEXT_VRS or vr == "SQ":
        scalar = pa.string()
    elif vr == "UV":
        scalar = pa.uint64()
    elif vr in INT_VRS:
        scalar = pa.int64()
    elif vr in FLOAT_VRS:
        scalar = pa.float64()
    elif vr in BINARY_VRS:
        scalar = pa.binary()
    else:
        return None
    return pa.list_(scalar) if vm != "1" and vr != "SQ" else scalar


def fits(value, vr, vm, finite=False):
    """Whether a field value goes to its keyword's column (else to values_as_read)."""
    if vr == "SQ":
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    values = value if isinstance(value, list) and vm != "1" else [value]
    for item in values:
        if vr in TEXT_VRS and type(item) is str:
            continue
        if vr == "UV" and type(item) is int and 0 <= item < 2 ** 64:
            continue
        if vr in INT_VRS and type(item) is int and -2 ** 63 <= item < 2 ** 63:
            continue
        if vr in FLOAT_VRS and type(item) is float and (not finite or math.isfinite(item)):
            continue
        if vr in BINARY_VRS and type(item) is bytes:
            continue
        return False
    return True


def cell(value, vr, vm):
    """The typed cell of a value that fits."""
    if vr == "SQ":
        return value
    return value if vm == "1" or isinstance(value, list) else [value]


def b64(value):
    import base64
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [b64(item) for item in value]
    if isinstance(value, dict):
        return {key: b64(item) for key, item in value.items()}
    return value


def same(got, want):
    """Type-strict equality, NaN equal to NaN."""
    if isinstance(want, float):
        return type(got) is float and (got == want or (math.isnan(got) and math.isnan(want)))
    if isinstance(want, list):
        return type(got) is list and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return type(got) is dict and got.keys() == want.keys() and all(
            same(got[key], want[key]) for key in want)
    return type(got) is type(want) and got == want


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shipped_files() + sorted(generate_all(tmp_path_factory.mktemp("gen")).values())


def test_each_keyword_column_has_its_dictionary_type():
    """A column's type follows from the keyword's VR and VM alone (so parts always agree)."""
    assert len(table.COLUMNS) > 4000
    for keyword, (vr, vm) in DICTIONARY.items():
        want = expected_type(vr, vm)
        if want is None:
            assert keyword not in table.COLUMNS, keyword
        else:
            assert table.arrow_type(table.COLUMNS[keyword]) == want, (keyword, vr, vm)
    schema = table.schema(["PatientName", "Rows", "ImageType", "ReferencedImageSequence"])
    assert schema.names == ["path", "entity", "item", "skipped", "reason", "ImageType",
                            "ReferencedImageSequence", "PatientName", "Rows", "values_as_read",
                            "private"]     # by tag, maps last
    assert schema.field("values_as_read").type == pa.map_(pa.string(), pa.string())


@pytest.mark.parametrize("finite", [False, True])
def test_a_row_keeps_every_value_of_every_test_file(files, finite):
    """Every field of every shipped and generated file is in its typed column when it fits
    the dictionary's type, else in values_as_read or private as JSON text that reads back to
    the value (bytes as base64): nothing is lost, nothing is added."""
    misfits = 0
    for path in files:
        try:
            fields = deid_fast.get_fields(path, expand_sequences=False, include_private=True)
        except deid_fast.InvalidDicomError:
            continue
        row = table.split(fields, finite=finite)
        assert len(row.typed) + len(row.as_read) + len(row.private) == len(fields), path
        for key, value in fields.items():
            if key.startswith("("):
                assert same(jsontext.loads(row.private[key]), b64(value)), (path, key)
                continue
            vr, vm = DICTIONARY[key]
            if fits(value, vr, vm, finite):
                got = row.typed[key]
                if vr == "SQ":
                    assert type(got) is str and same(jsontext.loads(got), b64(value)), (path, key)
                else:
                    assert same(got, cell(value, vr, vm)), (path, key, got, value)
            else:
                misfits += 1
                assert key not in row.typed
                assert same(jsontext.loads(row.as_read[key]), b64(value)), (path, key)
    assert misfits >= 5     # the invalid DS and IS of the generated files, at least


def test_flat_line_is_the_row_with_the_record_columns():
    record = Record("a/b.dcm", "e", "i", {"PatientName": "A^B", "Rows": 2, "PixelSpacing": 0.5,
                                          "SliceThickness": "1,5", "EchoTime": float("nan"),
                                          "(0019,1001)": b"\x00"})
    line = table.flat_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "path": "a/b.dcm", "entity": "e", "item": "i", "skipped": None, "reason": None,
        "PatientName": "A^B", "Rows": 2, "PixelSpacing": [0.5],
        "values_as_read": {"SliceThickness": '"1,5"', "EchoTime": "NaN"},
        "private": {"(0019,1001)": '"AA=="'}}


def test_json_text_keeps_what_orjson_cannot_write():
    """NaN and infinities as Python's json writes them (orjson would write null), ints past
    64 bits, lone surrogates (os.fsdecode of a name that is not UTF-8), bytes as base64; line
    separators escaped so that splitlines() cannot split a record."""
    value = {"nan": float("nan"), "inf": [float("inf"), -float("inf")], "big": 2 ** 70,
             "name": os.fsdecode(b"b_\xff.dcm"), "bytes": b"\x00\xff", "none": None,
             "text": "a\u2028b\u2029c\u0085d\ne", "float": 0.1, "neg": -0.0}
    text = jsontext.dumps(value)
    assert isinstance(text, bytes) and text.decode("utf-8")
    assert len(text.decode("utf-8").splitlines()) == 1
    back = json.loads(text)
    assert math.isnan(back.pop("nan")) and back.pop("inf") == [math.inf, -math.inf]
    assert back == {"big": 2 ** 70, "name": "b_\udcff.dcm", "bytes": "AP8=", "none": None,
                    "text": "a\u2028b\u2029c\u0085d\ne", "float": 0.1, "neg": -0.0}
    assert os.fsencode(jsontext.loads(text)["name"]) == b"b_\xff.dcm"
    plain = {"a": [1, 2.5, "x"], "b": None}
    assert jsontext.dumps(plain) == json.dumps(plain, separators=(",", ":")).encode()


def test_done_paths_spill_to_disk_past_the_bound():
    done = DonePaths(in_memory=100)
    paths = [f"/data/{number:05d}.dcm" for number in range(1000)] + [os.fsdecode(b"/x/\xff")]
    done.add_many(paths)
    done.add_many(paths[:10])                  # written twice: taken twice
    assert done.database is not None and not done.paths
    assert len(done) == len(paths) + 10
    assert all(path in done for path in paths)
    assert "/data/01000.dcm" not in done and "/data/00001.dcm " not in done
    assert done.take(paths[0]) and done.take(paths[0]) and not done.take(paths[0])
    assert done.take(paths[-1]) and not done.take(paths[-1]) and paths[-1] not in done
    done.close()
    small = DonePaths()
    small.add("a")
    assert "a" in small and "b" not in small and small.database is None
    assert small.take("a") and not small.take("a") and "a" not in small
