//! The walker on synthetic memory: a hand-built 3.12 interpreter state with a code object, a
//! UCS-2 file name, a C-stack shim frame and a corrupt (cyclic) frame chain.

use super::*;
use crate::memory::fake::FakeMemory;

const RUNTIME: u64 = 0x1000;
const INTERP: u64 = 0x10_0000;
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

/// A zeroed block of memory that fields are written into.
struct Block(Vec<u8>);

impl Block {
    fn new(size: usize) -> Block {
        Block(vec![0; size])
    }
    fn u64(&mut self, offset: u32, value: u64) -> &mut Self {
        let at = offset as usize;
        self.0[at..at + 8].copy_from_slice(&value.to_le_bytes());
        self
    }
    fn u32(&mut self, offset: u32, value: u32) -> &mut Self {
        let at = offset as usize;
        self.0[at..at + 4].copy_from_slice(&value.to_le_bytes());
        self
    }
    fn bytes(&mut self, offset: u32, value: &[u8]) -> &mut Self {
        let at = offset as usize;
        self.0[at..at + value.len()].copy_from_slice(value);
        self
    }
}

/// A compact `str` of the given PEP 393 kind.
fn unicode(layout: &Layout, text: &str) -> Vec<u8> {
    let ascii = text.is_ascii();
    let max = text.chars().map(|c| c as u32).max().unwrap_or(0);
    let kind: u32 = if max < 0x100 {
        1
    } else if max < 0x1_0000 {
        2
    } else {
        4
    };
    let data: Vec<u8> = match kind {
        1 => text.chars().map(|c| c as u8).collect(),
        2 => text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        _ => text
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect(),
    };
    let header = if ascii {
        layout.unicode_ascii_size.unwrap()
    } else {
        layout.unicode_compact_size.unwrap()
    };
    let mut block = Block::new(header as usize + data.len() + 4);
    let state = (kind << 2) | (1 << 5) | (u32::from(ascii) << 6);
    block
        .u64(layout.unicode_length.unwrap(), text.chars().count() as u64)
        .u32(layout.unicode_state.unwrap(), state)
        .bytes(header, &data);
    block.0
}

fn process_memory(layout: &Layout, cyclic: bool) -> FakeMemory {
    let mut memory = FakeMemory::default();
    let mut runtime = Block::new(0x1000);
    runtime.u64(layout.runtime_interpreters_head.unwrap(), INTERP);
    memory.add(RUNTIME, runtime.0);

    let mut interp = Block::new(0x4000);
    interp.u64(layout.interp_tstate_head, TSTATE);
    memory.add(INTERP, interp.0);

    let mut tstate = Block::new(0x1000);
    tstate
        .u64(layout.tstate_thread_id, 0x7f00_0000_1000)
        .u64(layout.tstate_native_thread_id.unwrap(), 4242)
        .u64(layout.tstate_cframe.unwrap(), CFRAME);
    memory.add(TSTATE, tstate.0);
    let mut cframe = Block::new(0x100);
    cframe.u64(layout.cframe_current_frame.unwrap(), FRAME_1);
    memory.add(CFRAME, cframe.0);

    // Frame 1 runs code unit 2 of CODE; frame 2 is a C-stack shim that leads back to frame 1
    // when `cyclic`, or ends the chain.
    let adaptive = u64::from(layout.code_co_code_adaptive.unwrap());
    let mut frame_1 = Block::new(0x100);
    frame_1
        .u64(layout.iframe_code.unwrap(), CODE)
        .u64(layout.iframe_previous.unwrap(), FRAME_2)
        .u64(layout.iframe_instr_ptr.unwrap(), CODE + adaptive + 2 * 2);
    memory.add(FRAME_1, frame_1.0);
    let mut frame_2 = Block::new(0x100);
    frame_2
        .u64(layout.iframe_code.unwrap(), CODE)
        .u64(
            layout.iframe_previous.unwrap(),
            if cyclic { FRAME_1 } else { 0 },
        )
        .bytes(layout.iframe_owner.unwrap(), &[3]);
    memory.add(FRAME_2, frame_2.0);

    let mut code = Block::new(0x400);
    code.u64(layout.object_ob_type, CODE_TYPE)
        .u64(layout.code_co_name, NAME)
        .u64(layout.code_co_qualname.unwrap(), QUALNAME)
        .u64(layout.code_co_filename, FILE)
        .u64(layout.code_co_linetable.unwrap(), LINETABLE)
        .u32(layout.code_co_firstlineno, 10);
    memory.add(CODE, code.0);
    let mut code_type = Block::new(0x400);
    code_type.u64(layout.type_tp_name, TYPE_NAME);
    memory.add(CODE_TYPE, code_type.0);
    memory.add(TYPE_NAME, b"code\0".to_vec());
    memory.add(NAME, unicode(layout, "naïve_λ"));
    memory.add(QUALNAME, unicode(layout, "Cls.naïve_λ"));
    memory.add(FILE, unicode(layout, "/src/données_𠀀.py"));
    // Location table: 3 code units, no-column form, line +2.
    let mut linetable = Block::new(0x100);
    linetable
        .u64(layout.var_object_ob_size, 2)
        .bytes(layout.bytes_ob_sval, &[0x80 | (13 << 3) | 2, 2 << 1]);
    memory.add(LINETABLE, linetable.0);
    memory
}

struct Symbols;

impl SymbolSource for Symbols {
    fn symbol(&self, name: &str) -> Option<u64> {
        (name == "_PyRuntime").then_some(RUNTIME)
    }
    fn version_hint(&self) -> Option<PythonVersion> {
        Some(PythonVersion::short(3, 12))
    }
}

#[test]
fn walks_a_synthetic_312_thread() {
    let layout = layouts::lookup(3, 12, Shape::Release).unwrap();
    let memory = process_memory(layout, false);
    let process = inspect(&memory, &Symbols).unwrap();
    assert_eq!(process.version.to_string(), "3.12");
    assert_eq!(process.threads.len(), 1);
    let thread = &process.threads[0];
    assert_eq!(thread.native_thread_id, Some(4242));
    assert_eq!(
        thread.frames,
        vec![Frame {
            function: "naïve_λ".into(),
            qualname: Some("Cls.naïve_λ".into()),
            file: "/src/données_𠀀.py".into(),
            line: Some(12),
            first_line: 10,
            entry: true,
        }]
    );
    assert!(thread.warnings.is_empty(), "{:?}", thread.warnings);
}

#[test]
fn a_cyclic_frame_chain_stops_with_a_warning() {
    let layout = layouts::lookup(3, 12, Shape::Release).unwrap();
    let memory = process_memory(layout, true);
    let process = inspect(&memory, &Symbols).unwrap();
    let thread = &process.threads[0];
    assert_eq!(thread.frames.len(), 1);
    assert!(
        thread.warnings.iter().any(|w| w.contains("loops back")),
        "{:?}",
        thread.warnings
    );
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
    let error = inspect(&FakeMemory::default(), &NoSymbols).unwrap_err();
    assert_eq!(error.exit_code(), 4);
}
