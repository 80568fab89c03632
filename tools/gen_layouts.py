#!/usr/bin/env python3
"""Generate per-CPython-version struct layout tables (src/python/layouts/) as Rust source.

Every number comes from the headers of the CPython build it describes: for each build we compile a
small C program that includes that build's own headers (`pythonX.Y-config --includes`, or its
`include/pythonX.Y` directory) with `-DPy_BUILD_CORE` (for `Include/internal/pycore_*.h`) and
prints `offsetof`/`sizeof` values.  We run that probe; we never run the Python interpreter.

Usage:
    python3 tools/gen_layouts.py            # discover every build, regenerate src/python/layouts/
    python3 tools/gen_layouts.py --check    # regenerate in memory; exit 1 if the files differ
    python3 tools/gen_layouts.py --python-prefix /opt/py3.12d --shape debug
    python3 tools/gen_layouts.py --include-dir /usr/include/python3.11

Inputs ("sources") are include directories.  Without --python-prefix/--include-dir, sources are
discovered: every `$(pyenv root)/versions/*/include/python*` plus every `/usr/include/python3*`.
Each source is probed; its (major, minor, shape) picks the output file `vM_N.rs` and the const
(`RELEASE`, `DEBUG`, `FREE_THREADED`).  When several sources give the same key (pyenv 3.11.7 and
Debian's 3.11.2), the newest is used and every other one must give identical values, else we fail.

Layout consts already in src/python/layouts/ whose key was not regenerated in this run (because
this machine has no headers for it) are kept verbatim, so a single new version/shape can be added
with --python-prefix without losing the others.  --prune drops them instead.

The list of fields, and which C member each one mirrors, is FIELDS below.  It must match the
`Layout` struct in src/python/layout.rs (checked on every run).  For each field we list the C
expressions to try, in order; a member that does not exist makes gcc fail on that probe line, and
that candidate is dropped.  What was found is then checked against the version range the field is
expected to exist in (`since`/`until`), so both a missing and an unexpectedly present member fail
loudly instead of silently producing a wrong table.

Standard library only.  Needs gcc and rustfmt.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "src", "python", "layouts")
SCRIPT_NAME = "tools/gen_layouts.py"

# Oldest version this generator handles.  Older builds (2.7, 3.6, 3.7: no `pycore_*` headers,
# no `_PyRuntime` in 2.7/3.6) are skipped with a message until Layout grows fields for them.
MIN_VERSION = (3, 8)

Version = Tuple[int, int]

# Shape name on the command line -> (Rust enum variant, const name).
SHAPES = {
    "release": ("Release", "RELEASE"),
    "debug": ("Debug", "DEBUG"),
    "free-threaded": ("FreeThreaded", "FREE_THREADED"),
}
SHAPE_ORDER = list(SHAPES)


class GenError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Field specification
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Off:
    """`offsetof(ctype, member)`; `member` may be a dotted path (`threads.head`)."""

    ctype: str
    member: str

    def expr(self) -> str:
        return f"offsetof({self.ctype}, {self.member})"

    def size_expr(self) -> str:
        return f"sizeof((({self.ctype} *)0)->{self.member})"


@dataclasses.dataclass(frozen=True)
class Size:
    """`sizeof(ctype)`."""

    ctype: str

    def expr(self) -> str:
        return f"sizeof({self.ctype})"


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    candidates: Tuple[object, ...]
    # The member is expected to exist for since <= version < until (None: unbounded).
    since: Optional[Version] = None
    until: Optional[Version] = None
    # Force None when this other field is None (the member exists but is not what we mirror).
    requires: Optional[str] = None
    # Expected sizeof(member): the Rust side reads the member with a fixed width.
    size: Optional[int] = None
    # Value to emit (as Some) for versions where the member does not exist.
    absent: Optional[int] = None
    absent_why: str = ""


def F(name, *candidates, **kw) -> Field:
    return Field(name, tuple(candidates), **kw)


PTR = 8  # LP64 (x86_64): the probes are compiled for the host, which must match the core dumps.

FIELDS: List[Field] = [
    # --- PyObject / PyVarObject / PyTypeObject
    F("object_ob_type", Off("PyObject", "ob_type"), size=PTR),
    F("var_object_ob_size", Off("PyVarObject", "ob_size"), size=8),
    F("type_tp_name", Off("PyTypeObject", "tp_name"), size=PTR),
    F("type_tp_flags", Off("PyTypeObject", "tp_flags"), size=8),
    F("type_tp_dictoffset", Off("PyTypeObject", "tp_dictoffset"), size=8),
    F("type_tp_basicsize", Off("PyTypeObject", "tp_basicsize"), size=8),
    F("heaptype_ht_cached_keys", Off("PyHeapTypeObject", "ht_cached_keys"), size=PTR),
    # --- _PyRuntimeState
    F("runtime_interpreters_head", Off("_PyRuntimeState", "interpreters.head"), size=PTR),
    F("runtime_interpreters_main", Off("_PyRuntimeState", "interpreters.main"), size=PTR),
    # 3.12 keeps `gilstate` but moved the current tstate to a thread-local (_Py_tss_tstate).
    F("runtime_gilstate_tstate_current", Off("_PyRuntimeState", "gilstate.tstate_current"),
      until=(3, 12), size=PTR),
    # --- PyInterpreterState
    F("interp_next", Off("PyInterpreterState", "next"), size=PTR),
    F("interp_tstate_head", Off("PyInterpreterState", "threads.head"),
      Off("PyInterpreterState", "tstate_head"), size=PTR),
    F("interp_modules", Off("PyInterpreterState", "imports.modules"),
      Off("PyInterpreterState", "modules"), size=PTR),
    F("interp_id", Off("PyInterpreterState", "id"), size=8),
    # size=PTR also proves it is the pointer (3.12+), not the struct that 3.9-3.11 embed under
    # EXPERIMENTAL_ISOLATED_SUBINTERPRETERS.
    F("interp_ceval_gil", Off("PyInterpreterState", "ceval.gil"), since=(3, 12), size=PTR),
    # struct _gil_runtime_state exists in every version, but before 3.12 it lives inside
    # _PyRuntime.ceval, not behind PyInterpreterState.ceval.gil: None there, as documented.
    F("gil_locked", Off("struct _gil_runtime_state", "locked"), since=(3, 12),
      requires="interp_ceval_gil", size=4),
    F("gil_last_holder", Off("struct _gil_runtime_state", "last_holder"), since=(3, 12),
      requires="interp_ceval_gil", size=PTR),
    # --- PyThreadState
    F("tstate_next", Off("PyThreadState", "next"), size=PTR),
    F("tstate_interp", Off("PyThreadState", "interp"), size=PTR),
    F("tstate_frame", Off("PyThreadState", "frame"), until=(3, 11), size=PTR),
    # 3.10 already has `PyThreadState.cframe`, but its CFrame has no `current_frame` (3.10 still
    # walks tstate->frame).  The field means "where to find the current _PyInterpreterFrame", so
    # it is None on 3.10, as the layout.rs doc ("3.11, 3.12") says.
    F("tstate_cframe", Off("PyThreadState", "cframe"), since=(3, 11), until=(3, 13),
      requires="cframe_current_frame", size=PTR),
    F("tstate_current_frame", Off("PyThreadState", "current_frame"), since=(3, 13), size=PTR),
    F("tstate_thread_id", Off("PyThreadState", "thread_id"), size=8),
    # layout.rs said "3.8+": the headers disagree, PyThreadState.native_thread_id is 3.11+
    # (3.8-3.10 only expose it via threading.get_native_id()).
    F("tstate_native_thread_id", Off("PyThreadState", "native_thread_id"), since=(3, 11), size=8),
    # --- _PyCFrame
    F("cframe_current_frame", Off("_PyCFrame", "current_frame"), since=(3, 11), until=(3, 13),
      size=PTR),
    # --- PyFrameObject (the frame-object walk of <=3.10).  3.11+ still has a `struct _frame`
    # with f_back/f_lineno, but it is a lazily-created wrapper around _PyInterpreterFrame with
    # no f_code: the frame_* fields are all None there (keyed on frame_f_code).
    F("frame_f_back", Off("PyFrameObject", "f_back"), until=(3, 11), requires="frame_f_code",
      size=PTR),
    F("frame_f_code", Off("PyFrameObject", "f_code"), until=(3, 11), size=PTR),
    F("frame_f_lasti", Off("PyFrameObject", "f_lasti"), until=(3, 11), requires="frame_f_code",
      size=4),
    F("frame_f_lineno", Off("PyFrameObject", "f_lineno"), until=(3, 11),
      requires="frame_f_code", size=4),
    # --- _PyInterpreterFrame
    F("iframe_code", Off("_PyInterpreterFrame", "f_executable"),
      Off("_PyInterpreterFrame", "f_code"), since=(3, 11), size=PTR),
    F("iframe_previous", Off("_PyInterpreterFrame", "previous"), since=(3, 11), size=PTR),
    F("iframe_instr_ptr", Off("_PyInterpreterFrame", "instr_ptr"),
      Off("_PyInterpreterFrame", "prev_instr"), since=(3, 11), size=PTR),
    F("iframe_owner", Off("_PyInterpreterFrame", "owner"), since=(3, 11), size=1),
    # --- PyCodeObject
    F("code_co_filename", Off("PyCodeObject", "co_filename"), size=PTR),
    F("code_co_name", Off("PyCodeObject", "co_name"), size=PTR),
    F("code_co_qualname", Off("PyCodeObject", "co_qualname"), since=(3, 11), size=PTR),
    F("code_co_firstlineno", Off("PyCodeObject", "co_firstlineno"), size=4),
    F("code_co_lnotab", Off("PyCodeObject", "co_lnotab"), until=(3, 10), size=PTR),
    F("code_co_linetable", Off("PyCodeObject", "co_linetable"), since=(3, 10), size=PTR),
    F("code_co_code_adaptive", Off("PyCodeObject", "co_code_adaptive"), since=(3, 11)),
    # --- PyBytesObject / PyUnicodeObject
    F("bytes_ob_sval", Off("PyBytesObject", "ob_sval")),
    F("unicode_length", Off("PyASCIIObject", "length"), size=8),
    # `state` is the struct holding the bit fields; the bit positions are hardcoded in Rust.
    F("unicode_state", Off("PyASCIIObject", "state"), size=4),
    F("unicode_ascii_size", Size("PyASCIIObject")),
    F("unicode_compact_size", Size("PyCompactUnicodeObject")),
    F("unicode_legacy_data", Off("PyUnicodeObject", "data"), size=PTR),
    # --- PyLongObject
    F("long_digits", Off("PyLongObject", "long_value.ob_digit"), Off("PyLongObject", "ob_digit")),
    F("long_lv_tag", Off("PyLongObject", "long_value.lv_tag"), since=(3, 12), size=8),
    # --- PyDictObject / PyDictKeysObject
    F("dict_ma_used", Off("PyDictObject", "ma_used"), size=8),
    F("dict_ma_keys", Off("PyDictObject", "ma_keys"), size=PTR),
    F("dict_ma_values", Off("PyDictObject", "ma_values"), size=PTR),
    F("dictkeys_dk_size", Off("PyDictKeysObject", "dk_size"), until=(3, 11), size=8),
    F("dictkeys_dk_log2_size", Off("PyDictKeysObject", "dk_log2_size"), since=(3, 11), size=1),
    F("dictkeys_dk_log2_index_bytes", Off("PyDictKeysObject", "dk_log2_index_bytes"),
      since=(3, 11), size=1),
    F("dictkeys_dk_kind", Off("PyDictKeysObject", "dk_kind"), since=(3, 11), size=1),
    F("dictkeys_dk_nentries", Off("PyDictKeysObject", "dk_nentries"), size=8),
    F("dictkeys_dk_indices", Off("PyDictKeysObject", "dk_indices")),
    F("dict_entry_size", Size("PyDictKeyEntry")),
    F("dict_unicode_entry_size", Size("PyDictUnicodeEntry"), since=(3, 11)),
    # layout.rs: "offsetof(PyDictValues, values) (3.13+...); 0 before".  PyDictValues exists from
    # 3.11 (offset 0 in 3.11/3.12, 8 in 3.13).  Before 3.11 there is no such struct, but
    # `ma_values` is a `PyObject **` pointing straight at the values array, so Some(0) is the
    # right answer for "where do the values start relative to ma_values" and keeps `.unwrap()`
    # callers working.
    F("dict_values_values", Off("PyDictValues", "values"), since=(3, 11), absent=0,
      absent_why="no PyDictValues before 3.11: ma_values (PyObject **) points at the values"),
    # --- PyModuleObject
    F("module_md_dict", Off("PyModuleObject", "md_dict"), size=PTR),
]

FIELD_BY_NAME = {f.name: f for f in FIELDS}
assert len(FIELD_BY_NAME) == len(FIELDS)
assert all(f.requires is None or f.requires in FIELD_BY_NAME for f in FIELDS)

# Headers to include after Python.h, in this order, when present in the include dir.
# (frameobject.h / longintrepr.h are not pulled in by Python.h on <=3.10.)
EXTRA_HEADERS = [
    "frameobject.h",
    "longintrepr.h",
    "internal/pycore_runtime.h",
    "internal/pycore_pystate.h",
    "internal/pycore_interp.h",
    "internal/pycore_gil.h",
    "internal/pycore_frame.h",
    "internal/pycore_code.h",
    "internal/pycore_dict.h",
    "internal/pycore_moduleobject.h",
]

# Define sets to try, in order, until the headers compile.
CORE_DEFINES = [["-DPy_BUILD_CORE"], ["-DPy_BUILD_CORE", "-DPy_BUILD_CORE_MODULE"]]

# ---------------------------------------------------------------------------------------------
# Hand-defined structs.  Only for structs that an old version defines in a source file that is
# not installed.  Each is copied from that version's source (the URL in the probe uses the probed
# version's tag) and is used only if no installed header defines the struct (checked; and a
# version >= 3.8 without an installed definition and without a hand definition is an error).
# When written, both were checked against the DWARF (`gdb -batch -ex 'ptype /o ...'`) of the
# pyenv 3.8.18/3.9.18/3.10.13 libpython builds: identical offsets and sizes.  Sources:
#   https://github.com/python/cpython/blob/v3.8.18/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.9.18/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.10.13/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.8.18/Objects/moduleobject.c
#   https://github.com/python/cpython/blob/v3.9.18/Objects/moduleobject.c
# ---------------------------------------------------------------------------------------------

DICT_COMMON_3_8_TO_3_10 = """\
/* HAND-DEFINED: copied from CPython {tag} Objects/dict-common.h (not installed):
   https://github.com/python/cpython/blob/{tag}/Objects/dict-common.h
   Same layout in 3.8, 3.9 and 3.10 (3.11 moved it to Include/internal/pycore_dict.h). */
