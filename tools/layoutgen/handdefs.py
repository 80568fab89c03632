"""Structs the probes need that an old version defines in a source file it does not install.
Each is copied from that version's source (the URL in the probe uses the probed version's tag) and
is used only if no installed header defines the struct (checked; a version that needs the struct,
has no installed definition and no hand definition is an error)."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from .spec import Version

# Each one matches the DWARF (`gdb -batch -ex 'ptype /o ...'`) of the pyenv libpython build of its
# versions (2.7.18, 3.6.15, 3.7.16, 3.8.18, 3.9.18, 3.10.13): identical members, offsets and sizes,
# and the same typedef of dict_lookup_func. Sources:
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

GC_GENERATION_2_7_TO_3_6 = """\
/* HAND-DEFINED: copied from CPython {tag} Modules/gcmodule.c (not installed):
   https://github.com/python/cpython/blob/{tag}/Modules/gcmodule.c
   Same in 2.7 and 3.6 (3.7 moved it to Include/internal/mem.h). */
struct gc_generation {{
    PyGC_Head head;
    int threshold; /* collection threshold */
    int count; /* count of allocations or collections of younger
                  generations */
}};
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
GC_GENERATION_RE = r"struct\s+gc_generation\s*\{"
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
    HandDef("Modules/gcmodule.c", ((2, 7), (3, 6)), GC_GENERATION_RE, GC_GENERATION_2_7_TO_3_6,
            ("struct gc_generation",), (2, 7)),
]

# ---------------------------------------------------------------------------------------------
