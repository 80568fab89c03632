"""Probing one CPython build: find its headers, compile a C program that prints the offsetof and
sizeof values the field spec asks for with that build's own include flags, run it (the probe,
never the interpreter), and check the result against the spec's version ranges and sizes."""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from .handdefs import HAND_DEFS, HandDef
from .spec import (ARCHES, DEBUG_OFFSETS_MEMBERS, DEBUG_OFFSETS_SINCE, DEBUG_OFFSETS_TYPE, DEBUG_RELATIVE,
                   DEBUG_TO_LAYOUT, DEBUG_ZERO_MEANS_ABSENT_UNLESS_FREE_THREADED, FIELDS, PTR,
                   GenError, Off, Size, Version, debug_offsets_candidate)

# Sources
# ---------------------------------------------------------------------------------------------


# Headers to include after Python.h, in this order, when present in the include dir.
# (frameobject.h / longintrepr.h are not pulled in by Python.h on <=3.10.)
EXTRA_HEADERS = [
    "code.h",  # 2.7: not included by Python.h
    "frameobject.h",
    "longintrepr.h",
    "internal/pystate.h",  # 3.7: _PyRuntimeState (3.8 renamed internal/ headers pycore_*)
    "internal/pycore_runtime.h",
    "internal/pycore_pystate.h",
    "internal/pycore_interp.h",
    "internal/pycore_gil.h",
    "internal/pycore_frame.h",
    "internal/pycore_code.h",
    "internal/pycore_dict.h",
    "internal/pycore_moduleobject.h",
    "internal/pycore_tstate.h",  # 3.13+: _PyThreadStateImpl
]

# Define sets to try, in order, until the headers compile.
CORE_DEFINES = [["-DPy_BUILD_CORE"], ["-DPy_BUILD_CORE", "-DPy_BUILD_CORE_MODULE"]]


@dataclasses.dataclass
class Source:
    include_dir: str  # the directory holding Python.h (what the @generated header names)
    py_version: str  # PY_VERSION from patchlevel.h
    version: Tuple[int, int, int]
    config: Optional[str]  # pythonX.Y-config shell script, if found
    expected_shape: Optional[str] = None  # from --shape
    # From the ABI flags in the directory name (python3.14d, python3.13t): checked, like --shape.
    abi_shape: Optional[str] = None
    # The machine the headers are for (ARCHES): the multiarch pyconfig.h beside them says.
    arch: str = "x86_64"

    @property
    def minor_key(self) -> Version:
        return self.version[:2]

    def label(self) -> str:
        return f"{display_path(self.include_dir)} ({self.py_version})"

    @property
    def triplet(self) -> str:
        return ARCHES[self.arch][2]


def display_path(path: str) -> str:
    """`path` as written into the generated files: under $PYCORE_PYTHONS or $PYENV_ROOT, relative
    to that variable, so that the files do not depend on where those trees are on a machine."""
    for var, root in (("$PYCORE_PYTHONS", pycore_pythons_root()), ("$PYENV_ROOT", pyenv_root())):
        for r in sorted({os.path.normpath(os.path.abspath(root)), os.path.realpath(root)}):
            if path == r or path.startswith(r + os.sep):
                return var + path[len(r):]
    return path


def display_flags(flags: Sequence[str]) -> str:
    return " ".join("-I" + display_path(os.path.normpath(f[2:])) if f.startswith("-I") else f
                    for f in flags)


def read_patchlevel(include_dir: str) -> Tuple[str, Tuple[int, int, int]]:
    path = os.path.join(include_dir, "patchlevel.h")
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()

    def num(name):
        m = re.search(rf"^#define\s+{name}\s+(\d+)", text, re.M)
        if not m:
            raise GenError(f"{path}: no {name}")
        return int(m.group(1))

    m = re.search(r'^#define\s+PY_VERSION\s+"([^"]+)"', text, re.M)
    if not m:
        raise GenError(f"{path}: no PY_VERSION")
    return m.group(1), (num("PY_MAJOR_VERSION"), num("PY_MINOR_VERSION"), num("PY_MICRO_VERSION"))


