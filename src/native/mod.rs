//! Native stacks: every thread's frames from its registers, named, merged with its Python
//! frames (docs/json-schema.md: `frames[].kind`, `crash.location`, `threads[].state`).
//!
//! Layers: [`modules`] finds and checks the mapped ELF files, [`unwind`] walks the stack with
//! their CFI, [`symbols`] and DWARF (addr2line) name each address, [`merge`] puts the Python
//! frames each interpreter-loop frame ran in its place, [`syscall`] tells what a thread waits in.

pub mod merge;
pub mod modules;
pub mod symbols;
pub mod syscall;
pub mod unwind;

use std::cell::OnceCell;

use gimli::{EndianSlice, LittleEndian};
use serde::Serialize;

use crate::binaries::Locator;
use crate::core::CoreFile;
use crate::memory::AddressSpace;
use crate::report::{CoreKind, FrameReport, Report};

use modules::Modules;
use unwind::RawFrame;

/// Which native frames the report gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NativeMode {
    /// Python frames only; the crash site and thread states still come from the registers.
    #[default]
    Off,
    /// Merged stacks, the interpreter's own frames folded (`--native`).
    Merged,
    /// Merged stacks with every native frame (`--native-all`).
    All,
}

/// The crashed thread's innermost native frame (`crash.location`).
#[derive(Debug, Clone, Serialize)]
pub struct CrashLocation {
    /// `0x…`: the pc.
    pub address: String,
    /// The function (demangled), null when no symbol covers the address.
    pub function: Option<String>,
    /// The mapped file's path as the core recorded it, null when no file is mapped there.
    pub module: Option<String>,
}

/// The native half of a `frames` entry (flattened into it).
#[derive(Debug, Clone, Serialize)]
pub struct NativeFrameReport {
    /// `0x…`: the pc of the innermost frame (and of a frame a signal interrupted), the return
    /// address of the others; an inlined entry has its containing frame's address.
    pub address: String,
    /// The mapped file's path as the core recorded it (null: no file mapped there).
    pub module: Option<String>,
    /// `0x…`: the address in the module's own (link-time) addresses, as `addr2line -e MODULE`
    /// takes it (for callers, of the return address).
    pub offset: Option<String>,
    /// A call the compiler inlined: its own entry, before the frame it was inlined into.
    pub inlined: bool,
    /// A signal trampoline (`__restore_rt`): the frame after it was interrupted by a signal.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub signal_frame: bool,
}

/// One named native frame (an inlined call is its own).
#[derive(Debug, Clone)]
pub struct NamedFrame {
    pub raw: RawFrame,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub inlined: bool,
    /// The module belongs to the interpreter (libpython, or a static python executable).
    pub interpreter: bool,
}

type Dwarf<'m> = addr2line::Context<EndianSlice<'m, LittleEndian>>;

/// Addr2line contexts of the modules, built on first use.
struct Dwarfs<'m> {
    contexts: Vec<OnceCell<Option<Dwarf<'m>>>>,
}

impl<'m> Dwarfs<'m> {
    fn new(modules: &Modules<'_>) -> Self {
        Dwarfs {
            contexts: (0..modules.modules.len())
                .map(|_| OnceCell::new())
                .collect(),
        }
    }

    fn get(&self, modules: &'m Modules<'_>, index: usize) -> Option<&Dwarf<'m>> {
        self.contexts
            .get(index)?
            .get_or_init(|| {
                let loaded = modules.loaded(index).ok()?;
                loaded.debug_section(".debug_info")?;
                let dwarf = gimli::Dwarf::load(|id| {
                    let data = loaded.debug_section(id.name()).map_or(&[][..], |(d, _)| d);
                    Ok::<_, gimli::Error>(EndianSlice::new(data, LittleEndian))
                })
                .ok()?;
                addr2line::Context::from_dwarf(dwarf).ok()
            })
            .as_ref()
    }
}

/// Add what the registers and the mapped files tell to `report`: every thread's state, the
/// crash site, and (`mode` on) every thread's native frames merged with its Python frames.
pub fn add_to_report(
    core: &CoreFile,
    memory: &AddressSpace<'_>,
    locator: Locator,
    mode: NativeMode,
    report: &mut Report,
) {
    for thread in &mut report.threads {
        let Some(status) = core.threads.iter().find(|t| Some(t.tid) == thread.tid) else {
            continue;
        };
        thread.state = status.registers.general.syscall().map(syscall::state);
    }
    let executable = report.core.executable.clone();
    let modules = Modules::new(core, memory, locator, executable);
    let dwarfs = Dwarfs::new(&modules);
    if report.crash.kind == CoreKind::Crashed {
        if let Some(status) = core
            .threads
            .iter()
            .find(|t| Some(t.tid) == report.crash.thread)
        {
            let pc = status.registers.pc;
            let module = modules.index_at(pc);
            let function = module.and_then(|m| symbol_name(&modules, m, pc));
            report.crash.location = Some(CrashLocation {
                address: format!("{pc:#x}"),
                function,
                module: module.map(|m| modules.modules[m].core_path.clone()),
            });
        }
    }
    if mode == NativeMode::Off {
        return;
    }
    let mut missing: Vec<String> = Vec::new();
    let paths = report_ref(&report.python);
    for thread in &mut report.threads {
        let Some(status) = core.threads.iter().find(|t| Some(t.tid) == thread.tid) else {
            continue;
        };
        let unwound = unwind::unwind(
            core,
            &modules,
            memory,
            &status.registers.general,
            unwind::MAX_FRAMES,
        );
        let mut named = Vec::with_capacity(unwound.frames.len());
        for raw in &unwound.frames {
            if let Some(index) = raw.module {
                if let Err(why) = modules.loaded(index) {
                    let name = &modules.modules[index].core_path;
                    if !missing.iter().any(|m| m.starts_with(name.as_str())) {
                        missing.push(format!("{name}: {why}"));
                    }
                }
            }
            name_frame(&paths, &modules, &dwarfs, raw, &mut named);
        }
        let python_frames = std::mem::take(&mut thread.frames);
        let (frames, warning) = merge::merge(&modules, named, python_frames, mode);
        thread.frames = frames;
        thread.warnings.extend(unwound.warnings);
        thread.warnings.extend(warning);
    }
    for module in missing {
        report.warnings.push(format!(
            "native frames in {module}: their functions are unnamed and unwinding through them relies on frame pointers"
        ));
    }
}