typedef struct {{
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
}} PyDictKeyEntry;
typedef Py_ssize_t (*dict_lookup_func)
    (PyDictObject *mp, PyObject *key, Py_hash_t hash, PyObject **value_addr);
struct _dictkeysobject {{
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    dict_lookup_func dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
}};
"""

MODULEOBJECT_3_8_TO_3_9 = """\
/* HAND-DEFINED: copied from CPython {tag} Objects/moduleobject.c (not installed):
   https://github.com/python/cpython/blob/{tag}/Objects/moduleobject.c
   (3.10 moved it to Include/internal/pycore_moduleobject.h). */
typedef struct {{
    PyObject_HEAD
    PyObject *md_dict;
    struct PyModuleDef *md_def;
    void *md_state;
    PyObject *md_weaklist;
    PyObject *md_name;
}} PyModuleObject;
"""


@dataclasses.dataclass(frozen=True)
class HandDef:
    key: str
    versions: Tuple[Version, ...]
    # Regex that, if found in any installed header, means the struct is installed: don't use this.
    installed_re: str
    template: str
    types: Tuple[str, ...]  # C types whose offsets/sizes then come from this definition


HAND_DEFS = [
    HandDef("Objects/dict-common.h", ((3, 8), (3, 9), (3, 10)), r"struct\s+_dictkeysobject\s*\{",
            DICT_COMMON_3_8_TO_3_10, ("PyDictKeysObject", "PyDictKeyEntry")),
    HandDef("Objects/moduleobject.c", ((3, 8), (3, 9)), r"\}\s*PyModuleObject\s*;",
            MODULEOBJECT_3_8_TO_3_9, ("PyModuleObject",)),
]

# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    include_dir: str  # the directory holding Python.h (what the @generated header names)
    py_version: str  # PY_VERSION from patchlevel.h
    version: Tuple[int, int, int]
    config: Optional[str]  # pythonX.Y-config shell script, if found
    expected_shape: Optional[str] = None  # from --shape

    @property
    def minor_key(self) -> Version:
        return self.version[:2]

    def label(self) -> str:
        return f"{self.include_dir} ({self.py_version})"


def read_patchlevel(include_dir: str) -> Tuple[str, Tuple[int, int, int]]:
    path = os.path.join(include_dir, "patchlevel.h")
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()

    def num(name):
        m = re.search(rf"^#define\s+{name}\s+(\d+)", text, re.M)
        if not m:
            raise GenError(f"{path}: no {name}")
        return int(m.group(1))

    m = re.search(r'^#define\s+PY_VERSION\s+"([^"]+)"', text, re.M)
    if not m:
        raise GenError(f"{path}: no PY_VERSION")
    return m.group(1), (num("PY_MAJOR_VERSION"), num("PY_MINOR_VERSION"), num("PY_MICRO_VERSION"))


def is_shell_script(path: str) -> bool:
    """True for a `#!/bin/sh`-style script: we may run those, never a Python interpreter."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(200).decode("ascii", "replace").strip()
    except OSError:
        return False
    if not first.startswith("#!"):
        return False
    words = first[2:].split()
    if not words:
        return False
    interp = os.path.basename(words[0])
    if interp == "env" and len(words) > 1:
        interp = os.path.basename(words[1])
    return interp in ("sh", "bash", "dash")


