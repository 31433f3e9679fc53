"""Randomised fault injection for the bulk runner (the hardening issue): thousands of runs with
workers stopped, continued and killed at random points, and command-line runs whose parent is
killed or stopped at random points and then resumed. Every run must end (no hang), and what it
gives must equal the reference: every file once, in input order, with the fields
`get_fields` gives.

    .venv/bin/python benchmarks/faults.py [--runs 2000] [--cli-runs 200] [--seed 1]

It prints a markdown summary for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import corpus  # noqa: E402

import deid_fast  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")
#: A run that takes longer than this has hung.
HANG_SECONDS = 120


def build_tree(root: Path, count: int) -> list[str]:
    files = corpus.build_mixed()
    for number in range(count):
        target = root / f"d{number // 50:03d}" / f"{number:05d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(files[number % len(files)], target)
    return sorted(str(path) for path in root.rglob("*.dcm"))


def reference(paths):
    import logging
    logging.disable(logging.WARNING)
    expected = {}
    for record in deid_fast.iter_identifiers(paths, workers=1):
        expected[record.path] = (record.skipped, record.fields)
    return expected


def _injector(stop, rng, actions):
    """Stop, continue and kill this process's workers at random moments until `stop`."""
    while not stop.wait(rng.uniform(0.005, 0.05)):
        children = psutil.Process().children()
        if not children:
            continue
        victim = rng.choice(children)
        action = rng.choice(("stop", "stop", "kill"))
        try:
            if action == "stop":
                victim.suspend()
                time.sleep(rng.uniform(0.01, 0.3))
                victim.resume()
            else:
                victim.kill()
            actions[action] += 1
        except psutil.NoSuchProcess:
            pass


def api_runs(paths, expected, runs, rng):
    """`iter_identifiers(workers=2)` under random worker faults."""
    outcomes = {"runs": 0, "hangs": 0, "wrong": 0, "lost files": 0}
    actions = {"stop": 0, "kill": 0}
    for number in range(runs):
        subset = paths[: rng.randint(1, len(paths))]
        stop = threading.Event()
        injector = threading.Thread(target=_injector, args=(stop, rng, actions), daemon=True)
        result = []
        worker = threading.Thread(target=lambda: result.extend(
            deid_fast.iter_identifiers(subset, workers=2)), daemon=True)
        injector.start()
        worker.start()
        worker.join(HANG_SECONDS)
        stop.set()
        injector.join()
        outcomes["runs"] += 1
        if worker.is_alive():
            outcomes["hangs"] += 1
            print(f"run {number}: HANG", flush=True)
            continue
        if [record.path for record in result] != subset:
            outcomes["wrong"] += 1
            print(f"run {number}: wrong paths", flush=True)
            continue
        for record in result:
            if record.skipped == "worker-died":   # killed twice on the same file: allowed
                outcomes["lost files"] += 1
            elif (record.skipped, record.fields) != expected[record.path]:
                outcomes["wrong"] += 1
                print(f"run {number}: wrong record for {record.path}", flush=True)
                break
    return outcomes, actions


def cli_runs(folder, paths, runs, rng, work):
    """`deid-fast get` (jsonl or parquet) whose parent is killed, stopped or interrupted at a
    random moment, then resumed until it finishes; the output must hold every file once."""
    import pyarrow.parquet as pq
    outcomes = {"runs": 0, "hangs": 0, "wrong": 0, "resumes": 0}
    signals = {"SIGKILL": 0, "SIGTERM": 0, "SIGINT": 0, "SIGSTOP+SIGCONT": 0}
    for number in range(runs):
        fmt = rng.choice(("jsonl", "parquet"))
        out = work / f"out{number}.{fmt}"
        args = [str(SCRIPT), "get", str(folder), "-o", str(out), "-q", "--workers", "2"]
        process = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        name = rng.choice(list(signals))
        signals[name] += 1
        if name == "SIGSTOP+SIGCONT":
            process.send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(0.05, 0.5))
            process.send_signal(signal.SIGCONT)
        else:
            process.send_signal(getattr(signal, name))
        try:
            process.wait(HANG_SECONDS)
        except subprocess.TimeoutExpired:
            outcomes["hangs"] += 1
            process.kill()
            continue
        outcomes["runs"] += 1
        for _attempt in range(3):
            if out.exists() and not Path(str(out) + ".partial").exists():
                break
            outcomes["resumes"] += 1
            try:
                subprocess.run(args + ["--resume"], stderr=subprocess.DEVNULL,
                               timeout=HANG_SECONDS, check=False)
            except subprocess.TimeoutExpired:
                outcomes["hangs"] += 1
        if fmt == "jsonl":
            got = [json.loads(line)["path"] for line in open(out, "rb")] if out.exists() else []
        else:
            got = pq.read_table(out, columns=["path"]).column(0).to_pylist() if out.exists() else []
        if sorted(got) != paths:
            outcomes["wrong"] += 1
            print(f"cli run {number} ({fmt}, {name}): {len(got)} rows of {len(paths)}", flush=True)
        shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
        Path(str(out) + ".deid-fast.json").unlink(missing_ok=True)    # the sidecar stays: ok
        for leftover in work.iterdir():
            if leftover.name.startswith((f"out{number}.", f".out{number}.")):
                print(f"cli run {number}: left {leftover.name}", flush=True)
                outcomes["wrong"] += 1
    return outcomes, signals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--cli-runs", type=int, default=200)
    parser.add_argument("--files", type=int, default=600,
                        help="files of the API runs' tree (the command line's has 5 times more)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="deid-fast-faults-"))
    try:
        folder = work / "tree"
        paths = build_tree(folder, args.files)
        expected = reference(paths)
        started = time.perf_counter()
        api, actions = api_runs(paths, expected, args.runs, rng)
        api_seconds = time.perf_counter() - started
        started = time.perf_counter()
        big = work / "big"
        big_paths = build_tree(big, args.files * 5)
        cli, signals = cli_runs(big, big_paths, args.cli_runs, rng, work)
        cli_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n## Fault injection (seed {args.seed}; {args.files:,} files for the API runs, "
          f"{args.files * 5:,} for the command line's)\n")
    print(f"- `iter_identifiers(workers=2)`, {api['runs']:,} runs ({api_seconds:.0f} s): "
          f"workers stopped and continued {actions['stop']:,} times, killed "
          f"{actions['kill']:,} times; hangs {api['hangs']}, wrong results {api['wrong']}, "
          f"files lost with a worker killed twice on them {api['lost files']}")
    print(f"- `deid-fast get`, {cli['runs']:,} runs ({cli_seconds:.0f} s): "
          + ", ".join(f"{name} {count}" for name, count in signals.items())
          + f"; resumes {cli['resumes']}, hangs {cli['hangs']}, wrong outputs {cli['wrong']}")
    return 1 if api["hangs"] or api["wrong"] or cli["hangs"] or cli["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