/// The summary's binaries, to tell the interpreter's modules (a borrow that outlives the
/// threads' mutable borrow).
fn report_ref(python: &Option<crate::report::PythonSummary>) -> InterpreterPaths {
    InterpreterPaths {
        libpython: python
            .as_ref()
            .and_then(|p| p.libpython.as_ref().map(|b| b.path.clone())),
        executable: python
            .as_ref()
            .and_then(|p| p.executable.as_ref().map(|b| b.path.clone())),
    }
}

struct InterpreterPaths {
    libpython: Option<String>,
    executable: Option<String>,
}

impl InterpreterPaths {
    fn contains(&self, core_path: &str) -> bool {
        match (&self.libpython, &self.executable) {
            (Some(lib), _) => lib == core_path,
            (None, Some(exe)) => exe == core_path,
            (None, None) => crate::binary::display_name(core_path).starts_with("libpython"),
        }
    }
}

/// The symbol covering `address` (demangled), from the module's symbol tables only.
fn symbol_name(modules: &Modules<'_>, index: usize, address: u64) -> Option<String> {
    let loaded = modules.loaded(index).ok()?;
    let (name, _) = loaded.symbols.lookup(
        address.wrapping_sub(loaded.bias),
        &loaded.image,
        loaded.debug.as_ref(),
    )?;
    Some(symbols::demangle(name))
}

/// Name one frame: its inlined calls (innermost first) then itself, from DWARF where the
/// module has it, else from its symbols.
fn name_frame<'m>(
    paths: &InterpreterPaths,
    modules: &'m Modules<'_>,
    dwarfs: &Dwarfs<'m>,
    raw: &RawFrame,
    out: &mut Vec<NamedFrame>,
) {
    let interpreter = raw
        .module
        .is_some_and(|m| paths.contains(&modules.modules[m].core_path));
    // A signal trampoline is named by its own address: the return address into it is its
    // first instruction (the CFI's FDE starts one byte before, for the unwinder's look-up).
    let lookup = if raw.signal_frame {
        raw.address
    } else {
        raw.lookup
    };
    let symbol = raw.module.and_then(|m| symbol_name(modules, m, lookup));
    let mut from_dwarf: Vec<NamedFrame> = Vec::new();
    if let (Some(index), Ok(loaded)) = (
        raw.module,
        raw.module.map_or(Err(""), |m| modules.loaded(m)),
    ) {
        if let Some(context) = dwarfs.get(modules, index) {
            let svma = lookup.wrapping_sub(loaded.bias);
            if let Ok(mut frames) = context.find_frames(svma).skip_all_loads() {
                // Bounded: inlining is never this deep.
                for _ in 0..256 {
                    let Ok(Some(frame)) = frames.next() else {
                        break;
                    };
                    let function = frame
                        .function
                        .as_ref()
                        .and_then(|f| f.raw_name().ok())
                        .map(|name| symbols::demangle(&name));
                    let (file, line) = frame
                        .location
                        .as_ref()
                        .map_or((None, None), |l| (l.file.map(str::to_string), l.line));
                    from_dwarf.push(NamedFrame {
                        raw: *raw,
                        function,
                        file,
                        line,
                        inlined: true,
                        interpreter,
                    });
                }
            }
        }
    }
    match from_dwarf.last_mut() {
        Some(outer) => {
            outer.inlined = false;
            if outer.function.is_none() {
                outer.function = symbol;
            }
            out.extend(from_dwarf);
        }
        None => out.push(NamedFrame {
            raw: *raw,
            function: symbol,
            file: None,
            line: None,
            inlined: false,
            interpreter,
        }),
    }
}

/// A native frame as a `frames` entry.
pub fn frame_report(modules: &Modules<'_>, frame: &NamedFrame) -> FrameReport {
    let module = frame.raw.module.map(|m| &modules.modules[m]);
    let offset = frame.raw.module.and_then(|m| {
        let loaded = modules.loaded(m).ok()?;
        Some(format!(
            "{:#x}",
            frame.raw.address.wrapping_sub(loaded.bias)
        ))
    });
    FrameReport {
        function: frame.function.clone().unwrap_or_else(|| "??".into()),
        qualname: None,
        file: frame.file.clone().unwrap_or_default(),
        line: frame.line,
        first_line: 0,
        source: None,
        interpreter: None,
        kind: crate::report::FrameKind::Native,
        entry: false,
        native: Some(NativeFrameReport {
            address: format!("{:#x}", frame.raw.address),
            module: module.map(|m| m.core_path.clone()),
            offset,
            inlined: frame.inlined,
            signal_frame: frame.raw.signal_frame && !frame.inlined,
        }),
    }
}
