//! The report: plain data describing the process, serialised as the `--json` output.
//! Its schema is documented in docs/json-schema.md; bump `SCHEMA_VERSION` on any breaking change.

mod asyncio;
mod greenlets;
mod merge;
mod native;
mod signature;
pub mod store_name;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::binaries::{LoadedImage, PythonBinaries};
/// The last component of a path as the core recorded it (`libc.so.6`): for the renderers.
pub(crate) use crate::binary::display_name as file_name;
use crate::core::signal;
use crate::core::{CoreFile, Registers, SignalInfo, ThreadStatus};
use crate::error::Error;
pub use crate::frame::{FrameKind, FrameReport, LocalKind, LocalReport, NativeFrameReport};
use crate::python::{PythonProcess, PythonThread};
use crate::warning::{Warning, WarningKind};

// What renderers need of the layers below, so that they read the report alone.
pub use crate::core::signal::{signal_name, SignalDescription, SIGSTOP};
pub use crate::core::{Arch, Dumper};
pub use crate::native::syscall::{StateKind, ThreadState};
pub use crate::python::exceptions::ExceptionInfo;
pub use crate::python::frames::REPEAT_CUTOFF;
pub use crate::python::Shape;
pub use asyncio::{AsyncioLoopReport, TaskFrameReport, TaskReport};
pub use greenlets::{GreenletReport, GreenletSummary};
pub use native::CrashLocation;
pub(crate) use native::{add_native, NativeFrames, NativeRecord};

pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub core: CoreSummary,
    /// Why the core exists: the fatal signal, or a snapshot of a live process.
    pub crash: CrashSummary,
    /// What was read of the Python interpreter; null when it could not be read (see `error`).
    pub python: Option<PythonSummary>,
    /// Every thread of the core, in the core's order (the kernel lists the thread that took the
    /// fatal signal first), then Python thread states that match no thread of the core.
    pub threads: Vec<ThreadReport>,
    /// With `greenlet` loaded: every greenlet found, per thread the running one (its frames are
    /// the thread's) then the suspended ones (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub greenlets: Vec<GreenletReport>,
    /// asyncio's event loops (one entry per loop, per interpreter) and all their tasks; absent
    /// when the process has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asyncio: Vec<AsyncioLoopReport>,
    /// Problems that make the Python data partial (they set exit code 1).
    pub warnings: Vec<Warning>,
    /// Information that does not affect the Python data (e.g. source files that changed).
    pub notes: Vec<String>,
    /// Why the Python state could not be read, when it could not: the process, the crash and
    /// the threads above are still what the core says.
    pub error: Option<ReportError>,
    /// The core is one `pycore pack` wrote (analysed from itself alone).
    #[serde(default)]
    pub packed: bool,
    /// For a packed core, the core it was packed from.
    #[serde(default)]
    pub packed_from: Option<PackedFrom>,
    /// Its strings from the core were made safe for terminals (`render::make_printable`), so
    /// renderers need no cleaned copy. Not serialised.
    #[serde(skip)]
    pub(crate) printable: bool,
}

/// The core a packed core was made from (`packed_from`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackedFrom {
    /// Its path when it was packed.
    pub path: String,
    /// Its size in bytes (as read: decompressed).
    pub size: u64,
    /// `pycore X.Y.Z`.
    pub packed_by: String,
}

/// An analysis that stopped after reading the core: its exit code, a stable kind and the
/// message (the same as on standard error).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportError {
    pub code: i32,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub arch: Arch,
    pub dumper: Dumper,
    /// A systemd-coredump store file's name read (`core.COMM.UID.BOOTID.PID.USEC.zst`): the
    /// dump's time is recorded nowhere else; null for other names.
    #[serde(default)]
    pub systemd: Option<store_name::StoreName>,
}

/// `crashed`: killed (or, under gdb, stopped) by a crash signal; `snapshot`: taken from a live
/// process (gcore, or gdb stopped at a breakpoint or interrupt); `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreKind {
    Crashed,
    Snapshot,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashSummary {
    pub kind: CoreKind,
    /// The signal that crashed the process (for snapshots: whatever stopped it).
    pub signal: Option<SignalDescription>,
    /// Kernel TID of the thread that received the signal.
    pub thread: Option<i32>,
    /// Crashes: where the crashed thread was, its innermost native frame.
    pub location: Option<CrashLocation>,
    /// Crashes: a stable hash of the signal and the crashed thread's innermost Python frames
    /// (`sig1-…`, see `signature.rs`): equal for two cores of the same crash.
    #[serde(default)]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PythonSummary {
    /// `3.12.1`, or `3.9` when only the file name told.
    pub version: String,
    pub shape: Shape,
    /// Whether a garbage collection was running (in any interpreter); null if unknown.
    pub gc_collecting: Option<bool>,
    /// Every interpreter with a thread state: the main one first, then subinterpreters.
    pub interpreters: Vec<InterpreterSummary>,
    pub executable: Option<BinarySummary>,
    pub libpython: Option<BinarySummary>,
    /// The `greenlet` package, when the process loaded it (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greenlet: Option<GreenletSummary>,
}

