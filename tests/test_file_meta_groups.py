"""Two file meta groups back to back (issue 12, item 7).

A writer (a PACS) wrote a new file meta group and kept the old one, so group 0002 repeats its
tags (fo-dicom issue 1376). pydicom's `_read_file_meta_info` reads every group 0002 element up
to the first of another group and keeps the last value of a repeated tag: the transfer
syntax's too, which decides how the data set is read. deid_fast reads such a file as pydicom
does, in both engines. Expected values come from what the generators wrote and from plain
pydicom, never from deid_fast.
"""
from __future__ import annotations

import os
import random
import struct
import sys
import warnings

import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

import deid_fast
from deid_fast._scan import scan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import assert_same  # noqa: E402
from generate import (  # noqa: E402
    GENERATORS,
    _plain_body,
    _uid,
    el,
    file_meta_group,
    implicit_el,
    raw_file,
)
from reference import reference_fields  # noqa: E402

ENGINES = ("native", "pydicom")
PREAMBLE = b"\0" * 128 + b"DICM"

#: The generated files with two file meta groups -> what their last group says: the transfer
#: syntax and ImplementationVersionName (the subset's second group has none: the first's stays).
LAST = {
    "two_file_meta_groups": (ImplicitVRLittleEndian, "NEW_PACS"),
    "two_file_meta_groups_subset": (ExplicitVRLittleEndian, "OLD_PACS"),
    "two_file_meta_groups_no_group_length": (DeflatedExplicitVRLittleEndian, "NEW_PACS"),
    "two_file_meta_groups_implicit_second": (ImplicitVRLittleEndian, "NEW_PACS"),
}
#: How each transfer syntax has the data set read: (implicit VR, little endian, deflated).
ENCODING = {
    ImplicitVRLittleEndian: (True, True, False),
    ExplicitVRLittleEndian: (False, True, False),
    DeflatedExplicitVRLittleEndian: (False, True, True),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, str]:
    folder = str(tmp_path_factory.mktemp("file_meta_groups"))
    return {name: GENERATORS[name](folder) for name in LAST}


def test_every_generator_with_two_groups_is_listed():
    assert sorted(LAST) == sorted(n for n in GENERATORS if n.startswith("two_file_meta_groups"))


def plain_pydicom(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True, stop_before_pixels=True)


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / f"{name}.dcm"
    path.write_bytes(data)
    return str(path)


# -- read as pydicom reads them ----------------------------------------------------------------


@pytest.mark.parametrize("include_file_meta", [False, True], ids=["data-set", "file-meta"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(LAST))
def test_reads_as_pydicom_does(generated, name, engine, include_file_meta):
    """Read without error, the fields (file meta first with include_file_meta) equal to plain
    pydicom's `dcmread(path, stop_before_pixels=True)` flattened."""
    path = generated[name]
    expected = reference_fields(path, include_file_meta=include_file_meta)
    assert_same(deid_fast.get_fields(path, engine=engine, include_file_meta=include_file_meta),
                expected)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(LAST))
