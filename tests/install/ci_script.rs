//! tools/ci-analyze-cores.sh, the CI recipe's last step (docs/ci.md), on a real crash: the
//! kernel's core of tests/scenarios/crash_abort.py (os.abort() in the main thread, two parked
//! workers) under pyenv's 3.12, written into the process's working directory as in a CI job
//! with `ulimit -c unlimited`. The script must find it among other files, write CORE.md and
//! CORE.json whose stacks and crash are what the process recorded just before it aborted,
//! print the markdown, and exit 1.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::facts::{self, CrashCause, Expect, ABRT_TKILL};
use crate::support::interpreters::{self, Candidate, Interpreter, Linkage};
use crate::support::kernel::{check_core_pattern, SIGABRT};
use crate::support::matrix::Progress;
use crate::support::process::{run_with_timeout, TestDir};
use crate::support::scenario::{core_of_crash, Run};
use crate::support::stacks::{compare_with, Report};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ci-analyze-cores.sh")
}

/// The script over `dirs`, with this build's pycore.
fn run_script(dir: &TestDir, args: &[&Path], label: &str) -> crate::support::process::Finished {
    let mut command = Command::new("bash");
    command
        .arg(script())
        .arg("--pycore")
        .arg(env!("CARGO_BIN_EXE_pycore"))
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .current_dir(dir.path());
    run_with_timeout(&mut command, SCRIPT_TIMEOUT, dir.path(), label).expect("the script runs")
}

#[test]
fn ci_script_reports_a_real_crash_and_fails() {
    if let Err(reason) = check_core_pattern() {
        skip(&format!("no kernel cores here: {reason}"));
        return;
    }
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("ci-script");
    let mut progress = Progress::default();
    let Some((recording, core)) = core_of_crash(
        &python,
        &dir,
        &Run::new("crash_abort.py"),
        SIGABRT,
        &mut progress,
    )
    .unwrap_or_else(|e| panic!("the crash of crash_abort.py: {e}")) else {
        skip("cannot raise RLIMIT_CORE (ulimit -c unlimited failed)");
        return;
    };
    // A job's directory holds more than the core: none of these is one.
    let job = core
        .path
        .parent()
        .expect("the core is in the scenario's cwd");
    fs::write(job.join("core.py"), "print('not a core')\n").unwrap();
    fs::write(job.join("notes.core.txt"), "not a core either\n").unwrap();
    fs::create_dir(job.join("sub")).unwrap();
    fs::write(
        job.join("sub/core"),
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0",
    )
    .unwrap();
    // A compressed core as systemd-coredump's store names it, in another folder.
    let store = dir.join("store");
    fs::create_dir(&store).unwrap();
    let stored = store.join(format!(
        "core.python3\\x2e12.{}.0123456789abcdef0123456789abcdef.{}.1732953735000000.zst",
        crate::support::process::own_uid().expect("own uid"),
        recording.pid.expect("the recording has the pid")
    ));
    let mut zstd = Command::new("zstd");
    zstd.args(["-q", "-1", "-o"]).arg(&stored).arg(&core.path);
    let compressed = run_with_timeout(&mut zstd, SCRIPT_TIMEOUT, dir.path(), "zstd")
        .expect("zstd runs (Debian's zstd package)");
    assert!(compressed.status.success(), "zstd: {}", compressed.stderr);

    let reports = dir.join("reports");
    let finished = run_script(
        &dir,
        &[Path::new("--out"), &reports, job, store.as_path()],
        "script",
    );
    let log = finished.stdout_text();
    println!("{log}");
    assert_eq!(
        finished.code(),
        Some(1),
        "a found core fails the job; stderr: {}",
        finished.stderr
    );
    assert!(
        log.contains("2 core dump(s) found"),
        "exactly the kernel's core and its compressed copy are cores:\n{log}"
    );

    // The markdown in the log and in CORE.md names the crash and the crashing function.
    let name = core.path.file_name().unwrap().to_str().unwrap();
    let markdown = fs::read_to_string(reports.join(format!("{name}.md"))).expect("CORE.md");
    assert!(log.contains(&markdown), "the log holds the whole report");
    assert!(markdown.contains("SIGABRT"), "{markdown}");
    let crashed = recording
        .threads
        .iter()
        .find(|t| Some(t.tid) == recording.crash.as_ref().map(|c| c.tid))
        .or_else(|| {
            recording
                .threads
                .iter()
                .find(|t| t.name.as_deref() == Some("MainThread"))
        })
        .expect("the recording names the crashing thread");
    let innermost = crashed
        .frames
        .first()
        .expect("the crashing thread has frames");
    let line = format!(
        "File \"{}\", line {}, in {}",
        innermost.file,
        innermost.line.expect("a line"),
        innermost.function
    );
    assert!(markdown.contains(&line), "no {line:?} in:\n{markdown}");

    // CORE.json: the recorded stacks and crash facts, as the forensics tests check them.
    let json = fs::read(reports.join(format!("{name}.json"))).expect("CORE.json");
    let report = Report::parse(&json).expect("CORE.json is pycore's JSON");
    let expect = Expect::crash(&recording, &core, ABRT_TKILL, CrashCause::OwnThread)
        .expect("the crash's facts");
    let mut problems = compare_with(&recording, &report, expect.require).problems;
    problems.extend(facts::check(&recording, &report.doc, &expect));
    assert!(problems.is_empty(), "CORE.json:\n{}", problems.join("\n"));
    // The stored copy: the same stacks (its report is named without the .zst).
    let stored_name = stored.file_name().unwrap().to_str().unwrap();
    let stored_json = reports.join(format!("{}.json", stored_name.trim_end_matches(".zst")));
    let stored_report = Report::parse(&fs::read(&stored_json).expect("the stored core's JSON"))
        .expect("pycore's JSON");
    let problems = compare_with(&recording, &stored_report, expect.require).problems;
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        stored_json.display(),
        problems.join("\n")
    );

    // No core: success, and nothing written.
    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    let clean = run_script(
        &dir,
        &[Path::new("--out"), &dir.join("none"), &empty],
        "clean",
    );
    assert_eq!(clean.code(), Some(0), "{}", clean.stdout_text());
    assert!(clean.stdout_text().contains("no core dumps"));
    dir.remove();
}

/// The interpreter filling the wanted row, or None after printing why it is missing (a
/// failure with PYCORE_REQUIRE_ALL_PYTHONS=1).
fn interpreter(label: &str, linkage: Linkage) -> Option<Interpreter> {
    static FOUND: OnceLock<Vec<interpreters::Found>> = OnceLock::new();
    let found = FOUND.get_or_init(interpreters::discover);
    let wanted = interpreters::WANTED
        .iter()
        .find(|w| w.label() == label && w.linkage == linkage)
        .unwrap_or_else(|| panic!("{label} {linkage} is not a wanted row"));
    match interpreters::rows_for(found, std::slice::from_ref(wanted), false).pop() {
        Some(Candidate::Found { interpreter, .. }) => Some(interpreter),
        _ => {
            skip(&wanted.why_missing());
            None
        }
    }
}

fn skip(reason: &str) {
    assert!(
        !interpreters::require_all(),
        "{reason} ({}=1 requires it)",
        interpreters::REQUIRE_ALL_ENV
    );
    println!("skipped: {reason}");
}
