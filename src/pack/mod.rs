//! `pycore pack`: a small, self-contained core holding only what pycore's analysis of it reads
//! (docs/packed-cores.md).
//!
//! Packing runs the ordinary analysis with its memory reads and symbol look-ups recorded
//! ([`recording`]), then writes an ELF core ([`writer`]) with the original notes (threads,
//! registers, signal, process, mapped files), the recorded bytes as PT_LOAD segments at their
//! run-time addresses, and one more note ([`facts`]) with what came from outside the memory:
//! the binaries' symbols and identity, the source lines shown, the crash site's name.
//! Analysing a packed core ([`analyze_packed`]) reads that note instead of opening any file.

mod facts;
mod recording;
mod writer;

use std::path::PathBuf;

pub(crate) use recording::{RecordingMemory, RecordingSymbols};

use crate::binaries::PythonBinaries;
use crate::core::CoreFile;
use crate::error::{Error, Result};
use crate::memory::{AddressSpace, Memory};
use crate::native::NativeMode;
use crate::python::{PythonVersion, SymbolSource};
use crate::report::{NativeFrames, NativeRecord, PackedFrom, Report};
use crate::source::SourceText;
use crate::warning::{Warning, WarningKind};
use crate::Options;
use facts::PackedFacts;

/// `pycore pack`'s options: the analysis's (which binaries, `--locals`), and the output.
#[derive(Debug, Clone, clap::Args)]
pub struct PackOptions {
    /// The core to pack (as for `pycore analyze`: plain or compressed, `-` for standard input).
    #[arg(value_name = "CORE")]
    pub core: PathBuf,
    #[command(flatten)]
    pub analysis: Options,
    /// Where to write the packed core.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Write it uncompressed (by default it is zstd-compressed; pycore reads both).
    #[arg(long)]
    pub uncompressed: bool,
    /// Blank the command line the core kept (NT_PRPSINFO's 80 bytes of arguments).
    #[arg(long)]
    pub redact_command: bool,
}

/// What `pycore pack` wrote.
#[derive(Debug, Clone)]
pub struct PackSummary {
    /// The analysis of the original core (the packed core's gives the same).
    pub report: Report,
    /// The original core's size (decompressed) and the packed file's size, in bytes.
    pub original_size: u64,
    pub packed_size: u64,
    /// Memory ranges kept and their bytes.
    pub segments: usize,
    pub memory_bytes: u64,
}

/// What an analysis recorded for packing.
#[derive(Default)]
pub(crate) struct Recorded {
    pub ranges: Vec<(u64, u64)>,
    pub facts: PackedFacts,
}

impl Recorded {
    /// Keep what the Python walk read and asked.
    pub(crate) fn record_python<M: Memory>(
        &mut self,
        reads: RecordingMemory<'_, M>,
        symbols: RecordingSymbols<'_, PythonBinaries>,
        binaries: &PythonBinaries,
        gc_function_ranges: Vec<(u64, u64)>,
        locals: bool,
    ) {
        self.ranges.extend(reads.ranges.into_inner());
        self.facts.symbols = symbols.answers.into_inner();
        self.facts.version_hint = binaries
            .version_hint()
            .map(|v| (v.major, v.minor, v.micro, v.level, v.serial));
        self.facts.abi_flags = binaries.abi_flags();
        (self.facts.executable, self.facts.libpython) = crate::report::binary_summaries(binaries);
        self.facts
            .warnings
            .extend(binaries.warnings.iter().cloned());
        self.facts.gc_function_ranges = gc_function_ranges;
        self.facts.locals = locals;
    }
}

/// Pack `options.analysis.core` into `options.output`.
pub fn pack(options: &PackOptions) -> Result<PackSummary> {
    let analysis = &Options {
        core: options.core.clone(),
        ..options.analysis.clone()
    };
    let data = crate::open_core(&analysis.core)?;
    let original_size = data.bytes().len() as u64;
    let mut core = CoreFile::parse(crate::input::display_path(&analysis.core), data)?;
    if core.packed.is_some() {
        return Err(Error::PackUnsupported {
            what: format!("{} is already a packed core", analysis.core.display()),
        });
    }
    crate::recover_mapped_files(&mut core, &analysis.locator);
    let mut memory = AddressSpace::new(&core);
    let mut recorded = Recorded::default();
    if analysis.native || analysis.native_all {
        recorded.facts.native = Some(NativeRecord::default());
    }
    let report = crate::analyze_core(&core, &mut memory, analysis, Some(&mut recorded));
    if let Some(error) = &report.error {
        // Nothing worth packing: the Python state could not be read (the same error as
        // `pycore analyze` gives, with its exit code).
        return Err(Error::PackFailed {
            reason: error.message.clone(),
            code: error.code,
        });
    }
    let facts = PackedFacts {
        format: facts::FORMAT,
        packed_by: format!("pycore {}", env!("CARGO_PKG_VERSION")),
        original_path: analysis.core.display().to_string(),
        original_size,
        ..recorded.facts
    };
    let written = writer::write(
        &core,
        &memory,
        recorded.ranges,
        &facts,
        &writer::Output {
            path: &options.output,
            compress: !options.uncompressed,
            redact_command: options.redact_command,
        },
    )?;
    Ok(PackSummary {
        report,
        original_size,
        packed_size: written.file_size,
        segments: written.segments,
        memory_bytes: written.memory_bytes,
    })
}

