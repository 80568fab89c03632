//! The crash forensics of pycore's report (`core.*`, `crash.*`,
//! `threads[].is_main`, `threads[].crashed`, see docs/json-schema.md) against
//! what the scenario process recorded about itself and how its core was made.

use serde_json::Value;

use super::matrix::CoreKind;
use super::scenario::Core;
use super::stacks::{Recording, Require};

/// A signal and its si_code, as pycore must name them.
#[derive(Clone, Copy, Debug)]
pub struct SignalFacts {
    pub number: u64,
    pub name: &'static str,
    pub code: i64,
    pub code_name: &'static str,
}

/// A NULL-pointer write: SIGSEGV, address not mapped.
pub const SEGV_MAPERR: SignalFacts = SignalFacts {
    number: 11,
    name: "SIGSEGV",
    code: 1,
    code_name: "SEGV_MAPERR",
};
/// abort(): glibc raises SIGABRT on its own thread with tgkill.
pub const ABRT_TKILL: SignalFacts = SignalFacts {
    number: 6,
    name: "SIGABRT",
    code: -6,
    code_name: "SI_TKILL",
};
/// An integer division by zero trapped by the CPU.
pub const FPE_INTDIV: SignalFacts = SignalFacts {
    number: 8,
    name: "SIGFPE",
    code: 1,
    code_name: "FPE_INTDIV",
};
/// A read of a file mapping beyond the end of the file.
pub const BUS_ADRERR: SignalFacts = SignalFacts {
    number: 7,
    name: "SIGBUS",
    code: 2,
    code_name: "BUS_ADRERR",
};
/// kill(1) from another process.
pub const QUIT_USER: SignalFacts = SignalFacts {
    number: 3,
    name: "SIGQUIT",
    code: 0,
    code_name: "SI_USER",
};

/// How a crash's fault address must look.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Not a fault raised by the kernel: null.
    None,
    Exact(u64),
    /// In `[start, end)`.
    Within(u64, u64),
}

/// Who sent the signal: nobody (a fault), or a process and its real uid.
#[derive(Clone, Copy, Debug)]
pub enum Sender {
    None,
    Process { pid: u64, uid: u64 },
}

#[derive(Clone, Copy, Debug)]
pub enum ExpectedCrash {
    /// gcore of a live process: crash.kind "snapshot", no crashed thread.
    Snapshot,
    Crashed {
        signal: SignalFacts,
        /// The TID that took the signal.
        thread: u64,
        fault: Fault,
        sender: Sender,
    },
}

/// What a test expects of pycore's report beyond the stacks.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// core.dumper: "gdb" or "kernel".
    pub dumper: &'static str,
    pub crash: ExpectedCrash,
    /// Optional report fields whose absence fails the test.
    pub require: Require,
    /// The core.ppid a kernel core has: the kernel writes the TID of the
    /// parent's thread that forked the process (fs/binfmt_elf.c fill_psinfo:
    /// task_pid_vnr(real_parent)), not the parent's pid that getppid()
    /// returns; they differ when a thread other than the parent's main thread
    /// started the process, as the harness's matrix threads do. `None`: the
    /// recorded getppid() (gcore reads /proc/PID/stat, which has that).
    pub parent_thread: Option<u64>,
}

/// How a crashing scenario's signal came about, for its expected sender and
/// fault address.
#[derive(Clone, Copy, Debug)]
pub enum CrashCause {
    /// A fault the CPU raised: no sender; the fault address is what the
    /// recording's "crash" says.
    Fault,
    /// A signal the process sent to its own thread (abort()): the sender is
    /// the process itself, with its own uid; no fault address.
    OwnThread,
}

impl Expect {
    /// A gcore snapshot.
    pub fn snapshot() -> Expect {
        Expect {
            dumper: "gdb",
            crash: ExpectedCrash::Snapshot,
            require: Require::default(),
            parent_thread: None,
        }
    }

    /// The kernel's core after the harness sent SIGQUIT with kill(1) from
    /// `sender` (running as `uid`). The kernel gives a signal sent to a
    /// process to its main thread unless that thread blocks it or has a signal
    /// pending already (kernel/signal.c, complete_signal); the scenarios'
    /// main threads park without blocking any, so the main thread takes it.
    pub fn quit(
        recording: &Recording,
        core: &Core,
        sender: u32,
        uid: u64,
    ) -> Result<Expect, String> {
        let main = recording
            .pid
            .ok_or("scenario problem: the recording has no pid")?;
        Ok(Expect {
            dumper: "kernel",
            crash: ExpectedCrash::Crashed {
                signal: QUIT_USER,
                thread: main,
                fault: Fault::None,
                sender: Sender::Process {
                    pid: sender.into(),
                    uid,
                },
            },
            require: Require::default(),
            parent_thread: Some(core.spawned_by),
        })
    }

