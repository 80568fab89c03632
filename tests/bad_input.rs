//! pycore on input it cannot analyse: the documented exit code, exactly one
//! line on stderr, and never a panic or a Rust backtrace, even with
//! RUST_BACKTRACE=1 (which support::process::run_pycore always sets).

use crate::support;

use std::ffi::OsStr;
use std::process::Command;

use support::interpreters::{self, Build, Interpreter};
use support::matrix::Progress;
use support::process::{gcore, run_pycore, ChildGuard, TestDir};
use support::scenario::gcore_of_parked_threads;

const USAGE: i32 = 2;
const NOT_A_CORE: i32 = 3;
const NOT_PYTHON: i32 = 4;
const WRONG_PYTHON_BINARY: i32 = 5;
const UNSUPPORTED_VERSION: i32 = 6;

#[test]
fn text_file_is_not_a_core() {
    let dir = TestDir::new("bad-text");
    let path = dir.join("notes.txt");
    std::fs::write(&path, "this is not a core dump\n").unwrap();
    assert_clean_error(&dir, &[path.as_os_str()], NOT_A_CORE);
    dir.remove();
}

#[test]
fn empty_file_is_not_a_core() {
    let dir = TestDir::new("bad-empty");
    let path = dir.join("empty");
    std::fs::write(&path, "").unwrap();
    assert_clean_error(&dir, &[path.as_os_str()], NOT_A_CORE);
    dir.remove();
}

#[test]
fn missing_file_is_unreadable() {
    let dir = TestDir::new("bad-missing");
    let path = dir.join("no-such-core");
    assert_clean_error(&dir, &[path.as_os_str()], NOT_A_CORE);
    dir.remove();
}

#[test]
fn elf_executable_is_not_a_core() {
    let dir = TestDir::new("bad-elf");
    assert_clean_error(&dir, &[OsStr::new("/bin/true")], NOT_A_CORE);
    dir.remove();
}

#[test]
fn core_of_non_python_process_is_not_python() {
    let dir = TestDir::new("bad-sleep");
    let core = {
        // Once spawn() returns, the child has exec'd sleep: no Python in it.
        let sleeper =
            ChildGuard::spawn(Command::new("sleep").arg("600"), dir.path(), "sleep").unwrap();
        gcore(sleeper.pid(), dir.path()).unwrap().core
    };
    assert_clean_error(&dir, &[core.as_os_str()], NOT_PYTHON);
    dir.remove();
}

#[test]
fn python_core_with_wrong_python_binary() {
    let supported = interpreters::supported();
    let python = newest(&supported);
    let dir = TestDir::new("bad-wrong-python");
    let (_, core) = gcore_of_parked_threads(python, &dir, &mut Progress::default()).unwrap();
    let core = core.path;

    // Not a Python at all.
    assert_clean_error(
        &dir,
        &[
            core.as_os_str(),
            OsStr::new("--python"),
            OsStr::new("/bin/true"),
        ],
        WRONG_PYTHON_BINARY,
    );

    // A Python, but not the one that ran: its build id does not match the core.
    match supported
        .iter()
        .find(|other| other.version.major_minor() != python.version.major_minor())
    {
        Some(other) => assert_clean_error(
            &dir,
            &[
                core.as_os_str(),
                OsStr::new("--python"),
                other.path.as_os_str(),
            ],
            WRONG_PYTHON_BINARY,
        ),
        None => println!(
            "skipped --python with another version: only {} is installed",
            python.version
        ),
    }
    dir.remove();
}

#[test]
fn usage_errors_exit_2() {
    // clap's usage messages span several lines, so only the code and the
    // absence of a panic are checked here.
    let dir = TestDir::new("bad-usage");
    for args in [
        &["analyze"][..],
        &[],
        &["analyze", "core", "--no-such-flag"],
        &["no-such-command"],
    ] {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let finished = run_pycore(&args, dir.path(), "pycore").unwrap();
        assert_eq!(
            finished.code(),
            Some(USAGE),
            "pycore {args:?}: stderr:\n{}",
            finished.stderr
        );
        assert_no_panic(&args, &finished.stderr);
    }
    dir.remove();
}

/// Runs `pycore analyze ARGS` with and without --json and checks the exit code
/// and that stderr is a single line explaining the problem.
fn assert_clean_error(dir: &TestDir, args: &[&OsStr], expected_code: i32) {
    for json in [false, true] {
        let mut full: Vec<&OsStr> = vec![OsStr::new("analyze")];
        full.extend_from_slice(args);
        if json {
            full.push(OsStr::new("--json"));
        }
        let finished = run_pycore(&full, dir.path(), "pycore").unwrap();
        let stderr = &finished.stderr;
        assert_eq!(
            finished.code(),
            Some(expected_code),
            "pycore {full:?} ({}): stderr:\n{stderr}",
            finished.status
        );
        assert_no_panic(&full, stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.len() == 1 && !lines[0].trim().is_empty(),
            "pycore {full:?}: expected one line on stderr, got {}:\n{stderr}",
            lines.len()
        );
        if json {
            // Never an empty stdout: one document with the error, and what the core says
            // once its notes were read (every failure but "not a core").
            let doc: serde_json::Value = serde_json::from_slice(&finished.stdout)
                .unwrap_or_else(|e| panic!("pycore {full:?}: stdout is not JSON: {e}"));
            assert_eq!(
                doc["error"]["code"].as_i64(),
                Some(i64::from(expected_code)),
                "pycore {full:?}: error {}",
                doc["error"]
            );
            assert_eq!(
                doc["error"]["message"].as_str(),
                Some(lines[0].trim_start_matches("pycore: "))
            );
            let notes_read = expected_code != NOT_A_CORE;
            assert_eq!(
                doc["threads"].as_array().is_some_and(|t| !t.is_empty()),
                notes_read,
                "pycore {full:?}: threads {}",
                doc["threads"]
            );
            assert_eq!(!doc["core"].is_null(), notes_read);
        }
    }
}