def is_shell_script(path: str) -> bool:
    """True for a `#!/bin/sh`-style script: we may run those, never a Python interpreter."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(200).decode("ascii", "replace").strip()
    except OSError:
        return False
    if not first.startswith("#!"):
        return False
    words = first[2:].split()
    if not words:
        return False
    interp = os.path.basename(words[0])
    if interp == "env" and len(words) > 1:
        interp = os.path.basename(words[1])
    return interp in ("sh", "bash", "dash")


def source_from_include_dir(include_dir: str, expected_shape: Optional[str] = None) -> Source:
    include_dir = os.path.normpath(os.path.abspath(include_dir))
    if not os.path.isfile(os.path.join(include_dir, "Python.h")):
        raise GenError(f"{include_dir}: no Python.h")
    py_version, version = read_patchlevel(include_dir)
    # <prefix>/include/python3.11[m|d|t] -> <prefix>/bin/python3.11[m|d|t]-config (Debian also
    # ships only <prefix>/bin/x86_64-linux-gnu-python3.14-config for some of them).
    prefix = os.path.dirname(os.path.dirname(include_dir))
    name = os.path.basename(include_dir)
    arch = headers_arch(include_dir)
    config = None
    # Another machine's config script names that machine's paths (/usr/include), not these.
    for cand in (f"{name}-config", f"{multiarch()}-{name}-config") if arch == host_arch() else ():
        if os.path.exists(os.path.join(prefix, "bin", cand)):
            config = os.path.join(prefix, "bin", cand)
            break
    m = re.fullmatch(r"python\d+\.\d+([a-z]*)", name)
    abi = m.group(1) if m else ""
    abi_shape = "free-threaded" if "t" in abi else "debug" if "d" in abi else "release"
    return Source(include_dir, py_version, version, config, expected_shape,
                  abi_shape if m else None, arch)


def host_arch() -> str:
    """The machine this generator runs on (and compiles for with plain gcc)."""
    triplet = multiarch()
    return next((a for a, spec in ARCHES.items() if spec[2] == triplet), "x86_64")


def headers_arch(include_dir: str) -> str:
    """The machine of an unpacked Debian build's headers: its multiarch pyconfig.h
    (<root>/aarch64-linux-gnu/python3.11/pyconfig.h); this machine's otherwise."""
    root = os.path.dirname(include_dir)
    name = os.path.basename(include_dir)
    found = [a for a, spec in ARCHES.items()
             if os.path.isfile(os.path.join(root, spec[2], name, "pyconfig.h"))]
    if len(found) == 1:
        return found[0]
    return host_arch()


_MULTIARCH: List[str] = []


def multiarch() -> str:
    """The compiler's target triplet (Debian's multiarch directory name): x86_64-linux-gnu."""
    if not _MULTIARCH:
        try:
            out = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True,
                                 timeout=60)
            _MULTIARCH.append(out.stdout.strip() if out.returncode == 0 else "")
        except OSError:
            _MULTIARCH.append("")
    return _MULTIARCH[0]


@functools.lru_cache(maxsize=None)
def pyenv_root() -> str:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    exe = shutil.which("pyenv")
    if exe and is_shell_script(exe):
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser("~/.pyenv")


def include_dirs_under(prefix: str) -> List[str]:
    return sorted(d for d in glob.glob(os.path.join(prefix, "include", "python*"))
                  if os.path.isfile(os.path.join(d, "Python.h")))


def pycore_pythons_root() -> str:
    return os.environ.get("PYCORE_PYTHONS") or os.path.expanduser("~/.cache/pycore-pythons")


