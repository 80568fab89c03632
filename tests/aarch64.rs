//! aarch64 cores analysed on this (x86_64) machine: Debian's arm64 pythons, fetched by
//! tools/fetch-arm64-pythons.sh into sysroots of their own, run the scenario programs under
//! `qemu-aarch64 -L SYSROOT`; the scenarios record their own stacks and TIDs (qemu-user runs
//! each guest thread on a host thread: the TIDs are the host's) and qemu writes the guest's
//! core (`qemu_PROG_DATE_PID.core`) when a fatal signal kills it: a SIGQUIT from the harness,
//! a real SIGSEGV, os.abort(). Such a core holds NT_PRSTATUS, NT_PRPSINFO and NT_AUXV only,
//! with the pages that start an ELF image written empty: pycore must find the binaries from
//! `--python`/`--sysroot`, the auxv and the dynamic loader's list in memory, say what the core
//! lacks, and match the record (threads, names, frames, the crash: signal and thread).
//!
//! Rows that cannot run (no qemu-aarch64, no fetched build) are skipped with the reason, or
//! fail with `PYCORE_REQUIRE_ALL_PYTHONS=1` (CI, which fetches them first).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::facts::Expect;
use crate::support::interpreters::{require_all, CACHE_ENV, REQUIRE_ALL_ENV};
use crate::support::kernel::{with_unlimited_core_size, SIGABRT, SIGQUIT, SIGSEGV};
use crate::support::matrix::Outcome;
use crate::support::process::{
    run_pycore, run_with_timeout, send_signal, task_ids, thread_states, wait_for, ChildGuard,
    TestDir,
};
use crate::support::scenario::{analyze_with, judge, outcome, scenario_path, Analysis};
use crate::support::stacks::{Recording, Verdict};

const FETCH_HINT: &str = "run tools/fetch-arm64-pythons.sh";
/// Start-up and recording are several times slower under qemu than natively.
const RECORD_TIMEOUT: Duration = Duration::from_secs(120);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const CORE_TIMEOUT: Duration = Duration::from_secs(120);

/// An arm64 build: its sysroot (in the cache root) and the interpreter in it.
struct Row {
    label: &'static str,
    sysroot: &'static str,
    python: &'static str,
    /// The call the thread that calls os.abort() is in when qemu delivers its SIGABRT: glibc's
    /// raise() before 2.32 blocks signals around tgkill and lets it in as it unblocks them.
    abort_call: &'static str,
}

const ROWS: [Row; 5] = [
    // No native_thread_id before 3.11, and qemu writes no thread pointers: each thread state is
    // joined to its thread through the TID glibc keeps in its struct pthread.
    Row {
        label: "3.9 arm64 (Debian 11)",
        sysroot: "arm64-bullseye",
        python: "usr/bin/python3.9",
        abort_call: "rt_sigprocmask",
    },
    Row {
        label: "3.11 arm64 (Debian 12)",
        sysroot: "arm64-bookworm",
        python: "usr/bin/python3.11",
        abort_call: "tgkill",
    },
    Row {
        label: "3.13 arm64 (Debian 13)",
        sysroot: "arm64-trixie",
        python: "usr/bin/python3.13",
        abort_call: "tgkill",
    },
    Row {
        label: "3.14 arm64 (Debian sid)",
        sysroot: "arm64-sid",
        python: "usr/bin/python3.14",
        abort_call: "tgkill",
    },
    Row {
        label: "3.15 arm64 (Debian sid)",
        sysroot: "arm64-sid-3.15",
        python: "usr/bin/python3.15",
        abort_call: "tgkill",
    },
];

/// How the scenario ends, and what its core must say of it.
#[derive(Clone, Copy)]
struct Case {
    scenario: &'static str,
    how: &'static str,
    signal: i32,
    signal_name: &'static str,
    /// The harness sends SIGQUIT once the threads parked; else the scenario kills itself.
    quit: bool,
}

const CASES: [Case; 3] = [
    Case {
        scenario: "parked_threads.py",
        how: "kill -QUIT",
        signal: SIGQUIT,
        signal_name: "SIGQUIT",
        quit: true,
    },
    Case {
        scenario: "crash_segv.py",
        how: "SIGSEGV",
        signal: SIGSEGV,
        signal_name: "SIGSEGV",
        quit: false,
    },
    Case {
        scenario: "crash_abort.py",
        how: "os.abort()",
        signal: SIGABRT,
        signal_name: "SIGABRT",
        quit: false,
    },
];

