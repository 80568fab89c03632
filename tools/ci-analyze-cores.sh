#!/usr/bin/env bash
# Analyse every core dump under a directory with pycore, as a CI job's last step does
# (docs/ci.md): for each core write OUT/NAME.md and OUT/NAME.json, print the markdown
# report, and exit 1 if any core was found, so the job fails with the reports in its log.
#
#   tools/ci-analyze-cores.sh [--out OUT] [--pycore PYCORE] [DIR...] [-- ANALYZE-ARGS...]
#
# DIR (default: the current directory) is searched recursively for core files: uncompressed
# ELF cores (recognised by their header, whatever their name) and compressed ones named like
# cores (core, core.*, *.core, with .zst/.gz/.xz/.lz4: systemd-coredump's store names them
# core.COMM.UID.BOOTID.PID.TIME.zst). OUT defaults to ./pycore-reports. PYCORE defaults to
# $PYCORE or the `pycore` on PATH. ANALYZE-ARGS are passed to every `pycore analyze`
# (e.g. --sysroot DIR, --python BIN).
#
# Exit status: 0 no core found; 1 at least one core found (analysed or not: a crash is a
# failure whatever pycore could say about it); 2 usage error or pycore missing.
# On GitHub Actions the markdown is also appended to $GITHUB_STEP_SUMMARY.
set -uo pipefail

out=pycore-reports
pycore=${PYCORE:-pycore}
dirs=()
analyze_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --pycore) pycore=${2:?--pycore needs a path}; shift 2 ;;
    --) shift; analyze_args=("$@"); break ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "ci-analyze-cores: unknown option $1" >&2; exit 2 ;;
    *) dirs+=("$1"); shift ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] || dirs=(.)

if ! command -v "$pycore" >/dev/null 2>&1; then
  echo "ci-analyze-cores: pycore not found (install it, or pass --pycore PATH or set PYCORE)" >&2
  exit 2
fi
mkdir -p "$out" || exit 2
out_abs=$(cd "$out" && pwd)

# The first bytes of FILE as hex, no spaces.
magic() { head -c 18 -- "$1" 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }

# Is FILE a core? An uncompressed ELF core (ELF magic, e_type ET_CORE = 4, either byte order)
# whatever its name; a compressed file only if named like a core.
is_core() {
  local file=$1 hex name
  hex=$(magic "$file")
  case "$hex" in
    7f454c46*) [ "${hex:32:4}" = 0400 ] || [ "${hex:32:4}" = 0004 ]; return ;;
  esac
  name=$(basename -- "$file")
  case "$name" in
    core|core.*|*.core|*.core.*) ;;
    *) return 1 ;;
  esac
  case "$hex" in
    28b52ffd*|1f8b*|fd377a585a00*|04224d18*) return 0 ;;  # zstd, gzip, xz, lz4
  esac
  return 1
}

cores=()
for dir in "${dirs[@]}"; do
  while IFS= read -r -d '' file; do
    # Never our own reports (OUT may be inside DIR).
    case "$(cd "$(dirname -- "$file")" && pwd)" in "$out_abs"|"$out_abs"/*) continue ;; esac
    is_core "$file" && cores+=("$file")
  done < <(find "$dir" -type f -size +0 -print0 2>/dev/null | sort -z)
done

if [ ${#cores[@]} -eq 0 ]; then
  echo "ci-analyze-cores: no core dumps under ${dirs[*]}"
  exit 0
fi

echo "ci-analyze-cores: ${#cores[@]} core dump(s) found; reports in $out"
declare -A used=()
for core in "${cores[@]}"; do
  name=$(basename -- "$core")
  name=${name%.zst}; name=${name%.gz}; name=${name%.xz}; name=${name%.lz4}
  # Two cores of the same name in different folders: number the second.
  base=$name; n=1
  while [ -n "${used[$name]:-}" ]; do n=$((n + 1)); name="$base.$n"; done
  used[$name]=1
  md="$out/$name.md"
  json="$out/$name.json"
  echo
  echo "=================== pycore analyze $core ==================="
  "$pycore" analyze "$core" --format markdown "${analyze_args[@]}" >"$md" 2>"$out/$name.stderr"
  status=$?
  "$pycore" analyze "$core" --json "${analyze_args[@]}" >"$json" 2>/dev/null
  cat -- "$md"
  if [ -s "$out/$name.stderr" ]; then
    echo
    echo "pycore (exit $status):"
    cat -- "$out/$name.stderr"
  fi
  rm -f -- "$out/$name.stderr"
  # Exit codes: 0 complete, 1 partial (warnings); others are failures (docs/exit-codes.md).
  [ "$status" -le 1 ] || echo "ci-analyze-cores: pycore could not analyse $core (exit $status)"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    { echo "## Core dump \`$core\`"; echo; cat -- "$md"; echo; } >>"$GITHUB_STEP_SUMMARY"
  fi
done
echo
echo "ci-analyze-cores: the job failed with ${#cores[@]} core dump(s): ${cores[*]}"
exit 1