def discover() -> List[str]:
    dirs: List[str] = []
    for version_dir in sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*"))):
        if os.path.islink(version_dir):
            continue  # pyenv aliases point at a real version directory, found on its own
        dirs.extend(include_dirs_under(version_dir))
    # $PYCORE_PYTHONS (default ~/.cache/pycore-pythons): builds installed with --prefix=<dir>
    # (<dir>/include/python3.13t) and unpacked .debs (<dir>/usr/include/python3.14d).
    for prefix in sorted(glob.glob(os.path.join(pycore_pythons_root(), "*"))):
        for sub in ("", "usr", os.path.join("usr", "local")):
            if os.path.isdir(os.path.join(prefix, sub)):
                dirs.extend(include_dirs_under(os.path.join(prefix, sub)))
    # Distribution pythons (Debian: /usr/include/python3.11, multiarch pyconfig.h found through
    # the compiler's default /usr/include).
    dirs.extend(sorted(d for d in glob.glob("/usr/include/python3*")
                       if os.path.isfile(os.path.join(d, "Python.h"))))
    return dirs


def include_flags(src: Source) -> List[str]:
    """The build's own include flags: `pythonX.Y-config --includes`, else -I<include dir>."""
    if src.config and is_shell_script(src.config):
        out = subprocess.run([src.config, "--includes"], capture_output=True, text=True,
                             env=dict(os.environ, LC_ALL="C"), timeout=60)
        if out.returncode != 0:
            raise GenError(f"{src.config} --includes failed: {out.stderr.strip()}")
        flags: List[str] = []
        for word in shlex.split(out.stdout):
            if word.startswith("-I") and word not in flags:
                flags.append(word)
        dirs = [os.path.realpath(f[2:]) for f in flags]
        if os.path.realpath(src.include_dir) not in dirs:
            raise GenError(f"{src.config} --includes gives {flags}, which does not contain "
                           f"{src.include_dir}: config script and headers disagree")
        # Config scripts print resolved paths (`pwd -P`); name the include dir as we found it.
        flags = ["-I" + src.include_dir if d == os.path.realpath(src.include_dir) else f
                 for f, d in zip(flags, dirs)]
    else:
        flags = ["-I" + src.include_dir]
    # Debian's pyconfig.h is a wrapper: #include <x86_64-linux-gnu/python3.14d/pyconfig.h>,
    # found through the default /usr/include.  For headers unpacked elsewhere, add their root.
    root = os.path.dirname(src.include_dir)
    arch_cfg = os.path.join(root, src.triplet, os.path.basename(src.include_dir), "pyconfig.h")
    if (src.triplet and root not in ("/usr/include", "/usr/local/include")
            and os.path.isfile(arch_cfg) and "-I" + root not in flags):
        flags.append("-I" + root)
    return flags


# ---------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------

PROBE_HEAD = """\
/* Generated by tools/gen_layouts.py: prints offsetof/sizeof values for one CPython build. */
#include "Python.h"
{includes}
#include <stddef.h>
#include <stdio.h>

{hand_defs}
#if defined(Py_GIL_DISABLED)
#  define PROBE_SHAPE "free-threaded"
#elif defined(Py_DEBUG)
#  define PROBE_SHAPE "debug"
#else
#  define PROBE_SHAPE "release"
#endif
#if defined(Py_TRACE_REFS)
#  define PROBE_TRACE_REFS 1
#else
#  define PROBE_TRACE_REFS 0
#endif

#define P(id, expr) printf("%s %zu\\n", id, (size_t)(expr))

int main(void) {{
    printf("meta shape %s\\n", PROBE_SHAPE);
    printf("meta trace_refs %d\\n", PROBE_TRACE_REFS);
    printf("meta version %s\\n", PY_VERSION);
    printf("meta sizeof_void_p %zu\\n", sizeof(void *));
/* PROBES */
"""

PROBE_TAIL = """\
    return 0;
}
"""


@dataclasses.dataclass
class Value:
    value: Optional[int]
    comment: str  # the C expression it came from, or why it is None / defaulted


@dataclasses.dataclass
class ProbeResult:
    source: Source
    shape: str
    flags: List[str]
    values: Dict[str, Value]
    # DebugOffsetsLayout members, or None when the headers have no _Py_DebugOffsets.
    debug: Optional[Dict[str, Value]]
    hand_defined: List[str]


