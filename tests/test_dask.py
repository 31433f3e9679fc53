"""The Dask issue, on a real cluster (a LocalCluster of 2 worker processes): the cluster's
results are the local ones, a worker killed mid-run loses and duplicates nothing, bad files are
reported, and deid-fast get --scheduler writes what a local run writes."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

sys.path.insert(0, os.path.dirname(__file__))
from compare import assert_same  # noqa: E402
from test_table import same  # noqa: E402
from corpus import shipped_files  # noqa: E402
from generate import generate_all  # noqa: E402

import deid_fast  # noqa: E402
from deid_fast import dask as on_dask  # noqa: E402
from deid_fast import table  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Every shipped and generated file, with files that are not DICOM among them."""
    generated = generate_all(tmp_path_factory.mktemp("generated"))
    bad = tmp_path_factory.mktemp("bad")
    (bad / "text.dcm").write_text("not DICOM")
    (bad / "empty.dcm").write_bytes(b"")
    files = shipped_files() + sorted(generated.values())
    files.insert(5, str(bad / "text.dcm"))
    files.insert(60, str(bad / "empty.dcm"))
    files.append(str(bad / "missing.dcm"))
    return files


def test_get_identifiers_on_the_cluster_is_the_local_result(client, mixed):
    local = deid_fast.get_identifiers(mixed)
    for chunk_files in (7, 256):
        assert_same(on_dask.get_identifiers(mixed, client=client, chunk_files=chunk_files),
                    local, f"chunks of {chunk_files}")
    options = {"expand_sequences": False, "include_private": True, "entity_id": "PatientName"}
    assert_same(on_dask.get_identifiers(mixed, client=client, chunk_files=16, **options),
                deid_fast.get_identifiers(mixed, **options), "options")


def test_errors_raise_on_the_cluster_names_the_first_bad_file(client, mixed):
    with pytest.raises(deid_fast.InvalidDicomError) as caught:
        on_dask.get_identifiers(mixed, client=client, chunk_files=16, errors="raise")
    assert caught.value.path == mixed[5] and caught.value.kind == "not-dicom"


def test_to_bag_holds_the_records_of_iter_identifiers(client, mixed):
    records = on_dask.to_bag(mixed, chunk_files=16).compute(scheduler=client)
    local = list(deid_fast.iter_identifiers(mixed, workers=1))
    assert_same([list(r) for r in records], [list(r) for r in local], "records")
    assert {r.skipped for r in records} >= {None, "not-dicom", "empty", "unreadable"}


def local_table(files, tmp_path, *options):
    """The Parquet table `deid-fast get` writes for `files` (a dataset folder, read whole)."""
    out = tmp_path / "local.parquet"
    listing = tmp_path / "files.txt"       # a list: its missing file is a row, as in the API
    listing.write_text("".join(f"{path}\n" for path in files))
    subprocess.run([str(SCRIPT), "get", f"@{listing}", "-o", str(out), "--overwrite", *options],
                   capture_output=True, timeout=600, check=True)
    return pq.read_table(out)


