//! The walker on synthetic memory, for every generated layout table: a process laid out by the
//! table itself (interpreter, thread state, a frame of each family, a code object with a line
//! table of its version's format, PEP 393 or 2.7 strings, the GIL, and `_Py_DebugOffsets` on
//! 3.13+) must read back as the thread and frame it was built with. Also: a cyclic frame chain,
//! and a build with no table of its own read through its `_Py_DebugOffsets` alone.

use super::field::Field;
use super::layout::DebugOffsetsLayout;
use super::*;
use crate::memory::fake::FakeMemory;

const RUNTIME: u64 = 0x1000;
const INTERP_HEAD_GLOBAL: u64 = 0x8000;
const TSTATE_CURRENT_GLOBAL: u64 = 0x9000;
const INTERP: u64 = 0x10_0000;
const GIL: u64 = 0x18_0000;
const TSTATE: u64 = 0x20_0000;
const CFRAME: u64 = 0x21_0000;
const FRAME_1: u64 = 0x22_0000;
const FRAME_2: u64 = 0x22_1000;
const CODE: u64 = 0x30_0000;
const CODE_TYPE: u64 = 0x31_0000;
const TYPE_NAME: u64 = 0x32_0000;
const NAME: u64 = 0x40_0000;
const QUALNAME: u64 = 0x40_1000;
const FILE: u64 = 0x40_2000;
const LINETABLE: u64 = 0x40_3000;
const THREAD_ID: u64 = 0x7f00_0000_1000;
const NATIVE_ID: u64 = 4242;
const FIRST_LINE: u32 = 10;

/// A zeroed block of memory that fields are written into.
struct Block(Vec<u8>);

impl Block {
    fn new(size: usize) -> Block {
        Block(vec![0; size])
    }
    fn u64(&mut self, offset: u32, value: u64) -> &mut Self {
        self.bytes(offset, &value.to_le_bytes())
    }
    fn u32(&mut self, offset: u32, value: u32) -> &mut Self {
        self.bytes(offset, &value.to_le_bytes())
    }
    fn field<T>(&mut self, field: Field<T>, value: u64) -> &mut Self {
        self.u64(field.offset(), value)
    }
    fn bytes(&mut self, offset: u32, value: &[u8]) -> &mut Self {
        let at = offset as usize;
        self.0[at..at + value.len()].copy_from_slice(value);
        self
    }
}

/// A `str`: compact PEP 393 of the smallest kind (3.3+), or 2.7's byte string (UTF-8).
fn text_object(layout: &Layout, text: &str) -> Vec<u8> {
    let unicode = &layout.unicode;
    let (Some(length), Some(state_field), Some(ascii_size), Some(compact_size)) = (
        unicode.length,
        unicode.state,
        unicode.ascii_size,
        unicode.compact_size,
    ) else {
        return bytes_object(layout, text.as_bytes());
    };
    let ascii = text.is_ascii();
    let max = text.chars().map(|c| c as u32).max().unwrap_or(0);
    let kind: u32 = match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        _ => 4,
    };
    let data: Vec<u8> = match kind {
        1 => text.chars().map(|c| c as u8).collect(),
        2 => text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        _ => text
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect(),
    };
    let header = if ascii { ascii_size } else { compact_size };
    let mut block = Block::new(header as usize + data.len() + 4);
    let state = (kind << 2) | (1 << 5) | (u32::from(ascii) << 6);
    block
        .field(length, text.chars().count() as u64)
        .u32(state_field.offset(), state)
        .bytes(header, &data);
    block.0
}

fn bytes_object(layout: &Layout, data: &[u8]) -> Vec<u8> {
    let mut block = Block::new(layout.bytes.ob_sval as usize + data.len() + 1);
    block
        .field(layout.var_object.ob_size, data.len() as u64)
        .bytes(layout.bytes.ob_sval, data);
    block.0
}

/// The line table of the code object's version for: line `FIRST_LINE + 2` from the start, and
/// where the frame stands in it: ≤3.9 `co_lnotab` ((bytes, lines) pairs) and `f_lasti` in bytes;
/// 3.10 `co_linetable` ((bytes, line delta) ranges) and `f_lasti` in code units; 3.11+ the
/// location table (one no-column entry of 3 code units, line +2) and the code unit.
fn line_table(layout: &Layout) -> (Vec<u8>, u64) {
    match (layout.code.co_lnotab, layout.iframe.executable) {
        (Some(_), _) => (vec![4, 2], 6),
        (None, None) => (vec![8, 2], 2),
        (None, Some(_)) => (vec![0x80 | (13 << 3) | 2, 2 << 1], 2),
    }
}