def test_the_last_value_of_a_repeated_file_meta_tag_counts(generated, name, engine):
    path = generated[name]
    transfer_syntax, version = LAST[name]
    fields = deid_fast.get_fields(path, engine=engine, include_file_meta=True)
    assert fields["TransferSyntaxUID"] == transfer_syntax
    assert fields["MediaStorageSOPInstanceUID"] == _uid(name)          # not _uid(name + ".old")
    assert fields["ImplementationVersionName"] == version
    meta = plain_pydicom(path).file_meta
    assert fields["FileMetaInformationGroupLength"] == meta.FileMetaInformationGroupLength
    file_meta_keys = [key for key in fields if key in meta]
    assert file_meta_keys == list(fields)[:len(file_meta_keys)], "file meta first"
    assert file_meta_keys == [elem.keyword for elem in meta]            # pydicom's order: sorted


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(LAST))
def test_the_data_set_is_read_with_the_last_transfer_syntax(generated, name, engine):
    """Read by the first group's transfer syntax (big endian; implicit VR where the data set
    is deflated), the data set would not decode; where the first says explicit VR before an
    implicit VR data set, pydicom's look at the first element would hide the mistake, so the
    scanner's encoding is checked too."""
    path = generated[name]
    header = scan(path)
    assert (header.is_implicit_vr, header.is_little_endian, header.deflated) == ENCODING[LAST[name][0]]
    fields = deid_fast.get_fields(path, engine=engine)
    assert fields["PatientName"] == "Mismatch^" + name.replace("_", " ")
    assert fields["SOPInstanceUID"] == _uid(name)
    assert fields["AcquisitionMatrix"] == [0, 64, 64, 0]
    assert fields["ImagePositionPatient"] == [1.5, -2.0, 3.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_identifiers_from_the_file_meta_take_the_last_value(generated, engine):
    """R3 looks an id up in the file meta when the data set lacks it: the last value."""
    paths = [generated[name] for name in sorted(LAST)]
    ids = deid_fast.get_identifiers(paths, engine=engine, entity_id="SOPClassUID",
                                    item_id="MediaStorageSOPInstanceUID")
    assert list(ids) == ["1.2.840.10008.5.1.4.1.1.7"]
    assert list(ids["1.2.840.10008.5.1.4.1.1.7"]) == [_uid(name) for name in sorted(LAST)]


def test_the_scanner_hands_on_both_groups(generated):
    """The file meta bytes are both groups: the data set starts after the second."""
    path = generated["two_file_meta_groups"]
    data = open(path, "rb").read()
    header = scan(path)
    second = data.index(b"\x02\x00\x00\x00UL", 132 + 8)          # the second group length
    assert header.file_meta == data[132:header.dataset_offset]
    assert header.dataset_offset > second
    assert data[header.dataset_offset:header.dataset_offset + 4] == b"\x08\x00\x16\x00"


# -- meta_ordered: whether group 0002's tags ascend -------------------------------------------


def _out_of_order_meta() -> bytes:
    """One file meta group, every tag once, (0002,0010) and (0002,0002) swapped."""
    group = (
        el(0x00020001, "OB", b"\x00\x01")
        + el(0x00020010, "UI", ExplicitVRLittleEndian.encode())
        + el(0x00020003, "UI", b"1.2.3.4")
        + el(0x00020002, "UI", b"1.2.840.10008.5.1.4.1.1.7")
    )
    return el(0x00020000, "UL", struct.pack("<L", len(group))) + group


def test_meta_ordered(generated, tmp_path):
    for name in LAST:
        assert scan(generated[name]).meta_ordered is False, name
    single = write(tmp_path, "single", raw_file(_plain_body("single", el)))
    assert scan(single).meta_ordered is True
    unordered = write(tmp_path, "unordered", PREAMBLE + _out_of_order_meta() + _plain_body("u", el))
    assert scan(unordered).meta_ordered is False
    no_meta = write(tmp_path, "no_meta", _plain_body("no_meta", el))
    assert scan(no_meta).meta_ordered is True


@pytest.mark.parametrize("engine", ENGINES)
def test_file_meta_tags_out_of_order_read_as_pydicom_does(tmp_path, engine):
    """Not repeated, only out of order: pydicom sorts them."""
    path = write(tmp_path, "unordered", PREAMBLE + _out_of_order_meta() + _plain_body("u", el))
    fields = deid_fast.get_fields(path, engine=engine, include_file_meta=True)
    assert_same(fields, reference_fields(path, include_file_meta=True))
    assert list(fields)[:5] == ["FileMetaInformationGroupLength", "FileMetaInformationVersion",
                                "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID",
                                "TransferSyntaxUID"]


# -- what stays rejected -------------------------------------------------------------------------

FIRST = file_meta_group(ExplicitVRLittleEndian, "1.2.3.1")
SECOND = file_meta_group(ExplicitVRLittleEndian, "1.2.3.2")
SECOND_ELEMENTS = SECOND[12:]      # without its group length

#: Second file meta groups pydicom rejects: bytes after the first group -> deid_fast's kind.
GARBAGE = {
    # pydicom decodes the last (0002,0000) (the group's smallest tag) as it reads the group
    "group-length-of-2-bytes": (el(0x00020000, "UL", b"\x10\x00") + SECOND_ELEMENTS, "undecodable"),
    "group-length-unknown-vr": (el(0x00020000, "ZZ", struct.pack("<L", 100)) + SECOND_ELEMENTS,
                                "undecodable"),
    "group-length-vr-sq": (el(0x00020000, "SQ", b"\x00" * 5) + SECOND_ELEMENTS, "undecodable"),
    # a group 0002 tag, then noise: an element whose length runs past the end of the file
    "noise": (b"\x02\x00\x00\x00" + bytes(random.Random(1).randrange(256) for _ in range(60)),
              "truncated"),
}


@pytest.mark.parametrize("include_file_meta", [False, True], ids=["data-set", "file-meta"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_a_second_group_pydicom_rejects_is_a_clear_error(tmp_path, case, engine,
                                                         include_file_meta):
    second, kind = GARBAGE[case]
    path = write(tmp_path, case, PREAMBLE + FIRST + second + _plain_body(case, el))
    with pytest.raises(Exception):
        plain_pydicom(path)
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(path, engine=engine, include_file_meta=include_file_meta)
    err = info.value
    assert err.kind == kind, str(err)
    assert os.fspath(err.path) == path and str(err).startswith(f"{path}: ")


@pytest.mark.parametrize("engine", ENGINES)
def test_an_implicit_file_meta_group_length_pydicom_rejects(tmp_path, engine):
    """A file meta group in implicit VR whose group length has 2 bytes: pydicom decodes it
    with the dictionary's VR, UL, and raises."""
    meta = implicit_el(0x00020000, b"\x10\x00") + implicit_el(0x00020010, b"1.2.840.10008.1.2.1\0")
    path = write(tmp_path, "implicit-meta", PREAMBLE + meta + _plain_body("implicit_meta", el))
    with pytest.raises(Exception):
        plain_pydicom(path)
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(path, engine=engine)
    assert info.value.kind == "undecodable" and path in str(info.value)


def test_a_file_ending_inside_the_second_group_is_truncated(tmp_path):
    """The second group's length declares more than the file holds: the file was cut at an
    element boundary inside it (the first group's length is whole)."""
    cut = write(tmp_path, "cut", PREAMBLE + FIRST + SECOND[:SECOND.index(b"\x02\x00\x12\x00UI")])
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(cut)
    assert info.value.kind == "truncated", str(info.value)
    whole = write(tmp_path, "whole", PREAMBLE + FIRST + SECOND)
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(whole)
    assert info.value.kind == "no-elements", str(info.value)


def test_without_preamble_the_file_meta_tags_must_ascend(tmp_path):
    """Without a DICM prefix nothing tells the bytes from noise, so their top-level tags
    must ascend (README): a repeated file meta group is rejected there, as ever, though
    pydicom (force=True) reads it; one file meta group is read."""
    body = _plain_body("no_preamble", el)
    doubled = write(tmp_path, "doubled", FIRST + SECOND + body)
    assert "MediaStorageSOPInstanceUID" in plain_pydicom(doubled).file_meta
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(doubled)
    assert info.value.kind == "not-dicom"
    assert info.value.reason.startswith("no DICM prefix, and tag (0002,0000) is out of order")
    assert info.value.offset == len(FIRST)
    single = write(tmp_path, "single", SECOND + body)
    assert_same(deid_fast.get_fields(single, include_file_meta=True),
                reference_fields(single, include_file_meta=True))


def test_command_set_tags_must_still_ascend(tmp_path):
    """The command set (group 0000) keeps its rule: a tag that does not ascend is noise (a
    run of zero bytes repeats (0000,0000)), with or without a preamble."""
    command = implicit_el(0x00000100, struct.pack("<H", 1)) + implicit_el(0x00000002, b"1.2\0")
    path = write(tmp_path, "command", raw_file(command + _plain_body("command", el)))
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(path)
    assert info.value.kind == "not-dicom"
    assert info.value.reason == "tag (0000,0002) is out of order in group 0000"
