# -*- coding: utf-8 -*-
"""Scenario for the gcore matrix test: threads parked at known places.

Usage: python parked_threads.py RECORD.json

Starts one thread per way of blocking that pycore must unwind, parks the main
thread too, and lets a recorder thread write every thread's kernel TID, name
and stack to RECORD.json (see recording.py). The recorder thread then exits,
and the harness takes the core with gcore once only the recorded threads are
left.

Every blocking call is on a line marked `# PARK`, which is how recording.py
knows a thread has arrived. Runs on CPython 2.7 and 3.6+ (see STRINGS).
"""
import os
import sys
import threading
import time

import recording

PY2 = sys.version_info[0] == 2

if PY2:
    # Python 2 identifiers are ASCII: its variant of données.py keeps the non-ASCII
    # file name only, and cannot be imported by name.
    import imp

    STRINGS = imp.load_source(
        "donnees_py2", os.path.join(recording.SCENARIO_DIR, "données_py2.py")
    )
else:
    import importlib

    # Non-ASCII identifiers: a SyntaxError for Python 2, so not a plain import.
    STRINGS = importlib.import_module("données")

RECURSION_DEPTH = 30

HELD_LOCK = threading.Lock()
NEVER_SET = threading.Event()


def sleeper():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


def wait_for_lock():
    recording.announce()
    HELD_LOCK.acquire()  # PARK


def wait_for_event():
    recording.announce()
    NEVER_SET.wait()  # PARK: Python-level frames of threading.py are inside


def recurse(depth):
    if depth == 0:
        recording.announce()
        time.sleep(recording.PARK_SECONDS)  # PARK
    else:
        recurse(depth - 1)


def slow_numbers():
    yield 1
    time.sleep(recording.PARK_SECONDS)  # PARK: parked inside a running generator
    yield 2


def consume_generator():
    recording.announce()
    for _ in slow_numbers():
        pass


class Worker(object):
    def run_forever(self):
        # A method (qualname "Worker.run_forever") calling a closure
        # (qualname "Worker.run_forever.<locals>.parked").
        def parked():
            recording.announce()
            time.sleep(recording.PARK_SECONDS)  # PARK

        parked()


def thread_name(text):
    """A str thread name: Python 2's is the UTF-8 byte string."""
    return text.encode("utf-8") if PY2 else text


# (thread name, target, args). Non-ASCII names use each str storage kind:
# latin-1 ("é"), UCS-2 ("λ", "线") and UCS-4 (U+20000).
WORKERS = [
    ("sleeper", sleeper, ()),
    ("lock-waiter", wait_for_lock, ()),
    ("event-waiter", wait_for_event, ()),
    ("recurser", recurse, (RECURSION_DEPTH,)),
    ("generator", consume_generator, ()),
    (thread_name(u"méthode-é"), Worker().run_forever, ()),
    (thread_name(u"线程-λ-\U00020000"), STRINGS.entry, ()),
]


def start_thread(name, target, args=()):
    thread = threading.Thread(name=name, target=target, args=args)
    thread.daemon = True
    thread.start()
    return thread


def main():
    record_path = sys.argv[1]
    HELD_LOCK.acquire()  # so that lock-waiter blocks
    for name, target, args in WORKERS:
        start_thread(name, target, args)
    # Everything started by this process except the recorder, which is not
    # recorded: the workers and the main thread.
    start_thread("recorder", recording.record_parked_threads, (record_path, len(WORKERS) + 1))
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)  # the harness is gone; don't linger in thread shutdown


if __name__ == "__main__":
    main()
