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
- ``deid_fast get_fields per file, include_private=True`` and ``..., include_file_meta=True``
  (mixed only): the same with that option; the fields each reports are counted, for the time
  per reported field;
- ``pydicom (reference)``: ``reference_identifiers(files)`` from ``tests/reference.py``, plain
  ``pydicom.dcmread(stop_before_pixels=True)`` plus a Python loop applying the same rules;
- ``pydicom dcmread only``: the ``dcmread`` of the reference alone, without the loop;
- ``deid``: ``deid.dicom.get_identifiers(files)`` on a sample (it reads whole files, pixel data
  included, and is slow);
- ``fastdicom``: ``fastdicom.dcmread(path, stop_before_pixels=True)`` per file, then its
  ``items()`` turned into a plain dict (sequence items recursively too); keys stay
  ``(group, element)`` tuples: fastdicom maps no keywords and applies no rules;
- ``read 4 KiB (floor)``: open each file and read its first 4 KiB, the cost of touching it.

Timing: interleaved rounds. Each round runs every measurement of a corpus (a tool on its
files) once, in turn, so that whatever changes on the machine during the run falls on every
tool alike; each number is the median over the rounds (warm page cache, logging at WARNING and
below disabled, Python warnings ignored, one core). CPU time (``time.process_time``) and wall
time are both recorded and printed; ratios are taken from CPU time. Where a tool runs on fewer
files than the corpus (a sample, or files it fails on), deid_fast (``get_identifiers`` and
``get_fields`` per file) is timed in the same rounds on exactly those files, and the ratio is
taken against that.

The native deid_fast calls are run once, untimed, before timing: their hand-overs to pydicom
(``deid_fast.decode.fallbacks``) are counted and printed by reason, and ``get_identifiers``'s
result is compared with the reference's. A "Goals" table at the end checks issue 12's targets
(``GOALS``) against the numbers of the same run: "must" goals pass or FAIL, "aim" goals are
met or not.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as _dt
import fnmatch
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
from typing import Callable, NamedTuple


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

FASTDICOM, REFERENCE = "fastdicom", "pydicom (reference)"
GET_FIELDS = "deid_fast get_fields per file"
#: ``get_fields`` per file with one option set: tool name -> keyword arguments.
GET_FIELDS_OPTIONS = {f"{GET_FIELDS}, include_private=True": {"include_private": True},
                      f"{GET_FIELDS}, include_file_meta=True": {"include_file_meta": True}}

#: Tools timed on one corpus kind only (kind: "cookies", "mixed", "longseq").
ONLY_ON = {"deid_fast fields=5": {"cookies"},
           GET_FIELDS: {"cookies", "mixed"},
           **{tool: {"mixed"} for tool in GET_FIELDS_OPTIONS}}

#: The deid_fast calls of the native engine: their hand-overs to pydicom are counted.
NATIVE = {"deid_fast", "deid_fast fields=5", GET_FIELDS, *GET_FIELDS_OPTIONS}

#: The deid_fast calls every other row is timed against on exactly its files, in the same
#: rounds: a row's ratio is against the first; ``same_files`` in the row holds both.
BASELINES = ("deid_fast", GET_FIELDS)

#: Hand-overs to pydicom the goal "zero hand-overs" accepts: the reasons ``tests/test_handovers.py``
#: names (``NAMED``: malformed values pydicom judges by its own rules, each with the files it may
#: happen on), as ``deid_fast.decode.fallbacks`` counts them; README.md's table says why.
NAMED_HANDOVERS: list[str] = sorted(corpus.load_test_module("test_handovers").NAMED)


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

    def per_file(**options):
        get_fields = deid_fast.get_fields
        if not options:  # the default call passes no keyword, as a user's does
            return lambda paths: [get_fields(path) for path in paths]
        return lambda paths: [get_fields(path, **options) for path in paths]

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
        GET_FIELDS: per_file(),
        **{tool: per_file(**options) for tool, options in GET_FIELDS_OPTIONS.items()},
        REFERENCE: run_reference,
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

        tools[FASTDICOM] = run_fastdicom

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


