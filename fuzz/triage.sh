#!/usr/bin/env bash
# Group fuzz artifacts (fuzz/artifacts/*/crash-*, timeout-*, oom-*, slow-unit-*) by how the
# pycore command line fails on them: "internal error at FILE:LINE" (a panic), a timeout, a
# signal, or "ok" (the failure did not reproduce outside the fuzzer, e.g. an OOM that only
# libFuzzer's -malloc_limit_mb flags). Uses a debug build (overflow checks on, like the fuzz
# build with -a). Usage: fuzz/triage.sh [ARTIFACT...]
set -uo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
pycore=${PYCORE:-$repo/target/debug/pycore}
[ -x "$pycore" ] || (cd "$repo" && cargo build --quiet)
if [ $# -eq 0 ]; then set -- "$fuzz"/artifacts/*/*; fi
for artifact in "$@"; do
    [ -f "$artifact" ] || continue
    err=$(timeout 20 "$pycore" analyze "$artifact" --no-source 2>&1 >/dev/null)
    code=$?
    case $code in
        124) what="timeout (>20 s)" ;;
        0 | 1 | 3 | 4 | 5 | 6 | 7) what="ok (exit $code)" ;;
        *) what=$(printf '%s\n' "$err" | grep -o 'internal error at [^;]*' | head -1)
           [ -n "$what" ] || what="exit $code: $(printf '%s' "$err" | head -c 120)" ;;
    esac
    printf '%s\t%s\n' "$what" "$artifact"
done | sort | awk -F'\t' '{n[$1]++; if (!($1 in first)) first[$1]=$2} END {for (k in n) printf "%4d  %-50s e.g. %s\n", n[k], k, first[k]}' | sort -rn
