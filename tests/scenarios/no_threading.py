"""Scenario for the no-threading gcore test: a process that never imports threading.

Usage: python -S no_threading.py RECORD.json WORKERS

WORKERS is 0 (the main thread only: no thread is ever started) or 2 (a sleeper
and a lock waiter started with the low-level _thread module, `thread` on
Python 2). Nothing imports the threading module (the harness runs this with -S
too, so that no .pth file of site-packages can), so nothing names the threads:
pycore must report every thread with name null, and still find every thread
state and stack.

The main thread records every thread, itself included, and parks on the same
source line; the harness takes the core once every thread sleeps in the kernel.
Runs on CPython 2.7 and 3.6+.
"""
import os
import sys
import time

import recording

thread_module = recording.thread_module
NEVER_RELEASED = thread_module.allocate_lock()


def sleeper():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


def wait_for_lock():
    recording.announce()
    NEVER_RELEASED.acquire()  # PARK


def record_and_park(record_path, workers):
    recording.announce()
    # One line on purpose: the recorded line of this frame is the park's line.
    recording.record_parked_threads_and_caller(record_path, workers); time.sleep(recording.PARK_SECONDS)  # PARK


def main():
    record_path, workers = sys.argv[1], int(sys.argv[2])
    if workers not in (0, 2):
        sys.exit("WORKERS must be 0 or 2")
    NEVER_RELEASED.acquire()
    if workers:
        thread_module.start_new_thread(sleeper, ())
        thread_module.start_new_thread(wait_for_lock, ())
    record_and_park(record_path, workers)
    os._exit(0)  # the harness is gone


if __name__ == "__main__":
    main()
