"""pytest-benchmark versions of the comparisons of ``run.py``, on smaller sets.

    .venv/bin/pytest benchmarks/ --benchmark-only

Without ``--benchmark-only`` (or ``--benchmark-enable``) every test here is skipped, so these
never run as part of a test run; the test suite lives in ``tests/`` anyway (``testpaths``).

Each benchmark group compares the tools on exactly the same files, so the group's table reads
as a comparison; ``extra_info`` holds the file count (divide a round by it for per-file time).
The tools are those of ``run.py`` (``make_tools``): deid_fast (the native engine), deid_fast
with ``engine="pydicom"``, deid_fast with ``fields=`` five keywords (cookies only), pydicom
(reference), deid, fastdicom and the 4 KiB read floor.

The tests of ``run.py``'s goals table at the end (``test_goals_*``) time nothing: they check,
on made-up rows, which goals pass and fail. They run without ``--benchmark-only`` (and
without pytest-benchmark); ``--benchmark-only`` skips them.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from pathlib import Path

import collections

import pytest

try:
    import pytest_benchmark  # noqa: F401
except ImportError:
    @pytest.fixture
    def benchmark():
        pytest.skip("pytest-benchmark is not installed")

BENCH_DIR = Path(__file__).resolve().parent


def _load(name: str):
    modname = f"_deid_fast_bench_{name}"
    if modname not in sys.modules:
        spec = importlib.util.spec_from_file_location(modname, BENCH_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    return sys.modules[modname]


corpus = _load("corpus")
run = _load("run")

# a few rounds of one call each, not calibrated loops
SLOW = {"pydicom (reference)", "deid_fast (pydicom engine)", "deid"}
NATIVE, PYDICOM_ENGINE, FIELDS_5 = "deid_fast", "deid_fast (pydicom engine)", "deid_fast fields=5"
FAST_TOOLS = [NATIVE, PYDICOM_ENGINE, "pydicom (reference)", "fastdicom", "read 4 KiB (floor)"]
DEID_TOOLS = [NATIVE, PYDICOM_ENGINE, "pydicom (reference)", "deid"]
SEQ_TOOLS = [NATIVE, PYDICOM_ENGINE, "pydicom (reference)", "fastdicom"]

# (group, corpus key, tools); every tool of a group runs on the same files
CASES = [
    ("cookies-140", "cookies", FAST_TOOLS[:2] + [FIELDS_5] + FAST_TOOLS[2:]),
    ("cookies-7-with-deid", "cookies-deid", DEID_TOOLS),
    ("mixed", "mixed", FAST_TOOLS),
    ("mixed-10-with-deid", "mixed-deid", DEID_TOOLS),
    ("longseq-150", "longseq-150", SEQ_TOOLS + ["deid"]),
    ("longseq-1500", "longseq-1500", SEQ_TOOLS),
]

# test ids: the first word of the tool's name, the deid_fast variants spelled out
SHORT = {PYDICOM_ENGINE: "deid_fast-pydicom-engine", FIELDS_5: "deid_fast-fields5"}


def _short(tool: str) -> str:
    return SHORT.get(tool, tool.split()[0])


@pytest.fixture
def _only_when_benchmarking(request):
    opt = request.config.getoption
    if not (opt("benchmark_only", False) or opt("benchmark_enable", False)):
        pytest.skip("benchmarks run only with --benchmark-only (or --benchmark-enable)")


@pytest.fixture(scope="session")
def tools():
    try:
        import deid_fast  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"deid_fast is not importable (pip install .): {exc}")
    tools, check_fast = run.make_tools()
    return tools, check_fast


@pytest.fixture(scope="session")
def corpora(tools):
    """The file lists of each case: files every tool of the case processes."""
    all_tools, check_fast = tools
    cookies = corpus.build_cookies()
    longseq = corpus.build_longseq((150, 1500))
    mixed = corpus.build_mixed()
    run.warm_page_cache(cookies[:140] + mixed + list(longseq.values()))

    def usable(paths, names):
        with run.Quiet():
            paths, _ = run.supported(check_fast, paths, {})
            for name in names:
                if name in all_tools:
                    paths, _ = run.supported(all_tools[name], paths, {})
        return paths

    return {
        "cookies": usable(cookies[:140], ["fastdicom"]),
        "cookies-deid": usable(cookies[:7], ["deid"]),
        "mixed": usable(mixed, ["fastdicom"]),
        "mixed-deid": usable(run.evenly(mixed, 20), ["deid"])[:10],
        "longseq-150": usable([longseq[150]], ["fastdicom", "deid"]),
        "longseq-1500": usable([longseq[1500]], ["fastdicom"]),
    }


@pytest.mark.parametrize(
    "group,key,tool",
    [pytest.param(g, k, t, id=f"{g}-{_short(t)}") for g, k, ts in CASES for t in ts],
)
def test_bench(_only_when_benchmarking, benchmark, tools, corpora, group, key, tool):
    all_tools, _ = tools
    if tool not in all_tools:
        pytest.skip(f"{tool} is not installed")
    paths = corpora[key]
    if not paths:
        pytest.skip(f"no file of {key} that every tool of the group processes")
    fn = all_tools[tool]
    benchmark.group = group
    benchmark.extra_info["files"] = len(paths)
    benchmark.extra_info["tool"] = tool
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if tool in SLOW:
                benchmark.pedantic(fn, args=(paths,), rounds=3, iterations=1, warmup_rounds=1)
            else:
                benchmark(fn, paths)
    finally:
        logging.disable(logging.NOTSET)


# --------------------------------------------------------------------------------------
# run.py's goals table (issue 12): which goals pass, on made-up rows; nothing is timed
# --------------------------------------------------------------------------------------

GET_FIELDS, PRIVATE, META = run.GET_FIELDS, *run.GET_FIELDS_OPTIONS
COOKIES, MIXED = "cookies (1400 files)", "mixed (175 files)"


def _row(corpus_name, tool, cpu_us, files, corpus_files, kind, same=None, **extra):
    return dict(corpus=corpus_name, kind=kind, corpus_files=corpus_files, tool=tool,
                files=files, runs=5, cpu_us=cpu_us, wall_us=cpu_us * 1.05, ratio=None,
                same_files=same or {}, note="", **extra)


def _made_up(cookies_files=1400, **cpu):
    """Rows, linearity and hand-overs of a run that meets every goal; ``cpu`` overrides a
    number by name (see ``base``)."""
    n = dict(ck_fast=40.0, ck_fields=44.0, ck_fd=110.0,              # cookies
             mx_fast=100.0, mx_fields=90.0, mx_ref=3500.0,           # mixed, every file
             mx_fd=250.0, mx_fd_fast=95.0, mx_fd_fields=85.0,        # mixed, fastdicom's files
             mx_private=110.0, mx_meta=100.0,                        # 60 and 55 fields a file
             ls_fast=40_000.0, ls_ref=5_000_000.0)                   # longseq N=1500
    n.update(cpu)
    ck = f"cookies ({cookies_files} files)"
    cookies = dict(corpus_files=cookies_files, kind="cookies")
    mixed = dict(corpus_files=175, kind="mixed")
    rows = [
        _row(ck, "deid_fast", n["ck_fast"], cookies_files, **cookies),
        _row(ck, GET_FIELDS, n["ck_fields"], cookies_files, **cookies, fields_per_file=40.0,
             same={"deid_fast": n["ck_fast"], GET_FIELDS: n["ck_fields"]}),
        _row(ck, "fastdicom", n["ck_fd"], cookies_files, **cookies,
             same={"deid_fast": n["ck_fast"], GET_FIELDS: n["ck_fields"]}),
        _row(MIXED, "deid_fast", n["mx_fast"], 175, **mixed),
        _row(MIXED, GET_FIELDS, n["mx_fields"], 175, **mixed, fields_per_file=50.0,
             same={"deid_fast": n["mx_fast"], GET_FIELDS: n["mx_fields"]}),
        _row(MIXED, PRIVATE, n["mx_private"], 175, **mixed, fields_per_file=60.0),
        _row(MIXED, META, n["mx_meta"], 175, **mixed, fields_per_file=55.0),
        _row(MIXED, "pydicom (reference)", n["mx_ref"], 175, **mixed,
             same={"deid_fast": n["mx_fast"], GET_FIELDS: n["mx_fields"]}),
        _row(MIXED, "fastdicom", n["mx_fd"], 165, **mixed,
             same={"deid_fast": n["mx_fd_fast"], GET_FIELDS: n["mx_fd_fields"]}),
        _row("longseq N=1500", "deid_fast", n["ls_fast"], 1, 1, "longseq",
             same={"deid_fast": n["ls_fast"]}),
        _row("longseq N=1500", "pydicom (reference)", n["ls_ref"], 1, 1, "longseq",
             same={"deid_fast": n["ls_fast"]}),
    ]
    lin = {"deid_fast": {150: 0.004, 1500: 0.041, 15000: 0.42}}
    fallbacks = {ck: {"deid_fast": collections.Counter(), GET_FIELDS: collections.Counter()},
                 MIXED: {"deid_fast": collections.Counter(), PRIVATE: collections.Counter()},
                 "longseq N=1500": {"deid_fast": collections.Counter()}}
    return rows, lin, fallbacks


def _results(rows, lin, fallbacks, **kw):
    """(kind, goal) -> (result, measured)."""
    return {(g["kind"], g["goal"]): (g["result"], g["measured"])
            for g in run.goals(rows, lin, fallbacks, **kw)}


def _result(results, kind, start):
    (found,) = [v for (k, goal), v in results.items() if k == kind and goal.startswith(start)]
    return found


def test_goals_all_met():
    results = _results(*_made_up())
    assert len(results) == len(run.GOALS)
    assert {r for (kind, _), (r, _) in results.items() if kind == "must"} == {"pass"}
    assert {r for (kind, _), (r, _) in results.items() if kind == "aim"} == {"met"}
    assert "1.10x (44.0 vs 40.0 µs CPU per file" in _result(results, "must", "no per-call")[1]


@pytest.mark.parametrize("changes,kind,goal,want", [
    # the per-call tax: get_fields per file within 1.2x of get_identifiers
    (dict(ck_fields=52.0), "must", "no per-call tax", "FAIL"),
    (dict(ck_fields=47.9), "must", "no per-call tax", "pass"),
    # ahead of fastdicom is a must; 2x and 2.5x are aims
    (dict(ck_fd=40.0), "must", "cookies: get_identifiers vs fastdicom", "FAIL"),
    (dict(ck_fd=60.0), "must", "cookies: get_identifiers vs fastdicom", "pass"),
    (dict(ck_fd=60.0), "aim", "cookies: get_identifiers vs fastdicom", "not met"),
    (dict(ck_fd=60.0), "must", "cookies: get_fields per file vs fastdicom", "pass"),
    (dict(ck_fd=60.0), "aim", "cookies: get_fields per file vs fastdicom", "not met"),
    (dict(ck_fd=44.0), "must", "cookies: get_fields per file vs fastdicom", "FAIL"),
    # mixed: against get_fields on the files both read, not on every file
    (dict(mx_fields=300.0), "must", "mixed, files both read", "pass"),
    (dict(mx_fd_fields=260.0), "must", "mixed, files both read", "FAIL"),
    (dict(mx_fd_fields=150.0), "must", "mixed, files both read", "pass"),
    (dict(mx_fd_fields=150.0), "aim", "mixed, files both read", "not met"),
    # 30x plain pydicom on mixed, 100x on the 1,500-item sequence
    (dict(mx_ref=2900.0), "must", "mixed: get_identifiers vs plain pydicom", "FAIL"),
    (dict(ls_ref=3_900_000.0), "aim", "1,500-item sequence", "not met"),
    # time per reported field: 110 / 60 vs 90 / 50 is 1.02x; 140 / 60 is 1.30x
    (dict(mx_private=140.0), "aim", f"mixed: {PRIVATE.removeprefix('deid_fast ')}", "not met"),
    (dict(mx_private=140.0), "aim", f"mixed: {META.removeprefix('deid_fast ')}", "met"),
    (dict(mx_meta=130.0), "aim", f"mixed: {META.removeprefix('deid_fast ')}", "not met"),
])
def test_goals_one_number_changed(changes, kind, goal, want):
    results = _results(*_made_up(**changes))
    assert _result(results, kind, goal)[0] == want
    others = {k: r for k, (r, _) in results.items() if not (k[0] == kind
                                                             and k[1].startswith(goal))}
    assert set(others.values()) <= {"pass", "met", "FAIL", "not met"}


def test_goals_per_field_measured():
    results = _results(*_made_up(mx_private=140.0))
    measured = _result(results, "aim", f"mixed: {PRIVATE.removeprefix('deid_fast ')}")[1]
    assert measured.startswith("1.30x (2.33 vs 1.80 µs CPU per field; 60.0 vs 50.0 fields")


def test_goals_handovers_named_or_not():
    rows, lin, fallbacks = _made_up()
    reason = "private element (0019,100A) has VR 'US' by pydicom's private dictionary"
    fallbacks[MIXED][PRIVATE][reason] = 3
    must = "zero hand-overs"
    assert _result(_results(rows, lin, fallbacks, named=[]), "must", must)[0] == "FAIL"
    assert "mixed 3" in _result(_results(rows, lin, fallbacks, named=[]), "must", must)[1]
    assert _result(_results(rows, lin, fallbacks, named=[reason]), "must", must)[0] == "pass"
    pattern = "private element * has VR * by pydicom's private dictionary"
    assert _result(_results(rows, lin, fallbacks, named=[pattern]), "must", must)[0] == "pass"
    fallbacks["longseq N=1500"]["deid_fast"]["tags out of order or repeated"] = 1
    got = _result(_results(rows, lin, fallbacks, named=[pattern]), "must", must)
    assert got[0] == "FAIL" and "longseq N=1500 1" in got[1]
    fallbacks[MIXED]["deid_fast"] = None  # not counted: nothing to judge
    assert _result(_results(rows, lin, fallbacks), "must", must)[0] == "not measured"


def test_goals_linearity():
    rows, lin, fallbacks = _made_up()
    lin["deid_fast"][15000] = 0.6                    # 1,500 -> 15,000: 14.6x, slope 1.17
    assert _result(_results(rows, lin, fallbacks), "aim", "sequence time")[0] == "not met"
    del lin["deid_fast"][15000]                      # a --quick run: N up to 1,500
    assert _result(_results(rows, lin, fallbacks), "aim", "sequence time")[0] == "not measured"


def test_goals_not_measured_without_rows():
    rows, lin, fallbacks = _made_up()
    rows = [r for r in rows if r["tool"] != "fastdicom"]
    results = _results(rows, lin, fallbacks)
    for kind in ("must", "aim"):
        for goal in ("cookies: get_fields per file vs fastdicom",
                     "cookies: get_identifiers vs fastdicom", "mixed, files both read"):
            assert _result(results, kind, goal)[0] == "not measured"
    assert _result(results, "must", "no per-call tax")[0] == "pass"


def test_goals_on_a_short_cookies_corpus_say_so():
    results = _results(*_made_up(cookies_files=350), cookies_files=1400)
    result = _result(results, "must", "no per-call tax")[0]
    assert result == "pass (on 350 of 1,400 cookies files)"
    assert _result(results, "must", "mixed: get_identifiers vs plain")[0] == "pass"
