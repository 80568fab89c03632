//! pycore: every thread's Python stack from a Linux ELF core dump, offline.
//!
//! The data flows one way (see ARCHITECTURE.md):
//! [`input`] → `core` (`elf`) → `memory` → `binary`/`binaries` → `native` → `python` →
//! [`report`] → [`render`]; [`error`] and [`warning`] are shared by all of them.

mod address_space;
mod anchors;
pub mod batch;
mod binaries;
mod binary;
mod bytes;
mod core;
mod debuginfod;
mod elf;
pub mod error;
mod frame;
mod held_pages;
pub mod huge_pages;
pub mod input;
mod loaded_objects;
mod memory;
mod native;
pub mod pack;
mod python;
pub mod render;
pub mod report;
pub mod source;
mod stack_scan;
pub mod warning;

use std::path::PathBuf;

pub use binaries::Locator;
pub use error::{Error, Result};
/// CPython's `str` hash, which pycore searches dicts with (tests compare it with each
/// interpreter's own).
pub use python::str_hash::HashSecret;
pub use report::Report;

/// Open a core file (`-`: standard input), decompressing it when its first bytes say so; never
/// more than its headers describe.
pub fn open_core(path: &std::path::Path) -> Result<input::MappedFile> {
    input::open(path, elf::described_len)
}

/// What to analyse, and how (also the options of `pycore analyze`, which flattens it).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// The core file: a kernel core or gcore output, plain or compressed (zstd, gzip, xz, lz4);
    /// `-` reads it from standard input (reported as `<stdin>`). The command line names it
    /// beside these options (`pycore analyze CORE…`, `pycore pack CORE`).
    #[arg(skip)]
    pub core: PathBuf,
    #[command(flatten)]
    pub locator: Locator,
    /// Rewrite source paths from the machine that made the core: OLD=NEW (repeatable).
    #[arg(long = "source-root", value_name = "OLD=NEW")]
    pub source_roots: Vec<source::SourceRoot>,
    /// Do not read source files to show each frame's line.
    #[arg(long = "no-source", action = clap::ArgAction::SetFalse)]
    pub show_source: bool,
    /// Native stacks: every thread's native frames (unwound with the mapped files' CFI, named by
    /// their symbols and DWARF) with the Python frames each interpreter-loop frame ran in its
    /// place; the interpreter's own native frames are folded.
    #[arg(long)]
    pub native: bool,
    /// Like --native, with every native frame, the interpreter's included.
    #[arg(long, conflicts_with = "native")]
    pub native_all: bool,
    /// Every Python frame's arguments, locals, cells and free variables, in the code object's
    /// order, with their values as `repr()` shows them (bounded: docs/json-schema.md).
    #[arg(long)]
    pub locals: bool,
    /// With `locals`: skip the variables of the frames the text formats fold away (a
    /// recursion's repeats past the third), which they never show; ignored with native frames,
    /// which may keep a recursion from folding. Set by the command line for text, Markdown and
    /// table output; JSON and packs read every frame's.
    #[arg(skip)]
    pub skip_folded_locals: bool,
    /// The process ends after this analysis: leave the core's mapping to the kernel's
    /// teardown at exit rather than unmapping it (`munmap` of a core's faulted-in pages, with
    /// its TLB flush, cost 5 % of a one-thread core's run; the exit frees them in bulk). Set by
    /// the command line for a single core; a batch, or a library caller, unmaps each core. A
    /// packed core (`pycore pack`'s output) is unmapped as before.
    #[arg(skip)]
    pub process_exits_after: bool,
}

impl Options {
    /// Which frames' variables the walk reads. Folded frames' are skipped only without native
    /// frames: native frames between Python ones may keep a recursion from folding.
    pub(crate) fn locals_scope(&self) -> python::LocalsScope {
        let folds = self.skip_folded_locals && self.native_mode() == native::NativeMode::Off;
        match (self.locals, folds) {
            (false, _) => python::LocalsScope::None,
            (true, false) => python::LocalsScope::EveryFrame,
            (true, true) => python::LocalsScope::UnfoldedFrames,
        }
    }

    /// Native frames: none (the crash site and thread states only), merged, or all of them.
    pub(crate) fn native_mode(&self) -> native::NativeMode {
        match (self.native, self.native_all) {
            (_, true) => native::NativeMode::All,
            (true, false) => native::NativeMode::Merged,
            (false, false) => native::NativeMode::Off,
        }
    }
}