/// One interpreter of the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterpreterSummary {
    /// `PyInterpreterState.id` (0 for the main interpreter); null before 3.7.
    pub id: Option<i64>,
    pub main: bool,
    /// Address of its `PyInterpreterState`.
    pub address: String,
    /// How many thread states it has.
    pub thread_states: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub handling_exception: Option<ExceptionInfo>,
    /// The signal the thread was stopped by, 0 if none.
    pub signal: i32,
    /// What the thread was blocked in, from its registers (x86_64 `orig_rax`, aarch64 x8 after
    /// an `svc #0`); null if unknown.
    pub state: Option<ThreadState>,
    /// `0x…` hex strings: the instruction and stack pointers.
    pub pc: Option<String>,
    pub sp: Option<String>,
    /// Id of the interpreter whose code the thread runs now (its innermost thread state).
    pub interpreter: Option<i64>,
    /// Innermost first, over all its thread states (each frame names its interpreter).
    pub frames: Vec<FrameReport>,
    /// The thread's Python thread states, one per interpreter it has entered, innermost first:
    /// `frame_count` frames of `frames` belong to each, in order.
    pub thread_states: Vec<ThreadStateReport>,
    pub warnings: Vec<Warning>,
}

/// One `PyThreadState` of a thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadStateReport {
    pub interpreter: Option<i64>,
    pub main_interpreter: bool,
    /// Address of the `PyThreadState`.
    pub address: String,
    /// The thread's name in that interpreter's `threading`, if registered there.
    pub name: Option<String>,
    pub holds_gil: Option<bool>,
    pub handling_exception: Option<ExceptionInfo>,
    pub frame_count: usize,
}

