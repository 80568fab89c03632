"""Scenario for the kernel core test: the main thread aborts (SIGABRT).

Usage: python crash_abort.py RECORD.json   (run with core dumps enabled)

Two workers park as in parked_threads.py; the main thread records every
thread, itself included, and calls os.abort() on the same source line, so the
core the kernel writes shows exactly the recorded stacks. os.abort() keeps
the GIL, so the main thread holds it in the core. abort() sends SIGABRT to its
own thread (tgkill: SI_TKILL, from this process). Runs on CPython 2.7 and 3.6+.
"""
import os
import sys

import recording
from parked_threads import sleeper, start_thread, wait_for_event


def main():
    record_path = sys.argv[1]
    start_thread("sleeper", sleeper)
    start_thread("event-waiter", wait_for_event)
    recording.announce(holds_gil=True)
    # One line on purpose: the recorded line of this frame is the abort's line.
    recording.record_parked_threads_and_caller(record_path, 2, {}); os.abort()  # noqa: E702


if __name__ == "__main__":
    main()
