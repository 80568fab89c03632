"""The code that runs inside the subinterpreters of subinterpreters.py.

Every interpreter imports this module (subinterpreters do not share modules),
so frames run inside subinterpreters have a real file and real lines. Each
park point first writes its own part of the recording, then blocks on the
same line: the frames it records (innermost first, this interpreter's only)
are exactly the ones a core shows for this interpreter's thread state.

A part says which interpreter wrote it (its id), the kernel TID, the thread's
name in this interpreter's `threading` (None if this interpreter never
imported threading), and its depth: 0 for the thread's outermost thread state
(the interpreter that started the thread), 1 for the interpreter it called
into, 2 for the one that one called into.
Runs on CPython 3.8+ (_xxsubinterpreters; _interpreters from 3.13).
"""
import json
import os
import sys
import time

import recording

try:
    import _interpreters as interpreters  # 3.13+

    def current_interpreter_id():
        return int(interpreters.get_current()[0])

except ImportError:
    import _xxsubinterpreters as interpreters  # 3.8 to 3.12

    def current_interpreter_id():
        return int(interpreters.get_current())


def prelude(parts_dir):
    """Source that makes a new interpreter import this module."""
    return "import sys\nsys.path.insert(0, %r)\nimport subinterpreter_parts as parts\n" % (
        recording.SCENARIO_DIR
    ) + "PARTS = %r\n" % parts_dir


def record_part(parts_dir, label, depth):
    """Writes this interpreter's part of the calling thread's stack."""
    threading = sys.modules.get("threading")
    name = threading.current_thread().name if threading is not None else None
    part = {
        "label": label,
        "tid": recording.native_tid(),
        "interpreter": current_interpreter_id(),
        "depth": depth,
        "name": name,
        # The caller's frame onwards: the park line is the caller's.
        "frames": recording._stack(sys._getframe(2)),
    }
    path = os.path.join(parts_dir, label + ".json")
    with open(path + ".tmp", "w") as out:
        json.dump(part, out)
    os.rename(path + ".tmp", path)


def park_here(parts_dir, label, depth):
    _record(parts_dir, label, depth); time.sleep(recording.PARK_SECONDS)  # PARK


def run_nested(parts_dir, label, depth, code):
    """Runs `code` in a new subinterpreter, from this thread, after recording."""
    interpreter = _create()
    _record(parts_dir, label, depth); interpreters.run_string(interpreter, code)  # PARK


def _create():
    if sys.version_info[:2] < (3, 12):
        # Before 3.12 an isolated interpreter (the default from 3.9) may not start threads.
        try:
            return interpreters.create(isolated=False)
        except TypeError:  # 3.8: no such argument, and no isolation
            pass
    return interpreters.create()


def start_thread_and_park(parts_dir, label, depth, thread_label, thread_name):
    """Starts a thread in this (sub)interpreter, then parks this one too."""
    import threading

    thread = threading.Thread(
        target=park_here, args=(parts_dir, thread_label, 0), name=thread_name
    )
    thread.start()
    _record(parts_dir, label, depth); time.sleep(recording.PARK_SECONDS)  # PARK


def _record(parts_dir, label, depth):
    record_part(parts_dir, label, depth)