def counted_run(fn, paths):
    """``fn(paths)`` once, untimed: its result, and a Counter of the hand-overs to pydicom it
    made (None when deid_fast does not count them)."""
    counter = fallback_counter()
    if counter is not None:
        counter.clear()
    result = fn(paths)
    return result, (None if counter is None else collections.Counter(counter))


def is_named(reason: str, named=None) -> bool:
    """Whether ``reason`` is one of ``named`` (default ``NAMED_HANDOVERS``): equal to an entry,
    or matched by it as an fnmatch pattern."""
    return any(reason == entry or fnmatch.fnmatchcase(reason, entry)
               for entry in (NAMED_HANDOVERS if named is None else named))


def fallback_note(counts, n_files: int) -> str:
    if counts is None:
        return "hand-overs: not counted (no deid_fast.decode.fallbacks)"
    total = sum(counts.values())
    # a hand-over is a whole file or a single element (deid_fast.decode.fallbacks counts both)
    return (f"hand-overs to pydicom: {total} over {n_files} files"
            + (" (reasons below)" if total else ""))


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


#: A run whose wall time exceeds its CPU time by more than this share (plus 0.2 ms) was held
#: off the CPU by another process on the same core: it is counted in the row's note. Ratios are
#: taken from CPU time, which such a wait does not add to.
DISTURBED = 0.10


@dataclasses.dataclass
class Timing:
    """The timed runs of one measurement (a tool on a file list): seconds per run."""
    cpu: list = dataclasses.field(default_factory=list)
    wall: list = dataclasses.field(default_factory=list)
    disturbed: int = 0
    error: BaseException | None = None

    def add(self, cpu: float, wall: float) -> None:
        self.cpu.append(cpu)
        self.wall.append(wall)
        if wall > cpu * (1 + DISTURBED) + 2e-4:
            self.disturbed += 1

    @property
    def runs(self) -> int:
        return len(self.cpu)

    def per_file(self, n_files: int) -> tuple[float, float]:
        """Median CPU and median wall seconds per file."""
        return (statistics.median(self.cpu) / n_files, statistics.median(self.wall) / n_files)

    def note(self) -> str:
        if not self.disturbed:
            return ""
        return (f"wall > CPU + {DISTURBED:.0%} in {self.disturbed} of {self.runs} runs "
                "(another process on the core)")


