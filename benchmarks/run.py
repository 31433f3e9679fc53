"""Time deid_fast against the alternatives a user has, in one run, and print markdown tables.

    python benchmarks/run.py [--quick] [--repeats N] [--deid-sample N] [--json FILE]

(``make bench`` runs it as ``taskset -c 0 .venv/bin/python benchmarks/run.py``.)

On each corpus of ``benchmarks/corpus.py`` it times:

- ``deid_fast``: ``deid_fast.get_identifiers(files)`` (the native engine, the default); the
  files it hands to pydicom (``deid_fast.decode.fallbacks``) are counted on its first run over
  each corpus and printed;
- ``deid_fast (pydicom engine)``: ``deid_fast.get_identifiers(files, engine="pydicom")``, the
  foundation's pipeline (pydicom parses the header bytes);
- ``deid_fast fields=5`` (cookies only): ``deid_fast.get_identifiers(files, fields=FIELDS_5)``,
  five identifying keywords (plus entity and item);
- ``deid_fast get_fields per file``: ``deid_fast.get_fields(path)`` called once per file, the
  way a notebook or a per-file pipeline calls it (the per-call cost of the API);
- ``pydicom (reference)``: ``reference_identifiers(files)`` from ``tests/reference.py``, plain
  ``pydicom.dcmread(stop_before_pixels=True)`` plus a Python loop applying the same rules;
- ``pydicom dcmread only``: the ``dcmread`` of the reference alone, without the loop;
- ``deid``: ``deid.dicom.get_identifiers(files)`` on a sample (it reads whole files, pixel data
  included, and is slow);
- ``fastdicom``: ``fastdicom.dcmread(path, stop_before_pixels=True)`` per file, then its
  ``items()`` turned into a plain dict (sequence items recursively too); keys stay
  ``(group, element)`` tuples: fastdicom maps no keywords and applies no rules;
- ``read 4 KiB (floor)``: open each file and read its first 4 KiB, the cost of touching it.

Every number is the median of several repetitions (warm page cache, logging at WARNING and
below disabled, Python warnings ignored). Where a tool runs on fewer files than the corpus
(a sample, or files it fails on), deid_fast is timed again on exactly those files and the
ratio is taken against that. A "Goals" table at the end checks the issue's targets against
the numbers of the same run.
"""
from __future__ import annotations

import argparse
import collections
import datetime as _dt
import gc
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path


def _load_bench_corpus():
    """benchmarks/corpus.py, loaded by path: tests/corpus.py has the same module name."""
    import importlib.util

    name = "_deid_fast_bench_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parent / "corpus.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


corpus = _load_bench_corpus()

FLOOR_BYTES = 4096

#: The ``fields=`` selection timed on the cookies corpus: five identifying keywords.
FIELDS_5 = ["PatientName", "PatientBirthDate", "StudyDate", "InstitutionName",
            "ReferringPhysicianName"]

#: Tools timed on one corpus kind only (kind: "cookies", "mixed", "longseq").
ONLY_ON = {"deid_fast fields=5": {"cookies"},
           "deid_fast get_fields per file": {"cookies", "mixed"}}


def runs_on(tool: str, kind: str) -> bool:
    return kind in ONLY_ON.get(tool, {kind})


# --------------------------------------------------------------------------------------
# Machine, pinning
# --------------------------------------------------------------------------------------

def pin_to_one_core() -> str:
    """Pin this process to one CPU if it may run on several; say what was done."""
    if not hasattr(os, "sched_getaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) == 1:
        return f"CPU {cpus[0]} (pinned before start, e.g. by taskset)"
    try:
        os.sched_setaffinity(0, {cpus[0]})
    except OSError as exc:
        return f"not pinned ({exc}); may run on CPUs {cpus}"
    return f"CPU {cpus[0]} (pinned by run.py; allowed were {cpus})"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args) -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(corpus.ROOT), *args], capture_output=True,
                              text=True, timeout=10).stdout.rstrip("\n")
    except (OSError, subprocess.SubprocessError):
        return ""


def installed_stamp() -> tuple[str, float] | None:
    """Where deid_fast is imported from and when its newest file was written."""
    try:
        import deid_fast
    except ImportError:
        return None
    pkg = Path(deid_fast.__file__).parent
    newest = max((f.stat().st_mtime for f in pkg.iterdir() if f.is_file()), default=0.0)
    return str(pkg), newest


