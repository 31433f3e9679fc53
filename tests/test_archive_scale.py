"""The archive-scale issue: the Parquet dataset's parts agree however the run was cut into
chunks and parts, a worker that dies costs only its file, the 990,000-item sequence is written
(long, not wide), the resume set spills to disk, and no run leaves its chunk files behind.

The command line runs in this process (`cli.main`), so that its sizes can be made small; its
workers are forked, so they see the same settings."""
from __future__ import annotations

import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import rawdicom  # noqa: E402
from corpus import shipped_files  # noqa: E402
from test_table import same  # noqa: E402

from deid_fast import bulk, cli, get_fields, parquet, resume  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The shipped files in a few folders, a file that is not DICOM among them."""
    root = tmp_path_factory.mktemp("tree")
    for number, path in enumerate(shipped_files()):
        target = root / f"g{number % 3}" / f"{number:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    (root / "g1" / "notes.txt").write_text("not DICOM")
    return root


def get(*args):
    assert cli.main(["get", *map(str, args), "-q", "--no-progress"]) == 0


def rows(out):
    return pq.read_table(out).to_pylist()


def assert_one_schema(out):
    """Every part has the dataset's schema (_common_metadata), and nothing else is there."""
    schema = pq.read_schema(out / "_common_metadata")
    names = sorted(os.listdir(out))
    assert names[0] == "_common_metadata" and all(
        name.startswith("part-") and name.endswith(".parquet") for name in names[1:])
    assert all(pq.read_schema(out / name).equals(schema) for name in names[1:])
    return names[1:]


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory):
    """The table of a run with the default sizes."""
    out = tmp_path_factory.mktemp("reference") / "ids.parquet"
    get(tree, "-o", out, "--workers", "2")
    return rows(out)


def test_parts_written_before_a_column_was_seen_get_it(tree, reference, tmp_path, monkeypatch):
    """Chunks of 8 files: the first parts are written before the run has seen most of its
    keywords. At the end they are rewritten with those columns null, so every part has the
    one schema, and the table is the one of a run in one part."""
    monkeypatch.setattr(parquet, "CHUNK_FILES", 8)
    rewritten = []
    finish = parquet.DatasetWriter.finish

    def spy(self, workers=None):
        finish(self, workers)
        rewritten.append(self.rewritten)
    monkeypatch.setattr(parquet.DatasetWriter, "finish", spy)
    out = tmp_path / "ids.parquet"
    get(tree, "-o", out, "--workers", "2")
    parts = assert_one_schema(out)
    assert len(parts) > 20 and rewritten[0] > 0
    assert same(rows(out), reference)


def test_a_chunk_of_large_headers_is_several_parts_in_input_order(tree, reference, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(parquet, "PART_BYTES", 50_000)
    out = tmp_path / "ids.parquet"
    get(tree, "-o", out, "--workers", "2")
    parts = assert_one_schema(out)
    assert len({name[:13] for name in parts}) < len(parts)      # chunks of several parts
    assert same(rows(out), reference)


def test_a_worker_that_dies_costs_only_its_file(tree, reference, tmp_path, monkeypatch):
    """A file that kills its worker twice is a row of kind worker-died; the other files of its
    chunk are read again; no temporary file of the dead worker is left in the dataset."""
    victim = str(sorted(tree.glob("g0/*.dcm"))[5])
    real = bulk.read_record

    def crash_on_victim(source, name, job, flush):
        if name == victim:
            faulthandler.disable()
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(source, name, job, flush)

    monkeypatch.setattr(bulk, "read_record", crash_on_victim)
    monkeypatch.setattr(parquet, "CHUNK_FILES", 16)   # several chunks: read in the workers
    out = tmp_path / "ids.parquet"
    get(tree, "-o", out, "--workers", "2")
    assert_one_schema(out)
    got = rows(out)
    assert [row["path"] for row in got] == [row["path"] for row in reference]
    for row, want in zip(got, reference):
        if row["path"] == victim:
            assert row["skipped"] == "worker-died" and "SIGSEGV" in row["reason"]
            assert all(value is None for key, value in row.items()
                       if key not in ("path", "skipped", "reason"))
        else:
            assert same(row, want), row["path"]


def test_the_990000_item_sequence_is_one_long_cell(tmp_path):
    """The file that ended every Parquet run: a valid 990,000-item sequence. Its sequence is one
    cell of JSON text; the table stays as narrow as its keywords; resume works after it."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_long.dcm").write_bytes(rawdicom.long_sequence(990_000))
    shutil.copy(shipped_files()[0], folder / "b_other.dcm")
    out = tmp_path / "ids.parquet"
    done = subprocess.run([str(SCRIPT), "get", str(folder), "-o", str(out), "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    data = pq.read_table(out)
    keywords = {key for path in sorted(folder.iterdir())
                for key in get_fields(path, expand_sequences=False)}
    assert data.num_rows == 2 and data.num_columns == 7 + len(keywords)   # not one per item
    items = json.loads(data.column(rawdicom.LONG_SEQUENCE_KEYWORD)[0].as_py())
    assert len(items) == 990_000
    assert items[-1] == {rawdicom.LONG_ITEM_KEYWORD: rawdicom.long_sequence_uid(989_999)}
    (folder / "c_new.dcm").write_bytes(rawdicom.long_sequence(3))
    done = subprocess.run([str(SCRIPT), "get", str(folder), "-o", str(out), "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(out, columns=["path"]).column(0).to_pylist() == [
        str(folder / name) for name in ("a_long.dcm", "b_other.dcm", "c_new.dcm")]


def test_resume_with_more_done_files_than_fit_in_memory(tree, tmp_path, monkeypatch):
    """The paths already written are kept on disk past a bound; resume still reads each
    remaining file once, and the output is a whole run's."""
    monkeypatch.setattr(resume, "IN_MEMORY", 10)
    full, out = tmp_path / "full.jsonl", tmp_path / "ids.jsonl"
    get(tree, "-o", full)
    lines = full.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "ids.jsonl.partial"
    partial.write_bytes(b"".join(lines[:100]) + lines[100][:20])    # killed mid-line
    shutil.copy(tmp_path / "full.jsonl.deid-fast.json", tmp_path / "ids.jsonl.deid-fast.json")
    spilled = []
    spill = resume.DonePaths._spill

    def spy(self):
        spill(self)
        spilled.append(True)
    monkeypatch.setattr(resume.DonePaths, "_spill", spy)
    get(tree, "-o", out, "--resume")
    assert spilled and out.read_bytes() == full.read_bytes()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "dicom-json"])
def test_no_chunk_file_is_left_next_to_the_output(tree, tmp_path, fmt):
    out = tmp_path / f"ids.{fmt}"
    get(tree / "g0", "-o", out, "--format", fmt, "--workers", "2")
    sidecar = [out.name + ".deid-fast.json"] if fmt in ("jsonl", "parquet") else []
    assert sorted(os.listdir(tmp_path)) == sorted([out.name] + sidecar)
