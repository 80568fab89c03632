//! End-to-end tests on real cores: a scenario program records its own threads'
//! stacks from inside (tests/scenarios/recording.py), a core of it is taken,
//! and `pycore analyze --json` must report exactly those stacks.
//!
//! - the gcore matrix: parked_threads.py on every wanted interpreter row
//!   (support::interpreters::WANTED: 2.7 to 3.15, release, debug and
//!   free-threaded builds, shared and static libpython) and on any other
//!   interpreter found, core taken by gdb's gcore while the process is alive;
//! - kernel cores: crash_abort.py / crash_segv.py crash after recording
//!   themselves on a few of those rows ([`KERNEL_CORE_ROWS`]), and the kernel
//!   writes the core.
//!
//! A wanted row that is not on the machine is skipped with the reason, or
//! fails with PYCORE_REQUIRE_ALL_PYTHONS=1 (as in CI, after
//! tools/fetch-test-pythons.sh). Cores are deleted after a passing check and
//! kept (path printed) otherwise.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::interpreters::{self, Build, Interpreter, Linkage, Wanted};
use support::matrix::{
    assert_all_passed, assert_some_passed, print_matrix, run_matrix, Outcome, Progress,
};
use support::process::{run_with_timeout, TestDir};
use support::scenario::{analyze, gcore_of_parked_threads, judge, python_command};
use support::stacks::{compare, Recording, Report, Verdict};

const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;
/// Start-up, parking, recording and the kernel writing a ~25 MB core (~400 MB
/// for a free-threaded build).
const CRASH_TIMEOUT: Duration = Duration::from_secs(60);

/// The rows the crash scenarios run on (label and linkage of rows of
/// interpreters::WANTED): crash cores are slower to check than gcore ones and
/// test the same reader, so one of each kind suffices: the newest pyenv
/// shared-libpython build, Debian's static /usr/bin/python3.11, Python 2, a
/// static stripped 3.14 and the free-threaded 3.13.
const KERNEL_CORE_ROWS: &[(&str, Linkage)] = &[
    ("2.7", Linkage::Shared),
    ("3.11", Linkage::Static),
    ("3.13", Linkage::Shared),
    ("3.13t", Linkage::Shared),
    ("3.14", Linkage::Static),
];
/// Exit code of the shell wrapper when it cannot lift RLIMIT_CORE.
const CANNOT_ENABLE_CORES: i32 = 97;

#[test]
fn gcore_matrix_matches_recorded_stacks() {
    let title = "gcore cores of tests/scenarios/parked_threads.py";
    let found = interpreters::discover();
    assert!(
        !found.is_empty(),
        "no Python interpreter found in {}",
        interpreters::search_locations()
    );
    let candidates = interpreters::rows_for(&found, interpreters::WANTED, true);
    let start = Instant::now();
    let rows = run_matrix(title, &candidates, check_gcore_core);
    print_matrix(title, &rows, start.elapsed());
    assert_all_passed(title, &rows);
    assert_some_passed(title, &rows);
}

fn check_gcore_core(python: &Interpreter, progress: &mut Progress) -> Outcome {
    let dir = TestDir::new(&format!("gcore-{}-{}", python.label(), python.linkage));
    let result = gcore_and_judge(python, &dir, progress);
    outcome(result, dir)
}

fn gcore_and_judge(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
) -> Result<Verdict, String> {
    let (recording, core) = gcore_of_parked_threads(python, dir, progress)?;
    let analysis = analyze(&core, dir.path())?;
    Ok(judge(&recording, &analysis))
}

#[test]
fn kernel_core_of_abort_in_main_thread() {
    kernel_core_matrix("crash_abort.py", SIGABRT);
}

#[test]
fn kernel_core_of_segv_in_worker_thread() {
    kernel_core_matrix("crash_segv.py", SIGSEGV);
}

/// Runs `scenario` until it crashes with `signal` on the KERNEL_CORE_ROWS
/// and compares the kernel's core with what the scenario recorded.
fn kernel_core_matrix(scenario: &str, signal: i32) {
    let title = format!("kernel cores of tests/scenarios/{scenario}");
    if let Err(reason) = check_core_pattern() {
        assert!(
            !interpreters::require_all(),
            "{title}: cannot run ({}=1): {reason}",
            interpreters::REQUIRE_ALL_ENV
        );
        println!("{title}: skipped: {reason}");
        return;
    }
    let found = interpreters::discover();
    let candidates = interpreters::rows_for(&found, &kernel_core_rows(), false);
    let start = Instant::now();
    let rows = run_matrix(&title, &candidates, |python, progress| {
        check_kernel_core(python, scenario, signal, progress)
    });
    print_matrix(&title, &rows, start.elapsed());
    assert_all_passed(&title, &rows);
    assert_some_passed(&title, &rows);
}

