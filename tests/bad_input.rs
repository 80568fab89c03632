//! pycore on input it cannot analyse: the documented exit code, exactly one
//! line on stderr, and never a panic or a Rust backtrace, even with
//! RUST_BACKTRACE=1 (which support::process::run_pycore always sets).

mod support;

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
    }
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
