//! Native stacks in the report: every thread's state from its registers, the crash site, and
//! (with `--native`/`--native-all`) every thread's native frames, unwound by the native layer and
//! merged with its Python frames.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::merge;
use super::{CoreKind, FrameKind, FrameReport, NativeFrameReport, PythonSummary, Report};
use crate::binaries::Locator;
use crate::core::CoreFile;
use crate::memory::{AddressSpace, Memory};
use crate::native::modules::Modules;
use crate::native::{name_frame, symbol_name, syscall, unwind, Dwarfs, NamedFrame, NativeMode};
use crate::warning::{Warning, WarningKind};

/// The crashed thread's innermost native frame (`crash.location`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashLocation {
    /// `0x…`: the pc.
    pub address: String,
    /// The function (demangled), null when no symbol covers the address.
    pub function: Option<String>,
    /// The mapped file's path as the core recorded it, null when no file is mapped there.
    pub module: Option<String>,
}

/// Every thread's named native frames (all of them, before the merge) and why its walk
/// stopped early, by TID, and the modules missing on this machine: what `pycore pack
/// --native` keeps so that a packed core gives the same native stacks without the modules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct NativeRecord {
    pub threads: std::collections::BTreeMap<i32, (Vec<NamedFrame>, Vec<String>)>,
    pub missing: Vec<String>,
}

/// Where native frames come from.
pub(crate) enum NativeFrames<'a> {
    /// Unwound with the mapped files' CFI and named by their symbols (kept in the record when
    /// one is given).
    Unwind(Option<&'a mut NativeRecord>),
    /// Recorded by `pycore pack`: no file is opened. Each thread's frames are taken from the
    /// record once (a TID listed twice gets them once).
    Recorded(&'a mut NativeRecord),
}

/// Add what the registers and the mapped files tell to `report`: every thread's state, the
/// crash site, and (`mode` on) every thread's native frames merged with its Python frames.
/// `crash_function`: the crash site's function when already known (a packed core's note): no
/// file is opened for it. `text_words`: instruction words the thread states read from the
/// mapped files (a packed core's note holds them); each word read from a file is added.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_native(
    core: &CoreFile,
    memory: &AddressSpace<'_>,
    locator: Locator,
    mode: NativeMode,
    crash_function: Option<Option<String>>,
    mut source: NativeFrames<'_>,
    text_words: &mut BTreeMap<u64, u32>,
    report: &mut Report,
) {
    let executable = report.core.executable.clone();
    let modules = Modules::new(core, memory, locator, executable);
    // The report lists the core's threads first, in the core's order (then orphan states).
    for (thread, status) in report.threads.iter_mut().zip(&core.threads) {
        let general = &status.registers.general;
        // The core's memory, else the words a packed core kept, else the mapped file (qemu-user
        // writes the text of every ELF image empty).
        let word = |addr: u64| {
            if let Ok(word) = memory.read_u32(addr) {
                return Some(word);
            }
            if let Some(&word) = text_words.get(&addr) {
                return Some(word);
            }
            let word = modules.read_u32(addr)?;
            text_words.insert(addr, word);
            Some(word)
        };
        thread.state = syscall::number_in(general, word).map(|n| syscall::state(general.arch, n));
    }
    let dwarfs = Dwarfs::new(&modules);
    if report.crash.kind == CoreKind::Crashed {
        if let Some(status) = core
            .threads
            .iter()
            .find(|t| Some(t.tid) == report.crash.thread)
        {
            let pc = status.registers.pc;
            let module = modules.index_at(pc);
            let function =
                crash_function.unwrap_or_else(|| module.and_then(|m| symbol_name(&modules, m, pc)));
            report.crash.location = Some(CrashLocation {
                address: format!("{pc:#x}"),
                function,
                module: module
                    .and_then(|m| modules.modules.get(m))
                    .map(|m| m.core_path.clone()),
            });
        }
    }
    if mode == NativeMode::Off {
        return;
    }
    let mut missing: Vec<String> = Vec::new();
    let mut missing_paths: std::collections::HashSet<String> = std::collections::HashSet::new();
    let paths = report_ref(&report.python);
    let is_interpreter = |core_path: &str| paths.contains(core_path);
    // `--native` folds the interpreter's own frames: their names come from the symbols alone
    // (its loop's DWARF is the largest there is), unless `pycore pack` keeps them for any mode.
    let interpreter_dwarf =
        mode != NativeMode::Merged || matches!(source, NativeFrames::Unwind(Some(_)));
    for (thread, status) in report.threads.iter_mut().zip(&core.threads) {
        let (named, stopped) = match &mut source {
            NativeFrames::Recorded(record) => {
                record.threads.remove(&status.tid).unwrap_or_default()
            }
            NativeFrames::Unwind(record) => {
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
                        if let (Err(why), Some(module)) =
                            (modules.loaded(index), modules.modules.get(index))
                        {
                            let name = &module.core_path;
                            if missing_paths.insert(name.clone()) {
                                missing.push(format!("{name}: {why}"));
                            }
                        }
                    }
                    name_frame(
                        &is_interpreter,
                        interpreter_dwarf,
                        &modules,
                        &dwarfs,
                        raw,
                        &mut named,
                    );
                }
                if let Some(record) = record {
                    record
                        .threads
                        .insert(status.tid, (named.clone(), unwound.warnings.clone()));
                }
                (named, unwound.warnings)
            }
        };
        let python_frames = std::mem::take(&mut thread.frames);
        let (frames, warning) = merge::merge(&modules, named, python_frames, mode);
        thread.frames = frames;
        thread.warnings.extend(
            stopped
                .into_iter()
                .map(|w| Warning::new(WarningKind::NativeStackCut, w)),
        );
        thread
            .warnings
            .extend(warning.map(|w| Warning::new(WarningKind::NativeMerge, w)));
    }
    match source {
        NativeFrames::Recorded(record) => missing.clone_from(&record.missing),
        NativeFrames::Unwind(Some(record)) => record.missing.clone_from(&missing),
        NativeFrames::Unwind(None) => {}
    }
    for module in missing {
        report.warnings.push(Warning::new(
            WarningKind::NativeModuleMissing,
            format!(
                "native frames in {module}: their functions are unnamed and unwinding through them relies on frame pointers"
            ),
        ));
    }
}

/// The summary's binaries, to tell the interpreter's modules (a borrow that outlives the
/// threads' mutable borrow).
fn report_ref(python: &Option<PythonSummary>) -> InterpreterPaths {
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

/// A native frame as a `frames` entry.
pub fn frame_report(modules: &Modules<'_>, frame: &NamedFrame) -> FrameReport {
    let module = frame.raw.module.and_then(|m| modules.modules.get(m));
    let offset = frame.offset.map(|offset| format!("{offset:#x}"));
    FrameReport {
        function: frame.function.as_deref().unwrap_or("??").into(),
        qualname: None,
        file: frame.file.as_deref().unwrap_or_default().into(),
        line: frame.line,
        kind: FrameKind::Native,
        native: Some(Box::new(NativeFrameReport {
            address: format!("{:#x}", frame.raw.address),
            module: module.map(|m| m.core_path.clone()),
            offset,
            inlined: frame.inlined,
            signal_frame: frame.raw.signal_frame && !frame.inlined,
        })),
        ..FrameReport::default()
    }
}
