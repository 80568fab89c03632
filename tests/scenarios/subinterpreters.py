"""Scenario for the subinterpreter tests: OS threads that hold thread states
in several interpreters.

Usage: python subinterpreters.py RECORD.json

- the main thread runs a subinterpreter that runs another one, nested on the
  same thread (main -> 1 -> 2), parked in the innermost;
- "sub-runner", a thread of the main interpreter, runs a subinterpreter from
  that worker thread and parks in it;
- "chain-runner" does the same nested two deep (a second chain, on a second
  thread);
- "spawner" runs a subinterpreter that starts a thread of its own,
  "sub-born" (a thread with a thread state in that subinterpreter only), and
  both park.

Every park point writes its part (subinterpreter_parts.py); once all parts
are there, a recorder thread joins them per OS thread, outermost interpreter
last, into the recording the harness compares with pycore's report: per
thread its TID, its name (where it was started), its frames innermost first
over all its interpreters with the interpreter id of each frame, and its
thread states ([interpreter id, frame count], innermost first). The recorder
then exits, so the core holds only the recorded threads.
Runs on CPython 3.8+.
"""
import json
import os
import sys
import threading
import time

import recording
import subinterpreter_parts as parts

# label -> (thread it belongs to, depth); the harness knows nothing of them.
EXPECTED_PARTS = 11


def main():
    record = sys.argv[1]
    parts_dir = record + ".parts"
    os.mkdir(parts_dir)
    pre = parts.prelude(parts_dir)

    def nested(prefix, levels):
        """Source for a chain of `levels` subinterpreters below depth 0, parked at the end."""
        code = pre + "parts.park_here(PARTS, %r, %d)\n" % ("%s-%d" % (prefix, levels), levels)
        for depth in range(levels - 1, 0, -1):
            code = pre + "parts.run_nested(PARTS, %r, %d, %r)\n" % (
                "%s-%d" % (prefix, depth),
                depth,
                code,
            )
        return code

    workers = [
        threading.Thread(
            target=parts.run_nested,
            args=(parts_dir, "runner-0", 0, nested("runner", 1)),
            name="sub-runner",
        ),
        threading.Thread(
            target=parts.run_nested,
            args=(parts_dir, "chain-0", 0, nested("chain", 2)),
            name="chain-runner",
        ),
        threading.Thread(
            target=parts.run_nested,
            args=(
                parts_dir,
                "spawner-0",
                0,
                pre
                + "parts.start_thread_and_park(PARTS, 'spawner-1', 1, 'born-0', 'sub-born')\n",
            ),
            name="spawner",
        ),
        threading.Thread(target=write_record, args=(record, parts_dir), name="recorder"),
    ]
    for worker in workers:
        worker.daemon = True
        worker.start()
    parts.run_nested(parts_dir, "main-0", 0, nested("main", 2))


def write_record(record, parts_dir):
    deadline = time.time() + recording.PARK_TIMEOUT
    while len([n for n in os.listdir(parts_dir) if n.endswith(".json")]) < EXPECTED_PARTS:
        if time.time() > deadline:
            sys.stderr.write("subinterpreters: parts so far: %r\n" % os.listdir(parts_dir))
            os._exit(70)
        time.sleep(recording.SAMPLE_INTERVAL)
    by_tid = {}
    for name in os.listdir(parts_dir):
        if name.endswith(".json"):
            with open(os.path.join(parts_dir, name)) as source:
                part = json.load(source)
            by_tid.setdefault(part["tid"], []).append(part)
    threads = []
    for tid, states in by_tid.items():
        states.sort(key=lambda part: -part["depth"])  # innermost first
        frames = []
        for part in states:
            for frame in part["frames"]:
                frames.append(dict(frame, interpreter=part["interpreter"]))
        names = [part["name"] for part in reversed(states) if part["name"] is not None]
        threads.append(
            {
                "tid": tid,
                "name": names[0] if names else None,
                "frames": frames,
                "thread_states": [[p["interpreter"], len(p["frames"])] for p in states],
            }
        )
    threads.sort(key=lambda thread: thread["tid"])
    document = {
        "python_version": recording.python_version(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cmdline": recording.command_line(),
        "threading_imported": True,
        "shape": recording.build_shape(),
        "interpreters": sorted(set(p[0] for t in threads for p in t["thread_states"])),
        "threads": threads,
    }
    with open(record + ".tmp", "w") as out:
        out.write(json.dumps(document, indent=1, sort_keys=True))
    os.rename(record + ".tmp", record)


if __name__ == "__main__":
    main()
