"""Bulk benchmarks (the bulk issue): scaling with workers, threads against processes, chunk
size, and files/s and peak memory of each output format of the command line.

    .venv/bin/python benchmarks/bulk.py [--files 10000] [--big 100000] [--repeats 3]

The corpus is the `mixed` benchmark corpus (every shipped file deid_fast reads) hard-linked
into nested folders `bulk-N/dNNN/dNN/` until there are N files, so that 100,000 files cost
only directory entries. Run it on an otherwise idle machine: it uses every core.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import corpus  # noqa: E402

import deid_fast  # noqa: E402
from deid_fast import bulk  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")


def quiet():
    """Skipped files would log a WARNING each: not part of what is measured. (Importing
    distributed re-configures logging, so this is done again after it.)"""
    logging.disable(logging.WARNING)
    logging.getLogger("deid_fast").setLevel(logging.ERROR)


def build_tree(count: int) -> Path:
    """`count` files in nested folders, hard links of the mixed corpus (built once)."""
    root = corpus.CORPUS_DIR / f"bulk-{count}"
    stamp = root / ".complete"
    if stamp.exists():
        return root
    sources = corpus.build_mixed()
    for number in range(count):
        source = sources[number % len(sources)]
        target = root / f"d{number // 1000:03d}" / f"d{number // 100 % 10:02d}" / \
            f"{number:07d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(source, target)
    stamp.touch()
    return root


def warm(root: Path) -> None:
    for path in bulk.files(str(root)):
        with open(path, "rb") as handle:
            handle.read(65536)


def files_per_second(run, count: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return count / statistics.median(times)


def drain(iterable) -> int:
    count = 0
    for _ in iterable:
        count += 1
    return count


def threads_run(root: Path, workers: int):
    """get_identifiers on `workers` threads, each on its share of the files (measured only:
    deid_fast's API is not thread-safe, see the README)."""
    paths = list(bulk.files(str(root)))
    shares = [paths[number::workers] for number in range(workers)]

    def run():
        with concurrent.futures.ThreadPoolExecutor(workers) as executor:
            list(executor.map(deid_fast.get_identifiers, shares))
    return run


class PeakMemory:
    """Samples the memory (PSS) of a process and all its descendants, every 100 ms (reading
    smaps_rollup costs CPU: more often, the sampler slows what it measures)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_parent = pid, 0, 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    @staticmethod
    def _rss(pid: int) -> int:
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
            pids = self._tree()
            self.peak = max(self.peak, sum(self._rss(pid) for pid in pids))
            self.peak_parent = max(self.peak_parent, self._rss(self.pid))
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join()


def cli_run(root: Path, out: Path, fmt: str, workers: int) -> tuple[float, int, int]:
    """Seconds, peak memory of the whole process tree, and of the parent alone."""
    for stale in out.parent.glob(out.name + "*"):
        if stale.is_file():
            stale.unlink()
    started = time.perf_counter()
    process = subprocess.Popen([str(SCRIPT), "get", str(root), "-o", str(out), "--format", fmt,
                                "--workers", str(workers), "--quiet", "--no-progress"],
                               stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"deid-fast failed: {stderr}")
    return seconds, memory.peak, memory.peak_parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cli-repeats", type=int, default=1)
    args = parser.parse_args(argv)
    quiet()
    small, big = build_tree(args.files), build_tree(args.big)
    out_dir = corpus.CORPUS_DIR / "bulk-out"
    out_dir.mkdir(exist_ok=True)
    warm(small)
    cores = bulk.pool.default_workers()
    lines = [f"# bulk benchmarks, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
             f"machine: {platform.processor() or platform.machine()}, {cores} cores, Python "
             f"{platform.python_version()}, deid_fast {deid_fast.__version__}",
             f"corpus: {args.files:,} and {args.big:,} files (mixed corpus, hard links, "
             "nested folders), warm page cache; medians of "
             f"{args.repeats} runs (command line: {args.cli_repeats} at 10,000 files, 1 at "
             f"{args.big:,}); memory is PSS sampled every 0.1 s", ""]

    count = args.files
    rows = [("iter_identifiers, 1 worker (in process)",
             lambda: drain(deid_fast.bulk.iter_identifiers(str(small), workers=1)))]
    for workers in range(2, cores + 1):
        rows.append((f"iter_identifiers, {workers} worker processes",
                     lambda w=workers: drain(bulk.iter_identifiers(str(small), workers=w))))
        rows.append((f"get_identifiers on {workers} threads", threads_run(small, workers)))
    for chunk in (8, 32, 64, 256):
        def chunked(size=chunk):
            saved = bulk.CHUNK_FILES
            bulk.CHUNK_FILES = size
            try:
                drain(bulk.iter_identifiers(str(small), workers=cores))
            finally:
                bulk.CHUNK_FILES = saved
        rows.append((f"iter_identifiers, {cores} workers, chunks of {chunk} files", chunked))
    lines += ["## Scaling (API)", "", "| run | files/s | vs 1 worker |", "|---|---:|---:|"]
    base = None
    for name, run in rows:
        rate = files_per_second(run, count, args.repeats)
        base = base or rate
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")
        print(lines[-1], flush=True)

    lines += ["", f"## Dask: a LocalCluster of {cores} worker processes (1 thread each)", "",
              "| run | files/s | vs local pool |", "|---|---:|---:|"]
    from distributed import Client, LocalCluster
    from deid_fast import dask as on_dask
    quiet()
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pool_rate = files_per_second(
            lambda: deid_fast.get_identifiers(str(small), workers=cores), count, args.repeats)
        dask_rate = files_per_second(
            lambda: on_dask.get_identifiers(str(small), client=client), count, args.repeats)
        bag_rate = files_per_second(
            lambda: on_dask.to_bag(str(small)).compute(scheduler=client), count, args.repeats)
        for name, rate in ((f"get_identifiers(workers={cores}), local process pool", pool_rate),
                           ("deid_fast.dask.get_identifiers on the cluster", dask_rate),
                           ("deid_fast.dask.to_bag(...).compute() on the cluster", bag_rate)):
            lines.append(f"| {name} | {rate:,.0f} | {rate / pool_rate:.2f}x |")
            print(lines[-1], flush=True)

    lines += ["", "## Command line, per format", "",
              "| format | files | workers | files/s | peak memory (PSS), all processes | parent |",
              "|---|---:|---:|---:|---:|---:|"]
    plan = [(fmt, small, args.files, workers)
            for fmt in ("jsonl", "csv", "parquet", "json", "dicom-json")
            for workers in (1, cores)]
    plan += [(fmt, big, args.big, cores) for fmt in ("jsonl", "parquet")]
    for fmt, root, files, workers in plan:
        runs = [cli_run(root, out_dir / f"out.{fmt}", fmt, workers)
                for _ in range(args.cli_repeats if files == args.files else 1)]
        seconds = statistics.median(run[0] for run in runs)
        peak = max(run[1] for run in runs)
        parent = max(run[2] for run in runs)
        lines.append(f"| {fmt} | {files:,} | {workers} | {files / seconds:,.0f} | "
                     f"{peak / 2**20:,.0f} MB | {parent / 2**20:,.0f} MB |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
