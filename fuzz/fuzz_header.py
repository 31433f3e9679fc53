#!/usr/bin/env python3
"""Coverage-guided fuzzing of deid_fast's header reading (issue 4, item 1) with atheris.

Each input is written to one file in /dev/shm and read by `deid_fast.get_fields`:

- native engine, default options;
- native engine, expand_sequences=False, include_private=True, include_file_meta=True;
- the same two calls with engine="pydicom".

Only `deid_fast.InvalidDicomError` is an accepted failure; any other exception is a finding. The two engines must agree for each option set: the same dict
(same key order, same leaf types, NaN == NaN, -0.0 != 0.0) or both rejecting with the same
`kind`; a disagreement is a finding too. Python-level findings are recorded and fuzzing goes on:
up to 3 inputs per coarse signature are written to fuzz/crashes/finding-<signature>-<sha>
(with a .txt holding the message/traceback). FUZZ_STOP_ON_FINDING=1 raises instead (atheris then
stops and reports the uncaught exception as a crash), which is how to replay one input. Memory errors in the
compiled core are found by AddressSanitizer (run under asan_with_fuzzer.so, see README.md).

Run through `make fuzz`; by hand:
    LD_PRELOAD=$(python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so \
    ASAN_OPTIONS=detect_leaks=0 PYTHONPATH=fuzz/build python fuzz/fuzz_header.py CORPUS ...
A single input (e.g. a regression file) is replayed by passing its path instead of a corpus dir.
"""
import math
import re
import os
import sys
import warnings

import atheris

with atheris.instrument_imports(include=["deid_fast"]):
    import deid_fast
    from deid_fast import InvalidDicomError

import logging

logging.disable(logging.CRITICAL)      # skipped-file warnings etc. are noise here
warnings.simplefilter("ignore")

PATH = os.environ.get("FUZZ_INPUT_PATH", f"/dev/shm/deid_fast_fuzz_{os.getpid()}.dcm")

OPTION_SETS = (
    {},
    {"expand_sequences": False, "include_private": True, "include_file_meta": True},
)


class EngineDisagreement(AssertionError):
    """The native and pydicom engines gave different outcomes for one input."""


_reasons = {}   # engine -> the reason of its last rejection, for the finding's signature


def outcome(engine="native", **kwargs):
    try:
        return deid_fast.get_fields(PATH, engine=engine, **kwargs)
    except InvalidDicomError as exc:
        _reasons[engine] = exc.reason
        return ("rejected", exc.kind)


