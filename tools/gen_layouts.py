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
    python3 tools/gen_layouts.py --check --verify-pyruntime ~/.pyenv/versions/3.13.0/bin/python3.13

Inputs ("sources") are include directories.  Without --python-prefix/--include-dir, sources are
discovered: every `$(pyenv root)/versions/*/include/python*`, every `/usr/include/python3*`, and
under $PYCORE_PYTHONS (default ~/.cache/pycore-pythons) every `*/include/python*`,
`*/usr/include/python*` and `*/usr/local/include/python*` (builds installed with --prefix there,
and Debian packages unpacked there with `dpkg-deb -x`; their multiarch pyconfig.h is found by
adding `-I<dir>/usr/include`).  Each source is probed; its (major, minor, shape) picks the output
file `vM_N.rs` and the const (`RELEASE`, `DEBUG`, `FREE_THREADED`).  The shape comes from the
headers (pyconfig.h) and must match the ABI flags of the directory name (python3.14d: debug,
python3.13t: free-threaded).  When several sources give the same key (pyenv 3.11.7 and Debian's
3.11.2), the newest is used and every other one must give identical values, else we fail.

Paths under $PYENV_ROOT and $PYCORE_PYTHONS are written relative to those variables, so the output
does not depend on where they are.  Layout consts already in src/python/layouts/ whose key was not
regenerated in this run (because this machine has no headers for it) are kept verbatim, so a
single new version/shape can be added with --python-prefix without losing the others, and --check
passes on a machine that has only some of the builds.  Likewise a const generated from a newer
patch release than any here is kept if the headers here give the same values (an error if not),
and cross-checks recorded by an earlier run are kept while the values still agree.  --prune drops
kept consts instead.  A kept const that no longer matches layout.rs is an error: regenerate it
where its headers exist.

--verify-pyruntime ELF compares the probed 3.13+ layouts with the `_Py_DebugOffsets` that CPython
itself stores at the start of `_PyRuntime` (the `.PyRuntime` section of a python executable or
libpython): the file is read, never run.

The list of fields, and which C member each one mirrors, is FIELDS below.  It must match the
`Layout` struct in src/python/layout.rs (checked on every run).  For each field we list the C
expressions to try, in order; a member that does not exist makes gcc fail on that probe line, and
that candidate is dropped.  What was found is then checked against the version range the field is
expected to exist in (`since`/`until`), so both a missing and an unexpectedly present member fail
loudly instead of silently producing a wrong table.

Standard library only.  Needs gcc and rustfmt.  (`--verify-pyruntime` parses ELF itself.)
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
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

