# -*- coding: utf-8 -*-
"""Scenario for the --locals test: threads parked in functions that hold every
kind of value pycore prints, as arguments, locals, cells and free variables,
with a variable not bound yet.

Usage: python locals.py RECORD.json

Each parked function records, from inside, what `frame.f_locals` holds in the
code object's order (co_varnames: parameters first, then co_cellvars, then
co_freevars): [name, kind, type name, repr] per bound variable, kind being
"argument", "local", "cell" or "free". The repr is the interpreter's own
repr() for the types pycore prints itself, and pycore's documented
`<TypeName object at 0x...>` for the others (functions, instances of classes
with their own __repr__). Once every worker has recorded, the main thread
writes RECORD.json.locals.json, starts the stack recorder (recording.py) and
parks. Runs on CPython 2.7 and 3.6+ (Python 2's reprs: u'', 1L, set([...])).
"""
import json
import os
import sys
import threading
import time

import recording

PY2 = sys.version_info[0] == 2
EXPECTED = {}
EXPECTED_LOCK = threading.Lock()
WORKERS_RECORDED = threading.Semaphore(0)

CO_VARARGS = 0x4
CO_VARKEYWORDS = 0x8


def helper_for_types():
    pass


class Plain(object):
    """Its instances print as object.__repr__ prints them."""

    def __init__(self):
        self.attribute = 1

    def method(self):
        return self


class Custom(object):
    """A __repr__ of its own: pycore prints <Custom object at 0x...>."""

    def __repr__(self):
        return "Custom!"


class Slotted(object):
    __slots__ = ("x",)


class Ordered(object):
    """Instances share their class's keys (a split dict, 3.3+): the shared keys keep the order
    the first instance set its attributes in, a later instance its own (3.11+ keep it apart;
    older versions make its dict combined)."""


def ordered_pair():
    first = Ordered()
    first.a, first.b, first.c = 1, 2, 3
    second = Ordered()
    second.c = "c"
    second.a = "a"
    second.b = "b"
    return first, second


class MyList(list):
    """Inherits list's repr."""


class Outer(object):
    class Inner(object):
        """A nested class: its qualname names the outer one (3.3+)."""


FunctionType = type(helper_for_types)
ModuleType = type(sys)
BuiltinFunctionType = type(len)
SHOWN_BY_PYCORE = (type(None), bool, int, float, str, bytes, tuple, list, dict, set, frozenset,
                   FunctionType, type, ModuleType, BuiltinFunctionType)
if PY2:
    SHOWN_BY_PYCORE += (long, unicode)  # noqa: F821
else:
    MethodType = type(Plain().method)


def expected_repr(value):
    kind = type(value)
    if isinstance(value, SHOWN_BY_PYCORE) and kind.__repr__ is _builtin_repr(kind):
        return repr(value)
    if kind.__repr__ is object.__repr__:
        return repr(value)
    if not PY2 and kind is MethodType and type(value.__func__) is FunctionType:
        # pycore prints self as it prints any value.
        return "<bound method %s of %s>" % (value.__func__.__qualname__,
                                            expected_repr(value.__self__))
    return "<%s object at %#x>" % (kind.__name__, id(value))


def _builtin_repr(kind):
    for base in kind.__mro__:
        if base in SHOWN_BY_PYCORE:
            return base.__repr__
    return None


def record_locals(frame):
    """Records what `frame` holds, as pycore must print it."""
    code = frame.f_code
    parameters = (
        code.co_argcount
        + getattr(code, "co_kwonlyargcount", 0)
        + bool(code.co_flags & CO_VARARGS)
        + bool(code.co_flags & CO_VARKEYWORDS)
    )
    names = [(n, "argument" if i < parameters else "local") for i, n in enumerate(code.co_varnames)]
    names += [(n, "cell") for n in code.co_cellvars if n not in code.co_varnames]
    names += [(n, "free") for n in code.co_freevars]
    values = frame.f_locals
    recorded = []
    for name, kind in names:
        if name in values:
            value = values[name]
            recorded.append([name, kind, type(value).__name__, expected_repr(value)])
    del values
    with EXPECTED_LOCK:
        EXPECTED[code.co_name] = recorded
    WORKERS_RECORDED.release()


