"""The command line: probe every build found (or given), render the tables and the Rust types,
and write them, or with --check compare them with the files on disk."""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import re
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from .probe import (ProbeResult, Source, discover, include_dirs_under, probe,
                    source_from_include_dir, verify_pyruntime)
from .render import (REPO, Entry, check_kept_entry, entry_field_names, entry_values,
                     parse_existing, render_debug_map, render_entry, render_layout_rs, render_mod,
                     render_version_file, rustfmt)
from .spec import ARCHES, MIN_VERSION, SHAPE_ORDER, SHAPES, GenError, check_spec

DEFAULT_OUT = os.path.join(REPO, "src", "python", "layouts")

def build_sources(args) -> List[Source]:
    shapes = args.shape or []
    if shapes and not args.python_prefix:
        raise GenError("--shape goes with --python-prefix")
    if len(shapes) not in (0, 1, len(args.python_prefix or [])):
        raise GenError("give --shape once (for every --python-prefix) or once per --python-prefix")
    dirs: List[Tuple[str, Optional[str]]] = []
    for i, prefix in enumerate(args.python_prefix or []):
        shape = shapes[0] if len(shapes) == 1 else (shapes[i] if shapes else None)
        found = include_dirs_under(prefix)
        if not found:
            raise GenError(f"{prefix}: no include/python*/Python.h")
        dirs += [(d, shape) for d in found]
    dirs += [(d, None) for d in args.include_dir or []]
    if args.discover or not dirs:
        dirs += [(d, None) for d in discover()]
    seen = set()
    sources = []
    for d, shape in dirs:
        src = source_from_include_dir(d, shape)
        if src.include_dir in seen:
            continue
        seen.add(src.include_dir)
        sources.append(src)
    return sources


def main(argv=None) -> int:
    import __main__
    doc = getattr(__main__, "__doc__", None) or __doc__
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
    ap.add_argument("--python-prefix", action="append", metavar="PREFIX",
                    help="an installation prefix (PREFIX/include/pythonX.Y); repeatable. "
                         "Disables discovery unless --discover is given.")
    ap.add_argument("--shape", action="append", choices=SHAPE_ORDER,
                    help="expected build shape of the --python-prefix build(s); checked against "
                         "its pyconfig.h (the shape is always taken from the headers)")
    ap.add_argument("--include-dir", action="append", metavar="DIR",
                    help="a bare include directory holding Python.h; repeatable")
    ap.add_argument("--discover", action="store_true",
                    help="also discover pyenv and /usr/include builds when given explicit inputs")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the files on disk differ from what would be "
                         "generated")
    ap.add_argument("--prune", action="store_true",
                    help="drop existing consts whose (version, shape) was not regenerated")
    ap.add_argument("--keep-temp", action="store_true", help="keep the probe build directory")
    ap.add_argument("--verify-pyruntime", action="append", metavar="ELF",
                    help="a 3.13+ python executable or libpython: compare the probed layouts with "
                         "the _Py_DebugOffsets initial values in its .PyRuntime section (the file "
                         "is read, never run); exit 1 on disagreement. Repeatable")
    ap.add_argument("-v", "--verbose", action="store_true", help="show compiler commands")
    args = ap.parse_args(argv)

    try:
        return generate(args)
    except GenError as e:
        print(f"gen_layouts: error: {e}", file=sys.stderr)
        return 2


