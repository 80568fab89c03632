//! The library's error type. Each variant maps to one documented process exit code
//! (see `docs/exit-codes.md`), so scripts can tell "not a core" from "not Python".

use std::path::PathBuf;

/// Everything that can stop an analysis. Messages are one line and say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an ELF core dump: {reason}")]
    NotACore { path: PathBuf, reason: String },
    #[error("the core is not of a Python process: {0}")]
    NotPython(String),
    #[error("{0}")]
    BinaryMissing(String),
    #[error("{path} is not a usable ELF binary: {reason}")]
    BadBinary { path: PathBuf, reason: String },
    #[error(
        "{path} does not match the core: the core's {mapped} has build-id {core_id}, the file has {file_id} (pass the exact binary the process ran)"
    )]
    BuildIdMismatch {
        path: PathBuf,
        mapped: String,
        core_id: String,
        file_id: String,
    },
    #[error(
        "{path} does not match the core: the core keeps no build-id for {mapped}, and the page it holds at file offset {offset:#x} differs from the file's (pass the exact binary the process ran)"
    )]
    HeldPagesMismatch {
        path: PathBuf,
        mapped: String,
        offset: u64,
    },
    /// A binary that is plainly not the build the process ran (not a build-id comparison).
    #[error("{0}")]
    NotTheBuild(String),
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("cannot read the Python interpreter state: {0}")]
    PythonState(String),
}

impl Error {
    /// A stable name for the JSON report's `error.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Open { .. } => "unreadable",
            Error::NotACore { .. } => "not-a-core",
            Error::NotPython(_) => "not-python",
            Error::BinaryMissing(_) => "binary-missing",
            Error::BadBinary { .. } => "bad-binary",
            Error::BuildIdMismatch { .. } | Error::HeldPagesMismatch { .. } => "build-id-mismatch",
            Error::NotTheBuild(_) => "not-the-build",
            Error::UnsupportedVersion(_) => "unsupported-version",
            Error::PythonState(_) => "python-state-unreadable",
        }
    }

    /// The process exit code for this error (documented in docs/exit-codes.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Open { .. } | Error::NotACore { .. } => 3,
            Error::NotPython(_) => 4,
            Error::BinaryMissing(_)
            | Error::BadBinary { .. }
            | Error::BuildIdMismatch { .. }
            | Error::HeldPagesMismatch { .. }
            | Error::NotTheBuild(_) => 5,
            Error::UnsupportedVersion(_) => 6,
            Error::PythonState(_) => 7,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
