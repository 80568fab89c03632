//! The report: plain data describing the process, serialised as the `--json` output.
//! Its schema is documented in docs/json-schema.md; bump `SCHEMA_VERSION` on any breaking change.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::binaries::{LoadedImage, PythonBinaries};
use crate::core::signal::{self, SignalDescription};
use crate::core::{CoreFile, Dumper, Registers};
use crate::python::{Frame, PythonProcess};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub core: CoreSummary,
    /// Why the core exists: the fatal signal, or a snapshot of a live process.
    pub crash: CrashSummary,
    pub python: PythonSummary,
    /// Every thread of the core, in the core's order (the kernel lists the thread that took the
    /// fatal signal first), then Python thread states that match no thread of the core.
    pub threads: Vec<ThreadReport>,
    /// Problems that make the Python data partial (they set exit code 1).
    pub warnings: Vec<String>,
    /// Information that does not affect the Python data (e.g. source files that changed).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoreSummary {
    pub path: PathBuf,
    pub pid: Option<i32>,
    pub ppid: Option<i32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The command line as NT_PRPSINFO kept it (the kernel keeps 80 bytes).
    pub command: Option<String>,
    /// The executable's path as the core recorded it.
    pub executable: Option<String>,
    /// The path the program was started as (`AT_EXECFN`): a symlink such as a virtualenv's
    /// `bin/python`, or the script of a `#!` line.
    pub invoked_as: Option<String>,
    pub arch: crate::core::Arch,
    pub dumper: Dumper,
}

