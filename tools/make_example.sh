#!/usr/bin/env bash
# Regenerate testdata/example/: a gcore core of tests/scenarios/parked_threads.py run by Debian's
# static, stripped /usr/bin/python3.11, the stack record the process wrote about itself, and the
# interpreter binary (so the example can be analysed on a machine without that Python).
# All three are zstd-compressed. Needs gdb (gcore) and zstd; run from anywhere.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-/usr/bin/python3.11}
out=$repo/testdata/example
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$repo/tests/scenarios"
MALLOC_ARENA_MAX=1 LC_ALL=C.UTF-8 "$python" -E -s -B parked_threads.py "$work/recorded.json" &
pid=$!
for _ in $(seq 300); do [ -s "$work/recorded.json" ] && break; sleep 0.1; done
[ -s "$work/recorded.json" ] || { echo "the scenario did not record itself" >&2; exit 1; }
# The recorder thread exits after writing; wait until only the recorded threads are left.
expected=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["threads"]))' "$work/recorded.json")
for _ in $(seq 100); do [ "$(ls /proc/$pid/task | wc -l)" -eq "$expected" ] && break; sleep 0.1; done
gcore -o "$work/core" "$pid" >/dev/null
mkdir -p "$out"
zstd -q -19 -f "$work/core.$pid" -o "$out/core.zst"
zstd -q -19 -f "$python" -o "$out/$(basename "$python").zst"
cp "$work/recorded.json" "$out/recorded.json"
ls -la "$out"
