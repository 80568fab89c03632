"""Rendering the spec and the probed values as Rust: src/python/layout.rs (the types),
src/python/debug_offsets_map.rs (the `_Py_DebugOffsets` mapping) and one const per version and
shape in src/python/layouts/; and reading previously generated tables back (to keep those whose
headers this machine lacks)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from typing import List, Optional, Sequence, Tuple

from .probe import ProbeResult, Value
from .spec import (ARCH_ORDER, ARCHES, WALK_MEMBERS, BEHAVIOURS, DEBUG_OFFSETS_MEMBERS, DEBUG_READS_AS_RELEASE_SINCE,
                   DEBUG_RELATIVE, DEBUG_TO_LAYOUT, DEBUG_ZERO_MEANS_ABSENT_UNLESS_FREE_THREADED,
                   FIELDS, GROUPS, SHAPE_ORDER, SHAPES, GenError, debug_offsets_candidate)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT_NAME = "tools/gen_layouts.py"
SPEC_NAME = "tools/layoutgen/spec.py"


@dataclasses.dataclass
class Entry:
    """One `pub const <SHAPE>: Layout` in a vM_N.rs file."""

    major: int
    minor: int
    shape: str
    source_label: str
    cross_checked: List[str]
    text: str  # rendered const block, starting at its `// source:` comment
    arch: str = "x86_64"

    @property
    def key(self):
        return (self.major, self.minor, ARCH_ORDER.index(self.arch), SHAPE_ORDER.index(self.shape))

    @property
    def table(self):
        """What a table is of: (major, minor, shape, arch)."""
        return (self.major, self.minor, self.shape, self.arch)

    @property
    def const(self) -> str:
        return const_name(self.shape, self.arch)


def const_name(shape: str, arch: str) -> str:
    """`RELEASE`, `DEBUG_AARCH64`: the shape's name, and the machine's unless it is x86_64."""
    return SHAPES[shape][1] + ARCHES[arch][1]


def field_value(f, val: Value, what: str) -> str:
    if val.value is None:
        if not f.optional:
            raise GenError(f"{what} is required by the spec but absent here")
        return "None"
    inner = str(val.value) if f.ty == "offset" else f"Field::at({val.value})"
    return f"Some({inner})" if f.optional else inner


def debug_value(val: Value, required: bool, what: str) -> str:
    if val.value is None:
        if required:
            raise GenError(f"{what} is required by the spec but absent here")
        return "None"
    return str(val.value) if required else f"Some({val.value})"


def label_sort_key(label: str):
    """Order of cross-checked labels `<include dir> (<PY_VERSION>)`: newest first, then by dir."""
    m = re.fullmatch(r"(.*) \((\d+)\.(\d+)\.(\d+)[^)]*\)", label)
    if not m:
        return (0, 0, 0, label)
    return (-int(m.group(2)), -int(m.group(3)), -int(m.group(4)), m.group(1))


def render_entry(res: ProbeResult, others: List[ProbeResult],
                 earlier_cross: Sequence[str] = ()) -> Entry:
    """`earlier_cross`: labels that a previous run (maybe on another machine) cross-checked."""
    src = res.source
    major, minor = src.minor_key
    variant = SHAPES[res.shape][0]
    const = const_name(res.shape, src.arch)
    out = [f"// source: {src.label()}"]
    crossed = sorted({o.source.label() for o in others} | set(earlier_cross), key=label_sort_key)
    for c in crossed:
        out.append(f"// cross-checked: {c}")
    out.append(f"// flags: {display_flags(res.flags)}")
    for hd in res.hand_defined:
        out.append(f"// hand-defined in tools/layoutgen/handdefs.py (not installed): "
                   f"https://github.com/python/cpython/blob/v{src.py_version}/{hd}")
    out.append(f"/// CPython {major}.{minor}, {res.shape} build, {src.arch}.")
    out.append(f"pub const {const}: Layout = Layout {{")
    out.append(f"    major: {major},")
    out.append(f"    minor: {minor},")
    out.append(f"    shape: Shape::{variant},")
    out.append(f"    arch: Arch::{ARCHES[src.arch][0]},")
    for b in BEHAVIOURS:
        out.append(f"    {b.name}: {b.value((major, minor), res.shape)},")
    for g in GROUPS:
        out.append(f"    {g.name}: {g.rust} {{")
        for f in FIELDS:
            if f.group != g.name:
                continue
            val = res.values[f.name]
            if val.comment:
                out.append(f"        // {val.comment}")
            out.append(f"        {f.member}: {field_value(f, val, f'{src.label()}: {f.name}')},")
        out.append("    },")
    if res.debug is None:
        out.append("    debug_offsets: None,")
    else:
        out.append("    debug_offsets: Some(DebugOffsetsLayout {")
        for name, required in DEBUG_OFFSETS_MEMBERS:
            val = res.debug[name]
            if val.comment:
                out.append(f"        // {val.comment}")
            out.append(f"        {name}: {debug_value(val, required, f'{src.label()}: {name}')},")
        out.append("    }),")
    out.append("};")
    return Entry(major, minor, res.shape, src.label(), crossed, "\n".join(out) + "\n", src.arch)


def display_flags(flags) -> str:
    from .probe import display_flags as probe_display_flags
    return probe_display_flags(flags)


def entry_field_names(text: str) -> Tuple[List[str], List[str]]:
    """(Layout members, members of its groups and of DebugOffsetsLayout) named in a const block."""
    nested = []
    in_group = False
    for line in text.splitlines():
        # Members of the groups (`object: ObjectLayout {`) and of `DebugOffsetsLayout`, not the
        # lines of a behaviour's value rustfmt spread over several lines
        # (`managed_dict: ManagedDict::InlineValues {`, `dict_words_before: 1,`).
        if re.fullmatch(r"    \w+: (\w+Layout|Some\(DebugOffsetsLayout) \{", line):
            in_group = True
            continue
        if re.fullmatch(r"    \}\)?,", line):
            in_group = False
            continue
        member = re.match(r"        (\w+):", line)
        # rustfmt puts a group of one short member on one line: `int: IntLayout { ob_ival: None },`.
        one_line = re.fullmatch(r"    \w+: \w+Layout \{ (.*) \},", line)
        if member and in_group:
            nested.append(member.group(1))
        elif one_line:
            nested += re.findall(r"(\w+): ", one_line.group(1))
    return (re.findall(r"^    (\w+):", text, re.M), nested)


def entry_values(text: str) -> List[Tuple[str, str]]:
    """(indented member, value) pairs of a rendered const block, comments dropped."""
    return re.findall(r"^( +\w+): (.*),$", text, re.M)


def expected_field_names(with_debug: bool) -> Tuple[List[str], List[str]]:
    top = ["major", "minor", "shape", "arch"] + [b.name for b in BEHAVIOURS] + [g.name for g in GROUPS]
    top.append("debug_offsets")
    nested = [f.member for g in GROUPS for f in FIELDS if f.group == g.name]
    if with_debug:
        nested += [n for n, _ in DEBUG_OFFSETS_MEMBERS]
    return top, nested


def check_kept_entry(e: Entry, path: str) -> None:
    """A const kept verbatim must still match the spec, or the crate would not compile."""
    got = entry_field_names(e.text)
    want = expected_field_names("DebugOffsetsLayout {" in e.text)
    if got != want:
        diff = sorted(set(want[0] + want[1]) ^ set(got[0] + got[1]))
        raise GenError(f"{path}: {e.const} cannot be kept verbatim: the spec changed "
                       f"since it was generated (members differing: {diff}) and this machine has "
                       f"no {e.major}.{e.minor} {e.shape} {e.arch} headers to regenerate it from "
                       f"({e.source_label}); regenerate it where they exist")


def parse_existing(path: str) -> List[Entry]:
    """Const blocks of a previously generated vM_N.rs file."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    m = re.fullmatch(r"v(\d+)_(\d+)\.rs", os.path.basename(path))
    major, minor = int(m.group(1)), int(m.group(2))
    entries = []
    block_re = re.compile(r"^// source: (.*?)\n(.*?^pub const (\w+): Layout = Layout \{\n.*?^\};\n)",
                          re.M | re.S)
    by_const = {const_name(s, a): (s, a) for s in SHAPES for a in ARCHES}
    blocks = {bm.group(3): bm.group(0) for bm in block_re.finditer(text)}
    for bm in block_re.finditer(text):
        const = bm.group(3)
        if const not in by_const:
            raise GenError(f"{path}: unknown const {const}")
        shape, arch = by_const[const]
        release = blocks.get(const_name("release", arch))
        block = expand_compact(bm.group(0), release, shape, path)
        crossed = re.findall(r"^// cross-checked: (.*)$", block, re.M)
        entries.append(Entry(major, minor, shape, bm.group(1), crossed, block, arch))
    if not entries:
        raise GenError(f"{path}: no generated Layout consts found; delete it or fix it")
    return entries


