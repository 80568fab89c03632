"""Scenario for the kernel core test: a worker thread divides by zero (SIGFPE).

Usage: python crash_fpe.py RECORD.json   (run with core dumps enabled; x86_64)

The main thread and a sleeper park; the "divider" thread records every thread,
itself included, and calls the C library's div(1, 0) on the same source line.
On x86_64 div() is an `idiv` instruction, which traps: a real FPE_INTDIV from
the kernel, whose fault address is that instruction's, a few bytes into div()
(the recording gives the range [div, div + 64) for it). On aarch64 integer
division by zero does not trap, so the harness runs this on x86_64 only.

div is looked up before the crashing line: the first attribute access on a
ctypes.CDLL runs Python code (CDLL.__getattr__), the call itself does not.
A foreign call releases the GIL, so no thread holds it in the core.
Runs on CPython 2.7 and 3.6+.
"""
import ctypes
import os
import sys
import time

import recording
from parked_threads import sleeper, start_thread

# How far into div() the trapping instruction may be (it is at +3 in glibc 2.36).
DIV_CODE_BYTES = 64


def divide_after_recording(record_path):
    div = ctypes.CDLL(None).div
    start = ctypes.cast(div, ctypes.c_void_p).value
    crash = {"fault_address_range": [start, start + DIV_CODE_BYTES]}
    recording.announce()
    # One line on purpose: the recorded line of this frame is the crash's line.
    recording.record_parked_threads_and_caller(record_path, 2, crash); div(1, 0)  # noqa: E702


def main():
    record_path = sys.argv[1]
    start_thread("sleeper", sleeper)
    start_thread("divider", divide_after_recording, (record_path,))
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)  # the harness is gone; don't linger in thread shutdown


if __name__ == "__main__":
    main()
