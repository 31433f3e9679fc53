"""Conformance: deid_fast gives, type for type, what plain pydicom plus the SPEC rules give.

Every shipped file (SPEC §5, listed by ``corpus``) and every generated file (``generate``)
is read by ``deid_fast.get_fields`` and by the independent ``reference.reference_fields``
under several option sets; the results must be equal with the same key order and the same
builtin types at every level (R4-R8, R2 for where the header ends). A file deid_fast
rejects must be listed in ``EXPECTED_REJECTIONS`` with the kind of §3 it falls under and
why, and every listed file must be rejected with that kind. ``get_identifiers`` over the
whole corpus must equal ``reference_identifiers`` (R3), and a pydicom ``Dataset`` input
must give what the same data set gives the reference (R1, R2).
"""
from __future__ import annotations

import os
import sys
import warnings

import pydicom
import pydicom.errors
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.sequence import Sequence

import deid_fast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helper modules beside this file
from compare import OPTION_SETS, assert_same  # noqa: E402
from corpus import shipped_files  # noqa: E402
from generate import GENERATORS, generate_all  # noqa: E402
from reference import reference_fields, reference_identifiers  # noqa: E402

#: The skip list of the packaged config (R3); get_fields' skip_fields add to it.
CONFIG_SKIP = ["PixelData"]

#: Files deid_fast must reject (SPEC §3): file name -> (kind of the README, justification).
EXPECTED_REJECTIONS = {
    "rtplan_truncated.dcm": (
        "truncated",
        "SPEC §3 names it: the last element, (300A,00B0) BeamSequence, declares 976 bytes "
        "but the file ends 711 bytes into it; pydicom silently reads the partial header.",
    ),
    "no_meta.dcm": (
        "not-dicom",
        "SPEC §3 names it: it is CT_small.dcm's data set starting one byte early (with the "
        "last byte of its file meta), so read as pydicom reads it (implicit VR little "
        "endian) its first element, (0820,0500), declares 173228800 bytes in a 38871-byte "
        "file. deid_fast stops one step earlier: without a DICM prefix the first element "
        "must be of a group a DICOM stream starts with (0000-0008), and 0820 is not.",
    ),
    # generated (generate.py)
    "wrong_length_fd.dcm": (
        "undecodable",
        "an FD value of 4 bytes: pydicom raises BytesLengthException when it decodes it.",
    ),
    "sequence_non_item.dcm": (
        "undecodable",
        "a HistogramSequence whose value is an element, not an item: pydicom silently "
        "makes an empty item of it; §3 forbids passing off such a header as complete.",
    ),
    "item_past_sequence_end.dcm": (
        "undecodable",
        "an item declares 100 bytes inside a 16-byte sequence: pydicom silently reads "
        "what there is; §3 forbids passing off such a header as complete.",
    ),
}

SHIPPED = shipped_files()  # raises, never skips, when a data package is missing (§5)
SHIPPED_BY_NAME = {os.path.basename(p): p for p in SHIPPED}


# ---------------------------------------------------------------- helpers


def truncated_elements(path: str) -> list[str]:
    """Independent evidence for kind "truncated": elements pydicom read short.

    pydicom (force=True) keeps a RawDataElement whose value is shorter than its declared
    length when the file ends inside it; list those, at any depth of the header.
    """
    found = []

    def walk(ds):
        for tag, elem in ds._dict.items():
            if isinstance(elem, RawDataElement):
                if elem.length != 0xFFFFFFFF and elem.value is not None and len(elem.value) < elem.length:
                    found.append(f"{tag} declares {elem.length} bytes, file holds {len(elem.value)}")
            elif isinstance(elem.value, Sequence):
                for item in elem.value:
                    walk(item)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        walk(pydicom.dcmread(path, force=True, stop_before_pixels=True))
    return found


def _reference_opts(opts: dict) -> dict:
    """get_fields' options as reference_fields takes them (skip list incl. the config's)."""
    ref = dict(opts)
    ref["skip_fields"] = CONFIG_SKIP + list(opts.get("skip_fields", ()))
    return ref