def source_from_include_dir(include_dir: str, expected_shape: Optional[str] = None) -> Source:
    include_dir = os.path.normpath(os.path.abspath(include_dir))
    if not os.path.isfile(os.path.join(include_dir, "Python.h")):
        raise GenError(f"{include_dir}: no Python.h")
    py_version, version = read_patchlevel(include_dir)
    # <prefix>/include/python3.11[m|d|t] -> <prefix>/bin/python3.11[m|d|t]-config
    prefix = os.path.dirname(os.path.dirname(include_dir))
    config = os.path.join(prefix, "bin", os.path.basename(include_dir) + "-config")
    if not os.path.exists(config):
        config = None
    return Source(include_dir, py_version, version, config, expected_shape)


def pyenv_root() -> str:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    exe = shutil.which("pyenv")
    if exe and is_shell_script(exe):
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser("~/.pyenv")


def include_dirs_under(prefix: str) -> List[str]:
    return sorted(d for d in glob.glob(os.path.join(prefix, "include", "python*"))
                  if os.path.isfile(os.path.join(d, "Python.h")))


def discover() -> List[str]:
    dirs: List[str] = []
    for version_dir in sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*"))):
        if os.path.islink(version_dir):
            continue  # pyenv aliases point at a real version directory, found on its own
        dirs.extend(include_dirs_under(version_dir))
    # Distribution pythons (Debian: /usr/include/python3.11, multiarch pyconfig.h found through
    # the compiler's default /usr/include).
    dirs.extend(sorted(d for d in glob.glob("/usr/include/python3*")
                       if os.path.isfile(os.path.join(d, "Python.h"))))
    return dirs


