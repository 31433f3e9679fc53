"""Generated DICOM files for what the shipped test data (SPEC §5) lacks.

Each ``gen_*`` function writes one file into a folder and returns its path;
``generate_all(folder)`` writes them all and returns ``{name: path}`` (the name is the
file name without ``.dcm``). Most files are written with pydicom; those pydicom's writer
will not produce (invalid DS/IS strings, UN-encoded public tags, elements after pixel
data, command group elements) are assembled from raw explicit VR little endian bytes by
the small encoder at the end of this module.

What they cover, by SPEC rule:

- R7: nested sequences three levels deep, several items with several elements, empty
  items, private sequences;
- R4: private blocks (creator + elements) at the top level and inside sequences, group
  length elements, public tags without a keyword, command group elements;
- R6: every numeric VR as single and multi-value, AT, OB/OW/OF/OD/OL/OV, invalid DS and
  IS strings, UN elements of known public tags (and an undefined-length UN sequence),
  person names in UTF-8, Latin-1, ISO 2022 Japanese and Korean, GB18030;
- R5: empty values of every kind;
- R8: overlay and curve repeating groups (6000/6002, 5000/5002);
- R2: elements after (7FE0,0010), (7FE0,0008), (7FE0,0009), pixel data inside a sequence
  item, pixel data cut short;
- R6 text: leading/trailing spaces and NULs, backslashes in LT/ST/UT, unknown, misspelt
  and violated character sets; ambiguous VRs (US or SS, OB or OW) resolved by
  PixelRepresentation; VRs in the file other than the dictionary's; private elements whose
  VR comes from pydicom's private dictionary;
- transfer syntaxes: explicit VR big endian, implicit VR little endian, deflated explicit
  VR little endian, files without preamble or file meta, data sets encoded otherwise than
  their transfer syntax says (§3: read as pydicom reads them), two file meta groups back to
  back (the last value of a repeated tag counts, the transfer syntax's included);
- size and depth: a 3 MiB element and 3000 items (many read chunks), 100 nested levels;
- §3 rejections: an undecodable FD value, a sequence holding a non-item, an item running
  past its sequence (listed in test_conformance.EXPECTED_REJECTIONS).
"""
from __future__ import annotations

import hashlib
import os
import struct
import zlib
from typing import Callable

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PYDICOM_IMPLEMENTATION_UID,
)

__all__ = ["GENERATORS", "generate_all"]

SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
UID_ROOT = "1.2.826.0.1.3680043.10.1234."


def _uid(name: str) -> str:
    """A valid UID, the same for the same name on every run."""
    return UID_ROOT + str(int(hashlib.sha1(name.encode()).hexdigest()[:15], 16))


