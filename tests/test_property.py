"""Property: on random data sets, in every transfer syntax, the native engine equals the pydicom
engine and the plain-pydicom reference (SPEC R6; issue 3, "equality, proven").

Hypothesis builds data sets with pydicom: elements drawn from pydicom's dictionary by VR, text
written as raw bytes (so padding, backslashes, NULs, odd numbers and bytes the character set
cannot decode all occur), binary values of every numeric VR, single and multiple values, nested
sequences with empty and several items, private blocks, and four character sets (items may carry
their own); each is written
implicit VR little endian, explicit VR little and big endian, and deflated.
"""
from __future__ import annotations

import os
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

import deid_fast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import assert_same  # noqa: E402
from reference import reference_fields  # noqa: E402

# pydicom warns while writing and while the reference reads odd values; deid_fast's own silence
# about them (R9) is tested in test_api.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                     DeflatedExplicitVRLittleEndian]
CHARSETS = [None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"]
TEXT_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
            "UI", "UR", "UT")
BINARY_VRS = ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT", "OB", "OW")


def _keywords_by_vr():
    """Current (not retired) public elements of the data set, by VR."""
    pools = {}
    for tag, (vr, _vm, _name, retired, keyword) in DicomDictionary.items():
        group = tag >> 16
        if retired or not keyword or group in (0x0000, 0x0002, 0x0004) or tag & 0xFFFF == 0:
            continue
        if group >= 0x7FE0 or tag == 0x00080005:
            continue
        pools.setdefault(vr, []).append(tag)
    return {vr: sorted(tags) for vr, tags in pools.items() if len(vr) == 2}


POOLS = _keywords_by_vr()


def text_bytes(vr, charset):
    """Raw bytes of a text value: plausible values, padding, separators and oddities."""
    plain = st.text(alphabet="ABCDEFabcdef0123456789 ^=.-+eE", max_size=12)
    numbers = st.one_of(
        st.integers(-10**9, 10**9).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: repr(f)[:16]),
        st.sampled_from(["1.5", " 2 ", "+3", "-0.0", "1e3", "1.0", "abc", "1,5", "", "nan",
                         "007", " 1_0", "3.14159265358979"]))
    if vr in ("DS", "IS"):
        item = numbers
    elif vr in ("LO", "SH", "PN", "LT", "ST", "UT", "UC"):
        if charset == "ISO_IR 192":
            item = st.text(max_size=10)            # any unicode, UTF-8 below
        elif charset == "ISO_IR 100":
            item = st.text(alphabet=[chr(c) for c in range(32, 256) if c != 92], max_size=10)
        else:
            item = plain
    else:
        item = plain
    encoding = "utf-8" if charset == "ISO_IR 192" else "latin-1"
    values = st.lists(item, min_size=1, max_size=3).map(lambda items: "\\".join(items))
    raw = values.map(lambda text: text.encode(encoding, "replace"))
    padding = st.sampled_from([b"", b" ", b"\x00", b"  "])
    junk = st.binary(max_size=6)                 # bytes that may not decode at all
    return st.one_of(st.tuples(raw, padding).map(lambda rp: rp[0] + rp[1]), junk)


def binary_value(vr):
    ints = {"US": (0, 2**16 - 1), "SS": (-2**15, 2**15 - 1), "UL": (0, 2**32 - 1),
            "SL": (-2**31, 2**31 - 1), "UV": (0, 2**64 - 1), "SV": (-2**63, 2**63 - 1)}
    if vr in ints:
        one = st.integers(*ints[vr])
    elif vr == "FL":
        one = st.floats(width=32)
    elif vr == "FD":
        one = st.floats()
    elif vr == "AT":
        one = st.integers(0, 2**32 - 1).map(Tag)
    else:  # OB, OW
        return st.binary(max_size=8).map(lambda b: b + b"\x00" * (len(b) % 2))
    return st.one_of(one, st.lists(one, min_size=2, max_size=4))


@st.composite
def element(draw, charset):
    vr = draw(st.sampled_from(TEXT_VRS + BINARY_VRS))
    tag = draw(st.sampled_from(POOLS[vr]))
    if vr in TEXT_VRS:
        return tag, RawDataElement(Tag(tag), vr, 0, draw(text_bytes(vr, charset)), 0, False, True)
    return tag, (vr, draw(binary_value(vr)))


@st.composite
def dataset(draw, charset, depth=0):
    ds = Dataset()
    if depth and draw(st.integers(0, 4)) == 0:     # an item with a character set of its own
        charset = draw(st.sampled_from(CHARSETS[1:]))
        ds.SpecificCharacterSet = charset
    for tag, value in draw(st.lists(element(charset), max_size=8)):
        if isinstance(value, RawDataElement):
            ds[tag] = RawDataElement(value.tag, value.VR, len(value.value), value.value, 0,
                                     False, True)
        else:
            ds.add_new(tag, *value)
    if depth < 2:
        for _ in range(draw(st.integers(0, 2))):
            tag = draw(st.sampled_from(POOLS["SQ"]))
            items = draw(st.lists(dataset(charset, depth + 1), max_size=3))
            ds.add_new(tag, "SQ", Sequence(items))
    if draw(st.booleans()):
        block = ds.private_block(0x0009 + 2 * draw(st.integers(0, 3)), "DEID FAST TEST",
                                 create=True)
        block.add_new(0x01, "LO", draw(st.text(alphabet="abc xyz", max_size=6)))
        block.add_new(0x02, "US", draw(st.integers(0, 65535)))
    return ds


@st.composite
def dicom_file(draw):
    charset = draw(st.sampled_from(CHARSETS))
    ds = draw(dataset(charset))
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.4242"
    ds.PatientID = "property"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = draw(st.sampled_from(TRANSFER_SYNTAXES))
    return ds


def outcome(call):
    try:
        return call()
    except deid_fast.InvalidDicomError as exc:
        return ("rejected", exc.kind)


@settings(deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ds=dicom_file(), opts=st.sampled_from([
    {}, {"expand_sequences": False, "include_private": True},
    {"include_private": True, "include_file_meta": True, "delimiter": "."}]))
def test_r6_engines_agree_on_random_datasets(ds, opts):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "random.dcm")
        try:
            ds.save_as(path, enforce_file_format=True)
        except Exception as exc:   # a value pydicom itself refuses to write: not a case
            event(f"not written: {type(exc).__name__}")
            return
        event("written")
        native = outcome(lambda: deid_fast.get_fields(path, **opts))
        via_pydicom = outcome(lambda: deid_fast.get_fields(path, engine="pydicom", **opts))
        assert_same(native, via_pydicom, "native vs pydicom engine")
        event("rejected" if isinstance(native, tuple) else "fields")
        if isinstance(native, dict):
            expected = reference_fields(path, skip_fields=["PixelData"], **opts)
            assert_same(native, expected, "native vs reference")
