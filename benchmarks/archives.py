"""Archives read in place against the same files in a folder (issue 14), one core.

    taskset -c 0 .venv/bin/python benchmarks/archives.py [--rounds 5]

The dicom-cookies corpus of `corpus.py` (1,400 files) as a folder, a zip (deflated), a tar and a
tar.gz, made once under benchmarks/corpus/archives; each round runs `get_identifiers` on each
in turn (interleaved), and the fields are checked equal to the folder's. Medians of CPU time
(`time.process_time`) per file, wall time beside.
"""
import argparse
import logging
import os
import statistics
import sys
import tarfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

import deid_fast  # noqa: E402


def build(files):
    folder = corpus.CORPUS_DIR / "archives"
    folder.mkdir(parents=True, exist_ok=True)
    root = corpus.CORPUS_DIR / "cookies"
    made = {"folder": str(root)}
    for name, mode in (("cookies.zip", None), ("cookies.tar", "w"), ("cookies.tar.gz", "w:gz")):
        path = folder / name
        if not path.exists():
            partial = folder / ("." + name)
            if mode is None:
                with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                    for file in files:
                        archive.write(file, os.path.relpath(file, root))
            else:
                with tarfile.open(partial, mode) as archive:
                    for file in files:
                        archive.add(file, os.path.relpath(file, root))
            partial.rename(path)
        made[name] = str(path)
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    files = corpus.build_cookies()
    sources = build(files)
    expected = deid_fast.get_identifiers(sources["folder"])
    times = {name: ([], []) for name in sources}
    for number in range(args.rounds + 1):
        for name, source in sources.items():
            cpu, wall = time.process_time(), time.perf_counter()
            result = deid_fast.get_identifiers(source)
            if number:
                times[name][0].append(time.process_time() - cpu)
                times[name][1].append(time.perf_counter() - wall)
            else:
                assert result == expected, f"{name}: not the folder's identifiers"
    sizes = {name: os.path.getsize(source) for name, source in sources.items() if name != "folder"}
    print(f"archives: {time.strftime('%Y-%m-%d %H:%M')}, {len(files):,} files, "
          f"{args.rounds} interleaved rounds, get_identifiers, one process\n")
    print("| source | size | CPU per file | wall per file | vs folder (CPU) |")
    print("| --- | --- | --- | --- | --- |")
    base = statistics.median(times["folder"][0])
    for name, (cpu, wall) in times.items():
        size = f"{sizes[name] / 1e6:,.0f} MB" if name in sizes else "(files)"
        print(f"| {name} | {size} | {statistics.median(cpu) / len(files) * 1e6:,.1f} us | "
              f"{statistics.median(wall) / len(files) * 1e6:,.1f} us | "
              f"{statistics.median(cpu) / base:,.2f}x |")


if __name__ == "__main__":
    main()