def _base(name: str, transfer_syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """A small data set with file meta, patient and SOP identifiers."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = _uid(name)
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = "DEIDFAST_TEST"
    ds.preamble = b"\0" * 128
    ds.SOPClassUID = SOP_CLASS
    ds.SOPInstanceUID = _uid(name)
    ds.PatientName = "Generated^" + name
    ds.PatientID = "gen-" + name
    ds.StudyInstanceUID = _uid(name + ".study")
    ds.Modality = "OT"
    return ds


def _save(ds: Dataset, folder: str, name: str) -> str:
    path = os.path.join(folder, name + ".dcm")
    ds.save_as(path, enforce_file_format=True)
    return path


def _item(**elements) -> Dataset:
    item = Dataset()
    for keyword, value in elements.items():
        setattr(item, keyword, value)
    return item


def _code(value: str, meaning: str, **more) -> Dataset:
    return _item(CodeValue=value, CodingSchemeDesignator="DCM", CodeMeaning=meaning, **more)


# ---------------------------------------------------------------- R7 sequences


def gen_nested_sequences(folder: str) -> str:
    """Three levels of sequences, several items of several elements, empty items."""
    ds = _base("nested_sequences")
    level3 = Sequence([_code("C1", "level three a"), _code("C2", "level three b")])
    level2_a = _item(ReferencedSOPClassUID=SOP_CLASS, ReferencedSOPInstanceUID=_uid("a"))
    level2_a.PurposeOfReferenceCodeSequence = level3
    level2_b = _item(ReferencedSOPClassUID=SOP_CLASS, ReferencedSOPInstanceUID=_uid("b"))
    level2_b.PurposeOfReferenceCodeSequence = Sequence([_code("C3", "only item")])
    ds.ReferencedSeriesSequence = Sequence(
        [
            _item(SeriesInstanceUID=_uid("s1"), ReferencedInstanceSequence=Sequence([level2_a, level2_b])),
            Dataset(),  # an empty item between two full ones
            _item(SeriesInstanceUID=_uid("s3"), SeriesDescription="third"),
        ]
    )
    # A single-item sequence whose item holds a single-item sequence.
    ds.RequestAttributesSequence = Sequence(
        [
            _item(
                RequestedProcedureID="RP1",
                ScheduledProcedureStepID="SPS1",
                ScheduledProtocolCodeSequence=Sequence([_code("P1", "protocol")]),
            )
        ]
    )
    # A sequence whose only item is empty, and one with an item of only empty values.
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedStudySequence = Sequence([_item(ReferencedSOPClassUID="", ReferencedSOPInstanceUID="")])
    ds.OtherPatientIDsSequence = Sequence(
        [_item(PatientID="other-1", IssuerOfPatientID="A"), _item(PatientID="other-2", IssuerOfPatientID="B")]
    )
    return _save(ds, folder, "nested_sequences")


# ---------------------------------------------------------------- R4 private


def gen_private_blocks(folder: str) -> str:
    """Private creators and elements at the top level and inside sequence items."""
    ds = _base("private_blocks")
    block = ds.private_block(0x0019, "DEIDFAST TEST", create=True)
    block.add_new(0x01, "LO", "private text")
    block.add_new(0x02, "US", [1, 2, 3])
    block.add_new(0x03, "OB", b"\x01\x02\x03\x04")
    block.add_new(0x04, "DS", "1.5")
    block.add_new(0x05, "SQ", Sequence([_item(PatientID="inside-private-sq"), _item(PatientAge="042Y")]))
    second = ds.private_block(0x0019, "DEIDFAST OTHER", create=True)
    second.add_new(0x01, "SH", "second block")
    item = _item(ReferencedSOPClassUID=SOP_CLASS, ReferencedSOPInstanceUID=_uid("priv-item"))
    inner = item.private_block(0x0029, "DEIDFAST ITEM", create=True)
    inner.add_new(0x10, "LO", "private in item")
    inner.add_new(0x11, "PN", "Private^Person")
    ds.ReferencedImageSequence = Sequence([item])
    # A private block in the highest private group before pixel data.
    late = ds.private_block(0x7FDF, "DEIDFAST LATE", create=True)
    late.add_new(0x01, "LO", "late private")
    return _save(ds, folder, "private_blocks")


# ---------------------------------------------------------------- R6 text


def gen_charset_utf8(folder: str) -> str:
    """ISO_IR 192 (UTF-8) person names and text, in a sequence too."""
    ds = _base("charset_utf8")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Wang^XiaoDong=王^小東"
    ds.OtherPatientNames = ["Ærøskøbing^Åse", "Müller^Jürgen", "Δημήτρης^Παπαδόπουλος"]
    ds.InstitutionName = "Hôpital Général – Ünïcödé ✓"
    ds.StudyDescription = "Исследование головного мозга"
    ds.ReferencedPatientSequence = Sequence([_item(PatientName="Łukasz^Żółć", PatientID="utf-8 ß")])
    return _save(ds, folder, "charset_utf8")


def gen_charset_latin1(folder: str) -> str:
    """ISO_IR 100 (Latin-1) person names and text."""
    ds = _base("charset_latin1")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Buc^Jérôme"
    ds.OtherPatientNames = ["Äneas^Rüdiger", "Señora^Nuñez"]
    ds.InstitutionName = "Clinique Française"
    ds.ReferringPhysicianName = "Gößmann^Björn"
    return _save(ds, folder, "charset_latin1")


def gen_charset_iso2022_jp(folder: str) -> str:
    """ISO 2022 IR 87 (Japanese kanji) person names, with code extensions."""
    ds = _base("charset_iso2022_jp")
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.ReferringPhysicianName = "Sato^Hanako=佐藤^花子"
    ds.StudyDescription = "Study"
    return _save(ds, folder, "charset_iso2022_jp")


def gen_charset_iso2022_kr(folder: str) -> str:
    """ISO 2022 IR 149 (Korean) person names."""
    ds = _base("charset_iso2022_kr")
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 149"]
    ds.PatientName = "Hong^Gildong=洪^吉洞=홍^길동"
    return _save(ds, folder, "charset_iso2022_kr")


def gen_charset_gb18030(folder: str) -> str:
    """GB18030 (Chinese) person names and text."""
    ds = _base("charset_gb18030")
    ds.SpecificCharacterSet = "GB18030"
    ds.PatientName = "Wang^XiaoDong=王^小东="
    ds.InstitutionName = "北京协和医院"
    return _save(ds, folder, "charset_gb18030")


# ---------------------------------------------------------------- transfer syntaxes


def _rich(name: str, transfer_syntax: str) -> Dataset:
    """A data set with values of many VRs, sequences and a private block."""
    ds = _base(name, transfer_syntax)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = "20240102"
    ds.StudyTime = "101112.123"
    ds.AcquisitionDateTime = "20240102101112"
    ds.PatientBirthDate = "19700101"
    ds.PatientAge = "054Y"
    ds.PatientWeight = "72.5"
    ds.ReferringPhysicianName = "Doe^John^^Dr."
    ds.InstanceNumber = "7"
    ds.SliceThickness = "1.25"
    ds.ImagePositionPatient = ["-125.0", "-130.5", "42"]
    ds.Rows = 4
    ds.Columns = 4
    ds.AcquisitionMatrix = [0, 256, 256, 0]
    ds.TagAngleSecondAxis = -90
    ds.SimpleFrameList = [1, 2, 4000000000]
    ds.RationalNumeratorValue = [-5, 7]
    ds.SelectorUVValue = [1, 2**63]
    ds.SelectorSVValue = [-(2**62), 3]
    ds.LocalizingCursorPosition = [1.5, -2.25]
    ds.TimeRange = [0.125, 1e300]
    ds.FrameIncrementPointer = [0x00181063, 0x00181065]
    ds.RedPaletteColorLookupTableData = struct.pack("<4H", 1, 2, 3, 4)
    ds.ReferencedImageSequence = Sequence(
        [
            _item(ReferencedSOPClassUID=SOP_CLASS, ReferencedSOPInstanceUID=_uid(name + "1"), ReferencedFrameNumber="1"),
            _item(ReferencedSOPClassUID=SOP_CLASS, ReferencedSOPInstanceUID=_uid(name + "2"), ReferencedFrameNumber=["2", "3"]),
        ]
    )
    ds.AnatomicRegionSequence = Sequence([_code("T-A0100", "Brain", CodingSchemeVersion="3")])
    block = ds.private_block(0x0011, "DEIDFAST TS", create=True)
    block.add_new(0x01, "LO", "private")
    block.add_new(0x02, "UL", 123456)
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(16))
    return ds


def gen_explicit_big_endian(folder: str) -> str:
    """Explicit VR big endian: byte order of every numeric VR, AT and OW."""
    return _save(_rich("explicit_big_endian", ExplicitVRBigEndian), folder, "explicit_big_endian")


def gen_implicit_little_endian(folder: str) -> str:
    """Implicit VR little endian: VRs come from the dictionary, private ones are UN."""
    return _save(_rich("implicit_little_endian", ImplicitVRLittleEndian), folder, "implicit_little_endian")


def gen_deflated(folder: str) -> str:
    """Deflated explicit VR little endian: the data set is a raw deflate stream."""
    return _save(_rich("deflated", DeflatedExplicitVRLittleEndian), folder, "deflated")


def gen_no_file_meta(folder: str) -> str:
    """No preamble, no DICM, no file meta: implicit VR little endian data set only."""
    ds = _rich("no_file_meta", ImplicitVRLittleEndian)
    del ds.file_meta
    ds.preamble = None
    path = os.path.join(folder, "no_file_meta.dcm")
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return path


def gen_no_file_meta_explicit(folder: str) -> str:
    """No preamble, no file meta: explicit VR little endian data set only."""
    ds = _rich("no_file_meta_explicit", ExplicitVRLittleEndian)
    del ds.file_meta
    ds.preamble = None
    path = os.path.join(folder, "no_file_meta_explicit.dcm")
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=False)
    return path


def gen_meta_without_preamble(folder: str) -> str:
    """File meta group present but no preamble and no DICM prefix."""
    ds = _rich("meta_without_preamble", ExplicitVRLittleEndian)
    path = os.path.join(folder, "meta_without_preamble.dcm")
    ds.save_as(path, enforce_file_format=True)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[132:])
    return path


# ---------------------------------------------------------------- R8 repeating groups


def _overlay(ds: Dataset, group: int, rows: int, label: str) -> None:
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", 8)
    ds.add_new((group, 0x0022), "LO", f"overlay {group:04X}")
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", [1, 1])
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    if label:
        ds.add_new((group, 0x1500), "LO", label)
    ds.add_new((group, 0x3000), "OW", bytes([group & 0xFF]) * (rows * 8 // 8))


def gen_overlays(folder: str) -> str:
    """Overlays in groups 6000 and 6002, curves in 5000 and 5002: the first group wins."""
    ds = _base("overlays")
    for group, dims in ((0x5000, 2), (0x5002, 3)):
        ds.add_new((group, 0x0005), "US", dims)
        ds.add_new((group, 0x0010), "US", 4)
        ds.add_new((group, 0x0022), "LO", f"curve {group:04X}")
    _overlay(ds, 0x6000, 8, "first label")
    _overlay(ds, 0x6002, 16, "second label")
    ds.add_new((0x6002, 0x0045), "LO", "subtype only in 6002")
    ds.Rows = 8
    ds.Columns = 8
    return _save(ds, folder, "overlays")


def gen_overlay_empty_first(folder: str) -> str:
    """The first overlay group's OverlayLabel is empty, the second's is not (R5 vs R8)."""
    ds = _base("overlay_empty_first")
    _overlay(ds, 0x6000, 8, "")
    ds.add_new((0x6000, 0x1500), "LO", "")
    _overlay(ds, 0x6002, 16, "label of 6002")
    return _save(ds, folder, "overlay_empty_first")


# ---------------------------------------------------------------- R6 numbers


def gen_numeric_values(folder: str) -> str:
    """Every numeric VR as a single value and a multi-value, AT, and the O* VRs."""
    ds = _base("numeric_values")
    ds.Rows = 512  # US
    ds.AcquisitionMatrix = [0, 256, 65535, 0]  # US multi
    ds.TagAngleSecondAxis = -32768  # SS
    ds.VerticesOfTheRegion = [-1, 2, -3, 4]  # SS multi
    ds.add_new(0x00080309, "UL", 4294967295)  # PrivateDataElementValueMultiplicity, UL
    ds.SimpleFrameList = [0, 1, 4294967295]  # UL multi
    ds.ReferencePixelX0 = -2147483648  # SL
    ds.DisplayedAreaTopLeftHandCorner = [-1, 2147483647]  # SL multi
    ds.FileOffsetInContainer = 18446744073709551615  # UV
    ds.SelectorUVValue = [0, 1, 2**64 - 1]  # UV multi
    ds.SelectorSVValue = [-(2**63), 0, 2**63 - 1]  # SV multi
    ds.RecommendedDisplayFrameRateInFloat = 29.97  # FL
    ds.CalculatedTargetPosition = [0.1, -0.0, 3.4e38]  # FL multi
    ds.DiffusionBValue = 0.1  # FD
    ds.TableOfYBreakPoints = [1e-300, -2.5, 0.0]  # FD multi
    ds.SliceThickness = "0.625"  # DS
    ds.PixelSpacing = ["0.5", "0.25"]  # DS multi
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "-0"]
    ds.InstanceNumber = "12"  # IS
    ds.ReferencedFrameNumber = ["1", "-2", "+3"]  # IS multi
    ds.SelectorAttribute = 0x00181063  # AT single
    ds.FrameIncrementPointer = [0x00100010, 0x7FE00010, 0xFFFEE000]  # AT multi
    ds.VerticesOfThePolygonalOutline = struct.pack("<3f", 1.0, 2.0, 3.0)  # OF
    ds.FilterLookupTableData = struct.pack("<2d", 1.0, -1.0)  # OD
    ds.LongPrimitivePointIndexList = struct.pack("<2L", 1, 2)  # OL
    ds.SelectorOVValue = struct.pack("<Q", 7)  # OV
    ds.RedPaletteColorLookupTableData = struct.pack("<3H", 1, 2, 3)  # OW
    ds.EncapsulatedDocument = b"%PDF-1.4 fake"  # OB
    ds.ReferencedImageSequence = Sequence(
        [
            _item(
                SelectorSVValue=-5,  # SV single
                SelectorFLValue=[float("nan"), float("inf"), -float("inf")],  # FL specials
                SelectorFDValue=float("nan"),  # FD NaN
                SelectorATValue=[0x00100010, 0x00100020],  # AT multi in an item
            )
        ]
    )
    ds.WaveformBitsAllocated = 16
    ds.WaveformData = struct.pack("<4h", 1, -1, 2, -2)  # large elements are header too
    return _save(ds, folder, "numeric_values")


# ---------------------------------------------------------------- R5 empty values


def gen_empty_values(folder: str) -> str:
    """Empty values of every kind (left out) next to ["", ""] (kept)."""
    ds = _base("empty_values")
    ds.AccessionNumber = ""  # SH
    ds.StudyDescription = "    "  # LO of spaces only
    ds.ReferringPhysicianName = ""  # PN
    ds.StudyDate = ""  # DA
    ds.StudyTime = None  # TM
    ds.SliceThickness = None  # DS
    ds.InstanceNumber = None  # IS
    ds.Rows = None  # US
    ds.TagAngleSecondAxis = None  # SS
    ds.DiffusionBValue = None  # FD
    ds.RecommendedDisplayFrameRateInFloat = None  # FL
    ds.FrameIncrementPointer = None  # AT
    ds.EncapsulatedDocument = b""  # OB
    ds.RedPaletteColorLookupTableData = b""  # OW
    ds.SeriesInstanceUID = ""  # UI
    ds.ImageComments = ""  # LT
    ds.InstitutionAddress = ""  # ST
    ds.TextValue = ""  # UT
    ds.LongCodeValue = ""  # UC
    ds.RetrieveURL = ""  # UR
    ds.PatientAge = ""  # AS
    ds.AcquisitionDateTime = ""  # DT
    ds.ImageType = ["", ""]  # CS multi with empty items: kept
    ds.OtherPatientIDs = ["", ""]  # LO, kept
    ds.OtherPatientNames = ["", ""]  # PN, kept
    ds.PixelSpacing = ["", ""]  # DS, kept
    ds.ReferencedImageSequence = Sequence()  # SQ without items
    ds.ReferencedStudySequence = Sequence([Dataset()])  # one empty item
    ds.ReferencedPatientSequence = Sequence(
        [_item(PatientID="p1"), Dataset(), _item(PatientID="p3", PatientName="")]
    )
    ds.RequestAttributesSequence = Sequence([_item(RequestedProcedureID="", ReferencedStudySequence=Sequence())])
    block = ds.private_block(0x0013, "DEIDFAST EMPTY", create=True)
    block.add_new(0x01, "LO", "")
    block.add_new(0x02, "OB", b"")
    block.add_new(0x03, "LO", "kept")
    return _save(ds, folder, "empty_values")


# ---------------------------------------------------------------- R2 pixel data


def gen_pixel_data_truncated(folder: str) -> str:
    """Pixel data cut short: the header is whole, so the file is fine (R2)."""
    ds = _rich("pixel_data_truncated", ExplicitVRLittleEndian)
    ds.Rows = 64
    ds.Columns = 64
    ds.PixelData = bytes(64 * 64)
    path = _save(ds, folder, "pixel_data_truncated")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1000)
    return path


def gen_nested_pixel_data(folder: str) -> str:
    """PixelData inside an IconImageSequence item does not end the header (R2)."""
    ds = _base("nested_pixel_data")
    icon = _item(
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        Rows=2,
        Columns=2,
        BitsAllocated=8,
        BitsStored=8,
        HighBit=7,
        PixelRepresentation=0,
        PixelData=b"\x01\x02\x03\x04",
    )
    icon.FloatPixelData = struct.pack("<4f", 1, 2, 3, 4)
    ds.IconImageSequence = Sequence([icon])
    ds.PresentationLUTShape = "IDENTITY"  # (2050,0020), after the sequence
    ds.add_new(0x7FE00001, "OV", struct.pack("<Q", 0))  # ExtendedOffsetTable, before PixelData
    ds.PixelData = b"\x00" * 4
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 8
    return _save(ds, folder, "nested_pixel_data")


# ---------------------------------------------------------------- raw-built files
#
# A tiny explicit VR little endian encoder, for what pydicom's writer refuses to produce.

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
UNDEFINED = 0xFFFFFFFF


def _pad(vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in (b"OB", b"UI", b"UN") else b" "
    return value


def el(tag: int, vr: str, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element."""
    vrb = vr.encode()
    value = _pad(vrb, value)
    n = len(value) if length is None else length
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vrb
    if vrb in _LONG_VRS:
        return head + b"\0\0" + struct.pack("<L", n) + value
    return head + struct.pack("<H", n) + value


def implicit_el(tag: int, value: bytes, length: int | None = None) -> bytes:
    """One implicit VR little endian element."""
    n = len(value) if length is None else length
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, n) + value


