"""SPEC §1: the seed walk-through (seed/dicom-get.md) on dicom-cookies, with only the
package name changed, and the seed's printed values (R9 logging, R3 grouping, R6 types).

The expected values below are the ones the seed prints; nothing else is hard-coded.
"""
from __future__ import annotations

import logging
import os

import pydicom
import pytest
from pydicom.datadict import tag_for_keyword

# -- what the seed prints ----------------------------------------------------------------

SEED_ENTITY = "cookie-47"

# "item id" line -> "Found 27 defined fields for <file>" line, as logged by the seed
SEED_ITEM_OF_FILE = {
    "image4.dcm": "1.2.276.0.7230010.3.1.4.8323329.5323.1495927169.335276",
    "image2.dcm": "1.2.276.0.7230010.3.1.4.8323329.5354.1495927170.440268",
    "image7.dcm": "1.2.276.0.7230010.3.1.4.8323329.5335.1495927169.763866",
    "image6.dcm": "1.2.276.0.7230010.3.1.4.8323329.5348.1495927170.228989",
    "image3.dcm": "1.2.276.0.7230010.3.1.4.8323329.5360.1495927170.640947",
    "image1.dcm": "1.2.276.0.7230010.3.1.4.8323329.5342.1495927169.3131",
    "image5.dcm": "1.2.276.0.7230010.3.1.4.8323329.5329.1495927169.580351",
}
SEED_FIELD_COUNT = 27

SEED_ITEM = "1.2.276.0.7230010.3.1.4.8323329.5360.1495927170.640947"
SEED_FIELDS = {
    "BitsAllocated": 8,
    "BitsStored": 8,
    "Columns": 2048,
    "ConversionType": "WSD",
    "HighBit": 7,
    "ImageComments": "This is a cookie tumor dataset for testing dicom tools.",
    "InstitutionName": "STANFORD",
    "LossyImageCompression": "01",
    "LossyImageCompressionMethod": "ISO_10918_1",
    "NameOfPhysiciansReadingStudy": "Dr. damp lake",
    "OperatorsName": "nameless voice",
    "PatientID": "cookie-47",
    "PatientName": "still salad",
    "PatientSex": "F",
    "PhotometricInterpretation": "YBR_FULL_422",
    "PixelRepresentation": 0,
    "PlanarConfiguration": 0,
    "ReferringPhysicianName": "Dr. bold moon",
    "Rows": 1536,
    "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7",
    "SOPInstanceUID": "1.2.276.0.7230010.3.1.4.8323329.5360.1495927170.640947",
    "SamplesPerPixel": 3,
    "SeriesInstanceUID": "1.2.276.0.7230010.3.1.3.8323329.5360.1495927170.640945",
    "SpecificCharacterSet": "ISO_IR 100",
    "StudyDate": "20131210",
    "StudyInstanceUID": "1.2.276.0.7230010.3.1.2.8323329.5360.1495927170.640946",
    "StudyTime": "191930",
}
# the US elements of the seed's dict: R6 "numbers stay int"
SEED_US_FIELDS = {
    "BitsAllocated", "BitsStored", "Columns", "HighBit", "PixelRepresentation",
    "PlanarConfiguration", "Rows", "SamplesPerPixel",
}
SEED_FILE_NAMES = [f"image{i}.dcm" for i in range(1, 8)]


@pytest.fixture(scope="module")
def seed_run():
    """The SPEC §1 code block, verbatim."""
    from deid_fast.data import get_dataset
    from deid_fast.dicom import get_files, get_identifiers

    base = get_dataset("dicom-cookies")
    dicom_files = list(get_files(base))
    ids = get_identifiers(dicom_files)
    ids_unexpanded = get_identifiers(dicom_files=dicom_files, expand_sequences=False)
    ids_by_name = get_identifiers(dicom_files, entity_id="PatientName", item_id="SOPInstanceUID")
    return base, dicom_files, ids, ids_unexpanded, ids_by_name


def _debug_messages(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("deid_fast") and r.levelno == logging.DEBUG
    ]


# -- §1 the drop-in's imports ----------------------------------------------------------------


def test_spec1_package_reexports_public_api():
    """SPEC §1: deid_fast re-exports get_identifiers, get_fields, get_files, get_dataset,
    InvalidDicomError, the same objects as in deid_fast.dicom / deid_fast.data."""
    import deid_fast
    from deid_fast import InvalidDicomError, get_dataset, get_fields, get_files, get_identifiers
    from deid_fast import data, dicom

    for f in (get_identifiers, get_fields, get_files, get_dataset):
        assert callable(f)
    assert get_identifiers is dicom.get_identifiers
    assert get_files is dicom.get_files
    assert get_dataset is data.get_dataset
    assert deid_fast.InvalidDicomError is InvalidDicomError