fn kernel_core_rows() -> Vec<Wanted> {
    KERNEL_CORE_ROWS
        .iter()
        .map(|(label, linkage)| {
            *interpreters::WANTED
                .iter()
                .find(|w| w.label() == *label && w.linkage == *linkage)
                .unwrap_or_else(|| {
                    panic!("KERNEL_CORE_ROWS: {label} {linkage} is not a wanted row")
                })
        })
        .collect()
}

/// The test finds the core in the crashing process's working directory, which
/// needs a plain relative file name in core_pattern (this machine: "core").
fn check_core_pattern() -> Result<(), String> {
    let path = "/proc/sys/kernel/core_pattern";
    let pattern = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let pattern = pattern.trim();
    if pattern.starts_with('|') {
        return Err(format!(
            "{path} pipes cores to a program ({pattern:?}), not to a file"
        ));
    }
    if pattern.is_empty() || pattern.contains('/') || pattern.contains('%') {
        return Err(format!(
            "{path} is {pattern:?}; this test handles only a plain file name like \"core\""
        ));
    }
    Ok(())
}

fn check_kernel_core(
    python: &Interpreter,
    scenario: &str,
    signal: i32,
    progress: &mut Progress,
) -> Outcome {
    let dir = TestDir::new(&format!(
        "kernel-{}-{}-{}",
        python.label(),
        python.linkage,
        scenario
    ));
    match crash_and_find_core(python, scenario, signal, &dir, progress) {
        Ok(Some((recording, core))) => {
            let result = analyze(&core, dir.path()).map(|analysis| judge(&recording, &analysis));
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
}

/// Runs the scenario with core dumps enabled, in an empty working directory
/// where the kernel writes the core. `None` if cores cannot be enabled.
fn crash_and_find_core(
    python: &Interpreter,
    scenario: &str,
    signal: i32,
    dir: &TestDir,
    progress: &mut Progress,
) -> Result<Option<(Recording, PathBuf)>, String> {
    let cwd = dir.join("cwd");
    std::fs::create_dir(&cwd).map_err(|e| format!("creating {}: {e}", cwd.display()))?;
    let record = dir.join("record.json");
    let mut command = with_unlimited_core_size(&python_command(python, scenario, &record));
    command.current_dir(&cwd);
    let finished = run_with_timeout(&mut command, CRASH_TIMEOUT, dir.path(), "scenario")?;
    if finished.code() == Some(CANNOT_ENABLE_CORES) {
        return Ok(None);
    }
    // The scenario writes its recording just before it crashes.
    progress.recorded = record.exists();
    if finished.status.signal() != Some(signal) || !finished.status.core_dumped() {
        return Err(format!(
            "expected death by signal {signal} with a core dump, got {}; stderr:\n{}",
            finished.status, finished.stderr
        ));
    }
    let recording = Recording::load(&record)?;
    let core = only_file_in(&cwd)?;
    progress.cored = true;
    Ok(Some((recording, core)))
}

/// `bash -c 'ulimit -c unlimited; exec COMMAND'`: std has no setrlimit, and
/// the limit must be raised in the child only.
fn with_unlimited_core_size(inner: &Command) -> Command {
    let mut outer = Command::new("bash");
    outer
        .args([
            "-c",
            &format!("ulimit -c unlimited || exit {CANNOT_ENABLE_CORES}; exec \"$@\""),
            "bash",
        ])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    outer
}

/// The core: the crash wrote nothing else into the fresh working directory.
fn only_file_in(dir: &Path) -> Result<PathBuf, String> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [core] => Ok(core.clone()),
        _ => Err(format!(
            "expected exactly the core file in {}, found {entries:?}",
            dir.display()
        )),
    }
}

/// Turns a check's result into a row outcome; removes the test directory only
/// when the check passed.
fn outcome(result: Result<Verdict, String>, dir: TestDir) -> Outcome {
    let kept = format!("core and logs kept in {}", dir.path().display());
    match result {
        Ok(verdict) if verdict.passed() => {
            dir.remove();
            Outcome::Pass {
                notes: verdict.notes,
            }
        }
        Ok(verdict) => {
            let summary = format!("{} problems in pycore's report", verdict.problems.len());
            let mut details = verdict.problems.join("\n");
            for note in &verdict.notes {
                details.push_str(&format!("\nnote: {note}"));
            }
            details.push_str(&format!("\n{kept}"));
            Outcome::fail(summary, details)
        }
        Err(error) => {
            let summary = error
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(100)
                .collect::<String>();
            Outcome::fail(summary, format!("{error}\n{kept}"))
        }
    }
}

