"""Scenario for the GIL holder test: one thread spins in pure Python, the rest wait on locks.

Usage: python gil_spinner.py RECORD.json

The "spinner" thread runs a busy loop of pure Python (lines marked `# SPIN`)
and never blocks; the "waiter" threads and the main thread wait on a lock that
is never released. With a GIL, the spinner holds it whenever nobody asks for
it: once the recorder thread has written the recording and exited, nobody
does, so the spinner holds the GIL when the core is taken, and pycore must say
so of it and of no other thread. A free-threaded build has no GIL: no thread
holds one there.

The recorder samples the spinner without stopping it, so its innermost frame
is recorded without a line (the line changes while it spins), with the range
of the loop's lines instead; the rest of its stack is exact.

Python 2's GIL is released and taken back every sys.getcheckinterval() ticks
even with no other thread asking for it; the recorder sets a huge check
interval as its last act, so that the spinner does not let go of the GIL
while the core is taken. From then on, a recorder that let go of the GIL
would never get it back (the spinner keeps it), so on Python 2 the recorder
is a bare `thread` thread: no Python runs after its function returns, where
a `threading.Thread` takes locks (each lock wait lets go of the GIL) to
unregister itself. Runs on CPython 2.7 and 3.6+.
"""
import os
import sys
import threading
import time

import recording

PY2 = sys.version_info[0] == 2
NEVER_RELEASED = threading.Lock()


def spin():
    recording.announce(holds_gil=True)
    count = 0
    while True:  # SPIN
        count += 1  # SPIN


def wait_for_lock():
    recording.announce()
    NEVER_RELEASED.acquire()  # PARK


def record_then_leave_gil_to_spinner(record_path, count):
    recording.record_parked_threads(record_path, count)
    if PY2:
        sys.setcheckinterval(2 ** 31 - 1)


def start_thread(name, target, args=()):
    thread = threading.Thread(name=name, target=target, args=args)
    thread.daemon = True
    thread.start()


def start_recorder(record_path, count):
    if PY2:
        import thread

        thread.start_new_thread(record_then_leave_gil_to_spinner, (record_path, count))
    else:
        start_thread("recorder", record_then_leave_gil_to_spinner, (record_path, count))


def main():
    record_path = sys.argv[1]
    NEVER_RELEASED.acquire()
    start_thread("spinner", spin)
    start_thread("waiter-1", wait_for_lock)
    start_thread("waiter-2", wait_for_lock)
    # The spinner, the waiters and the main thread.
    start_recorder(record_path, 4)
    recording.announce()
    NEVER_RELEASED.acquire()  # PARK
    os._exit(0)


if __name__ == "__main__":
    main()
