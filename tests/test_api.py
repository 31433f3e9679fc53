"""The public API beyond the seed: R1 inputs, R3 grouping and config, R4 skip_fields,
R7 keys, R9 logging, get_files, get_dataset and argument validation (SPEC §1-§2 and the
README's decisions).  Inputs are written with pydicom into tmp_path; expected values are
derived from what the test wrote, never from deid_fast.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import struct
import subprocess
import sys
import warnings

import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

try:
    from . import rawdicom
except ImportError:
    import rawdicom

import deid_fast
from deid_fast import InvalidDicomError, get_dataset, get_fields, get_files, get_identifiers

SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage


# -- helpers ------------------------------------------------------------------------------


def build(elements: dict, meta: dict | None = None, ts=ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = elements.get("SOPClassUID") or SC
    ds.file_meta.MediaStorageSOPInstanceUID = elements.get("SOPInstanceUID") or "1.2.826.0.1.3680043.8.498.9"
    for keyword, value in (meta or {}).items():
        setattr(ds.file_meta, keyword, value)
    return ds


def write(path, elements: dict, meta: dict | None = None, ts=ExplicitVRLittleEndian) -> str:
    """A conformant file (preamble, file meta) holding `elements` (keyword -> value)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build(elements, meta, ts).save_as(path, enforce_file_format=True)
    return str(path)


def plain(elements: dict) -> dict:
    """The fields R4 expects for flat text elements the test wrote: tag order."""
    return {k: elements[k] for k in sorted(elements, key=tag_for_keyword)}


def patient(pid: str, n: int, **extra) -> dict:
    e = {
        "SOPClassUID": SC,
        "SOPInstanceUID": f"1.2.826.0.1.3680043.8.498.{n}",
        "PatientName": f"Name^{pid}",
        "PatientID": pid,
        "Modality": "OT",
    }
    e.update(extra)
    return e


def warnings_of(caplog, level=logging.WARNING):
    return [
        r for r in caplog.records
        if r.name.startswith("deid_fast") and r.levelno == level
    ]


@pytest.fixture
def three(tmp_path):
    """Three files: two of patient A, one of B; returns (paths, element dicts)."""
    specs = [patient("A", 1), patient("A", 2, PatientSex="F"), patient("B", 3)]
    paths = [write(tmp_path / f"f{i}.dcm", e) for i, e in enumerate(specs)]
    return paths, specs


# -- R1 input ------------------------------------------------------------------------------


def test_r1_str_path_gives_grouped_fields(three):
    """R1/R3: a str path to a file: {PatientID: {SOPInstanceUID: fields}}."""
    paths, specs = three
    ids = get_identifiers(paths[1])
    assert ids == {"A": {specs[1]["SOPInstanceUID"]: plain(specs[1])}}


def test_r1_pathlike_equals_str(three):
    """R1: an os.PathLike path gives the same as its str."""
    paths, _ = three
    for p in paths:
        assert get_identifiers(pathlib.Path(p)) == get_identifiers(p)
        assert get_fields(pathlib.Path(p)) == get_fields(p)


def test_r1_single_item_counts_as_list_of_one(three):
    """R1: a single str, PathLike or Dataset counts as a list of one (not iterated)."""
    paths, _ = three
    ds = pydicom.dcmread(paths[0])
    assert get_identifiers(paths[0]) == get_identifiers([paths[0]])
    assert get_identifiers(pathlib.Path(paths[0])) == get_identifiers([paths[0]])
    assert get_identifiers(ds) == get_identifiers([ds]) == get_identifiers([paths[0]])


def test_r1_folder_walked_like_get_files(tmp_path):
    """R1: a folder is walked as get_files walks it: recursively, sorted by name."""
    root = tmp_path / "study"
    # written out of order so a walk that follows directory order would show it
    p_b = write(root / "sub" / "b.dcm", patient("P", 2))
    p_a = write(root / "a.dcm", patient("P", 1))
    p_c = write(root / "sub" / "deeper" / "c.dcm", patient("P", 3))
    ids = get_identifiers(str(root))
    expected_order = [p_a, p_b, p_c]
    assert list(ids) == ["P"]
    assert list(ids["P"]) == [f"1.2.826.0.1.3680043.8.498.{n}" for n in (1, 2, 3)]
    assert ids == get_identifiers(expected_order)
    assert get_identifiers(root) == ids


def test_r1_dataset_input_equals_file_input(three):
    """R1: a pydicom Dataset is flattened by the same rules as its file."""
    paths, specs = three
    ds = pydicom.dcmread(paths[2])
    assert get_fields(ds) == get_fields(paths[2]) == plain(specs[2])
    assert get_identifiers([ds]) == get_identifiers([paths[2]])


def test_r1_dataset_built_in_memory_without_file_meta():
    """R1: a Dataset never written to disk, without file meta, is flattened as it is."""
    e = patient("MEM", 7)
    ds = Dataset()
    for k, v in e.items():
        setattr(ds, k, v)
    assert get_fields(ds) == plain(e)
    assert get_identifiers(ds) == {"MEM": {e["SOPInstanceUID"]: plain(e)}}