BODY_START = "    major:"
SAME_AS_RELEASE = "    ..RELEASE"


def split_block(text: str) -> Tuple[str, str]:
    """(comments and `pub const` line, member lines through `};`) of a rendered const block."""
    at = text.index("\n" + BODY_START) + 1
    return text[:at], text[at:]


def body_as_shape(body: str, shape: str) -> str:
    return re.sub(r"^    shape: Shape::\w+,$", f"    shape: Shape::{SHAPES[shape][0]},", body,
                  flags=re.M)


def compact_text(e: Entry, release: Optional[Entry]) -> str:
    """A debug or free-threaded const whose members all equal RELEASE's is written as
    `Layout { shape: ..., ..RELEASE }` (Py_DEBUG changes none of these structs since 3.8):
    the data stands once. parse_existing() expands it back."""
    if release is None or e is release:
        return e.text
    head, body = split_block(e.text)
    if body_as_shape(split_block(release.text)[1], e.shape) != body:
        return e.text
    return (f"{head}    shape: Shape::{SHAPES[e.shape][0]},\n"
            f"    // Every other member equals {release.const}'s.\n"
            f"{SAME_AS_RELEASE}{ARCHES[e.arch][1]}\n}};\n")


def expand_compact(block: str, release_block: Optional[str], shape: str, path: str) -> str:
    """The full form of a block that compact_text() shortened."""
    if SAME_AS_RELEASE not in block:
        return block
    if release_block is None:
        raise GenError(f"{path}: {SHAPES[shape][1]} refers to a RELEASE table the file lacks")
    head = block[: block.index("\n    shape:") + 1]
    return head + body_as_shape(split_block(release_block)[1], shape)