/// A process of `layout`'s version and shape with one thread holding the GIL and running one
/// Python frame (plus a C-stack shim frame on 3.11+, which loops back when `cyclic`).
fn process_memory(layout: &Layout, cyclic: bool) -> FakeMemory {
    let mut memory = FakeMemory::default();
    let mut runtime = Block::new(0x4000);
    if let Some(head) = layout.runtime.interpreters_head {
        runtime.field(head, INTERP);
    }
    if let Some(main) = layout.runtime.interpreters_main {
        runtime.field(main, INTERP);
    }
    if let Some(current) = layout.runtime.gilstate_tstate_current {
        runtime.field(current, TSTATE);
    }
    if let Some(positions) = &layout.debug_offsets {
        write_debug_offsets(&mut runtime, layout, positions);
    }
    memory.add(RUNTIME, runtime.0);
    memory.add(INTERP_HEAD_GLOBAL, INTERP.to_le_bytes().to_vec());
    memory.add(TSTATE_CURRENT_GLOBAL, TSTATE.to_le_bytes().to_vec());

    let mut interp = Block::new(0x4000);
    interp.field(layout.interp.threads_head, TSTATE);
    if let Some(gil) = layout.interp.ceval_gil {
        interp.field(gil, GIL);
    }
    memory.add(INTERP, interp.0);
    let mut gil = Block::new(0x400);
    if let (Some(locked), Some(holder)) = (layout.gil.locked, layout.gil.last_holder) {
        gil.u32(locked.offset(), 1).field(holder, TSTATE);
    }
    if let Some(enabled) = layout.gil.enabled {
        gil.u32(enabled.offset(), 1);
    }
    memory.add(GIL, gil.0);

    let mut tstate = Block::new(0x2000);
    tstate
        .field(layout.tstate.thread_id, THREAD_ID)
        .field(layout.tstate.interp, INTERP);
    if let Some(native) = layout.tstate.native_thread_id {
        tstate.field(native, NATIVE_ID);
    }
    // glibc's `struct pthread` of the thread, holding its TID where the machine's glibc does.
    let tid_at = THREAD_ID + super::threads::glibc_tid_offset(layout.arch);
    memory.add(tid_at, (NATIVE_ID as i32).to_le_bytes().to_vec());
    let (table, position) = line_table(layout);
    let mut frame_1 = Block::new(0x100);
    let mut frame_2 = Block::new(0x100);
    match (layout.tstate.frame, layout.frame.f_code) {
        (Some(frame), Some(code)) => {
            tstate.field(frame, FRAME_1);
            let (Some(back), Some(lasti)) = (layout.frame.f_back, layout.frame.f_lasti) else {
                panic!("{}.{}: frame fields", layout.major, layout.minor);
            };
            frame_1
                .field(code, CODE)
                .field(back, if cyclic { FRAME_1 } else { 0 })
                .u32(lasti.offset(), position as u32);
        }
        _ => {
            match (
                layout.tstate.current_frame,
                layout.tstate.cframe,
                layout.cframe.current_frame,
            ) {
                (Some(current), _, _) => {
                    tstate.field(current, FRAME_1);
                }
                (None, Some(cframe), Some(current)) => {
                    tstate.field(cframe, CFRAME);
                    let mut block = Block::new(0x100);
                    block.field(current, FRAME_1);
                    memory.add(CFRAME, block.0);
                }
                _ => panic!("{}.{}: no way to the frame", layout.major, layout.minor),
            }
            let iframe = &layout.iframe;
            let (Some(executable), Some(previous), Some(instr), Some(owner)) = (
                iframe.executable,
                iframe.previous,
                iframe.instr_ptr,
                iframe.owner,
            ) else {
                panic!(
                    "{}.{}: interpreter frame fields",
                    layout.major, layout.minor
                );
            };
            let adaptive = u64::from(layout.code.co_code_adaptive.unwrap_or(0));
            frame_1
                .field(executable, CODE)
                .field(previous, FRAME_2)
                .field(instr, CODE + adaptive + position * 2);
            if let Some(is_entry) = iframe.is_entry {
                frame_1.bytes(is_entry.offset(), &[1]);
            }
            // A C-stack shim: the owner that comes after the Python ones.
            frame_2
                .field(executable, CODE)
                .field(previous, if cyclic { FRAME_1 } else { 0 })
                .bytes(owner.offset(), &[frames::FIRST_NON_PYTHON_OWNER]);
        }
    }
    memory.add(TSTATE, tstate.0);
    memory.add(FRAME_1, frame_1.0);
    memory.add(FRAME_2, frame_2.0);

    let mut code = Block::new(0x400);
    code.field(layout.object.ob_type, CODE_TYPE)
        .field(layout.code.co_name, NAME)
        .field(layout.code.co_filename, FILE)
        .u32(layout.code.co_firstlineno.offset(), FIRST_LINE);
    if let Some(qualname) = layout.code.co_qualname {
        code.field(qualname, QUALNAME);
    }
    if let Some(field) = layout.code.co_linetable.or(layout.code.co_lnotab) {
        code.field(field, LINETABLE);
    }
    memory.add(CODE, code.0);
    let mut code_type = Block::new(0x400);
    code_type.field(layout.type_object.tp_name, TYPE_NAME);
    memory.add(CODE_TYPE, code_type.0);
    memory.add(TYPE_NAME, b"code\0".to_vec());
    memory.add(NAME, text_object(layout, "naïve_λ"));
    memory.add(QUALNAME, text_object(layout, "Cls.naïve_λ"));
    memory.add(FILE, text_object(layout, "/src/données_𠀀.py"));
    memory.add(LINETABLE, bytes_object(layout, &table));
    memory
}

