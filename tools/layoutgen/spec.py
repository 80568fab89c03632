"""The field spec: every C struct member pycore reads, grouped by struct, with its Rust type, the
C expressions that locate it, and the versions it exists in. Everything pycore knows about
CPython's structs comes from here: the generated src/python/layout.rs (the Rust types), the
per-version tables in src/python/layouts/ (probed from each build's headers), and the
`_Py_DebugOffsets` -> layout mapping (src/python/debug_offsets_map.rs).

Standard library only.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

Version = Tuple[int, int]

# Oldest version the generator handles (older builds are skipped with a message).
MIN_VERSION: Version = (2, 7)

# Pointer size the probes are compiled for (LP64: x86_64, aarch64). Cores of the same pointer
# size share these tables.
PTR = 8

# Shape name on the command line -> (Rust enum variant, const name).
SHAPES = {
    "release": ("Release", "RELEASE"),
    "debug": ("Debug", "DEBUG"),
    "free-threaded": ("FreeThreaded", "FREE_THREADED"),
}
SHAPE_ORDER = list(SHAPES)

# The machines a table can hold for: (Rust `Arch` variant, const name suffix, Debian multiarch
# triplet, C compiler, how to run what it builds here). Struct offsets depend on the ABI (libc
# types such as pthread_mutex_t are 40 bytes on x86_64 and 48 on aarch64), so each table says
# which machine it is for and pycore never reads a core with another machine's table.
ARCHES = {
    "x86_64": ("X86_64", "", "x86_64-linux-gnu", "gcc", []),
    "aarch64": ("Aarch64", "_AARCH64", "aarch64-linux-gnu", "aarch64-linux-gnu-gcc",
                ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]),
}
ARCH_ORDER = list(ARCHES)


class GenError(Exception):
    pass


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


# Rust types of members: a scalar read through `Field<T>` (with its C size), or a plain offset
# (`u32`) for the start of an array or a struct size, which is never read as one value.
TYPES: Dict[str, Tuple[str, Optional[int]]] = {
    "ptr": ("Field<Ptr>", PTR),
    "u64": ("Field<u64>", 8),
    "i64": ("Field<i64>", 8),
    "u32": ("Field<u32>", 4),
    "i32": ("Field<i32>", 4),
    "u8": ("Field<u8>", 1),
    "offset": ("u32", None),
}


@dataclasses.dataclass(frozen=True)
class Group:
    """One C struct: the Rust struct and the `Layout` member that hold its fields."""

    name: str  # Layout member: `tstate`
    rust: str  # Rust struct: `ThreadStateLayout`
    doc: str


GROUPS: List[Group] = [
    Group("object", "ObjectLayout", "`PyObject` (Include/object.h)"),
    Group("var_object", "VarObjectLayout", "`PyVarObject` (Include/object.h)"),
    Group("type_object", "TypeObjectLayout", "`PyTypeObject` (Include/cpython/object.h)"),
    Group("heap_type", "HeapTypeLayout", "`PyHeapTypeObject` (Include/cpython/object.h)"),
    Group("runtime", "RuntimeLayout",
          "`_PyRuntimeState` (Include/internal/pycore_runtime.h), 3.7+"),
    Group("interp", "InterpreterLayout",
          "`PyInterpreterState` (Include/internal/pycore_interp.h)"),
    Group("gil", "GilLayout", "`struct _gil_runtime_state` (Include/internal/pycore_gil.h)"),
    Group("tstate", "ThreadStateLayout", "`PyThreadState` (Include/cpython/pystate.h)"),
    Group("err_stackitem", "ErrStackItemLayout", "`_PyErr_StackItem` (Include/cpython/pystate.h)"),
    Group("cframe", "CFrameLayout", "`_PyCFrame` (3.11, 3.12: Include/cpython/pystate.h)"),
    Group("frame", "FrameObjectLayout",
          "`PyFrameObject`, the frame chain of <=3.10 (Include/cpython/frameobject.h)"),
    Group("iframe", "InterpreterFrameLayout",
          "`_PyInterpreterFrame`, 3.11+ (Include/internal/pycore_frame.h)"),
    Group("code", "CodeLayout", "`PyCodeObject` (Include/cpython/code.h)"),
    Group("bytes", "BytesLayout", "`PyBytesObject` (`PyStringObject` on 2.7)"),
    Group("unicode", "UnicodeLayout",
          "PEP 393 strings: `PyASCIIObject`, `PyCompactUnicodeObject`, `PyUnicodeObject`"),
    Group("int", "IntLayout", "`PyIntObject` (2.7's `int`)"),
    Group("long", "LongLayout", "`PyLongObject` (Include/cpython/longintrepr.h)"),
    Group("dict", "DictLayout", "`PyDictObject` and its entries (Include/cpython/dictobject.h)"),
    Group("dict_keys", "DictKeysLayout",
          "`PyDictKeysObject` (Objects/dict-common.h, 3.11+ Include/internal/pycore_dict.h)"),
    Group("dict_values", "DictValuesLayout", "`PyDictValues` (3.11+)"),
    Group("base_exception", "BaseExceptionLayout", "`PyBaseExceptionObject`"),
    Group("float", "FloatLayout", "`PyFloatObject`"),
    Group("tuple", "TupleLayout", "`PyTupleObject`"),
    Group("list", "ListLayout", "`PyListObject`"),
    Group("set", "SetLayout", "`PySetObject` and its `setentry` table (set and frozenset)"),
    Group("cell", "CellLayout", "`PyCellObject`"),
    Group("module", "ModuleLayout", "`PyModuleObject`"),
    Group("function", "FunctionLayout", "`PyFunctionObject` (Include/cpython/funcobject.h)"),
    Group("cfunction", "CFunctionLayout",
          "`PyCFunctionObject` and its `PyMethodDef` (Include/cpython/methodobject.h)"),
    Group("method", "MethodLayout", "`PyMethodObject`, a bound method (Include/cpython/classobject.h)"),
    Group("gc", "GcLayout",
          "The garbage collector's lists: `PyGC_Head` and `struct gc_generation` "
          "(Include/internal/pycore_gc.h; Modules/gcmodule.c before 3.7)"),
    Group("weakref", "WeakrefLayout", "`PyWeakReference` (Include/cpython/weakrefobject.h)"),
    Group("gen", "GenLayout",
          "`PyGenObject`, `PyCoroObject` (Include/cpython/genobject.h; 3.14+ "
          "Include/internal/pycore_interpframe_structs.h)"),
    Group("asyncio_task", "AsyncioTaskLayout",
          "`TaskObj`, the C task of `_asyncio` (Modules/_asynciomodule.c, private: "
          "tools/layoutgen/handdefs.py)"),
]
GROUP_BY_NAME = {g.name: g for g in GROUPS}


@dataclasses.dataclass(frozen=True)
class Field:
    name: str  # "group.member": `layout.group.member` in Rust
    ty: str  # a key of TYPES
    candidates: Tuple[object, ...]
    # The member is expected to exist for since <= version < until (None: unbounded).
    since: Optional[Version] = None
    until: Optional[Version] = None
    # Force None when this other field is None (the member exists but is not what we mirror).
    requires: Optional[str] = None
    # Value to emit (as Some) for versions >= absent_since where the member does not exist.
    absent: Optional[int] = None
    absent_why: str = ""
    absent_since: Optional[Version] = None
    # The member is expected only in these build shapes (None: every shape).
    shapes: Optional[Tuple[str, ...]] = None
    # What the Rust doc comment adds to the C expression.
    doc: str = ""
    # For a build shape with no table of its own, read through its _Py_DebugOffsets: where this
    # member is when the process does not say. "object": in a PyObject-headed struct, so it moves
    # with the object header; "same": its struct does not differ between shapes; None: unknown
    # (the member is then absent, which only optional members may be, or, for a required member,
    # must come from the process's _Py_DebugOffsets).
    other_shapes: Optional[str] = None

    @property
    def group(self) -> str:
        return self.name.split(".")[0]

    @property
    def member(self) -> str:
        return self.name.split(".")[1]

    @property
    def size(self) -> Optional[int]:
        return TYPES[self.ty][1]

    @property
    def optional(self) -> bool:
        """Absent in some version or shape: `Option<...>` in Rust."""
        return (self.since is not None and self.since > MIN_VERSION) or self.until is not None \
            or self.shapes is not None

    def rust_type(self) -> str:
        ty = TYPES[self.ty][0]
        return f"Option<{ty}>" if self.optional else ty

    def versions(self) -> str:
        """`3.11+`, `<3.11`, `3.7 to 3.8`, `every version`, for documentation."""
        def v(x):
            return f"{x[0]}.{x[1]}"
        since = self.since if self.since is not None and self.since > MIN_VERSION else None
        if since and self.until:
            last = (self.until[0], self.until[1] - 1) if self.until[1] else self.until
            text = f"{v(since)} to {v(last)}"
        elif since:
            text = f"{v(since)}+"
        elif self.until:
            text = f"before {v(self.until)}"
        else:
            text = "every version"
        if self.shapes:
            text += ", " + "/".join(self.shapes) + " builds"
        return text


OS_OBJECT = "object"
OS_SAME = "same"


def F(name, ty, *candidates, **kw) -> Field:
    if candidates and candidates[0] in (OS_OBJECT, OS_SAME):
        kw["other_shapes"] = candidates[0]
        candidates = candidates[1:]
    return Field(name, ty, tuple(candidates), **kw)


FIELDS: List[Field] = [
    F("object.ob_type", "ptr", OS_OBJECT, Off("PyObject", "ob_type")),
    F("var_object.ob_size", "i64", OS_OBJECT, Off("PyVarObject", "ob_size")),
    F("type_object.tp_name", "ptr", OS_OBJECT, Off("PyTypeObject", "tp_name")),
    F("type_object.tp_flags", "u64", OS_OBJECT, Off("PyTypeObject", "tp_flags")),
    F("type_object.tp_dictoffset", "i64", OS_OBJECT, Off("PyTypeObject", "tp_dictoffset")),
    F("type_object.tp_basicsize", "i64", OS_OBJECT, Off("PyTypeObject", "tp_basicsize")),
    F("type_object.tp_repr", "ptr", OS_OBJECT, Off("PyTypeObject", "tp_repr"),
      doc="the `repr()` slot: `object.__repr__`'s own tells the default repr"),
    F("type_object.tp_base", "ptr", OS_OBJECT, Off("PyTypeObject", "tp_base"),
      doc="the base class (`NULL` for `object`)"),
    F("type_object.tp_dict", "ptr", OS_OBJECT, Off("PyTypeObject", "tp_dict"),
      doc="a heap type's `__dict__` (its `__module__`)"),
    F("heap_type.ht_qualname", "ptr", OS_OBJECT, Off("PyHeapTypeObject", "ht_qualname"),
      since=(3, 3), doc="a class's `__qualname__`"),
    F("heap_type.ht_cached_keys", "ptr", OS_OBJECT, Off("PyHeapTypeObject", "ht_cached_keys"),
      since=(3, 3), doc="the shared keys of split-table instance dicts (PEP 412)"),
    F("runtime.interpreters_head", "ptr", Off("_PyRuntimeState", "interpreters.head"),
      since=(3, 7)),
    F("runtime.interpreters_main", "ptr", Off("_PyRuntimeState", "interpreters.main"),
      since=(3, 7)),
    F("runtime.gilstate_tstate_current", "ptr",
      Off("_PyRuntimeState", "gilstate.tstate_current"), since=(3, 7), until=(3, 12),
      doc="the thread state holding the GIL (3.12 keeps it in a thread-local)"),
    F("runtime.gc_collecting", "i32", Off("_PyRuntimeState", "gc.collecting"), since=(3, 7),
      until=(3, 9), doc="a collection is running (per interpreter from 3.9)"),
    F("interp.next", "ptr", Off("PyInterpreterState", "next")),
    F("interp.threads_head", "ptr", Off("PyInterpreterState", "threads.head"),
      Off("PyInterpreterState", "tstate_head")),
    F("interp.modules", "ptr", Off("PyInterpreterState", "imports.modules"),
      Off("PyInterpreterState", "modules")),
    F("interp.id", "i64", Off("PyInterpreterState", "id"), since=(3, 7)),
    # A pointer from 3.12 (the size check also rules out the struct that 3.9-3.11 embed under
    # EXPERIMENTAL_ISOLATED_SUBINTERPRETERS).
    F("interp.ceval_gil", "ptr", Off("PyInterpreterState", "ceval.gil"), since=(3, 12)),
    F("interp.gc_collecting", "i32", Off("PyInterpreterState", "gc.collecting"), since=(3, 9)),
    # struct _gil_runtime_state exists in every version, but before 3.12 it lives inside
    # _PyRuntime.ceval, not behind PyInterpreterState.ceval.gil.
    F("gil.locked", "i32", Off("struct _gil_runtime_state", "locked"), since=(3, 12),
      requires="interp.ceval_gil"),
    F("gil.last_holder", "ptr", Off("struct _gil_runtime_state", "last_holder"), since=(3, 12),
      requires="interp.ceval_gil"),
    F("gil.enabled", "i32", Off("struct _gil_runtime_state", "enabled"), since=(3, 13),
      shapes=("free-threaded",), requires="interp.ceval_gil",
      doc="compiled in under Py_GIL_DISABLED only"),
    F("tstate.next", "ptr", Off("PyThreadState", "next")),
    F("tstate.interp", "ptr", Off("PyThreadState", "interp")),
    F("tstate.frame", "ptr", Off("PyThreadState", "frame"), until=(3, 11),
      doc="the innermost PyFrameObject"),
    # 3.10's CFrame has no current_frame: only 3.11 and 3.12 find the frame through it.
    F("tstate.cframe", "ptr", Off("PyThreadState", "cframe"), since=(3, 11), until=(3, 13),
      requires="cframe.current_frame"),
    F("tstate.current_frame", "ptr", Off("PyThreadState", "current_frame"), since=(3, 13)),
    F("tstate.thread_id", "u64", Off("PyThreadState", "thread_id"),
      doc="the thread's `pthread_t`"),
    F("tstate.native_thread_id", "u64", Off("PyThreadState", "native_thread_id"),
      since=(3, 11), doc="the kernel TID"),
    F("tstate.exc_info", "ptr", Off("PyThreadState", "exc_info"), since=(3, 7),
      doc="the top of the `_PyErr_StackItem` stack of exceptions being handled"),
    F("tstate.exc_value", "ptr", Off("PyThreadState", "exc_value"), until=(3, 7),
      doc="the exception being handled"),
    F("err_stackitem.exc_value", "ptr", OS_SAME, Off("_PyErr_StackItem", "exc_value"), since=(3, 7)),
    F("err_stackitem.previous_item", "ptr", OS_SAME, Off("_PyErr_StackItem", "previous_item"),
      since=(3, 7)),
    F("cframe.current_frame", "ptr", Off("_PyCFrame", "current_frame"), since=(3, 11),
      until=(3, 13)),
    # 3.11+ still has a `struct _frame` with f_back/f_lineno, but it is a lazily-created wrapper
    # around _PyInterpreterFrame with no f_code: all frame.* are None there (keyed on f_code).
    F("frame.f_back", "ptr", Off("PyFrameObject", "f_back"), until=(3, 11),
      requires="frame.f_code"),
    F("frame.f_code", "ptr", Off("PyFrameObject", "f_code"), until=(3, 11)),
    F("frame.f_lasti", "i32", Off("PyFrameObject", "f_lasti"), until=(3, 11),
      requires="frame.f_code"),
    F("frame.f_lineno", "i32", Off("PyFrameObject", "f_lineno"), until=(3, 11),
      requires="frame.f_code"),
    F("frame.f_localsplus", "offset", Off("PyFrameObject", "f_localsplus"), until=(3, 11),
      requires="frame.f_code", doc="where the locals, cells and free variables start"),
    # 3.11+: the frame object of a running frame points at its _PyInterpreterFrame (a
    # suspended greenlet keeps only its top frame object).
    F("frame.f_frame", "ptr", OS_OBJECT, Off("PyFrameObject", "f_frame"), since=(3, 11),
      doc="the `_PyInterpreterFrame` a frame object stands for"),
    # What a suspended generator awaits (`_PyGen_yf`, Objects/genobject.c) is the top of its
    # value stack: f_stacktop[-1] (3.8, 3.9), f_valuestack[f_stackdepth - 1] (3.10).
    F("frame.f_valuestack", "ptr", Off("PyFrameObject", "f_valuestack"), until=(3, 11),
      requires="frame.f_code", doc="the value stack's bottom"),
    F("frame.f_stacktop", "ptr", Off("PyFrameObject", "f_stacktop"), until=(3, 10),
      requires="frame.f_code", doc="the value stack's top while suspended (NULL while running)"),
    F("frame.f_stackdepth", "i32", Off("PyFrameObject", "f_stackdepth"), since=(3, 10),
      until=(3, 11), requires="frame.f_code", doc="the value stack's depth"),
    F("iframe.stacktop", "i32", Off("_PyInterpreterFrame", "stacktop"), since=(3, 11),
      until=(3, 14), doc="the value stack's top, counted in slots from `localsplus`"),
    F("iframe.stackpointer", "ptr", Off("_PyInterpreterFrame", "stackpointer"), since=(3, 14),
      doc="the value stack's top (tagged `_PyStackRef`s)"),
    F("iframe.localsplus", "offset", Off("_PyInterpreterFrame", "localsplus"), since=(3, 11),
      doc="where the locals, cells and free variables start (tagged `_PyStackRef`s from 3.14)"),
    F("iframe.executable", "ptr", Off("_PyInterpreterFrame", "f_executable"),
      Off("_PyInterpreterFrame", "f_code"), since=(3, 11),
      doc="the code object (a tagged `_PyStackRef` from 3.14)"),
    F("iframe.previous", "ptr", Off("_PyInterpreterFrame", "previous"), since=(3, 11)),
    F("iframe.instr_ptr", "ptr", Off("_PyInterpreterFrame", "instr_ptr"),
      Off("_PyInterpreterFrame", "prev_instr"), since=(3, 11)),
    F("iframe.owner", "u8", Off("_PyInterpreterFrame", "owner"), since=(3, 11)),
    F("iframe.is_entry", "u8", Off("_PyInterpreterFrame", "is_entry"), since=(3, 11),
      until=(3, 12),
      doc="the first frame an interpreter-loop call ran (3.12+ put a C-stack shim after it)"),
    F("code.co_filename", "ptr", OS_OBJECT, Off("PyCodeObject", "co_filename")),
    F("code.co_name", "ptr", OS_OBJECT, Off("PyCodeObject", "co_name")),
    F("code.co_qualname", "ptr", OS_OBJECT, Off("PyCodeObject", "co_qualname"), since=(3, 11)),
    F("code.co_firstlineno", "i32", OS_OBJECT, Off("PyCodeObject", "co_firstlineno")),
    F("code.co_lnotab", "ptr", OS_OBJECT, Off("PyCodeObject", "co_lnotab"), until=(3, 10)),
    F("code.co_linetable", "ptr", OS_OBJECT, Off("PyCodeObject", "co_linetable"), since=(3, 10)),
    F("code.co_argcount", "i32", OS_OBJECT, Off("PyCodeObject", "co_argcount"),
      doc="positional parameters (positional-only ones included, 3.8+)"),
    F("code.co_kwonlyargcount", "i32", OS_OBJECT, Off("PyCodeObject", "co_kwonlyargcount"),
      since=(3, 0)),
    F("code.co_flags", "i32", OS_OBJECT, Off("PyCodeObject", "co_flags"),
      doc="`CO_VARARGS` and `CO_VARKEYWORDS` add a parameter each"),
    F("code.co_varnames", "ptr", OS_OBJECT, Off("PyCodeObject", "co_varnames"), until=(3, 11),
      doc="names of the `f_localsplus` slots that hold locals (parameters first)"),
    F("code.co_cellvars", "ptr", OS_OBJECT, Off("PyCodeObject", "co_cellvars"), until=(3, 11),
      doc="names of the cells that follow the locals in `f_localsplus`"),
    F("code.co_freevars", "ptr", OS_OBJECT, Off("PyCodeObject", "co_freevars"), until=(3, 11),
      doc="names of the free variables that follow the cells"),
    F("code.co_localsplusnames", "ptr", OS_OBJECT, Off("PyCodeObject", "co_localsplusnames"),
      since=(3, 11), doc="a tuple naming every `localsplus` slot"),
    F("code.co_localspluskinds", "ptr", OS_OBJECT, Off("PyCodeObject", "co_localspluskinds"),
      since=(3, 11), doc="a bytes object: each slot's `CO_FAST_*` kind"),
    F("code.co_code_adaptive", "offset", OS_OBJECT, Off("PyCodeObject", "co_code_adaptive"), since=(3, 11),
      doc="where the bytecode starts, inside the code object"),
    # 2.7's bytesobject.h #defines PyBytesObject to PyStringObject.
    F("bytes.ob_sval", "offset", OS_OBJECT, Off("PyBytesObject", "ob_sval"),
      Off("PyStringObject", "ob_sval"), doc="where the bytes start"),
    F("unicode.length", "i64", OS_OBJECT, Off("PyASCIIObject", "length"), since=(3, 3)),
    F("unicode.state", "u32", OS_OBJECT, Off("PyASCIIObject", "state"), since=(3, 3),
      doc="the bit fields (kind, compact, ascii); their positions are fixed in Rust"),
    F("unicode.ascii_size", "offset", OS_OBJECT, Size("PyASCIIObject"), since=(3, 3),
      doc="where a compact ASCII string's characters start"),
    F("unicode.compact_size", "offset", OS_OBJECT, Size("PyCompactUnicodeObject"), since=(3, 3),
      doc="where a compact non-ASCII string's characters start"),
    F("unicode.legacy_data", "ptr", OS_OBJECT, Off("PyUnicodeObject", "data"), since=(3, 3)),
    F("unicode.py2_length", "i64", OS_OBJECT, Off("PyUnicodeObject", "length"), until=(3, 0),
      doc="2.7's `unicode`: its length in `Py_UNICODE` units"),
    F("unicode.py2_str", "ptr", OS_OBJECT, Off("PyUnicodeObject", "str"), until=(3, 0),
      doc="2.7's `unicode`: its `Py_UNICODE` buffer"),
    F("unicode.py2_unit", "offset", OS_SAME, Size("((PyUnicodeObject *)0)->str[0]"), until=(3, 0),
      doc="2.7's `sizeof(Py_UNICODE)`: 2 (UCS-2 builds) or 4"),
    F("int.ob_ival", "i64", OS_OBJECT, Off("PyIntObject", "ob_ival"), until=(3, 0)),
    F("long.digits", "offset", OS_OBJECT, Off("PyLongObject", "long_value.ob_digit"),
      Off("PyLongObject", "ob_digit"), doc="where the digits start"),
    F("long.lv_tag", "u64", OS_OBJECT, Off("PyLongObject", "long_value.lv_tag"), since=(3, 12)),
    F("dict.ma_used", "i64", OS_OBJECT, Off("PyDictObject", "ma_used")),
    # Before 3.3: one open-addressing table of PyDictEntry (hash, key, value).
    F("dict.ma_mask", "i64", OS_OBJECT, Off("PyDictObject", "ma_mask"), until=(3, 3)),
    F("dict.ma_table", "ptr", OS_OBJECT, Off("PyDictObject", "ma_table"), until=(3, 3)),
    F("dict.ma_keys", "ptr", OS_OBJECT, Off("PyDictObject", "ma_keys"), since=(3, 3)),
    F("dict.ma_values", "ptr", OS_OBJECT, Off("PyDictObject", "ma_values"), since=(3, 3)),
    F("dict.entry_size", "offset", OS_SAME, Size("PyDictKeyEntry"), Size("PyDictEntry"),
      doc="`sizeof(PyDictKeyEntry)` (`PyDictEntry` before 3.3)"),
    F("dict.unicode_entry_size", "offset", OS_SAME, Size("PyDictUnicodeEntry"), since=(3, 11)),
    F("dict_keys.dk_size", "i64", OS_SAME, Off("PyDictKeysObject", "dk_size"), since=(3, 3),
      until=(3, 11)),
    F("dict_keys.dk_log2_size", "u8", OS_SAME, Off("PyDictKeysObject", "dk_log2_size"), since=(3, 11)),
    F("dict_keys.dk_log2_index_bytes", "u8", OS_SAME, Off("PyDictKeysObject", "dk_log2_index_bytes"),
      since=(3, 11)),
    F("dict_keys.dk_kind", "u8", OS_SAME, Off("PyDictKeysObject", "dk_kind"), since=(3, 11)),
    F("dict_keys.dk_nentries", "i64", OS_SAME, Off("PyDictKeysObject", "dk_nentries"), since=(3, 6)),
    # 3.6: a union of int8/16/32/64 arrays; 3.7+: `char dk_indices[]`. Same start either way.
    F("dict_keys.dk_indices", "offset", OS_SAME, Off("PyDictKeysObject", "dk_indices"), since=(3, 6)),
    # Before 3.11 `ma_values` (PyObject **) points straight at the values: 0 there.
    F("dict_values.values", "offset", OS_SAME, Off("PyDictValues", "values"), since=(3, 11), absent=0,
      absent_since=(3, 3),
      absent_why="no PyDictValues before 3.11: ma_values (PyObject **) points at the values",
      doc="where the values start, from `ma_values` (0 before 3.11)"),
    # 3.13+: a header before the values; the instance's insertion order follows `capacity` values
    # (get_insertion_order_array). 3.11, 3.12 keep it in bytes before the values (InsertionOrder).
    F("dict_values.capacity", "u8", OS_SAME, Off("PyDictValues", "capacity"), since=(3, 13),
      doc="how many values fit; the insertion order array follows them"),
    F("dict_values.size", "u8", OS_SAME, Off("PyDictValues", "size"), since=(3, 13),
      doc="how many indices the insertion order array holds"),
    F("base_exception.args", "ptr", OS_OBJECT, Off("PyBaseExceptionObject", "args")),
    F("float.ob_fval", "u64", OS_OBJECT, Off("PyFloatObject", "ob_fval"),
      doc="the C `double`, read as its bits"),
    F("list.ob_item", "ptr", OS_OBJECT, Off("PyListObject", "ob_item"),
      doc="the array of `ob_size` item pointers"),
    F("set.used", "i64", OS_OBJECT, Off("PySetObject", "used")),
    F("set.mask", "i64", OS_OBJECT, Off("PySetObject", "mask")),
    F("set.table", "ptr", OS_OBJECT, Off("PySetObject", "table")),
    F("set.entry_key", "offset", OS_SAME, Off("setentry", "key"),
      doc="where a `setentry` keeps its key (after the hash on 2.7)"),
    F("set.entry_size", "offset", OS_SAME, Size("setentry")),
    F("cell.ob_ref", "ptr", OS_OBJECT, Off("PyCellObject", "ob_ref")),
    F("tuple.ob_item", "offset", OS_OBJECT, Off("PyTupleObject", "ob_item"), doc="where the items start"),
    F("module.md_dict", "ptr", OS_OBJECT, Off("PyModuleObject", "md_dict")),
    F("function.func_name", "ptr", OS_OBJECT, Off("PyFunctionObject", "func_name")),
    F("function.func_qualname", "ptr", OS_OBJECT, Off("PyFunctionObject", "func_qualname"),
      since=(3, 3)),
    F("cfunction.m_ml", "ptr", OS_OBJECT, Off("PyCFunctionObject", "m_ml"),
      doc="the function's `PyMethodDef`"),
    F("cfunction.m_self", "ptr", OS_OBJECT, Off("PyCFunctionObject", "m_self"),
      doc="the object it is bound to: a module (or NULL) for a function"),
    F("cfunction.ml_name", "ptr", OS_SAME, Off("PyMethodDef", "ml_name"),
      doc="in the `PyMethodDef`: the C string of its name"),
    F("method.im_func", "ptr", OS_OBJECT, Off("PyMethodObject", "im_func")),
    F("method.im_self", "ptr", OS_OBJECT, Off("PyMethodObject", "im_self")),
    # The collector's lists of tracked objects (greenlets are found there). 2.7 and 3.6 keep
    # them in gcmodule.c's static `generations` array, found through `_PyGC_generation0`.
    F("gc.next", "ptr", OS_SAME, Off("PyGC_Head", "_gc_next"), Off("PyGC_Head", "gc.gc_next"),
      doc="the next tracked object's `PyGC_Head` (low bits are flags during a collection)"),
    F("gc.head_size", "offset", OS_SAME, Size("PyGC_Head"),
      doc="`sizeof(PyGC_Head)`: the object follows its header"),
    F("gc.generation_size", "offset", OS_SAME, Size("struct gc_generation"),
      doc="`sizeof(struct gc_generation)`: the stride of the generations array"),
    F("gc.runtime_generations", "offset", Off("_PyRuntimeState", "gc.generations"),
      since=(3, 7), until=(3, 9), doc="the list heads of the three generations"),
    F("gc.runtime_permanent", "offset", Off("_PyRuntimeState", "gc.permanent_generation"),
      since=(3, 7), until=(3, 9), doc="the list head of objects `gc.freeze()` moved"),
    F("gc.interp_generations", "offset", Off("PyInterpreterState", "gc.generations"),
      since=(3, 9), doc="the list heads of the three generations (not in free-threaded 3.14+)"),
    F("gc.interp_permanent", "offset", Off("PyInterpreterState", "gc.permanent_generation"),
      since=(3, 9), doc="the list head of objects `gc.freeze()` moved"),
    F("weakref.wr_object", "ptr", OS_OBJECT, Off("PyWeakReference", "wr_object"),
      doc="the referent (`None` once it died)"),
    F("gen.gi_qualname", "ptr", OS_OBJECT, Off("PyGenObject", "gi_qualname"), since=(3, 5)),
    F("gen.gi_frame", "ptr", OS_OBJECT, Off("PyGenObject", "gi_frame"), until=(3, 11),
      doc="its `PyFrameObject` (NULL once finished)"),
    F("gen.gi_iframe", "offset", OS_OBJECT, Off("PyGenObject", "gi_iframe"), since=(3, 11),
      doc="where its embedded `_PyInterpreterFrame` starts"),
    F("gen.gi_frame_state", "u8", OS_OBJECT, Off("PyGenObject", "gi_frame_state"),
      since=(3, 11), doc="an `int8_t`: negative while created or suspended"),
    F("asyncio_task.event_loop", "ptr", OS_OBJECT, Off("TaskObj", "task_loop"), since=(3, 8)),
    F("asyncio_task.state", "i32", OS_OBJECT, Off("TaskObj", "task_state"), since=(3, 8),
      doc="`fut_state`: pending 0, cancelled 1, finished 2"),
    F("asyncio_task.fut_waiter", "ptr", OS_OBJECT, Off("TaskObj", "task_fut_waiter"),
      since=(3, 8), doc="the future the task waits for"),
    F("asyncio_task.coro", "ptr", OS_OBJECT, Off("TaskObj", "task_coro"), since=(3, 8)),
    F("asyncio_task.name", "ptr", OS_OBJECT, Off("TaskObj", "task_name"), since=(3, 8),
      doc="a `str` (or, 3.13+, an `int` n named `Task-n` on demand)"),
    # 3.14+: native tasks are linked through task_node into lists per thread state and per
    # interpreter (tasks of threads that are gone), Modules/_asynciomodule.c.
    F("asyncio_task.node", "offset", OS_OBJECT, Off("TaskObj", "task_node"), since=(3, 14),
      doc="its `llist_node` in a list of native tasks"),
    F("tstate.asyncio_tasks_head", "offset", Off("_PyThreadStateImpl", "asyncio_tasks_head"),
      since=(3, 14), doc="the `llist_node` heading the thread's native asyncio tasks"),
    F("interp.asyncio_tasks_head", "offset", Off("PyInterpreterState", "asyncio_tasks_head"),
      since=(3, 14), doc="the `llist_node` heading the native tasks of threads that are gone"),
]

FIELD_BY_NAME = {f.name: f for f in FIELDS}


# ---------------------------------------------------------------------------------------------
# Behaviour: what differs between versions and shapes beyond offsets, as data (no version tests
# in the Rust walkers). Each rule maps (version, shape) to a Rust expression.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Behaviour:
    name: str  # Layout member
    rust_type: str
    doc: str
    value: Callable[[Version, str], str]


def managed_dict(v: Version, shape: str) -> str:
    # Include/internal/pycore_object.h: MANAGED_DICT_OFFSET and the values' place, per version.
    if v < (3, 11):
        return "ManagedDict::None"
    if v == (3, 11):
        return "ManagedDict::DictAndValuesBefore"
    if v == (3, 12):
        return "ManagedDict::TaggedBefore"
    words = 1 if shape == "free-threaded" else 3
    return f"ManagedDict::InlineValues {{ dict_words_before: {words} }}"


def insertion_order(v: Version, shape: str) -> str:
    # Objects/dictobject.c get_index_from_order: where a split dict's values keep the order the
    # instance's attributes were set in. Before 3.11 a split table is only kept while keys are
    # inserted in the shared keys' order (insertdict makes it combined otherwise).
    if v < (3, 11):
        return "InsertionOrder::SharedKeys"
    if v < (3, 13):
        return "InsertionOrder::BytesBefore"
    return "InsertionOrder::AfterValues"
def gen_frame_states(v: Version, suspended: bool) -> str:
    # `gi_frame_state` values (enum _frameowner's neighbour `FRAME_*`, Include/internal/
    # pycore_frame.h): the states in which a generator's embedded frame is live (created,
    # suspended, executing) and those in which it is suspended. None before 3.11 (a
    # PyFrameObject, NULL once finished).
    if v < (3, 11):
        return "None"
    if v < (3, 13):  # CREATED -2, SUSPENDED -1, EXECUTING 0, COMPLETED 1, CLEARED 4
        return "Some((-1, -1))" if suspended else "Some((-2, 0))"
    if v < (3, 15):  # CREATED -3, SUSPENDED -2, SUSPENDED_YIELD_FROM -1, EXECUTING 0, ...
        return "Some((-2, -1))" if suspended else "Some((-3, 0))"
    # 3.15: CREATED 0, SUSPENDED 1, SUSPENDED_YIELD_FROM 2, ..._LOCKED 3, EXECUTING 4, CLEARED 5
    return "Some((1, 3))" if suspended else "Some((0, 4))"


BEHAVIOURS: List[Behaviour] = [
    Behaviour("lnotab_signed", "bool",
              "`co_lnotab` line deltas are signed bytes (3.6+), not unsigned",
              lambda v, shape: "true" if v >= (3, 6) else "false"),
    Behaviour("python2_repr", "bool",
              "values are shown as Python 2's `repr()` shows them (`u'...'` text, `1L` longs, "
              "`set([...])`)",
              lambda v, shape: "true" if v < (3, 0) else "false"),
    Behaviour("managed_dict", "ManagedDict",
              "Where instances of classes with `Py_TPFLAGS_MANAGED_DICT` keep their attributes",
              managed_dict),
    Behaviour("insertion_order", "InsertionOrder",
              "Where a split dict's values keep the instance's own insertion order",
              insertion_order),
    Behaviour("gen_frame_live", "Option<(i8, i8)>",
              "The `gi_frame_state` values (first, last) in which a generator's frame is live "
              "(3.11+)",
              lambda v, shape: gen_frame_states(v, False)),
    # `_PyGen_yf` (Objects/genobject.c): what a generator suspended in `yield from`/`await`
    # awaits is at stackpointer[-1], from 3.15 at stackpointer[-2] (SEND keeps a slot above it).
    Behaviour("gen_awaited_slot", "u8",
              "Where a suspended generator keeps what it awaits: this many slots below the top of "
              "its value stack",
              lambda v, shape: "2" if v >= (3, 15) else "1"),
    Behaviour("gen_frame_suspended", "Option<(i8, i8)>",
              "The `gi_frame_state` values (first, last) in which a generator is suspended "
              "(3.11+)",
              lambda v, shape: gen_frame_states(v, True)),
]

# Since 3.8 Py_DEBUG no longer implies Py_TRACE_REFS, and none of these structs differ between
# a debug and a release build: a debug build without its own table is read with the release one.
DEBUG_READS_AS_RELEASE_SINCE: Version = (3, 8)


# ---------------------------------------------------------------------------------------------
# _Py_DebugOffsets (3.13+: Include/internal/pycore_runtime.h, 3.14+ pycore_debug_offsets.h):
# where each of its members sits (generated per version like the rest), and which layout field
# the value stored there gives. Every member is a uint64_t (checked).
# ---------------------------------------------------------------------------------------------

DEBUG_OFFSETS_TYPE = "_Py_DebugOffsets"
DEBUG_OFFSETS_SINCE: Version = (3, 13)
DEBUG_OFFSETS_GROUPS = (
    "runtime_state", "interpreter_state", "thread_state", "err_stackitem", "interpreter_frame",
    "code_object", "pyobject", "type_object", "heap_type_object", "tuple_object", "list_object",
    "set_object", "dict_object", "float_object", "long_object", "bytes_object", "unicode_object",
    "gc", "gen_object", "llist_node", "debugger_support",
)

# DebugOffsetsLayout members: (name, required). `size` is sizeof(_Py_DebugOffsets);
# `<group>_<member>` is offsetof(_Py_DebugOffsets, <group>.<member>); others are top-level.
DEBUG_OFFSETS_MEMBERS: List[Tuple[str, bool]] = [
    ("size", True),
    ("version", True),
    ("free_threaded", False),
    ("runtime_state_interpreters_head", False),
    ("interpreter_state_id", False),
    ("interpreter_state_next", False),
    ("interpreter_state_threads_head", False),
    ("interpreter_state_imports_modules", False),
    ("interpreter_state_ceval_gil", False),
    ("interpreter_state_gil_runtime_state", False),
    ("interpreter_state_gil_runtime_state_enabled", False),
    ("interpreter_state_gil_runtime_state_locked", False),
    ("interpreter_state_gil_runtime_state_holder", False),
    ("thread_state_next", False),
    ("thread_state_interp", False),
    ("thread_state_current_frame", False),
    ("thread_state_thread_id", False),
    ("thread_state_native_thread_id", False),
    ("interpreter_frame_previous", False),
    ("interpreter_frame_executable", False),
    ("interpreter_frame_instr_ptr", False),
    ("interpreter_frame_owner", False),
    ("code_object_filename", False),
    ("code_object_name", False),
    ("code_object_qualname", False),
    ("code_object_linetable", False),
    ("code_object_firstlineno", False),
    ("code_object_co_code_adaptive", False),
    ("pyobject_ob_type", False),
    ("type_object_tp_name", False),
    ("type_object_tp_flags", False),
    ("type_object_tp_basicsize", False),
    ("type_object_tp_dictoffset", False),
    ("heap_type_object_ht_cached_keys", False),
    ("dict_object_ma_keys", False),
    ("dict_object_ma_values", False),
    ("long_object_lv_tag", False),
    ("long_object_ob_digit", False),
    ("bytes_object_ob_size", False),
    ("bytes_object_ob_sval", False),
    ("unicode_object_state", False),
    ("unicode_object_length", False),
    ("unicode_object_asciiobject_size", False),
    ("unicode_object_compactunicodeobject_size", False),
    ("interpreter_frame_localsplus", False),
    ("code_object_argcount", False),
    ("code_object_localsplusnames", False),
    ("code_object_localspluskinds", False),
    ("type_object_tp_repr", False),
    ("tuple_object_ob_item", False),
    ("list_object_ob_item", False),
    ("set_object_used", False),
    ("set_object_table", False),
    ("set_object_mask", False),
    ("float_object_ob_fval", False),
]


def debug_offsets_candidate(name: str):
    if name == "size":
        return Size(DEBUG_OFFSETS_TYPE)
    for group in sorted(DEBUG_OFFSETS_GROUPS, key=len, reverse=True):
        if name.startswith(group + "_"):
            return Off(DEBUG_OFFSETS_TYPE, f"{group}.{name[len(group) + 1:]}")
    return Off(DEBUG_OFFSETS_TYPE, name)


# DebugOffsetsLayout member -> the layout field the value stored there gives. Two quirks of
# CPython's initializer (pycore_runtime_init.h in 3.13, pycore_debug_offsets.h 3.14+):
#  - gil_runtime_state_locked/_holder are offsetof(PyInterpreterState, _gil.locked), relative to
#    the interpreter; the layout keeps them relative to struct _gil_runtime_state, so the stored
#    gil_runtime_state (= offsetof(PyInterpreterState, _gil)) is subtracted first (DEBUG_RELATIVE);
#  - gil_runtime_state_enabled is offsetof(struct _gil_runtime_state, enabled) in free-threaded
#    builds and 0 ("absent") otherwise, which is also its real offset in free-threaded builds:
#    only the shape tells them apart (DEBUG_ZERO_MEANS_ABSENT_UNLESS_FREE_THREADED).
DEBUG_RELATIVE = {
    "interpreter_state_gil_runtime_state_locked": "interpreter_state_gil_runtime_state",
    "interpreter_state_gil_runtime_state_holder": "interpreter_state_gil_runtime_state",
}
DEBUG_ZERO_MEANS_ABSENT_UNLESS_FREE_THREADED = {"interpreter_state_gil_runtime_state_enabled"}
DEBUG_TO_LAYOUT = {
    "runtime_state_interpreters_head": "runtime.interpreters_head",
    "interpreter_state_id": "interp.id",
    "interpreter_state_next": "interp.next",
    "interpreter_state_threads_head": "interp.threads_head",
    "interpreter_state_imports_modules": "interp.modules",
    "interpreter_state_ceval_gil": "interp.ceval_gil",
    "interpreter_state_gil_runtime_state_enabled": "gil.enabled",
    "interpreter_state_gil_runtime_state_locked": "gil.locked",
    "interpreter_state_gil_runtime_state_holder": "gil.last_holder",
    "thread_state_next": "tstate.next",
    "thread_state_interp": "tstate.interp",
    "thread_state_current_frame": "tstate.current_frame",
    "thread_state_thread_id": "tstate.thread_id",
    "thread_state_native_thread_id": "tstate.native_thread_id",
    "interpreter_frame_previous": "iframe.previous",
    "interpreter_frame_executable": "iframe.executable",
    "interpreter_frame_instr_ptr": "iframe.instr_ptr",
    "interpreter_frame_owner": "iframe.owner",
    "code_object_filename": "code.co_filename",
    "code_object_name": "code.co_name",
    "code_object_qualname": "code.co_qualname",
    "code_object_linetable": "code.co_linetable",
    "code_object_firstlineno": "code.co_firstlineno",
    "code_object_co_code_adaptive": "code.co_code_adaptive",
    "pyobject_ob_type": "object.ob_type",
    "type_object_tp_name": "type_object.tp_name",
    "type_object_tp_flags": "type_object.tp_flags",
    "type_object_tp_basicsize": "type_object.tp_basicsize",
    "type_object_tp_dictoffset": "type_object.tp_dictoffset",
    "heap_type_object_ht_cached_keys": "heap_type.ht_cached_keys",
    "dict_object_ma_keys": "dict.ma_keys",
    "dict_object_ma_values": "dict.ma_values",
    "long_object_lv_tag": "long.lv_tag",
    "long_object_ob_digit": "long.digits",
    "bytes_object_ob_size": "var_object.ob_size",
    "bytes_object_ob_sval": "bytes.ob_sval",
    "unicode_object_state": "unicode.state",
    "unicode_object_length": "unicode.length",
    "unicode_object_asciiobject_size": "unicode.ascii_size",
    "unicode_object_compactunicodeobject_size": "unicode.compact_size",
    "interpreter_frame_localsplus": "iframe.localsplus",
    "code_object_argcount": "code.co_argcount",
    "code_object_localsplusnames": "code.co_localsplusnames",
    "code_object_localspluskinds": "code.co_localspluskinds",
    "type_object_tp_repr": "type_object.tp_repr",
    "tuple_object_ob_item": "tuple.ob_item",
    "list_object_ob_item": "list.ob_item",
    "set_object_used": "set.used",
    "set_object_table": "set.table",
    "set_object_mask": "set.mask",
    "float_object_ob_fval": "float.ob_fval",
}


# What a 3.13+ frame walk reads: a build read through its _Py_DebugOffsets alone (no table of its
# own) must get these from the process, never from another shape's guesses.
WALK_MEMBERS = [
    "tstate.current_frame", "iframe.executable", "iframe.previous", "iframe.instr_ptr",
    "iframe.owner", "code.co_filename", "code.co_name", "code.co_firstlineno",
    "code.co_linetable", "code.co_code_adaptive",
]


def check_spec() -> None:
    """The spec's own consistency (run on every generation, and by the tests)."""
    problems = []
    if len(FIELD_BY_NAME) != len(FIELDS):
        problems.append("duplicate field names")
    for f in FIELDS:
        if f.name.count(".") != 1 or f.group not in GROUP_BY_NAME:
            problems.append(f"{f.name}: not `group.member` of a known group")
        if f.ty not in TYPES:
            problems.append(f"{f.name}: unknown type {f.ty}")
        if f.requires is not None and f.requires not in FIELD_BY_NAME:
            problems.append(f"{f.name}: requires unknown {f.requires}")
        if not f.optional and f.other_shapes is None and f.name not in DEBUG_TO_LAYOUT.values():
            problems.append(f"{f.name}: required, so it needs other_shapes (object or same) "
                            f"or a _Py_DebugOffsets member that gives it")
    members = [n for n, _ in DEBUG_OFFSETS_MEMBERS]
    if len(set(members)) != len(members):
        problems.append("duplicate DebugOffsetsLayout members")
    for d, field in DEBUG_TO_LAYOUT.items():
        if d not in members:
            problems.append(f"DEBUG_TO_LAYOUT: {d} is no DebugOffsetsLayout member")
        if field not in FIELD_BY_NAME:
            problems.append(f"DEBUG_TO_LAYOUT: {d} -> unknown field {field}")
    for d, base in DEBUG_RELATIVE.items():
        if d not in DEBUG_TO_LAYOUT or base not in members:
            problems.append(f"DEBUG_RELATIVE: {d} -> {base}")
    for name in WALK_MEMBERS:
        if name not in DEBUG_TO_LAYOUT.values():
            problems.append(f"WALK_MEMBERS: {name} is given by no _Py_DebugOffsets member")
    for g in GROUPS:
        if not any(f.group == g.name for f in FIELDS):
            problems.append(f"group {g.name} has no field")
    if problems:
        raise GenError("field spec: " + "; ".join(problems))
