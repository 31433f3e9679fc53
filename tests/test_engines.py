"""The native engine equals the pydicom engine (SPEC R6: pydicom defines the values).

Every shipped and generated file is read by both engines under every option set; results must be
identical, type for type, or both engines must reject the file with the same kind. The native
engine hands what it does not handle to pydicom and counts it; the common files must not need
that. `fields=` (selective extraction) reports only the named top-level elements and stops the
scanner after the last of them.
"""
from __future__ import annotations

import logging
import os
import struct
import sys

import pydicom
import pytest

import deid_fast
from deid_fast import decode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import OPTION_SETS, assert_same  # noqa: E402
from corpus import shipped_files  # noqa: E402
from generate import GENERATORS, generate_all  # noqa: E402

SHIPPED = shipped_files()
COOKIES = sorted(p for p in SHIPPED if os.sep + "dicom-cookies" + os.sep in p)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_all(str(tmp_path_factory.mktemp("engines")))


def outcome(path, engine, **opts):
    """The fields, or the kind of the rejection."""
    try:
        return deid_fast.get_fields(path, engine=engine, **opts)
    except deid_fast.InvalidDicomError as exc:
        return ("rejected", exc.kind)


def check_engines_agree(path, opts):
    native = outcome(path, "native", **opts)
    reference = outcome(path, "pydicom", **opts)
    assert_same(native, reference, os.path.basename(path))


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("path", SHIPPED, ids=[os.path.basename(p) for p in SHIPPED])
def test_r6_native_equals_pydicom_engine_on_shipped_file(path, opts):
    check_engines_agree(path, opts)


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("name", list(GENERATORS), ids=[n + ".dcm" for n in GENERATORS])
def test_r6_native_equals_pydicom_engine_on_generated_file(generated, name, opts):
    check_engines_agree(generated[name], opts)


def test_r3_native_equals_pydicom_engine_for_get_identifiers():
    for ids in ({}, {"entity_id": "StudyInstanceUID", "item_id": "MediaStorageSOPInstanceUID"}):
        assert_same(deid_fast.get_identifiers(SHIPPED, engine="native", **ids),
                    deid_fast.get_identifiers(SHIPPED, engine="pydicom", **ids))


def test_native_path_needs_no_fallback_for_common_files(generated):
    """The cookies and the plain generated encodings are read natively, not handed over."""
    plain = [generated[name] for name in (
        "implicit_little_endian", "explicit_big_endian", "deflated", "charset_latin1",
        "charset_utf8", "nested_sequences", "numeric_values", "large_header", "deep_nesting",
        "no_file_meta")]
    before = sum(decode.fallbacks.values())
    for path in COOKIES + plain:
        deid_fast.get_fields(path)
    assert sum(decode.fallbacks.values()) == before
    # their deliberately odd DS and IS values go to pydicom's converter, one element at a time
    odd = [generated["empty_values"], generated["invalid_ds_is"]]
    counts = decode.fallbacks.copy()
    for path in odd:
        deid_fast.get_fields(path)
    assert set(decode.fallbacks - counts) == {"DS value pydicom must judge (not a plain decimal)",
                                              "IS value pydicom must judge (not a plain integer)"}


def test_native_fallback_is_counted_and_logged(generated, caplog):
    """A data set whose tags are out of order is pydicom's to sort (a named hand-over): handed
    over, counted under its reason, logged."""
    path = generated["out_of_order"]
    before = decode.fallbacks["tags out of order or repeated"]
    with caplog.at_level(logging.DEBUG, logger="deid_fast"):
        fields = deid_fast.get_fields(path)
    assert decode.fallbacks["tags out of order or repeated"] == before + 1
    assert any("hands" in r.getMessage() and path in r.getMessage() for r in caplog.records)
    assert_same(fields, deid_fast.get_fields(path, engine="pydicom"))


def test_other_character_sets_are_read_natively():
    """Code extensions and other repertoires (in an item too): text decoded natively by
    pydicom's rules, no hand-over."""
    files = [p for p in SHIPPED if os.path.basename(p) in ("chrH31.dcm", "chrGreek.dcm",
                                                           "chrRuss.dcm", "chrX1.dcm",
                                                           "chrSQEncoding.dcm")]
    assert len(files) == 5
    before = sum(decode.fallbacks.values())
    for path in files:
        assert_same(deid_fast.get_fields(path), deid_fast.get_fields(path, engine="pydicom"))
    assert sum(decode.fallbacks.values()) == before


def test_engine_must_be_known():
    with pytest.raises(ValueError, match="engine"):
        deid_fast.get_fields(COOKIES[0], engine="rust")
    with pytest.raises(ValueError, match="engine"):
        deid_fast.get_identifiers(COOKIES, engine="")


# --- fields= -----------------------------------------------------------------------------------


def selected(full, names, delimiter="_"):
    """What `fields=names` must give: the full result's keys of those top-level elements."""
    return {key: value for key, value in full.items()
            if key in names or any(key.startswith(name + delimiter) for name in names)}


@pytest.mark.parametrize("engine", ["native", "pydicom"])
@pytest.mark.parametrize("path", SHIPPED[::7], ids=[os.path.basename(p) for p in SHIPPED[::7]])
def test_fields_selects_top_level_elements(path, engine):
    names = ["PatientName", "StudyDate", "ReferencedImageSequence", "Rows", "(0009,0010)"]
    try:
        full = deid_fast.get_fields(path, engine=engine, include_private=True)
    except deid_fast.InvalidDicomError:
        return  # rejected files are covered by the conformance tests
    assert_same(deid_fast.get_fields(path, engine=engine, include_private=True, fields=names),
                selected(full, names))


@pytest.mark.parametrize("engine", ["native", "pydicom"])
def test_fields_in_get_identifiers_adds_entity_and_item(engine):
    ids = deid_fast.get_identifiers(COOKIES, fields=["StudyDate"], engine=engine)
    full = deid_fast.get_identifiers(COOKIES, engine=engine)
    assert list(ids) == list(full)
    for entity, items in full.items():
        assert list(ids[entity]) == list(items)
        for item, fields in items.items():
            assert_same(ids[entity][item],
                        selected(fields, {"StudyDate", "PatientID", "SOPInstanceUID"}))


def test_fields_stops_the_walk_after_the_last_requested_tag(tmp_path):
    """The scanner reads no further than needed: a broken element after the last requested tag
    does not matter with fields=, and does without."""
    good = open(COOKIES[0], "rb").read()
    ds = pydicom.dcmread(COOKIES[0], stop_before_pixels=True)
    end = good.index(b"\x20\x00\x0d\x00")  # (0020,000D) StudyInstanceUID, explicit VR LE
    assert ds.StudyInstanceUID
    broken = good[:end] + b"\x20\x00\x0d\x00UI" + struct.pack("<H", 0xFFF0) + b"1.2"
    path = tmp_path / "broken_after_patient.dcm"
    path.write_bytes(broken)
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(str(path))
    assert info.value.kind == "truncated"
    assert deid_fast.get_fields(str(path), fields=["PatientID", "PatientName"]) == {
        "PatientName": str(ds.PatientName), "PatientID": ds.PatientID}


def test_fields_must_name_keywords():
    with pytest.raises(ValueError, match="PatientFullName"):
        deid_fast.get_fields(COOKIES[0], fields=["PatientFullName"])
    with pytest.raises(TypeError):
        deid_fast.get_fields(COOKIES[0], fields=[0x00100010])
