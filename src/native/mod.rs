//! Native stacks: every thread's frames from its registers, named (docs/json-schema.md:
//! `frames[].kind`, `crash.location`, `threads[].state`); the report merges them with the
//! Python frames (`report/merge.rs`).
//!
//! Layers: [`modules`] finds and checks the mapped ELF files, [`unwind`] walks the stack with
//! their CFI, [`symbols`] and DWARF (addr2line) name each address, [`syscall`] tells what a
//! thread waits in.

mod dwarf;
pub mod modules;
mod section_cache;
pub mod symbols;
pub mod syscall;
pub mod unwind;

use std::cell::OnceCell;

use dwarf::ModuleDwarf;
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

/// One named native frame (an inlined call is its own).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NamedFrame {
    pub raw: RawFrame,
    /// The address in the module's link-time addresses (`address` minus the load bias), when
    /// the module is on this machine.
    pub offset: Option<u64>,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub inlined: bool,
    /// The module belongs to the interpreter (libpython, or a static python executable).
    pub interpreter: bool,
}

/// Each module's DWARF ([`dwarf::ModuleDwarf`]), opened on first use.
pub(crate) struct Dwarfs<'m> {
    modules: Vec<OnceCell<Option<ModuleDwarf<'m>>>>,
}

impl<'m> Dwarfs<'m> {
    pub(crate) fn new(modules: &Modules<'_>) -> Self {
        Dwarfs {
            modules: (0..modules.modules.len())
                .map(|_| OnceCell::new())
                .collect(),
        }
    }

    fn get(&self, modules: &'m Modules<'_>, index: usize) -> Option<&ModuleDwarf<'m>> {
        self.modules
            .get(index)?
            .get_or_init(|| ModuleDwarf::new(modules.loaded(index).ok()?))
            .as_ref()
    }
}

/// The symbol covering `address` (demangled), from the module's symbol tables only.
pub(crate) fn symbol_name(modules: &Modules<'_>, index: usize, address: u64) -> Option<String> {
    let loaded = modules.loaded(index).ok()?;
    let (name, _) = loaded.symbols.lookup(
        address.wrapping_sub(loaded.bias),
        &loaded.image,
        loaded.debug.as_ref(),
    )?;
    Some(symbols::demangle(name))
}

/// Name one frame: its inlined calls (innermost first) then itself, from DWARF where the
/// module has it, else from its symbols. Frames of the interpreter's modules are named from
/// their symbols alone unless `interpreter_dwarf`.
pub(crate) fn name_frame<'m>(
    is_interpreter: &dyn Fn(&str) -> bool,
    interpreter_dwarf: bool,
    modules: &'m Modules<'_>,
    dwarfs: &Dwarfs<'m>,
    raw: &RawFrame,
    out: &mut Vec<NamedFrame>,
) {
    let interpreter = raw
        .module
        .and_then(|m| modules.modules.get(m))
        .is_some_and(|m| is_interpreter(&m.core_path));
    // A signal trampoline is named by its own address: the return address into it is its
    // first instruction (the CFI's FDE starts one byte before, for the unwinder's look-up).
    let lookup = if raw.signal_frame {
        raw.address
    } else {
        raw.lookup
    };
    let symbol = raw.module.and_then(|m| symbol_name(modules, m, lookup));
    let offset = raw
        .module
        .and_then(|m| modules.loaded(m).ok())
        .map(|loaded| raw.address.wrapping_sub(loaded.bias));
    let mut from_dwarf: Vec<NamedFrame> = Vec::new();
    let wants_dwarf = !interpreter || interpreter_dwarf;
    if let (true, Some(index), Ok(loaded)) = (
        wants_dwarf,
        raw.module,
        raw.module.map_or(Err(""), |m| modules.loaded(m)),
    ) {
        let svma = lookup.wrapping_sub(loaded.bias);
        if let Some(context) = dwarfs
            .get(modules, index)
            .and_then(|dwarf| dwarf.context_for(svma))
        {
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
                        offset,
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
            offset,
            function: symbol,
            file: None,
            line: None,
            inlined: false,
            interpreter,
        }),
    }
}