def test_to_dataframe_is_the_parquet_table(client, mixed, tmp_path):
    """One row per file in the Parquet output's layout, its columns known without reading
    (every keyword of the dictionary): the keywords the files have hold the Parquet table's
    values, the others are null."""
    frame = on_dask.to_dataframe(mixed, chunk_files=128)
    assert frame.npartitions == -(-len(mixed) // 128)
    assert list(frame.columns) == table.schema(table.COLUMNS).names
    local = local_table(mixed, tmp_path)
    # the columns the files have, and a sample of the thousands they do not (building all
    # 5,000 columns of every partition takes long, and the projection is tested below)
    absent = [name for name in frame.columns if name not in set(local.column_names)]
    wanted = local.column_names + random.Random(0).sample(absent, 200)
    computed = pa.Table.from_pandas(
        frame[wanted].compute(scheduler=client).reset_index(drop=True), preserve_index=False)
    assert computed.select(local.column_names).schema.equals(local.schema)
    assert same(computed.select(local.column_names).to_pylist(), local.to_pylist())
    for name in wanted[len(local.column_names):]:
        assert computed.column(name).null_count == len(mixed), name


def test_selected_columns_are_the_only_ones_built(mixed, monkeypatch):
    """Dask's column projection reaches the partitions: a selection builds only its columns."""
    built = []
    real = table.TableBuilder.table

    def spy(self, keywords=(), exactly=False):
        built.append(set(keywords))
        return real(self, keywords, exactly)

    monkeypatch.setattr(table.TableBuilder, "table", spy)
    frame = on_dask.to_dataframe(mixed, chunk_files=64)
    selected = frame[["path", "PatientID", "Rows"]].compute(scheduler="sync")
    assert built and all(keywords == {"PatientID", "Rows"} for keywords in built)
    expected = frame.compute(scheduler="sync")[["path", "PatientID", "Rows"]]
    pd.testing.assert_frame_equal(selected.reset_index(drop=True),
                                  expected.reset_index(drop=True))


def test_fields_selects_columns(client, mixed):
    frame = on_dask.to_dataframe(mixed, fields=["PatientName", "StudyDate"], chunk_files=64)
    assert list(frame.columns) == ["path", "entity", "item", "skipped", "reason", "StudyDate",
                                   "PatientName", "PatientID", "SOPInstanceUID"][:5] + \
        table.ordered(["StudyDate", "PatientName", "PatientID", "SOPInstanceUID"]) + \
        ["values_as_read", "private"]
    assert len(frame.compute(scheduler=client)) == len(mixed)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(client, mixed):
    """Dask runs the chunks of a dead worker again: the records are exactly the local ones."""
    files = mixed * 12
    local = [list(r) for r in deid_fast.iter_identifiers(files, workers=1)]
    futures = client.compute(on_dask.to_bag(files, chunk_files=8).to_delayed())
    while not any(future.done() for future in futures):
        time.sleep(0.005)
    assert not all(future.done() for future in futures), "finished before a kill could happen"
    before = client.run(os.getpid)
    os.kill(next(iter(before.values())), signal.SIGKILL)
    records = [record for part in client.gather(futures) for record in part]
    assert_same([list(r) for r in records], local, "records")
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(before.values())   # one was replaced


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    for number, path in enumerate(shipped_files()):
        target = root / f"g{number % 4}" / f"{number:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    (root / "g1" / "notes.txt").write_text("not DICOM")
    return root


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "dicom-json"])
def test_cli_on_a_scheduler_writes_what_a_local_run_writes(client, tree, tmp_path, fmt):
    address = client.scheduler.address
    on_cluster, local = tmp_path / f"cluster.{fmt}", tmp_path / f"local.{fmt}"
    done = subprocess.run([str(SCRIPT), "get", str(tree), "-o", str(on_cluster), "--format", fmt,
                           "--scheduler", address], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "WARNING: Skipping" in done.stderr and "notes.txt" in done.stderr
    subprocess.run([str(SCRIPT), "get", str(tree), "-o", str(local), "--format", fmt],
                   capture_output=True, timeout=600, check=True)
    if fmt == "parquet":      # the same parts, as one table
        assert sorted(os.listdir(on_cluster)) == sorted(os.listdir(local))
        assert pq.read_table(on_cluster).equals(pq.read_table(local))
        assert len(pd.read_parquet(on_cluster)) == len(list(deid_fast.get_files(tree, check=False)))
    else:
        assert on_cluster.read_bytes() == local.read_bytes()


def test_cli_reports_an_unreachable_scheduler(tmp_path):
    done = subprocess.run([str(SCRIPT), "get", str(tmp_path), "-o", str(tmp_path / "x.jsonl"),
                           "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "2"],
                          capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Dask scheduler" in done.stderr


def test_archives_on_the_cluster_are_the_local_result(client, tmp_path):
    """Members of a zip and of a tar.gz (whose members stay in one chunk) read by the workers."""
    import tarfile
    import zipfile
    cookies = sorted(Path(p) for p in shipped_files() if "dicom-cookies" in p)
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as made:
        for path in cookies:
            made.write(path, path.name)
    with tarfile.open(tmp_path / "c.tar.gz", "w:gz") as made:
        for path in cookies:
            made.add(path, path.name)
    sources = [str(tmp_path / "c.zip"), str(tmp_path / "c.tar.gz")]
    local = deid_fast.get_identifiers(sources)
    assert local and sum(len(items) for items in local.values()) == len(cookies)
    assert_same(on_dask.get_identifiers(sources, client=client, chunk_files=3), local, "archives")
    paths = [record.path for record in on_dask.to_bag(sources, chunk_files=3).compute()]
    assert paths == [f"{source}!/{path.name}" for source in sources for path in cookies]
