//! Native stacks on real cores, checked against gdb on the same core.
//!
//! tests/scenarios/native_stacks.py parks threads in `time.sleep`, `Lock.acquire` and
//! `select.select`, starts an OS thread of a C library built here with gcc
//! ([`NATIVE_EXTENSION`]: no Python thread state, parked in `nanosleep`), then crashes: in libc
//! called from ctypes (SIGSEGV), in `os.abort()` (SIGABRT), four C frames deep in the library
//! (SIGSEGV), and the same under faulthandler (whose handler adds a signal frame). For every
//! kernel core of these:
//!
//! - gdb is the oracle (`tests/support/gdb_frames.py`: `frame.pc()`, `frame.name()` and the
//!   frame type of every frame of every thread): pycore's `--native-all --json` native frames
//!   must have the same addresses, thread by thread, and the same function names wherever gdb
//!   has one. Documented differences: gdb's inline frames (pycore emits them from DWARF too, as
//!   `inlined` entries; only real frames are compared) and gdb's tail-call frames (gdb
//!   reconstructs calls that left no return address from DWARF call-site data; pycore does not);
//! - the crash site (`crash.location`), every thread's `state`, the non-Python thread's stack;
//! - the merge: `--native-all` keeps every Python frame of the default report, in order, each
//!   run before the interpreter-loop frame that ran it, with no merge warning; `--native` folds
//!   the interpreter's own frames.
//!
//! Rows: 2.7, 3.6, 3.8 (pyenv, shared libpython with DWARF), Debian's static stripped 3.11,
//! 3.12 and 3.13 (pyenv), Debian's static 3.14. Run with
//! `cargo nextest run -E 'test(/^native::/)'`.

use crate::support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::interpreters::{self, Interpreter, Linkage, Wanted};
use support::kernel::{
    check_core_pattern, only_file_in, with_unlimited_core_size, CANNOT_ENABLE_CORES,
};
use support::matrix::{
    assert_all_passed, assert_some_passed, print_matrix, run_matrix, CoreKind, Outcome, Progress,
};
use support::process::{run_pycore, run_with_timeout, TestDir};
use support::scenario::scenario_path;

const ROWS: &[(&str, Linkage)] = &[
    ("2.7", Linkage::Shared),
    ("3.6", Linkage::Shared),
    ("3.8", Linkage::Shared),
    ("3.11", Linkage::Static),
    ("3.12", Linkage::Shared),
    ("3.13", Linkage::Shared),
    ("3.14", Linkage::Static),
];

/// The C library the scenario loads with ctypes: an OS thread parked in C, and a crash four
/// calls deep (through an always-inlined helper). -O0 keeps every call a call.
const NATIVE_EXTENSION: &str = r#"
#include <pthread.h>
#include <time.h>

static volatile int sink;

__attribute__((noinline)) void native_park(void) {
    for (;;) {
        struct timespec t = {600, 0};
        nanosleep(&t, 0);
    }
}

static void *parked_thread_main(void *arg) {
    (void)arg;
    native_park();
    return 0;
}

int start_parked_thread(void) {
    pthread_t thread;
    return pthread_create(&thread, 0, parked_thread_main, 0);
}

static inline __attribute__((always_inline)) void write_through(int *p) { *p = 42; }

__attribute__((noinline)) void crash_here(int *p) {
    write_through(p);
    sink++;
}

__attribute__((noinline)) void crash_in_c(int depth) {
    if (depth > 0) {
        crash_in_c(depth - 1);
        sink++;
    } else {
        crash_here((int *)0);
    }
}
"#;

const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;

/// SIGSEGV in libc's memset, called by ctypes: the crash site is in libc.
#[test]
fn segv_in_libc_from_ctypes() {
    native_matrix("libc-segv", SIGSEGV, |report| {
        let location = &report["crash"]["location"];
        expect_module(location, "libc.so")?;
        // A libc with no .symtab (Debian 3.14's own glibc) has no symbol for its local memset
        // variants: no name then (gdb's agreement is checked frame by frame).
        expect(
            function(location).contains("memset") || location["function"].is_null(),
            format!("crash site should be memset: {location}"),
        )
    });
}