def include_flags(src: Source) -> List[str]:
    """The build's own include flags: `pythonX.Y-config --includes`, else -I<include dir>."""
    if src.config and is_shell_script(src.config):
        out = subprocess.run([src.config, "--includes"], capture_output=True, text=True,
                             env=dict(os.environ, LC_ALL="C"), timeout=60)
        if out.returncode != 0:
            raise GenError(f"{src.config} --includes failed: {out.stderr.strip()}")
        flags: List[str] = []
        for word in shlex.split(out.stdout):
            if word.startswith("-I") and word not in flags:
                flags.append(word)
        dirs = [os.path.normpath(os.path.abspath(f[2:])) for f in flags]
        if src.include_dir not in dirs:
            raise GenError(f"{src.config} --includes gives {flags}, which does not contain "
                           f"{src.include_dir}: config script and headers disagree")
        return flags
    return ["-I" + src.include_dir]


# ---------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------

PROBE_HEAD = """\
/* Generated by tools/gen_layouts.py: prints offsetof/sizeof values for one CPython build. */
#include "Python.h"
{includes}
#include <stddef.h>
#include <stdio.h>

{hand_defs}
#if defined(Py_GIL_DISABLED)
#  define PROBE_SHAPE "free-threaded"
#elif defined(Py_DEBUG)
#  define PROBE_SHAPE "debug"
#else
#  define PROBE_SHAPE "release"
#endif
#if defined(Py_TRACE_REFS)
#  define PROBE_TRACE_REFS 1
#else
#  define PROBE_TRACE_REFS 0
#endif

#define P(id, expr) printf("%s %zu\\n", id, (size_t)(expr))

int main(void) {{
    printf("meta shape %s\\n", PROBE_SHAPE);
    printf("meta trace_refs %d\\n", PROBE_TRACE_REFS);
    printf("meta version %s\\n", PY_VERSION);
    printf("meta sizeof_void_p %zu\\n", sizeof(void *));
/* PROBES */
"""

