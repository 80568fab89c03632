#!/usr/bin/env python3
"""Inclusive share of a perf profile's samples per function: what docs/performance.md quotes.

    cargo build --profile profiling
    perf record -F 20000 -g --call-graph dwarf -o OUT.data \\
        target/profiling/pycore analyze CORE --python BIN [--native-all | --locals] >/dev/null
    perf script -i OUT.data | python3 bench/perf_share.py source::annotate walk_interpreter_frames ...

For each NAME: the share of all samples whose call stack holds a frame containing NAME
(so nested functions overlap, and the shares do not add up to 100 %).  With --leaves NAME:
the leaf functions of the samples under NAME, largest first.
"""

import argparse
import collections
import re
import sys


def samples(text):
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if len(lines) < 2:
            continue
        # "\t    55d0c1 pycore::anchors::tokenize+0x2c (/path/pycore)" -> "pycore::anchors::tokenize"
        yield [re.sub(r"\+0x[0-9a-f]+$", "", re.sub(r"\s+\(.*\)$", "", l.strip().split(" ", 1)[-1]))
               for l in lines[1:]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--leaves", help="list the leaf functions of the samples under this name")
    args = ap.parse_args()
    all_samples = list(samples(sys.stdin.read()))
    total = len(all_samples) or 1
    print("%d samples" % len(all_samples))
    for name in args.names:
        n = sum(1 for s in all_samples if any(name in f for f in s))
        print("%5.1f %%  %s" % (100.0 * n / total, name))
    if args.leaves:
        leaves = collections.Counter(s[0] for s in all_samples if any(args.leaves in f for f in s))
        for leaf, n in leaves.most_common(12):
            print("%5.1f %%  %s (leaf under %s)" % (100.0 * n / total, leaf[:120], args.leaves))


if __name__ == "__main__":
    sys.exit(main())
