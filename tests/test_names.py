"""Fields named by keyword, tag number or path (issue 14, point 2), in the API and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import deid_data
import pytest

import deid_fast
from deid_fast.names import field_name, path_steps, split_option

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helper modules beside this file
from corpus import shipped_files  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")
COOKIE = str(Path(deid_data.__file__).parent / "data" / "dicom-cookies" / "image1.dcm")


@pytest.mark.parametrize("text", ["PatientName", "(0010,0010)", "0010,0010", "00100010",
                                  "(0010,0010) ", "00100010".lower()])
def test_every_form_of_a_public_tag_names_its_keyword(text):
    assert field_name(text) == "PatientName"


@pytest.mark.parametrize("text", ["(0009,0010)", "0009,0010", "00090010", "(0009,0010)".lower()])
def test_a_private_tag_names_its_key(text):
    assert field_name(text) == "(0009,0010)"


@pytest.mark.parametrize("text,hint", [("PatientNme", "PatientName"), ("StudyDat", "StudyDate"),
                                       ("(0009,10)", None), ("zzz", None)])
def test_an_unknown_name_is_refused_with_a_close_match(text, hint):
    with pytest.raises(ValueError) as info:
        field_name(text)
    assert repr(text) in str(info.value)
    assert (f"did you mean {hint}?" in str(info.value)) if hint else "did you mean" not in str(info.value)


def test_a_tag_without_a_keyword_is_refused():
    with pytest.raises(ValueError, match="no keyword"):
        field_name("00100011")


@pytest.mark.parametrize("values,names", [
    (["PatientID,PatientName"], ["PatientID", "PatientName"]),
    (["0010,0010"], ["0010,0010"]),
    (["(0009,0010)"], ["(0009,0010)"]),
    (["PatientID,0010,0010,(0009,1001)"], ["PatientID", "0010,0010", "(0009,1001)"]),
    (["0010,0010,0020,000D"], ["0010,0010", "0020,000D"]),
    (["A", "B,C", ""], ["A", "B", "C"]),
])
def test_comma_lists_split_only_where_no_tag_is_meant(values, names):
    assert split_option(values) == names


def test_paths():
    assert path_steps("ReferencedSeriesSequence[1].(0008,1155)") == [
        ("ReferencedSeriesSequence", 1), ("ReferencedSOPInstanceUID", None)]
    assert path_steps("0008,1115.SeriesInstanceUID") == [
        ("ReferencedSeriesSequence", None), ("SeriesInstanceUID", None)]
    for bad in ("A..B", "PatientName[x]", "PatientName."):
        with pytest.raises(ValueError):
            path_steps(bad)


def test_the_api_takes_tags_wherever_it_takes_keywords():
    by_keyword = deid_fast.get_fields(COOKIE, fields=["PatientName", "SOPInstanceUID"])
    assert deid_fast.get_fields(COOKIE, fields=["0010,0010", "(0008,0018)"]) == by_keyword
    assert len(by_keyword) == 2
    everything = deid_fast.get_fields(COOKIE)
    skipped = deid_fast.get_fields(COOKIE, skip_fields=["00100010"])
    assert "PatientName" in everything and skipped == {
        key: value for key, value in everything.items() if key != "PatientName"}
    ids = deid_fast.get_identifiers([COOKIE], fields=["(0010,0010)"], skip_fields="0008,0018")
    (entity, items), = ids.items()
    (fields,) = items.values()
    assert set(fields) == {"PatientName", "PatientID"}
    with pytest.raises(ValueError, match="did you mean PatientName"):
        deid_fast.get_fields(COOKIE, skip_fields=["PatientNme"])


def run(*args, status=0):
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == status, done.stderr[-2000:]
    return done


def test_the_cli_takes_tags_repeated_options_and_comma_lists(tmp_path):
    out = tmp_path / "o.jsonl"
    run("get", COOKIE, "-o", out, "--fields", "0010,0010", "--fields", "(0008,0020),StudyTime",
        "--skip", "00080018", "-q")
    fields = json.loads(out.read_text())["fields"]
    assert set(fields) == {"PatientName", "StudyDate", "StudyTime", "PatientID"}
    done = run("get", COOKIE, "-o", tmp_path / "x.jsonl", "--fields", "PatientNme", status=2)
    assert "did you mean PatientName?" in done.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_a_repeating_groups_keyword_is_a_name():
    assert field_name("OverlayData") == "OverlayData"
    assert field_name("60003000") == "OverlayData"


RTPLAN = next(path for path in shipped_files() if path.endswith("/rtplan.dcm"))


def test_fields_paths_narrow_a_sequence():
    """fields= (and --fields) take paths: the top-level sequence is read, and only what the
    path names is kept: an index picks that item, no index every item."""
    every = deid_fast.get_fields(RTPLAN, fields=["DoseReferenceSequence.DoseReferenceNumber",
                                                 "PatientID"])
    assert every == {"PatientID": "id00001", "DoseReferenceSequence_0_DoseReferenceNumber": 1,
                     "DoseReferenceSequence_1_DoseReferenceNumber": 2}
    one = deid_fast.get_fields(RTPLAN, fields=["DoseReferenceSequence[1].DoseReferenceNumber"])
    assert one == {"DoseReferenceSequence_1_DoseReferenceNumber": 2}
    nested = deid_fast.get_fields(RTPLAN, fields=["BeamSequence[0].ControlPointSequence[1]"
                                                  ".CumulativeMetersetWeight"], expand_sequences=False)
    assert nested == {"BeamSequence": [{"ControlPointSequence": [{}, {"CumulativeMetersetWeight": 1.0}]}]}
    whole = deid_fast.get_fields(RTPLAN, fields=["DoseReferenceSequence"])
    assert deid_fast.get_fields(RTPLAN, fields=["DoseReferenceSequence",
                                                "DoseReferenceSequence[1].DoseReferenceNumber"]) == whole
    full = deid_fast.get_fields(RTPLAN)
    assert all(full[key] == value for key, value in every.items())
    for delimiter in ("__", ".", "/"):
        picked = deid_fast.get_fields(RTPLAN, delimiter=delimiter,
                                      fields=["DoseReferenceSequence[0].DoseReferenceNumber"])
        assert picked == {f"DoseReferenceSequence{delimiter}0{delimiter}DoseReferenceNumber": 1}


def test_cli_fields_paths(tmp_path):
    out = tmp_path / "o.jsonl"
    run("get", RTPLAN, "-o", out, "--fields", "DoseReferenceSequence[1].DoseReferenceNumber", "-q")
    fields = json.loads(out.read_text())["fields"]
    assert fields["DoseReferenceSequence_1_DoseReferenceNumber"] == 2
    assert not any(key.startswith("DoseReferenceSequence_0") for key in fields)
