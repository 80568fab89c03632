"""Scenario for the garbage-collection test: a thread parked inside a collection.

Usage: python gc_callback.py RECORD.json

The "collector" thread calls gc.collect(); a gc callback (gc.callbacks, for the
"start" phase) parks it there, inside the collection. Python 2 has no
gc.callbacks: there the collector parks in the callback of a weak reference to
an object of a garbage cycle, which the collection calls while it frees the
cycle. The callback parks only in the collector thread, and automatic
collections are off (gc.disable(); gc.collect() still collects), so no other
thread ever stops in it.

A "sleeper" thread and the main thread park outside any collection. pycore
must say a collection is running: on the collector thread, or (if it cannot
tell which thread runs it) on every thread of the interpreter.
Runs on CPython 2.7 and 3.6+.
"""
import gc
import os
import sys
import threading
import time
import weakref

import recording

COLLECTOR = []  # the ident of the thread that must park in the collection
KEEP = []


def sleeper():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


def park_in_collection():
    if COLLECTOR and recording.get_ident() == COLLECTOR[0]:
        del COLLECTOR[:]  # park once
        recording.announce(gc_collecting=True)
        time.sleep(recording.PARK_SECONDS)  # PARK


def on_gc(phase, info):
    if phase == "start":
        park_in_collection()


def on_cycle_freed(reference):
    park_in_collection()


class Node(object):
    pass


def collect():
    COLLECTOR.append(recording.get_ident())
    if hasattr(gc, "callbacks"):  # Python 3.3+
        gc.callbacks.append(on_gc)
    else:
        node = Node()
        node.cycle = node
        KEEP.append(weakref.ref(node, on_cycle_freed))
        del node
    gc.collect()


def start_thread(name, target):
    thread = threading.Thread(name=name, target=target)
    thread.daemon = True
    thread.start()


def main():
    record_path = sys.argv[1]
    gc.disable()
    start_thread("sleeper", sleeper)
    start_thread("collector", collect)
    threading.Thread(
        name="recorder", target=recording.record_parked_threads, args=(record_path, 3)
    ).start()
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK
    os._exit(0)


if __name__ == "__main__":
    main()
