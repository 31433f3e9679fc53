"""The per-call cost of the API (issue 12's "no per-call tax"): CPU time per file of
`get_fields(path)` called once per file against `get_identifiers(files)` on the same files, in
interleaved rounds, medians.

    taskset -c 0 .venv/bin/python benchmarks/percall.py [--rounds 7] [CORPUS_FOLDER]

The corpus defaults to the dicom-cookies corpus of `benchmarks/corpus.py` (1,400 files).
"""
import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

import deid_fast  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.WARNING)       # duplicates in the cookies would log a WARNING each
    files = (sorted(str(path) for path in Path(args.folder).rglob("*.dcm")) if args.folder
             else corpus.build_cookies())

    def per_file():
        for path in files:
            deid_fast.get_fields(path)

    def batch():
        deid_fast.get_identifiers(files)

    times = {"get_fields per file": [], "get_identifiers": []}
    for _ in range(args.rounds):
        for name, run in (("get_fields per file", per_file), ("get_identifiers", batch)):
            started = time.process_time()
            run()
            times[name].append((time.process_time() - started) / len(files) * 1e6)
    fields, identifiers = (statistics.median(times[name]) for name in times)
    print(f"{len(files):,} files, {args.rounds} rounds: get_fields per file {fields:.1f} us, "
          f"get_identifiers {identifiers:.1f} us per file, ratio {fields / identifiers:.2f}")


if __name__ == "__main__":
    main()