def test_r1_r2_dataset_input_stops_at_pixel_data():
    """R1 + README (R2 for Datasets): elements after the first top-level pixel data element
    of a Dataset input are left out, as for files."""
    e = patient("PX", 8)
    ds = Dataset()
    for k, v in e.items():
        setattr(ds, k, v)
    ds.Rows = 1
    ds.Columns = 1
    ds.PixelData = b"\x00\x00"
    sig = Dataset()
    sig.MACIDNumber = 5
    ds.DigitalSignaturesSequence = [sig]  # (FFFA,FFFA), after (7FE0,0010)
    fields = get_fields(ds)
    assert fields["Rows"] == 1 and fields["PatientID"] == "PX"
    assert "PixelData" not in fields
    assert not any(k.startswith("DigitalSignaturesSequence") for k in fields)


@pytest.mark.parametrize("kind", ["list", "tuple", "generator", "mixed"])
def test_r1_iterables_in_input_order(three, kind):
    """R1: any iterable of inputs; entities and items follow input order."""
    paths, specs = three
    order = [2, 1, 0]  # B3, A2, A1
    chosen = [paths[i] for i in order]
    if kind == "tuple":
        arg = tuple(chosen)
    elif kind == "generator":
        arg = (p for p in chosen)
    elif kind == "mixed":
        arg = [chosen[0], pathlib.Path(chosen[1]), pydicom.dcmread(chosen[2])]
    else:
        arg = chosen
    ids = get_identifiers(arg)
    assert list(ids) == ["B", "A"]
    assert list(ids["A"]) == [specs[1]["SOPInstanceUID"], specs[0]["SOPInstanceUID"]]
    assert ids["B"] == {specs[2]["SOPInstanceUID"]: plain(specs[2])}
    assert ids["A"][specs[1]["SOPInstanceUID"]] == plain(specs[1])


def test_r1_empty_iterable_gives_empty_result():
    """R1: an empty list is a list of no files: an empty result, no error."""
    assert get_identifiers([]) == {}


# -- R3 grouping and config -------------------------------------------------------------------


def test_r3_default_grouping(three):
    """R3: default entity PatientID, item SOPInstanceUID."""
    paths, specs = three
    ids = get_identifiers(paths)
    assert ids == {
        "A": {specs[0]["SOPInstanceUID"]: plain(specs[0]), specs[1]["SOPInstanceUID"]: plain(specs[1])},
        "B": {specs[2]["SOPInstanceUID"]: plain(specs[2])},
    }


def _study_grouping(tmp_path):
    specs = [
        patient("A", 1, StudyInstanceUID="1.2.3.10", SeriesInstanceUID="1.2.3.10.1"),
        patient("B", 2, StudyInstanceUID="1.2.3.10", SeriesInstanceUID="1.2.3.10.2"),
        patient("C", 3, StudyInstanceUID="1.2.3.20", SeriesInstanceUID="1.2.3.20.1"),
    ]
    paths = [write(tmp_path / f"s{i}.dcm", e) for i, e in enumerate(specs)]
    expected = {
        "1.2.3.10": {"1.2.3.10.1": plain(specs[0]), "1.2.3.10.2": plain(specs[1])},
        "1.2.3.20": {"1.2.3.20.1": plain(specs[2])},
    }
    return paths, specs, expected


def test_r3_config_as_dict(tmp_path):
    """R3: config= a dict with ids.entity / ids.item."""
    paths, _, expected = _study_grouping(tmp_path)
    config = {"ids": {"entity": "StudyInstanceUID", "item": "SeriesInstanceUID"}, "skip": ["PixelData"]}
    assert get_identifiers(paths, config=config) == expected


@pytest.mark.parametrize("as_pathlike", [False, True])
def test_r3_config_as_json_file_path(tmp_path, as_pathlike):
    """R3: config= a path to a JSON file with the packaged config.json's keys."""
    paths, _, expected = _study_grouping(tmp_path)
    cfg = tmp_path / "my-config.json"
    cfg.write_text(json.dumps({"ids": {"entity": "StudyInstanceUID", "item": "SeriesInstanceUID"},
                               "skip": ["PixelData"]}))
    arg = cfg if as_pathlike else str(cfg)
    assert get_identifiers(paths, config=arg) == expected


def test_r3_config_replaces_skip_keeps_ids(three):
    """R3: config replaces the defaults key by key: a config with only "skip" keeps the
    default ids (PatientID / SOPInstanceUID)."""
    paths, specs = three
    ids = get_identifiers(paths, config={"skip": ["PatientName"]})
    expected_a1 = plain({k: v for k, v in specs[0].items() if k != "PatientName"})
    assert list(ids) == ["A", "B"]
    assert ids["A"][specs[0]["SOPInstanceUID"]] == expected_a1


def test_r3_config_ids_subkey_by_subkey(tmp_path):
    """README: {"ids": {"item": "StudyInstanceUID"}} keeps PatientID as the entity."""
    paths, specs, _ = _study_grouping(tmp_path)
    ids = get_identifiers(paths, config={"ids": {"item": "StudyInstanceUID"}})
    assert ids == {
        "A": {"1.2.3.10": plain(specs[0])},
        "B": {"1.2.3.10": plain(specs[1])},
        "C": {"1.2.3.20": plain(specs[2])},
    }


def test_r3_entity_item_arguments_override_config(tmp_path):
    """R3: entity_id / item_id override the config's ids."""
    paths, specs, _ = _study_grouping(tmp_path)
    config = {"ids": {"entity": "StudyInstanceUID", "item": "SeriesInstanceUID"}}
    ids = get_identifiers(paths, config=config, entity_id="PatientName", item_id="SOPInstanceUID")
    assert ids == {f"Name^{e['PatientID']}": {e["SOPInstanceUID"]: plain(e)} for e in specs}