/// Analyse a packed core: its memory from itself, everything else from its note.
pub(crate) fn analyze_packed(
    core: &CoreFile,
    note: &std::result::Result<Vec<u8>, usize>,
    options: &Options,
) -> Result<Report> {
    let bad = |reason: String| Error::NotACore {
        path: core.path.clone(),
        reason: format!("its pycore pack note is unreadable: {reason}"),
    };
    let note = note.as_ref().map_err(|size| {
        bad(format!(
            "{size} bytes, more than the {} it may have",
            crate::core::notes::MAX_PACKED_NOTE
        ))
    })?;
    let mut facts: PackedFacts = serde_json::from_slice(note).map_err(|e| bad(e.to_string()))?;
    if facts.format != facts::FORMAT {
        return Err(bad(format!(
            "format {} (this pycore reads format {})",
            facts.format,
            facts::FORMAT
        )));
    }
    // No backing files: only what the packed core holds is read.
    let memory = AddressSpace::new(core);
    // The original core's warnings (truncated, ...), then the packed file's own, in the order
    // the original analysis gives them.
    let mut core_warnings = std::mem::take(&mut facts.core_warnings);
    core_warnings.extend(crate::truncation_warnings(core));
    let mut report = Report::from_core(
        core,
        crate::binaries::executable_mapping_path(core),
        crate::invoked_as(core, &memory),
        core_warnings,
    );
    // The store's file name was the original's.
    report.core.systemd = std::path::Path::new(&facts.original_path)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::report::store_name::parse);
    report.packed = true;
    report.packed_from = Some(PackedFrom {
        path: facts.original_path.clone(),
        size: facts.original_size,
        packed_by: facts.packed_by.clone(),
    });
    report.warnings.extend(facts.warnings.iter().cloned());
    let locals = options.locals && facts.locals;
    if options.locals && !facts.locals {
        report.warnings.push(Warning::new(
            WarningKind::PackedWithout,
            "this packed core was packed without --locals: it holds no variables",
        ));
    }
    let symbols = PackedSymbols(&facts);
    let scope = match locals {
        true => options.locals_scope(),
        false => crate::python::LocalsScope::None,
    };
    match crate::python::inspect(&memory, &symbols, core.arch, scope) {
        Ok(process) => {
            let collectors =
                crate::collectors(core, &memory, &process, || facts.gc_function_ranges.clone());
            report.add_python(
                core,
                (facts.executable.clone(), facts.libpython.clone()),
                process,
                collectors,
            );
        }
        Err(error) => report.set_error(&error),
    }
    if options.show_source {
        let sources = std::mem::take(&mut facts.sources);
        crate::source::annotate_with(
            &mut report,
            |file| sources.get(file).cloned().map(SourceText::Kept),
            false,
        );
    }
    let wants_native = options.native || options.native_all;
    let (mode, frames) = match &mut facts.native {
        Some(record) if wants_native => {
            // No thread has more frames than the unwinder walks (inlined calls aside).
            for (frames, _) in record.threads.values_mut() {
                frames.truncate(crate::native::unwind::MAX_FRAMES.saturating_mul(4));
            }
            (options.native_mode(), NativeFrames::Recorded(record))
        }
        _ => {
            if wants_native {
                report.warnings.push(Warning::new(
                    WarningKind::PackedWithout,
                    "this packed core was packed without --native: only the Python frames, the thread states and the crash site are shown",
                ));
            }
            (NativeMode::Off, NativeFrames::Unwind(None))
        }
    };
    let mut text_words = std::mem::take(&mut facts.text_words);
    crate::report::add_native(
        core,
        &memory,
        crate::binaries::Locator::default(),
        mode,
        Some(facts.crash_function.clone()),
        frames,
        &mut text_words,
        &mut report,
    );
    report.finish();
    Ok(report)
}

/// The symbol answers a packed core's note kept.
struct PackedSymbols<'a>(&'a PackedFacts);

impl SymbolSource for PackedSymbols<'_> {
    fn symbol(&self, name: &str) -> Option<u64> {
        self.0.symbols.get(name).copied().flatten()
    }

    fn version_hint(&self) -> Option<PythonVersion> {
        let (major, minor, micro, level, serial) = self.0.version_hint?;
        Some(PythonVersion {
            major,
            minor,
            micro,
            level,
            serial,
        })
    }

    fn abi_flags(&self) -> String {
        self.0.abi_flags.clone()
    }
}