/// os.abort(): SIGABRT raised in libc (`pthread_kill`'s implementation).
#[test]
fn abort_in_main_thread() {
    native_matrix("abort", SIGABRT, |report| {
        let location = &report["crash"]["location"];
        expect_module(location, "libc.so")?;
        let crashed = crashed_thread(report)?;
        let names = native_names(crashed);
        expect(
            names.iter().any(|n| n.contains("abort")),
            format!("no abort frame on the crashed thread: {names:?}"),
        )
    });
}

/// A NULL write four C frames deep in the test's library, with an inlined helper.
#[test]
fn segv_in_c_extension() {
    native_matrix("ext-segv", SIGSEGV, |report| {
        let location = &report["crash"]["location"];
        expect_module(location, "libnative_ext.so")?;
        expect(
            function(location) == "crash_here",
            format!("crash site should be crash_here: {location}"),
        )?;
        check_extension_crash(crashed_thread(report)?, false)
    });
}

/// faulthandler's handler runs on the crashed thread: the stack goes through its signal
/// frame (`__restore_rt`) back to the C frames that faulted.
#[test]
fn faulthandler_signal_frame() {
    native_matrix("faulthandler", SIGSEGV, |report| {
        check_extension_crash(crashed_thread(report)?, true)
    });
}

/// The crashed thread of `ext-segv`/`faulthandler` (a `--native-all` report): crash_here
/// (with its inlined write_through first), crash_in_c four times, and, with a handler, a
/// signal frame before them.
fn check_extension_crash(thread: &Value, through_handler: bool) -> Result<(), String> {
    let frames = frames(thread);
    let start = if through_handler {
        let signal = frames
            .iter()
            .position(|f| f["signal_frame"] == Value::Bool(true))
            .ok_or("no signal frame on the crashed thread")?;
        signal + 1
    } else {
        0
    };
    let names: Vec<(String, bool)> = frames[start..]
        .iter()
        .take(6)
        .map(|f| (text(&f["function"]), f["inlined"] == Value::Bool(true)))
        .collect();
    let expected = [
        ("write_through", true),
        ("crash_here", false),
        ("crash_in_c", false),
        ("crash_in_c", false),
        ("crash_in_c", false),
        ("crash_in_c", false),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(n, i)| (n.to_string(), *i)).collect();
    expect(
        names == expected,
        format!("crashed thread's frames from {start}: {names:?}, expected {expected:?}"),
    )
}

// ---- the matrix ---------------------------------------------------------------

fn native_matrix(mode: &str, signal: i32, check: fn(&Value) -> Result<(), String>) {
    let title = format!("kernel cores of tests/scenarios/native_stacks.py {mode}, against gdb");
    if let Err(reason) = check_core_pattern() {
        assert!(!interpreters::require_all(), "{title}: {reason}");
        println!("{title}: skipped: {reason}");
        return;
    }
    let found = interpreters::discover();
    let wanted: Vec<Wanted> = ROWS
        .iter()
        .filter_map(|(label, linkage)| {
            interpreters::WANTED
                .iter()
                .find(|w| w.label() == *label && w.linkage == *linkage)
                .copied()
        })
        .collect();
    let candidates = interpreters::rows_for(&found, &wanted, false);
    let start = Instant::now();
    let rows = run_matrix(&title, &candidates, |python, progress| {
        if mode == "faulthandler" && python.version.major_minor() < (3, 0) {
            return Outcome::Skipped {
                reason: "Python 2 has no faulthandler".into(),
            };
        }
        let dir = TestDir::new(&format!(
            "native-{mode}-{}-{}",
            python.label(),
            python.linkage
        ));
        match run_row(python, &dir, mode, signal, check, progress) {
            Ok(notes) => {
                dir.remove();
                Outcome::Pass {
                    notes,
                    caveat: None,
                }
            }
            Err(error) => Outcome::fail(
                error.lines().next().unwrap_or("failed").to_string(),
                format!("{error}\n(files kept in {})", dir.path().display()),
            ),
        }
    });
    print_matrix(&title, &rows, start.elapsed());
    assert_all_passed(&title, &rows);
    assert_some_passed(&title, &rows);
}