def helper():
    return 0


def scalars(number, text, *args, **kwargs):
    nothing = None
    yes, no = True, False
    small, negative = 42, -7
    big, negative_big = 2 ** 100, -(3 ** 80)
    zero = 0
    floats = None
    half, huge, tiny, negative_zero = 1.5, 1e16, 1e-05, -0.0
    third, fixed = 1.0 / 3, 0.0001
    infinite, not_a_number = float("inf"), float("nan")
    quote, both = "it's", "'\""
    latin = u"naïve\xa0é"
    ucs2 = u"λ€线"
    ucs4 = u"😀x\U00020000"
    escapes = "a\nb\t\x00\\\x7f"
    raw = b"\x00ab\xff'"
    empty = ""
    long_text = "x" * 150 + "y" * 150
    record_locals(sys._getframe())
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    not_yet = 1
    return not_yet


def containers(items):
    pair = (1, "a", None)
    single = (1,)
    no_items = ()
    nested = [1, [2, [3, (4,)]]]
    mapping = {"a": 1, 2: [3], (4, 5): {"x": None}}
    numbers = {1, 2, 3}
    no_numbers = set()
    frozen = frozenset([7])
    no_frozen = frozenset()
    cyclic = [1]
    cyclic.append(cyclic)
    self_dict = {}
    self_dict["me"] = self_dict
    many = list(range(100))
    mine = MyList([1, 2])
    record_locals(sys._getframe())
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    return pair


def objects(obj):
    custom = Custom()
    slotted = Slotted()
    inner = Outer.Inner()
    function = helper

    def local_function():
        pass

    builtin_function = len
    builtin_method = [1].append
    bound_method = obj.method
    custom_bound = Custom().__repr__
    module = os
    builtin_module = sys
    package = json
    classes = (Plain, Outer.Inner, int, type, Ordered)
    attributes = obj.__dict__
    first, second = ordered_pair()
    in_key_order = first.__dict__
    reordered = second.__dict__
    kind = Plain
    record_locals(sys._getframe())
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    return custom


def closures(captured, plain):
    cell = [plain]

    def inner():
        free_too = captured
        record_locals(sys._getframe())
        recording.announce()
        time.sleep(recording.PARK_SECONDS)  # PARK
        return cell, free_too, unbound_cell

    inner()
    unbound_cell = later = 1  # neither bound while inner() parks
    return later


def main():
    record_path = sys.argv[1]
    workers = [
        ("scalars", scalars, (12345, u"données", "extra", 3.25), {"key": [1, 2]}),
        ("containers", containers, ([u"x", b"y"],), {}),
        ("objects", objects, (Plain(),), {}),
        ("closures", closures, (u"captured", -1), {}),
    ]
    for name, target, args, kwargs in workers:
        thread = threading.Thread(name=name, target=target, args=args, kwargs=kwargs)
        thread.daemon = True
        thread.start()
    for _ in workers:
        WORKERS_RECORDED.acquire()
    record_outer_frames()
    with open(record_path + ".locals.json", "w") as out:
        json.dump(EXPECTED, out, indent=1, sort_keys=True)
    start = threading.Thread(
        name="recorder",
        target=recording.record_parked_threads,
        args=(record_path, len(workers) + 1),
    )
    start.daemon = True
    start.start()
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)


def record_outer_frames():
    """`closures` waits in `inner`: record its frame (a cell, a captured argument, a cell
    not bound yet) from outside, through the parked thread's stack."""
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == "closures":
                record_locals(frame)
                WORKERS_RECORDED.acquire()
                return
            frame = frame.f_back


if __name__ == "__main__":
    main()
