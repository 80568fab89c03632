//! Crash forensics on real cores: each scenario of tests/scenarios/ records
//! what it knows about itself (stacks, pid, ppid, uid, gid, command line, the
//! thread about to crash and where, the GIL holder, the exception each thread
//! handles, the thread inside a garbage collection), then a core of it is
//! taken, and `pycore analyze --json` must report exactly that.
//!
//! - kernel cores of crashes: SIGSEGV (NULL write from a worker thread),
//!   SIGABRT (os.abort() in the main thread), SIGFPE (a real integer division
//!   by zero, x86_64), SIGBUS (a read of a truncated file mapping), and
//!   SIGQUIT sent from outside;
//! - gdb cores of the same crashes, as PyStack's tests make them: the
//!   scenario runs under gdb, which stops it on the signal, and
//!   `generate-core-file` writes the core (SIGSEGV in a worker thread and in
//!   the only thread, SIGABRT in the main thread): they must be crashes like
//!   the kernel's, with the same signal facts, though gdb wrote them;
//! - gcore snapshots of processes that never import threading (no thread
//!   started at all, or threads started with _thread only), of a thread
//!   holding the GIL in a busy loop, of threads inside `except` blocks, and
//!   of a thread inside gc.collect().
//!
//! Every core is also checked for the process facts (core.pid, ppid, uid,
//! gid, command, dumper; is_main on the main thread only) and the crash facts
//! (crash.kind, signal, si_code, fault address, sender, crash.thread, the
//! crashed thread): support::facts.
//!
//! The snapshots are gcore's, except on rows whose glibc puts guard regions
//! in thread stacks (3.14's Debian build), which gcore cannot read: there
//! the kernel's core after SIGQUIT replaces it (the matrices say which core
//! each row used), and the crash facts expected are SIGQUIT's.
//!
//! These run on a few representative rows ([`ROWS`]); tests/cores.rs runs the
//! stack comparison on every interpreter. A row that is not on the machine is
//! skipped with the reason, or fails with PYCORE_REQUIRE_ALL_PYTHONS=1.

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::elf::{self, FunctionSymbols};

use support::facts::{
    CrashCause, Expect, SignalFacts, ABRT_TKILL, BUS_ADRERR, FPE_INTDIV, SEGV_MAPERR,
};
use support::interpreters::{self, Interpreter, Linkage, Wanted};
use support::kernel::{check_core_pattern, SIGABRT, SIGBUS, SIGFPE, SIGSEGV};
use support::matrix::{check_rows, Outcome, Progress};
use support::process::{own_uid, TestDir};
use support::scenario::{
    analyze_for, core_of_crash, core_of_crash_under_gdb, core_of_parked, judge, outcome, Run, Take,
};
use support::stacks::{Recording, Require, Verdict};

/// The rows these tests run on (label and linkage of rows of
/// interpreters::WANTED): Python 2; 3.8 (before the 3.11 frame rewrite);
/// Debian's static, stripped 3.11; 3.12 and 3.13 (pyenv, shared libpython);
/// the free-threaded 3.13t; Debian unstable's static 3.14 (kernel cores only:
/// its glibc defeats gcore).
const ROWS: &[(&str, Linkage)] = &[
    ("2.7", Linkage::Shared),
    ("3.8", Linkage::Shared),
    ("3.11", Linkage::Static),
    ("3.12", Linkage::Shared),
    ("3.13", Linkage::Shared),
    ("3.13t", Linkage::Shared),
    ("3.14", Linkage::Static),
];

// ---- kernel cores of crashes -------------------------------------------------

/// crash.kind "crashed", SIGSEGV/SEGV_MAPERR at fault address 0x0, in the
/// worker thread that wrote through NULL (crash.thread, and its `crashed`).
#[test]
fn segv_in_worker_thread() {
    crash_matrix("crash_segv.py", SIGSEGV, SEGV_MAPERR, CrashCause::Fault);
}

/// SIGABRT from os.abort() in the main thread: SI_TKILL, sent by the process
/// itself (sender_pid is its own pid, sender_uid its uid), no fault address.
#[test]
fn abort_in_main_thread() {
    crash_matrix("crash_abort.py", SIGABRT, ABRT_TKILL, CrashCause::OwnThread);
}

