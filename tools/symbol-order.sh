#!/usr/bin/env bash
# Write tools/symbol-order.txt: the functions pycore runs on common analyses, which build.rs has
# the linker place side by side (a run then faults in few pages of pycore's own text; see
# build.rs and docs/performance.md, "Fourth round").
#
#   tools/symbol-order.sh CORE[:PYTHON]...
#
# Each CORE is analysed in every mode (default, --locals, --native, --native-all, --json,
# --format markdown) under valgrind's callgrind, which lists every function that ran; PYTHON is
# the binary for --python (none: pycore finds it). The C library's start-up comes first in the
# list, then the first core's default run, so the most common run is the most compact. The cores the list in the repo was
# made from: the README's example (a gcore of Debian's static python3.11, zstd-compressed)
# and the one-thread and ten-thread kernel cores of `KEEP=1 bash bench/scale.sh` (pyenv's
# shared 3.12):
#
#   tools/symbol-order.sh /tmp/pycore-bench/scale/floor.core:$PY312 \
#       /tmp/pycore-bench/scale/threads-10.core:$PY312 \
#       testdata/example/core.zst:testdata/example/python3.11.zst
#
# Run it again after a dependency or compiler update: the names carry hashes of both, and a
# name the binary no longer has is skipped by the linker (the binary works the same, its
# layout is only less compact). Needs valgrind.
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
command -v valgrind >/dev/null || { echo "symbol-order: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
[[ "$(uname -m)" == x86_64 ]] || { echo "symbol-order: the list is for x86_64 builds" >&2; exit 2; }
# CORE and PYTHON paths as given, from where the script was started.
specs=()
for spec in "$@"; do
    core=${spec%%:*}
    [[ -e "$core" ]] || { echo "symbol-order: no core at $core" >&2; exit 2; }
    if [[ "$spec" == *:* ]]; then
        specs+=("$(realpath "$core"):$(realpath "${spec#*:}")")
    else
        specs+=("$(realpath "$core")")
    fi
done
cd "$(dirname "$0")/.."

# The binary of tools/build-static.sh glibc itself (the same build, so the same symbol hashes),
# with its symbols: in a target directory of its own, as that script's usual one is stripped.
target_dir=${CARGO_TARGET_DIR:-target}/symbol-order
CARGO_TARGET_DIR=$target_dir PYCORE_STATIC_KEEP_SYMBOLS=1 bash tools/build-static.sh glibc >&2
binary=$target_dir/$(uname -m)-unknown-linux-gnu/release/pycore

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=0
for spec in "${specs[@]}"; do
    core=${spec%%:*}
    python=
    [[ "$spec" == *:* ]] && python=${spec#*:}
    for mode in "" --locals --native --native-all --json "--format markdown"; do
        runs=$((runs + 1))
        status=0
        # shellcheck disable=SC2086  # $mode is one flag or a flag and its value
        valgrind --tool=callgrind --demangle=no \
            --callgrind-out-file="$work/$(printf %03d $runs).out" \
            "$binary" analyze "$core" ${python:+--python "$python"} $mode >/dev/null 2>"$work/err" ||
            status=$?
        # 0: analysed; 1: analysed with warnings (a partial core is still a common run).
        if [[ $status -gt 1 ]]; then
            echo "symbol-order: pycore exited $status on $core $mode:" >&2
            tail -5 "$work/err" >&2
            exit 1
        fi
    done
done

# Function names in order of first appearance across the runs ("fn=(12) name" defines a name,
# later "fn=(12)" refers to it; "'2" marks a recursion level). Addresses without a symbol skipped.
# Then what callgrind cannot show as pycore runs natively: the C library's start-up (callgrind's
# "(below main)"), its IFUNC resolvers (a static binary runs every one at start), and the
# variants of its string functions that the resolvers pick on this CPU where valgrind's
# simulated one picked others (`__memmove_avx512_unaligned_erms` for `__memmove_avx_unaligned_erms`).
nm --defined-only "$binary" | awk 'NF == 3 && $2 ~ /^[tTwWiI]$/ {print $3}' >"$work/symbols"
python3 - "$work" >"$work/order.txt" <<'EOF'
import os, re, sys
seen, order = set(), []
defined = open(os.path.join(sys.argv[1], "symbols")).read().split()
for out in sorted(os.listdir(sys.argv[1])):
    if not out.endswith(".out"):
        continue
    text = open(os.path.join(sys.argv[1], out), errors="replace").read()
    for match in re.finditer(r"^c?fn=\(\d+\) (\S+)$", text, re.M):
        name = re.sub(r"'\d+$", "", match.group(1))
        if name.startswith(("0x", "(")) or name in seen:
            continue
        seen.add(name)
        order.append(name)
start = ["_start", "__libc_start_main", "__libc_start_main_impl", "__libc_start_call_main"]
resolvers = [name for name in defined if name.endswith("_ifunc")]
# "__memmove_avx_unaligned_erms" -> every "__memmove_*" the binary has.
families = {m.group(1) for name in order
            for m in [re.match(r"(__[a-z0-9_]+?)_(?:sse2|ssse3|sse4|avx|avx2|avx512|evex|erms)", name)] if m}
variants = [name for name in defined if any(name.startswith(f + "_") for f in families)]
# They run on every invocation: first.
first = list(dict.fromkeys(start + resolvers + variants))
order = first + [name for name in order if name not in set(first)]
sys.stdout.write("".join(name + "\n" for name in order))
EOF
mv "$work/order.txt" tools/symbol-order.txt
echo "tools/symbol-order.txt: $(wc -l <tools/symbol-order.txt) functions from $runs runs" >&2
