"""Lets a scenario process record its own Python stacks for the test harness.

Each thread calls announce() in itself just before it parks, so that its kernel
TID and name are known. A thread is "parked" when the innermost frame that
belongs to a scenario file sits on a line marked `# PARK` (the blocking call)
and its whole stack is unchanged over several samples of
sys._current_frames(). Once every expected thread is parked, the stacks are
written as JSON (innermost frame first) for the Rust harness to compare with
what pycore reads from a core dump of this process.

A thread busy in a pure-Python loop whose lines are all marked `# SPIN` counts
as parked too: such a frame is recorded without a line, with the range of the
loop's lines instead ("line_range"), since the line changes while it spins.

The caller of the recording functions is never in the recording unless it
asks for it (record_parked_threads_and_caller), because a thread sampling
itself would record the sampling code.

On 3.11+ each frame of a parked thread also has "positions": [line, end_line,
column, end_column] of its instruction, from code.co_positions().

Besides the stacks, the recording says:
- what kind of build ran it ("shape": release, debug or free-threaded);
- which recorded thread holds the GIL when the core is taken ("gil_holder", a
  TID or null; "gil_enabled" is false when there is no GIL at all): the thread
  that called announce(holds_gil=True);
- which thread is inside a garbage collection ("gc_collector", a TID or null):
  the thread that called announce(gc_collecting=True) from a gc callback;
- per thread, the exception it is handling ("handling_exception": the type's
  name and str() of sys.exc_info()[1] when it announced itself, or null);
- the process's own facts: pid, ppid, uid, gid, its command line as
  /proc/self/cmdline holds it, and whether the threading module was ever
  imported (if not, no thread has a name: "name" is null);
- for a scenario that is about to crash, what it knows of the crash ("crash":
  the crashing thread's TID and the fault address, exact or a range).

This module never imports threading itself (nor platform, nor ctypes on 3.8+,
which import it on some versions), so that a scenario can run without it.
Runs on CPython 2.7 and 3.6+: on Python 2, thread names and file names are
byte strings and are written out decoded as UTF-8, as pycore decodes them.
"""
import json
import linecache
import os
import sys
import time

try:
    import _thread as thread_module
except ImportError:  # Python 2
    import thread as thread_module

# Long enough for any harness run; the harness kills the process first.
PARK_SECONDS = 600
PARK_MARKER = "# PARK"
SPIN_MARKER = "# SPIN"
SCENARIO_DIR = os.path.dirname(os.path.realpath(__file__))

# Samples that must be identical before the stacks are trusted as parked: a
# thread on a `# PARK` line may still be evaluating the call's arguments, or be
# inside Python-level stdlib code (Event.wait) on its way to the blocking call.
STABLE_SAMPLES = 3
SAMPLE_INTERVAL = 0.05
PARK_TIMEOUT = 20.0

_announced = {}  # thread ident -> (kernel tid, thread name or None, exception or None)
_announced_lock = thread_module.allocate_lock()
_scenario_file_cache = {}
_gil_holder = []  # the ident of the thread that announced it holds the GIL
_gc_collector = []  # the ident of the thread that announced it is collecting

get_ident = thread_module.get_ident


def announce(holds_gil=False, gc_collecting=False):
    """Registers the calling thread's kernel TID, name and handled exception.

    Call it in the thread, right before it parks. `holds_gil`: the thread keeps
    the GIL until the core is taken. `gc_collecting`: the thread is inside a
    garbage collection (in a gc callback).
    """
    ident = get_ident()
    with _announced_lock:
        _announced[ident] = (native_tid(), _thread_name(), _handled_exception())
        if holds_gil:
            _gil_holder[:] = [ident]
        if gc_collecting:
            _gc_collector[:] = [ident]


def _thread_name():
    threading = sys.modules.get("threading")
    if threading is None:
        return None  # never imported: nothing names the threads
    return threading.current_thread().name


def _handled_exception():
    exception = sys.exc_info()[1]
    if exception is None:
        return None
    return {"type": type(exception).__name__, "message": str(exception)}


def threading_imported():
    return "threading" in sys.modules


def native_tid():
    get_native_id = getattr(thread_module, "get_native_id", None)  # Python 3.8+
    if get_native_id is not None:
        return get_native_id()
    return _gettid_syscall()


_SYS_GETTID = {"x86_64": 186, "aarch64": 178}


def _gettid_syscall():
    import ctypes  # Python 2.7, 3.6, 3.7 only; their ctypes does not import threading

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_GETTID[os.uname()[4]])


