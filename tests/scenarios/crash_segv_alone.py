"""Scenario for the crash core tests: a process with one thread segfaults.

Usage: python crash_segv_alone.py RECORD.json

No thread is ever started: the main thread records itself and writes through
a NULL pointer on the same source line, so the core shows exactly the
recorded stack. The write to address 0 faults with SEGV_MAPERR at fault
address 0. As in crash_segv.py, ctypes.memset is a foreign function object,
so the crash adds no Python frame, and the foreign call releases the GIL.
Runs on CPython 2.7 and 3.6+.
"""
import ctypes
import sys

import recording


def crash(record_path):
    recording.announce()
    # One line on purpose: the recorded line of this frame is the crash's line.
    recording.record_parked_threads_and_caller(record_path, 0, {"fault_address": 0}); ctypes.memset(0, 0, 1)  # noqa: E501,E702


def main():
    crash(sys.argv[1])


if __name__ == "__main__":
    main()
