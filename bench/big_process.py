"""A CPython process to take benchmark cores from (see bench/run.sh).

It allocates BIG_MB MiB of *touched* memory (bytearrays filled with a
non-zero pattern, so every page is really resident and dirty and ends up in
the core), then starts THREADS threads that each recurse DEPTH frames deep
into ``pycore_bench_recurse`` and park in ``time.sleep`` inside
``pycore_bench_leaf``.  Once every thread is parked the main thread prints
``READY <pid>`` and parks itself in ``pycore_bench_main_wait``.

So a correct stack dump of a core of this process shows:
  * THREADS + 1 Python threads,
  * THREADS frames of ``pycore_bench_leaf``,
  * THREADS * DEPTH frames of ``pycore_bench_recurse``,
  * one frame of ``pycore_bench_main_wait`` (the main thread).

Settings come from the environment (all optional):
  PYCORE_BENCH_THREADS  number of parked threads         (default 50)
  PYCORE_BENCH_DEPTH    pycore_bench_recurse frames each (default 20)
  PYCORE_BENCH_BIG_MB   MiB of touched memory, 0 = none  (default 1200)
  PYCORE_BENCH_STACK_KB thread stack size in KiB, 0 = the system default
                        (RLIMIT_STACK, usually 8 MiB)      (default 0)
"""

import os
import sys
import threading
import time

THREADS = int(os.environ.get("PYCORE_BENCH_THREADS", "50"))
DEPTH = int(os.environ.get("PYCORE_BENCH_DEPTH", "20"))
BIG_MB = int(os.environ.get("PYCORE_BENCH_BIG_MB", "1200"))
STACK_KB = int(os.environ.get("PYCORE_BENCH_STACK_KB", "0"))
CHUNK_MB = 16

# Kept alive for the life of the process so the memory is in the core.
BALLAST = []


def allocate(total_mb):
    chunk = CHUNK_MB * 1024 * 1024
    left = total_mb * 1024 * 1024
    i = 0
    while left > 0:
        size = min(chunk, left)
        # bytes * n is a memset/memcpy loop: every page gets written.
        # Vary the pattern per chunk so nothing is trivially identical.
        BALLAST.append(bytearray(bytes([0xA5 ^ (i & 0xFF)])) * size)
        left -= size
        i += 1


def pycore_bench_leaf(barrier):
    barrier.wait()
    while True:
        time.sleep(3600)


def pycore_bench_recurse(n, barrier):
    if n <= 1:
        pycore_bench_leaf(barrier)
    else:
        pycore_bench_recurse(n - 1, barrier)


def pycore_bench_main_wait():
    while True:
        time.sleep(3600)


def main():
    if BIG_MB > 0:
        allocate(BIG_MB)
    if STACK_KB > 0:
        # Untouched stack pages still land in a gcore core as zeros: 50 default
        # 8 MiB stacks alone make a 400 MiB core.
        threading.stack_size(STACK_KB * 1024)
    barrier = threading.Barrier(THREADS + 1)
    for i in range(THREADS):
        t = threading.Thread(
            target=pycore_bench_recurse,
            args=(DEPTH, barrier),
            name="bench-%d" % i,
            daemon=True,
        )
        t.start()
    barrier.wait()
    # Give the threads a moment to get from barrier.wait() into time.sleep().
    time.sleep(1.0)
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()
    pycore_bench_main_wait()


if __name__ == "__main__":
    main()
