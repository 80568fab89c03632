"""Lets a scenario process record its own Python stacks for the test harness.

Each thread calls announce() in itself just before it parks, so that its kernel
TID and name are known. A thread is "parked" when the innermost frame that
belongs to a scenario file sits on a line marked `# PARK` (the blocking call)
and its whole stack is unchanged over several samples of
sys._current_frames(). Once every expected thread is parked, the stacks are
written as JSON (innermost frame first) for the Rust harness to compare with
what pycore reads from a core dump of this process.

The caller of the recording functions is never in the recording unless it
asks for it (record_parked_threads_and_caller), because a thread sampling
itself would record the sampling code.

Besides the stacks, the recording says what kind of build ran it ("shape":
release, debug or free-threaded, from the build itself) and which recorded
thread holds the GIL when the core is taken ("gil_holder", a TID or null;
"gil_enabled" is false when there is no GIL at all).

Runs on CPython 2.7 and 3.6+: on Python 2, thread names and file names are
byte strings and are written out decoded as UTF-8, as pycore decodes them.
"""
import ctypes
import json
import linecache
import os
import platform
import sys
import threading
import time

# Long enough for any harness run; the harness kills the process first.
PARK_SECONDS = 600
PARK_MARKER = "# PARK"
SCENARIO_DIR = os.path.dirname(os.path.realpath(__file__))

# Samples that must be identical before the stacks are trusted as parked: a
# thread on a `# PARK` line may still be evaluating the call's arguments, or be
# inside Python-level stdlib code (Event.wait) on its way to the blocking call.
STABLE_SAMPLES = 3
SAMPLE_INTERVAL = 0.05
PARK_TIMEOUT = 20.0

_announced = {}  # thread ident -> (kernel tid, thread name)
_announced_lock = threading.Lock()
_scenario_file_cache = {}


# threading.get_ident is Python 3.3+; Python 2 has the same function under a private name.
get_ident = getattr(threading, "get_ident", None) or getattr(threading, "_get_ident")


def announce():
    """Registers the calling thread's kernel TID and name. Call it in the thread."""
    with _announced_lock:
        _announced[get_ident()] = (native_tid(), threading.current_thread().name)


def native_tid():
    get_native_id = getattr(threading, "get_native_id", None)  # Python 3.8+
    if get_native_id is not None:
        return get_native_id()
    return _gettid_syscall()


_SYS_GETTID = {"x86_64": 186, "aarch64": 178}


def _gettid_syscall():
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_GETTID[platform.machine()])


def record_parked_threads(path, count):
    """Waits until `count` other threads are parked and writes their stacks to `path`.

    Meant as the target of a dedicated recorder thread, which then exits so that
    the core holds only the recorded threads. Every parked thread waits with the
    GIL released, so no recorded thread holds it.
    """
    _write(path, wait_until_parked(count), None)


def record_parked_threads_and_caller(path, others, caller_keeps_gil):
    """Like record_parked_threads, and also records the calling thread's own stack.

    The caller's innermost frame is recorded at the line of this call, so a
    crash placed on the same line (`record...(); os.abort()`) leaves the stack
    exactly as recorded. The caller must have called announce().
    `caller_keeps_gil`: whether the caller still holds the GIL when the core is
    written (os.abort() does; a ctypes foreign call releases it).
    """
    stacks = wait_until_parked(others)
    me = get_ident()
    stacks[me] = _stack(sys._getframe(1))
    _write(path, stacks, me if caller_keeps_gil else None)


def wait_until_parked(count):
    """Returns {ident: stack} once exactly `count` threads besides the caller are parked."""
    me = get_ident()
    deadline = time.time() + PARK_TIMEOUT
    previous, streak = None, 0
    while time.time() < deadline:
        frames = dict((i, f) for i, f in sys._current_frames().items() if i != me)
        sample = dict((i, _stack(f)) for i, f in frames.items())
        ready = len(frames) == count and all(
            i in _announced and _parked(f) for i, f in frames.items()
        )
        del frames  # don't keep other threads' frames alive while sleeping
        streak = streak + 1 if ready and sample == previous else (1 if ready else 0)
        if streak >= STABLE_SAMPLES:
            return sample
        previous = sample
        time.sleep(SAMPLE_INTERVAL)
    _give_up(count, previous)


def _parked(frame):
    while frame is not None:
        code = frame.f_code
        if _is_scenario_file(code.co_filename):
            return PARK_MARKER in linecache.getline(code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return False


def _is_scenario_file(filename):
    if filename not in _scenario_file_cache:
        directory = os.path.dirname(os.path.realpath(filename))
        _scenario_file_cache[filename] = directory == SCENARIO_DIR
    return _scenario_file_cache[filename]


def _stack(frame):
    """The frames from `frame` outwards: innermost first, as pycore lists them."""
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append(
            {
                "function": code.co_name,
                "qualname": getattr(code, "co_qualname", None),  # Python 3.11+
                "file": code.co_filename,
                "line": frame.f_lineno,
            }
        )
        frame = frame.f_back
    return frames


def build_shape():
    """The build shape as pycore names it ("release", "debug", "free-threaded"), from the build."""
    if "t" in getattr(sys, "abiflags", ""):  # Py_GIL_DISABLED builds: "t" or "td"
        return "free-threaded"
    if hasattr(sys, "gettotalrefcount"):  # Py_DEBUG implies Py_REF_DEBUG
        return "debug"
    return "release"


def gil_enabled():
    """False on a free-threaded build running without the GIL (3.13+)."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_gil_enabled is None else bool(is_gil_enabled())


def _write(path, stacks, gil_holder_ident):
    threads = []
    for ident, frames in stacks.items():
        tid, name = _announced[ident]
        threads.append({"tid": tid, "name": name, "frames": frames})
    threads.sort(key=lambda thread: thread["tid"])
    document = {
        "python_version": platform.python_version(),
        "pid": os.getpid(),
        "shape": build_shape(),
        "gil_enabled": gil_enabled(),
        "gil_holder": None if gil_holder_ident is None else _announced[gil_holder_ident][0],
        "threads": threads,
    }
    # ASCII JSON (\u escapes) reads the same on Python 2 and 3; Python 2's byte
    # strings are decoded as UTF-8 by json.dumps. Written whole, then renamed:
    # the harness polls for the file and must never read a partial document.
    text = json.dumps(document, indent=1, sort_keys=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as out:
        out.write(text)
    os.rename(temporary, path)


def _give_up(count, last_sample):
    sys.stderr.write(
        "recording: %d threads were not all parked within %.0f s; announced: %r\n"
        % (count, PARK_TIMEOUT, sorted(_announced.values()))
    )
    for ident, frames in sorted((last_sample or {}).items()):
        top = frames[0] if frames else {}
        sys.stderr.write("  thread %s innermost: %r\n" % (ident, top))
    sys.stderr.flush()
    os._exit(70)