fn run_row(
    python: &Interpreter,
    dir: &TestDir,
    mode: &str,
    signal: i32,
    check: fn(&Value) -> Result<(), String>,
    progress: &mut Progress,
) -> Result<Vec<String>, String> {
    use std::os::unix::process::ExitStatusExt;
    let library = build_extension(dir)?;
    let cwd = dir.join("cwd");
    std::fs::create_dir(&cwd).map_err(|e| format!("creating {}: {e}", cwd.display()))?;
    let ready = dir.join("ready");
    let mut inner = Command::new(&python.path);
    inner
        .args(["-E", "-s", "-B"])
        .arg(scenario_path("native_stacks.py"))
        .arg(&ready)
        .arg(mode)
        .arg(&library)
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8")
        .envs(python.scenario_env());
    let mut command = with_unlimited_core_size(&inner, true);
    command.current_dir(&cwd);
    let finished = run_with_timeout(
        &mut command,
        Duration::from_secs(120),
        dir.path(),
        "scenario",
    )?;
    if finished.code() == Some(CANNOT_ENABLE_CORES) {
        return Err("cannot raise RLIMIT_CORE".into());
    }
    progress.recorded = ready.exists();
    if finished.status.signal() != Some(signal) || !finished.status.core_dumped() {
        return Err(format!(
            "expected death by signal {signal} with a core, got {}; stderr:\n{}",
            finished.status, finished.stderr
        ));
    }
    let core = only_file_in(&cwd)?;
    progress.cored = true;
    progress.core = Some(CoreKind::KernelCrash);

    let all = pycore_json(python, &core, dir.path(), &["--native-all"])?;
    let oracle = gdb_frames(python, &core, dir.path())?;
    let mut notes = compare_with_gdb(&all, &oracle)?;
    check(&all)?;
    let plain = pycore_json(python, &core, dir.path(), &[])?;
    check_states(&plain)?;
    check_merge(&plain, &all)?;
    let merged = pycore_json(python, &core, dir.path(), &["--native"])?;
    check_folded(&merged)?;
    check_c_thread(&merged)?;
    notes.sort();
    notes.dedup();
    Ok(notes)
}