def item(body: bytes) -> bytes:
    """A defined-length item."""
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body


def undefined_item(body: bytes) -> bytes:
    """An undefined-length item, closed by an item delimiter."""
    return struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED) + body + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)


SEQ_DELIMITER = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def file_meta_group(
    transfer_syntax: str = ExplicitVRLittleEndian,
    sop_uid: str = "1.2.3.4",
    version_name: str | None = None,
    only: set[int] | None = None,
    group_length: bool = True,
    element: Callable[[int, str, bytes], bytes] = el,
) -> bytes:
    """A file meta group: its group length (unless ``group_length`` is False), then
    (0002,0001), (0002,0002), (0002,0003), (0002,0010), (0002,0012) and, with
    ``version_name``, (0002,0013); ``only`` keeps just those tags. ``element`` encodes one
    element (explicit VR little endian, as the standard says, unless told otherwise)."""

    def ui(value: str) -> bytes:
        return _pad(b"UI", value.encode())

    elements = [
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", ui(SOP_CLASS)),
        (0x00020003, "UI", ui(sop_uid)),
        (0x00020010, "UI", ui(transfer_syntax)),
        (0x00020012, "UI", ui(PYDICOM_IMPLEMENTATION_UID)),
    ]
    if version_name is not None:
        elements.append((0x00020013, "SH", _pad(b"SH", version_name.encode())))
    meta = b"".join(element(tag, vr, value) for tag, vr, value in elements if only is None or tag in only)
    if group_length:
        meta = element(0x00020000, "UL", struct.pack("<L", len(meta))) + meta
    return meta