    /// The core of a scenario that crashed with `signal` right after
    /// recording itself (its recording says which thread and where): the
    /// kernel's, or gdb's when it ran under gdb ([`CoreKind::GdbCrash`]).
    /// Both are crashes with the same signal facts: only who wrote the core
    /// differs, and with it core.dumper and core.ppid (gdb reads it from
    /// /proc/PID/stat: getppid(), gdb itself).
    pub fn crash(
        recording: &Recording,
        core: &Core,
        signal: SignalFacts,
        cause: CrashCause,
    ) -> Result<Expect, String> {
        let crash = recording
            .crash
            .ok_or("scenario problem: the recording of a crash has no \"crash\"")?;
        let (fault, sender) = match cause {
            CrashCause::Fault => {
                let fault = match (crash.fault_address, crash.fault_address_range) {
                    (Some(address), _) => Fault::Exact(address),
                    (None, Some((start, end))) => Fault::Within(start, end),
                    (None, None) => {
                        return Err("scenario problem: the recording of a fault has no \
                                    fault address"
                            .to_string())
                    }
                };
                (fault, Sender::None)
            }
            CrashCause::OwnThread => {
                let pid = recording.pid.ok_or("scenario problem: no pid recorded")?;
                let uid = recording.uid.ok_or("scenario problem: no uid recorded")?;
                (Fault::None, Sender::Process { pid, uid })
            }
        };
        let under_gdb = core.kind == CoreKind::GdbCrash;
        Ok(Expect {
            dumper: if under_gdb { "gdb" } else { "kernel" },
            crash: ExpectedCrash::Crashed {
                signal,
                thread: crash.tid,
                fault,
                sender,
            },
            require: Require::default(),
            parent_thread: (!under_gdb).then_some(core.spawned_by),
        })
    }

    /// What the core of a scenario that did not crash by itself must show: a
    /// snapshot from gcore, the SIGQUIT the harness sent (as `uid`) from the
    /// kernel.
    pub fn for_parked(core: &Core, recording: &Recording, uid: u64) -> Result<Expect, String> {
        match (core.kind, core.quit_sender) {
            (CoreKind::Gcore, _) => Ok(Expect::snapshot()),
            (CoreKind::KernelQuit | CoreKind::KernelQuitForStacks, Some(sender)) => {
                Expect::quit(recording, core, sender, uid)
            }
            (kind, _) => Err(format!(
                "harness problem: a {} of a parked scenario without a SIGQUIT sender",
                kind.describe()
            )),
        }
    }

    pub fn requiring(mut self, require: Require) -> Expect {
        self.require = require;
        self
    }
}

/// The kernel copies the first ELF_PRARGSZ - 1 = 79 bytes of the command line
/// into the core (NT_PRPSINFO pr_psargs), NULs between arguments turned into
/// spaces.
const PSARGS_BYTES: usize = 79;
/// gdb fills all 80 bytes of pr_psargs, with no NUL at the end (strncpy).
const GDB_PSARGS_BYTES: usize = 80;

/// Every problem of `report` (pycore's whole JSON document) against the
/// recording and `expect`.
pub fn check(recording: &Recording, report: &Value, expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    check_core(recording, report, expect, &mut problems);
    check_main_thread(recording, report, &mut problems);
    check_crash(report, &expect.crash, &mut problems);
    problems
}

fn check_core(recording: &Recording, report: &Value, expect: &Expect, problems: &mut Vec<String>) {
    let core = &report["core"];
    if !core.is_object() {
        problems.push("pycore's JSON has no \"core\" object".to_string());
        return;
    }
    if core["dumper"] != expect.dumper {
        problems.push(format!(
            "core.dumper: expected {:?}, got {}",
            expect.dumper, core["dumper"]
        ));
    }
    for (key, recorded) in [
        ("pid", recording.pid),
        ("uid", recording.uid),
        ("gid", recording.gid),
    ] {
        if let Some(recorded) = recorded {
            if core[key].as_u64() != Some(recorded) {
                problems.push(format!(
                    "core.{key}: expected {recorded} (the process's own), got {}",
                    core[key]
                ));
            }
        }
    }
    match (expect.parent_thread, recording.ppid) {
        (Some(thread), _) if core["ppid"].as_u64() != Some(thread) => problems.push(format!(
            "core.ppid: expected {thread} (the kernel names the parent's thread that started \
             the process; getppid() was {}), got {}",
            recording
                .ppid
                .map_or("not recorded".to_string(), |p| p.to_string()),
            core["ppid"]
        )),
        (None, Some(ppid)) if core["ppid"].as_u64() != Some(ppid) => problems.push(format!(
            "core.ppid: expected {ppid} (the process's getppid()), got {}",
            core["ppid"]
        )),
        _ => {}
    }
    if let Some(cmdline) = &recording.cmdline {
        check_command(cmdline, &core["command"], expect.dumper, problems);
    }
}

