"""A CPython process to take the *scale* cores from (see bench/scale.sh).

Its shape comes from the environment, so that one program gives every core of the
scale benchmark (docs/performance.md, "Scale"):

  PYCORE_SCALE_THREADS    threads in all, the main thread included      (default 1)
  PYCORE_SCALE_FRAMES     Python frames of the thread doing the work     (default 1)
                          (with THREADS == 1 the main thread; else each worker's
                          pycore_bench_recurse frames are FRAMES, see below)
  PYCORE_SCALE_SPARSE_MB  MiB of private anonymous memory mapped, one page of it written
                          (a kernel core writes the rest as a hole: a sparse core) (default 0)
  PYCORE_SCALE_STACK_KB   stack of the worker threads, KiB                (default 256)

What a correct stack dump of its core shows:

* THREADS == 1, FRAMES == 1: one thread, one frame: ``<module>`` sleeping at module
  level (the yardstick of the scale benchmark);
* THREADS == 1, FRAMES >= 2: one thread, ``<module>`` -> FRAMES - 2 frames of
  ``pycore_bench_recurse`` -> ``pycore_bench_leaf`` (sleeping): FRAMES frames in all;
* THREADS > 1: the main thread ``<module>`` -> ``pycore_bench_main_wait`` and
  THREADS - 1 workers, each threading's bootstrap frames -> FRAMES frames of
  ``pycore_bench_recurse`` -> ``pycore_bench_leaf``.

Every thread sleeps in ``time.sleep`` (clock_nanosleep).  Once all are parked it prints
``READY <pid>``; the core is then taken with kill -QUIT (a kernel core).
"""

import mmap
import os
import signal
import sys
import threading
import time

THREADS = int(os.environ.get("PYCORE_SCALE_THREADS", "1"))
FRAMES = int(os.environ.get("PYCORE_SCALE_FRAMES", "1"))
SPARSE_MB = int(os.environ.get("PYCORE_SCALE_SPARSE_MB", "0"))
STACK_KB = int(os.environ.get("PYCORE_SCALE_STACK_KB", "256"))

# A background job of a non-interactive shell starts with SIGQUIT ignored: the core is
# taken with kill -QUIT, so restore the default action (terminate and dump core).
signal.signal(signal.SIGQUIT, signal.SIG_DFL)

if SPARSE_MB > 0:
    # Private and anonymous, one page written: the kernel dumps an anonymous private
    # mapping only once it has an anon_vma (a page was written), and then skips every
    # page never touched (a hole in the core file): a multi-GB core of a few MB on disk.
    SPARSE = mmap.mmap(-1, SPARSE_MB << 20, flags=mmap.MAP_PRIVATE)
    SPARSE[0] = 1


def pycore_bench_leaf(ready):
    if ready is None:
        say_ready()  # the one-thread cores: the whole stack is in place
    else:
        ready.release()
    while True:
        time.sleep(3600)


def pycore_bench_recurse(n, ready):
    if n <= 1:
        pycore_bench_leaf(ready)
    else:
        pycore_bench_recurse(n - 1, ready)


def pycore_bench_main_wait():
    while True:
        time.sleep(3600)


def say_ready():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


if THREADS > 1:
    threading.stack_size(STACK_KB * 1024)
    ready = threading.Semaphore(0)
    for i in range(THREADS - 1):
        threading.Thread(target=pycore_bench_recurse, args=(FRAMES, ready),
                         name="scale-%d" % i, daemon=True).start()
    for i in range(THREADS - 1):
        ready.acquire()
    time.sleep(0.5)  # from ready.release() into time.sleep()
    say_ready()
    pycore_bench_main_wait()
elif FRAMES >= 2:
    sys.setrecursionlimit(FRAMES + 1000)
    # Python-to-Python calls do not use the C stack (3.11+): 100,000 frames fit.
    if FRAMES == 2:
        pycore_bench_leaf(None)
    else:
        pycore_bench_recurse(FRAMES - 2, None)
else:
    say_ready()
    while True:
        time.sleep(3600)
