"""The bulk issue's command line and outputs, run as a user runs them (a subprocess of the
installed `deid-fast` script): every format against get_identifiers / iter_identifiers on the
same files, resume after a killed run, exit statuses, check, progress."""
from __future__ import annotations

import base64
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydicom import dcmread

sys.path.insert(0, os.path.dirname(__file__))
from compare import assert_same  # noqa: E402
from corpus import shipped_files  # noqa: E402

from deid_fast import get_files, get_identifiers  # noqa: E402
from deid_fast.bulk import iter_identifiers  # noqa: E402
from deid_fast.dicom import DEFAULT_MAX_DEPTH  # noqa: E402

csv.field_size_limit(sys.maxsize)  # cells hold whole values: OverlayData is large
SCRIPT = Path(sys.executable).with_name("deid-fast")
COLUMNS = ["path", "entity", "item", "skipped", "reason"]


def run(*args, check_status=0, timeout=600, **kwargs):
    assert SCRIPT.exists(), f"the console script is not installed at {SCRIPT}"
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if check_status is not None:
        assert done.returncode == check_status, (done.returncode, done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Shipped files in nested folders, with files that are not DICOM among them."""
    root = tmp_path_factory.mktemp("tree")
    for number, path in enumerate(shipped_files()):
        target = root / f"group{number % 5}" / f"sub{number % 3}" / f"{number:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (root / "group1" / "notes.txt").write_text("not DICOM")
    (root / "group2" / "empty.dcm").write_bytes(b"")
    return root


def b64(value):
    """The JSON form of an R6 value: bytes as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [b64(item) for item in value]
    if isinstance(value, dict):
        return {key: b64(item) for key, item in value.items()}
    return value


def jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_help_is_there_for_a_new_user():
    for args in (["--help"], ["get", "--help"], ["check", "--help"]):
        out = run(*args).stdout
        assert "usage: deid-fast" in out
    out = run("get", "--help").stdout
    for option in ("--entity-id", "--item-id", "--no-expand-sequences", "--include-private",
                   "--include-file-meta", "--delimiter", "--skip", "--fields", "--errors",
                   "--workers", "--resume", "--progress", "--format", "parquet", "dicom-json"):
        assert option in out


def test_jsonl_is_one_record_per_file(tree, tmp_path):
    out = tmp_path / "ids.jsonl"
    done = run("get", tree, "-o", out, "--workers", "2")
    expected = list(iter_identifiers(tree, workers=1))
    lines = jsonl(out)
    assert [line["path"] for line in lines] == [record.path for record in expected]
    for line, record in zip(lines, expected):
        want = {"path": record.path, "entity": record.entity, "item": record.item,
                "skipped": record.skipped, "reason": record.reason, "fields": b64(record.fields)}
        assert_same(line, want, record.path)
    bad = sum(1 for record in expected if record.skipped and not record.skipped.startswith("no-"))
    assert f"{len(expected):,} files, {len(expected) - bad:,} read" in done.stderr
    assert f"{bad:,} not DICOM" in done.stderr
    assert not list(tmp_path.glob("*.partial"))


def test_json_is_get_identifiers(tree, tmp_path):
    out = tmp_path / "ids.json"
    run("get", tree, "-o", out, "--workers", "2", "--entity-id", "PatientName",
        "--no-expand-sequences")
    expected = get_identifiers(str(tree), entity_id="PatientName", expand_sequences=False)
    with open(out, encoding="utf-8") as handle:
        assert_same(json.load(handle), b64(expected), "json")


def test_options_reach_the_reader(tree, tmp_path):
    out = tmp_path / "ids.jsonl"
    run("get", tree, "-o", out, "--include-private", "--include-file-meta", "--delimiter", "__",
        "--skip", "PatientName", "--skip", "ReferencedImageSequence", "--item-id",
        "StudyInstanceUID", "--config", Path(__file__).with_name("cli_config.json"))
    expected = list(iter_identifiers(tree, workers=1, include_private=True,
                                     include_file_meta=True, delimiter="__",
                                     skip_fields=["PatientName", "ReferencedImageSequence"],
                                     item_id="StudyInstanceUID",
                                     config=Path(__file__).with_name("cli_config.json")))
    assert_same([line["fields"] for line in jsonl(out)],
                [b64(record.fields) for record in expected], "fields")
    assert any("(0019,1" in key for line in jsonl(out) for key in (line["fields"] or {}))

    run("get", tree, "-o", out, "--fields", "PatientID, StudyDate", "--errors", "warn")
    for line in jsonl(out):
        assert set(line["fields"] or {}) <= {"PatientID", "StudyDate", "SOPInstanceUID"}


def csv_cell(value):
    """A cell as the README says: text a spreadsheet would run as a formula, or text that
    starts with a quote, gets a leading quote; numbers and lists of numbers do not."""
    text = _cell(value)
    numbers = (value if isinstance(value, list) else [value])
    if not all(isinstance(item, (int, float)) for item in numbers) and text[:1] in (
            "=", "+", "-", "@", "\t", "\r", "'"):
        return "'" + text
    return text


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return json.dumps(b64(value), ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, list):
        return "\\".join(_cell(item) for item in value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


@pytest.mark.parametrize("expand", [True, False])
def test_csv_has_a_column_per_field_key_of_the_run(tree, tmp_path, expand):
    out = tmp_path / "ids.csv"
    run("get", tree, "-o", out, *([] if expand else ["--no-expand-sequences"]))
    expected = list(iter_identifiers(tree, workers=1, expand_sequences=expand))
    keys = list(dict.fromkeys(key for record in expected for key in (record.fields or {})))
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == COLUMNS + keys
    assert len(rows) == len(expected) + 1
    for row, record in zip(rows[1:], expected):
        fields = record.fields or {}
        want = [csv_cell(value) for value in record[:3]] + [
            csv_cell(record.skipped), csv_cell(record.reason)] + [
            csv_cell(fields.get(key)) for key in keys]
        assert row == want, record.path
    assert len(pd.read_csv(out, low_memory=False)) == len(expected)


def read_parts(out):
    """The dataset folder `out`, read the way each reader reads a folder of parts."""
    import duckdb
    import polars as pl
    glob = str(out / "*.parquet")
    return {"pyarrow": pq.read_table(out), "pandas": pd.read_parquet(out),
            "polars": pl.read_parquet(glob), "duckdb": duckdb.sql(f"SELECT * FROM '{glob}'")}


def table_rows(records):
    """The rows the table should hold for `records` (read with expand_sequences=False), by
    the README's rules (test_table's independent implementation)."""
    from test_table import DICTIONARY, b64, cell, fits
    rows = []
    for record in records:
        row = dict(zip(COLUMNS, [record.path, record.entity, record.item, record.skipped,
                                 record.reason]))
        as_read, private = {}, {}
        for key, value in (record.fields or {}).items():
            if key.startswith("("):
                private[key] = b64(value)
            elif fits(value, *DICTIONARY[key]):
                row[key] = cell(value, *DICTIONARY[key])
            else:
                as_read[key] = b64(value)
        rows.append((row, as_read, private))
    return rows


def assert_table_holds(data, records):
    """`data` (an Arrow table) holds exactly the rows of `records`, typed by the dictionary."""
    from test_table import DICTIONARY, b64, expected_type, same

    from deid_fast.jsontext import loads
    expected = table_rows(records)
    keywords = {key for row, _a, _p in expected for key in row if key not in COLUMNS}
    assert data.column_names[:5] == COLUMNS
    assert data.column_names[-2:] == ["values_as_read", "private"]
    assert set(data.column_names[5:-2]) == keywords       # one column per keyword present
    for name in data.column_names[5:-2]:
        assert data.schema.field(name).type == expected_type(*DICTIONARY[name]), name
    assert data.num_rows == len(expected)
    for got, (want, as_read, private) in zip(data.to_pylist(), expected):
        for name, value in want.items():
            if DICTIONARY.get(name, ("",))[0] == "SQ":
                assert same(loads(got[name]), b64(value)), (want["path"], name)
            else:
                assert same(got[name], value), (want["path"], name, got[name], value)
        assert all(got[name] is None for name in data.column_names[5:-2] if name not in want)
        for column, texts in (("values_as_read", as_read), ("private", private)):
            assert same({key: loads(text) for key, text in (got[column] or [])}, texts), \
                (want["path"], column)


def test_parquet_is_a_dataset_every_reader_reads_as_one_typed_table(tree, tmp_path):
    """A folder of parts with one schema (the dictionary's types), read as one table by
    pyarrow, pandas, polars and duckdb; every value in its typed column or, when it does not
    fit, in values_as_read; one row per file in input order."""
    out = tmp_path / "ids.parquet"
    run("get", tree, "-o", out, "--workers", "2", "--include-private")
    records = list(iter_identifiers(tree, workers=1, expand_sequences=False,
                                    include_private=True))
    assert out.is_dir() and not (tmp_path / "ids.parquet.partial").exists()
    parts = sorted(out.glob("*.parquet"))
    schema = pq.read_schema(out / "_common_metadata")
    assert parts and all(pq.read_schema(part).equals(schema) for part in parts)
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    readers = read_parts(out)
    assert_table_holds(readers["pyarrow"], records)
    assert list(readers["pandas"]["path"]) == [record.path for record in records]
    polars_frame = readers["polars"]
    assert polars_frame.columns == readers["pyarrow"].column_names
    assert str(polars_frame.schema["Rows"]) == "Int64"
    assert str(polars_frame.schema["PixelSpacing"]) == "List(Float64)"
    assert polars_frame["path"].to_list() == [record.path for record in records]
    duck = readers["duckdb"]
    assert duck.columns == readers["pyarrow"].column_names
    assert dict(zip(duck.columns, map(str, duck.types)))["Rows"] == "BIGINT"
    assert duck.aggregate("count(*)").fetchall()[0][0] == len(records)


def test_parquet_single_file_and_standard_output_hold_the_same_table(tree, tmp_path):
    dataset, single = tmp_path / "ids.parquet", tmp_path / "one.parquet"
    run("get", tree / "group0", "-o", dataset)
    run("get", tree / "group0", "-o", single, "--single-file")
    binary = subprocess.run([str(SCRIPT), "get", str(tree / "group0"), "-o", "-", "--format",
                             "parquet"], capture_output=True, timeout=600, check=True)
    assert single.is_file()
    expected = pq.read_table(dataset)
    assert pq.read_table(single).equals(expected)
    assert pq.read_table(pa.BufferReader(binary.stdout)).equals(expected)


def test_flat_jsonl_is_the_table_as_polars_and_duckdb_read_it(tree, tmp_path):
    """--flat: one key per field, typed as the table; polars and duckdb read typed columns
    without JSON functions; a float JSON cannot hold (NaN) goes to values_as_read."""
    import duckdb
    import polars as pl
    out = tmp_path / "ids.jsonl"
    run("get", tree, "-o", out, "--flat", "--workers", "2")
    records = list(iter_identifiers(tree, workers=1, expand_sequences=False))
    lines = jsonl(out)
    assert [line["path"] for line in lines] == [record.path for record in records]
    dataset = tmp_path / "ids.parquet"
    run("get", tree, "-o", dataset)
    for line, row in zip(lines, pq.read_table(dataset).to_pylist()):
        for key, value in line.items():
            if key in ("values_as_read", "private"):
                continue
            if isinstance(row[key], bytes):
                assert value == base64.b64encode(row[key]).decode("ascii")
            else:
                assert value == row[key], (line["path"], key)
        typed = {key for key, value in row.items() if value is not None and
                 key not in ("values_as_read", "private")}
        moved = typed - set(line)       # typed in Parquet, not in the flat line: NaN and inf
        for key in moved:
            values = row[key] if isinstance(row[key], list) else [row[key]]
            assert any(not math.isfinite(value) for value in values), (line["path"], key)
        assert moved <= set(line.get("values_as_read", {}))
    frame = pl.read_ndjson(out, infer_schema_length=None)
    assert str(frame.schema["Rows"]) == "Int64" and str(frame.schema["PatientID"]) == "String"
    assert str(frame.schema["PixelSpacing"]) == "List(Float64)"
    described = duckdb.sql(f"DESCRIBE SELECT * FROM read_json_auto('{out}')").fetchall()
    types = {name: kind for name, kind, *_rest in described}
    assert types["Rows"] == "BIGINT" and types["PixelSpacing"] == "DOUBLE[]"


def reference_dicom_json(path, skip=("PixelData",)):
    """pydicom's to_json_dict of the elements get_fields reports, filtered independently."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.dataset import Dataset

    def keep(dataset):
        kept = Dataset()
        names = set()
        for element in dataset:
            tag = element.tag
            if tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
                break
            name = keyword_for_tag(tag) if not tag.is_private and tag.element else ""
            if not name or name in skip or name in names:
                continue
            if element.VR == "SQ":
                if not element.value:
                    continue
                element.value = [keep(item) for item in element.value]
            elif element.value in (None, "", b"") or (
                    isinstance(element.value, (list, tuple)) and len(element.value) == 0):
                continue
            names.add(name)
            kept.add(element)
        return kept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # pydicom's notes on odd values
        document = keep(dcmread(path, force=True, stop_before_pixels=True)).to_json_dict()
    return json.loads(json.dumps(document))  # as it reads back: UID and PersonName are str


def test_dicom_json_is_pydicoms_for_the_same_elements(tree, tmp_path):
    """One DICOM JSON object per file read, in input order, equal to pydicom's to_json_dict of
    the elements get_fields reports; a file pydicom cannot write as DICOM JSON is skipped."""
    out = tmp_path / "ids.djson"
    done = run("get", tree, "-o", out, "--format", "dicom-json", "--workers", "2")
    expected, unwritable = [], []
    for record in iter_identifiers(tree, workers=1):
        if record.skipped is None or record.skipped.startswith("no-"):
            try:
                expected.append(reference_dicom_json(record.path))
            except ValueError:         # e.g. an IS of "1A": DICOM JSON needs a number
                unwritable.append(record.path)
    lines = jsonl(out)
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected):
        assert_same(line, want, "dicom-json")
    assert unwritable and all(f"{path}: pydicom cannot write it as DICOM JSON" in done.stderr
                              for path in unwritable)


def test_standard_output(tree):
    done = run("get", tree / "group0", "-o", "-")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["path"] for line in lines] == list(get_files(tree / "group0", check=False))
    done = run("get", tree / "group0", "-o", "-", "--format", "csv")
    assert next(csv.reader(done.stdout.splitlines()))[:5] == COLUMNS
    binary = subprocess.run([str(SCRIPT), "get", str(tree / "group0"), "-o", "-", "--format",
                             "parquet"], capture_output=True, timeout=600, check=True)
    data = pq.read_table(pa.BufferReader(binary.stdout))
    assert data.column("path").to_pylist() == [line["path"] for line in lines]


def test_exit_statuses(tree, tmp_path):
    assert run("get", tree, check_status=2).returncode == 2                    # no -o
    done = run("get", tree, "-o", tmp_path / "x.jsonl", "--entity-id", "NotAKeyword",
               check_status=2)
    assert "NotAKeyword" in done.stderr
    done = run("get", tree, "-o", tmp_path / "x.unknown", check_status=2)
    assert "--format" in done.stderr
    done = run("get", tree, "-o", tmp_path / "x.csv", "--resume", check_status=2)
    assert "--resume" in done.stderr
    done = run("get", tree, "-o", tmp_path / "x.jsonl", "--workers", "0", check_status=2)
    done = run("get", tree, "-o", tmp_path / "x.jsonl", "--errors", "raise", check_status=1)
    first_bad = next(r for r in iter_identifiers(tree, workers=1)
                     if r.skipped and not r.skipped.startswith("no-"))
    assert first_bad.path in done.stderr
    assert not (tmp_path / "x.jsonl").exists()   # a run that stopped leaves no output file
    done = run("get", tmp_path / "does-not-exist", "-o", tmp_path / "y.jsonl", check_status=2)
    assert "does not exist" in done.stderr and not (tmp_path / "y.jsonl").exists()


def test_check_lists_what_is_and_is_not_dicom(tree):
    done = run("check", tree, "--workers", "2")
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    valid = set(get_files(tree, check=True, force=True))   # what `get` reads (no --no-force)
    assert [row[1] for row in rows] == list(get_files(tree, check=False))
    for row in rows:
        assert (row[0] == "dicom") == (row[1] in valid), row
        assert (len(row) == 3) == (row[0] != "dicom")
    assert "not DICOM" in done.stderr


def test_progress_bar_only_when_asked_or_on_a_terminal(tree, tmp_path):
    shown = run("get", tree, "-o", tmp_path / "a.jsonl", "--progress")
    assert " files [" in shown.stderr and " files/s]" in shown.stderr    # tqdm's bar
    hidden = run("get", tree, "-o", tmp_path / "b.jsonl")
    assert " files [" not in hidden.stderr
    assert hidden.stderr.strip().splitlines()[-1].startswith("deid-fast: ")


# --- resume ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """About 12,000 files (hard links of the shipped ones), enough for a run to be killed."""
    root = tmp_path_factory.mktemp("many")
    files = [path for path in shipped_files() if os.path.getsize(path) < 2_000_000]
    for copy in range(12_000 // len(files) + 1):
        folder = root / f"{copy:03d}"
        folder.mkdir()
        for number, path in enumerate(files):
            os.link(path, folder / f"{number:04d}.dcm")
    return root


def kill_when(process, ready, timeout=120):
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start(*args):
    return subprocess.Popen([str(SCRIPT), *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def test_jsonl_resume_after_a_killed_run(many, tmp_path):
    out = tmp_path / "ids.jsonl"
    partial = tmp_path / "ids.jsonl.partial"
    process = start("get", many, "-o", out, "--workers", "2")
    kill_when(process, lambda: partial.exists() and partial.stat().st_size > 200_000)
    assert not out.exists()                       # never a half-written file under its name
    before = partial.read_bytes()
    done = run("get", many, "-o", out, "--workers", "2", "--resume")
    assert "done before" in done.stderr
    full = tmp_path / "full.jsonl"
    run("get", many, "-o", full, "--workers", "2")
    assert out.read_bytes() == full.read_bytes()  # each file once, in input order
    assert before.split(b"\n")[0] == full.read_bytes().split(b"\n")[0]


def test_parquet_resume_after_a_killed_run(many, tmp_path):
    out = tmp_path / "ids.parquet"
    parts = tmp_path / "ids.parquet.partial"
    process = start("get", many, "-o", out, "--workers", "2")
    kill_when(process, lambda: parts.exists() and len(list(parts.glob("*.parquet"))) > 2)
    assert not out.exists()
    assert all(part.suffix == ".parquet" or part.suffix == ".tmp" for part in parts.iterdir())
    chunks = sorted({int(part.name[5:13]) for part in parts.glob("*.parquet")})
    assert chunks == list(range(len(chunks)))     # the complete parts are a prefix of the run
    for part in parts.glob("*.parquet"):
        pq.read_table(part)                       # every complete part is whole
    run("get", many, "-o", out, "--workers", "2", "--resume")
    full = tmp_path / "full.parquet"
    run("get", many, "-o", full, "--workers", "2")
    resumed, expected = pd.read_parquet(out), pd.read_parquet(full)
    assert len(resumed) == len(expected) == resumed["path"].nunique()
    pd.testing.assert_frame_equal(resumed, expected)   # each file once, in input order


def test_interrupted_run_exits_130_and_resumes(many, tmp_path):
    """Ctrl-C: the workers stop, what was read is kept (the Parquet rows in memory are written
    as a part), exit status 130, and --resume finishes the run."""
    out = tmp_path / "ids.parquet"
    parts = tmp_path / "ids.parquet.partial"
    process = subprocess.Popen([str(SCRIPT), "get", str(many), "-o", str(out), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               # Ctrl-C as a terminal gives it (a test runner may ignore it)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (parts.exists() and any(parts.glob("*.parquet"))):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and not out.exists()
    kept = sum(pq.read_metadata(part).num_rows for part in parts.glob("*.parquet"))
    assert kept > 0
    done = run("get", many, "-o", out, "--workers", "2", "--resume")
    assert f"({kept:,} done before)" in done.stderr
    assert pd.read_parquet(out, columns=["path"])["path"].tolist() == list(
        get_files(many, check=False))


def test_resume_of_a_finished_run_reads_only_new_files(tree, tmp_path):
    folder = tmp_path / "grows"
    shutil.copytree(tree / "group0", folder)
    out = tmp_path / "ids.jsonl"
    run("get", folder, "-o", out)
    first = jsonl(out)
    shutil.copy(next(Path(tree / "group1").rglob("*.dcm")), folder / "zzz-new.dcm")
    done = run("get", folder, "-o", out, "--resume")
    lines = jsonl(out)
    assert lines[:len(first)] == first
    assert [line["path"] for line in lines[len(first):]] == [str(folder / "zzz-new.dcm")]
    assert "1 files" in done.stderr


def test_max_depth_option_default_matches_the_api():
    assert f"default {DEFAULT_MAX_DEPTH}" in run("get", "--help").stdout