def _timed(fn, paths) -> tuple[float, float]:
    """CPU and wall seconds of one ``fn(paths)``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn(paths)
    return time.process_time() - c0, time.perf_counter() - t0


def runs_wanted(first_wall: float, repeats: int) -> int:
    """How many runs a measurement gets, from the wall time of its first (warm-up) run."""
    if first_wall > 20:
        return 1
    if first_wall > 5:
        return min(repeats, 3)
    return repeats


def time_rounds(measures: dict, repeats: int) -> dict:
    """Time each measurement of ``measures`` (key -> (fn, paths)) in interleaved rounds: each
    round runs every measurement once, in turn, so that a change in the machine's state during
    the run (another process, the clock, the caches) falls on every tool alike. Returns
    key -> ``Timing``.

    Round 0 is the warm-up; its run counts as a sample only when it takes over a second (a
    run that slow gains nothing from warming up). Its wall time sets how many runs the
    measurement gets (``runs_wanted``): one that has them sits out the later rounds. One that
    raises is timed no more (``Timing.error``). ``gc.collect()`` runs before each run; the
    garbage collector stays on while timing, as it is for a user."""
    timings = {key: Timing() for key in measures}
    wanted: dict = {}
    rnd = 0
    while True:
        due = [key for key in measures if timings[key].error is None
               and (rnd == 0 or (key in wanted and timings[key].runs < wanted[key]))]
        if not due:
            return timings
        for key in due:
            fn, paths = measures[key]
            gc.collect()
            try:
                cpu, wall = _timed(fn, paths)
            except (Exception, SystemExit) as exc:  # deid calls sys.exit on some files
                timings[key].error = exc
                continue
            if rnd == 0:
                wanted[key] = runs_wanted(wall, repeats)
                if wall <= 1:
                    continue
            timings[key].add(cpu, wall)
        rnd += 1


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
    """Time every tool on one corpus, in interleaved rounds; append one row per tool.

    Each tool runs on the files it processes without an exception (deid on a sample); the
    ``BASELINES`` are timed in the same rounds on each such file list, so that every ratio
    compares the same files. ``fallbacks`` (a dict) receives ``name -> {tool: Counter}`` of
    the files each native deid_fast call handed to pydicom on its untimed first run."""
    paths, rejected = supported(check_fast, paths, {})
    if rejected:
        log(f"  {name}: deid_fast rejects {len(rejected)} files, left out: {rejected[:3]} ...")
    if not paths:
        rows.append(dict(corpus=name, kind=kind, corpus_files=0, tool="deid_fast", files=0,
                         runs=0, cpu_us=None, wall_us=None, ratio=None, same_files={},
                         note="rejects every file"))
        return
    plans = []  # (tool, files, note parts, extra row fields)
    handed: dict = {}
    for tool, fn in tools.items():
        if not runs_on(tool, kind):
            continue
        notes, extra = [], {}
        if tool == "deid_fast":
            files = paths
            if rejected:
                notes.append(f"rejects {len(rejected)} (left out)")
        else:
            candidates = evenly(paths, deid_sample) if tool in SAMPLED else paths
            files, failed = supported(fn, candidates, {})
            if tool in SAMPLED and len(candidates) < len(paths):
                notes.append(f"sample of {len(candidates)}")
            if failed:
                notes.append(f"fails on {len(failed)} (left out)")
            if not files:
                rows.append(dict(corpus=name, kind=kind, corpus_files=len(paths), tool=tool,
                                 files=0, runs=0, cpu_us=None, wall_us=None, ratio=None,
                                 same_files={}, note="; ".join(notes) or "no file"))
                continue
            differs = check_variant(tool, fn, tools["deid_fast"], files)
            if differs:
                notes.append(differs)
                log(f"  {name}: {tool} {differs}")
        if tool in NATIVE:
            result, counts = counted_run(fn, files)
            handed[tool] = counts
            notes.append(fallback_note(counts, len(files)))
            if tool == "deid_fast":
                agreement = compare_with_reference(result, tools[REFERENCE], files)
                if agreement:
                    notes.append(agreement)
                    log(f"  {name}: deid_fast {agreement}")
            if tool == GET_FIELDS or tool in GET_FIELDS_OPTIONS:
                extra["fields_per_file"] = sum(map(len, result)) / len(files)
            log(f"  {name}: {tool} {fallback_note(counts, len(files))}" + "".join(
                f"\n      {c:>4}  {r}" for r, c in (counts or collections.Counter()).most_common()))
        plans.append((tool, files, notes, extra))
    if fallbacks is not None:
        fallbacks[name] = handed

    measures = {}
    for tool, files, _, _ in plans:
        for t in (tool, *BASELINES):
            if runs_on(t, kind):
                measures.setdefault((t, tuple(files)), (tools[t], files))
    log(f"  {name}: {len(measures)} measurements, interleaved rounds ...")
    timings = time_rounds(measures, repeats)

    for tool, files, notes, extra in plans:
        key, n = tuple(files), len(files)
        timing = timings[(tool, key)]
        if timing.error is not None:
            notes.append(f"fails: {type(timing.error).__name__}")
            rows.append(dict(corpus=name, kind=kind, corpus_files=len(paths), tool=tool,
                             files=0, runs=0, cpu_us=None, wall_us=None, ratio=None,
                             same_files={}, note="; ".join(notes)))
            continue
        cpu, wall = timing.per_file(n)
        same = {b: timings[(b, key)].per_file(n)[0] * 1e6 for b in BASELINES
                if (b, key) in timings and timings[(b, key)].error is None}
        ratio = cpu * 1e6 / same["deid_fast"] if "deid_fast" in same else None
        notes.append(timing.note())
        note = "; ".join(x for x in notes if x)
        rows.append(dict(corpus=name, kind=kind, corpus_files=len(paths), tool=tool, files=n,
                         runs=timing.runs, cpu_us=cpu * 1e6, wall_us=wall * 1e6, ratio=ratio,
                         same_files=same, note=note, **extra))
        log(f"  {name:<22} {tool:<26} {fmt_us(cpu):>10} us/file CPU {fmt_us(wall):>10} wall"
            f"  {fmt_ratio(ratio):>8}  ({n} files, {timing.runs} runs{'; ' + note if note else ''})")


def compare_with_reference(result, reference, paths) -> str:
    """'' when deid_fast's ``result`` on ``paths`` is the reference's, else what differs.

    A benchmark of two tools that do not do the same work would mislead: say so in the row."""
    try:
        expected = reference(paths)
    except Exception as exc:
        return f"(not compared with the reference: {type(exc).__name__})"
    return compare_results(result, expected)


def compare_results(a, b) -> str:
    """'' when ``a`` is ``b``, else what differs (two ``get_identifiers`` results)."""
    if a == b:
        return ""
    pairs_a = {(e, i) for e, items in a.items() for i in items}
    pairs_b = {(e, i) for e, items in b.items() for i in items}
    differ = sum(1 for e, i in pairs_a & pairs_b if a[e][i] != b[e][i])
    return (f"result differs from the reference: {len(pairs_a)} vs {len(pairs_b)} "
            f"(entity, item) pairs, {differ} with other fields")


def predicted(done: dict, n: int) -> float | None:
    """Seconds a run on size ``n`` should take, from the runs on smaller sizes (``done``:
    size -> seconds), growing at least linearly; None when nothing was run yet."""
    if not done:
        return None
    last = max(done)
    exp = 1.0
    if len(done) >= 2:
        prev = sorted(done)[-2]
        exp = math.log(done[last] / done[prev]) / math.log(last / prev)
    return done[last] * (n / last) ** max(exp, 1.0)


def bench_longseq(files: dict, tools, check_fast, repeats, budget, rows, lin, log,
                  fallbacks=None):
    """Time every tool on each long-sequence file, smallest first, in interleaved rounds per
    size; a tool whose run on the next size is predicted to take longer than ``budget``
    seconds (wall) is not run on it, nor is one that failed on a smaller size. ``lin``
    receives tool -> {N: CPU seconds}."""
    wall_done: dict = {}
    failed: set = set()
    for n in sorted(files):
        name, path = f"longseq N={n}", [files[n]]
        row = dict(corpus=name, kind="longseq", corpus_files=1, files=1, same_files={})
        try:
            check_fast(path)
            result, counts = counted_run(tools["deid_fast"], path)
            agreement = compare_with_reference(result, tools[REFERENCE], path)
        except Exception as exc:  # nothing to compare against on this file
            rows.append(dict(row, tool="deid_fast", files=0, runs=0, cpu_us=None,
                             wall_us=None, ratio=None, note=f"fails: {exc}"[:120]))
            log(f"  {name}: deid_fast fails ({exc!r}); size left out"[:200])
            continue
        if fallbacks is not None:
            fallbacks[name] = {"deid_fast": counts}
        log(f"  {name}: deid_fast {fallback_note(counts, 1)}" + "".join(
            f"\n      {c:>4}  {r}" for r, c in (counts or collections.Counter()).most_common()))
        if agreement:
            log(f"  {name}: deid_fast {agreement}")
        notes = {"deid_fast": [agreement, fallback_note(counts, 1)]}
        measures = {}
        for tool, fn in tools.items():
            if tool == "read 4 KiB (floor)" or not runs_on(tool, "longseq") or tool in failed:
                continue
            guess = None if tool == "deid_fast" else predicted(wall_done.get(tool, {}), n)
            if guess is not None and guess > budget:
                rows.append(dict(row, tool=tool, runs=0, cpu_us=None, wall_us=None, ratio=None,
                                 note=f"not run: about {guess:,.0f} s a run predicted"))
                log(f"  {name:<22} {tool:<26} skipped (about {guess:,.0f} s predicted)")
                continue
            differs = check_variant(tool, fn, tools["deid_fast"], path)
            if differs:
                log(f"  {name}: {tool} {differs}")
            notes.setdefault(tool, []).append(differs)
            measures[tool] = (fn, path)
        timings = time_rounds(measures, repeats)
        fast = timings["deid_fast"]
        fast_cpu = None if fast.error is not None else statistics.median(fast.cpu)
        for tool, timing in timings.items():
            if timing.error is not None:
                failed.add(tool)
                rows.append(dict(row, tool=tool, files=0, runs=0, cpu_us=None, wall_us=None,
                                 ratio=None, note=f"fails: {type(timing.error).__name__}"))
                log(f"  {name:<22} {tool:<26} fails: {timing.error!r}"[:200])
                continue
            cpu, wall = timing.per_file(1)
            lin.setdefault(tool, {})[n] = cpu
            wall_done.setdefault(tool, {})[n] = wall
            ratio = None if fast_cpu is None else cpu / fast_cpu
            note = "; ".join(x for x in notes.get(tool, []) + [timing.note()] if x)
            rows.append(dict(row, tool=tool, runs=timing.runs, cpu_us=cpu * 1e6,
                             wall_us=wall * 1e6, ratio=ratio,
                             same_files={} if fast_cpu is None else {"deid_fast": fast_cpu * 1e6},
                             note=note))
            log(f"  {name:<22} {tool:<26} {cpu * 1e3:>10.2f} ms/file CPU {wall * 1e3:>10.2f} "
                f"wall  {fmt_ratio(ratio):>8}")


def markdown_main(rows) -> list[str]:
    out = ["| corpus | tool | files | runs | CPU µs per file (median) | wall µs per file (median) "
           "| ratio to deid_fast (CPU) | note |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    order: dict = {}
    for r in rows:
        order.setdefault(r["corpus"], len(order))
    for r in sorted(rows, key=lambda r: order[r["corpus"]]):  # stable: tool order kept
        cpu, wall = ("-" if r[k] is None else fmt_us(r[k] / 1e6) for k in ("cpu_us", "wall_us"))
        out.append(f"| {r['corpus']} | {r['tool']} | {r['files']} | {r['runs']} | {cpu} | "
                   f"{wall} | {fmt_ratio(r['ratio'])} | {r['note']} |")
    return out


def markdown_linearity(lin: dict, sizes) -> list[str]:
    sizes = sorted(sizes)
    head = "| tool | " + " | ".join(f"N={n:,} (CPU ms)" for n in sizes)
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


def markdown_fallbacks(fallbacks: dict, named=None) -> list[str]:
    """Per corpus, how many files each native deid_fast call handed to pydicom, and why; a
    reason the goal accepts (``NAMED_HANDOVERS``) is marked "named"."""
    out = []
    for name, by_tool in fallbacks.items():
        cells = [f"{tool} " + ("not counted" if counts is None else f"{sum(counts.values())}")
                 for tool, counts in by_tool.items()]
        out.append(f"- {name}: " + "; ".join(cells))
        for tool, counts in by_tool.items():
            for reason, count in (counts or collections.Counter()).most_common():
                mark = " (named)" if is_named(reason, named) else ""
                out.append(f"  - {tool}: {reason}: {count}{mark}")
    return out


#: A step N -> 10 N counts as linear when its log-log slope is at most this.
LINEAR_SLOPE = 1.10


#: The sizes the linearity goal names (``--quick`` times only the first two).
GOAL_SIZES = (150, 1500, 15000)


# --------------------------------------------------------------------------------------
# Goals (issue 12): a table of goals, each a measure of this run's rows and a test
# --------------------------------------------------------------------------------------

class Results(NamedTuple):
    """What a run measured, as the goals read it."""
    rows: list
    lin: dict
    fallbacks: dict
    named: list
    sizes: tuple

    def row(self, corpus_prefix: str, tool: str) -> dict | None:
        for r in self.rows:
            if r["corpus"].startswith(corpus_prefix) and r["tool"] == tool:
                return r
        return None


class Measured(NamedTuple):
    value: float | None  # None: not measured
    text: str            # what was measured, for the table
    rows: tuple = ()     # the rows it was read from


class Goal(NamedTuple):
    must: bool                           # must be met (pass / FAIL), or aimed for (met / not)
    goal: str
    target: str
    measure: Callable[[Results], Measured]
    ok: Callable[[float], bool]


def _us(us: float) -> str:
    return fmt_us(us / 1e6)


def time_ratio(corpus_prefix: str, tool: str, base: str, both: bool = False):
    """``tool``'s CPU time per file over ``base``'s (a deid_fast call of ``BASELINES``), on
    exactly the files ``tool`` was timed on (``both``: say so, "the files both read")."""
    def measure(res: Results) -> Measured:
        r = res.row(corpus_prefix, tool)
        if r is None or r["cpu_us"] is None:
            return Measured(None, f"{tool} not timed on {corpus_prefix}")
        if base not in r["same_files"]:
            return Measured(None, f"{base} not timed on {tool}'s files")
        if tool == base:
            return Measured(1.0, "the same row", (r,))
        other, n = r["same_files"][base], r["files"]
        on = f"the {n} files both read" if both else f"{n} file{'s' if n != 1 else ''}"
        return Measured(r["cpu_us"] / other,
                        f"{fmt_ratio(r['cpu_us'] / other)} ({_us(r['cpu_us'])} vs {_us(other)} "
                        f"µs CPU per file, {on})", (r,))
    return measure


def per_field_ratio(corpus_prefix: str, tool: str, base: str = GET_FIELDS):
    """CPU time per reported field of ``tool`` over ``base``'s: each row's µs per file over
    the fields it reports per file (counted over its files)."""
    def measure(res: Results) -> Measured:
        r, d = res.row(corpus_prefix, tool), res.row(corpus_prefix, base)
        if any(x is None or x["cpu_us"] is None or "fields_per_file" not in x for x in (r, d)):
            return Measured(None, f"{tool} or {base} not timed on {corpus_prefix}")
        if r["files"] != d["files"]:
            return Measured(None, f"timed on {r['files']} and {d['files']} files: not the same")
        a, b = (x["cpu_us"] / x["fields_per_file"] for x in (r, d))
        return Measured(a / b, f"{fmt_ratio(a / b)} ({a:.2f} vs {b:.2f} µs CPU per field; "
                        f"{r['fields_per_file']:.1f} vs {d['fields_per_file']:.1f} fields per "
                        f"file, {r['files']} files)", (r, d))
    return measure


def unnamed_handovers(res: Results) -> Measured:
    """Files handed to pydicom for a reason not in ``NAMED_HANDOVERS``, over every corpus."""
    if not res.fallbacks:
        return Measured(None, "no corpus timed")
    if any(c is None for by_tool in res.fallbacks.values() for c in by_tool.values()):
        return Measured(None, "not counted (no deid_fast.decode.fallbacks)")
    unnamed, named = collections.Counter(), collections.Counter()
    for name, by_tool in res.fallbacks.items():
        for counts in by_tool.values():
            for reason, c in counts.items():
                (named if is_named(reason, res.named) else unnamed)[name.split(" (")[0]] += c
    text = (", ".join(f"{name} {c}" for name, c in unnamed.items()) if unnamed
            else f"0 on {len(res.fallbacks)} corpora")
    if named:
        text += "; named: " + ", ".join(f"{name} {c}" for name, c in named.items())
    return Measured(sum(unnamed.values()), text + " (list above)")


def linearity(res: Results) -> Measured:
    """The largest log-log slope of deid_fast's time over the tenfold steps of ``sizes``."""
    done, want = res.lin.get("deid_fast", {}), sorted(res.sizes)
    have = [n for n in want if n in done]
    if len(have) < 2:
        return Measured(None, "fewer than two sizes timed")
    steps = list(zip(have, have[1:]))
    slopes = [math.log(done[b] / done[a]) / math.log(b / a) for a, b in steps]
    text = " / ".join(f"{done[n] * 1e3:,.1f}" for n in have) + " ms CPU; " + ", ".join(
        f"{a:,}→{b:,}: {done[b] / done[a]:.1f}x (slope {sl:.2f})"
        for (a, b), sl in zip(steps, slopes))
    missing = [n for n in want if n not in done]
    if missing:
        return Measured(None, f"{text}; N={', '.join(f'{n:,}' for n in missing)} not timed")
    return Measured(max(slopes), text)