def raw_file(dataset: bytes, transfer_syntax: str = ExplicitVRLittleEndian, sop_uid: str = "1.2.3.4") -> bytes:
    """Preamble, DICM, a file meta group with its group length, then ``dataset``."""
    return b"\0" * 128 + b"DICM" + file_meta_group(transfer_syntax, sop_uid) + dataset


def _write(folder: str, name: str, data: bytes) -> str:
    path = os.path.join(folder, name + ".dcm")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _ids(name: str) -> bytes:
    return (
        el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00100010, "PN", ("Raw^" + name).encode())
        + el(0x00100020, "LO", ("raw-" + name).encode())
    )


def gen_invalid_ds_is(folder: str) -> str:
    """DS and IS strings pydicom keeps as str, or reads as ISfloat (R6)."""
    name = "invalid_ds_is"
    body = (
        el(0x00080018, "UI", _uid(name).encode())
        + el(0x00100020, "LO", b"raw-invalid")
        + el(0x00101020, "DS", b"abc")  # PatientSize: not a number
        + el(0x00101030, "DS", b"70.5 ")  # PatientWeight: valid with padding
        + el(0x00180050, "DS", b"1,5")  # SliceThickness: comma
        + el(0x00180088, "DS", b"  2.0")  # SpacingBetweenSlices: leading spaces
        + el(0x00200011, "IS", b"12a")  # SeriesNumber: invalid
        + el(0x00200012, "IS", b"3.0")  # AcquisitionNumber: integral float -> int
        + el(0x00200013, "IS", b"1.5")  # InstanceNumber: ISfloat
        + el(0x00200032, "DS", b"1.0\\x\\3")  # ImagePositionPatient: one item invalid
        + el(0x00200037, "DS", b"1e3\\-0\\NaN\\inf\\1.\\.5")  # ImageOrientationPatient: odd floats
        + el(0x00201002, "IS", b"+0007")  # ImagesInAcquisition
        + el(0x00281050, "DS", b"40.000000000000000")  # WindowCenter: 18 chars, too long
        + el(0x00281051, "DS", b"1.5\\2.5")  # WindowWidth multi
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_un_elements(folder: str) -> str:
    """UN-encoded known public tags (resolved to the dictionary VR), and UN sequences."""
    name = "un_elements"
    un_seq_item = implicit_el(0x00081150, _pad(b"UI", SOP_CLASS.encode())) + implicit_el(
        0x00081155, _pad(b"UI", b"1.2.3.99")
    )
    body = (
        el(0x00080018, "UI", _uid(name).encode())
        + el(0x00080090, "UN", b"Doe^Jane")  # ReferringPhysicianName as UN
        # ReferencedImageSequence as an undefined-length UN: read as a sequence
        + el(0x00081140, "UN", undefined_item(un_seq_item) + SEQ_DELIMITER, length=UNDEFINED)
        + el(0x00100020, "UN", b"un-patient")  # PatientID as UN
        + el(0x00101030, "UN", b"70.5")  # PatientWeight (DS) as UN
        + el(0x00180050, "UN", b"2.5 ")  # SliceThickness (DS)
        + el(0x00181310, "UN", struct.pack("<4H", 0, 256, 256, 0))  # AcquisitionMatrix (US)
        + el(0x00190010, "LO", b"DEIDFAST UN")
        + el(0x00191001, "UN", b"\x01\x02\x03\x04")  # private UN stays bytes
        + el(0x00200013, "UN", b"5 ")  # InstanceNumber (IS)
        + el(0x00280009, "UN", struct.pack("<HH", 0x0018, 0x1063))  # FrameIncrementPointer (AT)
        + el(0x00280010, "UN", struct.pack("<H", 2))  # Rows (US)
        + el(0x00280011, "US", struct.pack("<H", 2))
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_group_lengths(folder: str) -> str:
    """Group lengths (never reported), command group elements, keyword-less public tags."""
    name = "group_lengths"
    group8 = (
        el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00080060, "CS", b"OT")
    )
    group10 = el(0x00100010, "PN", b"Group^Length") + el(0x00100020, "LO", b"raw-group-lengths")
    private = el(0x00090010, "LO", b"DEIDFAST GL") + el(0x00091001, "LO", b"private")
    item_body = el(0x00080000, "UL", struct.pack("<L", 0)) + el(0x00081150, "UI", SOP_CLASS.encode())
    body = (
        el(0x00000000, "UL", struct.pack("<L", 0))  # CommandGroupLength
        + el(0x00000002, "UI", SOP_CLASS.encode())  # AffectedSOPClassUID
        + el(0x00000100, "US", struct.pack("<H", 1))  # CommandField
        + el(0x00080000, "UL", struct.pack("<L", len(group8)))
        + group8
        + el(0x00081140, "SQ", item(item_body))  # ReferencedImageSequence with a group length in its item
        + el(0x00090000, "UL", struct.pack("<L", len(private)))
        + private
        + el(0x00100000, "UL", struct.pack("<L", len(group10)))
        + group10
        + el(0x00180061, "DS", b"1.0")  # public, in the dictionary, no keyword
        + el(0x00280000, "UL", struct.pack("<L", 0))
        + el(0x00280020, "OB", b"\x01\x02")  # public, no keyword
        + el(0x80000010, "LO", b"unknown public")  # public, not in the dictionary
        + el(0x80010010, "LO", b"DEIDFAST 8001")  # private creator in an odd group
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def _after(name: str, pixel_tag: int, vr: str, pixel: bytes) -> bytes:
    body = (
        _ids(name)
        + el(0x00280010, "US", struct.pack("<H", 2))
        + el(0x00280011, "US", struct.pack("<H", 2))
        + el(0x7FDF0010, "LO", b"DEIDFAST BEFORE")
        + el(0x7FDF1001, "LO", b"before pixel data")
        + el(pixel_tag, vr, pixel)
        + el(0x7FE10010, "LO", b"DEIDFAST AFTER")  # private after pixel data
        + el(0x7FE11001, "LO", b"after pixel data")
        + el(0x80000010, "LO", b"unknown after")
        + el(0xFFFAFFFA, "SQ", b"")  # DigitalSignaturesSequence, empty
        + el(0xFFFCFFFC, "OB", b"\0" * 8)  # DataSetTrailingPadding
    )
    return raw_file(body, sop_uid=_uid(name))


def gen_after_pixel_data(folder: str) -> str:
    """Elements after (7FE0,0010) are not header (R2)."""
    return _write(folder, "after_pixel_data", _after("after_pixel_data", 0x7FE00010, "OW", b"\0" * 8))


def gen_after_float_pixel_data(folder: str) -> str:
    """Elements after (7FE0,0008) FloatPixelData are not header (R2)."""
    return _write(folder, "after_float_pixel_data", _after("after_float_pixel_data", 0x7FE00008, "OF", b"\0" * 16))


def gen_after_double_pixel_data(folder: str) -> str:
    """Elements after (7FE0,0009) DoubleFloatPixelData are not header (R2)."""
    return _write(folder, "after_double_pixel_data", _after("after_double_pixel_data", 0x7FE00009, "OD", b"\0" * 32))


def gen_padding_without_pixel_data(folder: str) -> str:
    """No pixel data: trailing padding and late elements are header, reported by keyword."""
    name = "padding_without_pixel_data"
    body = _ids(name) + el(0x7FE10010, "LO", b"DEIDFAST LATE") + el(0xFFFCFFFC, "OB", b"\0" * 6)
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_undefined_length_items(folder: str) -> str:
    """Undefined-length sequences and items next to defined-length ones."""
    name = "undefined_length_items"
    inner = el(0x00081150, "UI", SOP_CLASS.encode()) + el(0x00081155, "UI", b"1.2.3.4.5")
    deep = el(0x00080100, "SH", b"CODE") + el(0x00080104, "LO", b"meaning")
    body = (
        _ids(name)
        + el(0x00081115, "SQ", undefined_item(
            el(0x00081140, "SQ", item(inner) + undefined_item(inner + el(0x0040A170, "SQ", item(deep) + undefined_item(deep) + SEQ_DELIMITER, length=UNDEFINED)), length=None)
            + el(0x0020000E, "UI", b"1.2.3.6")
        ) + undefined_item(b"") + SEQ_DELIMITER, length=UNDEFINED)
        + el(0x00081140, "SQ", undefined_item(inner) + SEQ_DELIMITER, length=UNDEFINED)
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_text_padding(folder: str) -> str:
    """Text values with leading/trailing spaces and NULs, and backslashes in LT/ST/UT (R6)."""
    name = "text_padding"
    body = (
        el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00080050, "SH", b"  lead ")  # leading spaces kept, trailing stripped
        + el(0x00080070, "LO", b"abc\x00")  # trailing NUL
        + el(0x00080080, "LO", b"a\\b ")  # two values
        + el(0x00080081, "ST", b" st\\x  ")  # ST: one value, backslash is text
        + el(0x00080090, "PN", b"Doe^John \\Roe ")  # two names
        + el(0x00081030, "LO", b"\x00\x00")  # only NULs
        + el(0x00100010, "PN", b"Raw^Text=^=")  # empty component groups
        + el(0x00100020, "LO", b"raw-" + name.encode())
        + el(0x00101000, "LO", b" ")  # OtherPatientIDs: spaces only
        + el(0x00102000, "LO", b"a\\\\b")  # MedicalAlerts: an empty value in the middle
        + el(0x00104000, "LT", b"  lt\\y\r\n  ")  # LT: leading spaces kept
        + el(0x00180015, "CS", b" A \\ B ")
        + el(0x00181000, "LO", b"\\")  # DeviceSerialNumber: two empty values, kept
        + el(0x0020000D, "UI", b"1.2.3\x00")
        + el(0x00200011, "IS", b"   ")  # SeriesNumber: spaces only, empty
        + el(0x00200032, "DS", b"1\\\\2")  # ImagePositionPatient: an empty item
        + el(0x0040A160, "UT", b"  ut\\z  ")
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def _ambiguous(name: str, pixel_representation: int) -> bytes:
    """Implicit VR elements whose VR is "US or SS" / "OB or OW": pydicom resolves them."""
    rwv_item = implicit_el(0x00409211, struct.pack("<h", 9)) + implicit_el(0x00409216, struct.pack("<h", -7))
    lut_item = implicit_el(0x00283002, struct.pack("<hhh", -4, -3, 16)) + implicit_el(
        0x00283006, struct.pack("<4h", -1, 2, -3, 4)
    )
    body = (
        implicit_el(0x00080016, _pad(b"UI", SOP_CLASS.encode()))
        + implicit_el(0x00080018, _pad(b"UI", _uid(name).encode()))
        + implicit_el(0x00100020, _pad(b"LO", b"raw-" + name.encode()))
        + implicit_el(0x00280103, struct.pack("<H", pixel_representation))
        + implicit_el(0x00280106, struct.pack("<h", -5))  # SmallestImagePixelValue
        + implicit_el(0x00280107, struct.pack("<h", 300))  # LargestImagePixelValue
        + implicit_el(0x00283000, item(lut_item))  # ModalityLUTSequence
        + implicit_el(0x00409096, item(rwv_item))  # RealWorldValueMappingSequence
        + implicit_el(0x60000100, struct.pack("<H", 16))  # OverlayBitsAllocated
        + implicit_el(0x60003000, struct.pack("<2h", -1, 5))  # OverlayData, OB or OW
    )
    return raw_file(body, transfer_syntax=ImplicitVRLittleEndian, sop_uid=_uid(name))


def gen_ambiguous_vr_signed(folder: str) -> str:
    """US or SS elements with PixelRepresentation 1, at the top level and in items."""
    return _write(folder, "ambiguous_vr_signed", _ambiguous("ambiguous_vr_signed", 1))


def gen_ambiguous_vr_unsigned(folder: str) -> str:
    """US or SS elements with PixelRepresentation 0."""
    return _write(folder, "ambiguous_vr_unsigned", _ambiguous("ambiguous_vr_unsigned", 0))


def gen_un_sequence_defined_length(folder: str) -> str:
    """A known sequence encoded as a defined-length UN: pydicom reads it as a sequence."""
    name = "un_sequence_defined_length"
    inner = implicit_el(0x00081150, _pad(b"UI", SOP_CLASS.encode())) + implicit_el(0x00081155, _pad(b"UI", b"1.2.4"))
    body = (
        el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00081140, "UN", item(inner) + item(inner))
        + el(0x00100020, "LO", b"raw-" + name.encode())
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def _charset_file(name: str, charset: bytes, person: bytes) -> bytes:
    body = (
        el(0x00080005, "CS", charset)
        + el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00080080, "LO", person)
        + el(0x00100010, "PN", person + b"^" + person)
        + el(0x00100020, "LO", b"raw-" + name.encode())
    )
    return raw_file(body, sop_uid=_uid(name))


def gen_charset_unknown(folder: str) -> str:
    """An unknown Specific Character Set: pydicom falls back to its default."""
    return _write(folder, "charset_unknown", _charset_file("charset_unknown", b"ISO_IR 999", "Jérôme".encode("latin-1")))


def gen_charset_invalid_utf8(folder: str) -> str:
    """ISO_IR 192 with bytes that are not UTF-8: pydicom replaces them."""
    return _write(folder, "charset_invalid_utf8", _charset_file("charset_invalid_utf8", b"ISO_IR 192", b"J\xe9r\xf4me"))


def gen_charset_alias(folder: str) -> str:
    """A misspelt character set name pydicom still recognises ("ISO IR 100")."""
    return _write(folder, "charset_alias", _charset_file("charset_alias", b"ISO IR 100", "Jérôme".encode("latin-1")))


def gen_out_of_order(folder: str) -> str:
    """Top-level tags out of ascending order (with preamble): pydicom sorts them."""
    name = "out_of_order"
    body = (
        el(0x00080018, "UI", _uid(name).encode())
        + el(0x00100020, "LO", b"raw-" + name.encode())
        + el(0x00080060, "CS", b"OT")
        + el(0x00100010, "PN", b"Out^Of^Order")
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_duplicate_tags(folder: str) -> str:
    """The same tag twice: pydicom keeps the later value."""
    name = "duplicate_tags"
    body = (
        el(0x00080018, "UI", _uid(name).encode())
        + el(0x00080060, "CS", b"OT")
        + el(0x00100010, "PN", b"First^Name")
        + el(0x00100010, "PN", b"Second^Name")
        + el(0x00100020, "LO", b"raw-" + name.encode())
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_wrong_length_fd(folder: str) -> str:
    """An FD value of 4 bytes: pydicom cannot decode it (§3: undecodable)."""
    name = "wrong_length_fd"
    body = _ids(name) + el(0x00189087, "FD", b"\x01\x02\x03\x04")
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def _histogram_file(name: str, value: bytes) -> bytes:
    body = (
        implicit_el(0x00080018, _pad(b"UI", _uid(name).encode()))
        + implicit_el(0x00100020, _pad(b"LO", b"raw-" + name.encode()))
        + implicit_el(0x00603000, value)  # HistogramSequence, SQ in the dictionary
    )
    return raw_file(body, transfer_syntax=ImplicitVRLittleEndian, sop_uid=_uid(name))


def gen_sequence_non_item(folder: str) -> str:
    """A defined-length sequence holding an element where an item must be (§3: undecodable).

    pydicom reads it as one empty item without complaint; deid_fast must not pass that
    off as the header.
    """
    name = "sequence_non_item"
    return _write(folder, name, _histogram_file(name, implicit_el(0x00100010, b"AB")))


def gen_item_past_sequence_end(folder: str) -> str:
    """An item whose declared length runs past the end of its sequence (§3: undecodable)."""
    name = "item_past_sequence_end"
    value = struct.pack("<HHL", 0xFFFE, 0xE000, 100) + b"\0" * 8
    return _write(folder, name, _histogram_file(name, value))


def _plain_body(name: str, element) -> bytes:
    """A small data set encoded by ``element(tag, vr, value)``."""
    return (
        element(0x00080016, "UI", _pad(b"UI", SOP_CLASS.encode()))
        + element(0x00080018, "UI", _pad(b"UI", _uid(name).encode()))
        + element(0x00080060, "CS", b"OT")
        + element(0x00100010, "PN", b"Mismatch^" + name.encode().replace(b"_", b" ") + b" ")
        + element(0x00100020, "LO", _pad(b"LO", b"raw-" + name.encode()))
        + element(0x00181310, "US", struct.pack("<4H", 0, 64, 64, 0))
        + element(0x00200032, "DS", b"1.5\\-2\\3 ")
        + element(0x00280010, "US", struct.pack("<H", 64))
    )


def gen_ts_explicit_data_implicit(folder: str) -> str:
    """The file meta says explicit VR; the data set is implicit VR (§3: read as pydicom does)."""
    name = "ts_explicit_data_implicit"
    body = _plain_body(name, lambda tag, vr, value: implicit_el(tag, value))
    return _write(folder, name, raw_file(body, transfer_syntax=ExplicitVRLittleEndian, sop_uid=_uid(name)))


def gen_ts_implicit_data_explicit(folder: str) -> str:
    """The file meta says implicit VR; the data set is explicit VR (§3: read as pydicom does)."""
    name = "ts_implicit_data_explicit"
    body = _plain_body(name, el)
    return _write(folder, name, raw_file(body, transfer_syntax=ImplicitVRLittleEndian, sop_uid=_uid(name)))


# Two file meta groups back to back: a writer (a PACS) wrote a new file meta group and kept the
# old one (fo-dicom issue 1376). pydicom reads every group 0002 element up to the first of
# another group, so for a repeated tag the last value counts, the transfer syntax's included,
# which then decides how the data set is read.


def _implicit_meta_element(tag: int, vr: str, value: bytes) -> bytes:
    return implicit_el(tag, _pad(vr.encode(), value))


def gen_two_file_meta_groups(folder: str) -> str:
    """Two whole file meta groups; the second changes the transfer syntax (explicit to
    implicit VR little endian, the data set is implicit), the SOP instance and the version."""
    name = "two_file_meta_groups"
    meta = file_meta_group(ExplicitVRLittleEndian, _uid(name + ".old"), "OLD_PACS") + file_meta_group(
        ImplicitVRLittleEndian, _uid(name), "NEW_PACS"
    )
    body = _plain_body(name, lambda tag, vr, value: implicit_el(tag, value))
    return _write(folder, name, b"\0" * 128 + b"DICM" + meta + body)


def gen_two_file_meta_groups_subset(folder: str) -> str:
    """The second file meta group holds only some tags: its group length, SOP instance and
    transfer syntax (explicit VR big endian, then little endian as the data set is); the
    others keep the first group's values."""
    name = "two_file_meta_groups_subset"
    meta = file_meta_group(ExplicitVRBigEndian, _uid(name + ".old"), "OLD_PACS") + file_meta_group(
        ExplicitVRLittleEndian, _uid(name), only={0x00020003, 0x00020010}
    )
    return _write(folder, name, b"\0" * 128 + b"DICM" + meta + _plain_body(name, el))


def gen_two_file_meta_groups_no_group_length(folder: str) -> str:
    """The second file meta group has no group length (the first one's is the only one);
    it changes the transfer syntax from implicit VR little endian to deflated, as the data
    set is."""
    name = "two_file_meta_groups_no_group_length"
    meta = file_meta_group(ImplicitVRLittleEndian, _uid(name + ".old"), "OLD_PACS") + file_meta_group(
        DeflatedExplicitVRLittleEndian, _uid(name), "NEW_PACS", group_length=False
    )
    deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = deflate.compress(_plain_body(name, el)) + deflate.flush()
    return _write(folder, name, b"\0" * 128 + b"DICM" + meta + body)


def gen_two_file_meta_groups_implicit_second(folder: str) -> str:
    """The second file meta group is encoded in implicit VR: pydicom, reading the file meta
    as explicit VR, reads each of its elements as implicit VR (their length bytes are no VR).
    It changes the transfer syntax to implicit VR little endian, as the data set is."""
    name = "two_file_meta_groups_implicit_second"
    meta = file_meta_group(ExplicitVRLittleEndian, _uid(name + ".old"), "OLD_PACS") + file_meta_group(
        ImplicitVRLittleEndian, _uid(name), "NEW_PACS", element=_implicit_meta_element
    )
    body = _plain_body(name, lambda tag, vr, value: implicit_el(tag, value))
    return _write(folder, name, b"\0" * 128 + b"DICM" + meta + body)


def gen_vr_differs_from_dictionary(folder: str) -> str:
    """Explicit VRs other than the dictionary's: pydicom decodes by the VR in the file."""
    name = "vr_differs_from_dictionary"
    body = (
        el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00080060, "LO", b"OT")  # CS as LO
        + el(0x00100010, "LO", b"Not^A^PN")  # PN as LO
        + el(0x00100020, "SH", b"raw-vr")  # LO as SH
        + el(0x00101010, "US", struct.pack("<H", 42))  # PatientAge (AS) as US
        + el(0x00200013, "UL", struct.pack("<L", 7))  # InstanceNumber (IS) as UL
        + el(0x00280010, "SS", struct.pack("<h", -2))  # Rows (US) as SS
        + el(0x00280030, "FD", struct.pack("<2d", 0.5, 0.5))  # PixelSpacing (DS) as FD
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_private_dictionary_implicit(folder: str) -> str:
    """Implicit VR private elements pydicom's private dictionary knows (VR from it)."""
    name = "private_dictionary_implicit"
    body = (
        implicit_el(0x00080018, _pad(b"UI", _uid(name).encode()))
        + implicit_el(0x00090010, _pad(b"LO", b"GEMS_IDEN_01"))
        + implicit_el(0x00091001, _pad(b"LO", b"full fidelity"))
        + implicit_el(0x00091002, _pad(b"SH", b"suite"))
        + implicit_el(0x00100020, _pad(b"LO", b"raw-" + name.encode()))
        + implicit_el(0x00290010, _pad(b"LO", b"SIEMENS CSA HEADER"))
        + implicit_el(0x00290011, _pad(b"LO", b"UNKNOWN CREATOR"))
        + implicit_el(0x00291008, _pad(b"CS", b"IMAGE NUM 4"))
        + implicit_el(0x00291010, b"SV10\x04\x03\x02\x01")
        + implicit_el(0x00291108, _pad(b"LO", b"unknown creator's"))
    )
    return _write(folder, name, raw_file(body, transfer_syntax=ImplicitVRLittleEndian, sop_uid=_uid(name)))


def gen_private_dictionary_un(folder: str) -> str:
    """Explicit VR private elements encoded UN whose creator pydicom's private dictionary knows."""
    name = "private_dictionary_un"
    body = (
        el(0x00080018, "UI", _uid(name).encode())
        + el(0x00090010, "LO", b"GEMS_IDEN_01")
        + el(0x00091001, "UN", b"full fidelity")
        + el(0x00100020, "LO", b"raw-" + name.encode())
        + el(0x00290010, "LO", b"SIEMENS CSA HEADER")
        + el(0x00291008, "UN", b"IMAGE NUM 4 ")
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_large_header(folder: str) -> str:
    """A 3 MiB element and 3000 sequence items before pixel data: the header spans many
    read chunks, with elements straddling every boundary."""
    name = "large_header"
    items = b"".join(
        undefined_item(el(0x00081150, "UI", SOP_CLASS.encode()) + el(0x00081155, "UI", f"1.2.3.{i}".encode()))
        if i % 2
        else item(el(0x00081150, "UI", SOP_CLASS.encode()) + el(0x00081155, "UI", f"1.2.3.{i}".encode()))
        for i in range(3000)
    )
    body = (
        el(0x00080016, "UI", SOP_CLASS.encode())
        + el(0x00080018, "UI", _uid(name).encode())
        + el(0x00081140, "SQ", items + SEQ_DELIMITER, length=UNDEFINED)
        + el(0x00100010, "PN", b"Large^Header")
        + el(0x00100020, "LO", b"raw-" + name.encode())
        + el(0x00420011, "OB", bytes(range(256)) * (3 * 4096))  # EncapsulatedDocument, 3 MiB
        + el(0x00420012, "LO", b"application/pdf")
        + el(0x7FE00010, "OB", b"\0" * 1024)
    )
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


def gen_deep_nesting(folder: str) -> str:
    """Sequences nested 100 levels deep (below the bound of 128), built from raw bytes."""
    name = "deep_nesting"
    inner = el(0x0040A160, "UT", b"LEAF")  # TextValue sorts between RelationshipType and ContentSequence
    for level in range(100):
        seq = el(0x0040A730, "SQ", undefined_item(el(0x0040A010, "CS", f"L{level}".encode()) + inner)
                 + SEQ_DELIMITER, length=UNDEFINED)  # ContentSequence
        inner = seq
    body = _ids(name) + inner
    return _write(folder, name, raw_file(body, sop_uid=_uid(name)))


GENERATORS: dict[str, Callable[[str], str]] = {
    fn.__name__[4:]: fn
    for fn in (
        gen_nested_sequences,
        gen_private_blocks,
        gen_charset_utf8,
        gen_charset_latin1,
        gen_charset_iso2022_jp,
        gen_charset_iso2022_kr,
        gen_charset_gb18030,
        gen_explicit_big_endian,
        gen_implicit_little_endian,
        gen_deflated,
        gen_no_file_meta,
        gen_no_file_meta_explicit,
        gen_meta_without_preamble,
        gen_overlays,
        gen_overlay_empty_first,
        gen_numeric_values,
        gen_empty_values,
        gen_pixel_data_truncated,
        gen_nested_pixel_data,
        gen_invalid_ds_is,
        gen_un_elements,
        gen_group_lengths,
        gen_after_pixel_data,
        gen_after_float_pixel_data,
        gen_after_double_pixel_data,
        gen_padding_without_pixel_data,
        gen_undefined_length_items,
        gen_text_padding,
        gen_ambiguous_vr_signed,
        gen_ambiguous_vr_unsigned,
        gen_un_sequence_defined_length,
        gen_charset_unknown,
        gen_charset_invalid_utf8,
        gen_charset_alias,
        gen_out_of_order,
        gen_duplicate_tags,
        gen_wrong_length_fd,
        gen_sequence_non_item,
        gen_item_past_sequence_end,
        gen_ts_explicit_data_implicit,
        gen_ts_implicit_data_explicit,
        gen_two_file_meta_groups,
        gen_two_file_meta_groups_subset,
        gen_two_file_meta_groups_no_group_length,
        gen_two_file_meta_groups_implicit_second,
        gen_vr_differs_from_dictionary,
        gen_private_dictionary_implicit,
        gen_private_dictionary_un,
        gen_large_header,
        gen_deep_nesting,
    )
}


def generate_all(folder: str | os.PathLike) -> dict[str, str]:
    """Write every generated file into ``folder``; return ``{name: path}``."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    return {name: fn(folder) for name, fn in GENERATORS.items()}


if __name__ == "__main__":
    import sys
    import tempfile

    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="deid_fast_gen_")
    for name, path in generate_all(out).items():
        print(f"{name:32} {path}")
