#!/usr/bin/env bash
# Fetch Debian's arm64 CPython builds that tests/aarch64.rs runs under qemu-user, each unpacked
# with its own arm64 glibc into a sysroot folder (run as `qemu-aarch64 -L SYSROOT
# SYSROOT/usr/bin/python3.X`); idempotent, a quick no-op when everything is present.
#
#   tools/fetch-arm64-pythons.sh     cache root: ${PYCORE_PYTHONS:-$HOME/.cache/pycore-pythons}
#
#   ROOT/arm64-bullseye/  Debian 11's python3.9 (no native_thread_id: threads are joined through
#                         glibc's struct pthread) and its libpython3.9-dev headers.
#   ROOT/arm64-bookworm/  Debian 12's python3.11 (static, stripped) and its libpython3.11-dev
#                         headers (tools/gen_layouts.py probes them with the aarch64 compiler).
#   ROOT/arm64-trixie/    Debian 13's python3.13 and its libpython3.13-dev headers.
#   ROOT/arm64-sid/       Debian unstable's python3.14 (pointer-authenticated return addresses) and its
#                         libpython3.14-dev headers.
#   ROOT/arm64-sid-3.15/  Debian unstable's python3.15 and its libpython3.15-dev headers (a sysroot
#                         of its own, so that fetching it never moves the 3.14 above).
#
# These are every CPython Debian's archive serves for arm64: bullseye 3.9, bookworm 3.11, trixie
# 3.13, sid 3.13-3.15 (3.10 and 3.12 were never in a Debian release; buster's 3.7 has left
# deb.debian.org for archive.debian.org).
#
# Each folder has a private apt configuration (ROOT/arm64-*/.apt: APT::Architecture "arm64", its
# own sources, lists, status and cache): /etc/apt, the system's dpkg database and its installed
# packages are not touched. Running the builds needs qemu-aarch64 (Debian's qemu-user).
#
# Exit status: 0 when every build is present and runs under qemu-aarch64, 1 otherwise.
set -euo pipefail

root=${PYCORE_PYTHONS:-$HOME/.cache/pycore-pythons}
mkdir -p "$root"
root=$(cd "$root" && pwd)
start=$SECONDS
say() { printf 'fetch-arm64-pythons: %s\n' "$*"; }

exec 9>"$root/.fetch-arm64.lock"
if ! flock -n 9; then
  say "waiting for another fetch-arm64-pythons.sh to finish with $root"
  flock 9
fi

command -v qemu-aarch64 >/dev/null || {
  say "qemu-aarch64 is missing (apt-get install qemu-user)"
  exit 1
}

# `usable SYSROOT BIN`: BIN starts under qemu and has what the scenarios import.
usable() {
  [ -x "$1/$2" ] && qemu-aarch64 -L "$1" "$1/$2" -E -s -B \
    -c 'import ctypes, gc, json, linecache, mmap, platform, threading, weakref' >/dev/null 2>&1
}

# The mirror is the one this machine's apt already uses; the suite and architecture are ours.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)

# `fetch DEST SUITE PACKAGES...`: download the arm64 packages of SUITE and unpack them into DEST.
fetch() {
  local dest=$1 suite=$2
  shift 2
  local apt_dir=$dest.partial/.apt
  rm -rf "$dest.partial"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  touch "$apt_dir/status"
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
    >"$apt_dir/sources.list"
  cat >"$apt_dir/apt.conf" <<EOC
APT::Architecture "arm64"; APT::Architectures { "arm64"; }; APT::Sandbox::User "root";
Dir::Etc::SourceList "$apt_dir/sources.list"; Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$apt_dir/lists"; Dir::State::status "$apt_dir/status"; Dir::Cache "$apt_dir/cache";
EOC
  APT_CONFIG=$apt_dir/apt.conf apt-get -qq update
  (cd "$apt_dir/debs" && APT_CONFIG=$apt_dir/apt.conf apt-get -qq download "$@")
  for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dest.partial"; done
  # sid's packages are merged-/usr (the loader is /usr/lib/ld-linux-aarch64.so.1): give the
  # sysroot the /lib the binaries' program interpreter names.
  [ -e "$dest.partial/lib" ] || ln -s usr/lib "$dest.partial/lib"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
}

# What the interpreters and the modules the scenarios import load (ctypes: libffi).
base="libc6 libgcc-s1 libexpat1 zlib1g libzstd1 liblzma5 libbz2-1.0 libcrypt1 libuuid1"

bullseye=$root/arm64-bullseye
if ! usable "$bullseye" usr/bin/python3.9 || [ ! -f "$bullseye/usr/include/python3.9/Python.h" ]; then
  say "fetching Debian 11's arm64 python3.9 into $bullseye"
  # shellcheck disable=SC2086 # the package list is meant to split
  fetch "$bullseye" bullseye $base libffi7 libssl1.1 \
    python3.9-minimal libpython3.9-minimal libpython3.9-stdlib libpython3.9-dev
fi

bookworm=$root/arm64-bookworm
if ! usable "$bookworm" usr/bin/python3.11 || [ ! -f "$bookworm/usr/include/python3.11/Python.h" ]; then
  say "fetching Debian 12's arm64 python3.11 into $bookworm"
  # shellcheck disable=SC2086 # the package list is meant to split
  fetch "$bookworm" bookworm $base libffi8 libssl3 \
    python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11-dev
fi

trixie=$root/arm64-trixie
if ! usable "$trixie" usr/bin/python3.13 || [ ! -f "$trixie/usr/include/python3.13/Python.h" ]; then
  say "fetching Debian 13's arm64 python3.13 into $trixie"
  # shellcheck disable=SC2086
  fetch "$trixie" trixie $base libffi8 libssl3t64 python3.13-minimal libpython3.13-minimal \
    libpython3.13-stdlib libpython3.13-dev
fi

sid=$root/arm64-sid
if ! usable "$sid" usr/bin/python3.14 || [ ! -f "$sid/usr/include/python3.14/Python.h" ]; then
  say "fetching Debian unstable's arm64 python3.14 into $sid"
  # shellcheck disable=SC2086
  fetch "$sid" sid $base libffi8 libssl3t64 python3.14-minimal libpython3.14-minimal libpython3.14-stdlib \
    libpython3.14-dev
fi

sid315=$root/arm64-sid-3.15
if ! usable "$sid315" usr/bin/python3.15 || [ ! -f "$sid315/usr/include/python3.15/Python.h" ]; then
  say "fetching Debian unstable's arm64 python3.15 into $sid315"
  # shellcheck disable=SC2086
  fetch "$sid315" sid $base libffi8 libssl3t64 python3.15-minimal libpython3.15-minimal \
    libpython3.15-stdlib libpython3.15-dev
fi

status=0
for row in "$bullseye usr/bin/python3.9" "$bookworm usr/bin/python3.11" "$trixie usr/bin/python3.13" \
  "$sid usr/bin/python3.14" "$sid315 usr/bin/python3.15"; do
  # shellcheck disable=SC2086 # "SYSROOT BIN"
  if usable $row; then
    set -- $row
    say "ok       $(qemu-aarch64 -L "$1" "$1/$2" -E -s -B -c 'import platform; print(platform.python_version(), platform.machine())') $1/$2"
  else
    say "MISSING  $row"
    status=1
  fi
done
say "done in $((SECONDS - start)) s"
exit $status