def check_file(path: str, opts: dict) -> None:
    """get_fields(path, **opts) equals the reference, or is an expected rejection."""
    name = os.path.basename(path)
    if name in EXPECTED_REJECTIONS:
        kind = EXPECTED_REJECTIONS[name][0]
        with pytest.raises(deid_fast.InvalidDicomError) as info:
            deid_fast.get_fields(path, **opts)
        assert info.value.kind == kind, f"{name}: rejected as {info.value.kind!r}, expected {kind!r}: {info.value}"
        return
    expected = reference_fields(path, **_reference_opts(opts))
    try:
        actual = deid_fast.get_fields(path, **opts)
    except deid_fast.InvalidDicomError as exc:
        pytest.fail(
            f"{name} rejected ({exc.kind}: {exc}) but not in EXPECTED_REJECTIONS; "
            f"pydicom reads {len(expected)} fields from it"
        )
    assert_same(actual, expected)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> dict[str, str]:
    """The generated files, written once per session: name -> path."""
    return generate_all(tmp_path_factory.mktemp("generated"))


# ---------------------------------------------------------------- R2, R4-R8: get_fields


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("path", SHIPPED, ids=[os.path.basename(p) for p in SHIPPED])
def test_r2_r4_to_r8_shipped_file_matches_reference(path, opts):
    """R2, R4-R8: get_fields of a shipped file equals the pydicom reference, type-strictly."""
    check_file(path, opts)


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("name", list(GENERATORS), ids=[n + ".dcm" for n in GENERATORS])
def test_r2_r4_to_r8_generated_file_matches_reference(generated, name, opts):
    """R2, R4-R8: get_fields of a generated file equals the pydicom reference, type-strictly."""
    check_file(generated[name], opts)


# ---------------------------------------------------------------- §3: rejections


@pytest.mark.parametrize("name", list(EXPECTED_REJECTIONS))
def test_s3_expected_rejection_is_rejected(name, generated):
    """§3: every file listed in EXPECTED_REJECTIONS raises InvalidDicomError of its kind."""
    known = {**SHIPPED_BY_NAME, **{os.path.basename(p): p for p in generated.values()}}
    assert name in known, f"{name} is listed but is neither a shipped nor a generated file"
    path = known[name]
    kind, why = EXPECTED_REJECTIONS[name]
    assert why
    if kind == "truncated":  # our own evidence, independent of deid_fast
        assert truncated_elements(path), f"{name}: pydicom finds no element cut short"
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(path)
    err = info.value
    assert isinstance(err, pydicom.errors.InvalidDicomError)
    assert err.kind == kind, f"{name}: kind {err.kind!r}, expected {kind!r}: {err}"
    assert err.reason and isinstance(err.reason, str)
    assert isinstance(err.offset, int) and 0 <= err.offset <= os.path.getsize(path)
    assert os.fspath(err.path) == path
    assert path in str(err)


def test_s3_reference_and_evidence_agree_on_shipped_files():
    """§3/§5: each shipped file is either read whole by pydicom or listed as rejected.

    A file pydicom reads with an element cut short is a truncated header, which §3 says
    must be rejected: it must be in EXPECTED_REJECTIONS.
    """
    unlisted = {}
    for path in SHIPPED:
        name = os.path.basename(path)
        cut = truncated_elements(path)
        if cut and name not in EXPECTED_REJECTIONS:
            unlisted[name] = cut
    assert not unlisted, f"truncated headers not listed as rejections: {unlisted}"


# ---------------------------------------------------------------- R3: get_identifiers


def _accepted(paths):
    return [p for p in paths if os.path.basename(p) not in EXPECTED_REJECTIONS]


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"expand_sequences": False},
        {"entity_id": "PatientName", "item_id": "SOPInstanceUID"},
        {"entity_id": "StudyInstanceUID", "item_id": "MediaStorageSOPInstanceUID", "include_private": True},
        {"skip_fields": ["PatientName", "ReferencedImageSequence"], "include_file_meta": True},
    ],
    ids=["defaults", "no_expand", "patient_name", "file_meta_item", "skip"],
)
def test_r3_get_identifiers_over_shipped_files_matches_reference(opts):
    """R3: get_identifiers over every shipped file (rejected ones left out) equals the reference.

    The corpus holds files that share (PatientID, SOPInstanceUID), e.g. the MR_small
    variants: the later file wins and its item stands at its own place in input order.
    """
    ref_opts = _reference_opts({k: v for k, v in opts.items() if k not in ("entity_id", "item_id")})
    ids = {k: opts[k] for k in ("entity_id", "item_id") if k in opts}
    expected = reference_identifiers(_accepted(SHIPPED), **ids, **ref_opts)
    actual = deid_fast.get_identifiers(SHIPPED, **opts)
    assert_same(actual, expected)