/// When the Python part fails (a python of another build: exit 5; a version this pycore does
/// not know: exit 6), the report still says what the core says: the process, the crash facts
/// and every thread with its registers, in JSON (with "error") and in text (then the error).
/// The truth is the process's own recording (pid, TIDs).
#[test]
fn failed_python_part_still_reports_the_core() {
    let supported = interpreters::supported();
    let python = newest(&supported);
    let dir = TestDir::new("bad-partial-facts");
    let (recording, core) =
        gcore_of_parked_threads(python, &dir, &mut Progress::default()).unwrap();
    let mut cases: Vec<(String, Vec<std::ffi::OsString>, i32)> = Vec::new();
    if let Some(other) = supported
        .iter()
        .find(|other| other.version.major_minor() != python.version.major_minor())
    {
        cases.push((
            format!("--python {}", other.path.display()),
            vec![
                core.path.clone().into(),
                "--python".into(),
                other.path.clone().into(),
            ],
            WRONG_PYTHON_BINARY,
        ));
    } else {
        println!(
            "skipped --python of another build: only {} is installed",
            python.version
        );
    }
    // 3.13+ keep their version in _Py_DebugOffsets, after the cookie "xdebugpy": make it 3.16.
    let bytes = std::fs::read(&core.path).unwrap();
    match bytes.windows(8).position(|w| w == b"xdebugpy") {
        Some(at) => {
            let mut patched = bytes.clone();
            patched[at + 8..at + 16].copy_from_slice(&0x0310_00f0_u64.to_le_bytes());
            let path = dir.join("core-3.16");
            std::fs::write(&path, patched).unwrap();
            cases.push((
                "a version patched to 3.16".into(),
                vec![path.into()],
                UNSUPPORTED_VERSION,
            ));
        }
        None => println!(
            "skipped the unsupported version: {} has no _Py_DebugOffsets (3.13+)",
            python.version
        ),
    }
    assert!(!cases.is_empty(), "no case could be made");
    let tids = recording.tids();
    for (what, args, code) in cases {
        let mut json_args: Vec<&OsStr> = vec![OsStr::new("analyze")];
        json_args.extend(args.iter().map(|a| a.as_os_str()));
        json_args.push(OsStr::new("--json"));
        let finished = run_pycore(&json_args, dir.path(), "pycore").unwrap();
        assert_eq!(finished.code(), Some(code), "{what}: {}", finished.stderr);
        let doc: serde_json::Value = serde_json::from_slice(&finished.stdout).unwrap();
        assert_eq!(
            doc["error"]["code"].as_i64(),
            Some(i64::from(code)),
            "{what}"
        );
        assert!(doc["python"].is_null(), "{what}: python {}", doc["python"]);
        assert_eq!(doc["core"]["pid"].as_u64(), recording.pid, "{what}");
        assert_eq!(doc["crash"]["kind"], "snapshot", "{what}");
        let threads = doc["threads"].as_array().unwrap();
        let got: std::collections::BTreeSet<u64> =
            threads.iter().filter_map(|t| t["tid"].as_u64()).collect();
        assert_eq!(got, tids, "{what}: threads");
        for thread in threads {
            assert!(
                thread["pc"].is_string() && thread["sp"].is_string(),
                "{what}: {thread}"
            );
            assert_eq!(
                thread["is_main"].as_bool(),
                Some(thread["tid"].as_u64() == recording.pid)
            );
        }
        let mut text_args = json_args.clone();
        text_args.pop();
        let text = run_pycore(&text_args, dir.path(), "pycore").unwrap();
        assert_eq!(text.code(), Some(code), "{what}: text");
        let stdout = text.stdout_text();
        assert!(stdout.contains("Python: not read"), "{what}:\n{stdout}");
        for tid in &tids {
            assert!(
                stdout.contains(&format!("Thread {tid}")),
                "{what}: no thread {tid}:\n{stdout}"
            );
        }
        assert_eq!(text.stderr.lines().count(), 1, "{what}: {}", text.stderr);
    }
    dir.remove();
}

fn assert_no_panic(args: &[&OsStr], stderr: &str) {
    let lower = stderr.to_lowercase();
    for word in ["panicked", "backtrace"] {
        assert!(
            !lower.contains(word),
            "pycore {args:?}: {word:?} on stderr:\n{stderr}"
        );
    }
}

/// Any core of a Python process serves these tests; this takes one from the
/// newest release build of the versions pycore has handled longest (3.8-3.13),
/// so that a version or build shape still being brought up (see cores.rs's
/// matrix) cannot fail a test about bad input. Else the newest supported one.
fn newest(supported: &[Interpreter]) -> &Interpreter {
    let established = |i: &&Interpreter| {
        i.build == Build::Release && ((3, 8)..=(3, 13)).contains(&i.version.major_minor())
    };
    supported
        .iter()
        .filter(established)
        .max_by_key(|i| i.version)
        .or_else(|| supported.iter().max_by_key(|i| i.version))
        .unwrap_or_else(|| {
            panic!(
                "no supported Python interpreter found in {}",
                interpreters::search_locations()
            )
        })
}