/// Functions of CPython's garbage collector across versions (Modules/gcmodule.c, Python/gc.c,
/// Python/gc_free_threading.c): a thread with a return address into one runs a collection.
const GC_FUNCTIONS: &[&str] = &[
    "collect",
    "collect_with_callback",
    "collect_generations",
    "gc_collect_main",
    "gc_collect_with_callback",
    "gc_collect_region",
    "gc_collect_full",
    "gc_collect_young",
    "gc_collect_increment",
    "invoke_gc_callback",
    "_PyGC_Collect",
    "PyGC_Collect",
    "_PyGC_CollectNoFail",
    "_Py_RunGC",
    "gc_collect",
    "gc_collect_impl",
];

/// Read the core and every thread's Python stack.
pub fn analyze(options: &Options) -> Result<Report> {
    let data = open_core(&options.core)?;
    analyze_data(data, options)
}

/// [`analyze`] on core bytes the caller already has (`options.core` only names them).
///
/// An error that stops the analysis before the core's notes are read (not a core, unreadable)
/// is returned; once they are read, the report holds what the core tells and, if the Python
/// state could not be read, the reason in [`Report::error`].
pub fn analyze_data(data: input::MappedFile, options: &Options) -> Result<Report> {
    let mut core = core::CoreFile::parse(input::display_path(&options.core), data)?;
    if let Some(note) = &core.packed {
        return pack::analyze_packed(&core, note, options);
    }
    recover_mapped_files(&mut core, &options.locator);
    let mut memory = memory::AddressSpace::new(&core);
    let report = analyze_core(&core, &mut memory, options, None);
    if options.process_exits_after {
        std::mem::forget(memory);
        std::mem::forget(core);
    }
    Ok(report)
}

/// The analysis of a core (not a packed one), recording what it read into `recorded` when
/// `pycore pack` asks.
pub(crate) fn analyze_core<'c>(
    core: &'c core::CoreFile,
    memory: &mut memory::AddressSpace<'c>,
    options: &Options,
    mut recorded: Option<&mut pack::Recorded>,
) -> Report {
    // Pages of other mapped files the core left out (an extension's type names) come from
    // their local copies, found when first needed and checked by build-id.
    memory.set_backing_resolver(binaries::module_resolver(core, options.locator.clone()));
    let invoked_as = {
        let reads = pack::RecordingMemory::new(&*memory);
        let invoked_as = invoked_as(core, &reads);
        if let Some(recorded) = recorded.as_deref_mut() {
            recorded.ranges.extend(reads.ranges.into_inner());
        }
        invoked_as
    };
    let mut report = Report::from_core(
        core,
        binaries::executable_mapping_path(core),
        invoked_as,
        truncation_warnings(core),
    );
    if let Err(error) = add_python(core, memory, options, &mut report, recorded.as_deref_mut()) {
        report.set_error(&error);
    }
    if options.show_source {
        let sysroot = options.locator.sysroot.as_deref();
        let read = |file: &str| source::read_file(file, &options.source_roots, sysroot);
        let used = source::annotate_with(&mut report, read, recorded.is_some());
        if let Some(recorded) = recorded.as_deref_mut() {
            recorded.facts.sources = used;
        }
    }
    let mut text_words = std::collections::BTreeMap::new();
    report::add_native(
        core,
        memory,
        options.locator.clone(),
        options.native_mode(),
        None,
        report::NativeFrames::Unwind(
            recorded
                .as_deref_mut()
                .and_then(|r| r.facts.native.as_mut()),
        ),
        &mut text_words,
        &mut report,
    );
    if let Some(recorded) = recorded.as_deref_mut() {
        recorded.facts.text_words = text_words;
    }
    report.finish();
    if let Some(recorded) = recorded {
        recorded.facts.core_warnings = truncation_warnings(core);
        recorded.facts.crash_function = report
            .crash
            .location
            .as_ref()
            .and_then(|l| l.function.clone());
    }
    report
}

/// The path the program was started as: AT_EXECFN (include/uapi/linux/auxvec.h) points at the
/// path given to execve().
pub(crate) fn invoked_as(core: &core::CoreFile, memory: &impl memory::Memory) -> Option<String> {
    const AT_EXECFN: u64 = 31;
    core.auxv_value(AT_EXECFN)
        .and_then(|addr| memory::read_c_string(memory, addr, 4096))
}