def test_r3_skip_fields_adds_to_config_skip(three):
    """R3: skip_fields adds to the config's skip list (both are left out)."""
    paths, specs = three
    ids = get_identifiers(paths, config={"skip": ["PatientName"]}, skip_fields=["PatientSex"])
    fields = ids["A"][specs[1]["SOPInstanceUID"]]
    assert "PatientName" not in fields and "PatientSex" not in fields
    assert fields == plain({k: v for k, v in specs[1].items() if k not in ("PatientName", "PatientSex")})
    # and without config the default skip list is kept alongside skip_fields
    ids = get_identifiers(paths, skip_fields=["PatientSex"])
    assert ids["A"][specs[1]["SOPInstanceUID"]] == plain({k: v for k, v in specs[1].items() if k != "PatientSex"})


def test_r3_item_looked_up_in_file_meta(tmp_path):
    """R3: entity/item are looked up in the top level, then in the file meta:
    item_id="MediaStorageSOPInstanceUID" (not reported without include_file_meta)."""
    e = patient("M", 1)
    path = write(tmp_path / "m.dcm", e)
    # pydicom's writer copies SOPInstanceUID into the file meta: patch the meta's copy
    data = pathlib.Path(path).read_bytes()
    tag = b"\x02\x00\x03\x00UI"
    at = data.index(tag + struct.pack("<H", 28) + e["SOPInstanceUID"].encode())
    data = data[:at] + data[at:].replace(e["SOPInstanceUID"].encode(), b"1.2.826.0.1.3680043.8.498.7", 1)
    pathlib.Path(path).write_bytes(data)
    assert pydicom.dcmread(path).file_meta.MediaStorageSOPInstanceUID == "1.2.826.0.1.3680043.8.498.7"
    ids = get_identifiers(path, item_id="MediaStorageSOPInstanceUID")
    assert ids == {"M": {"1.2.826.0.1.3680043.8.498.7": plain(e)}}
    ids = get_identifiers(path, entity_id="TransferSyntaxUID")
    assert ids == {ExplicitVRLittleEndian: {e["SOPInstanceUID"]: plain(e)}}


def test_r3_item_looked_up_in_file_meta_of_dataset(tmp_path):
    """R3 + R1: the file meta of a Dataset input serves the lookup too."""
    e = patient("M", 1)
    ds = build(e, meta={"MediaStorageSOPInstanceUID": "1.2.826.0.1.3680043.8.498.556"})
    ids = get_identifiers(ds, item_id="MediaStorageSOPInstanceUID")
    assert ids == {"M": {"1.2.826.0.1.3680043.8.498.556": plain(e)}}


def test_r3_lookup_ignores_skip_fields(three):
    """R3: entity and item are found whatever skip_fields says; the fields still skip them."""
    paths, specs = three
    ids = get_identifiers(paths, skip_fields=["PatientID", "SOPInstanceUID"])
    assert list(ids) == ["A", "B"]
    assert list(ids["A"]) == [specs[0]["SOPInstanceUID"], specs[1]["SOPInstanceUID"]]
    fields = ids["B"][specs[2]["SOPInstanceUID"]]
    assert fields == plain({k: v for k, v in specs[2].items() if k not in ("PatientID", "SOPInstanceUID")})


def test_r3_lookup_only_top_level_not_sequences(tmp_path, caplog):
    """R3: the lookup is in the data set's top level (then file meta), not inside sequences."""
    e = patient("Q", 1)
    inner = Dataset()
    inner.CodeValue = "NESTED"
    e["ConceptNameCodeSequence"] = [inner]
    path = write(tmp_path / "q.dcm", e)
    caplog.set_level(logging.WARNING, logger="deid_fast")
    assert get_identifiers(path, entity_id="CodeValue") == {}
    assert any("q.dcm" in r.getMessage() for r in warnings_of(caplog))


@pytest.mark.parametrize(
    "missing",
    [
        {"drop": "PatientID"},
        {"set": ("PatientID", "")},
        {"drop": "SOPInstanceUID"},
        {"set": ("SOPInstanceUID", "")},
    ],
    ids=["entity-absent", "entity-empty", "item-absent", "item-empty"],
)
def test_r3_absent_or_empty_entity_or_item_left_out_with_warning(tmp_path, caplog, missing):
    """R3: a file whose entity or item is absent or empty is left out with a WARNING naming
    the file; the other files are returned."""
    good = [patient("G", 1), patient("G", 2)]
    bad = patient("G", 3)
    if "drop" in missing:
        del bad[missing["drop"]]
    else:
        bad[missing["set"][0]] = missing["set"][1]
    p0 = write(tmp_path / "good0.dcm", good[0])
    pbad = write(tmp_path / "lacking.dcm", bad)
    p1 = write(tmp_path / "good1.dcm", good[1])
    caplog.set_level(logging.WARNING, logger="deid_fast")
    ids = get_identifiers([p0, pbad, p1])
    assert ids == {"G": {good[0]["SOPInstanceUID"]: plain(good[0]), good[1]["SOPInstanceUID"]: plain(good[1])}}
    msgs = [r.getMessage() for r in warnings_of(caplog)]
    assert any("lacking.dcm" in m for m in msgs), msgs
    assert not any("good0.dcm" in m or "good1.dcm" in m for m in msgs)
    # errors="raise" is about invalid files, not grouping: still a warning, no exception
    caplog.clear()
    assert get_identifiers([p0, pbad, p1], errors="raise") == ids
    assert any("lacking.dcm" in m.getMessage() for m in warnings_of(caplog))