# Oldest version this generator handles (older builds are skipped with a message).
MIN_VERSION = (2, 7)

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
    # Value to emit (as Some) for versions >= absent_since where the member does not exist.
    absent: Optional[int] = None
    absent_why: str = ""
    absent_since: Optional[Version] = None
    # The member is expected only in these build shapes (None: every shape).
    shapes: Optional[Tuple[str, ...]] = None


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
    # Split-table dicts (PEP 412) are 3.3+.
    F("heaptype_ht_cached_keys", Off("PyHeapTypeObject", "ht_cached_keys"), since=(3, 3),
      size=PTR),
    # --- _PyRuntimeState (3.7+; 2.7 and 3.6 keep the interpreter list in a static of pystate.c)
    F("runtime_interpreters_head", Off("_PyRuntimeState", "interpreters.head"), since=(3, 7),
      size=PTR),
    F("runtime_interpreters_main", Off("_PyRuntimeState", "interpreters.main"), since=(3, 7),
      size=PTR),
    # 3.12 keeps `gilstate` but moved the current tstate to a thread-local (_Py_tss_tstate).
    F("runtime_gilstate_tstate_current", Off("_PyRuntimeState", "gilstate.tstate_current"),
      since=(3, 7), until=(3, 12), size=PTR),
    # --- PyInterpreterState
    F("interp_next", Off("PyInterpreterState", "next"), size=PTR),
    F("interp_tstate_head", Off("PyInterpreterState", "threads.head"),
      Off("PyInterpreterState", "tstate_head"), size=PTR),
    F("interp_modules", Off("PyInterpreterState", "imports.modules"),
      Off("PyInterpreterState", "modules"), size=PTR),
    F("interp_id", Off("PyInterpreterState", "id"), since=(3, 7), size=8),
    # size=PTR also proves it is the pointer (3.12+), not the struct that 3.9-3.11 embed under
    # EXPERIMENTAL_ISOLATED_SUBINTERPRETERS.
    F("interp_ceval_gil", Off("PyInterpreterState", "ceval.gil"), since=(3, 12), size=PTR),
    # struct _gil_runtime_state exists in every version, but before 3.12 it lives inside
    # _PyRuntime.ceval, not behind PyInterpreterState.ceval.gil: None there, as documented.
    F("gil_locked", Off("struct _gil_runtime_state", "locked"), since=(3, 12),
      requires="interp_ceval_gil", size=4),
    F("gil_last_holder", Off("struct _gil_runtime_state", "last_holder"), since=(3, 12),
      requires="interp_ceval_gil", size=PTR),
    # `enabled` is only compiled in under Py_GIL_DISABLED (3.13t+).
    F("gil_enabled", Off("struct _gil_runtime_state", "enabled"), since=(3, 13),
      shapes=("free-threaded",), requires="interp_ceval_gil", size=4),
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
    # --- the exception being handled: a stack of _PyErr_StackItem from 3.7, fields of the
    # thread state itself before.
    F("tstate_exc_info", Off("PyThreadState", "exc_info"), since=(3, 7), size=PTR),
    F("tstate_exc_value", Off("PyThreadState", "exc_value"), until=(3, 7), size=PTR),
    F("err_stackitem_exc_value", Off("_PyErr_StackItem", "exc_value"), since=(3, 7), size=PTR),
    F("err_stackitem_previous_item", Off("_PyErr_StackItem", "previous_item"), since=(3, 7),
      size=PTR),
    # --- the collector's "a collection is running" flag: per interpreter from 3.9, in
    # _PyRuntime for 3.7/3.8, a static of Modules/gcmodule.c before (found by symbol).
    F("interp_gc_collecting", Off("PyInterpreterState", "gc.collecting"), since=(3, 9), size=4),
    F("runtime_gc_collecting", Off("_PyRuntimeState", "gc.collecting"), since=(3, 7),
      until=(3, 9), size=4),
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
    # 2.7's bytesobject.h #defines PyBytesObject to PyStringObject, so the first candidate
    # already works there; the second is a fallback in case a header set lacks the alias.
    F("bytes_ob_sval", Off("PyBytesObject", "ob_sval"), Off("PyStringObject", "ob_sval")),
    # PEP 393 strings (3.3+).  2.7's `unicode` is a different struct (Py_UNICODE *str); its
    # `str` objects are PyStringObject (bytes_ob_sval).
    F("unicode_length", Off("PyASCIIObject", "length"), since=(3, 3), size=8),
    # `state` is the struct holding the bit fields; the bit positions are hardcoded in Rust.
    F("unicode_state", Off("PyASCIIObject", "state"), since=(3, 3), size=4),
    F("unicode_ascii_size", Size("PyASCIIObject"), since=(3, 3)),
    F("unicode_compact_size", Size("PyCompactUnicodeObject"), since=(3, 3)),
    F("unicode_legacy_data", Off("PyUnicodeObject", "data"), since=(3, 3), size=PTR),
    # --- PyIntObject (2.x only: `int` and `long` are separate types)
    F("int_ob_ival", Off("PyIntObject", "ob_ival"), until=(3, 0), size=8),
    # --- PyLongObject
    F("long_digits", Off("PyLongObject", "long_value.ob_digit"), Off("PyLongObject", "ob_digit")),
    F("long_lv_tag", Off("PyLongObject", "long_value.lv_tag"), since=(3, 12), size=8),
    # --- PyDictObject / PyDictKeysObject
    F("dict_ma_used", Off("PyDictObject", "ma_used"), size=8),
    # <3.3: one open-addressing table of PyDictEntry (hash, key, value) hanging off the dict.
    F("dict_ma_mask", Off("PyDictObject", "ma_mask"), until=(3, 3), size=8),
    F("dict_ma_table", Off("PyDictObject", "ma_table"), until=(3, 3), size=PTR),
    F("dict_ma_keys", Off("PyDictObject", "ma_keys"), since=(3, 3), size=PTR),
    F("dict_ma_values", Off("PyDictObject", "ma_values"), since=(3, 3), size=PTR),
    F("dictkeys_dk_size", Off("PyDictKeysObject", "dk_size"), since=(3, 3), until=(3, 11),
      size=8),
    F("dictkeys_dk_log2_size", Off("PyDictKeysObject", "dk_log2_size"), since=(3, 11), size=1),
    F("dictkeys_dk_log2_index_bytes", Off("PyDictKeysObject", "dk_log2_index_bytes"),
      since=(3, 11), size=1),
    F("dictkeys_dk_kind", Off("PyDictKeysObject", "dk_kind"), since=(3, 11), size=1),
    # The compact (ordered) dict: 3.6+.
    F("dictkeys_dk_nentries", Off("PyDictKeysObject", "dk_nentries"), since=(3, 6), size=8),
    # 3.6: a union of int8/16/32/64 arrays; 3.7+: `char dk_indices[]`.  Same start either way.
    F("dictkeys_dk_indices", Off("PyDictKeysObject", "dk_indices"), since=(3, 6)),
    # <3.3: sizeof(PyDictEntry), the element of ma_table (same three members).
    F("dict_entry_size", Size("PyDictKeyEntry"), Size("PyDictEntry")),
    F("dict_unicode_entry_size", Size("PyDictUnicodeEntry"), since=(3, 11)),
    # layout.rs: "offsetof(PyDictValues, values) (3.13+...); 0 before".  PyDictValues exists from
    # 3.11 (offset 0 in 3.11/3.12, 8 in 3.13).  Before 3.11 there is no such struct, but
    # `ma_values` is a `PyObject **` pointing straight at the values array, so Some(0) is the
    # right answer for "where do the values start relative to ma_values" and keeps `.unwrap()`
    # callers working.
    # On 2.7 (no split dicts, no ma_values at all) it is None.
    F("dict_values_values", Off("PyDictValues", "values"), since=(3, 11), absent=0,
      absent_since=(3, 3),
      absent_why="no PyDictValues before 3.11: ma_values (PyObject **) points at the values"),
    # --- PyModuleObject
    F("base_exception_args", Off("PyBaseExceptionObject", "args"), size=PTR),
    F("tuple_ob_item", Off("PyTupleObject", "ob_item")),
    F("module_md_dict", Off("PyModuleObject", "md_dict"), size=PTR),
]

FIELD_BY_NAME = {f.name: f for f in FIELDS}
assert len(FIELD_BY_NAME) == len(FIELDS)
assert all(f.requires is None or f.requires in FIELD_BY_NAME for f in FIELDS)

