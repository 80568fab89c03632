"""Scenario for the kernel core test: a worker thread reads a truncated mapping (SIGBUS).

Usage: python crash_bus.py RECORD.json   (run with core dumps enabled)

The main thread and a sleeper park; the "bus-reader" thread maps one page of a
file (RECORD.json.page, beside the recording: the working directory must hold
only the core), truncates the file to nothing, records every thread, itself
included, and reads the first byte of the mapping on the same source line.
The page now lies beyond the end of the file: the kernel raises SIGBUS with
BUS_ADRERR, and the fault address is exactly the mapping's address, which the
recording gives.

ctypes.memmove is a foreign function object, so the crash happens without an
extra Python frame (ctypes.string_at would add one). A foreign call releases
the GIL, so no thread holds it in the core. Runs on CPython 2.7 and 3.6+.
"""
import ctypes
import mmap
import os
import sys
import time

import recording
from parked_threads import sleeper, start_thread

PAGE = mmap.PAGESIZE


def read_truncated_page(record_path):
    backing = open(record_path + ".page", "w+b")
    backing.write(b"x" * PAGE)
    backing.flush()
    mapping = mmap.mmap(backing.fileno(), PAGE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    backing.truncate(0)
    target = ctypes.create_string_buffer(1)
    recording.announce()
    # One line on purpose: the recorded line of this frame is the crash's line.
    recording.record_parked_threads_and_caller(record_path, 2, {"fault_address": address}); ctypes.memmove(target, address, 1)  # noqa: E501,E702


def main():
    record_path = sys.argv[1]
    start_thread("sleeper", sleeper)
    start_thread("bus-reader", read_truncated_page, (record_path,))
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)  # the harness is gone; don't linger in thread shutdown


if __name__ == "__main__":
    main()