/// The harness itself: a hand-written report with one of each kind of
/// difference must produce one problem each (run with --nocapture and add a
/// println to see the diff format).
#[test]
fn comparison_reports_each_difference() {
    let frame = |function: &str, line: u64| {
        format!(
            r#"{{"function": "{function}", "qualname": null, "file": "/s/a.py", "line": {line}}}"#
        )
    };
    let thread = |tid: u64, name: &str, frames: &[String]| {
        format!(
            r#"{{"tid": {tid}, "name": "{name}", "python": true, "frames": [{}]}}"#,
            frames.join(",")
        )
    };
    let recorded = [
        thread(1, "MainThread", &[frame("main", 10), frame("<module>", 20)]),
        thread(2, "worker", &[frame("sleeper", 5), frame("run", 900)]),
        thread(3, "gone", &[frame("sleeper", 5)]),
    ];
    let reported = [
        thread(1, "MainThread", &[frame("main", 10), frame("<module>", 20)]),
        thread(1, "MainThread", &[frame("main", 10), frame("<module>", 20)]), // listed twice
        thread(2, "wrong-name", &[frame("sleeper", 6)]), // name, line, missing frame
        thread(4, "stranger", &[]),                      // not recorded
    ];
    let recording = Recording::parse(&format!(
        r#"{{"python_version": "3.12.1", "pid": 1, "threads": [{}]}}"#,
        recorded.join(",")
    ))
    .unwrap();
    let report = Report::parse(
        format!(
            r#"{{"schema_version": 1, "python": {{"version": "3.12.0"}}, "threads": [{}], "warnings": []}}"#,
            reported.join(",")
        )
        .as_bytes(),
    )
    .unwrap();
    let verdict = compare(&recording, &report);
    let expected = [
        "python version: expected 3.12.1, got 3.12.0",
        "thread 1 is listed 2 times",
        "thread 4 \"stranger\" is not a thread of the process",
        "thread 2 \"worker\": name: expected \"worker\", got \"wrong-name\"",
        "thread 2 \"worker\": frames differ",
        "thread 3 \"gone\" is missing from pycore's output",
    ];
    assert_eq!(
        verdict.problems.len(),
        expected.len(),
        "{:#?}",
        verdict.problems
    );
    for (problem, start) in verdict.problems.iter().zip(expected) {
        assert!(
            problem.starts_with(start),
            "{problem:?} should start with {start:?}; all problems:\n{}",
            verdict.problems.join("\n")
        );
    }
}

