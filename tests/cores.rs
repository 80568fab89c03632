//! End-to-end tests on real cores: a scenario program records its own threads'
//! stacks from inside (tests/scenarios/recording.py), a core of it is taken,
//! and `pycore analyze --json` must report exactly those stacks.
//!
//! The gcore matrix runs parked_threads.py on every wanted interpreter row
//! (support::interpreters::WANTED: 2.7 to 3.15, release, debug and
//! free-threaded builds, shared and static libpython) and on any other
//! interpreter found, core taken by gdb's gcore while the process is alive.
//! Where gcore cannot read the thread stacks (glibc 2.41+ guard regions, as
//! in the Debian unstable builds of 3.14 and 3.15), the row takes the
//! kernel's core instead (SIGQUIT); the matrix says which core each row used.
//! Beside the stacks, every core's process and crash facts are checked
//! (support::facts). tests/forensics.rs has the crash cores and the tests of
//! single facts (GIL holder, handled exceptions, garbage collection…).
//!
//! A wanted row that is not on the machine is skipped with the reason, or
//! fails with PYCORE_REQUIRE_ALL_PYTHONS=1 (as in CI, after
//! tools/fetch-test-pythons.sh). Cores are deleted after a passing check and
//! kept (path printed) otherwise.

use crate::support;

use std::path::PathBuf;

use support::facts::Expect;
use support::interpreters::{self, Build, Interpreter, Linkage, Wanted};
use support::matrix::{check_rows, check_wanted_rows, Outcome, Progress};
use support::process::{own_uid, TestDir};
use support::scenario::{
    analyze_for, core_of_parked, gcore_of_parked_threads, judge, outcome, Run, Take,
};
use support::stacks::{compare, compare_with, Recording, Report, Require, Verdict};

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
    check_rows(title, &candidates, check_gcore_core);
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
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
    let analysis = analyze_for(python, &core.path, dir.path())?;
    let mut verdict = judge(&recording, &analysis, &expect);
    verdict.notes.extend(core.notes);
    Ok(verdict)
}

