#!/usr/bin/env bash
# Regenerate the fuzzing seed corpora under fuzz/corpus/ (git-ignored):
#   corpus/analyze/          small uncompressed ELF cores of Python processes, and the
#                            committed packed cores (testdata/packed/)
#   corpus/open_compressed/  the same cores compressed with zstd, gzip, xz and lz4
# Seeds: the committed example (gcore of Debian's static /usr/bin/python3.11), and cores made
# here of fuzz/seed_scenario.py under pyenv's 3.12 and 2.7 (shared libpython): gcore snapshots
# and, where kernel core dumps work, a kernel core of os.abort(). Every core is shrunk by
# fuzz/shrink_core.py --minimize to the pages pycore's analysis reads (its report unchanged).
# The binaries the cores name must stay at those paths for the seeds to be analysed fully.
#
# Needs python3, gdb (gcore), zstd; gzip, xz, lz4 when present. Environment: PY312, PY27
# (interpreters), PYCORE (a built pycore; default target/release/pycore, built if missing).
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
py312=${PY312:-/root/.pyenv/versions/3.12.1/bin/python3.12}
py27=${PY27:-/root/.pyenv/versions/2.7.18/bin/python2.7}
pycore=${PYCORE:-$repo/target/release/pycore}
[ -x "$pycore" ] || (cd "$repo" && cargo build --release --quiet)
work=$(mktemp -d)
# A private copy: a rebuild meanwhile must not change the reports the shrinker compares.
cp "$pycore" "$work/pycore"
pycore=$work/pycore
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
out=$fuzz/corpus/analyze
zout=$fuzz/corpus/open_compressed
mkdir -p "$out" "$zout"

shrink() { # name core [pycore args]
    local name=$1 core=$2
    shift 2
    python3 "$fuzz/shrink_core.py" "$core" "$out/$name.core" --minimize "$pycore" "$@"
}

# 1. The committed example.
zstd -q -d -c "$repo/testdata/example/core.zst" >"$work/example.core"
if [ -x /usr/bin/python3.11 ]; then
    shrink example-py311-static "$work/example.core"
else
    zstd -q -d -c "$repo/testdata/example/python3.11.zst" >"$work/python3.11"
    chmod +x "$work/python3.11"
    shrink example-py311-static "$work/example.core" --python "$work/python3.11"
fi

# 2. gcore snapshots of the seed scenario.
snapshot() { # name python
    local name=$1 python=$2
    [ -x "$python" ] || { echo "skipping $name: no $python" >&2; return; }
    rm -f "$work/ready"
    MALLOC_ARENA_MAX=1 "$python" -E -s -B "$fuzz/seed_scenario.py" "$work/ready" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
    [ -s "$work/ready" ] || { echo "$name: the scenario did not get ready" >&2; exit 1; }
    gcore -o "$work/$name" "$pid" >/dev/null 2>&1
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    shrink "$name" "$work/$name.$pid"
}
snapshot gcore-py312-shared "$py312"
snapshot gcore-py27-shared "$py27"

# 3. A kernel core (os.abort: SIGABRT, NT_SIGINFO, NT_AUXV, no GDB note), if this machine
#    writes core files to the working directory.
crash() { # name python
    local name=$1 python=$2
    [ -x "$python" ] || return 0
    mkdir -p "$work/crash-$name"
    (
        cd "$work/crash-$name"
        ulimit -c unlimited
        MALLOC_ARENA_MAX=1 timeout 60 "$python" -E -s -B "$fuzz/seed_scenario.py" ready abort \
            >/dev/null 2>&1 || true
    )
    local core
    core=$(ls "$work/crash-$name"/core* 2>/dev/null | head -1 || true)
    if [ -n "$core" ]; then
        shrink "$name" "$core"
    else
        echo "skipping $name: no kernel core written (core_pattern: $(cat /proc/sys/kernel/core_pattern))" >&2
    fi
}
crash kernel-py312-shared "$py312"

# 4. The committed packed cores (pycore pack): whole, self-contained seeds for every version.
for packed in "$repo"/testdata/packed/*/core.zst; do
    [ -f "$packed" ] || continue
    zstd -q -d -f "$packed" -o "$out/packed-$(basename "$(dirname "$packed")").core"
done

# 5. Compressed variants for the decompression target.
for core in "$out"/*.core; do
    base=$(basename "$core" .core)
    zstd -q -19 -f "$core" -o "$zout/$base.zst"
    if command -v gzip >/dev/null; then gzip -9 -c "$core" >"$zout/$base.gz"; fi
    if command -v xz >/dev/null; then xz -9 -c "$core" >"$zout/$base.xz"; fi
    if command -v lz4 >/dev/null; then lz4 -q -9 -c "$core" >"$zout/$base.lz4"; fi
done
ls -la "$out" "$zout"
