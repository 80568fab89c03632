#!/usr/bin/env bash
# Fetch or build the CPython builds the real-core tests (tests/cores.rs, tests/forensics.rs) need
# beyond pyenv's and /usr/bin's, into one cache root; idempotent, and a quick no-op when everything
# is present.
#
#   tools/fetch-test-pythons.sh          cache root: ${PYCORE_PYTHONS:-$HOME/.cache/pycore-pythons}
#
#   ROOT/debian/       3.14, 3.15 (static, stripped, with detached debug symbols) and the 3.14d,
#                      3.15d debug builds, from Debian unstable; plus libpython3.1[45]-dev headers
#                      (tools/gen_layouts.py reads them). ~60 s, ~600 MiB.
#   ROOT/debian-3.11d/ Debian 12's python3.11d debug build with its own copy of the stdlib and the
#                      libpython3.11-dev headers, unpacked (never installed). ~15 s, ~150 MiB.
#   ROOT/3.13t/        a free-threaded CPython 3.13, built from source. ~6 min on 2 cores.
#
# The scripts that do the fetching and building live in the shared tree beside the repository
# ($REPO/../shared/pythons, or $PYCORE_SHARED_PYTHONS). Nothing here touches /etc/apt or the
# system's installed packages; `apt-get update` of the system's own lists runs only when a 3.11
# package cannot be downloaded without it. pyenv's versions (2.7, 3.6-3.13) are not installed
# here: missing ones are listed at the end, with the command that installs them.
#
# Exit status: 0 when every build is present and runs, 1 otherwise.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${PYCORE_SHARED_PYTHONS:-$repo/../shared/pythons}
root=${PYCORE_PYTHONS:-$HOME/.cache/pycore-pythons}
mkdir -p "$root"
root=$(cd "$root" && pwd)
start=$SECONDS

say() { printf 'fetch-test-pythons: %s\n' "$*"; }

# Two runs at once (two checkouts, or a developer beside CI) must not build into the same folder.
exec 9>"$root/.fetch.lock"
if ! flock -n 9; then
  say "waiting for another fetch-test-pythons.sh to finish with $root"
  flock 9
fi

# `usable BIN`: BIN starts and has what the scenarios import (a half-installed build fails this).
usable() {
  [ -x "$1" ] && "$1" -E -s -B -c 'import ctypes, gc, json, linecache, mmap, platform, threading, weakref' >/dev/null 2>&1
}

need_shared() {
  [ -x "$shared/$1" ] || {
    say "cannot find $shared/$1 (set PYCORE_SHARED_PYTHONS to the folder holding it)"
    exit 1
  }
}

# --- Debian unstable 3.14 / 3.15, release and debug ------------------------------------------
debian=$root/debian
debian_ok() {
  local b
  for b in python3.14 python3.15 python3.14d python3.15d; do usable "$debian/usr/bin/$b" || return 1; done
  [ -d "$debian/usr/lib/debug/.build-id" ]
}
if ! debian_ok; then
  need_shared fetch-debian-pythons.sh
  say "fetching Debian's 3.14/3.15 (+ debug builds and symbols) into $debian"
  "$shared/fetch-debian-pythons.sh" "$debian" --dbg
fi
if [ ! -f "$debian/usr/include/python3.14/Python.h" ] || [ ! -f "$debian/usr/include/python3.15/Python.h" ]; then
  say "fetching the libpython3.14-dev / libpython3.15-dev headers into $debian"
  # The headers of exactly the fetched builds (sid moves on), through the private apt
  # configuration fetch-debian-pythons.sh leaves behind (sid, its own lists and cache).
  dev_packages=()
  for minor in 3.14 3.15; do
    deb=$(ls "$debian"/.apt/debs/python"$minor"-minimal_*.deb)
    dev_packages+=("libpython$minor-dev=$(dpkg-deb -f "$deb" Version)")
  done
  download_dev() { (cd "$debian/.apt/debs" && APT_CONFIG=../apt.conf apt-get -qq download "${dev_packages[@]}"); }
  if ! download_dev; then
    say "refreshing the private sid package lists and retrying"
    APT_CONFIG=$debian/.apt/apt.conf apt-get -qq update
    download_dev || {
      say "${dev_packages[*]} are gone from sid: remove $debian and run this again"
      exit 1
    }
  fi
  for deb in "$debian"/.apt/debs/libpython3.1[45]-dev_*.deb; do dpkg-deb -x "$deb" "$debian"; done
