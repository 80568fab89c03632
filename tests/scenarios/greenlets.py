"""Scenario for the greenlets test: suspended greenlets parked in nested functions, and the
running one of each thread.

Usage: python greenlets.py RECORD.json SITE [gevent]   (SITE: where pip installed greenlet)

- The main thread starts three greenlets; each calls nested functions and switches back to the
  main greenlet from the innermost one, on a known line: they stay suspended there. The main
  greenlet runs on (it is the main thread's running greenlet) and parks.
- A worker thread starts a greenlet that calls nested functions and parks in time.sleep() inside
  it: that greenlet runs on the worker, whose main greenlet is suspended (in `worker`).

- With `gevent`: three gevent greenlets (gevent.Greenlet, a subclass of greenlet.greenlet)
  park in gevent.sleep() from nested functions, and the hub (another subclass) waits in its
  loop; both are suspended on the main thread.

Each suspended greenlet's truth is recorded from inside the process before the core is taken:
its `gr_frame` chain (function, file, line, innermost first, through f_back), its thread's
TID and `id()`; per thread, the running greenlet's `id()`. They go to RECORD.json.greenlets.json;
RECORD.json holds the threads' stacks as recording.py records them.
Runs on CPython 2.7 and 3.6+ with greenlet 0.4 to 3.x.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, sys.argv[2])
import greenlet  # noqa: E402

import recording  # noqa: E402

SUSPENDED = []  # [greenlet, tid]
RUNNING = []  # [greenlet, tid]
LOCK = threading.Lock()
WORKER_READY = threading.Event()


def chain(frame):
    frames = []
    while frame is not None and len(frames) < 200:
        code = frame.f_code
        frames.append({"function": code.co_name, "file": code.co_filename,
                       "line": frame.f_lineno})
        frame = frame.f_back
    return frames


def innermost(depth, main):
    if depth:
        return innermost(depth - 1, main)
    main.switch()  # SUSPEND
    return depth


def middle(depth, main):
    value = innermost(depth, main)
    return value


def outer(depth, main):
    return middle(depth, main)


def gevent_leaf(depth):
    if depth:
        return gevent_leaf(depth - 1)
    import gevent
    gevent.sleep(recording.PARK_SECONDS)  # SUSPEND
    return depth


def gevent_outer(depth):
    return gevent_leaf(depth)


def start_gevent(tid):
    import gevent
    jobs = [gevent.spawn(gevent_outer, depth) for depth in (0, 1)]
    gevent.sleep(0.01)
    for job in jobs:
        SUSPENDED.append([job, tid])
    SUSPENDED.append([gevent.get_hub(), tid])
    return jobs


def worker_leaf():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


def worker_body():
    with LOCK:
        me = greenlet.getcurrent()
        RUNNING.append([me, recording.native_tid()])
        SUSPENDED.append([me.parent, recording.native_tid()])
    WORKER_READY.set()
    worker_leaf()


def worker():
    child = greenlet.greenlet(worker_body)
    child.switch()  # SUSPEND


def record_and_park(record_path):
    recording.announce()
    tid = recording.native_tid()
    main = greenlet.getcurrent()
    children = []
    for depth in (0, 1, 2):
        child = greenlet.greenlet(outer)
        child.switch(depth, main)
        children.append(child)
        SUSPENDED.append([child, tid])
    if sys.argv[3:] == ["gevent"]:
        children.extend(start_gevent(tid))
    RUNNING.append([main, tid])
    WORKER_READY.wait()
    truth = {
        "greenlet_version": getattr(greenlet, "__version__", None),
        "suspended": [{"address": "%#x" % id(g), "thread": t, "frames": chain(g.gr_frame)}
                      for g, t in SUSPENDED],
        "running": [{"address": "%#x" % id(g), "thread": t} for g, t in RUNNING],
    }
    with open(record_path + ".greenlets.json", "w") as out:
        json.dump(truth, out)
    # One line on purpose: the recorded line of this frame is the park's line.
    recording.record_parked_threads_and_caller(record_path, 1); time.sleep(recording.PARK_SECONDS)  # PARK
    return children


def main():
    thread = threading.Thread(target=worker, name="greenlet-worker")
    thread.daemon = True
    thread.start()
    record_and_park(sys.argv[1])
    os._exit(0)  # the harness is gone


if __name__ == "__main__":
    main()