#: Issue 12's goals. Ratios are CPU time; "x fastdicom" is fastdicom's time over deid_fast's.
GOALS = [
    Goal(True, "no per-call tax (cookies): get_fields per file vs get_identifiers",
         "<= 1.2x get_identifiers' time per file",
         time_ratio("cookies", GET_FIELDS, "deid_fast"), lambda v: v <= 1.2),
    Goal(True, "zero hand-overs to pydicom on every corpus, except named ones",
         "0 files for a reason not in NAMED_HANDOVERS", unnamed_handovers, lambda v: v == 0),
    Goal(True, "cookies: get_fields per file vs fastdicom", "ahead (> 1x)",
         time_ratio("cookies", FASTDICOM, GET_FIELDS), lambda v: v > 1),
    Goal(True, "cookies: get_identifiers vs fastdicom", "ahead (> 1x)",
         time_ratio("cookies", FASTDICOM, "deid_fast"), lambda v: v > 1),
    Goal(True, "mixed, files both read: get_fields per file vs fastdicom", "ahead (> 1x)",
         time_ratio("mixed", FASTDICOM, GET_FIELDS, both=True), lambda v: v > 1),
    Goal(True, "mixed: get_identifiers vs plain pydicom", ">= 30x faster",
         time_ratio("mixed", REFERENCE, "deid_fast"), lambda v: v >= 30),
    Goal(False, "cookies: get_fields per file vs fastdicom", ">= 2x faster",
         time_ratio("cookies", FASTDICOM, GET_FIELDS), lambda v: v >= 2),
    Goal(False, "cookies: get_identifiers vs fastdicom", ">= 2.5x faster",
         time_ratio("cookies", FASTDICOM, "deid_fast"), lambda v: v >= 2.5),
    Goal(False, "mixed, files both read: get_fields per file vs fastdicom", ">= 2x faster",
         time_ratio("mixed", FASTDICOM, GET_FIELDS, both=True), lambda v: v >= 2),
    *(Goal(False, f"mixed: {tool.removeprefix('deid_fast ')}: time per reported field",
           "<= 1.25x the default's", per_field_ratio("mixed", tool), lambda v: v <= 1.25)
      for tool in GET_FIELDS_OPTIONS),
    Goal(False, "1,500-item sequence: get_identifiers vs plain pydicom", ">= 100x faster",
         time_ratio("longseq N=1500", REFERENCE, "deid_fast"), lambda v: v >= 100),
    Goal(False, "sequence time linear in items (" + " / ".join(f"{n:,}" for n in GOAL_SIZES)
         + ")", f"each tenfold step: log-log slope <= {LINEAR_SLOPE:.2f}", linearity,
         lambda v: v <= LINEAR_SLOPE),
]


