#!/bin/sh
# Runs fuzz/fuzz_header.py under AddressSanitizer + libFuzzer for $1 seconds (default 600) in
# total, restarting after each finding (libFuzzer stops at the first one), at most 50 times.
# Findings go to fuzz/crashes/ (crash-*, timeout-*, oom-*), logs to fuzz/crashes/run-*.log.
# Needs the instrumented build in fuzz/build and the venv fuzz/.venv (see `make fuzz`).
set -u
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${1:-600}
PY=fuzz/.venv/bin/python
ATHERIS=$($PY -c 'import atheris; print(atheris.path())')
mkdir -p fuzz/crashes fuzz/corpus
end=$(( $(date +%s) + SECONDS_TOTAL ))
round=0
while [ "$round" -lt 50 ]; do
    left=$(( end - $(date +%s) ))
    [ "$left" -gt 5 ] || break
    round=$((round + 1))
    log=fuzz/crashes/run-$(date -u +%Y%m%dT%H%M%S).log
    echo "fuzz round $round: $left s left, log $log"
    LD_PRELOAD="$ATHERIS/asan_with_fuzzer.so" \
    ASAN_OPTIONS="detect_leaks=0:symbolize=1:${ASAN_OPTIONS_EXTRA:-}" \
    PYTHONPATH=fuzz/build \
        $PY fuzz/fuzz_header.py -max_total_time="$left" -max_len=16384 -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=fuzz/crashes/ \
            ${FUZZ_ARGS:-} fuzz/corpus >"$log" 2>&1
    rc=$?
    tail -n 25 "$log"
    [ "$rc" -eq 0 ] && break
    echo "round $round ended with exit code $rc (a finding, see $log)"
done
ls -l fuzz/crashes/ | grep -v ' run-' || true
