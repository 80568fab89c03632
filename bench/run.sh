#!/usr/bin/env bash
# Benchmark pycore against pystack and py-spy on real CPython cores, and write
# the results into docs/performance.md (only its generated results section).
#
#   bash bench/run.sh
#
# What it does:
#   1. installs pystack and py-spy from PyPI into a throwaway virtualenv OUTSIDE
#      the repo (reused when present);
#   2. builds pycore (bench/build-pycore.sh: the static, stripped binary by default);
#   3. runs bench/big_process.py (50 threads parked 20 frames deep, plus
#      1200 MiB of touched memory) and takes a >1 GiB core of it with gcore,
#      then a small core of the same program without the ballast;
#   4. times every tool on both cores in each of its modes (bench/measure.py):
#      default, --native and --native-all for pycore and pystack, default only
#      for py-spy (it has no native mode for cores), and, when asked
#      (PYCORE_BENCH_MODES=locals), --locals for all three, written to a section
#      of its own; checks that each run printed
#      the right threads and frames (in the native modes: every thread unwound
#      from clock_nanosleep to start_thread/__libc_start_main, with its Python
#      frames merged in);
#   5. deletes the cores (unless KEEP=1).
#
# Settings (environment, all optional):
#   PYCORE_BENCH_PYTHON      interpreter to take cores from
#                            (default /root/.pyenv/versions/3.12.1/bin/python3.12)
#   PYCORE_BENCH_VENV_PYTHON interpreter that creates the venv (default: the same 3.12)
#   PYCORE_BENCH_VENV        venv path (default ${XDG_CACHE_HOME:-$HOME/.cache}/pycore-bench/venv)
#   PYCORE_BENCH_UPGRADE=1   pip install --upgrade pystack py-spy even if present
#   PYCORE_BENCH_DIR         scratch dir for cores and outputs (default /tmp/pycore-bench)
#   RUNS                     runs per tool and core, median reported (default 3)
#   KEEP=1                   keep the cores and tool outputs in the scratch dir
#   PYCORE_BENCH_THREADS / _DEPTH / _BIG_MB   program shape (default 50 / 20 / 1200)
#   PYCORE_BENCH_SMALL_STACK_KB  thread stack of the small core's process (default 256)
#   PYCORE_BENCH_COREDUMP_FILTER coredump_filter set before gcore (default 0x37, see
#                            docs/performance.md: py-spy needs the text segments)
#   PYCORE_BENCH_TIMEOUT     seconds allowed per tool run (default 900)
#   PYCORE_BENCH_TOOLS       comma list, subset of pycore,pystack,py-spy (default all)
#   PYCORE_BENCH_MODES       comma list, subset of default,native,native-all,native-all-nocache,locals
#                            (default default,native,native-all; `locals` alone writes
#                            the doc's --locals section, the others its results section)
#   PYCORE_BENCH_DOC         markdown file to update (default docs/performance.md)
#   PYCORE_BENCH_NO_BUILD=1  skip the build (use the existing binary)
#   PYCORE_BENCH_BUILD       static (default: tools/build-static.sh, musl when installed),
#                            static-glibc or release (cargo build --release); see
#                            bench/build-pycore.sh
#   PYCORE_BENCH_SUITE=scale run the scale benchmark instead (bench/scale.sh: 100k frames,
#                            1,000 threads, a sparse multi-GB core, a directory of 50 cores,
#                            the growth table; its own section of the doc)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [[ "${PYCORE_BENCH_SUITE:-}" == scale ]]; then
    exec bash "$REPO/bench/scale.sh" "$@"
