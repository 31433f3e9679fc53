"""`deid-fast show` from a cold start (issue 14's goal: within 0.3 s of wall time on a shipped
file, the import cost included), beside `pydicom show`, in interleaved rounds.

    taskset -c 0 .venv/bin/python benchmarks/show_start.py [--rounds 15]

Each round starts each command once per file, as a new process (the page cache is warm: the
first round is a warm-up and not counted). Medians of wall time per start.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

BIN = Path(sys.executable).parent
FILES = ("CT_small.dcm", "rtplan.dcm", "MR_small.dcm", "image1.dcm")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    shipped = {Path(path).name: path for path in corpus.shipped_files()}
    files = [shipped[name] for name in FILES]
    commands = {"deid-fast show": [str(BIN / "deid-fast"), "show"],
                "deid-fast --version": [str(BIN / "deid-fast"), "--version"],
                "pydicom show": [str(BIN / "pydicom"), "show"]}
    times = {name: [] for name in commands}
    for number in range(args.rounds + 1):
        for name, command in commands.items():
            for path in files:
                started = time.perf_counter()
                subprocess.run(command + ([] if "version" in name else [path]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                if number:
                    times[name].append(time.perf_counter() - started)
    print(f"cold starts, {time.strftime('%Y-%m-%d %H:%M')}, {args.rounds} rounds x "
          f"{len(files)} files ({', '.join(FILES)})\n")
    print("| command | median wall | slowest |\n| --- | --- | --- |")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |")
    verdict = "pass" if statistics.median(times["deid-fast show"]) <= 0.3 else "FAIL"
    print(f"\ngoal: deid-fast show within 0.3 s: {verdict}")


if __name__ == "__main__":
    main()