# --- _Py_DebugOffsets (3.13+: Include/internal/pycore_runtime.h, 3.14+ pycore_debug_offsets.h).
# Layout.debug_offsets is Some(DebugOffsetsLayout { .. }) exactly when the headers define it.  The
# members of DebugOffsetsLayout are not listed here but derived from layout.rs, so that adding a
# member there needs no change here: `size` is sizeof(_Py_DebugOffsets); `<group>_<member>` is
# offsetof(_Py_DebugOffsets, <group>.<member>) for the sub-structs below; anything else is a
# top-level member (`version`, `free_threaded`).  Every member is a uint64_t (checked).
DEBUG_OFFSETS_FIELD = "debug_offsets"
DEBUG_OFFSETS_TYPE = "_Py_DebugOffsets"
DEBUG_OFFSETS_SINCE: Version = (3, 13)
DEBUG_OFFSETS_GROUPS = (
    "runtime_state", "interpreter_state", "thread_state", "err_stackitem", "interpreter_frame",
    "code_object", "pyobject", "type_object", "heap_type_object", "tuple_object", "list_object",
    "set_object", "dict_object", "float_object", "long_object", "bytes_object", "unicode_object",
    "gc", "gen_object", "llist_node", "debugger_support",
)


def debug_offsets_candidate(name: str):
    if name == "size":
        return Size(DEBUG_OFFSETS_TYPE)
    for group in sorted(DEBUG_OFFSETS_GROUPS, key=len, reverse=True):
        if name.startswith(group + "_"):
            return Off(DEBUG_OFFSETS_TYPE, f"{group}.{name[len(group) + 1:]}")
    return Off(DEBUG_OFFSETS_TYPE, name)