/// `_Py_DebugOffsets` at the start of `_PyRuntime`, as CPython's initializer writes it: the
/// cookie, the version, the free-threaded flag and each mapped member's offset from `layout`.
fn write_debug_offsets(runtime: &mut Block, layout: &Layout, positions: &DebugOffsetsLayout) {
    runtime.bytes(0, b"xdebugpy");
    let hex = (u64::from(layout.major) << 24) | (u64::from(layout.minor) << 16) | 0xf0;
    runtime.u64(positions.version, hex);
    if let Some(flag) = positions.free_threaded {
        runtime.u64(flag, u64::from(layout.shape == Shape::FreeThreaded));
    }
    let mut copy = layout.clone();
    for mapping in debug_offsets_map::mappings(&mut copy, positions) {
        let (Some(position), Some(value)) = (mapping.position, mapping.slot.get()) else {
            continue;
        };
        // Where a value is stored relative to another member, store the other member as 0.
        runtime.u64(position, u64::from(value));
    }
}

/// The symbols of a build of `layout`'s version and shape.
struct Symbols<'a>(&'a Layout);

impl SymbolSource for Symbols<'_> {
    fn symbol(&self, name: &str) -> Option<u64> {
        let has_runtime = self.0.runtime.interpreters_head.is_some();
        match name {
            "_PyRuntime" if has_runtime => Some(RUNTIME),
            "interp_head" if !has_runtime => Some(INTERP_HEAD_GLOBAL),
            "_PyThreadState_Current" if !has_runtime => Some(TSTATE_CURRENT_GLOBAL),
            "_Py_NegativeRefcount" if self.0.shape == Shape::Debug => Some(0x10),
            _ => None,
        }
    }
    fn version_hint(&self) -> Option<PythonVersion> {
        Some(PythonVersion::short(self.0.major, self.0.minor))
    }
    fn abi_flags(&self) -> String {
        if self.0.shape == Shape::FreeThreaded {
            "t".into()
        } else {
            String::new()
        }
    }
}

fn label(layout: &Layout) -> String {
    format!(
        "{}.{} {} {:?}",
        layout.major, layout.minor, layout.shape, layout.arch
    )
}

/// A core is read only with its own machine's tables: an aarch64 process of a version with an
/// x86_64 table only is refused (exit code 6), naming the machine, never read with that table.
#[test]
fn another_machines_table_is_never_used() {
    use crate::core::Arch;
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let tables = layouts::tables_for(arch);
        for layout in layouts::ALL {
            if let Some(found) = tables(layout.major, layout.minor, layout.shape) {
                assert_eq!(found.arch, arch, "{}", label(layout));
            }
        }
    }
    let x86 = layouts::lookup(3, 12, Shape::Release).expect("the 3.12 table");
    assert!(layouts::tables_for(Arch::Aarch64)(3, 12, Shape::Release).is_none());
    let memory = process_memory(x86, false);
    let error = inspect(&memory, &Symbols(x86), Arch::Aarch64, LocalsScope::None).unwrap_err();
    assert_eq!(error.exit_code(), 6, "{error}");
    assert!(error.to_string().contains("(aarch64)"), "{error}");
    // The same memory with the x86_64 tables reads.
    assert!(inspect(&memory, &Symbols(x86), Arch::X86_64, LocalsScope::None).is_ok());
}

