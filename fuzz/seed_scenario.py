# -*- coding: utf-8 -*-
"""A small process for fuzzing seeds (fuzz/make-seeds.sh): a few threads parked in Python code.

Usage: python seed_scenario.py READY-FILE [abort]

Runs on CPython 2.7 and 3.x. Parks: a sleeper inside a generator, a thread waiting on a lock
inside an `except` block (so it is handling an exception), a recursive thread, and the main
thread. Writes READY-FILE once every thread is parked; with "abort" the main thread then
calls os.abort() (for a kernel core), else it sleeps until killed (for gcore).
"""
import os
import sys
import threading
import time

LOCK = threading.Lock()
LOCK.acquire()
PARKED = []


def park(seconds):
    PARKED.append(threading.current_thread().name)
    time.sleep(seconds)


def gen_sleeper():
    def gen():
        yield park(3600)

    for _ in gen():
        pass


def handler():
    try:
        raise ValueError(u"caf\u00e9 " + "x" * 40)
    except ValueError:
        PARKED.append(threading.current_thread().name)
        LOCK.acquire()


def recurse(depth):
    if depth == 0:
        park(3600)
    else:
        recurse(depth - 1)


class Worker(object):
    def run_forever(self):
        recurse(12)


def main(ready, abort):
    # A non-ASCII thread name: text on Python 3, UTF-8 bytes on Python 2 (which wants str).
    worker = u"worker-\u00e9"
    if sys.version_info[0] == 2:
        worker = worker.encode("utf-8")
    targets = [("gen-sleeper", gen_sleeper), ("handler", handler),
               (worker, Worker().run_forever)]
    for name, target in targets:
        t = threading.Thread(target=target, name=name)
        t.daemon = True
        t.start()
    while len(PARKED) < len(targets):
        time.sleep(0.01)
    time.sleep(0.2)
    with open(ready, "w") as f:
        f.write(str(os.getpid()))
    if abort:
        os.abort()
    park(3600)


if __name__ == "__main__":
    main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "abort")