def render_version_file(entries: List[Entry]) -> str:
    entries = sorted(entries, key=lambda e: e.key)
    if len(entries) == 1:
        origin = entries[0].source_label
    else:
        origin = ", ".join(f"{e.source_label} [{e.const}]" for e in entries)
    out = [f"// @generated by {SCRIPT_NAME} from {origin} — do not edit"]
    for e in entries:
        for c in e.cross_checked:
            tag = "" if len(entries) == 1 else f" [{e.const}]"
            out.append(f"// Cross-checked{tag}: {c} gives identical values.")
    out.append(f"// Regenerate with `python3 {SCRIPT_NAME}`; verify with `--check`.")
    out.append("")
    names = ["Layout", "Shape"] + [g.rust for g in GROUPS]
    if any("DebugOffsetsLayout {" in e.text for e in entries):
        names.append("DebugOffsetsLayout")
    out.append(f"use super::super::layout::{{{', '.join(sorted(names))}}};")
    out.append("use super::super::field::Field;")
    out.append("use super::super::dicts::{InsertionOrder, ManagedDict};")
    out.append("use crate::core::Arch;")
    for e in entries:
        release = next((r for r in entries if r.shape == "release" and r.arch == e.arch), None)
        out.append("")
        out.append(compact_text(e, release).rstrip("\n"))
    return "\n".join(out) + "\n"