def test_r3_dataset_without_entity_named_in_warning(caplog):
    """R3 + README: a Dataset input without filename is named `<Dataset #N>` in the warning."""
    e = patient("D", 1)
    del e["PatientID"]
    ds = Dataset()
    for k, v in e.items():
        setattr(ds, k, v)
    caplog.set_level(logging.WARNING, logger="deid_fast")
    assert get_identifiers([ds]) == {}
    assert any("<Dataset #" in r.getMessage() for r in warnings_of(caplog))


def test_r3_dataset_with_filename_named_by_it(tmp_path, caplog):
    """R3 + README: a Dataset input that has a filename is named by it in the warning."""
    e = patient("D", 2)
    del e["PatientID"]
    path = write(tmp_path / "read-from-disk.dcm", e)
    ds = pydicom.dcmread(path)
    caplog.set_level(logging.WARNING, logger="deid_fast")
    assert get_identifiers([ds]) == {}
    assert any("read-from-disk.dcm" in r.getMessage() for r in warnings_of(caplog))


def test_r3_duplicate_entity_item_later_wins_with_warning(tmp_path, caplog):
    """R3: two files with the same (entity, item): the later in input order wins, WARNING."""
    first = patient("DUP", 1, PatientName="First^One")
    second = patient("DUP", 1, PatientName="Second^Two")
    other = patient("DUP", 2)
    p1 = write(tmp_path / "first.dcm", first)
    p2 = write(tmp_path / "other.dcm", other)
    p3 = write(tmp_path / "second.dcm", second)
    caplog.set_level(logging.WARNING, logger="deid_fast")
    ids = get_identifiers([p1, p2, p3])
    assert set(ids["DUP"]) == {first["SOPInstanceUID"], other["SOPInstanceUID"]}
    assert ids["DUP"][first["SOPInstanceUID"]] == plain(second)
    assert warnings_of(caplog), "no WARNING for a duplicate (entity, item)"
    # and the other order: the later one (now `first`) wins
    caplog.clear()
    ids = get_identifiers([p3, p1])
    assert ids["DUP"][first["SOPInstanceUID"]] == plain(first)
    assert warnings_of(caplog)


def test_r3_no_warning_without_duplicates(three, caplog):
    """R3: the duplicate WARNING is not raised for distinct (entity, item) pairs."""
    caplog.set_level(logging.WARNING, logger="deid_fast")
    get_identifiers(three[0])
    assert warnings_of(caplog) == []


def test_r3_multi_value_entity_joined_with_backslash(tmp_path):
    """R3: entity/item are str() of the R6 value; a multi-value joins its items' str()
    with a backslash (DS items are floats, so "0.50" gives "0.5")."""
    e = patient("MV", 1, ImageType=["ORIGINAL", "PRIMARY", "AXIAL"], PixelSpacing=["0.50", "2"], Rows=512)
    path = write(tmp_path / "mv.dcm", e)
    ids = get_identifiers(path, entity_id="ImageType", item_id="PixelSpacing")
    entity = "ORIGINAL\\PRIMARY\\AXIAL"
    item = "\\".join(str(float(v)) for v in ["0.50", "2"])
    assert list(ids) == [entity]
    assert list(ids[entity]) == [item]
    ids = get_identifiers(path, entity_id="Rows")
    assert list(ids) == [str(512)]


def test_r3_unknown_keyword_in_item_raises_value_error(three):
    """R3: an unknown item_id keyword raises ValueError (not InvalidDicomError)."""
    with pytest.raises(ValueError) as info:
        get_identifiers(three[0], item_id="NotAKeyword")
    assert not isinstance(info.value, pydicom.errors.InvalidDicomError)


@pytest.mark.parametrize("value", ["ignore", "Warn", "", None, 1])
def test_readme_errors_argument_validated(tmp_path, value):
    """README: errors= other than "warn" or "raise" is a ValueError before any file is read."""
    missing = str(tmp_path / "missing.dcm")
    with pytest.raises(ValueError) as info:
        get_identifiers([missing], errors=value)
    assert not isinstance(info.value, pydicom.errors.InvalidDicomError)


def test_r3_packaged_config_json_holds_the_defaults():
    """R3: the defaults live in a packaged config.json with keys ids (entity, item) and skip."""
    path = os.path.join(os.path.dirname(deid_fast.__file__), "config.json")
    with open(path) as f:
        config = json.load(f)
    assert config["ids"] == {"entity": "PatientID", "item": "SOPInstanceUID"}
    assert config["skip"] == ["PixelData"]


# -- R4 skip_fields ---------------------------------------------------------------------------


def _with_other_ids(tmp_path):
    items = []
    for pid, issuer in (("OTHER-1", "HOSP-A"), ("OTHER-2", None)):
        it = Dataset()
        it.PatientID = pid
        if issuer:
            it.IssuerOfPatientID = issuer
        items.append(it)
    e = patient("S", 1, OtherPatientIDsSequence=items)
    return write(tmp_path / "seq.dcm", e), e


def test_r4_skip_keyword_at_any_depth(tmp_path):
    """R4: a skip_fields keyword matches the element's own keyword at any depth."""
    path, e = _with_other_ids(tmp_path)
    full = get_fields(path)
    assert full["OtherPatientIDsSequence_0_PatientID"] == "OTHER-1"
    fields = get_fields(path, skip_fields=["PatientID"])
    assert not any(k == "PatientID" or k.endswith("_PatientID") for k in fields)
    assert fields["OtherPatientIDsSequence_0_IssuerOfPatientID"] == "HOSP-A"
    assert fields == {k: v for k, v in full.items() if k != "PatientID" and not k.endswith("_PatientID")}
    unexpanded = get_fields(path, skip_fields=["PatientID"], expand_sequences=False)
    assert unexpanded["OtherPatientIDsSequence"] == [{"IssuerOfPatientID": "HOSP-A"}, {}]


