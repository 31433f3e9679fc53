"""Mutation tests (SPEC section 3; issue 4): damaged copies of the shipped files give fields or a
clear InvalidDicomError, never another exception, a crash or a hang, and never invented fields.

Deterministic: every random choice comes from a seeded generator. For each mutant:
- the outcome is a dict or an InvalidDicomError, within a generous time bound;
- the native and pydicom engines agree exactly (same fields, or the same kind of rejection);
- when deid_fast accepts it and plain pydicom reads it without error, their fields are equal.
  deid_fast rejecting what pydicom reads is allowed only for the kinds in JUSTIFIED_REJECTIONS.
Cutting a file inside any value of its header, nested ones included, must be rejected.
"""
from __future__ import annotations

import os
import random
import struct
import sys
import time
import warnings

import pydicom
import pytest

import deid_fast
from deid_fast._scan import scan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import assert_same  # noqa: E402
from corpus import shipped_files  # noqa: E402
from reference import reference_fields  # noqa: E402

SHIPPED = shipped_files()
BY_NAME = {os.path.basename(p): p for p in SHIPPED}
SMALL = ["CT_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "image_dfl.dcm",
         "ExplVR_BigEndNoMeta.dcm", "image1.dcm", "nested_priv_SQ.dcm", "SC_rgb_rle.dcm"]
TIME_BOUND = 10.0   # seconds per file: catches a hang, measures nothing

#: Why deid_fast may reject a mutant that plain pydicom (force=True) reads without error.
JUSTIFIED_REJECTIONS = {
    "truncated": "pydicom silently reads a header whose lengths run past the end of the file",
    "not-dicom": "without DICM, deid_fast requires a plausible first element and ascending tags; "
                 "pydicom turns any bytes into elements",
    "undecodable": "a structure pydicom skips over silently (an element where an item belongs, "
                   "an item or element running past its container), or a value it raises on "
                   "only when accessed",
    "too-deep": "nesting beyond max_depth",
    "too-large": "beyond max_header_bytes or max_elements",
    "no-elements": "nothing but file meta and group lengths: pydicom returns an empty data set",
    "empty": "pydicom returns an empty data set for an empty file",
}


def outcome(path, engine="native"):
    start = time.perf_counter()
    try:
        result = deid_fast.get_fields(path, engine=engine)
    except deid_fast.InvalidDicomError as exc:
        result = ("rejected", exc.kind)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND, f"{path}: {elapsed:.1f} s"
    return result