def goals(rows: list[dict], lin: dict, fallbacks: dict, sizes=GOAL_SIZES, named=None,
          cookies_files: int = corpus.COOKIES_FILES, table=None) -> list[dict]:
    """Each goal of ``table`` (default ``GOALS``) checked against the numbers of this run.

    Each result: kind ("must" or "aim"), goal, target, measured, result: "pass" / "FAIL" for a
    must, "met" / "not met" for an aim, "not measured" when the run lacks what it needs. A
    result read from a cookies corpus of fewer than ``cookies_files`` files says so."""
    res = Results(rows, lin, fallbacks, NAMED_HANDOVERS if named is None else named,
                  tuple(sizes))
    out = []
    for g in GOALS if table is None else table:
        m = g.measure(res)
        if m.value is None:
            result = "not measured"
        elif g.must:
            result = "pass" if g.ok(m.value) else "FAIL"
        else:
            result = "met" if g.ok(m.value) else "not met"
        short = {r["corpus_files"] for r in m.rows
                 if r.get("kind") == "cookies" and r["corpus_files"] < cookies_files}
        if m.value is not None and short:
            result += f" (on {min(short):,} of {cookies_files:,} cookies files)"
        out.append(dict(kind="must" if g.must else "aim", goal=g.goal, target=g.target,
                        measured=m.text, result=result))
    return out