/// `crashed`: killed by a signal; `snapshot`: taken from a live process (gcore); `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreKind {
    Crashed,
    Snapshot,
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrashSummary {
    pub kind: CoreKind,
    /// The signal that made the kernel dump the core (for snapshots: whatever stopped it).
    pub signal: Option<SignalDescription>,
    /// Kernel TID of the thread that received the signal.
    pub thread: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PythonSummary {
    /// `3.12.1`, or `3.9` when only the file name told.
    pub version: String,
    pub shape: crate::python::Shape,
    /// Whether a garbage collection was running (in any interpreter); null if unknown.
    pub gc_collecting: Option<bool>,
    pub executable: Option<BinarySummary>,
    pub libpython: Option<BinarySummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BinarySummary {
    /// The path recorded in the core.
    pub path: String,
    /// The local file read.
    pub local_path: PathBuf,
    pub build_id: Option<String>,
    pub load_address: String,
    /// Detached debug symbols used, if any.
    pub debug_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    /// Kernel thread id; `null` for a Python thread state with no thread in the core.
    pub tid: Option<i32>,
    /// Python thread name (from `threading`), if the thread is registered there.
    pub name: Option<String>,
    /// Whether a Python thread state belongs to this thread.
    pub python: bool,
    /// The process's first thread (its TID is the PID).
    pub is_main: bool,
    /// The thread that received the fatal signal.
    pub crashed: bool,
    pub holds_gil: Option<bool>,
    /// Whether this thread was running a garbage collection; null when a collection was running
    /// but the thread that ran it could not be told.
    pub gc_collecting: Option<bool>,
    /// The exception being handled in an `except` block: `{"type", "message"}`, or null.
    pub handling_exception: Option<crate::python::exceptions::ExceptionInfo>,
    /// The signal the thread was stopped by, 0 if none.
    pub signal: i32,
    /// `0x…` hex strings: the instruction and stack pointers.
    pub pc: Option<String>,
    pub sp: Option<String>,
    /// Innermost first.
    pub frames: Vec<FrameReport>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrameReport {
    pub function: String,
    pub qualname: Option<String>,
    pub file: String,
    pub line: Option<u32>,
    pub first_line: u32,
    /// The source line, when the file could be read (see `--source-root`).
    pub source: Option<String>,
}

impl From<&Frame> for FrameReport {
    fn from(frame: &Frame) -> Self {
        FrameReport {
            function: frame.function.clone(),
            qualname: frame.qualname.clone(),
            file: frame.file.clone(),
            line: frame.line,
            first_line: frame.first_line,
            source: None,
        }
    }
}

impl Report {
    /// Join the core's threads with the Python thread states read from it.
    /// `collectors`: TIDs found running the garbage collector (`None`: a collection runs but
    /// which thread runs it cannot be told).
    pub fn build(
        core: &CoreFile,
        binaries: &PythonBinaries,
        process: PythonProcess,
        collectors: Option<Vec<i32>>,
        invoked_as: Option<String>,
        mut warnings: Vec<String>,
    ) -> Report {
        // Kernel TID of each thread: `native_thread_id` (3.8+), else the thread whose thread
        // pointer equals the `pthread_t` (x86_64 glibc: `fs_base`).
        let by_thread_pointer: HashMap<u64, i32> = core
            .threads
            .iter()
            .filter_map(|t| Some((t.registers.thread_pointer?, t.tid)))
            .collect();
        let mut python_by_tid: HashMap<i32, crate::python::PythonThread> = HashMap::new();
        let mut orphans = Vec::new();
        let gc_flags: Vec<Option<bool>> = process
            .threads
            .iter()
            .map(|t| t.interpreter_gc_collecting)
            .collect();
        let gc_collecting = if gc_flags.contains(&Some(true)) {
            Some(true)
        } else if !gc_flags.is_empty() && gc_flags.iter().all(|f| *f == Some(false)) {
            Some(false)
        } else {
            None
        };
        for thread in process.threads {
            let tid = thread
                .native_thread_id
                .and_then(|id| i32::try_from(id).ok())
                .filter(|id| core.threads.iter().any(|t| t.tid == *id))
                .or_else(|| by_thread_pointer.get(&thread.thread_id).copied());
            match tid {
                Some(tid) if !python_by_tid.contains_key(&tid) => {
                    python_by_tid.insert(tid, thread);
                }
                _ => orphans.push(thread),
            }
        }
        let pid = core
            .process
            .as_ref()
            .map(|p| p.pid)
            .or_else(|| core.threads.first().map(|t| t.tid));
        let crash = crash_summary(core);
        let mut threads: Vec<ThreadReport> = core
            .threads
            .iter()
            .map(|status| {
                let python = python_by_tid.remove(&status.tid);
                let interpreter_collecting =
                    python.as_ref().and_then(|p| p.interpreter_gc_collecting);
                let mut report = thread_report(
                    Some(status.tid),
                    status.signal,
                    Some(status.registers),
                    python,
                );
                report.is_main = Some(status.tid) == pid;
                report.crashed = Some(status.tid) == crash.thread;
                report.gc_collecting = match (interpreter_collecting, &collectors) {
                    (Some(true), Some(found)) if !found.is_empty() => {
                        Some(found.contains(&status.tid))
                    }
                    (Some(true), _) => None,
                    (other, _) => other,
                };
                report
            })
            .collect();
        for orphan in orphans {
            warnings.push(format!(
                "a Python thread state (thread id {:#x}) matches no thread in the core",
                orphan.thread_id
            ));
            threads.push(thread_report(None, 0, None, Some(orphan)));
        }
        warnings.extend(process.warnings);
        Report {
            schema_version: SCHEMA_VERSION,
            core: CoreSummary {
                path: core.path.clone(),
                pid,
                ppid: core.process.as_ref().map(|p| p.ppid),
                uid: core.process.as_ref().map(|p| p.uid),
                gid: core.process.as_ref().map(|p| p.gid),
                command: core
                    .process
                    .as_ref()
                    .map(|p| p.args.clone())
                    .filter(|a| !a.is_empty()),
                executable: binaries.executable.as_ref().map(|e| e.core_path.clone()),
                invoked_as,
                arch: core.arch,
                dumper: core.dumper,
            },
            crash,
            python: PythonSummary {
                version: process.version.to_string(),
                shape: process.shape,
                gc_collecting,
                executable: binaries.executable.as_ref().map(binary_summary),
                libpython: binaries.libpython.as_ref().map(binary_summary),
            },
            threads,
            warnings,
            notes: Vec::new(),
        }
    }
}

fn thread_report(
    tid: Option<i32>,
    signal: i32,
    registers: Option<Registers>,
    python: Option<crate::python::PythonThread>,
) -> ThreadReport {
    let hex = |v: u64| format!("{v:#x}");
    ThreadReport {
        tid,
        name: python.as_ref().and_then(|p| p.name.clone()),
        python: python.is_some(),
        is_main: false,
        crashed: false,
        gc_collecting: None,
        handling_exception: python.as_ref().and_then(|p| p.handling_exception.clone()),
        holds_gil: python.as_ref().and_then(|p| p.holds_gil),
        signal,
        pc: registers.map(|r| hex(r.pc)),
        sp: registers.map(|r| hex(r.sp)),
        frames: python
            .as_ref()
            .map(|p| p.frames.iter().map(FrameReport::from).collect())
            .unwrap_or_default(),
        warnings: python.map(|p| p.warnings).unwrap_or_default(),
    }
}

/// The fatal signal and the thread that took it. The kernel writes the NT_PRSTATUS of the
/// dumping thread first, with `pr_cursig` set to the signal (fs/binfmt_elf.c, fill_note_info).
fn crash_summary(core: &CoreFile) -> CrashSummary {
    let signal = core.signal.as_ref().map(signal::describe);
    let kind = match core.dumper {
        Dumper::Gdb => CoreKind::Snapshot,
        Dumper::Kernel => CoreKind::Crashed,
        Dumper::Unknown => CoreKind::Unknown,
    };
    // The kernel records the fatal signal as every thread's pr_cursig, so only the order
    // tells which thread took it: the dumping thread's NT_PRSTATUS comes first.
    let thread = match (kind, &signal) {
        (CoreKind::Snapshot, _) | (_, None) => None,
        (CoreKind::Crashed, Some(_)) => core.threads.first().map(|t| t.tid),
        (CoreKind::Unknown, Some(signal)) => core
            .threads
            .iter()
            .find(|t| t.signal == signal.number)
            .map(|t| t.tid),
    };
    CrashSummary {
        kind,
        signal: signal.filter(|s| s.number != 0),
        thread,
    }
}

fn binary_summary(loaded: &LoadedImage) -> BinarySummary {
    BinarySummary {
        path: loaded.core_path.clone(),
        local_path: loaded.image.path.clone(),
        build_id: loaded
            .core_build_id
            .as_deref()
            .or(loaded.image.build_id.as_deref())
            .map(crate::bytes::hex),
        debug_file: loaded.debug_file.clone(),
        load_address: format!("{:#x}", loaded.bias.wrapping_add(loaded.image.base_vaddr)),
    }
}