def test_r4_skip_sequence_skips_all_it_holds(tmp_path):
    """R4: skipping a sequence skips everything inside it."""
    path, e = _with_other_ids(tmp_path)
    for expand in (True, False):
        fields = get_fields(path, skip_fields=["OtherPatientIDsSequence"], expand_sequences=expand)
        assert not any(k.startswith("OtherPatientIDsSequence") for k in fields)
        assert fields == plain({k: v for k, v in e.items() if k != "OtherPatientIDsSequence"})


def test_r4_skip_fields_in_get_identifiers(tmp_path):
    """R4 via get_identifiers: skip_fields applies inside sequences of grouped files too."""
    path, e = _with_other_ids(tmp_path)
    fields = get_identifiers(path, skip_fields=["IssuerOfPatientID"])["S"][e["SOPInstanceUID"]]
    assert "OtherPatientIDsSequence_0_IssuerOfPatientID" not in fields
    assert fields["OtherPatientIDsSequence_1_PatientID"] == "OTHER-2"


def test_r4_skip_fields_private_tag_and_file_meta(tmp_path):
    """R4 + README: skip_fields entries match a private element by its printed tag, and
    apply to file meta elements too."""
    e = patient("PV", 1)
    ds = build(e)
    block = ds.private_block(0x0019, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "private secret")
    block.add_new(0x02, "LO", "kept")
    path = tmp_path / "private.dcm"
    ds.save_as(path, enforce_file_format=True)
    path = str(path)
    assert not any(k.startswith("(") for k in get_fields(path))
    fields = get_fields(path, include_private=True)
    assert fields["(0019,0010)"] == "ACME 1.0"
    assert fields["(0019,1001)"] == "private secret"
    assert fields["(0019,1002)"] == "kept"
    skipped = get_fields(path, include_private=True, skip_fields=["(0019,1001)"])
    assert skipped == {k: v for k, v in fields.items() if k != "(0019,1001)"}
    meta = get_fields(path, include_file_meta=True)
    assert "ImplementationVersionName" in meta
    meta_skipped = get_fields(path, include_file_meta=True, skip_fields=["ImplementationVersionName"])
    assert meta_skipped == {k: v for k, v in meta.items() if k != "ImplementationVersionName"}


# -- R7 sequences -----------------------------------------------------------------------------


def _coded(value, scheme="DCM"):
    it = Dataset()
    it.CodeValue = value
    it.CodingSchemeDesignator = scheme
    return it


def _sequences_file(tmp_path):
    """One single-item sequence, one three-item sequence whose middle item is empty for
    the report, and one nested two-level sequence."""
    req0 = Dataset()
    req0.ScheduledProcedureStepID = "STEP0"
    req0.ScheduledProtocolCodeSequence = [_coded("P1"), _coded("P2")]
    req1 = Dataset()
    req1.ScheduledProcedureStepID = "STEP1"
    req1.ScheduledProtocolCodeSequence = [_coded("P3")]
    empty = Dataset()
    empty.PatientComments = ""  # present but empty: nothing reportable
    e = patient(
        "R7", 1,
        ConceptNameCodeSequence=[_coded("C1", "SRT")],
        OtherPatientIDsSequence=[_single("PatientID", "X0"), empty, _single("PatientID", "X2")],
        RequestAttributesSequence=[req0, req1],
    )
    return write(tmp_path / "r7.dcm", e)


def _single(keyword, value):
    ds = Dataset()
    setattr(ds, keyword, value)
    return ds


def test_r7_single_item_sequence_key_has_no_index(tmp_path):
    """R7: S_K for an element K in the only item of sequence S; S itself is no key."""
    fields = get_fields(_sequences_file(tmp_path))
    assert fields["ConceptNameCodeSequence_CodeValue"] == "C1"
    assert fields["ConceptNameCodeSequence_CodingSchemeDesignator"] == "SRT"
    assert "ConceptNameCodeSequence" not in fields
    assert "ConceptNameCodeSequence_0_CodeValue" not in fields


def test_r7_multi_item_sequence_indices_and_empty_item(tmp_path):
    """R7 + README: more than one item inserts the index S_i_K; an item with nothing
    reportable adds no keys and the other indices stay."""
    fields = get_fields(_sequences_file(tmp_path))
    assert fields["OtherPatientIDsSequence_0_PatientID"] == "X0"
    assert fields["OtherPatientIDsSequence_2_PatientID"] == "X2"
    assert not any(k.startswith("OtherPatientIDsSequence_1") for k in fields)
    assert "OtherPatientIDsSequence_PatientID" not in fields