fn cache_root() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/pycore-pythons"),
    }
}

fn qemu() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("qemu-aarch64"))
        .find(|p| p.is_file())
}

/// Why a row cannot run, if it cannot.
fn missing(row: &Row) -> Option<String> {
    if qemu().is_none() {
        return Some("qemu-aarch64 is not installed (apt-get install qemu-user)".into());
    }
    let python = cache_root().join(row.sysroot).join(row.python);
    (!python.is_file()).then(|| format!("{} is missing ({FETCH_HINT})", python.display()))
}

#[test]
fn qemu_cores_match_recorded_stacks() {
    let jobs: Vec<(&Row, Case)> = ROWS
        .iter()
        .flat_map(|row| CASES.iter().map(move |case| (row, *case)))
        .collect();
    let results: Mutex<Vec<(usize, String, Outcome, Duration)>> = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((row, case)) = jobs.get(index) else {
                    break;
                };
                let start = Instant::now();
                let outcome = match missing(row) {
                    Some(reason) if require_all() => Outcome::fail(
                        format!("missing: {reason}"),
                        format!("{REQUIRE_ALL_ENV}=1 requires every row; {FETCH_HINT} first"),
                    ),
                    Some(reason) => Outcome::Skipped { reason },
                    None => check(row, case),
                };
                let name = format!("{} {} ({})", row.label, case.scenario, case.how);
                println!("[aarch64] {name}: {}", short(&outcome));
                results
                    .lock()
                    .unwrap()
                    .push((index, name, outcome, start.elapsed()));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    println!("\naarch64 cores (qemu-user) on this machine:");
    let mut failures = Vec::new();
    for (_, name, outcome, elapsed) in &results {
        println!(
            "  {name:<58} {:<40} {:>5.1} s",
            short(outcome),
            elapsed.as_secs_f64()
        );
        match outcome {
            Outcome::Fail { summary, details } => {
                failures.push(format!("{name}: {summary}\n{details}"))
            }
            Outcome::Pass { notes, .. } => {
                for note in notes {
                    println!("    note: {note}");
                }
            }
            Outcome::Skipped { .. } => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn short(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass { .. } => "pass".into(),
        Outcome::Fail { summary, .. } => format!("FAIL {summary}"),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
    }
}

fn check(row: &Row, case: &Case) -> Outcome {
    let dir = TestDir::new(&format!("aarch64-{}-{}", row.sysroot, case.scenario));
    let result = run_case(row, case, &dir);
    outcome(result, dir)
}

fn run_case(row: &Row, case: &Case, dir: &TestDir) -> Result<Verdict, String> {
    let sysroot = cache_root().join(row.sysroot);
    let python = sysroot.join(row.python);
    let (recording, core) = core_under_qemu(&sysroot, &python, case, dir)?;
    let binaries = [
        OsStr::new("--python"),
        python.as_os_str(),
        OsStr::new("--sysroot"),
        sysroot.as_os_str(),
    ];
    let analysis = analyze_with(&core, dir.path(), &binaries)?;
    let mut with_native = binaries.to_vec();
    with_native.push(OsStr::new("--native-all"));
    let native = analyze_with(&core, dir.path(), &with_native)?;
    // qemu's core is no kernel's nor gdb's: pycore says "unknown". judge's crash checks are
    // for snapshots; what a qemu core can tell of its crash is checked here.
    let expect = Expect {
        dumper: "unknown",
        ..Expect::snapshot()
    };
    let mut verdict = judge(&recording, &analysis, &expect);
    verdict
        .problems
        .retain(|p| !p.starts_with("crash") && !p.contains(": crashed: expected"));
    verdict
        .problems
        .extend(crash_problems(&recording, &analysis, case));
    verdict.problems.extend(warning_problems(&analysis));
    verdict
        .problems
        .extend(state_problems(row, &recording, &analysis, case));
    verdict
        .problems
        .extend(native_problems(&analysis, &native, &recording, case));
    verdict
        .problems
        .extend(pack_problems(&core, &native, &with_native, dir)?);
    Ok(verdict)
}

/// `pycore pack --native-all` of the qemu core: the packed core (which keeps the recovered
/// mapped files as its NT_FILE) gives the same `--native-all` report from itself alone.
fn pack_problems(
    core: &Path,
    native: &Analysis,
    with_native: &[&OsStr],
    dir: &TestDir,
) -> Result<Vec<String>, String> {
    let packed = dir.join("packed.core");
    let mut args = vec![OsStr::new("pack"), core.as_os_str()];
    args.extend_from_slice(with_native);
    args.extend([OsStr::new("--output"), packed.as_os_str()]);
    let finished = run_pycore(&args, dir.path(), "pycore-pack")?;
    if !matches!(finished.code(), Some(0 | 1)) {
        return Err(format!(
            "pycore pack: {}: {}",
            finished.status, finished.stderr
        ));
    }
    let from_packed = analyze_with(&packed, dir.path(), &[OsStr::new("--native-all")])?;
    let (mut original, mut again) = (native.report.doc.clone(), from_packed.report.doc);
    for doc in [&mut original, &mut again] {
        if let Some(object) = doc.as_object_mut() {
            object.remove("packed");
            object.remove("packed_from");
        }
        doc["core"]["path"] = serde_json::Value::Null;
    }
    Ok((original != again)
        .then(|| {
            let text = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
            let (a, b) = (text(&original), text(&again));
            let line = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            format!(
                "the packed core's --native-all report differs from the core's, from line {line}: {:?} vs {:?}",
                a.lines().nth(line),
                b.lines().nth(line)
            )
        })
        .into_iter()
        .collect())
}

/// `--native-all` on the same core: aarch64 CFI (the link register, frames that allocate no
/// stack, return addresses signed with `paciasp` on sid's build) unwinds every thread whole:
/// the same Python frames in place of the interpreter loop's frames, each thread's stack down
/// to where it started (the main thread through `Py_BytesMain` and `__libc_start_main`, the
/// others to libc's thread start), no stack cut, and the crashed thread's innermost frame in
/// libc (memset, pthread_kill).
fn native_problems(
    plain: &Analysis,
    native: &Analysis,
    recording: &Recording,
    case: &Case,
) -> Vec<String> {
    let mut problems = Vec::new();
    let kinds = |analysis: &Analysis| -> Vec<String> {
        analysis.report.doc["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["kind"].as_str().map(str::to_string))
            .collect()
    };
    for kind in kinds(native) {
        if kind.starts_with("native") {
            problems.push(format!(
                "--native-all: warning {kind}: {:?}",
                native.report.warnings
            ));
        }
    }
    let python_frames = |thread: &serde_json::Value| -> Vec<String> {
        thread["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["kind"] != "native")
            .map(|f| format!("{} {} {}", f["file"], f["function"], f["line"]))
            .collect()
    };
    let threads = |analysis: &Analysis| -> Vec<serde_json::Value> {
        analysis.report.doc["threads"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let crashed = native.report.doc["crash"]["thread"].as_u64();
    for (thread, alone) in threads(native).iter().zip(threads(plain)) {
        let tid = thread["tid"].as_u64().unwrap_or_default();
        if python_frames(thread) != python_frames(&alone) {
            problems.push(format!(
                "--native-all: thread {tid}'s Python frames differ from the analysis without it"
            ));
        }
        let frames: Vec<&serde_json::Value> = thread["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["kind"] == "native")
            .collect();
        let names: Vec<&str> = frames
            .iter()
            .filter_map(|f| f["function"].as_str())
            .collect();
        let module = |f: Option<&&serde_json::Value>| {
            f.and_then(|f| f["module"].as_str())
                .map(|m| m.rsplit('/').next().unwrap_or(m).to_string())
        };
        // The main thread's TID is the process's id, which the process recorded (the lowest
        // TID is not it once the kernel's PID counter has wrapped around).
        let main_tid = recording
            .pid
            .or_else(|| recording.threads.first().map(|t| t.tid));
        let whole = if main_tid == Some(tid) || names.contains(&"Py_BytesMain") {
            names.ends_with(&["__libc_start_main", "_start"])
        } else {
            module(frames.last()).as_deref() == Some("libc.so.6")
        };
        if !whole || !names.contains(&"_PyEval_EvalFrameDefault") {
            problems.push(format!(
                "--native-all: thread {tid}'s native stack is not whole (ends in {:?}): {names:?}",
                module(frames.last())
            ));
        }
        if Some(tid) == crashed
            && !case.quit
            && module(frames.first()).as_deref() != Some("libc.so.6")
        {
            problems.push(format!(
                "--native-all: the crashed thread {tid}'s innermost frame is in {:?}, not libc",
                module(frames.first())
            ));
        }
    }
    problems
}

/// The crash: the signal, the thread that took it (the recorded crasher; for SIGQUIT, a
/// recorded thread), no fault address (qemu writes no NT_SIGINFO), the arm64 core itself.
fn crash_problems(recording: &Recording, analysis: &Analysis, case: &Case) -> Vec<String> {
    let doc = &analysis.report.doc;
    let crash = &doc["crash"];
    let mut problems = Vec::new();
    if crash["kind"] != "crashed" {
        problems.push(format!(
            "crash.kind: expected \"crashed\", got {}",
            crash["kind"]
        ));
    }
    // With no NT_SIGINFO, crash.signal is null (docs/json-schema.md); the crashed thread's
    // pr_cursig names the signal.
    let signal = &crash["signal"];
    if !signal.is_null() {
        problems.push(format!(
            "crash.signal: the core has no NT_SIGINFO, so it must be null; got {signal}"
        ));
    }
    let thread = crash["thread"].as_u64();
    match recording.crash {
        Some(recorded) if thread != Some(recorded.tid) => problems.push(format!(
            "crash.thread: expected {} (the thread that crashed, as it recorded itself), got {}",
            recorded.tid, crash["thread"]
        )),
        None if thread.is_none_or(|t| recording.thread(t).is_none()) => problems.push(format!(
            "crash.thread: expected one of the recorded threads {:?}, got {}",
            recording.tids(),
            crash["thread"]
        )),
        _ => {}
    }
    for reported in doc["threads"].as_array().into_iter().flatten() {
        if reported["tid"].as_u64() == thread
            && reported["signal"].as_i64() != Some(i64::from(case.signal))
        {
            problems.push(format!(
                "thread {}: signal: expected {} ({}), got {}",
                reported["tid"], case.signal, case.signal_name, reported["signal"]
            ));
        }
        let marked = reported["crashed"].as_bool() == Some(true);
        if marked != (reported["tid"].as_u64().is_some() && reported["tid"].as_u64() == thread) {
            problems.push(format!(
                "thread {}: crashed is {}, but crash.thread is {}",
                reported["tid"], reported["crashed"], crash["thread"]
            ));
        }
    }
    if doc["core"]["arch"] != "aarch64" {
        problems.push(format!(
            "core.arch: expected \"aarch64\", got {}",
            doc["core"]["arch"]
        ));
    }
    problems
}

/// Every thread's state, from x8 and the `svc #0` before its pc, against what the scenario's
/// threads do: parked_threads.py's threads sleep (`time.sleep`: clock_nanosleep from 3.11,
/// select before, which glibc makes pselect6 on aarch64) or wait on a lock (futex) — under qemu
/// each guest thread blocked in a call keeps the call's number in x8 and its pc after the svc,
/// the one that took the SIGQUIT has its pc rewound onto the svc; the crashing scenarios' thread
/// that faulted in memset is running, the one that called os.abort() is in the call that let the
/// signal in.
fn state_problems(
    row: &Row,
    recording: &Recording,
    analysis: &Analysis,
    case: &Case,
) -> Vec<String> {
    let threads = analysis.report.doc["threads"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let state_of = |tid: u64| {
        threads
            .iter()
            .find(|t| t["tid"].as_u64() == Some(tid))
            .map(|t| (t["state"]["kind"].clone(), t["state"]["syscall"].clone()))
    };
    let minor: u32 = recording
        .python_version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_default();
    let sleep = if minor < 11 {
        ("poll", Some("pselect6"))
    } else {
        ("sleep", Some("clock_nanosleep"))
    };
    let mut problems = Vec::new();
    let mut expect = |tid: u64, what: &str, want: (&str, Option<&str>)| match state_of(tid) {
        Some((kind, call)) if kind == want.0 && call.as_str() == want.1 => {}
        got => problems.push(format!(
            "thread {tid} ({what}): state expected {want:?}, got {got:?}"
        )),
    };
    let crasher = recording.crash.map(|c| c.tid);
    for thread in &recording.threads {
        let name = thread.name.as_deref().unwrap_or_default();
        let want = match (Some(thread.tid) == crasher, case.scenario, name) {
            // Faulted in memset: not in a call.
            (true, "crash_segv.py", _) => ("running", None),
            // abort() raises with tgkill; qemu delivers the signal as a call returns.
            (true, _, _) => ("syscall", Some(row.abort_call)),
            (false, _, "lock-waiter" | "event-waiter") => ("lock", Some("futex")),
            (false, _, _) => sleep,
        };
        expect(thread.tid, name, want);
    }
    problems
}

/// What the core lacks is said: the recovered file list and the missing notes.
fn warning_problems(analysis: &Analysis) -> Vec<String> {
    let kinds: Vec<&str> = analysis.report.doc["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w["kind"].as_str()).collect())
        .unwrap_or_default();
    ["mapped-files-recovered", "core-facts-missing"]
        .iter()
        .filter(|kind| !kinds.contains(kind))
        .map(|kind| format!("no {kind} warning (warnings: {kinds:?})"))
        .collect()
}

/// Runs `case`'s scenario under qemu with core dumps enabled in an empty working directory and
/// returns its recording and the core qemu wrote. A directory named `core` there keeps the
/// kernel from writing its own core of the qemu process itself (core_pattern "core").
fn core_under_qemu(
    sysroot: &Path,
    python: &Path,
    case: &Case,
    dir: &TestDir,
) -> Result<(Recording, PathBuf), String> {
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(cwd.join("core"))
        .map_err(|e| format!("creating {}: {e}", cwd.display()))?;
    let record = dir.join("record.json");
    let mut inner = Command::new(qemu().ok_or("no qemu-aarch64")?);
    inner
        .arg("-L")
        .arg(sysroot)
        .arg(python)
        .args(["-E", "-s", "-B"])
        .arg(scenario_path(case.scenario))
        .arg(&record)
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8");
    let mut command = with_unlimited_core_size(&inner, true);
    command.current_dir(&cwd);
    let recording = if case.quit {
        let mut child = ChildGuard::spawn(&mut command, dir.path(), "scenario")?;
        wait_for("the scenario to record itself", RECORD_TIMEOUT, || {
            if record.exists() {
                return Ok(Some(()));
            }
            match child.exited() {
                Some(status) => Err(format!(
                    "the scenario exited ({status}) before recording itself; stderr:\n{}",
                    child.stderr_tail()
                )),
                None => Ok(None),
            }
        })?;
        let recording = Recording::load(&record)?;
        settle(child.pid(), &recording)?;
        send_signal("QUIT", child.pid(), dir.path())?;
        wait_for(
            "qemu to write the core",
            CORE_TIMEOUT,
            || Ok(child.exited()),
        )?;
        recording
    } else {
        let finished = run_with_timeout(
            &mut command,
            RECORD_TIMEOUT + CORE_TIMEOUT,
            dir.path(),
            "scenario",
        )?;
        if !record.exists() {
            return Err(format!(
                "the scenario did not record itself ({}); stderr:\n{}",
                finished.status, finished.stderr
            ));
        }
        Recording::load(&record)?
    };
    let cores: Vec<PathBuf> = std::fs::read_dir(&cwd)
        .map_err(|e| format!("reading {}: {e}", cwd.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with("qemu_") && n.ends_with(".core"))
        })
        .collect();
    match cores.as_slice() {
        [core] => Ok((recording, core.clone())),
        _ => Err(format!(
            "expected one qemu_*.core in {}, found {cores:?} (qemu writes one when RLIMIT_CORE allows)",
            cwd.display()
        )),
    }
}

/// Waits until the recorder thread is gone (qemu's process has the recorded guest threads
/// plus its own RCU thread) and every thread sleeps in the kernel.
fn settle(pid: u32, recording: &Recording) -> Result<(), String> {
    let recorded = recording.tids();
    let mut live = task_ids(pid)?;
    wait_for("the recorder thread to exit", SETTLE_TIMEOUT, || {
        live = task_ids(pid)?;
        Ok((live.difference(&recorded).count() <= 1).then_some(()))
    })
    .map_err(|e| format!("{e}: live threads {live:?}, recorded {recorded:?}"))?;
    if !recorded.is_subset(&live) {
        return Err(format!(
            "recorded threads {recorded:?} are not all alive ({live:?})"
        ));
    }
    let mut states = Vec::new();
    wait_for("every thread to sleep", SETTLE_TIMEOUT, || {
        states = thread_states(pid)?;
        Ok(states.iter().all(|(_, s)| *s == 'S').then_some(()))
    })
    .map_err(|e| format!("{e}: thread states {states:?}"))
}

/// The same recovery serves a kernel core whose NT_FILE was lost (here: its type overwritten):
/// a kernel core of parked_threads.py under a shared-libpython build (libpython found through
/// the loader's list) and Debian's static python3.11, on this machine, must still match the
/// record, with the `mapped-files-recovered` warning and nothing else lost.
#[test]
fn kernel_core_that_lost_its_nt_file() {
    use crate::support::interpreters::{self, Build, Candidate, Linkage};
    use crate::support::scenario::{core_of_parked, Run, Take};
    let rows = [(3, 12, Linkage::Shared), (3, 11, Linkage::Static)];
    let found = interpreters::discover();
    let mut failures = Vec::new();
    for (major, minor, linkage) in rows {
        let wanted = interpreters::WANTED
            .iter()
            .find(|w| {
                (w.major, w.minor, w.linkage, w.build) == (major, minor, linkage, Build::Release)
            })
            .expect("a wanted row");
        let python = match interpreters::rows_for(&found, std::slice::from_ref(wanted), false).pop()
        {
            Some(Candidate::Found { interpreter, .. }) => interpreter,
            _ if require_all() => {
                failures.push(format!(
                    "{}: missing: {}",
                    wanted.label(),
                    wanted.why_missing()
                ));
                continue;
            }
            _ => {
                println!(
                    "[lost NT_FILE] {} {linkage}: skipped: {}",
                    wanted.label(),
                    wanted.why_missing()
                );
                continue;
            }
        };
        let dir = TestDir::new(&format!("lost-nt-file-{}", python.label()));
        let result = (|| -> Result<Verdict, String> {
            let mut progress = Default::default();
            let run = Run::new("parked_threads.py");
            let (recording, core) = core_of_parked(&python, &dir, &run, Take::Quit, &mut progress)?;
            let lost = dir.join("lost-nt-file.core");
            lose_nt_file(&core.path, &lost)?;
            let analysis = analyze_with(&lost, dir.path(), &[])?;
            let expect =
                Expect::for_parked(&core, &recording, crate::support::process::own_uid()?)?;
            let mut verdict = judge(&recording, &analysis, &expect);
            let kinds: Vec<&str> = analysis.report.doc["warnings"]
                .as_array()
                .map(|w| w.iter().filter_map(|w| w["kind"].as_str()).collect())
                .unwrap_or_default();
            if !kinds.contains(&"mapped-files-recovered") || kinds.contains(&"core-facts-missing") {
                verdict.problems.push(format!(
                    "expected the mapped-files-recovered warning only (the kernel core keeps NT_SIGINFO): {kinds:?}"
                ));
            }
            Ok(verdict)
        })();
        let outcome = outcome(result, dir);
        println!(
            "[lost NT_FILE] {} {linkage} {}: {}",
            python.label(),
            python.path.display(),
            short(&outcome)
        );
        if let Outcome::Fail { summary, details } = outcome {
            failures.push(format!("{}: {summary}\n{details}", python.label()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A copy of `core` whose NT_FILE note is renamed to a type nobody reads.
fn lose_nt_file(core: &Path, out: &Path) -> Result<(), String> {
    const NT_FILE: u32 = 0x4649_4c45;
    let mut bytes = std::fs::read(core).map_err(|e| format!("{}: {e}", core.display()))?;
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(&bytes, 32), u16_at(&bytes, 54), u16_at(&bytes, 56));
    let mut renamed = 0;
    for index in 0..phnum {
        let ph = phoff + index * phentsize;
        if u32_at(&bytes, ph) != 4 {
            continue; // not PT_NOTE
        }
        let (start, size) = (u64_at(&bytes, ph + 8), u64_at(&bytes, ph + 32));
        let mut at = start;
        while at + 12 <= start + size {
            let (namesz, descsz) = (u32_at(&bytes, at) as usize, u32_at(&bytes, at + 4) as usize);
            if u32_at(&bytes, at + 8) == NT_FILE {
                bytes[at + 8..at + 12].copy_from_slice(&0x4649_4c00u32.to_le_bytes());
                renamed += 1;
            }
            at += 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
        }
    }
    if renamed != 1 {
        return Err(format!(
            "{}: {renamed} NT_FILE notes, expected 1",
            core.display()
        ));
    }
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
}
