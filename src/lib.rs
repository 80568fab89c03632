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
pub mod input;
pub mod memory;
pub mod python;
pub mod render;
pub mod report;
pub mod source;

use std::path::PathBuf;

pub use error::{Error, Result};
pub use report::Report;

/// What to analyse.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The core file (compressed or not).
    pub core: PathBuf,
    /// The python executable the process ran, when it is not at the path the core recorded.
    pub python: Option<PathBuf>,
    /// Path prefixes to rewrite when reading source files (`--source-root OLD=NEW`).
    pub source_roots: Vec<source::SourceRoot>,
    /// Read source files to show each frame's line.
    pub show_source: bool,
}

/// Read the core and every thread's Python stack.
pub fn analyze(options: &Options) -> Result<Report> {
    let data = input::open(&options.core)?;
    let core = core::CoreFile::parse(&options.core, data)?;
    let mut memory = memory::AddressSpace::new(&core);
    let binaries = binaries::PythonBinaries::locate(&mut memory, options.python.as_deref())?;
    let mut warnings = binaries.warnings.clone();
    if core.truncated_bytes > 0 {
        warnings.push(format!(
            "the core is truncated: {} bytes of its segments are missing; stacks may be incomplete",
            core.truncated_bytes
        ));
    }
    let process = python::inspect(&memory, &binaries)?;
    let mut report = Report::build(&core, &binaries, process, warnings);
    if options.show_source {
        source::annotate(&mut report, &options.source_roots);
    }
    Ok(report)
}
