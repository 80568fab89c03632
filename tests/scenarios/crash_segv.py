"""Scenario for the kernel core test: a worker thread segfaults (SIGSEGV).

Usage: python crash_segv.py RECORD.json   (run with core dumps enabled)

The main thread and a sleeper park; the "crasher" thread records every
thread, itself included, and writes through a NULL pointer on the same source
line, so the core the kernel writes shows exactly the recorded stacks. The
write to address 0 faults with SEGV_MAPERR at fault address 0.

ctypes.memset is a foreign function object, so the crash happens without an
extra Python frame; ctypes.string_at(0) would crash inside the Python-level
wrapper ctypes.string_at, one frame deeper than what was recorded. A
foreign call releases the GIL, so no thread holds it in the core.
Runs on CPython 2.7 and 3.6+.
"""
import ctypes
import os
import sys
import time

import recording
from parked_threads import sleeper, start_thread


def crash_after_recording(record_path):
    recording.announce()
    # One line on purpose: the recorded line of this frame is the crash's line.
    recording.record_parked_threads_and_caller(record_path, 2, {"fault_address": 0}); ctypes.memset(0, 0, 1)  # noqa: E501,E702


def main():
    record_path = sys.argv[1]
    start_thread("sleeper", sleeper)
    start_thread("crasher", crash_after_recording, (record_path,))
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)  # the harness is gone; don't linger in thread shutdown


if __name__ == "__main__":
    main()