ID_CHOICES = {
    "defaults": {},
    "numbers": {"entity_id": "SliceThickness", "item_id": "ImagePositionPatient"},
    "int_and_multi": {"entity_id": "Rows", "item_id": "ImageType"},
    "person_and_at": {"entity_id": "PatientName", "item_id": "FrameIncrementPointer"},
}


@pytest.mark.parametrize("ids", list(ID_CHOICES.values()), ids=list(ID_CHOICES))
def test_r3_get_identifiers_over_generated_files_matches_reference(generated, ids):
    """R3: get_identifiers over the generated files (rejected ones left out) equals the
    reference; entity and item are str() of the R6 value, multi-values joined with a backslash."""
    paths = list(generated.values())
    expected = reference_identifiers(_accepted(paths), **ids)
    assert expected, "no file has these ids"
    assert_same(deid_fast.get_identifiers(paths, **ids), expected)


@pytest.mark.parametrize("ids", list(ID_CHOICES.values())[1:], ids=list(ID_CHOICES)[1:])
def test_r3_get_identifiers_by_value_types_over_shipped_files(ids):
    """R3: entity and item taken from DS, IS, US, CS multi-values, PN and AT over the corpus."""
    expected = reference_identifiers(_accepted(SHIPPED), **ids)
    assert_same(deid_fast.get_identifiers(SHIPPED, **ids), expected)


# ---------------------------------------------------------------- R1, R2: Dataset input