/// A real FPE_INTDIV: libc's div(1, 0) traps in a worker thread; the fault
/// address is the trapping instruction, a few bytes into div() (x86_64 only:
/// aarch64 does not trap on division by zero).
#[test]
fn integer_division_by_zero_in_worker_thread() {
    if std::env::consts::ARCH != "x86_64" {
        println!("skipped: integer division by zero traps on x86_64 only");
        return;
    }
    crash_matrix("crash_fpe.py", SIGFPE, FPE_INTDIV, CrashCause::Fault);
}

/// SIGBUS/BUS_ADRERR from reading a file mapping past the end of its
/// truncated file; the fault address is exactly the mapping's address, as
/// the process recorded it.
#[test]
fn bus_error_on_truncated_file_mapping() {
    crash_matrix("crash_bus.py", SIGBUS, BUS_ADRERR, CrashCause::Fault);
}

/// SIGQUIT from outside (kill -QUIT by the harness): SI_USER, sender_pid the
/// kill process, sender_uid the harness's uid, taken by the main thread.
#[test]
fn quit_sent_from_outside() {
    parked_matrix(
        "kernel cores after kill -QUIT of tests/scenarios/parked_threads.py",
        Run::new("parked_threads.py"),
        Take::Quit,
        Require::default(),
        |_| Ok(()),
    );
}

// ---- crashes under gdb ---------------------------------------------------------

/// The rows of the gdb crash tests: Python 2, Debian's static 3.11, and the
/// pyenv 3.12 and 3.13 that PyStack-style crash cores come from.
const GDB_ROWS: &[(&str, Linkage)] = &[
    ("2.7", Linkage::Shared),
    ("3.11", Linkage::Static),
    ("3.12", Linkage::Shared),
    ("3.13", Linkage::Shared),
];

/// gdb stops crash_segv.py's worker thread on its NULL write, then writes
/// the core: crash.kind "crashed" (not "snapshot": who wrote the core does
/// not decide), SIGSEGV/SEGV_MAPERR at 0x0, crash.thread the worker (gdb
/// gives every thread pr_cursig 11; only the worker's own NT_SIGINFO is the
/// SIGSEGV), dumper "gdb".
#[test]
fn segv_in_worker_thread_under_gdb() {
    gdb_crash_matrix("crash_segv.py", "SIGSEGV", SEGV_MAPERR, CrashCause::Fault);
}

/// os.abort() in the main thread under gdb: SIGABRT, SI_TKILL from the
/// process itself, in the main thread.
#[test]
fn abort_in_main_thread_under_gdb() {
    gdb_crash_matrix(
        "crash_abort.py",
        "SIGABRT",
        ABRT_TKILL,
        CrashCause::OwnThread,
    );
}

/// A process with one thread (none ever started) writes through NULL under
/// gdb: SIGSEGV/SEGV_MAPERR at 0x0 in its only, main, thread.
#[test]
fn segv_single_threaded_under_gdb() {
    gdb_crash_matrix(
        "crash_segv_alone.py",
        "SIGSEGV",
        SEGV_MAPERR,
        CrashCause::Fault,
    );
}

// ---- snapshots -------------------------------------------------------------

/// A single-threaded process that never imported threading: its one thread,
/// with name null, the main thread, and its exact stack.
#[test]
fn no_threading_module_single_thread() {
    parked_matrix(
        "cores of tests/scenarios/no_threading.py with no thread started",
        NO_THREADING_SINGLE,
        Take::GcoreOrKernel,
        Require::default(),
        threading_never_imported,
    );
}

/// Threads started with _thread only (threading never imported): every TID,
/// each with name null, and exact stacks.
#[test]
fn no_threading_module_with_thread_module_threads() {
    parked_matrix(
        "cores of tests/scenarios/no_threading.py with two _thread threads",
        NO_THREADING_WORKERS,
        Take::GcoreOrKernel,
        Require::default(),
        threading_never_imported,
    );
}