/// A recorded qualname (Python 3.11+) must be reported; without one (older
/// Pythons have no co_qualname) pycore's qualname is not checked.
#[test]
fn comparison_checks_qualname_only_where_recorded() {
    let frame = |qualname: &str| {
        format!(r#"{{"function": "meth", "qualname": {qualname}, "file": "/s/a.py", "line": 3}}"#)
    };
    let recording = |qualname: &str| {
        let text = format!(
            r#"{{"python_version": "3.12.1", "threads": [{{"tid": 7, "name": "t", "frames": [{}]}}]}}"#,
            frame(qualname)
        );
        Recording::parse(&text).unwrap()
    };
    let report = |qualname: &str| {
        let text = format!(
            r#"{{"schema_version": 1, "threads": [{{"tid": 7, "name": "t", "python": true, "frames": [{}]}}]}}"#,
            frame(qualname)
        );
        Report::parse(text.as_bytes()).unwrap()
    };
    let problems =
        |recorded: &str, reported: &str| compare(&recording(recorded), &report(reported)).problems;
    assert!(problems(r#""Cls.meth""#, r#""Cls.meth""#).is_empty());
    assert!(problems("null", r#""Cls.meth""#).is_empty());
    assert!(problems("null", "null").is_empty());
    assert_eq!(problems(r#""Cls.meth""#, "null").len(), 1);
    assert_eq!(problems(r#""Cls.meth""#, r#""Other.meth""#).len(), 1);
}

/// The GIL and build-shape checks: with a GIL the holder must be told
/// exactly; without one (free-threaded) false or null are right, true is not.
#[test]
fn comparison_checks_gil_holder_and_shape() {
    let recording = |shape: &str, gil_enabled: bool, holder: &str| {
        let thread = |tid: u64| {
            format!(
                r#"{{"tid": {tid}, "name": "t{tid}", "frames": [{{"function": "f", "qualname": null, "file": "/s/a.py", "line": 3}}]}}"#
            )
        };
        let text = format!(
            r#"{{"python_version": "3.13.5", "shape": "{shape}", "gil_enabled": {gil_enabled}, "gil_holder": {holder}, "threads": [{}, {}]}}"#,
            thread(1),
            thread(2)
        );
        Recording::parse(&text).unwrap()
    };
    let report = |shape: &str, holds: [&str; 2]| {
        let thread = |tid: u64, holds: &str| {
            format!(
                r#"{{"tid": {tid}, "name": "t{tid}", "python": true, "holds_gil": {holds}, "frames": [{{"function": "f", "qualname": null, "file": "/s/a.py", "line": 3}}]}}"#
            )
        };
        let text = format!(
            r#"{{"schema_version": 1, "python": {{"version": "3.13.5", "shape": "{shape}"}}, "threads": [{}, {}]}}"#,
            thread(1, holds[0]),
            thread(2, holds[1])
        );
        Report::parse(text.as_bytes()).unwrap()
    };
    let problems = |recording: &Recording, report: &Report| compare(recording, report).problems;

    // A GIL, held by thread 1.
    let held = recording("release", true, "1");
    assert!(problems(&held, &report("release", ["true", "false"])).is_empty());
    assert_eq!(
        problems(&held, &report("release", ["false", "false"])).len(),
        1
    );
    assert_eq!(
        problems(&held, &report("release", ["true", "null"])).len(),
        1
    );
    assert_eq!(
        problems(&held, &report("debug", ["true", "false"])).len(),
        1
    );
    // A GIL nobody holds.
    let free = recording("debug", true, "null");
    assert!(problems(&free, &report("debug", ["false", "false"])).is_empty());
    assert_eq!(
        problems(&free, &report("debug", ["true", "false"])).len(),
        1
    );
    // No GIL at all.
    let none = recording("free-threaded", false, "null");
    assert!(problems(&none, &report("free-threaded", ["null", "false"])).is_empty());
    assert_eq!(
        problems(&none, &report("free-threaded", ["null", "true"])).len(),
        1
    );
    assert_eq!(
        problems(&none, &report("release", ["null", "null"])).len(),
        1
    );
}

/// Wanted rows are filled by version, build shape and linkage; what is left
/// is missing, and other interpreters become extra rows only when asked.
#[test]
fn wanted_rows_are_matched_by_version_shape_and_linkage() {
    let interpreter = |version: &str, build: Build, linkage: Linkage| Interpreter {
        path: format!("/x/python{version}{}", build.suffix()).into(),
        version: interpreters::Version::parse(version).unwrap(),
        build,
        linkage,
    };
    let found = vec![
        Ok(interpreter("3.13.0", Build::Release, Linkage::Shared)),
        Ok(interpreter("3.13.5", Build::FreeThreaded, Linkage::Shared)),
        Ok(interpreter("3.14.1", Build::Release, Linkage::Shared)), // wanted static
        Err((PathBuf::from("/x/python3.9"), "does not start".to_string())),
    ];
    let wanted: Vec<Wanted> = interpreters::WANTED
        .iter()
        .filter(|w| ["3.13", "3.13t", "3.14"].contains(&w.label().as_str()))
        .copied()
        .collect();
    let describe = |extras: bool| -> Vec<String> {
        interpreters::rows_for(&found, &wanted, extras)
            .iter()
            .map(|c| match c {
                interpreters::Candidate::Found {
                    interpreter,
                    wanted,
                } => format!("{} {} {wanted}", interpreter.label(), interpreter.linkage),
                interpreters::Candidate::Missing(w) => {
                    format!("{} {} missing", w.label(), w.linkage)
                }
                interpreters::Candidate::Broken { path, .. } => {
                    format!("broken {}", path.display())
                }
            })
            .collect()
    };
    assert_eq!(
        describe(false),
        [
            "3.13 shared true",
            "3.13t shared true",
            "3.14 static missing"
        ]
    );
    assert_eq!(
        describe(true),
        [
            "3.13 shared true",
            "3.13t shared true",
            "3.14 shared false",
            "3.14 static missing",
            "broken /x/python3.9"
        ]
    );
}

#[test]
fn versioned_python_names() {
    for name in [
        "python2.7",
        "python3.13",
        "python3.14d",
        "python3.13t",
        "python3.13td",
    ] {
        assert!(interpreters::is_versioned_python_name(name), "{name}");
    }
    for name in [
        "python3",
        "python3.6m",
        "python3.11-config",
        "python3.14-dbg",
        "python",
    ] {
        assert!(!interpreters::is_versioned_python_name(name), "{name}");
    }
}
