"""gdb's view of every thread's native stack, for tests/native.rs (the oracle).

Run as `gdb -batch -nx -x gdb_frames.py PYTHON CORE`: prints one line,
`PYCORE-GDB-FRAMES {json}`, mapping each thread's LWP to its frames, innermost
first: `pc` (what frame.pc() gives: the pc of the innermost frame and of a
frame a signal interrupted, the return address of the others), `name` (null
when gdb has no symbol), and `kind` ("normal", "inline", "sigtramp", ...).
"""
import json

import gdb

KINDS = {
    gdb.NORMAL_FRAME: "normal",
    gdb.INLINE_FRAME: "inline",
    gdb.SIGTRAMP_FRAME: "sigtramp",
    gdb.TAILCALL_FRAME: "tailcall",
}

gdb.execute("set pagination off")
threads = {}
for inferior in gdb.inferiors():
    for thread in inferior.threads():
        thread.switch()
        frames = []
        frame = gdb.newest_frame()
        while frame is not None and len(frames) < 10000:
            try:
                name = frame.name()
            except gdb.error:
                name = None
            frames.append(
                {"pc": frame.pc(), "name": name, "kind": KINDS.get(frame.type(), "other")}
            )
            try:
                frame = frame.older()
            except gdb.error:
                break
        threads[str(thread.ptid[1])] = frames
print("PYCORE-GDB-FRAMES " + json.dumps(threads))