def generate(args) -> int:
    check_spec()
    out_dir = os.path.abspath(args.out)

    sources = build_sources(args)
    results: List[ProbeResult] = []
    tmp = tempfile.mkdtemp(prefix="gen_layouts.")
    try:
        for src in sorted(sources, key=lambda s: (s.version, s.include_dir)):
            if src.minor_key < MIN_VERSION:
                print(f"skip   {src.label()}: versions < {MIN_VERSION[0]}.{MIN_VERSION[1]} "
                      f"are not supported yet")
                continue
            compiler, runner = ARCHES[src.arch][3], ARCHES[src.arch][4]
            lacking = [t for t in [compiler] + runner[:1] if not shutil.which(t)]
            if lacking:
                print(f"skip   {src.label()}: {src.arch} headers need {' and '.join(lacking)} "
                      f"(gcc-aarch64-linux-gnu, qemu-user) to be probed")
                continue
            work = os.path.join(tmp, re.sub(r"[^A-Za-z0-9_.-]", "_", src.include_dir.strip("/")))
            os.makedirs(work)
            res = probe(src, work, args.verbose)
            print(f"probe  {src.label()}: {res.shape} {src.arch}")
            results.append(res)
    finally:
        if args.keep_temp:
            print(f"probe builds kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # Group by (major, minor, shape); newest patch release wins, the rest must agree.
    groups: Dict[Tuple[int, int, str, str], List[ProbeResult]] = {}
    for res in results:
        groups.setdefault(res.source.minor_key + (res.shape, res.source.arch), []).append(res)
    new_entries: Dict[Tuple[int, int, str, str], Entry] = {}
    for key, group in sorted(groups.items()):
        group.sort(key=lambda r: (r.source.version, r.source.include_dir), reverse=True)
        primary, others = group[0], group[1:]
        for o in others:
            diffs = [f"{n}: {primary.values[n].value} vs {o.values[n].value}"
                     for n in primary.values if primary.values[n].value != o.values[n].value]
            pd, od = primary.debug or {}, o.debug or {}
            if (primary.debug is None) != (o.debug is None):
                diffs.append(f"debug_offsets: {primary.debug is not None} vs "
                             f"{o.debug is not None}")
            diffs += [f"debug_offsets.{n}: {pd[n].value} vs {od[n].value}"
                      for n in pd if n in od and pd[n].value != od[n].value]
            if diffs:
                raise GenError(f"{primary.source.label()} and {o.source.label()} are both "
                               f"{key[0]}.{key[1]} {key[2]} {key[3]} but their layouts differ:\n  "
                               + "\n  ".join(diffs))
        new_entries[key] = render_entry(primary, others)

    existing_files = sorted(f for f in glob.glob(os.path.join(out_dir, "v*_*.rs"))
                            if re.fullmatch(r"v\d+_\d+\.rs", os.path.basename(f)))
    existing: Dict[Tuple[int, int, str, str], Tuple[Entry, str]] = {}
    for path in existing_files:
        for e in parse_existing(path):
            existing[e.table] = (e, path)

    # A const generated elsewhere from a newer patch release than any we have here is kept
    # verbatim if our headers give the same values (so --check passes on a machine with, say,
    # only Debian's 3.11.2 when the file came from 3.11.7); differing values are an error, as
    # for two sources in one run.
    reverified: Dict[Tuple[int, int, str, str], str] = {}
    for key, group in sorted(groups.items()):
        if key not in existing or args.prune:
            continue
        e, path = existing[key]
        primary = group[0]
        if e.source_label == primary.source.label():
            # Same source: keep the cross-checks recorded where more headers were available, as
            # long as they still hold (same values and members).
            if (entry_field_names(e.text) == entry_field_names(new_entries[key].text)
                    and entry_values(e.text) == entry_values(new_entries[key].text)):
                new_entries[key] = render_entry(primary, group[1:], e.cross_checked)
            continue
        if e.source_label in {r.source.label() for r in group}:
            continue
        m = re.search(r"\((\d+)\.(\d+)\.(\d+)[^)]*\)$", e.source_label)
        if not m or tuple(map(int, m.groups())) <= primary.source.version:
            continue  # ours is as new or newer: regenerate from it
        if entry_field_names(e.text) != entry_field_names(new_entries[key].text):
            print(f"note   {path}: {e.const} was generated from {e.source_label}, "
                  f"but the spec changed since: regenerating it from the older "
                  f"{primary.source.label()}")
            continue
        if entry_values(e.text) != entry_values(new_entries[key].text):
            diff = sorted(set(entry_values(e.text)) ^ set(entry_values(new_entries[key].text)))
            raise GenError(f"{path}: {e.const} (from {e.source_label}) and "
                           f"{primary.source.label()} are both {key[0]}.{key[1]} {key[2]} "
                           f"{key[3]} but "
                           f"their layouts differ: {diff}")
        new_entries[key] = e
        reverified[key] = primary.source.label()

    # Keep consts for keys we could not regenerate here.
    kept: Dict[Tuple[int, int, str, str], Entry] = {}
    for k, (e, path) in sorted(existing.items()):
        if k not in new_entries and not args.prune:
            check_kept_entry(e, path)
            kept[k] = e

    all_entries = list(new_entries.values()) + list(kept.values())
    if not all_entries:
        raise GenError(f"no CPython >= {MIN_VERSION[0]}.{MIN_VERSION[1]} headers found and no "
                       f"existing tables to keep")

    files: Dict[str, str] = {}
    by_file: Dict[str, List[Entry]] = {}
    for e in all_entries:
        by_file.setdefault(f"v{e.major}_{e.minor}.rs", []).append(e)
    for name, entries in sorted(by_file.items()):
        files[os.path.join(out_dir, name)] = rustfmt(render_version_file(entries), name)
    files[os.path.join(out_dir, "mod.rs")] = rustfmt(render_mod(all_entries), "mod.rs")
    python_dir = os.path.dirname(out_dir)
    files[os.path.join(python_dir, "layout.rs")] = rustfmt(render_layout_rs(), "layout.rs")
    files[os.path.join(python_dir, "debug_offsets_map.rs")] = rustfmt(
        render_debug_map(), "debug_offsets_map.rs")

    on_disk = set(existing_files)
    if os.path.exists(os.path.join(out_dir, "mod.rs")):
        on_disk.add(os.path.join(out_dir, "mod.rs"))
    stale = sorted(on_disk - set(files))

    verified = True
    for path in args.verify_pyruntime or []:
        verified = verify_pyruntime(path, results) and verified
    if not verified:
        print("gen_layouts: --verify-pyruntime found disagreements (nothing written)",
              file=sys.stderr)
        return 1

    # Summary
    print()
    print(f"{'file':<10} {'const':<22} {'source':<58} cross-checked")
    for e in sorted(all_entries, key=lambda e: e.key):
        k = e.table
        if k in reverified:
            status = f"(kept, same values here: {reverified[k]}) {e.source_label}"
        else:
            status = e.source_label if k in new_entries else f"(kept) {e.source_label}"
        print(f"{f'v{e.major}_{e.minor}.rs':<10} {e.const:<22} {status:<58} "
              f"{', '.join(e.cross_checked) or '-'}")
    print()

    if args.check:
        bad = []
        for path, text in sorted(files.items()):
            try:
                with open(path, encoding="utf-8") as fh:
                    cur = fh.read()
            except FileNotFoundError:
                bad.append(f"{path}: missing")
                continue
            if cur != text:
                diff = difflib.unified_diff(cur.splitlines(True), text.splitlines(True),
                                            path, path + " (regenerated)")
                bad.append(f"{path}: differs\n" + "".join(list(diff)[:60]))
        bad += [f"{n}: stale (would be deleted)" for n in stale]
        if bad:
            print("gen_layouts --check: FAILED\n" + "\n".join(bad), file=sys.stderr)
            return 1
        print(f"gen_layouts --check: OK ({len(files)} files up to date in {out_dir})")
        return 0

    os.makedirs(out_dir, exist_ok=True)
    for path, text in sorted(files.items()):
        try:
            with open(path, encoding="utf-8") as fh:
                same = fh.read() == text
        except FileNotFoundError:
            same = False
        if not same:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        print(f"{'unchanged' if same else 'wrote':<9} {path}")
    for path in stale:
        os.remove(path)
        print(f"{'deleted':<9} {path}")
    return 0
