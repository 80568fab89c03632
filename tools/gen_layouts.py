#!/usr/bin/env python3
"""Generate per-CPython-version struct layout tables (src/python/layouts/) as Rust source.

Every number comes from the headers of the CPython build it describes: for each build we compile a
small C program that includes that build's own headers (`pythonX.Y-config --includes`, or its
`include/pythonX.Y` directory) with `-DPy_BUILD_CORE` (for `Include/internal/pycore_*.h`) and
prints `offsetof`/`sizeof` values.  We run that probe; we never run the Python interpreter.

Usage:
    python3 tools/gen_layouts.py            # discover every build, regenerate src/python/layouts/
    python3 tools/gen_layouts.py --check    # regenerate in memory; exit 1 if the files differ
    python3 tools/gen_layouts.py --python-prefix /opt/py3.12d --shape debug
    python3 tools/gen_layouts.py --include-dir /usr/include/python3.11
    python3 tools/gen_layouts.py --check --verify-pyruntime ~/.pyenv/versions/3.13.0/bin/python3.13

Inputs ("sources") are include directories.  Without --python-prefix/--include-dir, sources are
discovered: every `$(pyenv root)/versions/*/include/python*`, every `/usr/include/python3*`, and
under $PYCORE_PYTHONS (default ~/.cache/pycore-pythons) every `*/include/python*`,
`*/usr/include/python*` and `*/usr/local/include/python*` (builds installed with --prefix there,
and Debian packages unpacked there with `dpkg-deb -x`; their multiarch pyconfig.h is found by
adding `-I<dir>/usr/include`).  Each source is probed; its (major, minor, shape) picks the output
file `vM_N.rs` and the const (`RELEASE`, `DEBUG`, `FREE_THREADED`).  The shape comes from the
headers (pyconfig.h) and must match the ABI flags of the directory name (python3.14d: debug,
python3.13t: free-threaded).  When several sources give the same key (pyenv 3.11.7 and Debian's
3.11.2), the newest is used and every other one must give identical values, else we fail.

Paths under $PYENV_ROOT and $PYCORE_PYTHONS are written relative to those variables, so the output
does not depend on where they are.  Layout consts already in src/python/layouts/ whose key was not
regenerated in this run (because this machine has no headers for it) are kept verbatim, so a
single new version/shape can be added with --python-prefix without losing the others, and --check
passes on a machine that has only some of the builds.  Likewise a const generated from a newer
patch release than any here is kept if the headers here give the same values (an error if not),
and cross-checks recorded by an earlier run are kept while the values still agree.  --prune drops
kept consts instead.  A kept const that no longer matches the spec is an error: regenerate it
where its headers exist.

--verify-pyruntime ELF compares the probed 3.13+ layouts with the `_Py_DebugOffsets` that CPython
itself stores at the start of `_PyRuntime` (the `.PyRuntime` section of a python executable or
libpython): the file is read, never run.

The field spec (tools/layoutgen/spec.py) is the one source: every member pycore reads, grouped by
C struct, with its Rust type, the C expressions to try (a member that does not exist makes gcc
fail on that probe line, and that candidate is dropped) and the versions it must exist in (both a
missing and an unexpectedly present member fail loudly). From it the generator also writes
src/python/layout.rs (the Rust types) and src/python/debug_offsets_map.rs (which layout field
each `_Py_DebugOffsets` member gives); `--check` covers them too.

Modules: spec.py (the spec), handdefs.py (structs old versions do not install), probe.py (finding
builds, compiling and running the probes), render.py (Rust output, reading old tables back),
cli.py (this command). Tests: `python3 -m unittest discover -s tools -p 'test_*.py'`.

Standard library only.  Needs gcc and rustfmt.  (`--verify-pyruntime` parses ELF itself.)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layoutgen.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