fi

# --- Debian 12's python3.11d ------------------------------------------------------------------
# The release stdlib packages come along so that python3.11d finds its own prefix (DEST/usr) and
# needs no PYTHONHOME (which the tests' `python -E` would ignore anyway); all five packages are the
# same version, whatever the system's python3.11 is at.
d311=$root/debian-3.11d
d311_packages="python3.11-dbg libpython3.11-dbg libpython3.11-minimal libpython3.11-stdlib libpython3.11-dev"
if ! usable "$d311/usr/bin/python3.11d" || [ ! -f "$d311/usr/include/python3.11/Python.h" ]; then
  say "fetching Debian 12's python3.11d into $d311"
  rm -rf "$d311.partial"
  mkdir -p "$d311.partial/.debs"
  # shellcheck disable=SC2086 # the package list is meant to split
  if ! (cd "$d311.partial/.debs" && apt-get -qq download $d311_packages); then
    say "apt-get download failed; refreshing the system's package lists and retrying"
    apt-get -qq update
    (cd "$d311.partial/.debs" && apt-get -qq download $d311_packages)
  fi
  for deb in "$d311.partial"/.debs/*.deb; do dpkg-deb -x "$deb" "$d311.partial"; done
  rm -rf "$d311"
  mv "$d311.partial" "$d311"
  usable "$d311/usr/bin/python3.11d" || { say "$d311/usr/bin/python3.11d does not run"; exit 1; }
fi

# --- free-threaded 3.13 -----------------------------------------------------------------------
# python-build bakes the prefix into the build (rpath, sysconfig), so it builds in place; a folder
# whose python does not run is a failed or interrupted build and is started over.
ft=$root/3.13t
if ! usable "$ft/bin/python3.13t"; then
  need_shared build-free-threaded.sh
  for tool in gcc make curl pyenv; do
    command -v "$tool" >/dev/null || {
      say "building 3.13t needs $tool (apt-get install build-essential curl libffi-dev libssl-dev zlib1g-dev; pyenv)"
      exit 1
    }
  done
  say "building the free-threaded CPython 3.13 into $ft (about 6 minutes; log: $root/3.13t.log)"
  rm -rf "$ft"
  if ! "$shared/build-free-threaded.sh" "$ft" >"$root/3.13t.log" 2>&1; then
    tail -n 30 "$root/3.13t.log"
    say "the free-threaded build failed; full log: $root/3.13t.log"
    exit 1
  fi
fi

# --- what the matrix will find ----------------------------------------------------------------
status=0
for bin in "$debian"/usr/bin/python3.14 "$debian"/usr/bin/python3.15 "$debian"/usr/bin/python3.14d \
  "$debian"/usr/bin/python3.15d "$d311"/usr/bin/python3.11d "$ft"/bin/python3.13t; do
  if usable "$bin"; then
    say "ok       $("$bin" -E -s -B -c 'import platform; print(platform.python_version())') $bin"
  else
    say "MISSING  $bin"
    status=1
  fi
done
if usable /usr/bin/python3.11; then
  say "ok       system 3.11 /usr/bin/python3.11"
else
  say "MISSING  /usr/bin/python3.11 (apt-get install python3.11)"
  status=1
fi
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for minor in 2.7 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13; do
  found=$(ls -d "$pyenv_root"/versions/"$minor".*/bin/python"$minor" 2>/dev/null | head -n 1 || true)
  if [ -n "$found" ]; then
    say "ok       pyenv $minor $found"
  else
    say "MISSING  pyenv $minor: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install $minor (not done here)"
    status=1
  fi
done
say "done in $((SECONDS - start)) s"
exit $status
