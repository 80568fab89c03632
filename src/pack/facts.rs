//! The note `pycore pack` adds to a packed core: what the analysis learnt outside the core's
//! memory (the binaries' symbols and identity, source lines, native names), so that the packed
//! core is analysed with no file but itself. Serialised as JSON (docs/packed-cores.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{BinarySummary, NativeRecord};
use crate::warning::Warning;

/// The note's format; a packed core of another format is refused with a message.
pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PackedFacts {
    pub format: u32,
    /// `pycore X.Y.Z`.
    pub packed_by: String,
    /// The core it was packed from: its path and size in bytes.
    pub original_path: String,
    pub original_size: u64,
    /// Packed with `--locals`: the variables' memory is in it.
    pub locals: bool,
    /// Every symbol the Python walk asked for, with the run-time address found (or none).
    pub symbols: BTreeMap<String, Option<u64>>,
    /// The version and ABI flags the binaries' file names gave.
    pub version_hint: Option<(u8, u8, Option<u8>, u8, u8)>,
    pub abi_flags: String,
    pub executable: Option<BinarySummary>,
    pub libpython: Option<BinarySummary>,
    /// The original core's own warnings (it was truncated, it had too many threads).
    pub core_warnings: Vec<Warning>,
    /// Warnings of the original analysis about the binaries.
    pub warnings: Vec<Warning>,
    /// Link-time ranges of the garbage collector's functions, run-time addresses.
    pub gc_function_ranges: Vec<(u64, u64)>,
    /// The crashed thread's innermost native function, as the original analysis named it.
    pub crash_function: Option<String>,
    /// Source lines shown (and the lines checked to tell a changed file), by file and number.
    pub sources: crate::source::LinesUsed,
    /// Packed with `--native`/`--native-all`: every thread's named native frames.
    #[serde(default)]
    pub native: Option<NativeRecord>,
    /// The instruction words at and before the threads' pcs that the original analysis read
    /// from the mapped files (aarch64 thread states: is there an `svc` there?), by address.
    #[serde(default)]
    pub text_words: BTreeMap<u64, u32>,
}