/// -S: no site module, so no .pth file of site-packages can import threading
/// (pyenv's 3.11 has one that does).
const NO_THREADING_SINGLE: Run = Run {
    scenario: "no_threading.py",
    args: &["0"],
    flags: &["-S"],
};
const NO_THREADING_WORKERS: Run = Run {
    scenario: "no_threading.py",
    args: &["2"],
    flags: &["-S"],
};

fn threading_never_imported(recording: &Recording) -> Result<(), String> {
    match recording.threading_imported {
        Some(false) => Ok(()),
        _ => Err(
            "scenario problem: the process imported threading, which this test \
                  needs it never to do"
                .to_string(),
        ),
    }
}

/// One thread spins in pure Python while the others wait on locks: exactly
/// that thread holds_gil (false on every other; on a free-threaded build,
/// without a GIL, no thread is true). The spinner's innermost frame is
/// compared by function, qualname and file, and its line only against the
/// loop's lines, since it changes while the thread spins (the recorder
/// samples the spinner without stopping it); its outer frames are exact.
#[test]
fn gil_held_by_spinning_thread() {
    parked_matrix(
        "cores of tests/scenarios/gil_spinner.py",
        Run::new("gil_spinner.py"),
        Take::GcoreOrKernel,
        Require::default(),
        |recording| match recording.gil {
            Some(gil) if !gil.enabled || gil.holder.is_some() => Ok(()),
            _ => Err("scenario problem: the recording names no GIL holder".to_string()),
        },
    );
}

/// Threads inside `except` blocks: threads[].handling_exception is
/// {"type": type(e).__name__, "message": str(e)} of the exception each is
/// handling (sys.exc_info()[1] in the block, the innermost one for nested
/// handlers, also when the thread parks in a function called from the
/// block), null for threads handling none. Fails if pycore's JSON has no
/// such field.
#[test]
fn exceptions_being_handled() {
    parked_matrix(
        "cores of tests/scenarios/handling_exception.py",
        Run::new("handling_exception.py"),
        Take::GcoreOrKernel,
        Require {
            handling_exception: true,
            ..Require::default()
        },
        |recording| {
            let handling = recording
                .threads
                .iter()
                .filter(|t| matches!(t.handling_exception, Some(Some(_))))
                .count();
            if handling == 3 {
                Ok(())
            } else {
                Err(format!(
                    "scenario problem: {handling} threads recorded an exception, expected 3"
                ))
            }
        },
    );
}

/// A thread parked in a gc callback ("start" phase) inside gc.collect()
/// (Python 2: in a weakref callback the collection calls): its innermost
/// frame is the callback, threads[].gc_collecting is true for it and false
/// for every other thread, and python.gc_collecting is true. pycore finds
/// the collecting thread by return addresses into the collector's functions,
/// which needs their symbols: pyenv's builds have them (.symtab), Debian's
/// stripped 3.14 has them in the detached debug symbols the analysis passes
/// with --debug-dir; where none are at hand (Debian 12's static 3.11: its
/// build-id is in no -dbg package) every thread may say null, the row says
/// why, and python.gc_collecting must still be true. Fails if pycore's JSON
/// has no such fields.
#[test]
fn garbage_collection_in_progress() {
    parked_matrix(
        "cores of tests/scenarios/gc_callback.py",
        Run::new("gc_callback.py"),
        Take::GcoreOrKernel,
        Require {
            gc_collecting: true,
            ..Require::default()
        },
        |recording| match recording.gc_collector {
            Some(Some(_)) => Ok(()),
            _ => Err("scenario problem: no thread recorded it is collecting".to_string()),
        },
    );
}

// ---- the matrices ------------------------------------------------------------

fn rows(wanted: &[(&str, Linkage)]) -> Vec<Wanted> {
    wanted
        .iter()
        .map(|(label, linkage)| {
            *interpreters::WANTED
                .iter()
                .find(|w| w.label() == *label && w.linkage == *linkage)
                .unwrap_or_else(|| panic!("ROWS: {label} {linkage} is not a wanted row"))
        })
        .collect()
}

fn matrix(title: &str, check: impl Fn(&Interpreter, &mut Progress) -> Outcome + Sync) {
    matrix_on(ROWS, title, check);
}

