# -*- coding: utf-8 -*-
"""The marker lines this interpreter's own traceback module draws under source lines, for the
unit test of src/anchors.rs (`markers_match_each_interpreters_traceback`).

Usage: python traceback_markers.py DIR

Writes one function per snippet into DIR/snippets.py, each failing on its snippet's line, calls
each, and prints JSON: {"version": "3.12.1", "frames": [{"raw", "lineno", "end_lineno",
"colno", "end_colno", "markers"}]}, "markers" being the line under the source line as
`traceback.StackSummary.format_frame_summary` draws it (without the 4 spaces of indentation),
or null when it draws none. Runs on 3.11+.
"""
import importlib.util
import json
import os
import sys
import traceback

PRELUDE = '''# -*- coding: utf-8 -*-
a = 1
b = None
z = 0
d = {}
k = "k"
items = [1, 2]


def fail(*args):
    raise ValueError("fail")


def foo(x):
    return x


class O(object):
    def fail(self, *args):
        raise ValueError("fail")


obj = O()
'''

# Each fails on its own line, in the frame of the function holding it.
SNIPPETS = [
    "x = a + b",
    "return a + b",
    "x = (a) + b",
    "x = a+b",
    "x = a  +  b",
    "x = a ** b",
    "x = a // z",
    "x = a / (z - z)",
    "x = (a + a) * b",
    "x = a * b + a",
    "x = a + a + b",
    "x = a.real + b",
    "return (a + b)",
    "x = a + b  # comment",
    "y = 1; x = a + b",
    "x = d['missing']",
    "x = d[k]",
    "x = items[5]",
    "x = items [ 5 ]",
    "x = d[a + a]",
    "x = d['a' 'b']",
    "x = b[0]",
    "x = d[k][0]",
    "fail()",
    "x = fail()",
    "return fail()",
    "x = obj.fail(1)",
    "obj.fail(1, 2)",
    "x = foo(a) + fail(b)",
    "x = foo(fail(a))",
    "x = [fail()]",
    "if fail(): pass",
    "x = fail() if a else b",
    "x = not fail()",
    "x = -b",
    "x, y = fail()",
    "x = y = fail()",
    "x: int = fail()",
    "assert fail()",
    "x = (fail)(1)",
    "x = fail (a)",
    "x = lambda: 1; fail()",
    "with fail(): pass",
    "for i in fail(): pass",
    "x = f'{a}' + b",
    "x = f'{d[k]!r:>{a}}' + b",
    "x = '\u00e9' + b",
    "x = b + '\u00e9t\u00e9'",
    "x = '\u7ebf\u7ebf' + b",
    "x = '\u7ebf' + fail()",
    "x = {'\u00e9': 1}['missing']",
    "x = a + b   ",
    "x = a + (\tb)",
    "x = 'e\u0301' + b",
    "x = items[a:5][9]",
    "x = (items)[9]",
    "x = items[(9)]",
    "x = d [k]",
    "x = (a) + (b)",
    "return (fail)(a)",
    "return obj.fail()",
    "x = a if fail() else b",
    "x = [i for i in fail()]",
    "x = a << b",
    "x = a @ b",
    "x = a - - b",
]


def main():
    directory = sys.argv[1]
    path = os.path.join(directory, "snippets.py")
    with open(path, "w", encoding="utf-8") as out:
        out.write(PRELUDE)
        for index, snippet in enumerate(SNIPPETS):
            out.write("\n\ndef t%d():\n    %s\n" % (index, snippet))
            # The same, indented deeper.
            out.write("\n\ndef u%d():\n    if True:\n            %s\n" % (index, snippet))
    spec = importlib.util.spec_from_file_location("snippets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(path, encoding="utf-8") as source:
        lines = source.read().splitlines()
    frames = []
    summary = traceback.StackSummary()
    for index in range(len(SNIPPETS)):
        for prefix in ("t", "u"):
            name = "%s%d" % (prefix, index)
            try:
                getattr(module, name)()
            except Exception as error:
                stack = traceback.extract_tb(error.__traceback__)
            else:
                raise SystemExit("%s did not fail" % name)
            frame = next(f for f in stack if f.name == name)
            text = summary.format_frame_summary(frame).split("\n")
            markers = text[2][4:] if len(text) > 2 and text[2].strip() else None
            frames.append({
                "raw": lines[frame.lineno - 1],
                "lineno": frame.lineno,
                "end_lineno": frame.end_lineno,
                "colno": frame.colno,
                "end_colno": frame.end_colno,
                "markers": markers,
            })
    version = "%d.%d.%d" % sys.version_info[:3]
    json.dump({"version": version, "frames": frames}, sys.stdout)


if __name__ == "__main__":
    main()