PROBE_TAIL = """\
    return 0;
}
"""


@dataclasses.dataclass
class Value:
    value: Optional[int]
    comment: str  # the C expression it came from, or why it is None / defaulted


@dataclasses.dataclass
class ProbeResult:
    source: Source
    shape: str
    flags: List[str]
    values: Dict[str, Value]
    hand_defined: List[str]


def run(cmd: Sequence[str], cwd: str, verbose: bool) -> subprocess.CompletedProcess:
    if verbose:
        print("  $ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, LC_ALL="C"))


def installed_headers_text(include_dir: str) -> str:
    chunks = []
    for path in sorted(glob.glob(os.path.join(include_dir, "**", "*.h"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as fh:
            chunks.append(fh.read())
    return "\n".join(chunks)


def hand_defs_for(src: Source) -> List[HandDef]:
    headers = installed_headers_text(src.include_dir)
    used = []
    for hd in HAND_DEFS:
        installed = re.search(hd.installed_re, headers) is not None
        if src.minor_key in hd.versions:
            if installed:
                raise GenError(f"{src.label()}: {hd.key} is hand-defined for this version but "
                               f"the installed headers define it; drop the hand definition")
            used.append(hd)
        elif not installed and src.minor_key >= MIN_VERSION:
            raise GenError(f"{src.label()}: no installed header defines the struct from {hd.key} "
                           f"and there is no hand definition for {src.minor_key}")
    return used


def probe(src: Source, workdir: str, verbose: bool) -> ProbeResult:
    flags = include_flags(src)
    hand = hand_defs_for(src)
    hand_types = {t for hd in hand for t in hd.types}
    tag = "v" + src.py_version
    includes = "\n".join(f'#include "{h}"' for h in EXTRA_HEADERS
                         if os.path.isfile(os.path.join(src.include_dir, h)))
    head = PROBE_HEAD.format(includes=includes,
                             hand_defs="\n".join(hd.template.format(tag=tag) for hd in hand))

    # One probe line per (field, candidate); line number -> (field, candidate index).
    lines: List[Tuple[str, int, str]] = []
    for f in FIELDS:
        for i, cand in enumerate(f.candidates):
            pid = f"{f.name}#{i}"
            stmt = f'P("{pid}", {cand.expr()});'
            if f.size is not None and isinstance(cand, Off):
                stmt += f' P("{pid}#size", {cand.size_expr()});'
            lines.append((f.name, i, "    " + stmt))

    c_path = os.path.join(workdir, "probe.c")
    exe = os.path.join(workdir, "probe")
    head_lines = head.count("\n")
    active = list(range(len(lines)))
    defines_used = None
    base = ["gcc", "-std=gnu11", "-O0", "-w", "-fno-diagnostics-color",
            "-fno-diagnostics-show-caret", "-o", exe, c_path]

    # First make sure the headers compile at all, picking the define set.
    with open(c_path, "w") as fh:
        fh.write(head + PROBE_TAIL)
    errors = []
    for defines in CORE_DEFINES:
        r = run(base + flags + defines, workdir, verbose)
        if r.returncode == 0:
            defines_used = defines
            break
        errors.append(r.stderr)
    if defines_used is None:
        raise GenError(f"{src.label()}: headers do not compile with {flags}:\n" + errors[-1])

    # Then drop candidates gcc rejects until the probe compiles.
    err_re = re.compile(r"^" + re.escape(c_path) + r":(\d+):\d+: error:", re.M)
    for _ in range(len(lines) + 1):
        with open(c_path, "w") as fh:
            fh.write(head)
            for idx in active:
                fh.write(lines[idx][2] + "\n")
            fh.write(PROBE_TAIL)
        r = run(base + flags + defines_used, workdir, verbose)
        if r.returncode == 0:
            break
        bad_lines = {int(m.group(1)) for m in err_re.finditer(r.stderr)}
        bad = set()
        for ln in bad_lines:
            k = ln - head_lines - 1
            if not 0 <= k < len(active):
                raise GenError(f"{src.label()}: probe error outside the probe lines:\n{r.stderr}")
            bad.add(active[k])
        if not bad:
            raise GenError(f"{src.label()}: probe failed to build:\n{r.stderr}")
        active = [i for i in active if i not in bad]
    else:
        raise GenError(f"{src.label()}: probe never compiled")

    r = run([exe], workdir, verbose)
    if r.returncode != 0:
        raise GenError(f"{src.label()}: probe exited {r.returncode}: {r.stderr}")
    raw: Dict[str, str] = {}
    for line in r.stdout.splitlines():
        if line.startswith("meta "):
            k, _, val = line[5:].partition(" ")
            k = "meta:" + k
        else:
            k, _, val = line.partition(" ")
        raw[k] = val

    if raw["meta:version"] != src.py_version:
        raise GenError(f"{src.label()}: compiled PY_VERSION is {raw['meta:version']}; the include "
                       f"flags {flags} pick up another version's headers")
    if raw["meta:sizeof_void_p"] != str(PTR):
        raise GenError(f"{src.label()}: sizeof(void *) = {raw['meta:sizeof_void_p']}, expected {PTR}")
    shape = raw["meta:shape"]
    if src.expected_shape and src.expected_shape != shape:
        raise GenError(f"{src.label()}: --shape {src.expected_shape} given, but the headers "
                       f"(pyconfig.h) describe a {shape} build")

    values: Dict[str, Value] = {}
    problems: List[str] = []
    v = src.minor_key
    for f in FIELDS:
        found = None
        for i, cand in enumerate(f.candidates):
            pid = f"{f.name}#{i}"
            if pid in raw:
                found = (i, cand, int(raw[pid]))
                if f.size is not None and isinstance(cand, Off):
                    got = int(raw[pid + "#size"])
                    if got != f.size:
                        problems.append(f"{f.name}: sizeof({cand.ctype}.{cand.member}) is {got}, "
                                        f"expected {f.size}")
                break
        if found:
            _, cand, n = found
            comment = cand.expr()
            if cand.ctype in hand_types:
                comment += ", hand-defined struct"
            values[f.name] = Value(n, comment)
        else:
            values[f.name] = Value(None, "")
        # The requires-chain refers to earlier-or-later fields; resolved below.

    for f in FIELDS:
        if f.requires and values[f.name].value is not None and values[f.requires].value is None:
            values[f.name] = Value(None, f"None: {values[f.name].comment} exists, but "
                                            f"{f.requires} is None")

    for f in FIELDS:
        expected = (f.since is None or v >= f.since) and (f.until is None or v < f.until)
        have = values[f.name].value is not None
        if expected and not have:
            tried = ", ".join(c.expr() for c in f.candidates)
            problems.append(f"{f.name}: expected on {v[0]}.{v[1]} but none of [{tried}] compiles")
        elif have and not expected:
            problems.append(f"{f.name}: {values[f.name].comment} exists on {v[0]}.{v[1]}, "
                            f"outside its expected range since={f.since} until={f.until}")
        if not have and f.absent is not None:
            values[f.name] = Value(f.absent, f.absent_why)

    if shape == "release" and values["object_ob_type"].value != 8:
        problems.append(f"release build with offsetof(PyObject, ob_type) = "
                        f"{values['object_ob_type'].value} (Py_TRACE_REFS={raw['meta:trace_refs']})")
    if problems:
        raise GenError(f"{src.label()}: field spec and headers disagree (update FIELDS in "
                       f"{SCRIPT_NAME}):\n  " + "\n  ".join(problems))
    return ProbeResult(src, shape, flags + defines_used, values, [hd.key for hd in hand])


# ---------------------------------------------------------------------------------------------
# layout.rs cross-check
# ---------------------------------------------------------------------------------------------


def layout_rs_fields(layout_rs: str) -> List[Tuple[str, bool]]:
    """(name, is_option) for every u32 field of `struct Layout`, in declaration order."""
    with open(layout_rs, encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"pub struct Layout\s*\{(.*?)\n\}", text, re.S)
    if not m:
        raise GenError(f"{layout_rs}: no `pub struct Layout`")
    fields = []
    for name, ty in re.findall(r"^\s*pub\s+(\w+)\s*:\s*([^,]+),", m.group(1), re.M):
        ty = ty.strip()
        if name in ("major", "minor", "shape"):
            continue
        if ty == "u32":
            fields.append((name, False))
        elif ty == "Option<u32>":
            fields.append((name, True))
        else:
            raise GenError(f"{layout_rs}: field {name} has type {ty}; the generator only knows "
                           f"u32 / Option<u32>")
    return fields


def check_against_layout_rs(layout_rs: str) -> List[Tuple[str, bool]]:
    fields = layout_rs_fields(layout_rs)
    names = [n for n, _ in fields]
    missing = [n for n in names if n not in FIELD_BY_NAME]
    extra = [f.name for f in FIELDS if f.name not in names]
    if missing or extra:
        raise GenError(f"{layout_rs} and FIELDS in {SCRIPT_NAME} disagree: "
                       f"not in FIELDS: {missing}; not in Layout: {extra}")
    return fields


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Entry:
    """One `pub const <SHAPE>: Layout` in a vM_N.rs file."""

    major: int
    minor: int
    shape: str
    source_label: str
    cross_checked: List[str]
    text: str  # rendered const block, starting at its `// source:` comment

    @property
    def key(self):
        return (self.major, self.minor, SHAPE_ORDER.index(self.shape))


def render_entry(res: ProbeResult, others: List[ProbeResult],
                 fields: List[Tuple[str, bool]]) -> Entry:
    src = res.source
    major, minor = src.minor_key
    variant, const = SHAPES[res.shape]
    out = [f"// source: {src.label()}"]
    for o in others:
        out.append(f"// cross-checked: {o.source.label()}")
    out.append(f"// flags: {' '.join(res.flags)}")
    for hd in res.hand_defined:
        out.append(f"// hand-defined in {SCRIPT_NAME} (not installed): "
                   f"https://github.com/python/cpython/blob/v{src.py_version}/{hd}")
    out.append(f"/// CPython {major}.{minor}, {res.shape} build.")
    out.append(f"pub const {const}: Layout = Layout {{")
    out.append(f"    major: {major},")
    out.append(f"    minor: {minor},")
    out.append(f"    shape: Shape::{variant},")
    for name, is_option in fields:
        val = res.values[name]
        if val.value is None:
            if not is_option:
                raise GenError(f"{src.label()}: {name} is u32 in Layout but absent here")
            rust = "None"
        else:
            rust = f"Some({val.value})" if is_option else str(val.value)
        if val.comment:
            out.append(f"    // {val.comment}")
        out.append(f"    {name}: {rust},")
    out.append("};")
    return Entry(major, minor, res.shape, src.label(), [o.source.label() for o in others],
                 "\n".join(out) + "\n")


def parse_existing(path: str) -> List[Entry]:
    """Const blocks of a previously generated vM_N.rs file."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    m = re.fullmatch(r"v(\d+)_(\d+)\.rs", os.path.basename(path))
    major, minor = int(m.group(1)), int(m.group(2))
    entries = []
    block_re = re.compile(r"^// source: (.*?)\n(.*?^pub const (\w+): Layout = Layout \{\n.*?^\};\n)",
                          re.M | re.S)
    by_const = {c: s for s, (_, c) in SHAPES.items()}
    for bm in block_re.finditer(text):
        const = bm.group(3)
        if const not in by_const:
            raise GenError(f"{path}: unknown const {const}")
        block = bm.group(0)
        crossed = re.findall(r"^// cross-checked: (.*)$", block, re.M)
        entries.append(Entry(major, minor, by_const[const], bm.group(1), crossed, block))
    if not entries:
        raise GenError(f"{path}: no generated Layout consts found; delete it or fix it")
    return entries


def render_version_file(entries: List[Entry]) -> str:
    entries = sorted(entries, key=lambda e: e.key)
    if len(entries) == 1:
        origin = entries[0].source_label
    else:
        origin = ", ".join(f"{e.source_label} [{SHAPES[e.shape][1]}]" for e in entries)
    out = [f"// @generated by {SCRIPT_NAME} from {origin} — do not edit"]
    for e in entries:
        for c in e.cross_checked:
            tag = "" if len(entries) == 1 else f" [{SHAPES[e.shape][1]}]"
            out.append(f"// Cross-checked{tag}: {c} gives identical values.")
    out.append(f"// Regenerate with `python3 {SCRIPT_NAME}`; verify with `--check`.")
    out.append("")
    out.append("use super::super::layout::{Layout, Shape};")
    for e in entries:
        out.append("")
        out.append(e.text.rstrip("\n"))
    return "\n".join(out) + "\n"


def render_mod(entries: List[Entry]) -> str:
    entries = sorted(entries, key=lambda e: e.key)
    mods = sorted({(e.major, e.minor) for e in entries})
    out = [
        f"// @generated by {SCRIPT_NAME} — do not edit",
        f"// Regenerate with `python3 {SCRIPT_NAME}`; verify with `--check`.",
        "",
        "//! Generated per-version layout tables: the single dispatch point from a CPython",
        "//! (major, minor, shape) to its [`Layout`].",
        "",
        "use super::layout::{Layout, Shape};",
        "",
    ]
    out += [f"mod v{a}_{b};" for a, b in mods]
    out.append("")
    out.append("/// Every generated layout, ordered by (major, minor, shape).")
    out.append("pub const ALL: &[&Layout] = &[")
    out += [f"    &v{e.major}_{e.minor}::{SHAPES[e.shape][1]}," for e in entries]
    out.append("];")
    out.append("")
    out.append("/// The layout of CPython `major.minor` built as `shape`, if one was generated.")
    out.append("pub fn lookup(major: u8, minor: u8, shape: Shape) -> Option<&'static Layout> {")
    out.append("    match (major, minor, shape) {")
    for e in entries:
        variant, const = SHAPES[e.shape]
        out.append(f"        ({e.major}, {e.minor}, Shape::{variant}) => "
                   f"Some(&v{e.major}_{e.minor}::{const}),")
    out.append("        _ => None,")
    out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


def rustfmt(text: str, what: str) -> str:
    exe = shutil.which("rustfmt")
    if not exe:
        raise GenError("rustfmt not found (install it with `rustup component add rustfmt`)")
    # Run from the repo so a future rustfmt.toml applies, matching `cargo fmt`.
    r = subprocess.run([exe, "--edition", "2021", "--emit", "stdout"], input=text,
                       capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise GenError(f"rustfmt failed on {what}:\n{r.stderr}\n{text}")
    return r.stdout


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
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
    ap.add_argument("--layout-rs", default=None,
                    help="layout.rs defining struct Layout (default: OUT/../layout.rs)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the files on disk differ from what would be "
                         "generated")
    ap.add_argument("--prune", action="store_true",
                    help="drop existing consts whose (version, shape) was not regenerated")
    ap.add_argument("--keep-temp", action="store_true", help="keep the probe build directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="show compiler commands")
    args = ap.parse_args(argv)

    try:
        return generate(args)
    except GenError as e:
        print(f"gen_layouts: error: {e}", file=sys.stderr)
        return 2


def generate(args) -> int:
    out_dir = os.path.abspath(args.out)
    layout_rs = args.layout_rs or os.path.join(os.path.dirname(out_dir), "layout.rs")
    fields = check_against_layout_rs(layout_rs)

    sources = build_sources(args)
    results: List[ProbeResult] = []
    tmp = tempfile.mkdtemp(prefix="gen_layouts.")
    try:
        for src in sorted(sources, key=lambda s: (s.version, s.include_dir)):
            if src.minor_key < MIN_VERSION:
                print(f"skip   {src.label()}: versions < {MIN_VERSION[0]}.{MIN_VERSION[1]} "
                      f"are not supported yet")
                continue
            work = os.path.join(tmp, re.sub(r"[^A-Za-z0-9_.-]", "_", src.include_dir.strip("/")))
            os.makedirs(work)
            res = probe(src, work, args.verbose)
            print(f"probe  {src.label()}: {res.shape}")
            results.append(res)
    finally:
        if args.keep_temp:
            print(f"probe builds kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # Group by (major, minor, shape); newest patch release wins, the rest must agree.
    groups: Dict[Tuple[int, int, str], List[ProbeResult]] = {}
    for res in results:
        groups.setdefault(res.source.minor_key + (res.shape,), []).append(res)
    new_entries: Dict[Tuple[int, int, str], Entry] = {}
    for key, group in sorted(groups.items()):
        group.sort(key=lambda r: (r.source.version, r.source.include_dir), reverse=True)
        primary, others = group[0], group[1:]
        for o in others:
            diffs = [f"{n}: {primary.values[n].value} vs {o.values[n].value}"
                     for n, _ in fields if primary.values[n].value != o.values[n].value]
            if diffs:
                raise GenError(f"{primary.source.label()} and {o.source.label()} are both "
                               f"{key[0]}.{key[1]} {key[2]} but their layouts differ:\n  "
                               + "\n  ".join(diffs))
        new_entries[key] = render_entry(primary, others, fields)

    # Keep consts for keys we could not regenerate here.
    kept: Dict[Tuple[int, int, str], Entry] = {}
    existing_files = sorted(f for f in glob.glob(os.path.join(out_dir, "v*_*.rs"))
                            if re.fullmatch(r"v\d+_\d+\.rs", os.path.basename(f)))
    for path in existing_files:
        for e in parse_existing(path):
            k = (e.major, e.minor, e.shape)
            if k not in new_entries:
                kept[k] = e
    if args.prune:
        kept = {}

    all_entries = list(new_entries.values()) + list(kept.values())
    if not all_entries:
        raise GenError("no CPython >= 3.8 headers found and no existing tables to keep")

    files: Dict[str, str] = {}
    by_file: Dict[str, List[Entry]] = {}
    for e in all_entries:
        by_file.setdefault(f"v{e.major}_{e.minor}.rs", []).append(e)
    for name, entries in sorted(by_file.items()):
        files[name] = rustfmt(render_version_file(entries), name)
    files["mod.rs"] = rustfmt(render_mod(all_entries), "mod.rs")

    on_disk = {os.path.basename(p) for p in existing_files}
    if os.path.exists(os.path.join(out_dir, "mod.rs")):
        on_disk.add("mod.rs")
    stale = sorted(on_disk - set(files))

    # Summary
    print()
    print(f"{'file':<10} {'const':<14} {'source':<58} cross-checked")
    for e in sorted(all_entries, key=lambda e: e.key):
        k = (e.major, e.minor, e.shape)
        status = e.source_label if k in new_entries else f"(kept) {e.source_label}"
        print(f"{f'v{e.major}_{e.minor}.rs':<10} {SHAPES[e.shape][1]:<14} {status:<58} "
              f"{', '.join(e.cross_checked) or '-'}")
    print()

    if args.check:
        bad = []
        for name, text in sorted(files.items()):
            path = os.path.join(out_dir, name)
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
        bad += [f"{os.path.join(out_dir, n)}: stale (would be deleted)" for n in stale]
        if bad:
            print("gen_layouts --check: FAILED\n" + "\n".join(bad), file=sys.stderr)
            return 1
        print(f"gen_layouts --check: OK ({len(files)} files up to date in {out_dir})")
        return 0

    os.makedirs(out_dir, exist_ok=True)
    for name, text in sorted(files.items()):
        path = os.path.join(out_dir, name)
        try:
            with open(path, encoding="utf-8") as fh:
                same = fh.read() == text
        except FileNotFoundError:
            same = False
        if not same:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        print(f"{'unchanged' if same else 'wrote':<9} {path}")
    for name in stale:
        os.remove(os.path.join(out_dir, name))
        print(f"{'deleted':<9} {os.path.join(out_dir, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
