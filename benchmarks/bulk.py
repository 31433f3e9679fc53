"""Bulk benchmarks (the bulk and archive-scale issues): files/s and peak memory of each output
format of the command line, scaling with workers, memory at 20,000 / 200,000 / 1,000,000
files, the Parquet table's width, read-back in the readers analysts use, the 990,000-item
sequence, the JSON encoders, and Dask.

    .venv/bin/python benchmarks/bulk.py [--small 20000] [--big 200000] [--huge 1000000]
                                        [--skip-huge] [--repeats 3] [--only SECTION ...]

The trees are the `mixed` benchmark corpus (every shipped file deid_fast reads) plus the
1,500-item sequence file of `longseq`, hard-linked into nested folders `bulk-mix-N/dNNN/dNN/`
until there are N files, so that a million files cost only directory entries. Run it on an
otherwise idle machine: it uses every core. It prints markdown for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.append(str(BENCH_DIR.parent / "tests"))   # rawdicom; after corpus.py of benchmarks
import corpus  # noqa: E402

import deid_fast  # noqa: E402
from deid_fast import bulk  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")
OUT_DIR = corpus.CORPUS_DIR / "bulk-out"


def quiet():
    """Skipped files would log a WARNING each: not part of what is measured. (Importing
    distributed re-configures logging, so this is done again after it.)"""
    logging.disable(logging.WARNING)
    logging.getLogger("deid_fast").setLevel(logging.ERROR)


def sources() -> list[str]:
    return corpus.build_mixed() + [corpus.build_longseq((1500,))[1500]]


def build_tree(count: int) -> Path:
    """`count` files in nested folders, hard links of the mixed corpus and the 1,500-item
    sequence file (built once)."""
    root = corpus.CORPUS_DIR / f"bulk-mix-{count}"
    stamp = corpus.CORPUS_DIR / f"bulk-mix-{count}.complete"
    if stamp.exists():
        return root
    files = sources()
    for number in range(count):
        target = root / f"d{number // 10000:03d}" / f"d{number // 100 % 100:02d}" / \
            f"{number:07d}.dcm"
        if number % 100 == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(files[number % len(files)], target)
    stamp.touch()
    return root


def huge_sequence_file() -> Path:
    """A valid file with a 990,000-item sequence (within max_elements), built from bytes."""
    import rawdicom
    path = corpus.CORPUS_DIR / "longseq" / "referenced_990000.dcm"
    if not path.exists():
        path.write_bytes(rawdicom.long_sequence(990_000))
    return path


def warm(root: Path) -> None:
    for path in bulk.files(str(root)):
        with open(path, "rb") as handle:
            handle.read(65536)


class PeakMemory:
    """Samples the memory (PSS) of a process and all its descendants, every 100 ms (reading
    smaps_rollup costs CPU: more often, the sampler slows what it measures)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_parent = pid, 0, 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    @staticmethod
    def _pss(pid: int) -> int:
        """Proportional set size: pages a forked worker shares with the parent count once."""
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _tree(self) -> list[int]:
        found, stack = [], [self.pid]
        while stack:
            pid = stack.pop()
            found.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as handle:
                        stack.extend(int(child) for child in handle.read().split())
            except OSError:
                pass
        return found

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, sum(self._pss(pid) for pid in self._tree()))
            self.peak_parent = max(self.peak_parent, self._pss(self.pid))
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join()