def _coarse(text, size=64):
    """A reason or keyword with numbers and quoted values masked, as a file-name-safe token."""
    text = re.sub(r"b?'[^']*'|\"[^\"]*\"", "V", str(text))
    text = re.sub(r"[0-9A-Fa-f]{4},[0-9A-Fa-f]{4}", "TAG", text)
    text = re.sub(r"\d+", "N", text)
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:size]


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def first_difference(a, b, where="result"):
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} {a!r:.300} vs {type(b).__name__} {b!r:.300}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return (f"{where}: keys only native {[k for k in a if k not in b][:10]}, "
                    f"only pydicom {[k for k in b if k not in a][:10]}, "
                    f"order same={sorted(map(str, a)) == sorted(map(str, b))}")
        for k in a:
            if not same(a[k], b[k]):
                return first_difference(a[k], b[k], f"{where}[{k!r}]")
    if isinstance(a, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if not same(x, y):
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {a!r:.300} vs {b!r:.300}"


FINDINGS = os.environ.get("FUZZ_FINDINGS_DIR", os.path.join(os.path.dirname(__file__), "crashes"))
KEEP_PER_SIGNATURE = 3
_seen = {}


def signature(options_index, native, reference):
    """A coarse class of a disagreement, so that one cause is not reported a thousand times."""
    tag = f"opt{options_index}"
    if isinstance(native, tuple) and isinstance(reference, tuple):
        return f"{tag}-kinds-{native[1]}-vs-{reference[1]}"
    if isinstance(native, tuple):
        return f"{tag}-native-rejects-{native[1]}-{_coarse(_reasons.get('native'))}"
    if isinstance(reference, tuple):
        return f"{tag}-pydicom-rejects-{reference[1]}-{_coarse(_reasons.get('pydicom'))}"
    if list(native) != list(reference):
        only_native = any(k not in reference for k in native)
        only_ref = any(k not in native for k in reference)
        return f"{tag}-keys-{'native+' if only_native else ''}{'pydicom+' if only_ref else ''}order"
    for key in native:
        a, b = native[key], reference[key]
        if not same(a, b):
            kind = f"{type(a).__name__}-{type(b).__name__}"
            if "\x1b" in str(a) + str(b):
                kind += "-escape"
            elif isinstance(a, str) and isinstance(b, str):
                if a.strip() == b.strip():
                    kind += "-whitespace"
                elif a.strip("\x00 \n\r\t\f\v") == b.strip("\x00 \n\r\t\f\v"):
                    kind += "-nul-or-space"
            keyword = _coarse(re.sub(r"_[0-9]+_", "_", str(key)), 32)
            return f"{tag}-value-{kind}-{keyword}"
    return f"{tag}-other"


def record(sig, data, message):
    """Keeps up to KEEP_PER_SIGNATURE inputs of each signature in FINDINGS; prints new ones."""
    count = _seen.get(sig, 0)
    _seen[sig] = count + 1
    if count < KEEP_PER_SIGNATURE:
        import hashlib
        os.makedirs(FINDINGS, exist_ok=True)
        name = os.path.join(FINDINGS, f"finding-{sig}-{hashlib.sha1(data).hexdigest()[:16]}")
        with open(name, "wb") as handle:
            handle.write(data)
        with open(name + ".txt", "w") as handle:
            handle.write(message + "\n")
        print(f"\n=== FINDING [{sig}] #{count + 1} ({len(data)} bytes) -> {name}\n{message[:2000]}\n",
              file=sys.stderr, flush=True)


# "1": raise on any finding (atheris reports a crash); any other non-empty value: raise only on
# findings whose signature starts with it, ignore the rest (for -minimize_crash=1).
STOP_ON_FINDING = os.environ.get("FUZZ_STOP_ON_FINDING", "")


def stop_on(sig):
    return STOP_ON_FINDING == "1" or (STOP_ON_FINDING and sig.startswith(STOP_ON_FINDING))


def TestOneInput(data: bytes) -> None:
    with open(PATH, "wb") as handle:
        handle.write(data)
    for index, options in enumerate(OPTION_SETS):
        try:
            native = outcome(**options)
            reference = outcome(engine="pydicom", **options)
        except Exception as exc:          # anything but InvalidDicomError is a finding
            import traceback
            frames = traceback.extract_tb(exc.__traceback__)
            last = frames[-1] if frames else None
            where = f"{os.path.basename(last.filename)}:{last.lineno}" if last else "?"
            sig = f"opt{index}-exception-{type(exc).__name__}-{where}"
            if stop_on(sig):
                raise
            if not STOP_ON_FINDING:
                record(sig, data,
                       f"options {options}: {type(exc).__name__}: {exc}\n" + traceback.format_exc())
            continue
        if not same(native, reference):
            message = (f"options {options}: native vs pydicom engine: "
                       + first_difference(native, reference))
            sig = signature(index, native, reference)
            if stop_on(sig):
                raise EngineDisagreement(f"[{sig}] {message}")
            if not STOP_ON_FINDING:
                record(sig, data, message)


def main():
    atheris.Setup(sys.argv, TestOneInput)
    try:
        atheris.Fuzz()
    finally:
        try:
            os.unlink(PATH)
        except OSError:
            pass


if __name__ == "__main__":
    main()
