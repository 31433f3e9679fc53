"""deid_fast.deid against deid 0.4 (issue 13's goals), in one run, one core, interleaved rounds.

    taskset -c 0 .venv/bin/python benchmarks/deid04.py [--rounds 5] [--cookies-sample 280]

(``make bench`` runs it after ``run.py``.) On the dicom-cookies corpus (a sample: deid reads
whole files and takes milliseconds each) and the mixed shipped corpus of
``benchmarks/corpus.py`` it times, on the same files:

- ``deid 0.4``: ``deid.dicom.get_identifiers(files)``;
- ``deid_fast.deid``: ``deid_fast.deid.get_identifiers(files)``;
- ``deid_fast.deid, every .element read``: the same, then every field's ``element`` read (the
  elements are made by pydicom from the header's bytes when first read);
- ``deid_fast.deid per file``: ``get_identifiers(path)`` called once per file.

Files deid raises on are left out of the mixed corpus (listed). Each round runs every tool
once; medians of CPU time (``time.process_time``) per file, wall time beside; ratios are of CPU
time against deid 0.4 measured in the same rounds.
"""
import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

import deid_fast.deid  # noqa: E402

GOALS = {"cookies": 50, "mixed": 20}


def deid_04(paths):
    import deid.dicom
    from deid.logger import bot
    bot.history = []          # deid keeps every message; start each run empty
    return deid.dicom.get_identifiers(list(paths))


def fast(paths):
    return deid_fast.deid.get_identifiers(paths)


def fast_elements(paths):
    lookup = deid_fast.deid.get_identifiers(paths)
    for fields in lookup.values():
        for field in fields.values():
            field.element
    return lookup


def fast_per_file(paths):
    for path in paths:
        deid_fast.deid.get_identifiers(path)


TOOLS = {"deid 0.4": deid_04, "deid_fast.deid": fast,
         "deid_fast.deid, every .element read": fast_elements,
         "deid_fast.deid per file": fast_per_file}


def deid_reads(paths):
    """The files deid 0.4 returns a lookup for, and those it raises on."""
    good, bad = [], []
    for path in paths:
        try:
            deid_04([path])
            good.append(path)
        except (Exception, SystemExit) as exc:       # deid exits on some files
            bad.append((path, type(exc).__name__))
    return good, bad


def time_corpus(paths, rounds):
    samples = {name: ([], []) for name in TOOLS}
    for tool in TOOLS.values():       # warm-up: imports, caches, page cache
        tool(paths)
    for _ in range(rounds):
        for name, tool in TOOLS.items():
            cpu, wall = time.process_time(), time.perf_counter()
            tool(paths)
            samples[name][0].append(time.process_time() - cpu)
            samples[name][1].append(time.perf_counter() - wall)
    return {name: (statistics.median(cpu) / len(paths), statistics.median(wall) / len(paths))
            for name, (cpu, wall) in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cookies-sample", type=int, default=280)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    cookies = corpus.build_cookies()
    step = max(1, len(cookies) // args.cookies_sample)
    corpora = {"cookies": cookies[::step][:args.cookies_sample], "mixed": corpus.build_mixed()}
    print(f"deid_fast.deid vs deid 0.4: {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{args.rounds} interleaved rounds, CPU-time medians per file\n")
    print("| corpus | tool | CPU per file | wall per file | vs deid 0.4 (CPU) |")
    print("| --- | --- | --- | --- | --- |")
    ratios = {}
    for kind, paths in corpora.items():
        paths, refused = deid_reads(paths)
        result = time_corpus(paths, args.rounds)
        base = result["deid 0.4"][0]
        for name, (cpu, wall) in result.items():
            ratio = base / cpu
            print(f"| {kind} ({len(paths)} files) | {name} | {cpu * 1e6:,.0f} us | "
                  f"{wall * 1e6:,.0f} us | {ratio:,.1f}x |")
        ratios[kind] = base / result["deid_fast.deid"][0]
        for path, error in refused:
            print(f"| {kind} | (left out: deid raises {error}) | {Path(path).name} | | |")
    print("\n| goal | measured | result |\n| --- | --- | --- |")
    for kind, goal in GOALS.items():
        verdict = "pass" if ratios[kind] >= goal else "FAIL"
        print(f"| {kind}: get_identifiers >= {goal}x deid 0.4 | {ratios[kind]:,.1f}x | {verdict} |")


if __name__ == "__main__":
    main()