def test_r7_nested_sequences_recursive_keys(tmp_path):
    """R7: S_i_T_j_K, recursively, an index only where that sequence has several items."""
    fields = get_fields(_sequences_file(tmp_path))
    # in element order: ScheduledProtocolCodeSequence (0040,0008) comes before
    # ScheduledProcedureStepID (0040,0009) in each item
    expected = {
        "RequestAttributesSequence_0_ScheduledProtocolCodeSequence_0_CodeValue": "P1",
        "RequestAttributesSequence_0_ScheduledProtocolCodeSequence_0_CodingSchemeDesignator": "DCM",
        "RequestAttributesSequence_0_ScheduledProtocolCodeSequence_1_CodeValue": "P2",
        "RequestAttributesSequence_0_ScheduledProtocolCodeSequence_1_CodingSchemeDesignator": "DCM",
        "RequestAttributesSequence_0_ScheduledProcedureStepID": "STEP0",
        "RequestAttributesSequence_1_ScheduledProtocolCodeSequence_CodeValue": "P3",
        "RequestAttributesSequence_1_ScheduledProtocolCodeSequence_CodingSchemeDesignator": "DCM",
        "RequestAttributesSequence_1_ScheduledProcedureStepID": "STEP1",
    }
    assert tag_for_keyword("ScheduledProtocolCodeSequence") < tag_for_keyword("ScheduledProcedureStepID")
    got = {k: v for k, v in fields.items() if k.startswith("RequestAttributesSequence")}
    assert got == expected
    assert list(got) == list(expected)  # element order within each item


@pytest.mark.parametrize("delimiter", ["__", "-", "."])
def test_r7_delimiter_replaces_every_underscore_of_the_rule(tmp_path, delimiter):
    """R7: delimiter replaces every joining `_` (deid's `__` gives S__0__K); keywords keep
    their own spelling."""
    path = _sequences_file(tmp_path)
    default = get_fields(path)
    fields = get_fields(path, delimiter=delimiter)
    assert fields["ConceptNameCodeSequence" + delimiter + "CodeValue"] == "C1"
    assert fields[delimiter.join(["OtherPatientIDsSequence", "2", "PatientID"])] == "X2"
    key = delimiter.join(["RequestAttributesSequence", "0", "ScheduledProtocolCodeSequence", "1", "CodeValue"])
    assert fields[key] == "P2"
    assert list(fields.values()) == list(default.values())
    assert len(fields) == len(default)
    if "_" not in delimiter:
        assert not any("_" in k for k in fields)


def test_r7_delimiter_in_get_identifiers(tmp_path):
    """R7: get_identifiers passes delimiter on."""
    path = _sequences_file(tmp_path)
    ids = get_identifiers(path, delimiter="__")
    fields = ids["R7"]["1.2.826.0.1.3680043.8.498.1"]
    assert fields["OtherPatientIDsSequence__0__PatientID"] == "X0"


def test_r7_expand_sequences_false_lists_of_dicts(tmp_path):
    """R7: expand_sequences=False keeps a sequence under its keyword as a list of dicts,
    one per item ({} for an item with nothing reportable), built by the same rules."""
    fields = get_fields(_sequences_file(tmp_path), expand_sequences=False)
    assert fields["ConceptNameCodeSequence"] == [{"CodeValue": "C1", "CodingSchemeDesignator": "SRT"}]
    assert fields["OtherPatientIDsSequence"] == [{"PatientID": "X0"}, {}, {"PatientID": "X2"}]
    assert fields["RequestAttributesSequence"] == [
        {"ScheduledProtocolCodeSequence": [{"CodeValue": "P1", "CodingSchemeDesignator": "DCM"},
                                           {"CodeValue": "P2", "CodingSchemeDesignator": "DCM"}],
         "ScheduledProcedureStepID": "STEP0"},
        {"ScheduledProtocolCodeSequence": [{"CodeValue": "P3", "CodingSchemeDesignator": "DCM"}],
         "ScheduledProcedureStepID": "STEP1"},
    ]
    assert [list(d) for d in fields["RequestAttributesSequence"]] == [
        ["ScheduledProtocolCodeSequence", "ScheduledProcedureStepID"]] * 2
    assert not any("_" in k for k in fields)


def test_r4_r7_empty_sequence_left_out(tmp_path):
    """R5/R7: a sequence with no items is empty: no key, expanded or not."""
    e = patient("E", 1, OtherPatientIDsSequence=[])
    path = write(tmp_path / "emptyseq.dcm", e)
    for expand in (True, False):
        fields = get_fields(path, expand_sequences=expand)
        assert not any(k.startswith("OtherPatientIDsSequence") for k in fields)


# -- R2 file meta -----------------------------------------------------------------------------


def test_r2_include_file_meta_first_by_keyword(three):
    """R2 + README: include_file_meta=True reports group 0002 first, by keyword, the group
    length included."""
    paths, specs = three
    meta = pydicom.dcmread(paths[0]).file_meta
    fields = get_fields(paths[0], include_file_meta=True)
    meta_keys = [el.keyword for el in meta]
    assert list(fields)[: len(meta_keys)] == meta_keys
    assert "FileMetaInformationGroupLength" in meta_keys
    assert fields["MediaStorageSOPInstanceUID"] == specs[0]["SOPInstanceUID"]
    assert type(fields["MediaStorageSOPInstanceUID"]) is str
    assert {k: v for k, v in fields.items() if k not in meta_keys} == get_fields(paths[0])


# -- R9 logging -------------------------------------------------------------------------------


def _odd_file(tmp_path):
    """Explicit VR LE file with values pydicom warns about: IS "1.5", IS "x7", DS "abc"."""
    body = b"".join([
        rawdicom.element(0x00080016, "UI", SC),
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.42"),
        rawdicom.element(0x00100020, "LO", "ODD"),
        rawdicom.element(0x00200011, "IS", "1.5"),
        rawdicom.element(0x00200013, "IS", "x7"),
        rawdicom.element(0x00280030, "DS", "abc\\1"),
    ])
    path = tmp_path / "odd.dcm"
    path.write_bytes(rawdicom.dicom_file(body, sop_instance="1.2.826.0.1.3680043.8.498.42"))
    return str(path)