def clear(out: Path) -> None:
    for stale in out.parent.glob(out.name + "*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()


def cli_run(paths, out: Path, fmt: str, workers: int, *extra) -> dict:
    """One `deid-fast get` run: seconds, CPU seconds of all processes, peak memory of the whole
    process tree and of the parent alone."""
    clear(out)
    started = time.perf_counter()
    before = os.times()
    process = subprocess.Popen([str(SCRIPT), "get", *map(str, paths), "-o", str(out),
                                "--format", fmt, "--workers", str(workers), "--quiet",
                                "--no-progress", *extra], stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    after = os.times()
    memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"deid-fast failed: {stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system -
                                                           before.children_system)
    return {"seconds": seconds, "cpu": cpu, "peak": memory.peak, "parent": memory.peak_parent,
            "summary": stderr.strip().splitlines()[-1]}


def mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


FORMATS = [("jsonl", ()), ("jsonl", ("--flat",)), ("parquet", ()), ("json", ())]
#: Run once each: their time is pydicom's DICOM JSON writer, or the parent's CSV merge.
SLOW_FORMATS = [("csv", ()), ("dicom-json", ())]


def section_formats(args, lines, cores):
    """files/s and memory of each format with 1 and every core's workers, in interleaved
    rounds (this machine's speed drifts: each round runs every case once)."""
    root = build_tree(args.small)
    warm(root)
    cases = [(fmt, extra, workers) for fmt, extra in FORMATS for workers in (1, cores)]
    runs = {case: [] for case in cases}
    for round_number in range(args.repeats):
        for case in cases + ([(fmt, extra, workers) for fmt, extra in SLOW_FORMATS
                              for workers in (1, cores)] if round_number == 0 else []):
            fmt, extra, workers = case
            runs.setdefault(case, []).append(
                cli_run([root], OUT_DIR / f"out.{fmt}", fmt, workers, *extra))
    lines += ["## Command line, per format", "",
              f"{args.small:,} files; median of {args.repeats} interleaved rounds (csv and "
              "dicom-json: one run); CPU is the "
              "user + system time of all processes; memory is the peak PSS of all processes "
              "(and of the parent alone), sampled every 0.1 s", "",
              "| format | workers | files/s | vs 1 worker | CPU s | peak memory | parent |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for fmt, extra in FORMATS + SLOW_FORMATS:
        base = None
        for workers in (1, cores):
            done = runs[fmt, extra, workers]
            seconds = statistics.median(run["seconds"] for run in done)
            rate = args.small / seconds
            base = base or rate
            name = fmt + (" " + " ".join(extra) if extra else "")
            lines.append(f"| {name} | {workers} | {rate:,.0f} | {rate / base:.2f}x | "
                         f"{statistics.median(run['cpu'] for run in done):.1f} | "
                         f"{mb(max(run['peak'] for run in done))} | "
                         f"{mb(max(run['parent'] for run in done))} |")
            print(lines[-1], flush=True)
    lines.append("")


def _spin(seconds_of_work):
    total = 0
    for number in range(int(seconds_of_work * 5_000_000)):
        total += number * number
    return total


def machine_run(processes: int) -> dict:
    """What this machine gives `processes` processes of pure Python arithmetic (no I/O, no
    shared data), for the same amount of work per process as one worker's share of a run."""
    import multiprocessing
    context = multiprocessing.get_context("fork")
    before = os.times()
    started = time.perf_counter()
    children = [context.Process(target=_spin, args=(4 / processes,)) for _ in range(processes)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    after = os.times()
    return {"seconds": time.perf_counter() - started,
            "cpu": after.children_user - before.children_user}


def section_scaling(args, lines, cores):
    """files/s of 1 worker and of every core's workers on the big tree, jsonl and parquet, in
    interleaved rounds: the fixed costs of a run (starting Python and pydicom, about a second)
    weigh little here, as in an archive. Each round also times the same arithmetic in 1 and
    `cores` processes: what this machine itself gives several processes, since its cores do
    not stay as fast when all are busy (a shared VM)."""
    root = build_tree(args.big)
    cases = [(fmt, workers) for fmt in ("jsonl", "parquet", "machine")
             for workers in (1, cores)]
    runs = {case: [] for case in cases}
    for _ in range(args.scaling_repeats):
        for fmt, workers in cases:
            runs[fmt, workers].append(
                machine_run(workers) if fmt == "machine" else
                cli_run([root], OUT_DIR / f"scaling.{fmt}", fmt, workers))
    lines += ["## Scaling at archive scale", "",
              f"{args.big:,} files; median of {args.scaling_repeats} interleaved rounds. "
              "`busy` is the CPU time of all processes over (workers x wall time): how much of "
              "the cores the run kept working. `machine` is the same Python arithmetic split "
              "over 1 and over every core's processes: the ratio this machine gives "
              "perfectly parallel work at that moment", "",
              "| run | workers | files/s | vs 1 worker | CPU s | busy | peak memory |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for fmt in ("jsonl", "parquet", "machine"):
        base = None
        for workers in (1, cores):
            done = runs[fmt, workers]
            seconds = statistics.median(run["seconds"] for run in done)
            cpu = statistics.median(run["cpu"] for run in done)
            rate = (args.big if fmt != "machine" else 1) / seconds
            base = base or rate
            memory = mb(max(run["peak"] for run in done)) if fmt != "machine" else ""
            lines.append(f"| {fmt} | {workers} | {rate:,.0f} | {rate / base:.2f}x | "
                         f"{cpu:.1f} | {cpu / (workers * seconds):.0%} | {memory} |")
            print(lines[-1], flush=True)
    lines.append("")


def section_scale(args, lines, cores):
    """Memory and files/s at 20,000 / 200,000 / 1,000,000 files, jsonl and parquet."""
    sizes = [args.small, args.big] + ([] if args.skip_huge else [args.huge])
    lines += ["## Memory at scale", "", f"{cores} workers, one run each", "",
              "| format | files | files/s | peak memory (all processes) | parent | output |",
              "|---|---:|---:|---:|---:|---:|"]
    for count in sizes:
        root = build_tree(count)
        for fmt in ("jsonl", "parquet"):
            out = OUT_DIR / f"scale.{fmt}"
            run = cli_run([root], out, fmt, cores)
            size = sum(path.stat().st_size for path in ([out] if out.is_file()
                                                        else out.iterdir()))
            lines.append(f"| {fmt} | {count:,} | {count / run['seconds']:,.0f} | "
                         f"{mb(run['peak'])} | {mb(run['parent'])} | {mb(size)} |")
            print(lines[-1], flush=True)
            if fmt == "parquet" and count == args.big:
                keep = OUT_DIR / "big.parquet"
                clear(keep)
                os.replace(out, keep)
            if fmt == "jsonl" and count == args.big:
                cli_run([root], OUT_DIR / "big-flat.jsonl", "jsonl", cores, "--flat")
    lines.append("")


def section_table(args, lines, cores):
    """The width of the table of every shipped file, and the parts that were rewritten."""
    import pyarrow.parquet as pq
    files = corpus.shipped_files()
    lines += ["## The table of every shipped file", ""]
    for extra in ((), ("--include-private", "--include-file-meta")):
        out = OUT_DIR / "shipped.parquet"
        cli_run(files, out, "parquet", cores, *extra)
        schema = pq.read_schema(out / "_common_metadata")
        parts = [name for name in os.listdir(out) if name.endswith(".parquet")]
        lines.append(f"- {len(files)} files{' ' + ' '.join(extra) if extra else ''}: "
                     f"**{len(schema)} columns** ({len(schema) - 7} keyword columns), "
                     f"{len(parts)} part(s)")
        print(lines[-1], flush=True)
    old = OUT_DIR / "big.parquet"
    if old.exists():
        schema = pq.read_schema(old / "_common_metadata")
        parts = sorted(name for name in os.listdir(old) if name.endswith(".parquet"))
        lines.append(f"- the {args.big:,}-file tree: {len(schema)} columns in {len(parts)} "
                     "parts, all with the same schema: "
                     f"{all(pq.read_schema(old / name).equals(schema) for name in parts)}")
    lines.append("")


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def section_readback(args, lines, cores):
    """The Parquet dataset and the flat JSONL of the big tree, read by each reader."""
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.parquet as pq
    dataset, flat = OUT_DIR / "big.parquet", OUT_DIR / "big-flat.jsonl"
    if not dataset.exists():
        root = build_tree(args.big)
        cli_run([root], dataset, "parquet", cores)
        cli_run([root], flat, "jsonl", cores, "--flat")
    glob = str(dataset / "*.parquet")
    rows = [
        ("pyarrow", "pq.read_table(folder)", lambda: pq.read_table(dataset).num_rows),
        ("pandas", "pd.read_parquet(folder)", lambda: len(pd.read_parquet(dataset))),
        ("polars", "pl.read_parquet('folder/*.parquet')", lambda: pl.read_parquet(glob).height),
        ("duckdb", "SELECT count(*), max(Rows), avg(SliceThickness) FROM 'folder/*.parquet'",
         lambda: duckdb.sql(f"SELECT count(*), max(Rows), avg(SliceThickness) "
                            f"FROM '{glob}'").fetchall()[0][0]),
        ("polars (flat JSONL)", "pl.read_ndjson(file, infer_schema_length=None)",
         lambda: pl.read_ndjson(flat, infer_schema_length=None).height),
        ("duckdb (flat JSONL)", "SELECT count(*), max(Rows) FROM read_json_auto(file)",
         lambda: duckdb.sql(f"SELECT count(*), max(Rows) FROM read_json_auto('{flat}', "
                            "maximum_object_size=100000000)").fetchall()[0][0]),
    ]
    try:
        from pyspark.sql import SparkSession
        spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
                 .config("spark.driver.memory", "4g").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        rows.append(("Spark (pyspark)", "spark.read.parquet(folder) then count, max(Rows)",
                     lambda: spark.read.parquet(str(dataset)).selectExpr(
                         "count(*)", "max(Rows)").collect()[0][0]))
    except ImportError:
        spark = None
    lines += ["## Read-back", "", f"The {args.big:,}-file Parquet dataset "
              f"({len(os.listdir(dataset)) - 1} parts) and flat JSONL, read whole (one run "
              "each, warm cache)", "", "| reader | call | rows | seconds |", "|---|---|---:|---:|"]
    for name, call, function in rows:
        try:
            seconds, count = timed(function)
            lines.append(f"| {name} | `{call}` | {count:,} | {seconds:.2f} |")
        except Exception as exc:  # noqa: BLE001 - a reader that fails is a result
            lines.append(f"| {name} | `{call}` | failed: {type(exc).__name__}: "
                         f"{str(exc)[:120]} | |")
        print(lines[-1], flush=True)
    if spark is not None:
        spark.stop()
    lines.append("")


def section_nested(args, lines, cores):
    """Why a sequence is JSON text: two parts whose sequence column is a list of structs, the
    struct of each part holding the keywords of its own items (what a worker can know), read
    by each reader."""
    import duckdb
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    folder = OUT_DIR / "nested"
    clear(folder)
    folder.mkdir()
    first = pa.struct([("CodeValue", pa.string())])
    second = pa.struct([("CodeValue", pa.string()), ("CodeMeaning", pa.string())])
    pq.write_table(pa.table({"path": ["a"], "S": pa.array([[{"CodeValue": "1"}]],
                                                          pa.list_(first))}),
                   folder / "part-0.parquet")
    pq.write_table(pa.table({"path": ["b"], "S": pa.array(
        [[{"CodeValue": "2", "CodeMeaning": "two"}]], pa.list_(second))}),
        folder / "part-1.parquet")
    glob = str(folder / "*.parquet")
    unified = pa.schema([("path", pa.string()), ("S", pa.list_(second))])
    readers = [
        ("pyarrow `pq.read_table(folder)`", lambda: pq.read_table(folder).column("S")
         .to_pylist()),
        ("pyarrow dataset with the unified schema", lambda: ds.dataset(folder, schema=unified)
         .to_table().column("S").to_pylist()),
        ("polars `read_parquet(glob)`", lambda: pl.read_parquet(glob)["S"].to_list()),
        ("polars with `missing_columns='insert'`",
         lambda: pl.read_parquet(glob, missing_columns="insert")["S"].to_list()),
        ("duckdb `read_parquet(glob)`",
         lambda: [row[0] for row in duckdb.sql(f"SELECT S FROM read_parquet('{glob}')")
                  .fetchall()]),
        ("duckdb `union_by_name=true`",
         lambda: [row[0] for row in duckdb.sql(f"SELECT S FROM read_parquet('{glob}', "
                                                "union_by_name=true)").fetchall()]),
    ]
    lines += ["## Nested types for sequences (why a sequence is JSON text)", "",
              "Two parts whose sequence column is a list of structs of the keywords its items "
              "have (part 1 lacks CodeMeaning), as a worker would write them:", "",
              "| reader | what it gives for S |", "|---|---|"]
    for name, function in readers:
        try:
            got = str(function())
            lost = "CodeMeaning" not in got or "two" not in got
            lines.append(f"| {name} | {got}{' (**CodeMeaning lost**)' if lost else ''} |")
        except Exception as exc:  # noqa: BLE001 - a reader that fails is a result
            lines.append(f"| {name} | fails: {type(exc).__name__}: {str(exc)[:100]} |")
        print(lines[-1], flush=True)
    lines.append("")


def section_huge_sequence(args, lines, cores):
    """A run over the small tree with the 990,000-item sequence file among its files."""
    import pyarrow.parquet as pq
    root = build_tree(args.small)
    huge = huge_sequence_file()
    lines += ["## The 990,000-item sequence", ""]
    for fmt in ("parquet", "jsonl"):
        out = OUT_DIR / f"huge.{fmt}"
        run = cli_run([root, huge], out, fmt, cores)
        lines.append(f"- {fmt}: {args.small + 1:,} files with it among them: "
                     f"{run['seconds']:.1f} s, peak memory {mb(run['peak'])}; {run['summary']}")
        if fmt == "parquet":
            data = pq.read_table(out, columns=["path", "ReferencedImageSequence"])
            cell = data.column(1)[data.num_rows - 1].as_py()
            lines.append(f"  its ReferencedImageSequence cell: {len(json.loads(cell)):,} items, "
                         f"{len(cell):,} characters of JSON; table width "
                         f"{len(pq.read_schema(out / '_common_metadata'))} columns")
        print(lines[-1], flush=True)
    lines.append("")


def section_encoders(args, lines, cores):
    """orjson against json for the JSONL and flat shapes, per file of the mixed corpus."""
    import orjson  # noqa: F401 - what jsontext uses

    from deid_fast import jsontext, table, writers
    from deid_fast.reader import Record
    files = corpus.build_mixed()
    nested = [Record(path, "e", "i", deid_fast.get_fields(path)) for path in files]
    unexpanded = [Record(path, "e", "i", deid_fast.get_fields(path, expand_sequences=False))
                  for path in files]

    def standard(record):
        return (json.dumps({"path": record.path, "entity": record.entity, "item": record.item,
                            "skipped": record.skipped, "reason": record.reason,
                            "fields": record.fields}, ensure_ascii=False,
                           default=jsontext.base64_text)
                + "\n").encode("utf-8")

    cases = [("nested JSONL line, json (the standard library)", standard, nested),
             ("nested JSONL line, jsontext (orjson)", writers.jsonl_line, nested),
             ("flat JSONL line (split + jsontext)", table.flat_line, unexpanded)]
    lines += ["## JSON encoders", "", f"µs per file over the {len(files)} mixed files, median "
              "of 7 rounds, one core, CPU time", "", "| encoding | µs per file |", "|---|---:|"]
    for name, function, records in cases:
        times = []
        for _ in range(7):
            started = time.process_time()
            for record in records:
                function(record)
            times.append(time.process_time() - started)
        lines.append(f"| {name} | {statistics.median(times) / len(records) * 1e6:,.1f} |")
        print(lines[-1], flush=True)
    lines.append("")


def section_dask(args, lines, cores):
    from distributed import Client, LocalCluster

    from deid_fast import dask as on_dask
    root = build_tree(args.small)
    quiet()
    lines += ["## Dask: a LocalCluster of {} worker processes (1 thread each)".format(cores), "",
              f"{args.small:,} files", "", "| run | seconds | files/s |", "|---|---:|---:|"]
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        quiet()
        address = cluster.scheduler_address
        runs = [
            ("get_identifiers(workers=N), local process pool",
             lambda: deid_fast.get_identifiers(str(root), workers=cores)),
            ("deid_fast.dask.get_identifiers on the cluster",
             lambda: on_dask.get_identifiers(str(root), client=client)),
            ("to_dataframe(fields=[PatientID, StudyDate, Rows]).compute()",
             lambda: on_dask.to_dataframe(str(root), fields=["PatientID", "StudyDate", "Rows"])
             .compute(scheduler=client)),
            ("to_dataframe()[[path, PatientID, Rows]].compute() (projected)",
             lambda: on_dask.to_dataframe(str(root))[["path", "PatientID", "Rows"]]
             .compute(scheduler=client)),
            ("deid-fast get --scheduler -o x.parquet",
             lambda: cli_run([root], OUT_DIR / "dask.parquet", "parquet", cores, "--scheduler",
                             address)),
            ("deid-fast get --workers N -o x.parquet (local, for comparison)",
             lambda: cli_run([root], OUT_DIR / "local.parquet", "parquet", cores)),
        ]
        for name, function in runs:
            seconds, _ = timed(function)
            lines.append(f"| {name} | {seconds:.1f} | {args.small / seconds:,.0f} |")
            print(lines[-1], flush=True)
    lines.append("")


def section_inflight(args, lines, cores):
    """The hardening issue's probe: sixteen files with a 100 MB OB value each (sparse files),
    every core's workers; peak memory of all processes per format and target."""
    import tempfile
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    import rawdicom
    folder = Path(tempfile.mkdtemp(prefix="deid-fast-inflight-"))
    try:
        for number in range(16):
            head = (rawdicom.element(0x00080018, "UI", f"1.2.3.{number}") +
                    rawdicom.element(0x00100020, "LO", "big") +
                    rawdicom.header(0x00420011, "OB", 100 << 20))
            data = rawdicom.dicom_file(head, sop_instance=f"1.2.3.{number}")
            with open(folder / f"{number:02d}.dcm", "wb") as handle:
                handle.write(data)
                handle.truncate(len(data) + (100 << 20))
        lines += ["## Large values in flight", "",
                  f"16 files with a 100 MB OB value each, {cores} workers; the goal: under "
                  "1.5 GB of all processes", "",
                  "| format | seconds | peak memory (all processes) | parent |",
                  "|---|---:|---:|---:|"]
        for fmt in ("jsonl", "parquet", "csv"):
            run = cli_run([folder], OUT_DIR / f"inflight.{fmt}", fmt, cores)
            lines.append(f"| {fmt} | {run['seconds']:.1f} | {mb(run['peak'])} | "
                         f"{mb(run['parent'])} |")
            print(lines[-1], flush=True)
            clear(OUT_DIR / f"inflight.{fmt}")
        lines.append("")
    finally:
        shutil.rmtree(folder)


SECTIONS = {"formats": section_formats, "scaling": section_scaling, "scale": section_scale,
            "table": section_table, "readback": section_readback, "nested": section_nested,
            "huge": section_huge_sequence, "encoders": section_encoders, "dask": section_dask,
            "inflight": section_inflight}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--big", type=int, default=200_000)
    parser.add_argument("--huge", type=int, default=1_000_000)
    parser.add_argument("--skip-huge", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scaling-repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args(argv)
    quiet()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cores = bulk.pool.default_workers()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=BENCH_DIR).stdout.strip()
    lines = [f"#### Run of {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC "
             f"(`benchmarks/bulk.py {' '.join(argv or sys.argv[1:])}`, commit {commit})",
             f"machine: {platform.processor() or platform.machine()}, {cores} cores, Python "
             f"{platform.python_version()}, deid_fast {deid_fast.__version__}", ""]
    for name in args.only:
        SECTIONS[name](args, lines, cores)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
