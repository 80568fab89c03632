"""Scenario for the handled-exception test: threads parked inside `except` blocks.

Usage: python handling_exception.py RECORD.json

- "handler" parks inside `except ValueError as error:` ("bad thing");
- "nested-handler" parks in an inner `except TypeError:` inside an outer
  `except RuntimeError:`: the exception it is handling is the inner one;
- "deep-handler" handles a ValueError and parks in a function called from the
  `except` block: the exception is the thread's, not its innermost frame's;
- "handled-before" handled a KeyError in a function that returned, then
  parks: it handles nothing any more;
- the main thread parks handling nothing.

Each thread records sys.exc_info() itself when it announces itself, in the
block where it parks; pycore must report exactly that exception for it (type
name and str()), and null for the threads that handle none.
Runs on CPython 2.7 and 3.6+.
"""
import os
import sys
import threading
import time

import recording


def handler():
    try:
        raise ValueError("bad thing")
    except ValueError as error:  # noqa: F841
        recording.announce()
        time.sleep(recording.PARK_SECONDS)  # PARK


def nested_handler():
    try:
        raise RuntimeError("outer thing")
    except RuntimeError:
        try:
            raise TypeError("inner thing")
        except TypeError:
            recording.announce()
            time.sleep(recording.PARK_SECONDS)  # PARK


def deep_handler():
    try:
        raise ValueError("deep thing")
    except ValueError:
        park_in_callee()


def park_in_callee():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


def handled_before():
    swallow()
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


def swallow():
    try:
        raise KeyError("gone")
    except KeyError:
        pass


def start_thread(name, target):
    thread = threading.Thread(name=name, target=target)
    thread.daemon = True
    thread.start()


def main():
    record_path = sys.argv[1]
    workers = [
        ("handler", handler),
        ("nested-handler", nested_handler),
        ("deep-handler", deep_handler),
        ("handled-before", handled_before),
    ]
    for name, target in workers:
        start_thread(name, target)
    threading.Thread(
        name="recorder",
        target=recording.record_parked_threads,
        args=(record_path, len(workers) + 1),
    ).start()
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)


if __name__ == "__main__":
    main()