fi
PY=${PYCORE_BENCH_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3.12}
VENV_PY=${PYCORE_BENCH_VENV_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3.12}
VENV=${PYCORE_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pycore-bench/venv}
SCRATCH=${PYCORE_BENCH_DIR:-/tmp/pycore-bench}
RUNS=${RUNS:-3}
KEEP=${KEEP:-0}
THREADS=${PYCORE_BENCH_THREADS:-50}
DEPTH=${PYCORE_BENCH_DEPTH:-20}
BIG_MB=${PYCORE_BENCH_BIG_MB:-1200}
SMALL_STACK_KB=${PYCORE_BENCH_SMALL_STACK_KB:-256}
FILTER=${PYCORE_BENCH_COREDUMP_FILTER:-0x37}
TIMEOUT=${PYCORE_BENCH_TIMEOUT:-900}
TOOLS=${PYCORE_BENCH_TOOLS:-pycore,pystack,py-spy}
MODES=${PYCORE_BENCH_MODES:-default,native,native-all,native-all-nocache}
DOC=${PYCORE_BENCH_DOC:-$REPO/docs/performance.md}

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Nothing big may land in the repo: the venv and the cores live outside it.
inside_repo() {
    local p
    p=$(realpath -m "$1")
    [[ "$p" == "$REPO" || "$p" == "$REPO"/* ]]
}
inside_repo "$VENV" && die "PYCORE_BENCH_VENV ($VENV) must be outside the repo"
inside_repo "$SCRATCH" && die "PYCORE_BENCH_DIR ($SCRATCH) must be outside the repo"
[[ -x "$PY" ]] || die "no python at $PY (set PYCORE_BENCH_PYTHON)"

# --- prerequisites ------------------------------------------------------------
need_apt=()
command -v gcore >/dev/null || need_apt+=(gdb)       # gcore
command -v gcc >/dev/null || need_apt+=(gcc)         # compiles bench/runstat.c, the timer
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- pystack and py-spy in a venv outside the repo ----------------------------
if [[ ! -x "$VENV/bin/pystack" || ! -x "$VENV/bin/py-spy" || "${PYCORE_BENCH_UPGRADE:-0}" == 1 ]]; then
    log "creating venv $VENV with $VENV_PY and installing pystack, py-spy from PyPI"
    [[ -x "$VENV/bin/python" ]] || "$VENV_PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pystack py-spy
fi
log "tools: $("$VENV/bin/pystack" --version | head -1 | sed 's/^/pystack /'), $("$VENV/bin/py-spy" --version | head -1)"

# --- pycore -------------------------------------------------------------------
log "building pycore (${PYCORE_BENCH_BUILD:-static}: bench/build-pycore.sh)"
PYCORE=$(bash "$REPO/bench/build-pycore.sh")
[[ -x "$PYCORE" ]] || log "warning: $PYCORE does not exist; pycore will be reported as failed"

# --- cores --------------------------------------------------------------------
mkdir -p "$SCRATCH"
need_kb=$(( (BIG_MB + THREADS * 8 + 600) * 1024 ))
avail_kb=$(df -Pk "$SCRATCH" | awk 'NR==2 {print $4}')
(( avail_kb > need_kb )) || die "not enough space in $SCRATCH: need ~$((need_kb / 1024)) MiB, have $((avail_kb / 1024)) MiB"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [[ "$KEEP" == 1 ]]; then
        log "KEEP=1: cores and outputs left in $SCRATCH"
    else
        local label
        for label in big small; do
            rm -f "$SCRATCH/$label.core" "$SCRATCH/$label.core".[0-9]* \
                "$SCRATCH/$label.process.log" "$SCRATCH/$label.gcore.log"
        done
        rm -rf "$SCRATCH/out" "$SCRATCH/cores.tsv" "$SCRATCH/results.md"
        rmdir "$SCRATCH" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CORES_TSV=$SCRATCH/cores.tsv
: >"$CORES_TSV"

# take_core LABEL BALLAST_MB STACK_KB MALLOC_ARENA_MAX
take_core() {
    local label=$1 big_mb=$2 stack_kb=$3 arena=$4
    local plog=$SCRATCH/$label.process.log pid t0 t1 i
    rm -f "$SCRATCH/$label.core"
    log "starting big_process.py for the '$label' core (ballast ${big_mb} MiB, $THREADS threads x $DEPTH frames)"
    env ${arena:+MALLOC_ARENA_MAX=$arena} \
        PYCORE_BENCH_THREADS="$THREADS" PYCORE_BENCH_DEPTH="$DEPTH" \
        PYCORE_BENCH_BIG_MB="$big_mb" PYCORE_BENCH_STACK_KB="$stack_kb" \
        "$PY" "$REPO/bench/big_process.py" >"$plog" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 600; i++)); do
        grep -q '^READY' "$plog" && break
        kill -0 "$pid" 2>/dev/null || die "big_process.py exited early: $(cat "$plog")"
        sleep 0.5
    done
    grep -q '^READY' "$plog" || die "big_process.py not READY after 300 s"
    log "pid $pid ready, RSS $(awk '/VmRSS/ {print int($2/1024) " MiB"}' "/proc/$pid/status"), threads $(awk '/Threads/ {print $2}' "/proc/$pid/status")"
    # gcore honours coredump_filter; 0x37 adds file-backed private mappings (the
    # text of python and its libraries), without which py-spy cannot read the core.
    echo "$FILTER" >"/proc/$pid/coredump_filter"
    t0=$(date +%s.%N)
    gcore -o "$SCRATCH/$label.core" "$pid" >"$SCRATCH/$label.gcore.log" 2>&1 ||
        die "gcore failed: $(tail -5 "$SCRATCH/$label.gcore.log")"
    t1=$(date +%s.%N)
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    mv "$SCRATCH/$label.core.$pid" "$SCRATCH/$label.core"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$SCRATCH/$label.core" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')" "$big_mb" "$stack_kb" "$arena" \
        "$FILTER" "$THREADS" "$DEPTH" >>"$CORES_TSV"
    log "core '$label': $(du -h --apparent-size "$SCRATCH/$label.core" | cut -f1) in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"
}

# The big core: real ballast, default malloc arenas and thread stacks.
take_core big "$BIG_MB" 0 ""
# The small core: same program and stacks-of-Python, no ballast, one malloc
# arena and small thread stacks (untouched stack pages are written as zeros).
take_core small 0 "$SMALL_STACK_KB" 1

# --- measure ------------------------------------------------------------------
# The command line as the doc shows it: the settings that differ from the defaults, then the script.
cmdline="bash bench/run.sh"
[[ "$MODES" == default,native,native-all,native-all-nocache ]] || cmdline="PYCORE_BENCH_MODES=$MODES $cmdline"
[[ "$TOOLS" == pycore,pystack,py-spy ]] || cmdline="PYCORE_BENCH_TOOLS=$TOOLS $cmdline"
[[ "$RUNS" == 3 ]] || cmdline="RUNS=$RUNS $cmdline"
log "measuring ($RUNS runs per tool, mode and core; modes $MODES)"
"$VENV/bin/python" "$REPO/bench/measure.py" \
    --cores "$CORES_TSV" --python "$PY" --pycore "$PYCORE" --venv "$VENV" \
    --runs "$RUNS" --timeout "$TIMEOUT" --scratch "$SCRATCH" --doc "$DOC" \
    --tools "$TOOLS" --modes "$MODES" --command "$cmdline"
log "done; results in ${DOC#"$REPO"/}"
