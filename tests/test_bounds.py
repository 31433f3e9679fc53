"""Resource bounds (SPEC section 3; issue 4): nesting depth, header bytes and elements are bounded,
configurable, and exceeding one is an InvalidDicomError that names the bound."""
from __future__ import annotations

import os
import sys

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

import deid_fast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawdicom  # noqa: E402


def write(tmp_path, name, ds, syntax=ExplicitVRLittleEndian):
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.31337"
    ds.PatientID = "bounds"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    path = str(tmp_path / name)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_max_header_bytes_bounds_a_large_header(tmp_path):
    ds = Dataset()
    ds.add_new(0x60003000, "OB", b"\x01" * (1 << 20))  # OverlayData: 1 MiB before any pixels
    path = write(tmp_path, "large.dcm", ds)
    assert deid_fast.get_fields(path)["OverlayData"] == b"\x01" * (1 << 20)
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(path, max_header_bytes=64 * 1024)
    assert info.value.kind == "too-large"
    assert "max_header_bytes" in info.value.reason


def test_max_header_bytes_bounds_a_deflate_bomb(tmp_path):
    """A deflated data set inflating far beyond its file size is refused at the bound."""
    ds = Dataset()
    ds.add_new(0x60003000, "OB", b"\x00" * (8 << 20))  # 8 MiB of zeros deflate to a few KiB
    path = write(tmp_path, "bomb.dcm", ds, DeflatedExplicitVRLittleEndian)
    assert os.path.getsize(path) < 64 * 1024
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(path, max_header_bytes=1 << 20)
    assert info.value.kind == "too-large"
    assert "inflates" in info.value.reason and "max_header_bytes" in info.value.reason
    assert len(deid_fast.get_fields(path)["OverlayData"]) == 8 << 20


def test_max_elements_bounds_the_element_table(tmp_path):
    ds = Dataset()
    ds.ReferencedImageSequence = [Dataset() for _ in range(300)]
    for index, item in enumerate(ds.ReferencedImageSequence):
        item.ReferencedSOPInstanceUID = f"1.2.3.{index}"
    path = write(tmp_path, "many.dcm", ds)
    assert len(deid_fast.get_fields(path, max_elements=1000)) == 3 + 300
    for engine in ("native", "pydicom"):
        with pytest.raises(deid_fast.InvalidDicomError) as info:
            deid_fast.get_fields(path, max_elements=100, engine=engine)
        assert info.value.kind == "too-large"
        assert "max_elements" in info.value.reason


def test_max_depth_is_the_nesting_bound(tmp_path):
    path = tmp_path / "deep.dcm"
    path.write_bytes(rawdicom.deep_nesting(10))
    assert deid_fast.get_fields(str(path), max_depth=10)
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(str(path), max_depth=9)
    assert info.value.kind == "too-deep"
    assert "9 levels" in info.value.reason


@pytest.mark.parametrize("bound", ["max_depth", "max_header_bytes", "max_elements"])
def test_bounds_must_be_non_negative_ints(bound):
    path = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "CT_small.dcm")
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(ValueError, match=bound):
            deid_fast.get_fields(path, **{bound: bad})
        with pytest.raises(ValueError, match=bound):
            deid_fast.get_identifiers([path], **{bound: bad})


def test_bounds_apply_in_get_files(tmp_path):
    path = tmp_path / "deep.dcm"
    path.write_bytes(rawdicom.deep_nesting(5))
    assert list(deid_fast.get_files(str(tmp_path))) == [str(path)]
    assert list(deid_fast.get_files(str(tmp_path), max_depth=4)) == []
    assert list(deid_fast.get_files(str(tmp_path), max_elements=3)) == []