#[test]
fn every_table_walks_a_thread_laid_out_by_it() {
    assert!(layouts::ALL.len() >= 15, "tables: {}", layouts::ALL.len());
    for layout in layouts::ALL {
        let memory = process_memory(layout, false);
        let process = inspect(&memory, &Symbols(layout), layout.arch, LocalsScope::None)
            .unwrap_or_else(|e| panic!("{}: {e}", label(layout)));
        let what = label(layout);
        assert_eq!(
            (process.version.major, process.version.minor),
            (layout.major, layout.minor),
            "{what}"
        );
        assert_eq!(process.shape, layout.shape, "{what}");
        assert!(
            process.warnings.is_empty(),
            "{what}: {:?}",
            process.warnings
        );
        assert_eq!(process.threads.len(), 1, "{what}");
        let thread = &process.threads[0];
        assert_eq!(thread.thread_id, THREAD_ID, "{what}");
        let native = layout.tstate.native_thread_id.map(|_| NATIVE_ID);
        assert_eq!(thread.native_thread_id, native, "{what}");
        // Without native_thread_id, the TID from glibc's struct pthread.
        let from_pthread = native.is_none().then_some(NATIVE_ID);
        assert_eq!(thread.pthread_tid, from_pthread, "{what}");
        let expect_gil = if layout.gil.enabled.is_some() || layout.shape != Shape::FreeThreaded {
            Some(true)
        } else {
            None
        };
        assert_eq!(thread.holds_gil, expect_gil, "{what}");
        assert_eq!(thread.interpreter_id, layout.interp.id.map(|_| 0), "{what}");
        assert!(thread.main_interpreter, "{what}");
        let pep393 = layout.unicode.state.is_some();
        assert_eq!(
            thread.frames,
            vec![Frame {
                function: "naïve_λ".into(),
                qualname: layout.code.co_qualname.map(|_| "Cls.naïve_λ".into()),
                file: "/src/données_𠀀.py".into(),
                line: Some(FIRST_LINE + 2),
                first_line: FIRST_LINE,
                // 3.11+ location tables say where the instruction ends (no columns here).
                end_line: layout.code.co_code_adaptive.map(|_| FIRST_LINE + 2),
                column: None,
                end_column: None,
                entry: true,
                ..Frame::default()
            }],
            "{what} (PEP 393 strings: {pep393})"
        );
        assert!(thread.warnings.is_empty(), "{what}: {:?}", thread.warnings);
    }
}

#[test]
fn a_cyclic_frame_chain_stops_with_a_warning() {
    for layout in layouts::ALL {
        let memory = process_memory(layout, true);
        let process = inspect(&memory, &Symbols(layout), layout.arch, LocalsScope::None).unwrap();
        let thread = &process.threads[0];
        assert_eq!(thread.frames.len(), 1, "{}", label(layout));
        assert!(
            thread
                .warnings
                .iter()
                .any(|w| w.kind == crate::warning::WarningKind::FrameChainLoop),
            "{}: {:?}",
            label(layout),
            thread.warnings
        );
    }
}

#[test]
fn no_runtime_symbol_means_not_python() {
    struct NoSymbols;
    impl SymbolSource for NoSymbols {
        fn symbol(&self, _: &str) -> Option<u64> {
            None
        }
        fn version_hint(&self) -> Option<PythonVersion> {
            None
        }
    }
    let error = inspect(
        &FakeMemory::default(),
        &NoSymbols,
        crate::core::Arch::X86_64,
        LocalsScope::None,
    )
    .unwrap_err();
    assert_eq!(error.exit_code(), 4);
}