def test_spec3_invalid_dicom_error_subclasses_pydicoms():
    """SPEC §3: deid_fast.InvalidDicomError is a subclass of pydicom.errors.InvalidDicomError."""
    import deid_fast

    assert issubclass(deid_fast.InvalidDicomError, pydicom.errors.InvalidDicomError)
    assert deid_fast.InvalidDicomError is not pydicom.errors.InvalidDicomError


# -- §1 the walk-through ---------------------------------------------------------------------


def test_spec1_get_dataset_names_the_cookies_folder(seed_run):
    """SPEC §1 get_dataset: "dicom-cookies" is a folder holding the seed's 7 files."""
    base = seed_run[0]
    assert os.path.isdir(base)
    assert os.path.basename(os.path.normpath(str(base))) == "dicom-cookies"
    assert sorted(n for n in os.listdir(base) if n.endswith(".dcm")) == SEED_FILE_NAMES


def test_spec1_get_files_finds_the_seven_cookies_in_sorted_order(seed_run):
    """SPEC §1 get_files: the seed's 7 files, str paths, in sorted order (README)."""
    base, dicom_files = seed_run[0], seed_run[1]
    assert len(dicom_files) == 7
    assert all(type(p) is str for p in dicom_files)
    assert [os.path.basename(p) for p in dicom_files] == SEED_FILE_NAMES
    assert all(os.path.samefile(os.path.dirname(p), base) for p in dicom_files)


def test_r3_seed_groups_all_cookies_under_one_entity(seed_run):
    """R3 + seed: one entity, 'cookie-47', holding the seed's 7 item keys, in input order."""
    ids = seed_run[2]
    assert list(ids.keys()) == [SEED_ENTITY]
    expected_items = [SEED_ITEM_OF_FILE[name] for name in SEED_FILE_NAMES]
    assert list(ids[SEED_ENTITY].keys()) == expected_items
    assert set(ids[SEED_ENTITY]) == set(SEED_ITEM_OF_FILE.values())


def test_r4_r6_seed_fields_of_image3_exactly(seed_run):
    """R4/R6 + seed: the exact 27-field dict the seed prints for ...640947, with exact types:
    int for the US elements, str (not PersonName/UID subclasses) for the rest."""
    fields = seed_run[2][SEED_ENTITY][SEED_ITEM]
    assert fields == SEED_FIELDS
    for key, value in fields.items():
        if key in SEED_US_FIELDS:
            assert type(value) is int, (key, type(value))
        else:
            assert type(value) is str, (key, type(value))


def test_r4_seed_fields_in_element_order(seed_run):
    """R4: fields appear in the order the elements appear in the file (tag order here)."""
    fields = seed_run[2][SEED_ENTITY][SEED_ITEM]
    assert list(fields) == sorted(SEED_FIELDS, key=tag_for_keyword)


def test_r4_seed_every_cookie_has_27_fields(seed_run):
    """R4 + seed log: 'Found 27 defined fields' for each of the 7 files."""
    ids = seed_run[2]
    for item, fields in ids[SEED_ENTITY].items():
        assert len(fields) == SEED_FIELD_COUNT, item
        assert fields["SOPInstanceUID"] == item
        assert fields["PatientID"] == SEED_ENTITY


def test_r2_seed_pixel_data_and_empty_values_left_out(seed_run):
    """R2/R5 + seed: no PixelData, no empty elements (AccessionNumber, PatientBirthDate,
    SeriesNumber ... are empty in the cookies), no file meta by default."""
    fields = seed_run[2][SEED_ENTITY][SEED_ITEM]
    for absent in ("PixelData", "AccessionNumber", "PatientBirthDate", "StudyID",
                   "SeriesNumber", "InstanceNumber", "PatientOrientation",
                   "MediaStorageSOPInstanceUID", "TransferSyntaxUID"):
        assert absent not in fields


def test_r7_seed_expand_sequences_false(seed_run):
    """R7 + seed: expand_sequences=False runs; the cookies have no sequences, so the result
    equals the expanded one."""
    ids, ids_unexpanded = seed_run[2], seed_run[3]
    assert ids_unexpanded == ids
    assert list(ids_unexpanded[SEED_ENTITY]) == list(ids[SEED_ENTITY])


