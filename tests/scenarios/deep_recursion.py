"""Scenario for the deep-stack test: the main thread recurses DEPTH frames deep and parks.

Usage: python deep_recursion.py RECORD.json DEPTH

The innermost frame records the whole stack (DEPTH + 2 frames, innermost first) and parks on
the same line; pycore must report every frame (JSON keeps them all; text folds the repeats as
Python's tracebacks do). Needs a CPython whose Python-to-Python calls do not recurse on the C
stack (3.11+), so that a deep stack fits in the main thread's C stack.
"""
import sys
import time

import recording


def recurse(depth, record_path):
    if depth == 0:
        recording.announce()
        # One line on purpose: the recorded line of this frame is the park's line.
        recording.record_parked_threads_and_caller(record_path, 0); time.sleep(recording.PARK_SECONDS)  # PARK
    return recurse(depth - 1, record_path)


def main():
    depth = int(sys.argv[2])
    sys.setrecursionlimit(depth + 1000)
    recurse(depth, sys.argv[1])


if __name__ == "__main__":
    main()
