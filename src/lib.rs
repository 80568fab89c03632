//! pycore: every thread's Python stack from a Linux ELF core dump, offline.
//!
//! The data flows one way (see ARCHITECTURE.md):
//! [`input`] → [`core`] → [`memory`] → [`binary`]/[`binaries`] → [`python`] → [`report`] →
//! [`render`].

pub mod binaries;
pub mod binary;
mod bytes;
pub mod core;
pub mod error;
pub mod held_pages;
pub mod input;
pub mod memory;
pub mod native;
pub mod python;
pub mod render;
pub mod report;
pub mod source;
mod stack_scan;

use std::path::PathBuf;

pub use error::{Error, Result};
pub use report::Report;

/// What to analyse.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The core file (compressed or not); `-` is standard input.
    pub core: PathBuf,
    /// The python executable the process ran, when it is not at the path the core recorded.
    pub python: Option<PathBuf>,
    /// A copy of the core's machine's filesystem to find its binaries and sources in (`--sysroot`).
    pub sysroot: Option<PathBuf>,
    /// Folders with copies of the core's binaries, matched by file name (`--lib-path`).
    pub lib_paths: Vec<PathBuf>,
    /// Use binaries whose build-id differs from the core's, with a warning.
    pub allow_mismatch: bool,
    /// Roots of detached debug symbols (`DIR/.build-id/…`), besides `/usr/lib/debug`.
    pub debug_dirs: Vec<PathBuf>,
    /// Path prefixes to rewrite when reading source files (`--source-root OLD=NEW`).
    pub source_roots: Vec<source::SourceRoot>,
    /// Read source files to show each frame's line.
    pub show_source: bool,
    /// Native frames: off (crash site and thread states only), merged, or all.
    pub native: native::NativeMode,
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
    let data = input::open(&options.core)?;
    analyze_data(data, options)
}

/// [`analyze`] on core bytes the caller already has (`options.core` only names them).
///
/// An error that stops the analysis before the core's notes are read (not a core, unreadable)
/// is returned; once they are read, the report holds what the core tells and, if the Python
/// state could not be read, the reason in [`Report::error`].
pub fn analyze_data(data: input::MappedFile, options: &Options) -> Result<Report> {
    let core = core::CoreFile::parse(input::display_path(&options.core), data)?;
    let mut memory = memory::AddressSpace::new(&core);
    // AT_EXECFN (include/uapi/linux/auxvec.h) points at the path given to execve().
    const AT_EXECFN: u64 = 31;
    let invoked_as = core
        .auxv_value(AT_EXECFN)
        .and_then(|addr| memory::read_c_string(&memory, addr, 4096));
    let mut report = Report::from_core(
        &core,
        binaries::executable_mapping_path(&core),
        invoked_as,
        truncation_warnings(&core),
    );
    if let Err(error) = add_python(&core, &mut memory, options, &mut report) {
        report.set_error(&error);
    }
    if options.show_source {
        source::annotate(
            &mut report,
            &options.source_roots,
            options.sysroot.as_deref(),
        );
    }
    native::add_to_report(
        &core,
        &memory,
        locator(options),
        options.native,
        &mut report,
    );
    Ok(report)
}

/// Find the binaries, read the interpreter state and join it to the report's threads.
fn add_python(
    core: &core::CoreFile,
    memory: &mut memory::AddressSpace<'_>,
    options: &Options,
    report: &mut Report,
) -> Result<()> {
    let locator = locator(options);
    let binaries = binaries::PythonBinaries::locate(memory, &locator)?;
    report.warnings.extend(binaries.warnings.iter().cloned());
    let process = python::inspect(&*memory, &binaries)?;
    let collectors = if process
        .threads
        .iter()
        .any(|t| t.interpreter_gc_collecting == Some(true))
    {
        let ranges = binaries.function_ranges(GC_FUNCTIONS);
        (!ranges.is_empty()).then(|| stack_scan::threads_in_functions(core, memory, &ranges))
    } else {
        Some(Vec::new())
    };
    report.add_python(core, &binaries, process, collectors);
    Ok(())
}

/// Where the core's binaries are looked for.
fn locator(options: &Options) -> binaries::Locator {
    binaries::Locator {
        python: options.python.clone(),
        sysroot: options.sysroot.clone(),
        lib_paths: options.lib_paths.clone(),
        allow_mismatch: options.allow_mismatch,
        debug_dirs: options.debug_dirs.clone(),
    }
}

/// What a cut-off core lost, as warnings.
fn truncation_warnings(core: &core::CoreFile) -> Vec<String> {
    let Some(cut) = core.truncation else {
        return Vec::new();
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
    vec![format!(
        "the core is truncated: the file has {} of the {} bytes its headers describe; {}; threads whose memory is there are shown, the others may be partial",
        cut.file_len,
        cut.expected_len,
        lost.join("; ")
    )]
}