fn build_extension(dir: &TestDir) -> Result<PathBuf, String> {
    let source = dir.join("native_ext.c");
    std::fs::write(&source, NATIVE_EXTENSION).map_err(|e| e.to_string())?;
    let library = dir.join("libnative_ext.so");
    let output = Command::new("gcc")
        .args(["-shared", "-fPIC", "-g", "-O0", "-pthread", "-o"])
        .arg(&library)
        .arg(&source)
        .output()
        .map_err(|e| format!("running gcc: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "gcc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(library)
}

fn pycore_json(
    python: &Interpreter,
    core: &Path,
    dir: &Path,
    extra: &[&str],
) -> Result<Value, String> {
    let debug = python.pycore_args();
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("analyze"),
        core.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--no-source"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.extend(debug.iter().map(|a| a.as_os_str()));
    let label = format!("pycore{}", extra.join(""));
    let finished = run_pycore(&args, dir, &label)?;
    if !matches!(finished.code(), Some(0 | 1)) {
        return Err(format!(
            "pycore {extra:?}: {}: {}",
            finished.status, finished.stderr
        ));
    }
    serde_json::from_slice(&finished.stdout).map_err(|e| format!("pycore {extra:?} JSON: {e}"))
}

/// gdb's frames of every thread, by LWP.
#[derive(Debug, Clone)]
struct GdbFrame {
    pc: u64,
    name: Option<String>,
    kind: String,
}

fn gdb_frames(
    python: &Interpreter,
    core: &Path,
    dir: &Path,
) -> Result<HashMap<i64, Vec<GdbFrame>>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/gdb_frames.py");
    let mut command = Command::new("gdb");
    command
        .args(["-batch", "-nx", "-x"])
        .arg(&script)
        .arg(&python.path)
        .arg(core);
    for debug in python.debug_dirs() {
        command.arg("-iex").arg(format!(
            "set debug-file-directory /usr/lib/debug:{}",
            debug.display()
        ));
    }
    let finished = run_with_timeout(&mut command, Duration::from_secs(300), dir, "gdb")?;
    let stdout = finished.stdout_text();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PYCORE-GDB-FRAMES "))
        .ok_or_else(|| format!("gdb printed no frames; stderr:\n{}", finished.stderr))?;
    let parsed: Value = serde_json::from_str(line).map_err(|e| format!("gdb's JSON: {e}"))?;
    let mut out = HashMap::new();
    for (lwp, frames) in parsed.as_object().ok_or("gdb's JSON is no object")? {
        let lwp: i64 = lwp.parse().map_err(|_| format!("LWP {lwp}"))?;
        let frames = frames
            .as_array()
            .ok_or("frames")?
            .iter()
            .map(|f| GdbFrame {
                pc: f["pc"].as_u64().unwrap_or(0),
                name: f["name"].as_str().map(str::to_string),
                kind: text(&f["kind"]),
            })
            .collect();
        out.insert(lwp, frames);
    }
    Ok(out)
}

/// Per thread: the same real frames (addresses) as gdb, the same names where gdb has one.
fn compare_with_gdb(
    report: &Value,
    oracle: &HashMap<i64, Vec<GdbFrame>>,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let mut failures = Vec::new();
    let threads = report["threads"].as_array().ok_or("no threads")?;
    for thread in threads {
        let Some(tid) = thread["tid"].as_i64() else {
            continue;
        };
        let ours: Vec<&Value> = frames(thread)
            .iter()
            .filter(|f| f["kind"] == "native" && f["inlined"] != Value::Bool(true))
            .collect();
        let theirs: Vec<&GdbFrame> = oracle
            .get(&tid)
            .ok_or_else(|| format!("gdb has no thread {tid}"))?
            .iter()
            .filter(|f| f.kind != "inline" && f.kind != "tailcall")
            .collect();
        if oracle[&tid].iter().any(|f| f.kind == "tailcall") {
            notes.push("gdb shows tail-call frames from DWARF call sites (not compared)".into());
        }
        // gdb stops at `main` (`backtrace past-main` is off by default); pycore goes on to
        // `_start`.
        let mut ours = ours;
        if theirs.last().and_then(|f| f.name.as_deref()) == Some("main") {
            if let Some(main) = ours.iter().position(|f| f["function"] == "main") {
                ours.truncate(main + 1);
            }
        }
        let our_addresses: Vec<u64> = ours.iter().map(|f| hex(&f["address"])).collect();
        let their_addresses: Vec<u64> = theirs.iter().map(|f| f.pc).collect();
        if our_addresses != their_addresses {
            let rows: Vec<String> = (0..ours.len().max(theirs.len()))
                .map(|i| {
                    let a = ours.get(i).map_or("-".into(), |f| {
                        format!("{} {}", text(&f["address"]), text(&f["function"]))
                    });
                    let b = theirs.get(i).map_or("-".into(), |f| {
                        format!("{:#x} {}", f.pc, f.name.as_deref().unwrap_or("??"))
                    });
                    format!("    {a:<50} | {b}")
                })
                .collect();
            failures.push(format!(
                "thread {tid}: frames differ from gdb's (pycore | gdb):\n{}",
                rows.join("\n")
            ));
            continue;
        }
        for (our, their) in ours.iter().zip(&theirs) {
            if let Some(name) = &their.name {
                if &text(&our["function"]) != name {
                    failures.push(format!(
                        "thread {tid}: at {:#x} pycore says {}, gdb {name}",
                        their.pc,
                        text(&our["function"])
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(notes)
    } else {
        Err(format!(
            "native frames differ from gdb's:\n{}",
            failures.join("\n")
        ))
    }
}

/// Every thread's state, from its system call.
fn check_states(report: &Value) -> Result<(), String> {
    let threads = report["threads"].as_array().ok_or("no threads")?;
    let state_of = |pred: &dyn Fn(&Value) -> bool| -> Result<String, String> {
        let thread = threads.iter().find(|t| pred(t)).ok_or("thread not found")?;
        Ok(text(&thread["state"]["kind"]))
    };
    let named = |name: &'static str| move |t: &Value| t["name"] == name;
    let sleeper = state_of(&named("sleeper"))?;
    // time.sleep is select() before 3.11, clock_nanosleep after.
    expect(
        sleeper == "sleep" || sleeper == "poll",
        format!("sleeper's state: {sleeper}"),
    )?;
    let lock = state_of(&named("lock-waiter"))?;
    expect(lock == "lock", format!("lock-waiter's state: {lock}"))?;
    let selector = state_of(&named("selector"))?;
    expect(selector == "poll", format!("selector's state: {selector}"))?;
    let c_thread = state_of(&|t: &Value| t["python"] == false)?;
    expect(
        c_thread == "sleep",
        format!("the C thread's state: {c_thread}"),
    )?;
    let site = &report["crash"]["location"];
    expect(
        site["address"].is_string() && site["module"].is_string(),
        format!("crash.location: {site}"),
    )
}

/// `--native-all` keeps every Python frame of the default report, in order, each run before
/// an interpreter-loop frame; no merge warning.
fn check_merge(plain: &Value, all: &Value) -> Result<(), String> {
    let plain_threads = plain["threads"].as_array().ok_or("no threads")?;
    for thread in all["threads"].as_array().ok_or("no threads")? {
        let tid = &thread["tid"];
        let Some(before) = plain_threads.iter().find(|t| &t["tid"] == tid) else {
            continue;
        };
        let python_before: Vec<String> = frames(before)
            .iter()
            .map(|f| text(&f["function"]))
            .collect();
        let merged = frames(thread);
        let python_after: Vec<String> = merged
            .iter()
            .filter(|f| f["kind"] == "python")
            .map(|f| text(&f["function"]))
            .collect();
        expect(
            python_before == python_after,
            format!("thread {tid}: Python frames {python_after:?} after merging, {python_before:?} before"),
        )?;
        // Each Python frame is followed (after its run) by an interpreter loop frame.
        let mut open = false;
        for frame in merged {
            if frame["kind"] == "python" {
                open = true;
            } else if open {
                let name = text(&frame["function"]);
                expect(
                    name.contains("EvalFrame"),
                    format!("thread {tid}: a run of Python frames is followed by {name}, not the interpreter loop"),
                )?;
                open = false;
            }
        }
        let warnings = thread["warnings"].to_string();
        expect(
            !warnings.contains("merge may be off"),
            format!("thread {tid}: {warnings}"),
        )?;
    }
    Ok(())
}

/// `--native` folds the interpreter's frames: no interpreter loop is left.
fn check_folded(report: &Value) -> Result<(), String> {
    for thread in report["threads"].as_array().ok_or("no threads")? {
        let names = native_names(thread);
        expect(
            !names
                .iter()
                .any(|n| n.starts_with("_PyEval_EvalFrame") || n == "PyEval_EvalFrameEx"),
            format!("--native kept interpreter loop frames: {names:?}"),
        )?;
    }
    Ok(())
}

/// The library's own OS thread: no Python state, its native stack.
fn check_c_thread(report: &Value) -> Result<(), String> {
    let threads = report["threads"].as_array().ok_or("no threads")?;
    let thread = threads
        .iter()
        .find(|t| t["python"] == false)
        .ok_or("no thread without Python state")?;
    let names = native_names(thread);
    let at = names.iter().position(|n| n == "native_park");
    expect(
        at.is_some()
            && names.get(at.unwrap_or(0) + 1).map(String::as_str) == Some("parked_thread_main"),
        format!("the C thread's frames: {names:?}"),
    )
}

// ---- small helpers ---------------------------------------------------------------

fn frames(thread: &Value) -> &[Value] {
    thread["frames"].as_array().map_or(&[], Vec::as_slice)
}

fn native_names(thread: &Value) -> Vec<String> {
    frames(thread)
        .iter()
        .filter(|f| f["kind"] == "native")
        .map(|f| text(&f["function"]))
        .collect()
}

fn crashed_thread(report: &Value) -> Result<&Value, String> {
    report["threads"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["crashed"] == true))
        .ok_or_else(|| "no crashed thread".to_string())
}

fn function(location: &Value) -> String {
    text(&location["function"])
}

fn expect_module(location: &Value, name: &str) -> Result<(), String> {
    expect(
        text(&location["module"]).contains(name),
        format!("crash site should be in {name}: {location}"),
    )
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

fn hex(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

fn expect(condition: bool, message: String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(message)
    }
}

// ---- hostile input ---------------------------------------------------------------

/// The committed example core with every thread's registers and stack top corrupted
/// (registers pointing nowhere, into the middle of code, misaligned; stacks of random words
/// and of words pointing at themselves), and with libc's `.eh_frame`/`.eh_frame_hdr`
/// scrambled (given by `--lib-path`: the build-id still matches): `--native-all` must finish
/// quickly with a documented exit code and a JSON document, never panic.
#[test]
fn hostile_registers_stacks_and_cfi() {
    use support::process::run_pycore_with;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TestDir::new("native-hostile");
    let original = zstd::decode_all(
        std::fs::File::open(root.join("testdata/example/core.zst")).expect("example core"),
    )
    .expect("decompress the example core");
    let python = dir.join("python3.11");
    std::fs::write(
        &python,
        zstd::decode_all(
            std::fs::File::open(root.join("testdata/example/python3.11.zst")).expect("python"),
        )
        .expect("decompress python"),
    )
    .expect("write python");
    // A copy of libc with its CFI scrambled.
    let libdir = dir.join("lib");
    std::fs::create_dir(&libdir).expect("lib dir");
    let libc_path = Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6");
    let have_libc = libc_path.is_file();
    if have_libc {
        let mut libc = std::fs::read(libc_path).expect("read libc");
        let elf = goblin::elf::Elf::parse(&libc).expect("parse libc");
        let ranges: Vec<(usize, usize)> = elf
            .section_headers
            .iter()
            .filter(|sh| {
                matches!(
                    elf.shdr_strtab.get_at(sh.sh_name),
                    Some(".eh_frame" | ".eh_frame_hdr")
                )
            })
            .map(|sh| (sh.sh_offset as usize, sh.sh_size as usize))
            .collect();
        let mut seed = 0x1234_5678_9abc_def0u64;
        for (offset, size) in ranges {
            // Every 7th byte: most FDEs stay parseable, with nonsense in them.
            for byte in libc[offset..offset + size].iter_mut().step_by(7) {
                *byte = next(&mut seed) as u8;
            }
        }
        std::fs::write(libdir.join("libc.so.6"), &libc).expect("write libc");
    }
    let threads = prstatus_offsets(&original);
    assert!(!threads.is_empty(), "no NT_PRSTATUS in the example core");
    let mut seed = 0xfeed_f00d_u64;
    let start = Instant::now();
    for variant in 0..12u64 {
        let mut core = original.clone();
        for &regs in &threads {
            let sp = read_u64(&core, regs + 19 * 8);
            let pc = read_u64(&core, regs + 16 * 8);
            let (new_pc, new_sp, new_bp) = match variant % 6 {
                0 => (0, 0, 0),
                1 => (u64::MAX, u64::MAX - 7, 1),
                2 => (pc + 1, sp + 3, sp),
                3 => (next(&mut seed), next(&mut seed), next(&mut seed)),
                4 => (pc, sp, sp),
                _ => (pc, sp + 8 * (next(&mut seed) % 64), sp),
            };
            write_u64(&mut core, regs + 16 * 8, new_pc);
            write_u64(&mut core, regs + 19 * 8, new_sp);
            write_u64(&mut core, regs + 4 * 8, new_bp);
            // The stack's top words: random (odd variants) or pointing at themselves.
            if let Some(at) = file_offset(&core, sp) {
                for word in 0..256u64 {
                    let value = if variant % 2 == 1 {
                        next(&mut seed)
                    } else {
                        sp + word * 8
                    };
                    if at + word as usize * 8 + 8 <= core.len() {
                        write_u64(&mut core, at + word as usize * 8, value);
                    }
                }
            }
        }
        let path = dir.join(&format!("hostile-{variant}.core"));
        std::fs::write(&path, &core).expect("write core");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("analyze"),
            path.as_os_str(),
            OsStr::new("--python"),
            python.as_os_str(),
            OsStr::new("--native-all"),
            OsStr::new("--json"),
        ];
        if have_libc && variant >= 6 {
            args.extend([OsStr::new("--lib-path"), libdir.as_os_str()]);
        }
        let began = Instant::now();
        let finished = run_pycore_with(&args, &[], Duration::from_secs(20), dir.path(), "pycore")
            .unwrap_or_else(|e| panic!("variant {variant}: {e}"));
        assert!(
            matches!(finished.code(), Some(0 | 1 | 4 | 7)),
            "variant {variant}: {} {}",
            finished.status,
            finished.stderr
        );
        let report: Value = serde_json::from_slice(&finished.stdout)
            .unwrap_or_else(|e| panic!("variant {variant}: not JSON: {e}"));
        assert!(report["threads"].is_array(), "variant {variant}");
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "variant {variant} took {:?}",
            began.elapsed()
        );
    }
    println!("12 hostile variants in {:?}", start.elapsed());
    dir.remove();
}

fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// File offsets of the register block (`pr_reg`) of every NT_PRSTATUS.
fn prstatus_offsets(core: &[u8]) -> Vec<usize> {
    let elf = goblin::elf::Elf::parse_header(core).expect("ELF header");
    let mut out = Vec::new();
    for index in 0..usize::from(elf.e_phnum) {
        let ph = elf.e_phoff as usize + index * 56;
        if u32::from_le_bytes(core[ph..ph + 4].try_into().expect("4 bytes")) != 4 {
            continue;
        }
        let start = read_u64(core, ph + 8) as usize;
        let end = start + read_u64(core, ph + 32) as usize;
        let mut at = start;
        while at + 12 <= end {
            let namesz = u32::from_le_bytes(core[at..at + 4].try_into().expect("4")) as usize;
            let descsz = u32::from_le_bytes(core[at + 4..at + 8].try_into().expect("4")) as usize;
            let kind = u32::from_le_bytes(core[at + 8..at + 12].try_into().expect("4"));
            let desc = at + 12 + namesz.div_ceil(4) * 4;
            if kind == 1 {
                out.push(desc + 112);
            }
            at = desc + descsz.div_ceil(4) * 4;
        }
    }
    out
}

/// Where the core file holds the byte at virtual address `address`.
fn file_offset(core: &[u8], address: u64) -> Option<usize> {
    let elf = goblin::elf::Elf::parse_header(core).ok()?;
    (0..usize::from(elf.e_phnum)).find_map(|index| {
        let ph = elf.e_phoff as usize + index * 56;
        let kind = u32::from_le_bytes(core.get(ph..ph + 4)?.try_into().ok()?);
        let offset = read_u64(core, ph + 8);
        let vaddr = read_u64(core, ph + 16);
        let filesz = read_u64(core, ph + 32);
        (kind == 1 && vaddr <= address && address < vaddr + filesz)
            .then(|| (offset + address - vaddr) as usize)
    })
}