fn matrix_on(
    wanted: &[(&str, Linkage)],
    title: &str,
    check: impl Fn(&Interpreter, &mut Progress) -> Outcome + Sync,
) {
    let found = interpreters::discover();
    let candidates = interpreters::rows_for(&found, &rows(wanted), false);
    check_rows(title, &candidates, check);
}

/// Kernel cores need core_pattern to name a plain file; without one the test
/// is skipped (or fails under PYCORE_REQUIRE_ALL_PYTHONS=1).
fn kernel_cores_possible(title: &str) -> bool {
    match check_core_pattern() {
        Ok(()) => true,
        Err(reason) => {
            assert!(
                !interpreters::require_all(),
                "{title}: cannot run ({}=1): {reason}",
                interpreters::REQUIRE_ALL_ENV
            );
            println!("{title}: skipped: {reason}");
            false
        }
    }
}

/// Runs `scenario` until it crashes with `signal` and compares the kernel's
/// core with what the scenario recorded just before: stacks, process facts,
/// and the crash as `facts` and `cause` describe it.
fn crash_matrix(scenario: &str, signal: i32, facts: SignalFacts, cause: CrashCause) {
    let title = format!("kernel cores of tests/scenarios/{scenario}");
    if !kernel_cores_possible(&title) {
        return;
    }
    matrix(&title, |python, progress| {
        let dir = TestDir::new(&format!(
            "crash-{}-{}-{scenario}",
            python.label(),
            python.linkage
        ));
        match core_of_crash(python, &dir, &Run::new(scenario), signal, progress) {
            Ok(Some((recording, core))) => {
                let result = Expect::crash(&recording, &core, facts, cause).and_then(|expect| {
                    let analysis = analyze_for(python, &core.path, dir.path())?;
                    Ok(judge(&recording, &analysis, &expect))
                });
                outcome(result, dir)
            }
            Ok(None) => {
                dir.remove();
                Outcome::Skipped {
                    reason: "cannot raise RLIMIT_CORE (ulimit -c unlimited failed)".to_string(),
                }
            }
            Err(error) => outcome(Err(error), dir),
        }
    });
}

/// Runs `scenario` under gdb until it stops with `signal` (its name, as gdb
/// prints it), and compares gdb's core with what the scenario recorded just
/// before: stacks, process facts, and the crash as `facts` and `cause`
/// describe it, exactly as for the kernel's core of the same crash.
fn gdb_crash_matrix(scenario: &str, signal: &str, facts: SignalFacts, cause: CrashCause) {
    let title = format!("gdb cores of tests/scenarios/{scenario} crashing under gdb");
    matrix_on(GDB_ROWS, &title, |python, progress| {
        let dir = TestDir::new(&format!(
            "gdbcrash-{}-{}-{scenario}",
            python.label(),
            python.linkage
        ));
        let result = core_of_crash_under_gdb(python, &dir, &Run::new(scenario), signal, progress)
            .and_then(|(recording, core)| {
                let expect = Expect::crash(&recording, &core, facts, cause)?;
                let analysis = analyze_for(python, &core.path, dir.path())?;
                let mut verdict = judge(&recording, &analysis, &expect);
                verdict.notes.extend(core.notes);
                Ok(verdict)
            });
        outcome(result, dir)
    });
}

/// Runs `run` until its threads park, takes its core as `take` says, and
/// compares pycore's report with the recording: stacks, the fields `require`
/// names, process facts, and a snapshot's or SIGQUIT's crash facts.
/// `scenario_check` verifies that the recording has what the test is about.
fn parked_matrix(
    title: &str,
    run: Run,
    take: Take,
    require: Require,
    scenario_check: fn(&Recording) -> Result<(), String>,
) {
    if take == Take::Quit && !kernel_cores_possible(title) {
        return;
    }
    matrix(title, |python, progress| {
        let dir = TestDir::new(&format!(
            "{}-{}-{}",
            run.scenario.trim_end_matches(".py"),
            python.label(),
            python.linkage
        ));
        let result = parked_and_judge(python, &dir, &run, take, require, scenario_check, progress);
        outcome(result, dir)
    });
}