/// A free-threaded build pycore has no table for (as 3.14t and 3.15t, which cannot be built
/// here) is read through the process's own `_Py_DebugOffsets` with a note: a 3.13t process laid
/// out by its real table, analysed with that table hidden, from the 3.13 release table and the
/// offsets alone.
#[test]
fn a_shape_without_a_table_is_read_through_its_debug_offsets() {
    fn without_free_threaded(major: u8, minor: u8, shape: Shape) -> Option<&'static Layout> {
        match shape {
            Shape::FreeThreaded => None,
            _ => layouts::lookup(major, minor, shape),
        }
    }
    let layout = layouts::lookup(3, 13, Shape::FreeThreaded).expect("the 3.13t table");
    let memory = process_memory(layout, false);
    let process = inspect_with(
        &memory,
        &Symbols(layout),
        without_free_threaded,
        LocalsScope::None,
    )
    .unwrap();
    assert_eq!(process.shape, Shape::FreeThreaded);
    assert!(
        process
            .notes
            .iter()
            .any(|n| n.contains("no table of its own")),
        "{:?}",
        process.notes
    );
    assert!(process.warnings.is_empty(), "{:?}", process.warnings);
    let thread = &process.threads[0];
    assert_eq!(thread.native_thread_id, Some(NATIVE_ID));
    assert_eq!(thread.holds_gil, Some(true));
    assert_eq!(thread.frames.len(), 1);
    assert_eq!(thread.frames[0].qualname.as_deref(), Some("Cls.naïve_λ"));
    assert_eq!(thread.frames[0].line, Some(FIRST_LINE + 2));

    // Without the free-threaded flag's offsets for the members a walk needs, it is refused.
    let mut hidden = FakeMemory::default();
    let mut runtime = Block::new(0x1000);
    runtime
        .bytes(0, b"xdebugpy")
        .u64(layout.debug_offsets.as_ref().unwrap().version, 0x030d_00f0);
    if let Some(flag) = layout.debug_offsets.as_ref().unwrap().free_threaded {
        runtime.u64(flag, 1);
    }
    hidden.add(RUNTIME, runtime.0);
    let error = inspect_with(
        &hidden,
        &Symbols(layout),
        without_free_threaded,
        LocalsScope::None,
    )
    .unwrap_err();
    assert_eq!(error.exit_code(), 6, "{error}");
}

/// Deriving 3.13t from the 3.13 release table and the spec's rules alone (no process) gives the
/// real 3.13t table for every member the rules place: they are right where they claim to know.
#[test]
fn other_shape_rules_agree_with_a_real_table() {
    let release = layouts::lookup(3, 13, Shape::Release).unwrap();
    let real = layouts::lookup(3, 13, Shape::FreeThreaded).unwrap();
    let growth = real.object.ob_type.offset() - release.object.ob_type.offset();
    let managed = layouts::managed_dict(3, 13, Shape::FreeThreaded).unwrap();
    let mut derived =
        debug_offsets_map::for_other_shape(release, Shape::FreeThreaded, managed, growth);
    let mut real = real.clone();
    let positions = release.debug_offsets.clone().unwrap();
    let derived_slots: Vec<(&str, Option<u32>)> =
        debug_offsets_map::mappings(&mut derived, &positions)
            .into_iter()
            .map(|m| (m.name, m.slot.get()))
            .collect();
    let real_slots: Vec<Option<u32>> = debug_offsets_map::mappings(&mut real, &positions)
        .into_iter()
        .map(|m| m.slot.get())
        .collect();
    assert_eq!(derived.managed_dict, real.managed_dict);
    assert_eq!(derived.tuple.ob_item, real.tuple.ob_item);
    assert_eq!(derived.module.md_dict, real.module.md_dict);
    assert_eq!(derived.dict.ma_used, real.dict.ma_used);
    assert_eq!(derived.unicode.legacy_data, real.unicode.legacy_data);
    assert_eq!(derived.base_exception.args, real.base_exception.args);
    assert_eq!(derived.dict_keys, real.dict_keys);
    for ((name, derived), real) in derived_slots.into_iter().zip(real_slots) {
        // Members the rules leave to the process (None or the base's value) are not judged.
        if let (Some(derived), Some(real)) = (derived, real) {
            if name.starts_with("pyobject")
                || name.starts_with("type_object")
                || name.starts_with("code_object")
                || name.starts_with("unicode")
                || name.starts_with("bytes")
                || name.starts_with("long")
                || name.starts_with("dict_object")
            {
                assert_eq!(derived, real, "{name}");
            }
        }
    }
}

/// A corrupt `_Py_DebugOffsets` entry (an offset no member can have) is not taken: the table's
/// value stays, a warning says so, and the walk reads the right frame.
#[test]
fn an_implausible_debug_offset_is_not_taken() {
    let layout = layouts::lookup(3, 13, Shape::Release).unwrap();
    let positions = layout.debug_offsets.clone().unwrap();
    let mut memory = process_memory(layout, false);
    let position = positions.thread_state_next.unwrap() as usize;
    let mut runtime = memory.read_vec(RUNTIME, 0x4000).unwrap();
    runtime[position..position + 8].copy_from_slice(&0x7fff_ffff_u64.to_le_bytes());
    memory.add(RUNTIME, runtime);
    let process = inspect(&memory, &Symbols(layout), layout.arch, LocalsScope::None).unwrap();
    assert!(
        process
            .warnings
            .iter()
            .any(|w| w.kind == crate::warning::WarningKind::DebugOffsets
                && w.message.contains("no such member")),
        "{:?}",
        process.warnings
    );
    assert_eq!(process.threads.len(), 1);
    assert_eq!(process.threads[0].frames.len(), 1);
}