def run(cmd: Sequence[str], cwd: str, verbose: bool) -> subprocess.CompletedProcess:
    if verbose:
        print("  $ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, LC_ALL="C"))


def installed_headers_text(include_dir: str) -> str:
    chunks = []
    for path in sorted(glob.glob(os.path.join(include_dir, "**", "*.h"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as fh:
            chunks.append(fh.read())
    return "\n".join(chunks)


def hand_defs_for(src: Source) -> List[HandDef]:
    headers = installed_headers_text(src.include_dir)
    used = []
    for key in sorted({hd.key for hd in HAND_DEFS}):
        defs = [hd for hd in HAND_DEFS if hd.key == key]
        installed = re.search(defs[0].installed_re, headers) is not None
        mine = [hd for hd in defs if src.minor_key in hd.versions]
        if mine:
            if installed:
                raise GenError(f"{src.label()}: {key} is hand-defined for this version but "
                               f"the installed headers define it; drop the hand definition")
            used.append(mine[0])
        elif not installed and src.minor_key >= defs[0].needed_since:
            raise GenError(f"{src.label()}: no installed header defines the struct from {key} "
                           f"and there is no hand definition for {src.minor_key}")
    return used


def probe(src: Source, workdir: str, verbose: bool) -> ProbeResult:
    flags = include_flags(src)
    hand = hand_defs_for(src)
    hand_types = {t for hd in hand for t in hd.types}
    tag = "v" + src.py_version
    includes = "\n".join(f'#include "{h}"' for h in EXTRA_HEADERS
                         if os.path.isfile(os.path.join(src.include_dir, h)))
    head = PROBE_HEAD.format(includes=includes,
                             hand_defs="\n".join(hd.template.format(tag=tag) for hd in hand))

    # One probe line per (field, candidate); line number -> (field, candidate index).
    lines: List[Tuple[str, int, str]] = []
    for f in FIELDS:
        for i, cand in enumerate(f.candidates):
            pid = f"{f.name}#{i}"
            stmt = f'P("{pid}", {cand.expr()});'
            if f.size is not None and isinstance(cand, Off):
                stmt += f' P("{pid}#size", {cand.size_expr()});'
            lines.append((f.name, i, "    " + stmt))
    lines.append(("debug_offsets", 0,
                  f'    P("dbg:@present", {Size(DEBUG_OFFSETS_TYPE).expr()});'))
    for name, _ in DEBUG_OFFSETS_MEMBERS:
        cand = debug_offsets_candidate(name)
        stmt = f'P("dbg:{name}", {cand.expr()});'
        if isinstance(cand, Off):
            stmt += f' P("dbg:{name}#size", {cand.size_expr()});'
        lines.append(("debug_offsets", 0, "    " + stmt))

    c_path = os.path.join(workdir, "probe.c")
    exe = os.path.join(workdir, "probe")
    head_lines = head.count("\n")
    active = list(range(len(lines)))
    defines_used = None
    _, _, _, compiler, runner = ARCHES[src.arch]
    base = [compiler, "-std=gnu11", "-O0", "-w", "-fno-diagnostics-color",
            "-fno-diagnostics-show-caret", "-o", exe, c_path]

    # First make sure the headers compile at all, picking the define set.
    with open(c_path, "w") as fh:
        fh.write(head + PROBE_TAIL)
    errors = []
    for defines in CORE_DEFINES:
        r = run(base + flags + defines, workdir, verbose)
        if r.returncode == 0:
            defines_used = defines
            break
        errors.append(r.stderr)
    if defines_used is None:
        raise GenError(f"{src.label()}: headers do not compile with {flags}:\n" + errors[-1])

    # Then drop candidates gcc rejects until the probe compiles.
    err_re = re.compile(r"^" + re.escape(c_path) + r":(\d+):\d+: error:", re.M)
    for _ in range(len(lines) + 1):
        with open(c_path, "w") as fh:
            fh.write(head)
            for idx in active:
                fh.write(lines[idx][2] + "\n")
            fh.write(PROBE_TAIL)
        r = run(base + flags + defines_used, workdir, verbose)
        if r.returncode == 0:
            break
        bad_lines = {int(m.group(1)) for m in err_re.finditer(r.stderr)}
        bad = set()
        for ln in bad_lines:
            k = ln - head_lines - 1
            if not 0 <= k < len(active):
                raise GenError(f"{src.label()}: probe error outside the probe lines:\n{r.stderr}")
            bad.add(active[k])
        if not bad:
            raise GenError(f"{src.label()}: probe failed to build:\n{r.stderr}")
        active = [i for i in active if i not in bad]
    else:
        raise GenError(f"{src.label()}: probe never compiled")

    r = run(runner + [exe], workdir, verbose)
    if r.returncode != 0:
        raise GenError(f"{src.label()}: probe exited {r.returncode}: {r.stderr}")
    raw: Dict[str, str] = {}
    for line in r.stdout.splitlines():
        if line.startswith("meta "):
            k, _, val = line[5:].partition(" ")
            k = "meta:" + k
        else:
            k, _, val = line.partition(" ")
        raw[k] = val

    if raw["meta:version"] != src.py_version:
        raise GenError(f"{src.label()}: compiled PY_VERSION is {raw['meta:version']}; the include "
                       f"flags {flags} pick up another version's headers")
    if raw["meta:sizeof_void_p"] != str(PTR):
        raise GenError(f"{src.label()}: sizeof(void *) = {raw['meta:sizeof_void_p']}, expected {PTR}")
    shape = raw["meta:shape"]
    if src.expected_shape and src.expected_shape != shape:
        raise GenError(f"{src.label()}: --shape {src.expected_shape} given, but the headers "
                       f"(pyconfig.h) describe a {shape} build")
    if src.abi_shape and src.abi_shape != shape:
        raise GenError(f"{src.label()}: the directory name says {src.abi_shape}, but the headers "
                       f"(pyconfig.h, with flags {flags}) describe a {shape} build")

    values: Dict[str, Value] = {}
    problems: List[str] = []
    v = src.minor_key
    for f in FIELDS:
        found = None
        for i, cand in enumerate(f.candidates):
            pid = f"{f.name}#{i}"
            if pid in raw:
                found = (i, cand, int(raw[pid]))
                if f.size is not None and isinstance(cand, Off):
                    got = int(raw[pid + "#size"])
                    if got != f.size:
                        problems.append(f"{f.name}: sizeof({cand.ctype}.{cand.member}) is {got}, "
                                        f"expected {f.size}")
                break
        if found:
            _, cand, n = found
            comment = cand.expr()
            if cand.ctype in hand_types:
                comment += ", hand-defined struct"
            values[f.name] = Value(n, comment)
        else:
            values[f.name] = Value(None, "")
        # The requires-chain refers to earlier-or-later fields; resolved below.

    for f in FIELDS:
        if f.requires and values[f.name].value is not None and values[f.requires].value is None:
            values[f.name] = Value(None, f"None: {values[f.name].comment} exists, but "
                                            f"{f.requires} is None")

    for f in FIELDS:
        expected = ((f.since is None or v >= f.since) and (f.until is None or v < f.until)
                    and (f.shapes is None or shape in f.shapes))
        have = values[f.name].value is not None
        if expected and not have:
            tried = ", ".join(c.expr() for c in f.candidates)
            problems.append(f"{f.name}: expected on {v[0]}.{v[1]} but none of [{tried}] compiles")
        elif have and not expected:
            problems.append(f"{f.name}: {values[f.name].comment} exists on {v[0]}.{v[1]}, "
                            f"outside its expected range since={f.since} until={f.until}")
        if not have and f.absent is not None and (f.absent_since is None
                                                   or v >= f.absent_since):
            values[f.name] = Value(f.absent, f.absent_why)

    debug: Optional[Dict[str, Value]] = None
    have = "dbg:@present" in raw
    if have != (v >= DEBUG_OFFSETS_SINCE):
        problems.append(f"{DEBUG_OFFSETS_TYPE} {'exists' if have else 'is missing'} on "
                        f"{v[0]}.{v[1]}; expected since {DEBUG_OFFSETS_SINCE}")
    if have:
        debug = {}
        for name, required in DEBUG_OFFSETS_MEMBERS:
            cand = debug_offsets_candidate(name)
            if f"dbg:{name}" not in raw:
                if required:
                    problems.append(f"DebugOffsetsLayout.{name} is u32 but {cand.expr()} "
                                    f"does not compile")
                debug[name] = Value(None, "")
                continue
            if isinstance(cand, Off) and raw[f"dbg:{name}#size"] != "8":
                problems.append(f"DebugOffsetsLayout.{name}: {cand.size_expr()} is "
                                f"{raw[f'dbg:{name}#size']}, expected 8 (uint64_t)")
            debug[name] = Value(int(raw[f"dbg:{name}"]), cand.expr())

    if shape == "release" and values["object.ob_type"].value != 8:
        problems.append(f"release build with offsetof(PyObject, ob_type) = "
                        f"{values['object.ob_type'].value} (Py_TRACE_REFS={raw['meta:trace_refs']})")
    if problems:
        raise GenError(f"{src.label()}: field spec and headers disagree (update FIELDS in "
                       f"tools/layoutgen/spec.py):\n  " + "\n  ".join(problems))
    return ProbeResult(src, shape, flags + defines_used, values, debug, [hd.key for hd in hand])


def elf_section(path: str, name: str) -> bytes:
    """The contents of section `name` of a 64-bit little-endian ELF file (read, never run)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise GenError(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sh(i):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    strtab = sh(shstrndx)
    for i in range(shnum):
        s_name, s_type, _, _, s_off, s_size = sh(i)
        end = data.index(b"\0", strtab[4] + s_name)
        if data[strtab[4] + s_name:end].decode("ascii", "replace") == name:
            if s_type == 8:  # SHT_NOBITS
                raise GenError(f"{path}: {name} has no file contents")
            return data[s_off:s_off + s_size]
    raise GenError(f"{path}: no {name} section")


def verify_pyruntime(path: str, results: List[ProbeResult]) -> bool:
    """Compare the probed layouts with the initial _Py_DebugOffsets in `path`'s .PyRuntime."""
    sec = elf_section(path, ".PyRuntime")
    if sec[:8] != b"xdebugpy":
        raise GenError(f"{path}: .PyRuntime does not start with the _Py_DebugOffsets cookie")
    hexversion, = struct.unpack_from("<Q", sec, 8)
    major, minor = hexversion >> 24, (hexversion >> 16) & 0xFF
    micro = (hexversion >> 8) & 0xFF
    cands = [r for r in results if r.source.minor_key == (major, minor) and r.debug is not None]
    if not cands:
        print(f"verify {path}: {major}.{minor}.{micro}: no probed headers for that version")
        return False
    ok = True
    for res in cands:
        ft_off = res.debug.get("free_threaded")
        if ft_off is not None and ft_off.value is not None:
            ft, = struct.unpack_from("<Q", sec, ft_off.value)
            if bool(ft) != (res.shape == "free-threaded"):
                continue  # a free-threaded binary is only compared with free-threaded headers
        bad, checked = [], 0
        for dname, lname in DEBUG_TO_LAYOUT.items():
            if dname not in res.debug or res.debug[dname].value is None:
                continue
            stored, = struct.unpack_from("<Q", sec, res.debug[dname].value)
            what = f"{DEBUG_OFFSETS_TYPE}.{dname} = {stored}"
            base = DEBUG_RELATIVE.get(dname)
            if base is not None:
                if base not in res.debug or res.debug[base].value is None:
                    continue
                base_value, = struct.unpack_from("<Q", sec, res.debug[base].value)
                stored -= base_value
                what += f" - {base} {base_value}"
            if (dname in DEBUG_ZERO_MEANS_ABSENT_UNLESS_FREE_THREADED and res.shape != "free-threaded"
                    and stored == 0):
                stored = None
            mine = res.values[lname].value
            checked += 1
            if stored != mine:
                bad.append(f"{lname} = {mine}, but {what}")
        label = f"{major}.{minor}.{micro} {res.shape} ({res.source.label()})"
        if bad:
            ok = False
            print(f"verify {path}: {label}: {len(bad)} of {checked} DISAGREE:\n  "
                  + "\n  ".join(bad))
        else:
            print(f"verify {path}: {label}: all {checked} offsets agree")
    return ok


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