/// Find the binaries, read the interpreter state and join it to the report's threads.
fn add_python(
    core: &core::CoreFile,
    memory: &mut memory::AddressSpace<'_>,
    options: &Options,
    report: &mut Report,
    recorded: Option<&mut pack::Recorded>,
) -> Result<()> {
    let binaries = binaries::PythonBinaries::locate(memory, &options.locator)?;
    report.warnings.extend(binaries.warnings.iter().cloned());
    let memory = &*memory;
    let gc_ranges = || binaries.function_ranges(GC_FUNCTIONS);
    let (process, collectors) = match recorded {
        None => {
            let process = python::inspect(memory, &binaries, core.arch, options.locals_scope())?;
            let collectors = collectors(core, memory, &process, gc_ranges);
            (process, collectors)
        }
        Some(recorded) => {
            let reads = pack::RecordingMemory::new(memory);
            let symbols = pack::RecordingSymbols::new(&binaries);
            // A pack keeps every frame's variables, whatever format it is later read in.
            let scope = match options.locals {
                true => python::LocalsScope::EveryFrame,
                false => python::LocalsScope::None,
            };
            let process = python::inspect(&reads, &symbols, core.arch, scope)?;
            let mut ranges = Vec::new();
            let collectors = collectors(core, &reads, &process, || {
                ranges = gc_ranges();
                ranges.clone()
            });
            recorded.record_python(reads, symbols, &binaries, ranges, options.locals);
            (process, collectors)
        }
    };
    report.add_python(
        core,
        report::binary_summaries(&binaries),
        process,
        collectors,
    );
    Ok(())
}

/// Which threads run the garbage collector, when one runs (`None`: it cannot be told).
pub(crate) fn collectors(
    core: &core::CoreFile,
    memory: &impl memory::Memory,
    process: &python::PythonProcess,
    gc_ranges: impl FnOnce() -> Vec<(u64, u64)>,
) -> Option<Vec<i32>> {
    if !process
        .threads
        .iter()
        .any(|t| t.interpreter_gc_collecting == Some(true))
    {
        return Some(Vec::new());
    }
    let ranges = gc_ranges();
    (!ranges.is_empty()).then(|| stack_scan::threads_in_functions(core, memory, &ranges))
}

/// A core without NT_FILE (qemu-user's, or a kernel core that lost it): its mapped files found
/// from the auxv, the local binaries and the dynamic loader's list in memory
/// (`loaded_objects`), with warnings saying so and what else the core lacks.
pub(crate) fn recover_mapped_files(core: &mut core::CoreFile, locator: &binaries::Locator) {
    if let Some(recovered) = loaded_objects::recover(core, locator) {
        core.files = recovered.files;
        core.recovery_warnings = recovered.warnings;
    }
}

/// What a cut-off core lost, and what a core without NT_FILE lacks, as warnings.
pub(crate) fn truncation_warnings(core: &core::CoreFile) -> Vec<warning::Warning> {
    let mut warnings = core.recovery_warnings.clone();
    if core.dropped_threads > 0 {
        warnings.push(warning::Warning::new(
            warning::WarningKind::TooManyThreads,
            format!(
                "the core has {} more thread notes than the {} pycore reads: the core is corrupt, or those threads are missing",
                core.dropped_threads,
                core::MAX_THREADS
            ),
        ));
    }
    let Some(cut) = core.truncation else {
        return warnings;
    };
    let mut lost = Vec::new();
    if cut.notes_cut {
        lost.push(format!(
            "its notes are cut off ({} threads survived; any after them are missing)",
            core.threads.len()
        ));
    }
    if cut.segments_cut > 0 {
        lost.push(format!(
            "{} memory segments lost {} bytes from address {:#x} on",
            cut.segments_cut, core.truncated_bytes, cut.first_missing_address
        ));
    }
    warnings.push(warning::Warning::new(
        warning::WarningKind::CoreTruncated,
        format!(
            "the core is truncated: the file has {} of the {} bytes its headers describe; {}; threads whose memory is there are shown, the others may be partial",
            cut.file_len,
            cut.expected_len,
            lost.join("; ")
        ),
    ));
    warnings
}
