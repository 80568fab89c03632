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


# The C task of `_asyncio` (Modules/_asynciomodule.c: FutureObj_HEAD(task) then the task's own
# members). Private to that file in every version; each definition below matches the DWARF of
# the pyenv build's _asyncio module (`gdb -batch -ex 'ptype /o TaskObj' _asyncio.cpython-*.so`):
# 3.8.18, 3.9.18, 3.10.13, 3.11.7, 3.12.1, 3.13.0. Source (each tag):
#   https://github.com/python/cpython/blob/v3.8.18/Modules/_asynciomodule.c
TASK_HEADER = """\
/* HAND-DEFINED: copied from CPython {tag} Modules/_asynciomodule.c (private):
   https://github.com/python/cpython/blob/{tag}/Modules/_asynciomodule.c */
typedef enum {{ STATE_PENDING, STATE_CANCELLED, STATE_FINISHED }} fut_state;
"""

TASKOBJ_3_8 = TASK_HEADER + """\
typedef struct {{
    PyObject_HEAD
    PyObject *task_loop; PyObject *task_callback0; PyObject *task_context0;
    PyObject *task_callbacks; PyObject *task_exception; PyObject *task_result;
    PyObject *task_source_tb; fut_state task_state; int task_log_tb; int task_blocking;
    PyObject *dict; PyObject *task_weakreflist;
    PyObject *task_fut_waiter; PyObject *task_coro; PyObject *task_name;
    PyObject *task_context; int task_must_cancel; int task_log_destroy_pending;
}} TaskObj;
"""

TASKOBJ_3_9 = TASK_HEADER + """\
typedef struct {{
    PyObject_HEAD
    PyObject *task_loop; PyObject *task_callback0; PyObject *task_context0;
    PyObject *task_callbacks; PyObject *task_exception; PyObject *task_result;
    PyObject *task_source_tb; PyObject *task_cancel_msg; fut_state task_state;
    int task_log_tb; int task_blocking; PyObject *dict; PyObject *task_weakreflist;
    _PyErr_StackItem task_cancelled_exc_state;
    PyObject *task_fut_waiter; PyObject *task_coro; PyObject *task_name;
    PyObject *task_context; int task_must_cancel; int task_log_destroy_pending;
}} TaskObj;
"""

TASKOBJ_3_10 = TASK_HEADER + """\
typedef struct {{
    PyObject_HEAD
    PyObject *task_loop; PyObject *task_callback0; PyObject *task_context0;
    PyObject *task_callbacks; PyObject *task_exception; PyObject *task_exception_tb;
    PyObject *task_result; PyObject *task_source_tb; PyObject *task_cancel_msg;
    fut_state task_state; int task_log_tb; int task_blocking; PyObject *dict;
    PyObject *task_weakreflist; _PyErr_StackItem task_cancelled_exc_state;
    PyObject *task_fut_waiter; PyObject *task_coro; PyObject *task_name;
    PyObject *task_context; int task_must_cancel; int task_log_destroy_pending;
}} TaskObj;
"""

# Same layout in 3.11 and 3.12.
TASKOBJ_3_11_TO_3_12 = TASK_HEADER + """\
typedef struct {{
    PyObject_HEAD
    PyObject *task_loop; PyObject *task_callback0; PyObject *task_context0;
    PyObject *task_callbacks; PyObject *task_exception; PyObject *task_exception_tb;
    PyObject *task_result; PyObject *task_source_tb; PyObject *task_cancel_msg;
    fut_state task_state; int task_log_tb; int task_blocking; PyObject *dict;
    PyObject *task_weakreflist; PyObject *task_cancelled_exc;
    PyObject *task_fut_waiter; PyObject *task_coro; PyObject *task_name;
    PyObject *task_context; int task_must_cancel; int task_log_destroy_pending;
    int task_num_cancels_requested;
}} TaskObj;
"""

TASKOBJ_3_13 = TASK_HEADER + """\
typedef struct {{
    PyObject_HEAD
    PyObject *task_loop; PyObject *task_callback0; PyObject *task_context0;
    PyObject *task_callbacks; PyObject *task_exception; PyObject *task_exception_tb;
    PyObject *task_result; PyObject *task_source_tb; PyObject *task_cancel_msg;
    PyObject *task_cancelled_exc; fut_state task_state;
    unsigned task_log_tb: 1; unsigned task_blocking: 1; unsigned task_must_cancel: 1;
    unsigned task_log_destroy_pending: 1; int task_num_cancels_requested;
    PyObject *task_fut_waiter; PyObject *task_coro; PyObject *task_name;
    PyObject *task_context;
}} TaskObj;
"""

# 3.14 and 3.15 (checked against the `_Py_AsyncioModuleDebugOffsets` in the .AsyncioDebug
# section of the Debian 3.14.10, 3.14.10d and 3.15.2 builds: size 0xa8, task_awaited_by 0x60,
# task_is_task 0x6c, task_coro 0x80, task_name 0x88, task_node 0x98). `struct llist_node`
# comes from Include/internal/pycore_llist.h, which pycore_interp.h includes.
TASKOBJ_3_14 = TASK_HEADER + """\
typedef struct TaskObj {{
    PyObject_HEAD
    PyObject *task_loop; PyObject *task_callback0; PyObject *task_context0;
    PyObject *task_callbacks; PyObject *task_exception; PyObject *task_exception_tb;
    PyObject *task_result; PyObject *task_source_tb; PyObject *task_cancel_msg;
    PyObject *task_cancelled_exc; PyObject *task_awaited_by; fut_state task_state;
    char task_is_task; char task_awaited_by_is_set;
    unsigned task_log_tb: 1; unsigned task_blocking: 1;
    unsigned task_must_cancel: 1; unsigned task_log_destroy_pending: 1;
    int task_num_cancels_requested;
    PyObject *task_fut_waiter; PyObject *task_coro; PyObject *task_name;
    PyObject *task_context; struct llist_node task_node;
#ifdef Py_GIL_DISABLED
    uintptr_t task_tid;
#endif
}} TaskObj;
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
TASK_RE = r"\}\s*TaskObj\s*;"
# Never needed: a version without a definition has no asyncio task fields.
OPTIONAL = (99, 0)
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
    HandDef("Modules/_asynciomodule.c", ((3, 8),), TASK_RE, TASKOBJ_3_8, ("TaskObj",), OPTIONAL),
    HandDef("Modules/_asynciomodule.c", ((3, 9),), TASK_RE, TASKOBJ_3_9, ("TaskObj",), OPTIONAL),
    HandDef("Modules/_asynciomodule.c", ((3, 10),), TASK_RE, TASKOBJ_3_10, ("TaskObj",),
            OPTIONAL),
    HandDef("Modules/_asynciomodule.c", ((3, 11), (3, 12)), TASK_RE, TASKOBJ_3_11_TO_3_12,
            ("TaskObj",), OPTIONAL),
    HandDef("Modules/_asynciomodule.c", ((3, 13),), TASK_RE, TASKOBJ_3_13, ("TaskObj",),
            OPTIONAL),
    HandDef("Modules/_asynciomodule.c", ((3, 14), (3, 15)), TASK_RE, TASKOBJ_3_14, ("TaskObj",),
            OPTIONAL),
]