def record_parked_threads(path, count):
    """Waits until `count` other threads are parked and writes their stacks to `path`.

    Meant as the target of a dedicated recorder thread, which then exits so that
    the core holds only the recorded threads.
    """
    _write(path, wait_until_parked(count), None)


def record_parked_threads_and_caller(path, others, crash=None):
    """Like record_parked_threads, and also records the calling thread's own stack.

    The caller's innermost frame is recorded at the line of this call, so a
    crash (or a park) placed on the same line (`record...(); os.abort()`) leaves
    the stack exactly as recorded. The caller must have called announce().
    `crash`: for a caller about to crash, what it knows of the crash beyond its
    own TID (such as {"fault_address": 0}).
    """
    stacks = wait_until_parked(others)
    me = get_ident()
    stacks[me] = _stack(sys._getframe(1))
    if crash is not None:
        crash = dict(crash, tid=_announced[me][0])
    _write(path, stacks, crash)


def wait_until_parked(count):
    """Returns {ident: stack} once exactly `count` threads besides the caller are parked."""
    me = get_ident()
    deadline = time.time() + PARK_TIMEOUT
    previous, streak = None, 0
    while time.time() < deadline:
        frames = dict((i, f) for i, f in sys._current_frames().items() if i != me)
        sample = dict((i, _stack(f, positions=True)) for i, f in frames.items())
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
            line = linecache.getline(code.co_filename, frame.f_lineno)
            return PARK_MARKER in line or SPIN_MARKER in line
        frame = frame.f_back
    return False


def _is_scenario_file(filename):
    if filename not in _scenario_file_cache:
        directory = os.path.dirname(os.path.realpath(filename))
        _scenario_file_cache[filename] = directory == SCENARIO_DIR
    return _scenario_file_cache[filename]


def _stack(frame, positions=False):
    """The frames from `frame` outwards: innermost first, as pycore lists them.

    `positions`: on 3.11+, also each frame's instruction position from
    code.co_positions() at f_lasti ([line, end_line, column, end_column]; for
    parked frames, whose instruction does not change).
    """
    frames = []
    while frame is not None:
        code = frame.f_code
        entry = {
            "function": code.co_name,
            "qualname": getattr(code, "co_qualname", None),  # Python 3.11+
            "file": code.co_filename,
            "line": frame.f_lineno,
        }
        spin = _spin_lines(code.co_filename, frame.f_lineno)
        if spin is not None:
            entry["line"] = None
            entry["line_range"] = spin
        elif positions and hasattr(code, "co_positions") and frame.f_lasti >= 0:
            table = list(code.co_positions())
            if frame.f_lasti // 2 < len(table):
                entry["positions"] = list(table[frame.f_lasti // 2])
        frames.append(entry)
        frame = frame.f_back
    return frames


def _spin_lines(filename, line):
    """[first, last] of the `# SPIN` lines around `line` of a scenario file, or None."""
    if not _is_scenario_file(filename):
        return None
    lines = linecache.getlines(filename)
    marked = lambda number: 1 <= number <= len(lines) and SPIN_MARKER in lines[number - 1]
    if not marked(line):
        return None
    first, last = line, line
    while marked(first - 1):
        first -= 1
    while marked(last + 1):
        last += 1
    return [first, last]


def python_version():
    """platform.python_version(), without importing platform (it imports threading)."""
    return sys.version.split()[0]


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


def command_line():
    """The arguments of /proc/self/cmdline (what the kernel copies into the core), as text."""
    with open("/proc/self/cmdline", "rb") as source:
        raw = source.read()
    return [arg.decode("utf-8", "replace") for arg in raw.split(b"\0")[:-1]]


def _tid_of(idents):
    return _announced[idents[0]][0] if idents else None


def _write(path, stacks, crash):
    threads = []
    for ident, frames in stacks.items():
        tid, name, exception = _announced[ident]
        threads.append(
            {"tid": tid, "name": name, "handling_exception": exception, "frames": frames}
        )
    threads.sort(key=lambda thread: thread["tid"])
    document = {
        "python_version": python_version(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cmdline": command_line(),
        "threading_imported": threading_imported(),
        "shape": build_shape(),
        "gil_enabled": gil_enabled(),
        "gil_holder": _tid_of(_gil_holder),
        "gc_collector": _tid_of(_gc_collector),
        "threads": threads,
    }
    if crash is not None:
        document["crash"] = crash
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
