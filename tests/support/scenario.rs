//! Running the scenario programs of tests/scenarios/ and analysing their cores.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::interpreters::Interpreter;
use super::matrix::Progress;
use super::process::{gcore, last_lines, run_pycore, task_ids, wait_for, ChildGuard, TestDir};
use super::stacks::{compare, Recording, Report, Verdict};

/// Interpreter start-up plus all threads parking takes well under a second
/// (a few seconds for a debug build); this leaves room for a loaded CI machine.
const RECORD_TIMEOUT: Duration = Duration::from_secs(30);
/// The recorder thread exits right after writing the recording.
const RECORDER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scenarios")
        .join(name)
}

/// `python SCENARIO RECORD` with a controlled environment:
/// -E ignores PYTHON* variables of the caller, -s the user's site-packages,
/// -B keeps __pycache__ out of the source tree; MALLOC_ARENA_MAX=1 keeps glibc
/// from giving each thread its own 64 MB heap arena, which keeps cores small;
/// a UTF-8 locale makes Python 3.6 decode the non-ASCII file name données.py
/// (under the C locale it would use ASCII and fail to import it); plus what
/// this interpreter's build needs ([`Interpreter::scenario_env`]).
pub fn python_command(python: &Interpreter, scenario: &str, record: &Path) -> Command {
    let mut command = Command::new(&python.path);
    command
        .args(["-E", "-s", "-B"])
        .arg(scenario_path(scenario))
        .arg(record)
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8")
        .envs(python.scenario_env());
    command
}

/// Runs parked_threads.py, waits until it has recorded itself and only the
/// recorded threads are left, and takes a core of it with gcore; `progress`
/// says how far it got.
pub fn gcore_of_parked_threads(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
) -> Result<(Recording, PathBuf), String> {
    let record = dir.join("record.json");
    let mut command = python_command(python, "parked_threads.py", &record);
    let mut child = ChildGuard::spawn(&mut command, dir.path(), "scenario")?;
    wait_for_file(&mut child, &record)?;
    let recording = Recording::load(&record)?;
    wait_for_only_recorded_threads(child.pid(), &recording)?;
    progress.recorded = true;
    let core = gcore(child.pid(), dir.path())?;
    progress.cored = true;
    // Dropping `child` kills the scenario, now that its core is taken.
    Ok((recording, core))
}

fn wait_for_file(child: &mut ChildGuard, path: &Path) -> Result<(), String> {
    wait_for(
        &format!("the scenario to write {}", path.display()),
        RECORD_TIMEOUT,
        || {
            if path.exists() {
                return Ok(Some(()));
            }
            match child.exited() {
                Some(status) => Err(format!(
                    "the scenario exited ({status}) before recording itself; stderr:\n{}",
                    child.stderr_tail()
                )),
                None => Ok(None),
            }
        },
    )
}

/// The recorder thread is not in the recording, so the core must be taken
/// after it is gone: then the process's threads are exactly the recorded ones.
fn wait_for_only_recorded_threads(pid: u32, recording: &Recording) -> Result<(), String> {
    let recorded = recording.tids();
    let mut live = task_ids(pid)?;
    wait_for("the recorder thread to exit", RECORDER_EXIT_TIMEOUT, || {
        live = task_ids(pid)?;
        Ok((live.len() <= recorded.len()).then_some(()))
    })
    .map_err(|e| format!("{e}: live threads {live:?}, recorded {recorded:?}"))?;
    if live != recorded {
        return Err(format!(
            "scenario problem: live threads {live:?} differ from the recorded ones {recorded:?}"
        ));
    }
    Ok(())
}

/// pycore's exit code and parsed `--json` output.
pub struct Analysis {
    pub exit_code: i32,
    pub report: Report,
}

/// Runs `pycore analyze CORE --json`, without --python: pycore must find the
/// interpreter from the core's file mappings. The core must be analysable
/// (exit code 0, or 1 for partial results with warnings).
pub fn analyze(core: &Path, dir: &Path) -> Result<Analysis, String> {
    analyze_with(core, dir, &[])
}

/// Like [`analyze`], with more arguments for pycore (such as `--python BIN`).
pub fn analyze_with(core: &Path, dir: &Path, extra: &[&OsStr]) -> Result<Analysis, String> {
    let mut args = vec![
        OsStr::new("analyze"),
        core.as_os_str(),
        OsStr::new("--json"),
    ];
    args.extend_from_slice(extra);
    let finished = run_pycore(&args, dir, "pycore")?;
    let exit_code = match finished.code() {
        Some(code @ (0 | 1)) => code,
        _ => {
            let stderr = last_lines(&finished.stderr, 20);
            let first = finished
                .stderr
                .lines()
                .next()
                .unwrap_or("(nothing on stderr)");
            return Err(format!(
                "pycore analyze: {}: {first}\nstderr:\n{stderr}",
                finished.status
            ));
        }
    };
    let report = Report::parse(&finished.stdout).map_err(|e| {
        format!(
            "{e}; stdout starts with:\n{}",
            start_of(&finished.stdout_text())
        )
    })?;
    Ok(Analysis { exit_code, report })
}

/// compare() plus the exit-code contract: 1 exactly when there are warnings.
pub fn judge(recording: &Recording, analysis: &Analysis) -> Verdict {
    let mut verdict = compare(recording, &analysis.report);
    let warnings = &analysis.report.warnings;
    match (analysis.exit_code, warnings.is_empty()) {
        (0, false) => verdict.problems.push(format!(
            "exit code 0 although there are warnings: {warnings:?}"
        )),
        (1, true) => verdict
            .problems
            .push("exit code 1 (partial data) without any warning".to_string()),
        _ => {}
    }
    verdict
        .notes
        .extend(warnings.iter().map(|w| format!("pycore warning: {w}")));
    verdict
}

fn start_of(text: &str) -> String {
    text.chars().take(500).collect()
}
