#!/usr/bin/env python3
"""Reduce a crashing fuzz input to the fewest bytes that differ from a seed of the same length.

Usage: reduce_crash.py CRASH SEED OUT [--pycore BIN] [-- EXTRA-ARGS...]

Runs `BIN analyze FILE --no-source EXTRA-ARGS` (default BIN: target/debug/pycore, whose
overflow checks are on like the fuzz build's) and keeps a candidate when its standard error
still names the same "internal error at FILE:LINE" as CRASH does (a timeout counts as the same
failure when CRASH timed out). Differing bytes are reverted to the seed's in halving chunks
(ddmin-style); what remains is written to OUT, and the patch (offset: seed byte -> crash byte)
is printed, so a report can name the few bytes that matter. Standard library only.
"""
import re
import subprocess
import sys
import tempfile

TIMEOUT = 20


def signature(pycore, path, extra):
    try:
        run = subprocess.run([pycore, "analyze", path, "--no-source"] + extra,
                             capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout"
    m = re.search(rb"internal error at (\S+?:\d+)", run.stderr)
    if m:
        return m.group(1).decode()
    if run.returncode < 0 or run.returncode in (70, 101):
        return f"exit {run.returncode}"
    return None


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1 :]
    pycore = "target/debug/pycore"
    if "--pycore" in args:
        i = args.index("--pycore")
        pycore = args[i + 1]
        del args[i : i + 2]
    crash_path, seed_path, out_path = args
    crash, seed = open(crash_path, "rb").read(), open(seed_path, "rb").read()
    assert len(crash) == len(seed), "the seed must have the crash's length (else use cargo fuzz tmin)"
    want = signature(pycore, crash_path, extra)
    assert want, "the input does not crash pycore"
    print(f"failure: {want}", file=sys.stderr)
    diffs = [i for i in range(len(seed)) if seed[i] != crash[i]]
    tmp = tempfile.NamedTemporaryFile(delete=False)
    tmp.close()

    def fails(keep):
        data = bytearray(seed)
        for i in keep:
            data[i] = crash[i]
        open(tmp.name, "wb").write(data)
        return signature(pycore, tmp.name, extra) == want

    keep, chunk = diffs, max(1, len(diffs) // 2)
    while True:
        i, changed = 0, False
        while i < len(keep):
            trial = keep[:i] + keep[i + chunk :]
            if fails(trial):
                keep, changed = trial, True
            else:
                i += chunk
        if chunk == 1 and not changed:
            break
        chunk = max(1, chunk // 2)
    data = bytearray(seed)
    for i in keep:
        data[i] = crash[i]
    open(out_path, "wb").write(data)
    print(f"{len(diffs)} differing bytes -> {len(keep)}", file=sys.stderr)
    for i in keep:
        print(f"  {i:#x}: {seed[i]:#04x} -> {crash[i]:#04x}")


if __name__ == "__main__":
    main()
