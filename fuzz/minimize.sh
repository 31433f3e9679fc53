#!/bin/sh
# Minimises one finding, keeping its signature: fuzz/minimize.sh INPUT SIGNATURE [RUNS]
# e.g. fuzz/minimize.sh fuzz/crashes/finding-opt0-value-str-str-whitespace-0ac1... opt0-value-str-str-whitespace
# Writes fuzz/crashes/minimized-* ; the smallest is printed at the end.
set -u
cd "$(dirname "$0")/.."
PY=fuzz/.venv/bin/python
PATH="$(pwd)/fuzz/.venv/bin:$PATH"; export PATH   # libFuzzer re-runs argv[0] (the script)
ATHERIS=$($PY -c 'import atheris; print(atheris.path())')
out=fuzz/crashes/min-$2
mkdir -p "$out"
LD_PRELOAD="$ATHERIS/asan_with_fuzzer.so" ASAN_OPTIONS=detect_leaks=0 PYTHONPATH=fuzz/build \
FUZZ_STOP_ON_FINDING="$2" FUZZ_INPUT_PATH=/dev/shm/deid_fast_min_$$.dcm \
    $PY fuzz/fuzz_header.py -minimize_crash=1 -runs="${3:-20000}" -max_len=16384 -timeout=10 \
        -exact_artifact_path="$out/minimized" "$1" > "$out/log" 2>&1
rm -f /dev/shm/deid_fast_min_$$.dcm
ls -l "$out"