def render_mod(entries: List[Entry]) -> str:
    entries = sorted(entries, key=lambda e: e.key)
    mods = sorted({(e.major, e.minor) for e in entries})
    out = [
        f"// @generated by {SCRIPT_NAME} — do not edit",
        f"// Regenerate with `python3 {SCRIPT_NAME}`; verify with `--check`.",
        "",
        "//! Generated per-version layout tables: the single dispatch point from a CPython",
        "//! (major, minor, shape) of a machine to its [`Layout`].",
        "",
        "use super::dicts::ManagedDict;",
        "use super::layout::{Layout, Shape};",
        "use crate::core::Arch;",
        "",
    ]
    out += [f"mod v{a}_{b};" for a, b in mods]
    out.append("")
    out.append("/// Every generated layout, ordered by (major, minor, arch, shape).")
    out.append("pub const ALL: &[&Layout] = &[")
    out += [f"    &v{e.major}_{e.minor}::{e.const}," for e in entries]
    out.append("];")
    out.append("")
    out.append("/// How instances keep managed dicts in each version and shape with a table (see")
    out.append("/// `BEHAVIOURS` in the spec), also for shapes without a table of their own.")
    out.append("pub fn managed_dict(major: u8, minor: u8, shape: Shape) -> Option<ManagedDict> {")
    out.append("    match (major, minor, shape) {")
    rule = next(b for b in BEHAVIOURS if b.name == "managed_dict")
    for major, minor in mods:
        for shape, (variant, _) in SHAPES.items():
            out.append(f"        ({major}, {minor}, Shape::{variant}) => "
                       f"Some({rule.value((major, minor), shape)}),")
    out.append("        _ => None,")
    out.append("    }")
    out.append("}")
    out.append("")
    v = DEBUG_READS_AS_RELEASE_SINCE
    out.append("/// From this version on, a debug build without a table of its own reads as the release")
    out.append("/// build: `Py_DEBUG` no longer implies `Py_TRACE_REFS`, and no struct pycore reads differs.")
    out.append(f"pub const DEBUG_READS_AS_RELEASE_SINCE: (u8, u8) = ({v[0]}, {v[1]});")
    out.append("")
    for arch, (variant, suffix, *_rest) in ARCHES.items():
        name = "lookup" + suffix.lower()
        out.append(f"/// The {arch} layout of CPython `major.minor` built as `shape`, if one was generated.")
        out.append(f"pub fn {name}(major: u8, minor: u8, shape: Shape) -> Option<&'static Layout> {{")
        arms = [e for e in entries if e.arch == arch]
        if arms:
            out.append("    match (major, minor, shape) {")
            for e in arms:
                out.append(f"        ({e.major}, {e.minor}, Shape::{SHAPES[e.shape][0]}) => "
                           f"Some(&v{e.major}_{e.minor}::{e.const}),")
            out.append("        _ => None,")
            out.append("    }")
        else:
            out.append("    let _ = (major, minor, shape);")
            out.append("    None")
        out.append("}")
        out.append("")
    out.append("/// The look-up of `arch`'s tables: a core is never read with another machine's table.")
    out.append("pub fn tables_for(arch: Arch) -> fn(u8, u8, Shape) -> Option<&'static Layout> {")
    out.append("    match arch {")
    for arch, (variant, suffix, *_rest) in ARCHES.items():
        out.append(f"        Arch::{variant} => lookup{suffix.lower()},")
    out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