def test_r3_seed_entity_patient_name_item_sop_instance(seed_run):
    """R3 + seed: entity_id="PatientName" groups by the str() of each file's name."""
    ids, ids_by_name = seed_run[2], seed_run[4]
    by_item = ids[SEED_ENTITY]
    expected = {fields["PatientName"]: {item: fields} for item, fields in by_item.items()}
    assert ids_by_name == expected
    assert all(type(k) is str for k in ids_by_name)
    assert ids_by_name["still salad"] == {SEED_ITEM: SEED_FIELDS}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"entity_id": "PatientFullName", "item_id": "InstanceUID"},
        {"entity_id": "PatientFullName"},
        {"item_id": "InstanceUID"},
    ],
)
def test_r3_seed_unknown_keyword_raises_value_error_before_reading(tmp_path, caplog, kwargs):
    """R3 + seed: the seed's last example names keywords pydicom does not know: ValueError
    before any file is read (a missing file with errors="raise" would otherwise raise
    InvalidDicomError, and with "warn" log a WARNING)."""
    from deid_fast.dicom import get_identifiers

    missing = str(tmp_path / "missing.dcm")

    def paths():
        yield missing

    caplog.set_level(logging.DEBUG, logger="deid_fast")
    with pytest.raises(ValueError) as info:
        get_identifiers([missing], errors="raise", **kwargs)
    assert not isinstance(info.value, pydicom.errors.InvalidDicomError)
    with pytest.raises(ValueError) as info:
        get_identifiers(paths(), errors="warn", **kwargs)
    assert not isinstance(info.value, pydicom.errors.InvalidDicomError)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any(missing in r.getMessage() for r in caplog.records)


# -- R9 the seed's log lines -------------------------------------------------------------


def test_r9_seed_get_identifiers_debug_lines(caplog):
    """R9 + seed: per file, in input order, 'entity id: cookie-47', 'item id: <uid>',
    'Found 27 defined fields for <name>' at DEBUG on logger deid_fast."""
    from deid_fast.data import get_dataset
    from deid_fast.dicom import get_identifiers

    base = get_dataset("dicom-cookies")
    files = [os.path.join(base, n) for n in SEED_FILE_NAMES]
    caplog.set_level(logging.DEBUG, logger="deid_fast")
    get_identifiers(files)
    messages = _debug_messages(caplog)
    seed_lines = [
        m for m in messages
        if m.startswith(("entity id: ", "item id: "))
        or (m.startswith("Found ") and " defined fields for " in m)
    ]
    expected = []
    for name in SEED_FILE_NAMES:
        expected += [
            f"entity id: {SEED_ENTITY}",
            f"item id: {SEED_ITEM_OF_FILE[name]}",
            f"Found {SEED_FIELD_COUNT} defined fields for {name}",
        ]
    assert seed_lines == expected
    assert "Found 27 defined fields for image3.dcm" in messages


def test_r9_seed_get_files_debug_lines(caplog):
    """R9 + seed: get_files logs 'Found 7 contender files in dicom-cookies', 'Checking 7
    dicom files for validation.', 'Found 7 valid dicom files' at DEBUG."""
    from deid_fast.data import get_dataset
    from deid_fast.dicom import get_files

    base = get_dataset("dicom-cookies")
    caplog.set_level(logging.DEBUG, logger="deid_fast")
    files = list(get_files(base))
    assert len(files) == 7
    messages = _debug_messages(caplog)
    wanted = [
        "Found 7 contender files in dicom-cookies",
        "Checking 7 dicom files for validation.",
        "Found 7 valid dicom files",
    ]
    for line in wanted:
        assert line in messages, (line, messages)
    assert [messages.index(line) for line in wanted] == sorted(messages.index(line) for line in wanted)


def test_r9_seed_log_lines_silent_without_debug(caplog):
    """R9: the seed's lines are DEBUG records, so at INFO nothing of them is emitted."""
    from deid_fast.data import get_dataset
    from deid_fast.dicom import get_files, get_identifiers

    caplog.set_level(logging.INFO, logger="deid_fast")
    get_identifiers(list(get_files(get_dataset("dicom-cookies"))))
    texts = [r.getMessage() for r in caplog.records if r.name.startswith("deid_fast")]
    assert not any(t.startswith(("entity id:", "item id:", "Found ", "Checking ")) for t in texts)