fn parked_and_judge(
    python: &Interpreter,
    dir: &TestDir,
    run: &Run,
    take: Take,
    require: Require,
    scenario_check: fn(&Recording) -> Result<(), String>,
    progress: &mut Progress,
) -> Result<Verdict, String> {
    let (recording, core) = core_of_parked(python, dir, run, take, progress)?;
    scenario_check(&recording)?;
    let analysis = analyze_for(python, &core.path, dir.path())?;
    let mut require = require;
    let mut notes = core.notes.clone();
    if require.gc_collecting {
        if let FunctionSymbols::None(why) = collector_symbols(python, &analysis.report.doc)? {
            // pycore finds the collecting thread by return addresses into the
            // collector's functions: without their symbols it can only say a
            // collection runs (python.gc_collecting), not where.
            require.gc_without_collector_symbols = true;
            notes.push(format!(
                "per-thread gc_collecting not required: {why}; python.gc_collecting must be true"
            ));
        }
    }
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?.requiring(require);
    let mut verdict = judge(&recording, &analysis, &expect);
    if require.gc_without_collector_symbols {
        verdict.caveat = Some("no collector symbols: gc checked interpreter-wide".to_string());
    }
    verdict.notes.extend(notes);
    Ok(verdict)
}

/// Whether the garbage collector's functions have symbols pycore can use:
/// those of the binary holding the interpreter (libpython, else the
/// executable: the file pycore read, as its report names it), from its own
/// .symtab or from detached debug symbols found by build-id under
/// /usr/lib/debug and the row's debug folders (which the analysis passed as
/// --debug-dir).
fn collector_symbols(python: &Interpreter, report: &Value) -> Result<FunctionSymbols, String> {
    let binary = ["libpython", "executable"]
        .iter()
        .find_map(|key| report["python"][key]["local_path"].as_str())
        .ok_or("pycore's report names no local python binary (python.*.local_path)")?;
    elf::function_symbols(Path::new(binary), &python.debug_dirs())
}

// ---- the facts checks themselves ---------------------------------------------