def plain_pydicom(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return reference_fields(path)
        except Exception:       # pydicom raises: nothing to compare with
            return None


def check_mutant(path, data, label):
    with open(path, "wb") as handle:
        handle.write(data)
    native = outcome(path)
    assert_same(native, outcome(path, "pydicom"), f"{label}: native vs pydicom engine")
    expected = plain_pydicom(path)
    if isinstance(native, dict):
        if expected is not None:
            assert_same(native, expected, f"{label}: accepted, vs plain pydicom")
    elif expected is not None:
        assert native[1] in JUSTIFIED_REJECTIONS, f"{label}: rejected as {native[1]}"
    return native


def header_length(path):
    header = scan(path)
    return header.dataset_offset + (0 if header.deflated else len(header.dataset))


def cut_points(path, end):
    """Every offset before `end`, except deep inside a long value: there only the first and
    last 4 bytes and the middle (any other cut inside a value is the same case for a reader, a
    value that runs past the end; `test_a_cut_inside_a_header_value_is_rejected` cuts every
    value). Every cut in the file meta, an element's tag, VR or length, an item or a delimiter
    is kept."""
    header = scan(path)
    if header.deflated:
        return range(end)        # its offsets are in the inflated stream
    inside = set()
    for kind, _depth, _tag, _vr, offset, length in header.table():
        if kind == "element" and length > 16:
            inside.update(range(offset + 4, offset + length - 3))
            inside.discard(offset + length // 2)
    return [cut for cut in range(end) if cut not in inside]


@pytest.mark.parametrize("name", SMALL)
def test_truncation_at_every_offset_of_a_small_header(tmp_path, name):
    data = open(BY_NAME[name], "rb").read()
    end = min(header_length(BY_NAME[name]) + 16, len(data))
    for cut in cut_points(BY_NAME[name], end):
        check_mutant(str(tmp_path / name), data[:cut], f"{name} cut at {cut}")


@pytest.mark.parametrize("path", SHIPPED, ids=[os.path.basename(p) for p in SHIPPED])
def test_truncation_at_sampled_offsets(tmp_path, path):
    data = open(path, "rb").read()
    rng = random.Random(os.path.basename(path))
    try:
        end = min(header_length(path) + 16, len(data))
    except deid_fast.InvalidDicomError:
        end = len(data)
    for cut in sorted(rng.sample(range(end), min(12, end))):
        check_mutant(str(tmp_path / "cut.dcm"), data[:cut], f"{os.path.basename(path)} cut at {cut}")


@pytest.mark.parametrize("name", SMALL)
def test_a_cut_inside_a_header_value_is_rejected(tmp_path, name):
    """SPEC section 3: never a partial header passed off as complete."""
    header = scan(BY_NAME[name])
    if header.deflated:
        return      # its offsets are in the inflated stream; the sweep above covers it
    data = open(BY_NAME[name], "rb").read()
    values = [(offset, length) for kind, _depth, _tag, _vr, offset, length in header.table()
              if kind == "element" and length >= 2]
    assert values
    path = str(tmp_path / name)
    for offset, length in values:
        with open(path, "wb") as handle:
            handle.write(data[:offset + length // 2])
        with pytest.raises(deid_fast.InvalidDicomError) as info:
            deid_fast.get_fields(path)
        assert info.value.kind == "truncated", info.value


@pytest.mark.parametrize("name", SMALL)
def test_byte_flips(tmp_path, name):
    data = open(BY_NAME[name], "rb").read()
    end = min(header_length(BY_NAME[name]) + 16, len(data))
    rng = random.Random(name)
    for round_ in range(150):
        mutant = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutant[rng.randrange(end)] = rng.randrange(256)
        check_mutant(str(tmp_path / name), bytes(mutant), f"{name} flips #{round_}")


@pytest.mark.parametrize("name", SMALL)
def test_huge_lengths(tmp_path, name):
    """2- and 4-byte length fields set to huge values: rejected or read, never allocated."""
    data = open(BY_NAME[name], "rb").read()
    end = min(header_length(BY_NAME[name]), len(data))
    rng = random.Random(name + "lengths")
    for round_ in range(80):
        mutant = bytearray(data)
        at = rng.randrange(max(1, end - 4))
        if rng.random() < 0.5:
            mutant[at:at + 4] = struct.pack("<I", rng.choice([0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF,
                                                              0x80000000, 0x10000000]))
        else:
            mutant[at:at + 2] = struct.pack("<H", rng.choice([0xFFFF, 0xFFFE, 0x8000]))
        check_mutant(str(tmp_path / name), bytes(mutant), f"{name} length #{round_} at {at}")


def test_splices_of_two_files(tmp_path):
    rng = random.Random("splices")
    for round_ in range(120):
        first, second = (open(BY_NAME[rng.choice(SMALL)], "rb").read() for _ in range(2))
        cut_first = rng.randrange(min(len(first), 4096))
        cut_second = rng.randrange(min(len(second), 4096))
        check_mutant(str(tmp_path / "splice.dcm"), first[:cut_first] + second[cut_second:],
                     f"splice #{round_}")


def test_undefined_lengths_without_delimiters(tmp_path):
    """Every delimiter removed from a file with undefined-length sequences: a clear rejection."""
    name = "nested_priv_SQ.dcm"
    data = open(BY_NAME[name], "rb").read()
    for delimiter in (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00", b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"):
        if delimiter in data:
            result = check_mutant(str(tmp_path / name), data.replace(delimiter, b""),
                                  f"{name} without {delimiter.hex()}")
            assert result[0] == "rejected", result


def test_rejections_name_the_file_and_the_offset(tmp_path):
    data = open(BY_NAME["CT_small.dcm"], "rb").read()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:1000])
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(str(path))
    assert str(path) in str(info.value)
    assert isinstance(info.value.offset, int) and 0 < info.value.offset < 1000


FUZZ_REGRESSIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fuzz", "regressions")
FUZZ_FILES = sorted(name for name in os.listdir(FUZZ_REGRESSIONS) if name.endswith(".dcm"))


@pytest.mark.parametrize("name", FUZZ_FILES)
def test_fuzzer_findings_stay_fixed(tmp_path, name):
    """Inputs on which the fuzzer found the engines disagreeing (fuzz/README.md): text with
    escape sequences, UI values with other whitespace, text before the character set, a broken
    first file meta element or group length, an item delimiter whose length field starts with
    a long VR's letters."""
    data = open(os.path.join(FUZZ_REGRESSIONS, name), "rb").read()
    check_mutant(str(tmp_path / name), data, name)