# Headers to include after Python.h, in this order, when present in the include dir.
# (frameobject.h / longintrepr.h are not pulled in by Python.h on <=3.10.)
EXTRA_HEADERS = [
    "code.h",  # 2.7: not included by Python.h
    "frameobject.h",
    "longintrepr.h",
    "internal/pystate.h",  # 3.7: _PyRuntimeState (3.8 renamed internal/ headers pycore_*)
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
# version that needs the struct, has no installed definition and no hand definition is an error).
# Every one was checked against the DWARF (`gdb -batch -ex 'ptype /o ...'`) of the matching pyenv
# libpython build (2.7.18, 3.6.15, 3.7.16, 3.8.18, 3.9.18, 3.10.13): identical members, offsets and
# sizes, and the same typedef of dict_lookup_func.  (The 2.7/3.6/3.7 ones were written where the
# GitHub sources could not be fetched, so the DWARF of those builds is what they were taken from;
# the URLs are where to re-check them.)  Sources:
#   https://github.com/python/cpython/blob/v3.6.15/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.7.16/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.8.18/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.9.18/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v3.10.13/Objects/dict-common.h
#   https://github.com/python/cpython/blob/v2.7.18/Objects/moduleobject.c
#   https://github.com/python/cpython/blob/v3.6.15/Objects/moduleobject.c
#   https://github.com/python/cpython/blob/v3.7.16/Objects/moduleobject.c
#   https://github.com/python/cpython/blob/v3.8.18/Objects/moduleobject.c
#   https://github.com/python/cpython/blob/v3.9.18/Objects/moduleobject.c
# ---------------------------------------------------------------------------------------------

DICT_COMMON_3_6 = """\
/* HAND-DEFINED: copied from CPython {tag} Objects/dict-common.h (not installed):
   https://github.com/python/cpython/blob/{tag}/Objects/dict-common.h
   3.6.0 declared dk_indices as a union of int8/16/32/64 arrays; 3.6.15 (its build's DWARF) has
   `char dk_indices[]` (size 0, sizeof(struct _dictkeysobject) 40).  offsetof is 40 either way. */
typedef struct {{
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
}} PyDictKeyEntry;
typedef Py_ssize_t (*dict_lookup_func)
(PyDictObject *mp, PyObject *key, Py_hash_t hash, PyObject ***value_addr,
 Py_ssize_t *hashpos);
struct _dictkeysobject {{
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    dict_lookup_func dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];  /* char is required to avoid strict aliasing. */
}};
"""

DICT_COMMON_3_7_TO_3_10 = """\
/* HAND-DEFINED: copied from CPython {tag} Objects/dict-common.h (not installed):
   https://github.com/python/cpython/blob/{tag}/Objects/dict-common.h
   Same layout in 3.7, 3.8, 3.9 and 3.10 (3.11 moved it to Include/internal/pycore_dict.h). */
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

MODULEOBJECT_2_7 = """\
/* HAND-DEFINED: copied from CPython {tag} Objects/moduleobject.c (not installed):
   https://github.com/python/cpython/blob/{tag}/Objects/moduleobject.c */
typedef struct {{
    PyObject_HEAD
    PyObject *md_dict;
}} PyModuleObject;
"""

MODULEOBJECT_3_6_TO_3_9 = """\
/* HAND-DEFINED: copied from CPython {tag} Objects/moduleobject.c (not installed):
   https://github.com/python/cpython/blob/{tag}/Objects/moduleobject.c
   Same layout in 3.6 to 3.9 (3.10 moved it to Include/internal/pycore_moduleobject.h). */
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
    # Versions from this one on need the struct (from an installed header or a hand definition).
    needed_since: Version


DICT_KEYS_RE = r"struct\s+_dictkeysobject\s*\{"
MODULE_RE = r"\}\s*PyModuleObject\s*;"
HAND_DEFS = [
    # 2.7 has no PyDictKeysObject at all (ma_table of PyDictEntry, in Include/dictobject.h).
    HandDef("Objects/dict-common.h", ((3, 6),), DICT_KEYS_RE, DICT_COMMON_3_6,
            ("PyDictKeysObject", "PyDictKeyEntry"), (3, 3)),
    HandDef("Objects/dict-common.h", ((3, 7), (3, 8), (3, 9), (3, 10)), DICT_KEYS_RE,
            DICT_COMMON_3_7_TO_3_10, ("PyDictKeysObject", "PyDictKeyEntry"), (3, 3)),
    HandDef("Objects/moduleobject.c", ((2, 7),), MODULE_RE, MODULEOBJECT_2_7,
            ("PyModuleObject",), (2, 7)),
    HandDef("Objects/moduleobject.c", ((3, 6), (3, 7), (3, 8), (3, 9)), MODULE_RE,
            MODULEOBJECT_3_6_TO_3_9, ("PyModuleObject",), (2, 7)),
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
    # From the ABI flags in the directory name (python3.14d, python3.13t): checked, like --shape.
    abi_shape: Optional[str] = None

    @property
    def minor_key(self) -> Version:
        return self.version[:2]

    def label(self) -> str:
        return f"{display_path(self.include_dir)} ({self.py_version})"


def display_path(path: str) -> str:
    """`path` as written into the generated files: under $PYCORE_PYTHONS or $PYENV_ROOT, relative
    to that variable, so that the files do not depend on where those trees are on a machine."""
    for var, root in (("$PYCORE_PYTHONS", pycore_pythons_root()), ("$PYENV_ROOT", pyenv_root())):
        for r in sorted({os.path.normpath(os.path.abspath(root)), os.path.realpath(root)}):
            if path == r or path.startswith(r + os.sep):
                return var + path[len(r):]
    return path


def display_flags(flags: Sequence[str]) -> str:
    return " ".join("-I" + display_path(os.path.normpath(f[2:])) if f.startswith("-I") else f
                    for f in flags)


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
    # <prefix>/include/python3.11[m|d|t] -> <prefix>/bin/python3.11[m|d|t]-config (Debian also
    # ships only <prefix>/bin/x86_64-linux-gnu-python3.14-config for some of them).
    prefix = os.path.dirname(os.path.dirname(include_dir))
    name = os.path.basename(include_dir)
    config = None
    for cand in (f"{name}-config", f"{multiarch()}-{name}-config"):
        if os.path.exists(os.path.join(prefix, "bin", cand)):
            config = os.path.join(prefix, "bin", cand)
            break
    m = re.fullmatch(r"python\d+\.\d+([a-z]*)", name)
    abi = m.group(1) if m else ""
    abi_shape = "free-threaded" if "t" in abi else "debug" if "d" in abi else "release"
    return Source(include_dir, py_version, version, config, expected_shape,
                  abi_shape if m else None)


_MULTIARCH: List[str] = []


def multiarch() -> str:
    """The compiler's target triplet (Debian's multiarch directory name): x86_64-linux-gnu."""
    if not _MULTIARCH:
        try:
            out = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True,
                                 timeout=60)
            _MULTIARCH.append(out.stdout.strip() if out.returncode == 0 else "")
        except OSError:
            _MULTIARCH.append("")
    return _MULTIARCH[0]


@functools.lru_cache(maxsize=None)
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


def pycore_pythons_root() -> str:
    return os.environ.get("PYCORE_PYTHONS") or os.path.expanduser("~/.cache/pycore-pythons")


def discover() -> List[str]:
    dirs: List[str] = []
    for version_dir in sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*"))):
        if os.path.islink(version_dir):
            continue  # pyenv aliases point at a real version directory, found on its own
        dirs.extend(include_dirs_under(version_dir))
    # $PYCORE_PYTHONS (default ~/.cache/pycore-pythons): builds installed with --prefix=<dir>
    # (<dir>/include/python3.13t) and unpacked .debs (<dir>/usr/include/python3.14d).
    for prefix in sorted(glob.glob(os.path.join(pycore_pythons_root(), "*"))):
        for sub in ("", "usr", os.path.join("usr", "local")):
            if os.path.isdir(os.path.join(prefix, sub)):
                dirs.extend(include_dirs_under(os.path.join(prefix, sub)))
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
        dirs = [os.path.realpath(f[2:]) for f in flags]
        if os.path.realpath(src.include_dir) not in dirs:
            raise GenError(f"{src.config} --includes gives {flags}, which does not contain "
                           f"{src.include_dir}: config script and headers disagree")
        # Config scripts print resolved paths (`pwd -P`); name the include dir as we found it.
        flags = ["-I" + src.include_dir if d == os.path.realpath(src.include_dir) else f
                 for f, d in zip(flags, dirs)]
    else:
        flags = ["-I" + src.include_dir]
    # Debian's pyconfig.h is a wrapper: #include <x86_64-linux-gnu/python3.14d/pyconfig.h>,
    # found through the default /usr/include.  For headers unpacked elsewhere, add their root.
    root = os.path.dirname(src.include_dir)
    arch_cfg = os.path.join(root, multiarch(), os.path.basename(src.include_dir), "pyconfig.h")
    if (multiarch() and root not in ("/usr/include", "/usr/local/include")
            and os.path.isfile(arch_cfg) and "-I" + root not in flags):
        flags.append("-I" + root)
    return flags


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
    # DebugOffsetsLayout members, or None when the headers have no _Py_DebugOffsets.
    debug: Optional[Dict[str, Value]]
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
    for key in sorted({hd.key for hd in HAND_DEFS}):
        defs = [hd for hd in HAND_DEFS if hd.key == key]
        installed = re.search(defs[0].installed_re, headers) is not None
        mine = [hd for hd in defs if src.minor_key in hd.versions]
        if mine:
            if installed:
                raise GenError(f"{src.label()}: {key} is hand-defined for this version but "
                               f"the installed headers define it; drop the hand definition")
            used.append(mine[0])
        elif not installed and src.minor_key >= defs[0].needed_since:
            raise GenError(f"{src.label()}: no installed header defines the struct from {key} "
                           f"and there is no hand definition for {src.minor_key}")
    return used


def probe(src: Source, workdir: str, verbose: bool, rust: RustFields) -> ProbeResult:
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
    if rust.debug:
        lines.append((DEBUG_OFFSETS_FIELD, 0,
                      f'    P("dbg:@present", {Size(DEBUG_OFFSETS_TYPE).expr()});'))
        for name, _ in rust.debug:
            cand = debug_offsets_candidate(name)
            stmt = f'P("dbg:{name}", {cand.expr()});'
            if isinstance(cand, Off):
                stmt += f' P("dbg:{name}#size", {cand.size_expr()});'
            lines.append((DEBUG_OFFSETS_FIELD, 0, "    " + stmt))

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
    if src.abi_shape and src.abi_shape != shape:
        raise GenError(f"{src.label()}: the directory name says {src.abi_shape}, but the headers "
                       f"(pyconfig.h, with flags {flags}) describe a {shape} build")

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
        expected = ((f.since is None or v >= f.since) and (f.until is None or v < f.until)
                    and (f.shapes is None or shape in f.shapes))
        have = values[f.name].value is not None
        if expected and not have:
            tried = ", ".join(c.expr() for c in f.candidates)
            problems.append(f"{f.name}: expected on {v[0]}.{v[1]} but none of [{tried}] compiles")
        elif have and not expected:
            problems.append(f"{f.name}: {values[f.name].comment} exists on {v[0]}.{v[1]}, "
                            f"outside its expected range since={f.since} until={f.until}")
        if not have and f.absent is not None and (f.absent_since is None
                                                   or v >= f.absent_since):
            values[f.name] = Value(f.absent, f.absent_why)

    debug: Optional[Dict[str, Value]] = None
    if rust.debug:
        have = "dbg:@present" in raw
        if have != (v >= DEBUG_OFFSETS_SINCE):
            problems.append(f"{DEBUG_OFFSETS_TYPE} {'exists' if have else 'is missing'} on "
                            f"{v[0]}.{v[1]}; expected since {DEBUG_OFFSETS_SINCE}")
        if have:
            debug = {}
            for name, is_option in rust.debug:
                cand = debug_offsets_candidate(name)
                if f"dbg:{name}" not in raw:
                    if not is_option:
                        problems.append(f"DebugOffsetsLayout.{name} is u32 but {cand.expr()} "
                                        f"does not compile")
                    debug[name] = Value(None, "")
                    continue
                if isinstance(cand, Off) and raw[f"dbg:{name}#size"] != "8":
                    problems.append(f"DebugOffsetsLayout.{name}: {cand.size_expr()} is "
                                    f"{raw[f'dbg:{name}#size']}, expected 8 (uint64_t)")
                debug[name] = Value(int(raw[f"dbg:{name}"]), cand.expr())

    if shape == "release" and values["object_ob_type"].value != 8:
        problems.append(f"release build with offsetof(PyObject, ob_type) = "
                        f"{values['object_ob_type'].value} (Py_TRACE_REFS={raw['meta:trace_refs']})")
    if problems:
        raise GenError(f"{src.label()}: field spec and headers disagree (update FIELDS in "
                       f"{SCRIPT_NAME}):\n  " + "\n  ".join(problems))
    return ProbeResult(src, shape, flags + defines_used, values, debug, [hd.key for hd in hand])


# ---------------------------------------------------------------------------------------------
# layout.rs cross-check
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RustFields:
    """The members of `struct Layout` and `struct DebugOffsetsLayout`, in declaration order."""

    layout: Tuple[Tuple[str, str], ...]  # (name, "u32" | "option" | "debug")
    debug: Tuple[Tuple[str, bool], ...]  # (name, is_option)


def struct_members(text: str, struct: str, layout_rs: str) -> List[Tuple[str, str]]:
    m = re.search(r"pub struct " + struct + r"\s*\{(.*?)\n\}", text, re.S)
    if not m:
        raise GenError(f"{layout_rs}: no `pub struct {struct}`")
    return [(n, t.strip()) for n, t in re.findall(r"^\s*pub\s+(\w+)\s*:\s*([^,]+),", m.group(1),
                                                   re.M)]


def layout_rs_fields(layout_rs: str) -> RustFields:
    with open(layout_rs, encoding="utf-8") as fh:
        text = fh.read()
    layout = []
    for name, ty in struct_members(text, "Layout", layout_rs):
        if name in ("major", "minor", "shape"):
            continue
        if ty == "u32":
            layout.append((name, "u32"))
        elif ty == "Option<u32>":
            layout.append((name, "option"))
        elif name == DEBUG_OFFSETS_FIELD and ty == "Option<DebugOffsetsLayout>":
            layout.append((name, "debug"))
        else:
            raise GenError(f"{layout_rs}: Layout.{name} has type {ty}; the generator only knows "
                           f"u32 / Option<u32> / {DEBUG_OFFSETS_FIELD}: Option<DebugOffsetsLayout>")
    debug = []
    if any(k == "debug" for _, k in layout):
        for name, ty in struct_members(text, "DebugOffsetsLayout", layout_rs):
            if ty not in ("u32", "Option<u32>"):
                raise GenError(f"{layout_rs}: DebugOffsetsLayout.{name} has type {ty}; the "
                               f"generator only knows u32 / Option<u32>")
            debug.append((name, ty != "u32"))
    return RustFields(tuple(layout), tuple(debug))


def check_against_layout_rs(layout_rs: str) -> RustFields:
    fields = layout_rs_fields(layout_rs)
    names = [n for n, k in fields.layout if k != "debug"]
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


def rust_value(val: Value, is_option: bool, what: str) -> str:
    if val.value is None:
        if not is_option:
            raise GenError(f"{what} is u32 in layout.rs but absent here")
        return "None"
    return f"Some({val.value})" if is_option else str(val.value)


def label_sort_key(label: str):
    """Order of cross-checked labels `<include dir> (<PY_VERSION>)`: newest first, then by dir."""
    m = re.fullmatch(r"(.*) \((\d+)\.(\d+)\.(\d+)[^)]*\)", label)
    if not m:
        return (0, 0, 0, label)
    return (-int(m.group(2)), -int(m.group(3)), -int(m.group(4)), m.group(1))


def render_entry(res: ProbeResult, others: List[ProbeResult], rust: RustFields,
                 earlier_cross: Sequence[str] = ()) -> Entry:
    """`earlier_cross`: labels that a previous run (maybe on another machine) cross-checked."""
    src = res.source
    major, minor = src.minor_key
    variant, const = SHAPES[res.shape]
    out = [f"// source: {src.label()}"]
    crossed = sorted({o.source.label() for o in others} | set(earlier_cross), key=label_sort_key)
    for c in crossed:
        out.append(f"// cross-checked: {c}")
    out.append(f"// flags: {display_flags(res.flags)}")
    for hd in res.hand_defined:
        out.append(f"// hand-defined in {SCRIPT_NAME} (not installed): "
                   f"https://github.com/python/cpython/blob/v{src.py_version}/{hd}")
    out.append(f"/// CPython {major}.{minor}, {res.shape} build.")
    out.append(f"pub const {const}: Layout = Layout {{")
    out.append(f"    major: {major},")
    out.append(f"    minor: {minor},")
    out.append(f"    shape: Shape::{variant},")
    for name, kind in rust.layout:
        if kind == "debug":
            if res.debug is None:
                out.append(f"    {name}: None,")
                continue
            out.append(f"    {name}: Some(DebugOffsetsLayout {{")
            for dname, is_option in rust.debug:
                val = res.debug[dname]
                if val.comment:
                    out.append(f"        // {val.comment}")
                out.append(f"        {dname}: "
                           f"{rust_value(val, is_option, f'{src.label()}: {name}.{dname}')},")
            out.append("    }),")
            continue
        val = res.values[name]
        if val.comment:
            out.append(f"    // {val.comment}")
        out.append(f"    {name}: {rust_value(val, kind == 'option', f'{src.label()}: {name}')},")
    out.append("};")
    return Entry(major, minor, res.shape, src.label(), crossed, "\n".join(out) + "\n")


def entry_field_names(text: str) -> Tuple[List[str], List[str]]:
    """(Layout members, DebugOffsetsLayout members) named in a rendered const block."""
    return (re.findall(r"^    (\w+):", text, re.M), re.findall(r"^        (\w+):", text, re.M))


def entry_values(text: str) -> List[Tuple[str, str]]:
    """(indented member, value) pairs of a rendered const block, comments dropped."""
    return re.findall(r"^( +\w+): (.*),$", text, re.M)


def check_kept_entry(e: Entry, rust: RustFields, path: str) -> None:
    """A const kept verbatim must still match the struct, or the crate would not compile."""
    top, nested = entry_field_names(e.text)
    want_top = ["major", "minor", "shape"] + [n for n, _ in rust.layout]
    want_nested = [n for n, _ in rust.debug] if nested else []
    if top != want_top or nested != want_nested:
        diff = sorted(set(want_top + want_nested) ^ set(top + nested))
        raise GenError(f"{path}: {SHAPES[e.shape][1]} cannot be kept verbatim: layout.rs changed "
                       f"since it was generated (fields differing: {diff}) and this machine has no "
                       f"{e.major}.{e.minor} {e.shape} headers to regenerate it from "
                       f"({e.source_label}); regenerate it where they exist")


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
    blocks = {bm.group(3): bm.group(0) for bm in block_re.finditer(text)}
    for bm in block_re.finditer(text):
        const = bm.group(3)
        if const not in by_const:
            raise GenError(f"{path}: unknown const {const}")
        block = expand_compact(bm.group(0), blocks.get("RELEASE"), by_const[const], path)
        crossed = re.findall(r"^// cross-checked: (.*)$", block, re.M)
        entries.append(Entry(major, minor, by_const[const], bm.group(1), crossed, block))
    if not entries:
        raise GenError(f"{path}: no generated Layout consts found; delete it or fix it")
    return entries


BODY_START = "    major:"
SAME_AS_RELEASE = "    ..RELEASE"


def split_block(text: str) -> Tuple[str, str]:
    """(comments and `pub const` line, member lines through `};`) of a rendered const block."""
    at = text.index("\n" + BODY_START) + 1
    return text[:at], text[at:]


def body_as_shape(body: str, shape: str) -> str:
    return re.sub(r"^    shape: Shape::\w+,$", f"    shape: Shape::{SHAPES[shape][0]},", body,
                  flags=re.M)


def compact_text(e: Entry, release: Optional[Entry]) -> str:
    """A debug or free-threaded const whose members all equal RELEASE's is written as
    `Layout { shape: ..., ..RELEASE }` (Py_DEBUG changes none of these structs since 3.8):
    the data stands once. parse_existing() expands it back."""
    if release is None or e is release:
        return e.text
    head, body = split_block(e.text)
    if body_as_shape(split_block(release.text)[1], e.shape) != body:
        return e.text
    return (f"{head}    shape: Shape::{SHAPES[e.shape][0]},\n"
            f"    // Every other member equals RELEASE's.\n{SAME_AS_RELEASE}\n}};\n")


def expand_compact(block: str, release_block: Optional[str], shape: str, path: str) -> str:
    """The full form of a block that compact_text() shortened."""
    if SAME_AS_RELEASE not in block:
        return block
    if release_block is None:
        raise GenError(f"{path}: {SHAPES[shape][1]} refers to RELEASE, which the file lacks")
    head = block[: block.index("\n    shape:") + 1]
    return head + body_as_shape(split_block(release_block)[1], shape)


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
    if any("DebugOffsetsLayout {" in e.text for e in entries):
        out.append("use super::super::layout::{DebugOffsetsLayout, Layout, Shape};")
    else:
        out.append("use super::super::layout::{Layout, Shape};")
    release = next((e for e in entries if e.shape == "release"), None)
    for e in entries:
        out.append("")
        out.append(compact_text(e, release).rstrip("\n"))
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
# --verify-pyruntime: compare with the _Py_DebugOffsets a 3.13+ binary carries in .PyRuntime
# ---------------------------------------------------------------------------------------------

# DebugOffsetsLayout member -> the Layout field that the value stored there must equal.  Two
# quirks of CPython's initializer (pycore_runtime_init.h in 3.13, pycore_debug_offsets.h 3.14+):
#  - gil_runtime_state_locked/_holder are offsetof(PyInterpreterState, _gil.locked), i.e. relative
#    to the interpreter; Layout keeps them relative to struct _gil_runtime_state, so the stored
#    gil_runtime_state (= offsetof(PyInterpreterState, _gil)) is subtracted first (DEBUG_RELATIVE);
#  - gil_runtime_state_enabled is offsetof(struct _gil_runtime_state, enabled) (relative to the
#    GIL struct) in free-threaded builds, and 0 ("absent") otherwise, which is also its real
#    offset in free-threaded builds: only the shape tells them apart.
DEBUG_RELATIVE = {
    "interpreter_state_gil_runtime_state_locked": "interpreter_state_gil_runtime_state",
    "interpreter_state_gil_runtime_state_holder": "interpreter_state_gil_runtime_state",
}
DEBUG_ABSENT_IF_ZERO_UNLESS_FT = {"interpreter_state_gil_runtime_state_enabled"}
DEBUG_TO_LAYOUT = {
    "runtime_state_interpreters_head": "runtime_interpreters_head",
    "interpreter_state_id": "interp_id",
    "interpreter_state_next": "interp_next",
    "interpreter_state_threads_head": "interp_tstate_head",
    "interpreter_state_imports_modules": "interp_modules",
    "interpreter_state_ceval_gil": "interp_ceval_gil",
    "interpreter_state_gil_runtime_state_enabled": "gil_enabled",
    "interpreter_state_gil_runtime_state_locked": "gil_locked",
    "interpreter_state_gil_runtime_state_holder": "gil_last_holder",
    "thread_state_next": "tstate_next",
    "thread_state_interp": "tstate_interp",
    "thread_state_current_frame": "tstate_current_frame",
    "thread_state_thread_id": "tstate_thread_id",
    "thread_state_native_thread_id": "tstate_native_thread_id",
    "interpreter_frame_previous": "iframe_previous",
    "interpreter_frame_executable": "iframe_code",
    "interpreter_frame_instr_ptr": "iframe_instr_ptr",
    "interpreter_frame_owner": "iframe_owner",
    "code_object_filename": "code_co_filename",
    "code_object_name": "code_co_name",
    "code_object_qualname": "code_co_qualname",
    "code_object_linetable": "code_co_linetable",
    "code_object_firstlineno": "code_co_firstlineno",
    "code_object_co_code_adaptive": "code_co_code_adaptive",
    "pyobject_ob_type": "object_ob_type",
    "type_object_tp_name": "type_tp_name",
    "type_object_tp_flags": "type_tp_flags",
    "type_object_tp_basicsize": "type_tp_basicsize",
    "type_object_tp_dictoffset": "type_tp_dictoffset",
    "heap_type_object_ht_cached_keys": "heaptype_ht_cached_keys",
    "dict_object_ma_keys": "dict_ma_keys",
    "dict_object_ma_values": "dict_ma_values",
    "long_object_lv_tag": "long_lv_tag",
    "long_object_ob_digit": "long_digits",
    "bytes_object_ob_size": "var_object_ob_size",
    "bytes_object_ob_sval": "bytes_ob_sval",
    "unicode_object_state": "unicode_state",
    "unicode_object_length": "unicode_length",
    "unicode_object_asciiobject_size": "unicode_ascii_size",
    "unicode_object_compactunicodeobject_size": "unicode_compact_size",
}
assert set(DEBUG_TO_LAYOUT.values()) <= set(FIELD_BY_NAME)


def elf_section(path: str, name: str) -> bytes:
    """The contents of section `name` of a 64-bit little-endian ELF file (read, never run)."""
    import struct
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise GenError(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sh(i):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    strtab = sh(shstrndx)
    for i in range(shnum):
        s_name, s_type, _, _, s_off, s_size = sh(i)
        end = data.index(b"\0", strtab[4] + s_name)
        if data[strtab[4] + s_name:end].decode("ascii", "replace") == name:
            if s_type == 8:  # SHT_NOBITS
                raise GenError(f"{path}: {name} has no file contents")
            return data[s_off:s_off + s_size]
    raise GenError(f"{path}: no {name} section")


def verify_pyruntime(path: str, results: List[ProbeResult]) -> bool:
    """Compare the probed layouts with the initial _Py_DebugOffsets in `path`'s .PyRuntime."""
    import struct
    sec = elf_section(path, ".PyRuntime")
    if sec[:8] != b"xdebugpy":
        raise GenError(f"{path}: .PyRuntime does not start with the _Py_DebugOffsets cookie")
    hexversion, = struct.unpack_from("<Q", sec, 8)
    major, minor = hexversion >> 24, (hexversion >> 16) & 0xFF
    micro = (hexversion >> 8) & 0xFF
    cands = [r for r in results if r.source.minor_key == (major, minor) and r.debug is not None]
    if not cands:
        print(f"verify {path}: {major}.{minor}.{micro}: no probed headers for that version")
        return False
    ok = True
    for res in cands:
        ft_off = res.debug.get("free_threaded")
        if ft_off is not None and ft_off.value is not None:
            ft, = struct.unpack_from("<Q", sec, ft_off.value)
            if bool(ft) != (res.shape == "free-threaded"):
                continue  # a free-threaded binary is only compared with free-threaded headers
        bad, checked = [], 0
        for dname, lname in DEBUG_TO_LAYOUT.items():
            if dname not in res.debug or res.debug[dname].value is None:
                continue
            stored, = struct.unpack_from("<Q", sec, res.debug[dname].value)
            what = f"{DEBUG_OFFSETS_TYPE}.{dname} = {stored}"
            base = DEBUG_RELATIVE.get(dname)
            if base is not None:
                if base not in res.debug or res.debug[base].value is None:
                    continue
                base_value, = struct.unpack_from("<Q", sec, res.debug[base].value)
                stored -= base_value
                what += f" - {base} {base_value}"
            if (dname in DEBUG_ABSENT_IF_ZERO_UNLESS_FT and res.shape != "free-threaded"
                    and stored == 0):
                stored = None
            mine = res.values[lname].value
            checked += 1
            if stored != mine:
                bad.append(f"{lname} = {mine}, but {what}")
        label = f"{major}.{minor}.{micro} {res.shape} ({res.source.label()})"
        if bad:
            ok = False
            print(f"verify {path}: {label}: {len(bad)} of {checked} DISAGREE:\n  "
                  + "\n  ".join(bad))
        else:
            print(f"verify {path}: {label}: all {checked} offsets agree")
    return ok


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
    out_dir = os.path.abspath(args.out)
    layout_rs = args.layout_rs or os.path.join(os.path.dirname(out_dir), "layout.rs")
    rust = check_against_layout_rs(layout_rs)

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
            res = probe(src, work, args.verbose, rust)
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
                     for n in primary.values if primary.values[n].value != o.values[n].value]
            pd, od = primary.debug or {}, o.debug or {}
            if (primary.debug is None) != (o.debug is None):
                diffs.append(f"{DEBUG_OFFSETS_FIELD}: {primary.debug is not None} vs "
                             f"{o.debug is not None}")
            diffs += [f"{DEBUG_OFFSETS_FIELD}.{n}: {pd[n].value} vs {od[n].value}"
                      for n in pd if n in od and pd[n].value != od[n].value]
            if diffs:
                raise GenError(f"{primary.source.label()} and {o.source.label()} are both "
                               f"{key[0]}.{key[1]} {key[2]} but their layouts differ:\n  "
                               + "\n  ".join(diffs))
        new_entries[key] = render_entry(primary, others, rust)

    existing_files = sorted(f for f in glob.glob(os.path.join(out_dir, "v*_*.rs"))
                            if re.fullmatch(r"v\d+_\d+\.rs", os.path.basename(f)))
    existing: Dict[Tuple[int, int, str], Tuple[Entry, str]] = {}
    for path in existing_files:
        for e in parse_existing(path):
            existing[(e.major, e.minor, e.shape)] = (e, path)

    # A const generated elsewhere from a newer patch release than any we have here is kept
    # verbatim if our headers give the same values (so --check passes on a machine with, say,
    # only Debian's 3.11.2 when the file came from 3.11.7); differing values are an error, as
    # for two sources in one run.
    reverified: Dict[Tuple[int, int, str], str] = {}
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
                new_entries[key] = render_entry(primary, group[1:], rust, e.cross_checked)
            continue
        if e.source_label in {r.source.label() for r in group}:
            continue
        m = re.search(r"\((\d+)\.(\d+)\.(\d+)[^)]*\)$", e.source_label)
        if not m or tuple(map(int, m.groups())) <= primary.source.version:
            continue  # ours is as new or newer: regenerate from it
        if entry_field_names(e.text) != entry_field_names(new_entries[key].text):
            print(f"note   {path}: {SHAPES[key[2]][1]} was generated from {e.source_label}, "
                  f"but layout.rs changed since: regenerating it from the older "
                  f"{primary.source.label()}")
            continue
        if entry_values(e.text) != entry_values(new_entries[key].text):
            diff = sorted(set(entry_values(e.text)) ^ set(entry_values(new_entries[key].text)))
            raise GenError(f"{path}: {SHAPES[key[2]][1]} (from {e.source_label}) and "
                           f"{primary.source.label()} are both {key[0]}.{key[1]} {key[2]} but "
                           f"their layouts differ: {diff}")
        new_entries[key] = e
        reverified[key] = primary.source.label()

    # Keep consts for keys we could not regenerate here.
    kept: Dict[Tuple[int, int, str], Entry] = {}
    for k, (e, path) in sorted(existing.items()):
        if k not in new_entries and not args.prune:
            check_kept_entry(e, rust, path)
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
        files[name] = rustfmt(render_version_file(entries), name)
    files["mod.rs"] = rustfmt(render_mod(all_entries), "mod.rs")

    on_disk = {os.path.basename(p) for p in existing_files}
    if os.path.exists(os.path.join(out_dir, "mod.rs")):
        on_disk.add("mod.rs")
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
    print(f"{'file':<10} {'const':<14} {'source':<58} cross-checked")
    for e in sorted(all_entries, key=lambda e: e.key):
        k = (e.major, e.minor, e.shape)
        if k in reverified:
            status = f"(kept, same values here: {reverified[k]}) {e.source_label}"
        else:
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
