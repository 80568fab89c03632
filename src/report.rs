//! The report: plain data describing the process, serialised as the `--json` output.
//! Its schema is documented in docs/json-schema.md; bump `SCHEMA_VERSION` on any breaking change.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::binaries::{LoadedImage, PythonBinaries};
use crate::core::signal::{self, SignalDescription};
use crate::core::{CoreFile, Dumper, Registers, SignalInfo, ThreadStatus};
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

/// `crashed`: killed (or, under gdb, stopped) by a crash signal; `snapshot`: taken from a live
/// process (gcore, or gdb stopped at a breakpoint or interrupt); `unknown`.
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
    /// The signal that crashed the process (for snapshots: whatever stopped it).
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
        let crash = crash_summary(core.dumper, &core.threads, core.signal.as_ref());
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

/// Why the core exists, and the thread that took the signal. Who wrote the core does not decide
/// whether something crashed; the signal information does (docs/json-schema.md, `crash.kind`):
///
/// - The kernel writes cores of fatal signals only: "crashed". It writes one NT_SIGINFO, the
///   signal as every thread's `pr_cursig`, and the dumping thread's NT_PRSTATUS first
///   (fs/binfmt_elf.c, fill_note_info): only the order tells which thread took it.
/// - gdb (`gcore`, `generate-core-file`) writes the signal the process is stopped with as every
///   thread's `pr_cursig` (0 when it attached to a running process) and, after each thread's
///   NT_PRSTATUS, that thread's own siginfo: the thread that took the signal is the one whose
///   NT_SIGINFO has `pr_cursig`'s signal (gdb also writes it first); the others have the SIGSTOP
///   gdb stopped them with. Stopped by a crash signal ([`signal::is_crash_signal`]: SIGSEGV,
///   SIGABRT, ... as gdb's "Program received signal SIGSEGV"): "crashed". Otherwise (attached:
///   0 and SIGSTOP; a breakpoint's SIGTRAP; an interrupt's SIGINT): "snapshot", with no crashed
///   thread and the signal that stopped it.
/// - Other dumpers are read the same way, and are "unknown" when the signal is no crash signal.
fn crash_summary(
    dumper: Dumper,
    threads: &[ThreadStatus],
    first_siginfo: Option<&SignalInfo>,
) -> CrashSummary {
    if dumper == Dumper::Kernel {
        let signal = first_siginfo.map(signal::describe);
        return CrashSummary {
            kind: CoreKind::Crashed,
            thread: signal.as_ref().and(threads.first()).map(|t| t.tid),
            signal: signal.filter(|s| s.number != 0),
        };
    }
    let matches = |t: &&ThreadStatus, info: Option<&SignalInfo>| {
        t.signal != 0 && info.is_some_and(|i| i.signo == t.signal)
    };
    let taken = threads
        .iter()
        // gdb: the thread whose own siginfo is the signal.
        .find(|t| matches(t, t.siginfo.as_ref()))
        // One NT_SIGINFO for the process: the first thread stopped by its signal.
        .or_else(|| threads.iter().find(|t| matches(t, first_siginfo)))
        // `pr_cursig` without any siginfo.
        .or_else(|| threads.iter().find(|t| t.signal != 0));
    let info = match taken {
        Some(thread) => [thread.siginfo.as_ref(), first_siginfo]
            .into_iter()
            .flatten()
            .find(|i| i.signo == thread.signal)
            .copied(),
        None => first_siginfo.copied(),
    };
    let stopped_by = taken.map_or_else(|| info.map_or(0, |i| i.signo), |t| t.signal);
    let kind = if signal::is_crash_signal(stopped_by) {
        CoreKind::Crashed
    } else if dumper == Dumper::Gdb {
        CoreKind::Snapshot
    } else {
        CoreKind::Unknown
    };
    CrashSummary {
        kind,
        signal: info
            .as_ref()
            .map(signal::describe)
            .filter(|s| s.number != 0),
        thread: taken.filter(|_| kind != CoreKind::Snapshot).map(|t| t.tid),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn info(signo: i32, code: i32, union_word: u64) -> SignalInfo {
        SignalInfo {
            signo,
            errno: 0,
            code,
            union_word,
        }
    }

    fn thread(tid: i32, cursig: i32, siginfo: Option<SignalInfo>) -> ThreadStatus {
        ThreadStatus {
            tid,
            signal: cursig,
            registers: Registers::default(),
            siginfo,
        }
    }

    /// The notes gdb 13 wrote for a process stopped with `cursig`: every thread's pr_cursig is
    /// it, the signalled thread comes first with its own siginfo, the others have the SIGSTOP
    /// (SI_TKILL from gdb, pid 900) gdb stopped them with.
    fn gdb_threads(cursig: i32, taken: SignalInfo) -> Vec<ThreadStatus> {
        let stop = info(19, -6, 900);
        vec![
            thread(103, cursig, Some(taken)),
            thread(100, cursig, Some(stop)),
            thread(102, cursig, Some(stop)),
        ]
    }

    fn summary(dumper: Dumper, threads: &[ThreadStatus]) -> CrashSummary {
        let first = threads.iter().find_map(|t| t.siginfo);
        crash_summary(dumper, threads, first.as_ref())
    }

    #[test]
    fn gdb_core_of_a_segfault_is_a_crash_in_the_faulting_thread() {
        let crash = summary(Dumper::Gdb, &gdb_threads(11, info(11, 1, 0)));
        assert_eq!(crash.kind, CoreKind::Crashed);
        assert_eq!(crash.thread, Some(103));
        let signal = crash.signal.unwrap();
        assert_eq!(signal.name, "SIGSEGV");
        assert_eq!(signal.code_name.as_deref(), Some("SEGV_MAPERR"));
        assert_eq!(signal.fault_address.as_deref(), Some("0x0"));
    }

    #[test]
    fn gdb_core_of_an_abort_names_the_thread_even_if_not_first() {
        let mut threads = gdb_threads(6, info(6, -6, 100));
        threads.rotate_left(1);
        let crash = summary(Dumper::Gdb, &threads);
        assert_eq!(crash.kind, CoreKind::Crashed);
        assert_eq!(crash.thread, Some(103));
        assert_eq!(crash.signal.unwrap().code_name.as_deref(), Some("SI_TKILL"));
    }

    #[test]
    fn gcore_breakpoint_and_interrupt_are_snapshots() {
        // gcore: pr_cursig 0, every thread stopped by the attach's SIGSTOP (SI_KERNEL).
        let attach = info(19, 0x80, 0);
        let gcore = [thread(100, 0, Some(attach)), thread(101, 0, Some(attach))];
        let interrupt = gdb_threads(2, info(2, 0, 4242));
        let breakpoint = [thread(100, 5, Some(info(5, 0x80, 0)))];
        for (threads, name) in [
            (&gcore[..], "SIGSTOP"),
            (&interrupt[..], "SIGINT"),
            (&breakpoint[..], "SIGTRAP"),
        ] {
            let crash = summary(Dumper::Gdb, threads);
            assert_eq!(crash.kind, CoreKind::Snapshot, "{name}");
            assert_eq!(crash.thread, None, "{name}");
            assert_eq!(crash.signal.unwrap().name, name);
        }
    }

    #[test]
    fn kernel_cores_are_crashes_of_their_first_thread() {
        // One NT_SIGINFO, after the first thread's NT_PRSTATUS; SIGTRAP included.
        for signo in [11, 5, 3] {
            let threads = [
                thread(7, signo, Some(info(signo, 1, 0))),
                thread(5, signo, None),
            ];
            let crash = summary(Dumper::Kernel, &threads);
            assert_eq!(crash.kind, CoreKind::Crashed);
            assert_eq!(crash.thread, Some(7));
        }
    }

    #[test]
    fn unknown_dumper_is_judged_by_its_signal() {
        let one_siginfo = [thread(5, 0, None), thread(7, 8, None)];
        let crash = crash_summary(Dumper::Unknown, &one_siginfo, Some(&info(8, 1, 0x1234)));
        assert_eq!(crash.kind, CoreKind::Crashed);
        assert_eq!(crash.thread, Some(7));
        let stopped = [thread(5, 5, Some(info(5, 1, 0)))];
        assert_eq!(summary(Dumper::Unknown, &stopped).kind, CoreKind::Unknown);
        // pr_cursig without any siginfo: a crash of that thread, signal unknown.
        let bare = [thread(5, 0, None), thread(7, 11, None)];
        let crash = summary(Dumper::Gdb, &bare);
        assert_eq!((crash.kind, crash.thread), (CoreKind::Crashed, Some(7)));
        assert!(crash.signal.is_none());
    }
}