def _read_whole(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


@pytest.mark.parametrize("opts", [{}, {"expand_sequences": False, "include_private": True, "include_file_meta": True}], ids=["defaults", "everything"])
@pytest.mark.parametrize("path", SHIPPED, ids=[os.path.basename(p) for p in SHIPPED])
def test_r1_r2_dataset_input_matches_reference(path, opts):
    """R1, R2: a pydicom Dataset (read with its pixel data) is flattened as the reference does,
    up to its first top-level pixel data element."""
    check_dataset(path, opts)


@pytest.mark.parametrize("name", list(GENERATORS), ids=[n + ".dcm" for n in GENERATORS])
def test_r1_r2_generated_dataset_input_matches_reference(generated, name):
    """R1, R2: a generated file read whole by pydicom, given as a Dataset, matches the reference."""
    check_dataset(generated[name], {"include_private": True, "include_file_meta": True})


def check_dataset(path: str, opts: dict) -> None:
    """get_fields(Dataset) equals the reference on the same data set (README: a Dataset is
    flattened as it is); one whose values pydicom cannot decode raises InvalidDicomError."""
    try:
        expected = reference_fields(_read_whole(path), **_reference_opts(opts))
    except Exception as exc:  # pydicom cannot decode a value of it
        with pytest.raises(deid_fast.InvalidDicomError) as info:
            deid_fast.get_fields(_read_whole(path), **opts)
        assert info.value.kind == "undecodable", f"pydicom raised {exc!r}; deid_fast: {info.value}"
        return
    assert_same(deid_fast.get_fields(_read_whole(path), **opts), expected)


def _in_memory_dataset():
    """A Dataset built in Python (never written): values of the types users assign."""
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.add_new(0x00080000, "UL", 100)  # a group length: never reported
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Müller^Jürgen"
    ds.OtherPatientNames = ["A^B", "C^D"]
    ds.PatientID = "memory"
    ds.OtherPatientIDs = []  # empty multi-value
    ds.PatientAge = None  # empty
    ds.PatientWeight = 71.25  # float -> DSfloat
    ds.SliceThickness = "2.50"
    ds.InstanceNumber = 3  # int -> IS
    ds.ImagePositionPatient = [1, 2.5, "3"]
    ds.FrameIncrementPointer = 0x00181063
    ds.SelectorUVValue = 2**64 - 1
    ds.TimeRange = [0.5, 1.5]
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 8
    ds.ReferencedImageSequence = [
        Dataset(),
        Dataset(),
    ]
    ds.ReferencedImageSequence[1].ReferencedSOPInstanceUID = "1.2.3.5"
    block = ds.private_block(0x0009, "MEMORY", create=True)
    block.add_new(0x01, "LO", "private in memory")
    ds.PixelData = b"\0\1\2\3"
    ds.add_new(0x7FE10010, "LO", "after pixel data")  # after PixelData: left out (R2)
    ds.DataSetTrailingPadding = b"\0\0"
    return ds


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
def test_r1_r2_in_memory_dataset_matches_reference(opts):
    """R1, R2, R4-R8: a Dataset built in memory is flattened as the reference does."""
    expected = reference_fields(_in_memory_dataset(), **_reference_opts(opts))
    assert "DataSetTrailingPadding" not in expected
    assert_same(deid_fast.get_fields(_in_memory_dataset(), **opts), expected)


# ---------------------------------------------------------------- the yardstick itself


def test_assert_same_is_strict():
    """The comparison used above tells types, key order, NaN and -0.0 apart."""
    assert_same({"a": [1, 2.5, float("nan")], "b": b"x"}, {"a": [1, 2.5, float("nan")], "b": b"x"})
    for actual, expected in [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({"a": 1}, {"a": 1.0}),
        ({"a": True}, {"a": 1}),
        ({"a": "1"}, {"a": b"1"}),
        ({"a": [1]}, {"a": (1,)}),
        ({"a": -0.0}, {"a": 0.0}),
        ({"a": pydicom.valuerep.PersonName("A^B")}, {"a": "A^B"}),
        ({"a": [{"x": 1}]}, {"a": [{"x": 2}]}),
    ]:
        with pytest.raises(AssertionError):
            assert_same(actual, expected)


def test_generated_files_hold_what_they_are_for(generated):
    """§5: the generated files hold the structures they are written for (checked with pydicom)."""
    everything = {"include_private": True, "include_file_meta": True}
    fields = {
        name: reference_fields(path, **everything)
        for name, path in generated.items()
        if name + ".dcm" not in EXPECTED_REJECTIONS
    }
    with pytest.raises(pydicom.errors.BytesLengthException):
        reference_fields(generated["wrong_length_fd"])
    nested = fields["nested_sequences"]
    assert any(k.count("_") >= 5 for k in nested)  # three levels with indices
    assert "ReferencedSeriesSequence_2_SeriesDescription" in nested  # item 1 empty, indices kept
    assert "(0019,1005)_0_PatientID" in fields["private_blocks"]
    assert "ReferencedImageSequence_(0029,1010)" in fields["private_blocks"]
    assert fields["charset_iso2022_jp"]["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert fields["charset_latin1"]["PatientName"] == "Buc^Jérôme"
    assert fields["overlays"]["OverlayRows"] == 8 and fields["overlays"]["CurveDimensions"] == 2
    assert fields["invalid_ds_is"]["PatientSize"] == "abc"
    assert type(fields["invalid_ds_is"]["InstanceNumber"]) is float
    assert fields["un_elements"]["PatientWeight"] == 70.5
    assert "ReferencedImageSequence_ReferencedSOPInstanceUID" in fields["un_elements"]
    for name in ("after_pixel_data", "after_float_pixel_data", "after_double_pixel_data"):
        assert "(7FE1,1001)" not in fields[name] and "DataSetTrailingPadding" not in fields[name]
        assert "(7FDF,1001)" in fields[name]
    assert "IconImageSequence_FloatPixelData" in fields["nested_pixel_data"]
    assert "PresentationLUTShape" in fields["nested_pixel_data"]
    assert "FileMetaInformationGroupLength" in fields["deflated"]
    assert not any(k.startswith("FileMeta") for k in fields["no_file_meta"])
    assert "CommandGroupLength" not in fields["group_lengths"]
    assert fields["group_lengths"]["AffectedSOPClassUID"]
    assert fields["empty_values"]["OtherPatientIDs"] == ["", ""]
    with open(generated["deflated"], "rb") as f:
        assert b"gen-deflated" not in f.read()  # the data set really is compressed
    with open(generated["no_file_meta"], "rb") as f:
        assert f.read(4) == b"\x08\x00\x05\x00"  # starts with (0008,0005), no preamble