/// A 100,000-call recursion (tests/scenarios/deep_recursion.py) on every row from 3.11 (whose
/// Python calls do not recurse on the C stack): JSON holds every recorded frame, exactly,
/// without a warning; the text output folds the repeats as Python's tracebacks do.
#[test]
fn deep_recursion_is_complete() {
    const DEPTH: &str = "100000";
    let title = "cores of tests/scenarios/deep_recursion.py (100,000 frames)";
    check_wanted_rows(title, |python, progress| {
        if python.version.major_minor() < (3, 11) {
            return Outcome::Skipped {
                reason: "before 3.11 each Python call recurses on the C stack".to_string(),
            };
        }
        let dir = TestDir::new(&format!("deep-{}-{}", python.label(), python.linkage));
        let result = (|| {
            let run = Run {
                scenario: "deep_recursion.py",
                args: &[DEPTH],
                flags: &[],
            };
            let (recording, core) =
                core_of_parked(python, &dir, &run, Take::GcoreOrKernel, progress)?;
            let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
            let analysis = analyze_for(python, &core.path, dir.path())?;
            let mut verdict = judge(&recording, &analysis, &expect);
            // The 100,000 calls below the innermost show 3 times, then are counted.
            let frames = analysis
                .report
                .threads
                .first()
                .map_or(0, |t| t.frames.len());
            // recurse() at depths 100,000 to 0, main() and <module>.
            if frames != 100_003 {
                verdict
                    .problems
                    .push(format!("{frames} frames, expected 100,003"));
            }
            let text = support::process::run_pycore(
                &[
                    std::ffi::OsStr::new("analyze"),
                    core.path.as_os_str(),
                    std::ffi::OsStr::new("--no-source"),
                ],
                dir.path(),
                "pycore-text",
            )?;
            if !text
                .stdout_text()
                .contains("[Previous line repeated 99997 more times]")
            {
                verdict
                    .problems
                    .push("the text output does not fold the recursion".to_string());
            }
            verdict.notes.extend(core.notes);
            Ok(verdict)
        })();
        outcome(result, dir)
    });
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
            r#"{{"schema_version": 2, "python": {{"version": "3.12.0"}}, "threads": [{}], "warnings": []}}"#,
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
            r#"{{"schema_version": 2, "threads": [{{"tid": 7, "name": "t", "python": true, "frames": [{}]}}]}}"#,
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
            r#"{{"schema_version": 2, "python": {{"version": "3.13.5", "shape": "{shape}"}}, "threads": [{}, {}]}}"#,
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

/// Names (null when threading was never imported), spinning frames' line
/// ranges and handled exceptions: one problem per difference; a report
/// without handling_exception fails only when the field is required.
#[test]
fn comparison_checks_names_spin_ranges_and_exceptions() {
    let recording = Recording::parse(
        r#"{"python_version": "3.12.1", "threads": [
            {"tid": 1, "name": null, "handling_exception": null,
             "frames": [{"function": "spin", "qualname": "spin", "file": "/s/a.py",
                         "line": null, "line_range": [36, 37]}]},
            {"tid": 2, "name": "handler",
             "handling_exception": {"type": "ValueError", "message": "bad thing"},
             "frames": [{"function": "h", "qualname": null, "file": "/s/a.py", "line": 9}]}]}"#,
    )
    .unwrap();
    let report = |name1: &str, line1: u64, exception2: Option<&str>| {
        let exception =
            exception2.map_or(String::new(), |e| format!(r#", "handling_exception": {e}"#));
        let exception1 = if exception2.is_some() {
            r#", "handling_exception": null"#
        } else {
            ""
        };
        let text = format!(
            r#"{{"schema_version": 2, "threads": [
                {{"tid": 1, "name": {name1}, "python": true{exception1},
                  "frames": [{{"function": "spin", "qualname": "spin", "file": "/s/a.py", "line": {line1}}}]}},
                {{"tid": 2, "name": "handler", "python": true{exception},
                  "frames": [{{"function": "h", "qualname": null, "file": "/s/a.py", "line": 9}}]}}]}}"#
        );
        Report::parse(text.as_bytes()).unwrap()
    };
    let required = Require {
        handling_exception: true,
        ..Require::default()
    };
    let problems =
        |report: &Report, require: Require| compare_with(&recording, report, require).problems;
    let right = r#"{"type": "ValueError", "message": "bad thing"}"#;
    assert_eq!(
        problems(&report("null", 36, Some(right)), required),
        Vec::<String>::new()
    );
    assert!(problems(&report("null", 37, Some(right)), required).is_empty());
    assert_eq!(
        problems(&report("null", 38, Some(right)), required).len(),
        1
    );
    assert_eq!(
        problems(&report(r#""Dummy-1""#, 36, Some(right)), required).len(),
        1
    );
    for wrong in [
        r#"{"type": "ValueError", "message": "other"}"#,
        r#"{"type": "TypeError", "message": "bad thing"}"#,
        "null",
    ] {
        assert_eq!(
            problems(&report("null", 36, Some(wrong)), required).len(),
            1,
            "{wrong}"
        );
    }
    // No handling_exception field at all: a problem only when required.
    assert!(problems(&report("null", 36, None), Require::default()).is_empty());
    assert_eq!(problems(&report("null", 36, None), required).len(), 1);
}

/// gc_collecting with thread 2 collecting: true on it and false on the
/// others, and python.gc_collecting true; all null only where the collector
/// has no symbols; without a collection nobody may say true.
#[test]
fn comparison_checks_gc_collecting() {
    let recording = |collector: &str| {
        let thread = |tid: u64| {
            format!(
                r#"{{"tid": {tid}, "name": "t{tid}", "frames": [{{"function": "f", "qualname": null, "file": "/s/a.py", "line": 3}}]}}"#
            )
        };
        Recording::parse(&format!(
            r#"{{"python_version": "3.12.1", "gc_collector": {collector}, "threads": [{}, {}, {}]}}"#,
            thread(1),
            thread(2),
            thread(3)
        ))
        .unwrap()
    };
    // `interpreter`: python.gc_collecting, or "" for a report without it.
    let report = |values: [&str; 3], interpreter: &str| {
        let thread = |tid: u64, value: &str| {
            let field = if value.is_empty() {
                String::new()
            } else {
                format!(r#", "gc_collecting": {value}"#)
            };
            format!(
                r#"{{"tid": {tid}, "name": "t{tid}", "python": true{field}, "frames": [{{"function": "f", "qualname": null, "file": "/s/a.py", "line": 3}}]}}"#
            )
        };
        let python = if interpreter.is_empty() {
            String::new()
        } else {
            format!(r#""python": {{"version": "3.12.1", "gc_collecting": {interpreter}}}, "#)
        };
        let text = format!(
            r#"{{"schema_version": 2, {python}"threads": [{}, {}, {}]}}"#,
            thread(1, values[0]),
            thread(2, values[1]),
            thread(3, values[2])
        );
        Report::parse(text.as_bytes()).unwrap()
    };
    let required = Require {
        gc_collecting: true,
        ..Require::default()
    };
    let no_symbols = Require {
        gc_without_collector_symbols: true,
        ..required
    };
    let collecting = recording("2");
    let count = |recording: &Recording, values: [&str; 3], interpreter: &str, require: Require| {
        compare_with(recording, &report(values, interpreter), require)
            .problems
            .len()
    };
    assert_eq!(
        count(&collecting, ["false", "true", "false"], "true", required),
        0
    );
    assert_eq!(
        count(&collecting, ["false", "true", "false"], "true", no_symbols),
        0
    );
    assert_eq!(
        count(&collecting, ["true", "true", "true"], "true", required),
        1
    );
    assert_eq!(
        count(&collecting, ["false", "false", "false"], "true", required),
        1
    );
    assert_eq!(
        count(&collecting, ["false", "null", "false"], "true", required),
        1
    );
    assert_eq!(
        count(&collecting, ["true", "true", "false"], "true", required),
        1
    );
    assert_eq!(
        count(&collecting, ["null", "true", "false"], "true", required),
        1
    );
    assert_eq!(
        count(&collecting, ["null", "true", "false"], "true", no_symbols),
        1
    );
    assert_eq!(
        count(&collecting, ["null", "null", "null"], "true", required),
        1
    );
    assert_eq!(
        count(&collecting, ["null", "null", "null"], "true", no_symbols),
        0
    );
    assert_eq!(
        count(&collecting, ["null", "null", "null"], "null", no_symbols),
        1
    );
    assert_eq!(
        count(&collecting, ["false", "true", "false"], "false", required),
        1
    );
    assert_eq!(
        count(&collecting, ["false", "true", "false"], "", required),
        1
    );
    assert_eq!(count(&collecting, ["", "", ""], "true", required), 1);
    assert_eq!(count(&collecting, ["", "", ""], "", Require::default()), 0);
    let idle = recording("null");
    assert_eq!(
        count(&idle, ["false", "false", "null"], "false", required),
        0
    );
    assert_eq!(
        count(&idle, ["false", "false", "null"], "null", required),
        0
    );
    assert_eq!(
        count(&idle, ["false", "true", "false"], "false", required),
        1
    );
    assert_eq!(
        count(&idle, ["false", "false", "false"], "true", required),
        1
    );
}
