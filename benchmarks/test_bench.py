"""pytest-benchmark versions of the comparisons of ``run.py``, on smaller sets.

    .venv/bin/pytest benchmarks/ --benchmark-only

Without ``--benchmark-only`` (or ``--benchmark-enable``) every test here is skipped, so these
never run as part of a test run; the test suite lives in ``tests/`` anyway (``testpaths``).

Each benchmark group compares the tools on exactly the same files, so the group's table reads
as a comparison; ``extra_info`` holds the file count (divide a round by it for per-file time).
The tools are those of ``run.py`` (``make_tools``): deid_fast (the native engine), deid_fast
with ``engine="pydicom"``, deid_fast with ``fields=`` five keywords (cookies only), pydicom
(reference), deid, fastdicom and the 4 KiB read floor.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")

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


@pytest.fixture(autouse=True)
def _only_when_benchmarking(request):
    opt = request.config.getoption
    if not (opt("benchmark_only") or opt("benchmark_enable")):
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
def test_bench(benchmark, tools, corpora, group, key, tool):
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