/// The kernel's pr_psargs is the command line cut to 79 bytes. gdb's is cut
/// to 80, and gcore (attached to a running process) reads /proc/PID/cmdline
/// as one C string, which ends at the first NUL: it writes argv[0] only, so
/// from a gdb core the program alone is right too (a process gdb started
/// itself has its whole command line: gdb adds the arguments it passed).
/// Trailing spaces are ignored (a short command line ends in one: the NUL
/// after the last argument).
fn check_command(cmdline: &[String], got: &Value, dumper: &str, problems: &mut Vec<String>) {
    let gdb = dumper == "gdb";
    let limit = if gdb { GDB_PSARGS_BYTES } else { PSARGS_BYTES };
    let cut = |text: &str| -> String {
        let bytes = text.as_bytes();
        String::from_utf8_lossy(&bytes[..bytes.len().min(limit)])
            .trim_end()
            .to_string()
    };
    let mut accepted = vec![cut(&cmdline.join(" "))];
    if gdb {
        if let Some(program) = cmdline.first() {
            accepted.push(cut(program));
        }
    }
    match got.as_str() {
        Some(command) if accepted.iter().any(|a| a == command.trim_end()) => {}
        _ => problems.push(format!(
            "core.command: expected {} (the process's command line cut to {limit} bytes{}), \
             got {got}",
            accepted
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" or "),
            if gdb {
                ", or argv[0] alone from gcore"
            } else {
                ""
            }
        )),
    }
}

/// is_main: true for the thread whose TID is the process's pid, false for
/// every other thread.
fn check_main_thread(recording: &Recording, report: &Value, problems: &mut Vec<String>) {
    let Some(pid) = recording.pid else { return };
    for thread in report["threads"].as_array().into_iter().flatten() {
        let tid = thread["tid"].as_u64();
        let expected = tid == Some(pid);
        if thread["is_main"].as_bool() != Some(expected) {
            problems.push(format!(
                "thread {}: is_main: expected {expected} (the process's pid is {pid}), got {}",
                thread["tid"], thread["is_main"]
            ));
        }
    }
}

fn check_crash(report: &Value, expected: &ExpectedCrash, problems: &mut Vec<String>) {
    let crash = &report["crash"];
    if !crash.is_object() {
        problems.push("pycore's JSON has no \"crash\" object".to_string());
        return;
    }
    let (kind, crashed_thread) = match expected {
        ExpectedCrash::Snapshot => ("snapshot", None),
        ExpectedCrash::Crashed { thread, .. } => ("crashed", Some(*thread)),
    };
    if crash["kind"] != kind {
        problems.push(format!(
            "crash.kind: expected {kind:?}, got {}",
            crash["kind"]
        ));
    }
    if crash["thread"].as_u64() != crashed_thread {
        problems.push(format!(
            "crash.thread: expected {}, got {}",
            crashed_thread.map_or("null".to_string(), |t| t.to_string()),
            crash["thread"]
        ));
    }
    for thread in report["threads"].as_array().into_iter().flatten() {
        let expected = thread["tid"].as_u64().is_some() && thread["tid"].as_u64() == crashed_thread;
        if thread["crashed"].as_bool() != Some(expected) {
            problems.push(format!(
                "thread {}: crashed: expected {expected}, got {}",
                thread["tid"], thread["crashed"]
            ));
        }
    }
    if let ExpectedCrash::Crashed {
        signal,
        fault,
        sender,
        ..
    } = expected
    {
        check_signal(&crash["signal"], signal, fault, sender, problems);
    }
}

fn check_signal(
    got: &Value,
    signal: &SignalFacts,
    fault: &Fault,
    sender: &Sender,
    problems: &mut Vec<String>,
) {
    if !got.is_object() {
        problems.push(format!(
            "crash.signal: expected {} ({}), got {got}",
            signal.name, signal.code_name
        ));
        return;
    }
    let mut expect = |key: &str, expected: Value| {
        if got[key] != expected {
            problems.push(format!(
                "crash.signal.{key}: expected {expected}, got {}",
                got[key]
            ));
        }
    };
    expect("number", signal.number.into());
    expect("name", signal.name.into());
    expect("code", signal.code.into());
    expect("code_name", signal.code_name.into());
    match sender {
        Sender::None => {
            expect("sender_pid", Value::Null);
            expect("sender_uid", Value::Null);
        }
        Sender::Process { pid, uid } => {
            expect("sender_pid", (*pid).into());
            expect("sender_uid", (*uid).into());
        }
    }
    if got["description"]
        .as_str()
        .is_none_or(|d| d.trim().is_empty())
    {
        problems.push(format!(
            "crash.signal.description: expected a text, got {}",
            got["description"]
        ));
    }
    let address = &got["fault_address"];
    let parsed = address
        .as_str()
        .and_then(|a| a.strip_prefix("0x"))
        .and_then(|a| u64::from_str_radix(a, 16).ok());
    let right = match fault {
        Fault::None => address.is_null(),
        Fault::Exact(expected) => parsed == Some(*expected),
        Fault::Within(start, end) => parsed.is_some_and(|a| (*start..*end).contains(&a)),
    };
    if !right {
        let expected = match fault {
            Fault::None => "null".to_string(),
            Fault::Exact(a) => format!("\"{a:#x}\""),
            Fault::Within(start, end) => {
                format!("an address in [{start:#x}, {end:#x}) (the trapping instruction)")
            }
        };
        problems.push(format!(
            "crash.signal.fault_address: expected {expected}, got {address}"
        ));
    }
}