def build_line(stamp) -> str:
    """Which deid_fast was timed: the install time, and the source tree's commit then."""
    if stamp is None:
        return "- deid_fast build: not importable"
    where, mtime = stamp
    when = _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = _git("log", "-1", "--format=%h (%cd)", "--date=format-local:%Y-%m-%d %H:%M:%S UTC")
    dirty = [line[3:] for line in _git("status", "--porcelain", "--", "src", "deid_fast")
             .splitlines() if len(line) > 3]
    line = f"- deid_fast build: installed {when} in `{where}`"
    if head:
        line += f"; source tree at commit {head}"
        if dirty:
            line += f", with uncommitted changes in {', '.join(dirty)}"
        sources = [f for d in ("src/deid_fast", "deid_fast") for f in (corpus.ROOT / d).glob("*")
                   if f.suffix in (".pyx", ".pxd", ".py", ".json")]
        newer = sorted(str(f.relative_to(corpus.ROOT)) for f in sources
                       if f.stat().st_mtime > mtime)
        line += ("; source files changed since the install: " + ", ".join(newer) if newer
                 else "; no source file changed since the install")
    return line


def machine_lines(pinning: str, argv: list[str]) -> list[str]:
    return [
        f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{' '.join(argv)}`",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs on the machine; run on {pinning})",
        f"- OS: {platform.system()} {platform.release()} {platform.machine()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"pydicom {version_of('pydicom')}, deid {version_of('deid')}, "
        f"fastdicom {version_of('fastdicom')}, deid-fast {version_of('deid-fast')}",
    ]


# --------------------------------------------------------------------------------------
# The tools: each takes a list of paths and does its whole job on them
# --------------------------------------------------------------------------------------

def make_tools() -> dict:
    import pydicom
    import deid_fast

    reference = corpus.load_test_module("reference")

    def run_deid_fast(paths):
        return deid_fast.get_identifiers(paths)

    def run_deid_fast_pydicom(paths):
        return deid_fast.get_identifiers(paths, engine="pydicom")

    def run_deid_fast_fields(paths):
        return deid_fast.get_identifiers(paths, fields=FIELDS_5)

    def run_deid_fast_per_file(paths):
        get_fields = deid_fast.get_fields
        return [get_fields(path) for path in paths]

    def check_deid_fast(paths):
        # Before timing: deid_fast must accept the files, or a fast skip would be timed.
        return deid_fast.get_identifiers(paths, errors="raise")

    def run_reference(paths):
        return reference.reference_identifiers(paths)

    def run_dcmread(paths):
        for p in paths:
            pydicom.dcmread(p, force=True, stop_before_pixels=True)

    def run_floor(paths):
        for p in paths:
            with open(p, "rb") as f:
                f.read(FLOOR_BYTES)

    tools = {
        "deid_fast": run_deid_fast,
        "deid_fast (pydicom engine)": run_deid_fast_pydicom,
        "deid_fast fields=5": run_deid_fast_fields,
        "deid_fast get_fields per file": run_deid_fast_per_file,
        "pydicom (reference)": run_reference,
        "pydicom dcmread only": run_dcmread,
    }

    try:
        import deid.dicom
        from deid.logger import bot
    except ImportError:
        pass
    else:
        devnull = open(os.devnull, "w")

        def run_deid(paths):
            # deid keeps every message it emits in bot.history; start each run empty so
            # repetitions cost the same, and send its DEBUG chatter where it costs a write.
            bot.history.clear()
            bot.errorStream = bot.outputStream = devnull
            return deid.dicom.get_identifiers(list(paths))

        tools["deid"] = run_deid

    try:
        import fastdicom
    except ImportError:
        pass
    else:
        FdDataset = fastdicom.Dataset

        def plain(ds):
            out = {}
            for tag, value in ds.items():
                if type(value) is list and value and isinstance(value[0], FdDataset):
                    value = [plain(item) for item in value]
                out[tag] = value
            return out

        def run_fastdicom(paths):
            return [plain(fastdicom.dcmread(p, stop_before_pixels=True)) for p in paths]

        tools["fastdicom"] = run_fastdicom

    tools["read 4 KiB (floor)"] = run_floor
    return tools, check_deid_fast


SAMPLED = {"deid"}  # tools timed on a sample, not on the whole corpus


def check_variant(tool: str, fn, native, paths) -> str:
    """'' when a deid_fast variant gives what it should on ``paths``, else what differs.

    The pydicom engine must give the native engine's result; ``fields=5`` the native result
    cut down to the five keywords plus the entity and item keywords (PatientID,
    SOPInstanceUID by default)."""
    if tool not in ("deid_fast (pydicom engine)", "deid_fast fields=5"):
        return ""
    try:
        got, full = fn(paths), native(paths)
    except Exception as exc:
        return f"(not compared with deid_fast: {type(exc).__name__})"
    if tool == "deid_fast fields=5":
        keep = set(FIELDS_5) | {"PatientID", "SOPInstanceUID"}
        full = {e: {i: {k: v for k, v in f.items() if k in keep} for i, f in items.items()}
                for e, items in full.items()}
    if got == full:
        return ""
    return "result differs from the native engine's" + (
        " (cut to the selected fields)" if tool == "deid_fast fields=5" else "")


def fallback_counter():
    """deid_fast.decode.fallbacks (reason -> files the native engine handed to pydicom)."""
    try:
        from deid_fast import decode
        return decode.fallbacks
    except (ImportError, AttributeError):
        return None


def fallback_note(counts, n_files: int) -> str:
    if counts is None:
        return "fallbacks: not counted (no deid_fast.decode.fallbacks)"
    total = sum(counts.values())
    return f"fallbacks: {total} of {n_files} files" + (" (reasons below)" if total else "")


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------

class Quiet:
    """No log records at WARNING or below, no Python warnings, while timing."""

    def __enter__(self):
        logging.disable(logging.WARNING)
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        logging.disable(logging.NOTSET)
        return False


#: A run whose wall time exceeds its CPU time by more than this share (plus 0.2 ms) was
#: held off the CPU (another process on the same core): it is timed again.
DISTURBED = 0.10


def _timed(fn, paths) -> tuple[float, bool]:
    """Wall seconds of one ``fn(paths)``, and whether it was disturbed."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn(paths)
    t, c = time.perf_counter() - t0, time.process_time() - c0
    return t, t > c * (1 + DISTURBED) + 2e-4


def time_runs(fn, paths, repeats: int, warmup: bool = True) -> tuple[list[float], int, str]:
    """Seconds per run of ``fn(paths)``, ``repeats`` times (fewer when one run is slow), the
    number of runs, and a note on disturbed runs ('' when none).

    The warm-up run is timed too: when it takes over a second, it counts as the first
    sample (a run that slow gains nothing from warming up). ``run.py`` is pinned to one CPU,
    but other processes may be scheduled on it too: a run whose wall time exceeds its CPU
    time (user + system) by more than ``DISTURBED`` lost time to another process, and is
    timed again, up to ``2 * repeats`` extra runs (none for runs over 5 s). Disturbed runs
    are kept only when no clean one is left to take their place, and the note says so."""
    clean, disturbed = [], []
    retried = 0
    if warmup:
        t, bad = _timed(fn, paths)
        if t > 1:
            (disturbed if bad else clean).append(t)
    while len(clean) < repeats:
        gc.collect()
        t, bad = _timed(fn, paths)
        (disturbed if bad else clean).append(t)
        first = (clean + disturbed)[0]
        if bad:
            retried += 1
            if retried > 2 * repeats:
                break
        if first > 20:  # a run this slow: its first sample has to do
            break
        if first > 5 and len(clean) + len(disturbed) >= 3:
            break
    times = clean
    kept = 0
    if len(clean) < repeats:
        want = repeats if (clean + disturbed)[0] <= 5 else min(repeats, 3)
        if (clean + disturbed)[0] > 20:
            want = 1
        kept = max(0, min(len(disturbed), want - len(clean)))
        times = clean + sorted(disturbed)[:kept]
    notes = []
    if kept:
        notes.append(f"{kept} of {len(times)} runs disturbed by another process")
    elif retried:
        notes.append(f"{retried} disturbed run{'s' if retried > 1 else ''} re-timed")
    return times, len(times), "; ".join(notes)


def supported(fn, paths, cache: dict) -> tuple[list[str], list[str]]:
    """Split ``paths`` into those ``fn`` processes without an exception and the rest.

    Hard links of one file are checked once (keyed by device and inode)."""
    ok, failed = [], []
    for p in paths:
        st = os.stat(p)
        key = (st.st_dev, st.st_ino)
        if key not in cache:
            try:
                fn([p])
                cache[key] = True
            except (Exception, SystemExit):  # deid calls sys.exit on some files
                cache[key] = False
        (ok if cache[key] else failed).append(p)
    return ok, failed


def evenly(paths: list[str], k: int) -> list[str]:
    if len(paths) <= k:
        return list(paths)
    step = len(paths) / k
    return [paths[int(i * step)] for i in range(k)]


def warm_page_cache(paths) -> int:
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return total


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------

def fmt_us(seconds_per_file: float) -> str:
    us = seconds_per_file * 1e6
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:,.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.2g}x"


def bench_corpus(name, paths, tools, check_fast, repeats, deid_sample, rows, log, kind="",
                 fallbacks=None):
    """Time every tool on one corpus; append one row per tool.

    ``fallbacks`` (a dict) receives ``name -> Counter`` of the files the native engine handed
    to pydicom on its first run over the whole corpus."""
    paths, rejected = supported(check_fast, paths, {})
    if rejected:
        log(f"  {name}: deid_fast rejects {len(rejected)} files, left out: {rejected[:3]} ...")
    if not paths:
        rows.append(dict(corpus=name, tool="deid_fast", files=0, runs=0, us=None, ratio=None,
                         note="rejects every file"))
        return
    fast = tools["deid_fast"]
    counter = fallback_counter()
    if counter is not None:
        counter.clear()
    agreement = compare_with_reference(fast, tools["pydicom (reference)"], paths)
    counts = None if counter is None else collections.Counter(counter)
    if fallbacks is not None:
        fallbacks[name] = counts
    if agreement:
        log(f"  {name}: deid_fast {agreement}")
    log(f"  {name}: deid_fast {fallback_note(counts, len(paths))}"
        + "".join(f"\n      {c:>4}  {r}" for r, c in (counts or collections.Counter()).most_common()))
    fast_times, fast_runs, fast_dist = time_runs(fast, paths, repeats)
    fast_med = statistics.median(fast_times) / len(paths)
    fast_on = {tuple(paths): fast_med}
    for tool, fn in tools.items():
        if not runs_on(tool, kind):
            continue
        if tool == "deid_fast":
            per_file, runs, n = fast_med, fast_runs, len(paths)
            note = "; ".join(x for x in (
                f"rejects {len(rejected)} (left out)" if rejected else "", agreement,
                fallback_note(counts, len(paths)), fast_dist) if x)
        else:
            candidates = evenly(paths, deid_sample) if tool in SAMPLED else paths
            ok, failed = supported(fn, candidates, {})
            note_parts = []
            differs = check_variant(tool, fn, fast, ok) if ok else ""
            if differs:
                note_parts.append(differs)
                log(f"  {name}: {tool} {differs}")
            if tool in SAMPLED and len(candidates) < len(paths):
                note_parts.append(f"sample of {len(candidates)}")
            if failed:
                note_parts.append(f"fails on {len(failed)} (left out)")
            if not ok:
                note = "; ".join(note_parts)
                rows.append(dict(corpus=name, tool=tool, files=0, runs=0, us=None,
                                 ratio=None, note=note or "no file"))
                continue
            # `supported` ran every sampled file once: that is deid's warm-up
            times, runs, dist = time_runs(fn, ok, repeats, warmup=tool not in SAMPLED)
            per_file, n = statistics.median(times) / len(ok), len(ok)
            key = tuple(ok)
            if key not in fast_on:
                ft, _, fdist = time_runs(fast, ok, repeats)
                fast_on[key] = statistics.median(ft) / len(ok)
                if fdist:
                    note_parts.append(f"deid_fast on these files: {fdist}")
            if dist:
                note_parts.append(dist)
            note = "; ".join(note_parts)
        ratio = per_file / fast_on[tuple(paths) if tool == "deid_fast" else tuple(ok)]
        rows.append(dict(corpus=name, tool=tool, files=n, runs=runs, us=per_file * 1e6,
                         ratio=ratio, note=note))
        log(f"  {name:<22} {tool:<26} {fmt_us(per_file):>10} us/file  {fmt_ratio(ratio):>8}"
            f"  ({n} files, {runs} runs{'; ' + note if note else ''})")


def compare_with_reference(fast, reference, paths) -> str:
    """'' when deid_fast gives the reference's result on ``paths``, else what differs.

    A benchmark of two tools that do not do the same work would mislead: say so in the row."""
    try:
        a, b = fast(paths), reference(paths)
    except Exception as exc:
        return f"(not compared with the reference: {type(exc).__name__})"
    if a == b:
        return ""
    pairs_a = {(e, i) for e, items in a.items() for i in items}
    pairs_b = {(e, i) for e, items in b.items() for i in items}
    differ = sum(1 for e, i in pairs_a & pairs_b if a[e][i] != b[e][i])
    return (f"result differs from the reference: {len(pairs_a)} vs {len(pairs_b)} "
            f"(entity, item) pairs, {differ} with other fields")


def bench_longseq(files: dict, tools, check_fast, repeats, budget, rows, lin, log,
                  fallbacks=None):
    """Time every tool on each long-sequence file, smallest first; a tool whose next size
    is predicted to take longer than ``budget`` seconds a run is not run on it."""
    fast_med, fast_runs, fast_note = {}, {}, {}
    counter = fallback_counter()
    for n in sorted(files):
        try:
            check_fast([files[n]])
            if counter is not None:
                counter.clear()
            agreement = compare_with_reference(
                tools["deid_fast"], tools["pydicom (reference)"], [files[n]])
            counts = None if counter is None else collections.Counter(counter)
            if fallbacks is not None:
                fallbacks[f"longseq N={n}"] = counts
            log(f"  longseq N={n}: deid_fast {fallback_note(counts, 1)}"
                + "".join(f"\n      {c:>4}  {r}" for r, c in (counts or collections.Counter()).most_common()))
            agreement = "; ".join(x for x in (agreement, fallback_note(counts, 1)) if x)
            if agreement.startswith("result differs"):
                log(f"  longseq N={n}: deid_fast {agreement}")
            t, fast_runs[n], dist = time_runs(tools["deid_fast"], [files[n]], repeats)
            agreement = "; ".join(x for x in (agreement, dist) if x)
        except Exception as exc:  # nothing to compare against on this file
            rows.append(dict(corpus=f"longseq N={n}", tool="deid_fast", files=0, runs=0,
                             us=None, ratio=None, note=f"fails: {exc}"[:120]))
            log(f"  longseq N={n}: deid_fast fails ({exc!r}); size left out"[:200])
            continue
        fast_med[n] = statistics.median(t)
        fast_note[n] = agreement
    sizes = sorted(fast_med)
    for tool, fn in tools.items():
        if tool == "read 4 KiB (floor)" or not runs_on(tool, "longseq"):
            continue
        done: dict[int, float] = {}
        for n in sizes:
            name = f"longseq N={n}"
            note = ""
            if tool == "deid_fast":
                med, runs, note = fast_med[n], fast_runs[n], fast_note[n]
            else:
                if len(done) >= 1:
                    last_n = max(done)
                    if len(done) >= 2:
                        prev_n = sorted(done)[-2]
                        exp = math.log(done[last_n] / done[prev_n]) / math.log(last_n / prev_n)
                    else:
                        exp = 1.0
                    guess = done[last_n] * (n / last_n) ** max(exp, 1.0)
                    if guess > budget:
                        rows.append(dict(corpus=name, tool=tool, files=1, runs=0, us=None,
                                         ratio=None,
                                         note=f"not run: about {guess:,.0f} s a run predicted"))
                        log(f"  {name:<22} {tool:<26} skipped (about {guess:,.0f} s predicted)")
                        continue
                try:
                    note = check_variant(tool, fn, tools["deid_fast"], [files[n]])
                    if note:
                        log(f"  {name}: {tool} {note}")
                    t, runs, dist = time_runs(fn, [files[n]], repeats)
                    note = "; ".join(x for x in (note, dist) if x)
                except (Exception, SystemExit) as exc:
                    rows.append(dict(corpus=name, tool=tool, files=0, runs=0, us=None,
                                     ratio=None, note=f"fails: {type(exc).__name__}"))
                    log(f"  {name:<22} {tool:<26} fails: {exc!r}"[:200])
                    break
                med = statistics.median(t)
            done[n] = med
            ratio = med / fast_med[n]
            rows.append(dict(corpus=name, tool=tool, files=1, runs=runs, us=med * 1e6,
                             ratio=ratio, note=note))
            log(f"  {name:<22} {tool:<26} {med * 1e3:>10.2f} ms/file  {fmt_ratio(ratio):>8}")
        lin[tool] = done


def markdown_main(rows) -> list[str]:
    out = ["| corpus | tool | files | runs | µs per file (median) | ratio to deid_fast | note |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    order: dict = {}
    for r in rows:
        order.setdefault(r["corpus"], len(order))
    for r in sorted(rows, key=lambda r: order[r["corpus"]]):  # stable: tool order kept
        us = "-" if r["us"] is None else fmt_us(r["us"] / 1e6)
        out.append(f"| {r['corpus']} | {r['tool']} | {r['files']} | {r['runs']} | {us} | "
                   f"{fmt_ratio(r['ratio'])} | {r['note']} |")
    return out


def markdown_linearity(lin: dict, sizes) -> list[str]:
    sizes = sorted(sizes)
    head = "| tool | " + " | ".join(f"N={n:,} (ms)" for n in sizes)
    head += " | " + " | ".join(f"µs/item N={n:,}" for n in sizes)
    pairs = list(zip(sizes, sizes[1:]))
    head += " | " + " | ".join(f"growth {a:,}→{b:,} (ideal {b / a:g}x)" for a, b in pairs)
    head += " | exponent |"
    cols = head.count("|") - 1
    out = [head, "| --- |" + " ---: |" * (cols - 1)]
    for tool, done in lin.items():
        cells = [tool]
        cells += [f"{done[n] * 1e3:,.2f}" if n in done else "-" for n in sizes]
        cells += [f"{done[n] * 1e6 / n:,.2f}" if n in done else "-" for n in sizes]
        for a, b in pairs:
            cells.append(f"{done[b] / done[a]:.1f}x" if a in done and b in done else "-")
        have = [n for n in sizes if n in done]
        if len(have) >= 2:
            a, b = have[0], have[-1]
            cells.append(f"{math.log(done[b] / done[a]) / math.log(b / a):.2f}")
        else:
            cells.append("-")
        out.append("| " + " | ".join(cells) + " |")
    return out


def markdown_fallbacks(fallbacks: dict) -> list[str]:
    """One line per corpus: how many files the native engine handed to pydicom, and why."""
    out = []
    for name, counts in fallbacks.items():
        if counts is None:
            out.append(f"- {name}: not counted (deid_fast.decode.fallbacks is missing)")
            continue
        total = sum(counts.values())
        out.append(f"- {name}: {total}" + (":" if total else ""))
        out += [f"  - {r}: {c}" for r, c in counts.most_common()]
    return out


#: A step N -> 10 N counts as linear when its log-log slope is at most this.
LINEAR_SLOPE = 1.10


#: The sizes the linearity goal names (``--quick`` times only the first two).
GOAL_SIZES = (150, 1500, 15000)


def goals(rows: list[dict], lin: dict, sizes=GOAL_SIZES) -> list[dict]:
    """The issue's targets, checked against the numbers of this run.

    Each: goal, target, measured, result ("pass", "FAIL", or "not measured"). A goal on the
    cookies corpus needs >= 1,000 files; the linearity goal needs every size of ``sizes``."""
    def row(corpus_prefix, tool):
        for r in rows:
            if r["corpus"].startswith(corpus_prefix) and r["tool"] == tool:
                return r
        return None

    def ratio_of(corpus_prefix, tool):
        r = row(corpus_prefix, tool)
        return None if r is None or r["ratio"] is None else r["ratio"]

    out = []

    def disturbed(*corpus_prefixes):
        return any("disturbed by another process" in (r["note"] or "")
                   for r in rows if r["corpus"].startswith(corpus_prefixes)
                   and r["tool"] in ("deid_fast", "deid_fast fields=5", "fastdicom",
                                     "pydicom (reference)"))

    def add(goal, target, measured, ok, why_not="", corpora=()):
        result = "not measured" if ok is None else ("pass" if ok else "FAIL")
        if why_not:
            measured = f"{measured} ({why_not})" if measured != "-" else why_not
        if ok is not None and corpora and disturbed(*corpora):
            result += " (timing disturbed: see the notes)"
        out.append(dict(goal=goal, target=target, measured=measured, result=result))

    cookies_row = row("cookies", "deid_fast")
    few = ""
    if cookies_row is None or cookies_row["files"] < 1000:
        few = f"only {0 if cookies_row is None else cookies_row['files']} files: needs >= 1,000"

    # 1. cookies: at most half of fastdicom's time per file
    r = ratio_of("cookies", "fastdicom")
    fd = row("cookies", "fastdicom")
    if r is None:
        add("cookies: get_identifiers vs fastdicom", "<= 0.50x fastdicom's time per file", "-",
            None, "fastdicom not timed")
    else:
        fast_us = fd["us"] / r
        add("cookies: get_identifiers vs fastdicom", "<= 0.50x fastdicom's time per file",
            f"{1 / r:.2f}x ({fast_us:,.1f} vs {fd['us']:,.1f} µs per file)",
            None if few else 1 / r <= 0.5, few, ("cookies",))
    # 2. cookies: 45x plain pydicom
    r = ratio_of("cookies", "pydicom (reference)")
    add("cookies: get_identifiers vs plain pydicom", ">= 45x faster",
        "-" if r is None else f"{r:.1f}x", None if r is None or few else r >= 45, few,
        ("cookies",))
    # 3. mixed: 15x plain pydicom
    r = ratio_of("mixed", "pydicom (reference)")
    add("mixed (every shipped test file): vs plain pydicom", ">= 15x faster",
        "-" if r is None else f"{r:.1f}x", None if r is None else r >= 15, "", ("mixed",))
    # 4. 1,500-item sequence: 50x plain pydicom
    r = ratio_of("longseq N=1500", "pydicom (reference)")
    add("1,500-item sequence: vs plain pydicom", ">= 50x faster",
        "-" if r is None else f"{r:.1f}x", None if r is None else r >= 50, "",
        ("longseq N=1500",))
    # 5. linear in the number of items
    done = lin.get("deid_fast", {})
    want = sorted(sizes)
    have = [n for n in want if n in done]
    if len(have) < 2:
        add("sequence time linear in items (150 / 1,500 / 15,000)",
            f"each tenfold step: log-log slope <= {LINEAR_SLOPE:.2f}", "-", None,
            "fewer than two sizes timed")
    else:
        steps = list(zip(have, have[1:]))
        slopes = [math.log(done[b] / done[a]) / math.log(b / a) for a, b in steps]
        measured = " / ".join(f"{done[n] * 1e3:,.1f}" for n in have) + " ms; " + ", ".join(
            f"{a:,}→{b:,}: {done[b] / done[a]:.1f}x (slope {sl:.2f})"
            for (a, b), sl in zip(steps, slopes))
        missing = [n for n in want if n not in done]
        add("sequence time linear in items (" + " / ".join(f"{n:,}" for n in want) + ")",
            f"each tenfold step: log-log slope <= {LINEAR_SLOPE:.2f}", measured,
            all(sl <= LINEAR_SLOPE for sl in slopes) if not missing else None,
            f"N={', '.join(f'{n:,}' for n in missing)} not timed" if missing else "",
            ("longseq",))
    # 6. fields= with 5 keywords
    r = ratio_of("cookies", "deid_fast fields=5")
    add("cookies: fields= with 5 keywords vs all fields", ">= 1.5x faster",
        "-" if r is None else f"{1 / r:.2f}x ({row('cookies', 'deid_fast fields=5')['us']:,.1f}"
        f" vs {row('cookies', 'deid_fast fields=5')['us'] / r:,.1f} µs per file)",
        None if r is None or few else 1 / r >= 1.5, few, ("cookies",))
    return out


def markdown_goals(goal_rows: list[dict]) -> list[str]:
    out = ["| goal | target | measured | result |", "| --- | --- | --- | --- |"]
    out += [f"| {g['goal']} | {g['target']} | {g['measured']} | {g['result']} |"
            for g in goal_rows]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 repetitions, 350 cookies files, deid sample of 20, N up to 1,500")
    parser.add_argument("--repeats", type=int, help="repetitions per measurement (default 5)")
    parser.add_argument("--deid-sample", type=int, help="files deid is timed on (default 100)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="skip a long-sequence run predicted to take longer (s, default 60)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    args = parser.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 5)
    deid_sample = args.deid_sample or (20 if args.quick else 100)
    n_cookies = 350 if args.quick else corpus.COOKIES_FILES
    sizes = corpus.LONGSEQ_SIZES[:2] if args.quick else corpus.LONGSEQ_SIZES

    pinning = "not pinned (--no-pin)" if args.no_pin else pin_to_one_core()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    log("building the corpora under benchmarks/corpus/ ...")
    cookies = corpus.build_cookies()[:n_cookies]
    longseq = corpus.build_longseq(sizes)
    mixed = corpus.build_mixed()
    rejected = corpus.mixed_rejected()
    all_files = cookies + mixed + list(longseq.values())
    log(f"warming the page cache ({warm_page_cache(all_files) / 2**20:,.0f} MiB read) ...")

    tools, check_fast = make_tools()
    stamp = installed_stamp()
    build = build_line(stamp)
    rows: list[dict] = []
    lin: dict = {}
    fallbacks: dict = {}
    with Quiet():
        log("timing (median of %d runs) ..." % repeats)
        bench_corpus(f"cookies ({len(cookies)} files)", cookies, tools, check_fast, repeats,
                     deid_sample, rows, log, kind="cookies", fallbacks=fallbacks)
        bench_corpus(f"mixed ({len(mixed)} files)", mixed, tools, check_fast, repeats,
                     deid_sample, rows, log, kind="mixed", fallbacks=fallbacks)
        bench_longseq(longseq, tools, check_fast, repeats, args.budget, rows, lin, log,
                      fallbacks=fallbacks)
    goal_rows = goals(rows, lin)
    if installed_stamp() != stamp:
        build += (" (deid_fast was reinstalled during this run: this process kept timing the "
                  "build it had imported, which is the one this line describes, written "
                  "before timing)")
        log("WARNING: deid_fast was reinstalled during this run")

    argv_shown = ["python", "benchmarks/run.py"] + (sys.argv[1:] if argv is None else argv)
    lines = ["## Results", ""]
    lines += machine_lines(pinning, argv_shown)
    lines += [build,
        f"- corpora: cookies = {len(cookies)} hard links of the 7 dicom-cookies files; "
        f"mixed = the {len(mixed)} shipped test files deid_fast accepts "
        f"({len(rejected)} rejected ones left out); longseq = generated files with a "
        f"sequence of N items",
        f"- each number: median of {repeats} runs (fewer for runs over 5 s), µs per file; "
        f"ratio = tool time / deid_fast time on the same files (> 1: deid_fast is faster)",
        "",
    ]
    lines += markdown_main(rows)
    lines += ["", "Files the native engine handed to pydicom (`deid_fast.decode.fallbacks`, "
              "counted on deid_fast's first run over each corpus, by reason):", ""]
    lines += markdown_fallbacks(fallbacks)
    lines += ["", "### Time-linearity on the long-sequence files", "",
              "Time for one file whose sequence holds N items (each item: 5 one-item "
              "sequences, 10 leaf elements). Growth is the time ratio between sizes "
              "(10x is linear); exponent is the log-log slope from the smallest to the "
              "largest size run (1.00 is linear, 2.00 quadratic).", ""]
    lines += markdown_linearity(lin, sizes)
    lines += ["", "### Goals", "",
              f"The issue's targets, from the numbers above (one core: {pinning}; warm page "
              "cache). \"faster than plain pydicom\" is the `pydicom (reference)` row's "
              "ratio; fastdicom's and fields=5's are deid_fast's time over theirs.", ""]
    lines += markdown_goals(goal_rows)
    print("\n".join(lines))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_lines(pinning, argv_shown) + [build], "rows": rows,
                       "goals": goal_rows,
                       "fallbacks": {k: (None if v is None else dict(v))
                                     for k, v in fallbacks.items()},
                       "linearity": {t: {str(n): s for n, s in d.items()}
                                     for t, d in lin.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