def rustfmt(text: str, what: str) -> str:
    exe = shutil.which("rustfmt")
    if not exe:
        raise GenError("rustfmt not found (install it with `rustup component add rustfmt`)")
    # Run from the repo so a future rustfmt.toml applies, matching `cargo fmt`.
    r = subprocess.run([exe, "--edition", "2021", "--emit", "stdout"], input=text,
                       capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise GenError(f"rustfmt failed on {what}:\n{r.stderr}\n{text}")
    return r.stdout




def field_doc(f) -> str:
    first = f.candidates[0]
    text = f"`{first.expr()}`"
    if len(f.candidates) > 1:
        text += " (or " + ", ".join(f"`{c.expr()}`" for c in f.candidates[1:]) + ")"
    text += f", {f.versions()}"
    if f.doc:
        text += f": {f.doc}"
    return text + "."


def render_layout_rs() -> str:
    """src/python/layout.rs: the Rust types of every table, from the spec."""
    out = [
        f"// @generated by {SCRIPT_NAME} from {SPEC_NAME} — do not edit",
        f"// Regenerate with `python3 {SCRIPT_NAME}`; verify with `--check`.",
        "",
        "//! The members of CPython's structs that pycore reads, grouped by C struct and typed by",
        f"//! width, as {SPEC_NAME} lists them. One [`Layout`] per version and build shape is",
        "//! generated into `layouts/` from that build's own headers; a member is `None` in the",
        "//! versions and shapes that lack it.",
        "",
        "use super::dicts::{InsertionOrder, ManagedDict};",
        "use super::field::{Field, Ptr};",
        "pub use super::shape::Shape;",
        "pub use crate::core::Arch;",
        "",
        "/// Offsets, sizes and behaviours of one CPython minor version and build shape.",
        "#[derive(Debug, Clone, PartialEq, Eq)]",
        "pub struct Layout {",
        "    pub major: u8,",
        "    pub minor: u8,",
        "    pub shape: Shape,",
        "    /// The machine whose ABI the offsets hold for (alignment and libc types differ).",
        "    pub arch: Arch,",
    ]
    for b in BEHAVIOURS:
        out.append(f"    /// {b.doc}.")
        out.append(f"    pub {b.name}: {b.rust_type},")
    for g in GROUPS:
        out.append(f"    /// {g.doc}.")
        out.append(f"    pub {g.name}: {g.rust},")
    out.append("    /// Where `_Py_DebugOffsets` keeps each member (3.13+), to read the process's own.")
    out.append("    pub debug_offsets: Option<DebugOffsetsLayout>,")
    out.append("}")
    for g in GROUPS:
        out.append("")
        out.append(f"/// {g.doc}.")
        out.append("#[derive(Debug, Clone, PartialEq, Eq)]")
        out.append(f"pub struct {g.rust} {{")
        for f in FIELDS:
            if f.group == g.name:
                out.append(f"    /// {field_doc(f)}")
                out.append(f"    pub {f.member}: {f.rust_type()},")
        out.append("}")
    out += [
        "",
        "/// Byte positions of members inside `_Py_DebugOffsets` (Include/internal/pycore_runtime.h",
        "/// in 3.13, pycore_debug_offsets.h from 3.14): `offsetof(_Py_DebugOffsets,",
        "/// thread_state.next)`. `None` where that version's struct lacks the member.",
        "#[derive(Debug, Clone, PartialEq, Eq)]",
        "pub struct DebugOffsetsLayout {",
    ]
    for name, required in DEBUG_OFFSETS_MEMBERS:
        out.append(f"    /// `{debug_offsets_candidate(name).expr()}`")
        out.append(f"    pub {name}: {'u32' if required else 'Option<u32>'},")
    out.append("}")
    return "\n".join(out) + "\n"


def render_debug_map() -> str:
    """src/python/debug_offsets_map.rs: which layout field each `_Py_DebugOffsets` member gives."""
    out = [
        f"// @generated by {SCRIPT_NAME} from {SPEC_NAME} — do not edit",
        f"// Regenerate with `python3 {SCRIPT_NAME}`; verify with `--check`.",
        "",
        "//! Which layout field each member of `_Py_DebugOffsets` gives (DEBUG_TO_LAYOUT in",
        f"//! {SPEC_NAME}).",
        "",
        "use super::dicts::ManagedDict;",
        "use super::field::{Field, OffsetSlot};",
        "use super::layout::*;",
        "",
        "/// One member of `_Py_DebugOffsets` and the layout field its value gives.",
        "pub struct Mapping<'a> {",
        "    /// `thread_state.native_thread_id`",
        "    pub name: &'static str,",
        "    /// Where the value sits in `_Py_DebugOffsets`; `None` when this version's struct lacks it.",
        "    pub position: Option<u32>,",
        "    /// The stored value is relative to the value at this position: subtract it first.",
        "    pub relative_to: Option<u32>,",
        "    /// A stored 0 means \"absent\" unless the build is free-threaded.",
        "    pub zero_means_absent_unless_free_threaded: bool,",
        "    pub slot: &'a mut dyn OffsetSlot,",
        "}",
        "",
        "/// Every member the spec maps, with `layout`'s field each one overrides.",
        "pub fn mappings<'a>(layout: &'a mut Layout, positions: &DebugOffsetsLayout) -> Vec<Mapping<'a>> {",
        "    vec![",
    ]
    for name, field in DEBUG_TO_LAYOUT.items():
        cand = debug_offsets_candidate(name)
        relative = DEBUG_RELATIVE.get(name)
        required = dict(DEBUG_OFFSETS_MEMBERS)
        def position(member):
            return f"Some(positions.{member})" if required[member] else f"positions.{member}"
        out += [
            "        Mapping {",
            f"            name: \"{cand.member}\",",
            f"            position: {position(name)},",
            f"            relative_to: {position(relative) if relative else 'None'},",
            "            zero_means_absent_unless_free_threaded: "
            f"{'true' if name in DEBUG_ZERO_MEANS_ABSENT_UNLESS_FREE_THREADED else 'false'},",
            f"            slot: &mut layout.{field},",
            "        },",
        ]
    out += ["    ]", "}"]
    out += render_for_other_shape()
    return "\n".join(out) + "\n"


def render_for_other_shape() -> List[str]:
    """`for_other_shape`: a layout for a build shape with no table of its own, from the same
    version's table of another shape, as far as the spec's `other_shapes` tells."""
    out = [
        "",
        "/// A layout for `shape` of `base`'s version when that shape has no table of its own (such",
        "/// as free-threaded 3.14t/3.15t): each member of a PyObject-headed struct moves with the",
        "/// object header (`header_growth` bytes), members of structs that do not differ between",
        "/// shapes stay, and every other member is absent until the process's own `_Py_DebugOffsets`",
        "/// (applied next) gives it. The members in [`GIVEN_BY_PROCESS`] must come from there.",
        "pub fn for_other_shape(",
        "    base: &Layout,",
        "    shape: Shape,",
        "    managed_dict: ManagedDict,",
        "    header_growth: u32,",
        ") -> Layout {",
        "    let moved = |offset: u32| offset.saturating_add(header_growth);",
        "    Layout {",
        "        major: base.major,",
        "        minor: base.minor,",
        "        shape,",
        "        arch: base.arch,",
    ] + [
        f"        {b.name}: base.{b.name}," if b.name != "managed_dict" else "        managed_dict,"
        for b in BEHAVIOURS
    ]
    for g in GROUPS:
        out.append(f"        {g.name}: {g.rust} {{")
        for f in FIELDS:
            if f.group != g.name:
                continue
            here = f"base.{f.name}"
            if f.other_shapes == "object":
                if f.ty == "offset":
                    expr = f"{here}.map(moved)" if f.optional else f"moved({here})"
                else:
                    one = "Field::at(moved(f.offset()))"
                    expr = (f"{here}.map(|f| {one})" if f.optional
                            else f"Field::at(moved({here}.offset()))")
            elif f.other_shapes == "same" or not f.optional:
                expr = here
            else:
                expr = "None"
            out.append(f"            {f.member}: {expr},")
        out.append("        },")
    out += [
        "        debug_offsets: base.debug_offsets.clone(),",
        "    }",
        "}",
        "",
        "/// The `_Py_DebugOffsets` members a process must give for [`for_other_shape`]: required",
        "/// members whose place in another shape the spec cannot tell, and the frame walk's own.",
        "pub const GIVEN_BY_PROCESS: &[&str] = &[",
    ]
    for name, field in DEBUG_TO_LAYOUT.items():
        f = next(x for x in FIELDS if x.name == field)
        if (not f.optional and f.other_shapes is None) or field in WALK_MEMBERS:
            out.append(f"    \"{debug_offsets_candidate(name).member}\",")
    out.append("];")
    return out