def _pydicom_value(v):
    """R6 in miniature for the odd file's three values, as pydicom reads them."""
    if isinstance(v, (list, pydicom.multival.MultiValue)):
        return [_pydicom_value(x) for x in v]
    if isinstance(v, float):
        return float(v)
    if isinstance(v, int):
        return int(v)
    return str(v)


def test_r9_pydicom_warnings_do_not_surface_as_python_warnings(tmp_path, caplog):
    """R9: pydicom's warnings about odd values (invalid IS/DS) never reach the user as Python
    warnings; they are logged at DEBUG on logger deid_fast (or a child)."""
    path = _odd_file(tmp_path)
    with warnings.catch_warnings(record=True) as pyd:
        warnings.simplefilter("always")
        ref = pydicom.dcmread(path)
        expected = {k: _pydicom_value(ref[k].value) for k in ("SeriesNumber", "InstanceNumber", "PixelSpacing")}
    assert pyd, "test input does not make pydicom warn"
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fields = get_fields(path)
        ids = get_identifiers([path])
    assert [str(w.message) for w in rec] == []
    for k, v in expected.items():
        assert fields[k] == v
    assert type(fields["InstanceNumber"]) is str
    assert type(fields["SeriesNumber"]) is float
    assert ids == {"ODD": {"1.2.826.0.1.3680043.8.498.42": fields}}
    debug = [r.getMessage() for r in caplog.records
             if r.name.startswith("deid_fast") and r.levelno == logging.DEBUG]
    assert any("x7" in m or "1.5" in m or "abc" in m for m in debug), debug


def test_r9_pydicom_warnings_not_logged_above_debug(tmp_path, caplog):
    """R9: pydicom's warnings about odd values are logged at DEBUG, so nothing at WARNING or
    above is emitted for a file that is read fine (from deid_fast or pydicom's logger)."""
    path = _odd_file(tmp_path)
    caplog.set_level(logging.DEBUG)
    get_identifiers([path])
    loud = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def test_r9_pydicom_warnings_from_dataset_input_silenced(tmp_path):
    """R9: a Dataset input read lazily by pydicom converts values on access; those warnings
    do not surface either."""
    path = _odd_file(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)  # values stay raw until accessed
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fields = get_fields(ds)
    assert [str(w.message) for w in rec] == []
    assert fields["InstanceNumber"] == "x7"


def test_r9_logger_is_standard_and_named_deid_fast(three, caplog):
    """R9: records go through logging, logger named deid_fast (or children)."""
    caplog.set_level(logging.DEBUG)
    get_identifiers(three[0])
    ours = [r for r in caplog.records if r.name == "deid_fast" or r.name.startswith("deid_fast.")]
    assert ours


# -- get_files --------------------------------------------------------------------------------


def _tree(tmp_path):
    """root/1.dcm, root/2.dcm, root/a/x.dcm, root/a/z/y.dcm, root/b/w.dcm, root/notes.txt;
    at every level the files sort before the folders, so every sorted walk agrees."""
    root = tmp_path / "tree"
    made = {}
    for rel, n in (("b/w.dcm", 5), ("a/z/y.dcm", 4), ("2.dcm", 2), ("a/x.dcm", 3), ("1.dcm", 1)):
        made[rel] = write(root / rel, patient("T", n))
    (root / "0notes.txt").write_text("these are not DICOM\n")
    order = ["1.dcm", "2.dcm", "a/x.dcm", "a/z/y.dcm", "b/w.dcm"]
    return root, [made[r] for r in order]


def test_getfiles_single_file(three):
    """SPEC §1 get_files: a file yields itself, as a str path."""
    paths, _ = three
    got = list(get_files(paths[0]))
    assert got == [paths[0]]
    got = list(get_files(pathlib.Path(paths[0])))
    assert len(got) == 1 and type(got[0]) is str and os.path.samefile(got[0], paths[0])


def test_getfiles_folder_recursive_sorted_check_filters(tmp_path):
    """SPEC §1 get_files: folders walked recursively in sorted order; check=True keeps only
    DICOM (the text file is dropped)."""
    root, order = _tree(tmp_path)
    got = list(get_files(str(root)))
    assert all(type(p) is str for p in got)
    assert [os.path.realpath(p) for p in got] == [os.path.realpath(p) for p in order]


def test_getfiles_check_false_keeps_everything(tmp_path):
    """SPEC §1 get_files: check=False yields every file of the walk, non-DICOM too."""
    root, order = _tree(tmp_path)
    got = [os.path.realpath(p) for p in get_files(str(root), check=False)]
    assert os.path.realpath(root / "0notes.txt") in got
    assert [p for p in got if p.endswith(".dcm")] == [os.path.realpath(p) for p in order]
    assert len(got) == len(order) + 1


def test_getfiles_check_drop_logged_at_info(tmp_path, caplog):
    """README: get_files(check=True) logs each file it drops, with the reason, at INFO."""
    root, _ = _tree(tmp_path)
    caplog.set_level(logging.DEBUG, logger="deid_fast")
    list(get_files(str(root)))
    info = [r.getMessage() for r in caplog.records
            if r.name.startswith("deid_fast") and r.levelno == logging.INFO]
    assert any("0notes.txt" in m for m in info), info


