//! Many cores at once: `pycore analyze CORE… | DIR` analyses every core in parallel (rayon),
//! each as `pycore analyze CORE` would, keeping the order they were named in.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::report::Report;
use crate::Options;

/// At most this many files are taken from one directory.
const MAX_FILES_PER_DIRECTORY: usize = 100_000;

/// One core's outcome.
pub struct Analysed {
    pub path: PathBuf,
    pub result: Result<Report>,
}

impl Analysed {
    /// The exit code `pycore analyze` gives for this core alone.
    pub fn exit_code(&self) -> i32 {
        match &self.result {
            Ok(report) => report.exit_code(),
            Err(error) => error.exit_code(),
        }
    }
}

/// The cores named: files as given, directories replaced by the regular files in them (not
/// recursively, hidden files skipped, sorted by name).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut cores = Vec::new();
    for path in paths {
        if !path.is_dir() {
            cores.push(path.clone());
            continue;
        }
        let open = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(open)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && !is_hidden(p))
            .take(MAX_FILES_PER_DIRECTORY)
            .collect();
        found.sort();
        cores.extend(found);
    }
    Ok(cores)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// How many cores are analysed at once before their results are handed on: the reports of a
/// whole directory are never all in memory.
pub const CHUNK: usize = 32;

/// Analyse every core of `cores` with `options` (its `core` is replaced by each), in parallel,
/// handing each result to `each` in the order the cores were named, [`CHUNK`] at a time.
pub fn analyze_each(cores: &[PathBuf], options: &Options, mut each: impl FnMut(Analysed)) {
    for chunk in cores.chunks(CHUNK) {
        for analysed in analyze_all(chunk, options) {
            each(analysed);
        }
    }
}

/// Analyse every core of `cores` with `options` (its `core` is replaced by each), in parallel.
fn analyze_all(cores: &[PathBuf], options: &Options) -> Vec<Analysed> {
    cores
        .par_iter()
        .map(|path| {
            let options = Options {
                core: path.clone(),
                ..options.clone()
            };
            Analysed {
                path: path.clone(),
                result: crate::analyze(&options),
            }
        })
        .collect()
}
