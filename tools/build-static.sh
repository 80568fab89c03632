#!/usr/bin/env bash
# Build a static, stripped pycore to copy onto a production machine or into a container
# (README, "A static binary"). Prints where it is, its size, and what it links.
#
#   tools/build-static.sh [musl|glibc|--which]
#
# musl (the default when the target is installed: `rustup target add x86_64-unknown-linux-musl`,
# and Debian's musl-tools for the C parts): a fully static binary with no dependency on the host's
# C library; its small blocks come from dlmalloc (musl's own allocator maps and unmaps pages for
# small sizes), its large ones from src/huge_pages.rs. glibc: the host target with `-C target-feature=+crt-static` (a static-pie linked
# against glibc's static libc.a; nothing to install, but glibc's NSS modules other than files
# and dns are not available to it, which pycore only uses to resolve $DEBUGINFOD_URLS hosts).
# PYCORE_STATIC_KEEP_SYMBOLS=1 leaves the binary unstripped. `tools/build-static.sh --which`
# prints the kind a plain `tools/build-static.sh` builds, and its path, and builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=$(uname -m)
kind=${1:-}
if [ -z "$kind" ] || [ "$kind" = --which ]; then
  if rustup target list --installed 2>/dev/null | grep -qx "$arch-unknown-linux-musl" &&
     command -v musl-gcc >/dev/null; then
    auto=musl
  else
    auto=glibc
  fi
  if [ "$kind" = --which ]; then
    [ "$auto" = musl ] && triple=$arch-unknown-linux-musl || triple=$arch-unknown-linux-gnu
    echo "$auto ${CARGO_TARGET_DIR:-target}/$triple/release/pycore"
    exit 0
  fi
  kind=$auto
fi
case "$kind" in
  musl)
    target=$arch-unknown-linux-musl
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
      echo "build-static: the $target target is not installed: rustup target add $target" >&2
      exit 2
    fi
    # The C parts (zstd, xz, ring) are compiled for musl with musl-gcc (Debian: musl-tools).
    command -v musl-gcc >/dev/null || { echo "build-static: musl-gcc missing (apt-get install musl-tools)" >&2; exit 2; }
    export "CC_${arch}_unknown_linux_musl=musl-gcc"
    ;;
  glibc)
    target=$arch-unknown-linux-gnu
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    # The functions a common run executes side by side (build.rs, tools/symbol-order.txt).
    export PYCORE_SYMBOL_ORDER=1
    ;;
  *) echo "usage: $0 [musl|glibc|--which]" >&2; exit 2 ;;
esac
# The release profile as it is (a profile setting changed from the environment would change
# every symbol's hash, and tools/symbol-order.txt would no longer match; see build.rs), then
# stripped whole (the profile keeps symbols for names in a backtrace).
cargo build --release --locked --target "$target"
binary=${CARGO_TARGET_DIR:-target}/$target/release/pycore
if [[ "${PYCORE_STATIC_KEEP_SYMBOLS:-0}" == 1 ]]; then
  : # tools/symbol-order.sh reads the symbols of this very build
elif command -v strip >/dev/null; then
  # Stripped as a copy put in its place: the file is a hard link to cargo's own artifact in
  # deps/, which a later build of the same configuration would hand back stripped.
  strip --strip-all -o "$binary.stripped" "$binary"
  mv -f "$binary.stripped" "$binary"
else
  echo "build-static: strip (binutils) is missing: the binary keeps its symbols" >&2
fi
echo
echo "$binary: $(stat -c %s "$binary") bytes"
file "$binary" 2>/dev/null || true
"$binary" --version
