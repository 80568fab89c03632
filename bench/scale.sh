#!/usr/bin/env bash
# The scale benchmark (issue #14): pycore, pystack and py-spy on cores of growing size
# and shape, side by side, and pycore's growth against its own yardstick; writes the
# bench:scale section of docs/performance.md.
#
#   bash bench/scale.sh                 (or: PYCORE_BENCH_SUITE=scale bash bench/run.sh)
#
# Cores (kernel cores: bench/scale_process.py killed with SIGQUIT, core_pattern "core",
# MALLOC_ARENA_MAX=1, 256 KiB worker stacks):
#   floor        1 thread, 1 frame (<module> sleeping): the yardstick
#   frames-100, frames-10k, frames-100k
#                1 thread, 100 / 10,000 / 100,000 Python frames (sys.setrecursionlimit)
#   threads-10, threads-100, threads-1000
#                10 / 100 / 1,000 threads, each worker 3 pycore_bench_recurse frames deep
#   sparse       the floor's program with PYCORE_SCALE_SPARSE_GB GiB mapped (one page
#                written): a core of that apparent size with a few MB on disk
#   dir50        a directory of 50 one-thread cores (2..51 frames): `pycore analyze DIR
#                --json` against each tool run once per core, one after the other
#
# Settings (environment, all optional; the others as in bench/run.sh):
#   PYCORE_BENCH_PYTHON, PYCORE_BENCH_VENV, PYCORE_BENCH_DIR, RUNS (default 3), KEEP=1,
#   PYCORE_BENCH_TOOLS, PYCORE_BENCH_NO_BUILD=1, PYCORE_BENCH_BUILD (static|static-glibc|release: bench/build-pycore.sh),
#   PYCORE_BENCH_DOC, PYCORE_BENCH_TIMEOUT
#   PYCORE_SCALE_MODES      subset of default,native,native-all,locals (default all four)
#   PYCORE_SCALE_SPARSE_GB  apparent size of the sparse core's mapping (default 8)
#   PYCORE_SCALE_CORES      comma list of the cores above to take (default all)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PY=${PYCORE_BENCH_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3.12}
VENV_PY=${PYCORE_BENCH_VENV_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3.12}
VENV=${PYCORE_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pycore-bench/venv}
SCRATCH=${PYCORE_BENCH_DIR:-/tmp/pycore-bench}/scale
RUNS=${RUNS:-3}
KEEP=${KEEP:-0}
TIMEOUT=${PYCORE_BENCH_TIMEOUT:-600}
TOOLS=${PYCORE_BENCH_TOOLS:-pycore,pystack,py-spy}
MODES=${PYCORE_SCALE_MODES:-default,native,native-all,locals}
SPARSE_GB=${PYCORE_SCALE_SPARSE_GB:-8}
CORES=${PYCORE_SCALE_CORES:-floor,frames-100,frames-10k,frames-100k,threads-10,threads-100,threads-1000,sparse,dir50}
DOC=${PYCORE_BENCH_DOC:-$REPO/docs/performance.md}