def markdown_goals(goal_rows: list[dict]) -> list[str]:
    out = ["| kind | goal | target | measured | result |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {g['kind']} | {g['goal']} | {g['target']} | {g['measured']} | {g['result']} |"
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
        log("timing (interleaved rounds, median of %d runs) ..." % repeats)
        bench_corpus(f"cookies ({len(cookies)} files)", cookies, tools, check_fast, repeats,
                     deid_sample, rows, log, kind="cookies", fallbacks=fallbacks)
        bench_corpus(f"mixed ({len(mixed)} files)", mixed, tools, check_fast, repeats,
                     deid_sample, rows, log, kind="mixed", fallbacks=fallbacks)
        bench_longseq(longseq, tools, check_fast, repeats, args.budget, rows, lin, log,
                      fallbacks=fallbacks)
    goal_rows = goals(rows, lin, fallbacks, cookies_files=corpus.COOKIES_FILES)
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
        f"- timing: interleaved rounds (each round runs every tool of a corpus once, in "
        f"turn); each number: the median over {repeats} rounds (fewer for runs over 5 s), "
        f"CPU time (`time.process_time`) and wall time per file; ratio = tool CPU time / "
        f"deid_fast (`get_identifiers`) CPU time on the same files, timed in the same rounds "
        f"(> 1: deid_fast is faster)",
        "",
    ]
    lines += markdown_main(rows)
    lines += ["", "Files the native engine handed to pydicom (`deid_fast.decode.fallbacks`, "
              "counted on each native deid_fast call's untimed first run over each corpus, "
              "by reason; \"named\": a reason in `NAMED_HANDOVERS`):", ""]
    lines += markdown_fallbacks(fallbacks)
    lines += ["", "### Time-linearity on the long-sequence files", "",
              "CPU time for one file whose sequence holds N items (each item: 5 one-item "
              "sequences, 10 leaf elements). Growth is the time ratio between sizes "
              "(10x is linear); exponent is the log-log slope from the smallest to the "
              "largest size run (1.00 is linear, 2.00 quadratic).", ""]
    lines += markdown_linearity(lin, sizes)
    lines += ["", "### Goals", "",
              f"Issue 12's targets, from the numbers above (one core: {pinning}; warm page "
              "cache; ratios of CPU time, each between two tools timed on the same files in "
              "the same rounds). \"must\" goals pass or FAIL, \"aim\" goals are met or "
              "not. \"Nx fastdicom\" or \"Nx faster\" is the other tool's time over "
              "deid_fast's; \"faster than plain pydicom\" is the `pydicom (reference)` row's "
              "ratio.", ""]
    lines += markdown_goals(goal_rows)
    print("\n".join(lines))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_lines(pinning, argv_shown) + [build], "rows": rows,
                       "goals": goal_rows,
                       "named_handovers": NAMED_HANDOVERS,
                       "fallbacks": {name: {t: (None if c is None else dict(c))
                                            for t, c in by_tool.items()}
                                     for name, by_tool in fallbacks.items()},
                       "linearity": {t: {str(n): s for n, s in d.items()}
                                     for t, d in lin.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
