"""Scenario for tests/native.rs: threads blocked in known places, then a crash.

Usage: python native_stacks.py READY_PATH MODE LIBRARY   (core dumps enabled)

LIBRARY is a shared library the test builds with gcc (tests/native.rs,
NATIVE_EXTENSION): it starts an OS thread of its own that parks in C
(no Python thread state), and crashes in C on request.

Threads: "sleeper" in time.sleep, "lock-waiter" in Lock.acquire, "selector"
in select.select, and the library's OS thread. Once every one of them has
started (and a moment for them to block), the main thread writes READY_PATH
(its thread ids, one "name tid" per line where known) and crashes as MODE says:

- libc-segv: ctypes.memset(0, 0, 1): SIGSEGV inside libc, called from ctypes;
- abort: os.abort(): SIGABRT from libc's raise;
- ext-segv: the library's crash_in_c(3): SIGSEGV four C frames deep;
- faulthandler: faulthandler.enable(), then the same crash: faulthandler's
  signal handler runs on the crashed thread's stack (a signal frame) and
  re-raises the signal.

Runs on CPython 2.7 and 3.6+ (faulthandler mode: 3.x).
"""
import ctypes
import os
import select
import sys
import threading
import time

PARK_SECONDS = 600


def sleeper(started):
    started.release()
    time.sleep(PARK_SECONDS)


def lock_waiter(started):
    lock = threading.Lock()
    lock.acquire()
    started.release()
    lock.acquire()


def selector(started):
    started.release()
    select.select([], [], [], PARK_SECONDS)


def main():
    ready_path, mode, library = sys.argv[1], sys.argv[2], sys.argv[3]
    extension = ctypes.CDLL(library)
    started = threading.Semaphore(0)
    for name, target in (("sleeper", sleeper), ("lock-waiter", lock_waiter), ("selector", selector)):
        thread = threading.Thread(target=target, name=name, args=(started,))
        thread.daemon = True
        thread.start()
    for _ in range(3):
        started.acquire()
    if extension.start_parked_thread() != 0:
        sys.exit("pthread_create failed")
    time.sleep(0.5)
    with open(ready_path, "w") as ready:
        ready.write("pid %d\n" % os.getpid())
    if mode == "libc-segv":
        ctypes.memset(0, 0, 1)
    elif mode == "abort":
        os.abort()
    elif mode == "ext-segv":
        extension.crash_in_c(3)
    elif mode == "faulthandler":
        import faulthandler
        faulthandler.enable()
        extension.crash_in_c(3)
    sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