log() { printf '[scale %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x "$PY" ]] || die "no python at $PY (set PYCORE_BENCH_PYTHON)"
[[ "$(realpath -m "$SCRATCH")" != "$REPO"/* ]] || die "PYCORE_BENCH_DIR must be outside the repo"
# Kernel cores land in the process's working directory as "core" (how the tests take them too).
pattern=$(cat /proc/sys/kernel/core_pattern)
[[ "$pattern" != "|"* && "$pattern" != */* ]] ||
    die "kernel.core_pattern is '$pattern': this script needs a plain file name (e.g. 'core')"
command -v gcc >/dev/null || die "gcc is missing (it compiles bench/runstat.c, the timer)"

if [[ ! -x "$VENV/bin/pystack" || ! -x "$VENV/bin/py-spy" ]]; then
    log "creating venv $VENV and installing pystack, py-spy from PyPI"
    [[ -x "$VENV/bin/python" ]] || "$VENV_PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pystack py-spy
fi
log "building pycore (${PYCORE_BENCH_BUILD:-static}: bench/build-pycore.sh)"
PYCORE=$(bash "$REPO/bench/build-pycore.sh")
[[ -x "$PYCORE" ]] || log "warning: $PYCORE does not exist; pycore will be reported as failed"

mkdir -p "$SCRATCH"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [[ "$KEEP" == 1 ]]; then
        log "KEEP=1: cores and outputs left in $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# take LABEL THREADS FRAMES SPARSE_MB DEST: a kernel core of bench/scale_process.py.
take() {
    local label=$1 threads=$2 frames=$3 sparse_mb=$4 dest=$5
    local d=$SCRATCH/take.$label pid i t0 t1
    rm -rf "$d" && mkdir -p "$d"
    (
        cd "$d"
        ulimit -c unlimited
        MALLOC_ARENA_MAX=1 PYCORE_SCALE_THREADS=$threads PYCORE_SCALE_FRAMES=$frames \
            PYCORE_SCALE_SPARSE_MB=$sparse_mb exec "$PY" "$REPO/bench/scale_process.py" >log 2>&1
    ) &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 1200; i++)); do
        grep -q '^READY' "$d/log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "scale_process.py ($label) exited early: $(cat "$d/log")"
        sleep 0.1
    done
    grep -q '^READY' "$d/log" || die "scale_process.py ($label) not READY after 120 s"
    sleep 0.3  # from READY into time.sleep
    t0=$(date +%s.%N)
    kill -QUIT "$pid"
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && die "scale_process.py ($label) still running 60 s after SIGQUIT"
    wait "$pid" 2>/dev/null || true
    t1=$(date +%s.%N)
    [[ -f "$d/core" ]] || die "no core for $label in $d (ulimit -c? core_pattern?)"
    mv "$d/core" "$dest"
    rm -rf "$d"
    TAKE_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
}

TSV=$SCRATCH/scale-cores.tsv
: >"$TSV"
want() { [[ ",$CORES," == *",$1,"* ]]; }
# label threads frames sparse_mb
while read -r label threads frames sparse_mb; do
    want "$label" || continue
    log "taking '$label': $threads thread(s), $frames frame(s), sparse ${sparse_mb} MiB"
    take "$label" "$threads" "$frames" "$sparse_mb" "$SCRATCH/$label.core"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$SCRATCH/$label.core" "$threads" "$frames" "$sparse_mb" \
        "$TAKE_S" >>"$TSV"
    log "  $(du -h --apparent-size "$SCRATCH/$label.core" | cut -f1) apparent, $(du -h "$SCRATCH/$label.core" | cut -f1) on disk, in ${TAKE_S} s"
done <<EOF
floor 1 1 0
frames-100 1 100 0
frames-10k 1 10000 0
frames-100k 1 100000 0
threads-10 10 3 0
threads-100 100 3 0
threads-1000 1000 3 0
sparse 1 1 $((SPARSE_GB * 1024))
EOF

dir_args=()
if want dir50; then
    mkdir -p "$SCRATCH/dir50"
    : >"$SCRATCH/dir50.tsv"
    log "taking 50 cores for dir50"
    for ((i = 0; i < 50; i++)); do
        name=$(printf 'core.%02d' "$i")
        take "dir50-$i" 1 $((i + 2)) 0 "$SCRATCH/dir50/$name"
        printf '%s\t1\t%s\n' "$name" $((i + 2)) >>"$SCRATCH/dir50.tsv"
    done
    log "  dir50: $(du -sh --apparent-size "$SCRATCH/dir50" | cut -f1) apparent"
    dir_args=(--dir "$SCRATCH/dir50" --dir-tsv "$SCRATCH/dir50.tsv")
fi

cmdline="bash bench/scale.sh"
[[ "$MODES" == default,native,native-all,locals ]] || cmdline="PYCORE_SCALE_MODES=$MODES $cmdline"
[[ "$TOOLS" == pycore,pystack,py-spy ]] || cmdline="PYCORE_BENCH_TOOLS=$TOOLS $cmdline"
[[ "$SPARSE_GB" == 8 ]] || cmdline="PYCORE_SCALE_SPARSE_GB=$SPARSE_GB $cmdline"
[[ "$RUNS" == 3 ]] || cmdline="RUNS=$RUNS $cmdline"
log "measuring ($RUNS runs; modes $MODES; load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$VENV/bin/python" "$REPO/bench/scale.py" --cores "$TSV" "${dir_args[@]}" \
    --python "$PY" --pycore "$PYCORE" --venv "$VENV" --runs "$RUNS" --timeout "$TIMEOUT" \
    --scratch "$SCRATCH" --doc "$DOC" --tools "$TOOLS" --modes "$MODES" --command "$cmdline"
log "done; results in ${DOC#"$REPO"/}"
