#!/usr/bin/env bash
# The pycore binary the benchmarks time, built and its path printed (shared by bench/run.sh and
# bench/scale.sh).
#
#   PYCORE_BENCH_BUILD=static   (default) tools/build-static.sh: the static-pie, stripped
#                               binary the README offers for production machines (musl when
#                               its target and musl-gcc are installed, else glibc's static libc)
#   PYCORE_BENCH_BUILD=static-glibc  tools/build-static.sh glibc (with the symbol order of
#                               tools/symbol-order.txt)
#   PYCORE_BENCH_BUILD=release  `cargo build --release` (dynamically linked, symbols kept)
#   PYCORE_BENCH_NO_BUILD=1     build nothing; print the path of the existing binary
#
# A run of a few milliseconds is mostly process start: the static, stripped binary starts
# ~1 ms sooner than the dynamic one (no shared libraries to load and relocate), and the musl one
# sooner still (glibc's start-up queries the CPU with `cpuid`s that trap to the hypervisor here;
# docs/performance.md, "Fifth round").
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
case "${PYCORE_BENCH_BUILD:-static}" in
    static)
        binary=$(cd "$repo" && bash tools/build-static.sh --which | cut -d' ' -f2-)
        [[ $binary = /* ]] || binary=$repo/$binary
        build=(bash "$repo/tools/build-static.sh") ;;
    static-glibc)
        binary=${CARGO_TARGET_DIR:-$repo/target}/$(uname -m)-unknown-linux-gnu/release/pycore
        build=(bash "$repo/tools/build-static.sh" glibc) ;;
    release)
        binary=${CARGO_TARGET_DIR:-$repo/target}/release/pycore
        build=(cargo build --release --quiet) ;;
    *) echo "build-pycore: PYCORE_BENCH_BUILD must be static, static-glibc or release" >&2; exit 2 ;;
esac
if [[ "${PYCORE_BENCH_NO_BUILD:-0}" != 1 ]] && ! (cd "$repo" && "${build[@]}" >&2); then
    # Not the binary of an earlier build: a path that does not exist, so every run fails.
    echo "build-pycore: warning: ${build[*]} failed; pycore will be reported as failed" >&2
    binary=$binary.build-failed
fi
echo "$binary"