def test_getfiles_list_of_files_and_folders_in_given_order(tmp_path):
    """SPEC §1/README get_files: a list of files and folders, in the order given."""
    root, order = _tree(tmp_path)
    lone = write(tmp_path / "lone.dcm", patient("L", 9))
    got = [os.path.realpath(p) for p in get_files([lone, str(root / "a"), order[0]])]
    assert got == [os.path.realpath(p) for p in (lone, order[2], order[3], order[0])]


def test_getfiles_pattern_matches_file_name(tmp_path):
    """SPEC §1 get_files: pattern is an fnmatch pattern on the file name (not the path)."""
    root, order = _tree(tmp_path)
    got = [os.path.realpath(p) for p in get_files(str(root), pattern="[xy].dcm")]
    assert got == [os.path.realpath(order[2]), os.path.realpath(order[3])]
    # "a*" would match the folder a/ in a path; on names it matches nothing here
    assert list(get_files(str(root), pattern="a*")) == []
    got = [os.path.basename(p) for p in get_files(str(root), pattern="*.txt", check=False)]
    assert got == ["0notes.txt"]


def _no_preamble_file(tmp_path) -> str:
    """Implicit VR little endian data set with no preamble, no DICM, no file meta."""
    body = b"".join([
        rawdicom.element(0x00080016, "UI", SC, explicit=False),
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.77", explicit=False),
        rawdicom.element(0x00080060, "CS", "OT", explicit=False),
        rawdicom.element(0x00100020, "LO", "NOPRE", explicit=False),
    ])
    path = tmp_path / "nopreamble.dcm"
    path.write_bytes(body)
    return str(path)


def test_getfiles_force_false_rejects_file_without_preamble(tmp_path):
    """SPEC §1/§3 get_files: check=True with force=False (the default) drops a file without
    preamble and DICM; force=True keeps it."""
    nopre = _no_preamble_file(tmp_path)
    good = write(tmp_path / "good.dcm", patient("G", 1))
    assert list(get_files([nopre, good])) == [good]
    assert list(get_files([nopre, good], force=False)) == [good]
    assert list(get_files([nopre, good], force=True)) == [nopre, good]


def test_getfiles_is_lazy_generator(tmp_path):
    """SPEC §1 get_files: yields paths (an iterator, not a materialised list)."""
    root, _ = _tree(tmp_path)
    it = get_files(str(root))
    assert iter(it) is it
    assert next(it)


# -- get_dataset ------------------------------------------------------------------------------


def test_get_dataset_cookies_folder_exists():
    """SPEC §1 get_dataset: "dicom-cookies" names an existing folder of .dcm files."""
    base = get_dataset("dicom-cookies")
    assert os.path.isdir(base)
    assert any(n.endswith(".dcm") for n in os.listdir(base))


def test_get_dataset_unknown_name_value_error_says_install():
    """SPEC §1 get_dataset: an unknown name raises ValueError that says what to install."""
    with pytest.raises(ValueError) as info:
        get_dataset("no-such-dataset-name")
    msg = str(info.value)
    assert "no-such-dataset-name" in msg
    assert "install" in msg and "deid" in msg


def test_get_dataset_missing_package_value_error_says_install(tmp_path):
    """SPEC §1 get_dataset: without the deid-data package, ValueError saying what to install
    (simulated in a child process where deid_data cannot be imported)."""
    home = os.path.dirname(os.path.dirname(os.path.abspath(deid_fast.__file__)))
    code = (
        "import sys\n"
        f"sys.path.insert(0, {home!r})\n"
        "sys.modules['deid_data'] = None\n"
        "sys.modules['deid_data.data'] = None\n"
        "from deid_fast import get_dataset\n"
        "try:\n"
        "    get_dataset('dicom-cookies')\n"
        "except ValueError as e:\n"
        "    print('VALUEERROR', e)\n"
        "else:\n"
        "    print('NOERROR')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("VALUEERROR"), out.stdout + out.stderr
    assert "install" in out.stdout and "deid-data" in out.stdout.replace("deid_data", "deid-data")


# -- get_fields and errors ------------------------------------------------------------------


def test_get_fields_bad_file_raises_invalid_dicom_error(tmp_path):
    """SPEC §1 get_fields: a bad file always raises InvalidDicomError (get_fields has no
    errors= to soften it)."""
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"this is not a DICOM file at all, only words\n" * 5)
    with pytest.raises(InvalidDicomError) as info:
        get_fields(str(bad))
    assert str(bad) in str(info.value)
    assert isinstance(info.value, pydicom.errors.InvalidDicomError)


def test_get_fields_equals_get_identifiers_item(three):
    """SPEC §1 get_fields: the {field: value} dict of one file by the same rules, no grouping."""
    paths, specs = three
    ids = get_identifiers(paths)
    for p, e in zip(paths, specs):
        assert get_fields(p) == ids[e["PatientID"]][e["SOPInstanceUID"]]


def test_checked_options_are_reused_only_for_the_same_options(three):
    """get_fields caches its checked options per distinct set: a later call with an equal but
    invalid value (True for 1), or with a list changed since, is checked and read afresh."""
    path = three[0][0]
    assert get_fields(path, max_depth=1) == get_fields(path, max_depth=1)
    with pytest.raises(ValueError, match="max_depth"):
        get_fields(path, max_depth=True)
    skip = ["PatientName"]
    assert "PatientName" not in get_fields(path, skip_fields=skip)
    skip[0] = "PatientID"
    fields = get_fields(path, skip_fields=skip)
    assert "PatientName" in fields and "PatientID" not in fields
