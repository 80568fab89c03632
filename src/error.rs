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
    #[error(
        "the core is not of a Python process: neither the executable nor a mapped libpython defines _PyRuntime or interp_head"
    )]
    NotPython,
    /// `debuginfod`: what asking the servers of `$DEBUGINFOD_URLS` gave, "" when none was asked.
    #[error(
        "the core's executable {core_path} is not on this machine; pass --python PATH (or --sysroot DIR) to the same build{debuginfod}"
    )]
    ExecutableMissing {
        core_path: String,
        debuginfod: String,
    },
    #[error(
        "the core's {core_path} is not on this machine; pass --lib-path DIR (a folder with that file) or --sysroot DIR{debuginfod}"
    )]
    LibpythonMissing {
        core_path: String,
        debuginfod: String,
    },
    #[error("none of {} exists{debuginfod}", list(.tried))]
    NoCandidate {
        tried: Vec<PathBuf>,
        debuginfod: String,
    },
    #[error("--python {path} {problem}")]
    PythonArgument {
        path: PathBuf,
        problem: ArgumentProblem,
    },
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
    /// A launcher that needs libpython, for a process that ran a python with the interpreter
    /// linked in: plainly not the build the process ran (no build-id comparison needed).
    #[error(
        "{} is a launcher linking {needed}, but the process ran {ran} with the interpreter linked in (no libpython was mapped), so it is not the build the process ran; pass --python of that build", .launcher.display()
    )]
    LauncherForStaticPython {
        launcher: PathBuf,
        needed: String,
        ran: String,
    },
    #[error(
        "cannot tell the CPython version: no _Py_DebugOffsets, no Py_Version, and no version in the binaries' file names"
    )]
    UnknownVersion,
    #[error("CPython {version}{shape} is newer than this pycore knows (it knows {})", .known.join(", "))]
    NewerVersion {
        version: String,
        /// "" or " debug build", " free-threaded build".
        shape: String,
        known: Vec<String>,
    },
    #[error("CPython {version}{shape} is not supported by this pycore (supported: {})", .known.join(", "))]
    UnsupportedVersion {
        version: String,
        shape: String,
        known: Vec<String>,
    },
    #[error("cannot read the Python interpreter state: pycore's {version} table has no {member}")]
    TableLacks {
        version: String,
        member: &'static str,
    },
    #[error("cannot read the Python interpreter state: {what}: {reason}")]
    StateUnreadable { what: &'static str, reason: String },
    #[error(
        "cannot read the Python interpreter state: this stripped build has no interp_head symbol and no thread held the GIL, so the interpreter cannot be found"
    )]
    InterpreterNotFound,
    #[error(
        "cannot read the Python interpreter state: no interpreter: the process had not initialised Python yet or had finalised it"
    )]
    NoInterpreter,
    #[error("pycore pack cannot pack {what}")]
    PackUnsupported { what: String },
    /// The analysis `pycore pack` runs could not read the Python state: nothing to pack.
    #[error("nothing packed: {reason}")]
    PackFailed { reason: String, code: i32 },
    #[error("cannot write the packed core {path}: {source}")]
    PackWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with the file given as `--python`.
#[derive(Debug, thiserror::Error)]
pub enum ArgumentProblem {
    #[error("does not exist")]
    Missing,
    #[error("is a directory, not a python executable")]
    Directory,
    #[error("is not a regular file")]
    NotAFile,
    #[error("cannot be read: {0}")]
    Unreadable(std::io::Error),
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// A stable name for the JSON report's `error.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Open { .. } => "unreadable",
            Error::NotACore { .. } => "not-a-core",
            Error::NotPython => "not-python",
            Error::ExecutableMissing { .. }
            | Error::LibpythonMissing { .. }
            | Error::NoCandidate { .. }
            | Error::PythonArgument { .. } => "binary-missing",
            Error::BadBinary { .. } => "bad-binary",
            Error::BuildIdMismatch { .. } | Error::HeldPagesMismatch { .. } => "build-id-mismatch",
            Error::LauncherForStaticPython { .. } => "not-the-build",
            Error::UnknownVersion
            | Error::NewerVersion { .. }
            | Error::UnsupportedVersion { .. } => "unsupported-version",
            Error::TableLacks { .. }
            | Error::StateUnreadable { .. }
            | Error::InterpreterNotFound
            | Error::NoInterpreter => "python-state-unreadable",
            Error::PackUnsupported { .. } => "usage",
            Error::PackFailed { .. } => "nothing-to-pack",
            Error::PackWrite { .. } => "output",
        }
    }

    /// The process exit code for this error (documented in docs/exit-codes.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Open { .. } | Error::NotACore { .. } => 3,
            Error::NotPython => 4,
            Error::ExecutableMissing { .. }
            | Error::LibpythonMissing { .. }
            | Error::NoCandidate { .. }
            | Error::PythonArgument { .. }
            | Error::BadBinary { .. }
            | Error::BuildIdMismatch { .. }
            | Error::HeldPagesMismatch { .. }
            | Error::LauncherForStaticPython { .. } => 5,
            Error::UnknownVersion
            | Error::NewerVersion { .. }
            | Error::UnsupportedVersion { .. } => 6,
            Error::TableLacks { .. }
            | Error::StateUnreadable { .. }
            | Error::InterpreterNotFound
            | Error::NoInterpreter => 7,
            Error::PackUnsupported { .. } => 2,
            Error::PackFailed { code, .. } => *code,
            Error::PackWrite { .. } => 74,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