impl Report {
    /// What the core alone tells, before (and whether or not) its Python state can be read:
    /// the process, the crash, and every thread's TID and registers.
    pub(crate) fn from_core(
        core: &CoreFile,
        executable: Option<String>,
        invoked_as: Option<String>,
        warnings: Vec<Warning>,
    ) -> Report {
        let pid = core
            .process
            .as_ref()
            .map(|p| p.pid)
            .or_else(|| core.threads.first().map(|t| t.tid));
        let crash = crash_summary(core.dumper, &core.threads, core.signal.as_ref());
        let threads = core
            .threads
            .iter()
            .map(|status| {
                let mut report = thread_report(
                    Some(status.tid),
                    status.signal,
                    Some(status.registers),
                    Vec::new(),
                );
                // Only NT_PRPSINFO says which thread is the main one (its TID is the pid).
                report.is_main = core.process.is_some() && Some(status.tid) == pid;
                report.crashed = Some(status.tid) == crash.thread;
                report
            })
            .collect();
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
                executable,
                invoked_as,
                arch: core.arch,
                dumper: core.dumper,
                systemd: core
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(store_name::parse),
            },
            crash,
            python: None,
            threads,
            greenlets: Vec::new(),
            asyncio: Vec::new(),
            warnings,
            notes: Vec::new(),
            error: None,
            packed: false,
            packed_from: None,
            printable: false,
        }
    }

    /// Join the Python thread states read from the core to its threads (a report made by
    /// [`Report::from_core`] of the same core).
    /// `collectors`: TIDs found running the garbage collector (`None`: a collection runs but
    /// which thread runs it cannot be told).
    pub(crate) fn add_python(
        &mut self,
        core: &CoreFile,
        (executable, libpython): (Option<BinarySummary>, Option<BinarySummary>),
        mut process: PythonProcess,
        collectors: Option<Vec<i32>>,
    ) {
        let greenlet_state = process.greenlets.take();
        // Kernel TID of each thread: `native_thread_id` (3.11+), else the thread whose thread
        // pointer equals the `pthread_t` (x86_64 glibc: `fs_base`; on aarch64 the thread
        // pointer lies a glibc-release-dependent `sizeof(struct pthread)` past it, so it is not
        // used), else the TID glibc keeps in that `struct pthread`.
        let by_thread_pointer: HashMap<u64, i32> = core
            .threads
            .iter()
            .filter(|_| core.arch == crate::core::Arch::X86_64)
            .filter_map(|t| Some((t.registers.thread_pointer?, t.tid)))
            .collect();
        let mut python_by_tid: HashMap<i32, Vec<PythonThread>> = HashMap::new();
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
        let interpreters = interpreter_summaries(&process.threads);
        let mut tid_of_ident: HashMap<u64, i32> = HashMap::new();
        let mut interpreter_ids: HashMap<u64, Option<i64>> = HashMap::new();
        // One OS thread holds a thread state in every interpreter it has entered (a thread
        // running a subinterpreter keeps its main-interpreter state, with the frame that
        // called into it): all of them join the one thread.
        let core_tids: std::collections::HashSet<i32> =
            core.threads.iter().map(|t| t.tid).collect();
        for thread in process.threads {
            let tid = thread
                .native_thread_id
                .and_then(|id| i32::try_from(id).ok())
                .filter(|id| core_tids.contains(id))
                .or_else(|| by_thread_pointer.get(&thread.thread_id).copied())
                .or_else(|| {
                    thread
                        .pthread_tid
                        .and_then(|id| i32::try_from(id).ok())
                        .filter(|id| core_tids.contains(id))
                });
            interpreter_ids.insert(thread.interpreter, thread.interpreter_id);
            if let Some(tid) = tid {
                tid_of_ident.insert(thread.thread_id, tid);
            }
            match tid {
                Some(tid) => python_by_tid.entry(tid).or_default().push(thread),
                None => orphans.push(thread),
            }
        }
        for (report, status) in self.threads.iter_mut().zip(&core.threads) {
            let mut states = python_by_tid.remove(&status.tid).unwrap_or_default();
            let stack = core.segment_containing(status.registers.sp);
            order_innermost_first(&mut states, stack.map(|s| (s.vaddr, s.end())));
            let interpreter_collecting = states
                .iter()
                .filter_map(|p| p.interpreter_gc_collecting)
                .reduce(|a, b| a || b);
            let (is_main, crashed) = (report.is_main, report.crashed);
            *report = thread_report(
                Some(status.tid),
                status.signal,
                Some(status.registers),
                states,
            );
            report.is_main = is_main;
            report.crashed = crashed;
            report.gc_collecting = match (interpreter_collecting, &collectors) {
                (Some(true), Some(found)) if !found.is_empty() => Some(found.contains(&status.tid)),
                (Some(true), _) => None,
                (other, _) => other,
            };
        }
        for orphan in orphans {
            self.warnings.push(Warning::new(
                WarningKind::ThreadStateWithoutThread,
                format!(
                    "a Python thread state (thread id {:#x}) matches no thread in the core",
                    orphan.thread_id
                ),
            ));
            self.threads
                .push(thread_report(None, 0, None, vec![orphan]));
        }
        self.asyncio = asyncio::loop_reports(process.event_loops, &tid_of_ident, &interpreter_ids);
        self.warnings.extend(process.warnings);
        self.notes.extend(process.notes);
        self.python = Some(PythonSummary {
            version: process.version.to_string(),
            shape: process.shape,
            gc_collecting,
            interpreters,
            executable,
            libpython,
            greenlet: None,
        });
        if let Some(state) = greenlet_state {
            greenlets::add_greenlets(self, core, state);
        }
    }

    /// Record why the Python state could not be read: the rest of the report stands.
    pub(crate) fn set_error(&mut self, error: &Error) {
        self.error = Some(ReportError {
            code: error.exit_code(),
            kind: error.kind().to_string(),
            message: error.to_string(),
        });
    }

    /// The exit code of `pycore analyze` for this report: the error's, else 1 when any data is
    /// partial (a warning), else 0.
    pub fn exit_code(&self) -> i32 {
        if let Some(error) = &self.error {
            return error.code;
        }
        let partial =
            !self.warnings.is_empty() || self.threads.iter().any(|t| !t.warnings.is_empty());
        i32::from(partial)
    }

    /// Compute what needs the whole report: the crash signature.
    pub(crate) fn finish(&mut self) {
        self.crash.signature = signature::crash_signature(self);
    }

    /// How many interpreters had thread states (0 when the Python state was not read).
    pub fn interpreter_count(&self) -> usize {
        self.python.as_ref().map_or(0, |p| p.interpreters.len())
    }
}