/// support::facts on hand-written reports: a right one passes, and each wrong
/// field gives exactly one problem.
#[test]
fn facts_check_reports_each_difference() {
    use serde_json::{json, Value};
    use support::facts::{self, QUIT_USER};
    use support::matrix::CoreKind;
    use support::scenario::Core;

    // A long command line, cut by the kernel at 79 bytes.
    let cmdline = [
        "/root/.pyenv/versions/3.12.1/bin/python3.12",
        "-E",
        "/work/main/tests/scenarios/crash_segv.py",
        "/tmp/pycore-test-crash/record.json",
    ];
    let joined = cmdline.join(" ");
    let recording = Recording::parse(
        &json!({
            "python_version": "3.12.1", "pid": 100, "ppid": 50, "uid": 1000, "gid": 1001,
            "cmdline": cmdline,
            "crash": {"tid": 101, "fault_address": 0},
            "threads": [
                {"tid": 100, "name": "MainThread", "frames": []},
                {"tid": 101, "name": "crasher", "frames": []},
            ],
        })
        .to_string(),
    )
    .unwrap();
    let core = |kind| Core {
        path: "core".into(),
        kind,
        quit_sender: Some(300),
        notes: Vec::new(),
        spawned_by: 60,
    };
    let segv = Expect::crash(
        &recording,
        &core(CoreKind::KernelCrash),
        SEGV_MAPERR,
        CrashCause::Fault,
    )
    .unwrap();
    let right = json!({
        "core": {"pid": 100, "ppid": 60, "uid": 1000, "gid": 1001, "dumper": "kernel",
                 "command": &joined[..79]},
        "crash": {"kind": "crashed", "thread": 101, "signal": {
            "number": 11, "name": "SIGSEGV", "code": 1, "code_name": "SEGV_MAPERR",
            "description": "address not mapped to object", "fault_address": "0x0",
            "sender_pid": null, "sender_uid": null}},
        "threads": [
            {"tid": 100, "is_main": true, "crashed": false},
            {"tid": 101, "is_main": false, "crashed": true},
        ],
    });
    assert_eq!(
        facts::check(&recording, &right, &segv),
        Vec::<String>::new()
    );

    let with = |pointer: &str, value: Value| {
        let mut report = right.clone();
        *report.pointer_mut(pointer).unwrap() = value;
        facts::check(&recording, &report, &segv)
    };
    for (pointer, wrong) in [
        ("/core/pid", json!(101)),
        ("/core/ppid", json!(50)), // getppid(), but the kernel names the forking thread
        ("/core/uid", json!(0)),
        ("/core/gid", json!(0)),
        ("/core/dumper", json!("gdb")),
        ("/core/command", json!(&joined[..40])),
        ("/core/command", json!(cmdline[0])), // argv[0] alone: right from gdb only
        ("/crash/kind", json!("snapshot")),
        ("/crash/thread", json!(100)),
        ("/crash/signal/number", json!(7)),
        ("/crash/signal/name", json!("SIGBUS")),
        ("/crash/signal/code", json!(2)),
        ("/crash/signal/code_name", json!("SEGV_ACCERR")),
        ("/crash/signal/description", json!("")),
        ("/crash/signal/fault_address", json!("0x1000")),
        ("/crash/signal/fault_address", Value::Null),
        ("/crash/signal/sender_pid", json!(100)),
        ("/threads/0/is_main", json!(false)),
        ("/threads/1/is_main", json!(true)),
        ("/threads/0/crashed", json!(true)),
        ("/threads/1/crashed", json!(false)),
    ] {
        let problems = with(pointer, wrong.clone());
        assert_eq!(problems.len(), 1, "{pointer} = {wrong}: {problems:#?}");
    }

    // A short command line keeps its trailing space (the last NUL); from gcore,
    // argv[0] alone is right too.
    let snapshot = Expect::snapshot();
    let mut gdb = right.clone();
    gdb["core"]["dumper"] = json!("gdb");
    gdb["core"]["ppid"] = json!(50);
    gdb["crash"] = json!({"kind": "snapshot", "thread": null, "signal": null});
    gdb["threads"][1]["crashed"] = json!(false);
    gdb["core"]["command"] = json!(cmdline[0]);
    assert_eq!(
        facts::check(&recording, &gdb, &snapshot),
        Vec::<String>::new()
    );
    gdb["core"]["ppid"] = json!(60);
    assert_eq!(facts::check(&recording, &gdb, &snapshot).len(), 1);

    // The same crash under gdb: dumper "gdb", the ppid getppid() said (gdb),
    // the command line cut to gdb's 80 bytes; still "crashed".
    let under_gdb = Expect::crash(
        &recording,
        &core(CoreKind::GdbCrash),
        SEGV_MAPERR,
        CrashCause::Fault,
    )
    .unwrap();
    let mut gdb_crash = right.clone();
    gdb_crash["core"]["dumper"] = json!("gdb");
    gdb_crash["core"]["ppid"] = json!(50);
    gdb_crash["core"]["command"] = json!(&joined[..80]);
    assert_eq!(
        facts::check(&recording, &gdb_crash, &under_gdb),
        Vec::<String>::new()
    );
    gdb_crash["crash"]["kind"] = json!("snapshot");
    assert_eq!(facts::check(&recording, &gdb_crash, &under_gdb).len(), 1);

    // SIGQUIT from the harness: SI_USER with the sender's pid and uid, taken
    // by the main thread.
    let quit = Expect::for_parked(&core(CoreKind::KernelQuit), &recording, 0).unwrap();
    let mut quitted = right.clone();
    quitted["crash"] = json!({"kind": "crashed", "thread": 100, "signal": {
        "number": QUIT_USER.number, "name": "SIGQUIT", "code": 0, "code_name": "SI_USER",
        "description": "sent by kill", "fault_address": null,
        "sender_pid": 300, "sender_uid": 0}});
    quitted["threads"][0]["crashed"] = json!(true);
    quitted["threads"][1]["crashed"] = json!(false);
    assert_eq!(
        facts::check(&recording, &quitted, &quit),
        Vec::<String>::new()
    );
    quitted["crash"]["signal"]["sender_uid"] = json!(1000);
    assert_eq!(facts::check(&recording, &quitted, &quit).len(), 1);
}