/// One OS thread's report from its thread states, innermost first.
fn thread_report(
    tid: Option<i32>,
    signal: i32,
    registers: Option<Registers>,
    states: Vec<PythonThread>,
) -> ThreadReport {
    let hex = |v: u64| format!("{v:#x}");
    let innermost = states.first();
    // The name `threading` gave the thread where it was started: the outermost state's.
    let name = states.iter().rev().find_map(|s| s.name.clone());
    let holds_gil = if states.iter().any(|s| s.holds_gil == Some(true)) {
        Some(true)
    } else {
        innermost.and_then(|s| s.holds_gil)
    };
    let handling_exception = innermost.and_then(|p| p.handling_exception.clone());
    let interpreter = innermost.and_then(|s| s.interpreter_id);
    let python = !states.is_empty();
    let mut frames = Vec::new();
    let mut thread_states = Vec::with_capacity(states.len());
    let mut warnings = Vec::new();
    for state in states {
        thread_states.push(ThreadStateReport {
            interpreter: state.interpreter_id,
            main_interpreter: state.main_interpreter,
            address: hex(state.address),
            name: state.name,
            holds_gil: state.holds_gil,
            handling_exception: state.handling_exception,
            frame_count: state.frames.len(),
        });
        let first = frames.len();
        // The walk's frames move in whole (one state: the array itself).
        if frames.is_empty() {
            frames = state.frames;
        } else {
            frames.extend(state.frames);
        }
        for frame in frames.iter_mut().skip(first) {
            frame.interpreter = state.interpreter_id;
        }
        warnings.extend(state.warnings);
    }
    ThreadReport {
        tid,
        name,
        python,
        is_main: false,
        crashed: false,
        gc_collecting: None,
        handling_exception,
        holds_gil,
        signal,
        state: None,
        pc: registers.map(|r| hex(r.pc)),
        sp: registers.map(|r| hex(r.sp)),
        interpreter,
        frames,
        thread_states,
        warnings,
    }
}

/// Order one OS thread's thread states from the one it runs now to the one that called into
/// the others. Each state's innermost interpreter loop has a C stack address
/// ([`PythonThread::c_stack_hint`], 3.11+); the stack grows down, so the lowest is the most
/// recent. Without such addresses for all of them (≤3.10), the main interpreter's state is
/// the outermost and newer interpreters (higher ids, created later) are taken as nested deeper;
/// states without an address go after those with one.
fn order_innermost_first(states: &mut [PythonThread], stack: Option<(u64, u64)>) {
    if states.len() < 2 {
        return;
    }
    let on_stack = |state: &PythonThread| {
        let (start, end) = stack?;
        state.c_stack_hint.filter(|a| (start..end).contains(a))
    };
    // States with a C stack address first, by address; any others (no Python running, or
    // ≤3.10) after them by the id rule.
    states.sort_by_key(|s| {
        let hint = on_stack(s);
        (
            hint.is_none(),
            hint,
            s.main_interpreter,
            std::cmp::Reverse(s.interpreter_id),
        )
    });
}

/// Every interpreter that has a thread state, main first.
fn interpreter_summaries(threads: &[PythonThread]) -> Vec<InterpreterSummary> {
    let mut interpreters: Vec<InterpreterSummary> = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    for thread in threads {
        match seen.iter().position(|a| *a == thread.interpreter) {
            // cannot panic: `seen` and `interpreters` are pushed together.
            Some(index) => interpreters[index].thread_states += 1,
            None => {
                seen.push(thread.interpreter);
                interpreters.push(InterpreterSummary {
                    id: thread.interpreter_id,
                    main: thread.main_interpreter,
                    address: format!("{:#x}", thread.interpreter),
                    thread_states: 1,
                });
            }
        }
    }
    interpreters.sort_by_key(|i| (!i.main, i.id));
    interpreters
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
        let signal = first_siginfo
            .map(signal::describe)
            .filter(|s| s.number != 0);
        return CrashSummary {
            kind: CoreKind::Crashed,
            thread: signal.as_ref().and(threads.first()).map(|t| t.tid),
            signal,
            location: None,
            signature: None,
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
        location: None,
        signature: None,
    }
}

/// The executable's and libpython's summaries.
pub(crate) fn binary_summaries(
    binaries: &PythonBinaries,
) -> (Option<BinarySummary>, Option<BinarySummary>) {
    (
        binaries.executable.as_ref().map(binary_summary),
        binaries.libpython.as_ref().map(binary_summary),
    )
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
    use crate::core::signal::tests::info;

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
