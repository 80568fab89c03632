//! Running the scenario programs of tests/scenarios/, taking their cores
//! (gcore, or the kernel's) and analysing them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::facts::{self, Expect};
use super::interpreters::Interpreter;
use super::kernel::{
    check_core_pattern, only_file_in, wait_for_core_dump, with_unlimited_core_size,
    CANNOT_ENABLE_CORES, CORE_DUMP_TIMEOUT, SIGQUIT,
};
use super::matrix::{CoreKind, Outcome, Progress};
use super::process::{
    current_tid, gcore, last_lines, run_pycore, run_with_timeout, send_signal, task_ids,
    thread_stack_mappings, thread_states, wait_for, ChildGuard, TestDir,
};
use super::stacks::{compare_with, Recording, Report, Verdict};

/// Interpreter start-up plus all threads parking takes well under a second
/// (a few seconds for a debug build); this leaves room for a loaded CI machine.
const RECORD_TIMEOUT: Duration = Duration::from_secs(30);
/// The recorder thread exits right after writing the recording.
const RECORDER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// A thread that recorded itself reaches its blocking system call at once.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

pub fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scenarios")
        .join(name)
}

/// A scenario program and how to run it: `python -E -s -B FLAGS SCENARIO RECORD ARGS`.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    pub scenario: &'a str,
    /// Arguments after the recording's path.
    pub args: &'a [&'a str],
    /// Interpreter options beyond -E -s -B (such as -S).
    pub flags: &'a [&'a str],
}

impl<'a> Run<'a> {
    pub const fn new(scenario: &'a str) -> Run<'a> {
        Run {
            scenario,
            args: &[],
            flags: &[],
        }
    }
}

pub fn python_run_command(python: &Interpreter, run: &Run, record: &Path) -> Command {
    let mut command = Command::new(&python.path);
    command
        .args(["-E", "-s", "-B"])
        .args(run.flags)
        .arg(scenario_path(run.scenario))
        .arg(record)
        .args(run.args)
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8")
        .envs(python.scenario_env());
    command
}

/// A core of a scenario process.
#[derive(Debug)]
pub struct Core {
    pub path: PathBuf,
    pub kind: CoreKind,
    /// The pid of the kill(1) that sent SIGQUIT, for kernel cores the harness
    /// asked for.
    pub quit_sender: Option<u32>,
    /// Said in the row's notes: memory gcore could not read outside thread
    /// stacks, which pycore may or may not need.
    pub notes: Vec<String>,
    /// The harness thread that started the scenario: the parent the kernel
    /// names in its core (see facts::Expect::parent_thread).
    pub spawned_by: u64,
}

/// How to take the core of a parked scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// gcore; if gcore could not read thread stacks (glibc 2.41+ guard
    /// regions, see [`CoreKind::KernelQuitForStacks`]), SIGQUIT and the
    /// kernel's core instead.
    GcoreOrKernel,
    /// SIGQUIT from the harness and the kernel's core.
    Quit,
}

/// Runs `run`, a scenario that records its parked threads, waits until it has
/// recorded itself, only the recorded threads are left and each of them but
/// a spinning one (see recording.py) sleeps in the kernel, and takes its core
/// as `take` says; `progress` says how far it got.
///
/// The scenario runs under `ulimit -c unlimited` in its own empty working
/// directory (`DIR/cwd`, where the kernel writes a core); everything else
/// (recording, logs, gcore's core) goes to `dir`.
pub fn core_of_parked(
    python: &Interpreter,
    dir: &TestDir,
    run: &Run,
    take: Take,
    progress: &mut Progress,
) -> Result<(Recording, Core), String> {
    let command = python_run_command(python, run, &record_path(dir));
    core_of_parked_command(&command, dir, take, progress)
}

/// Where a scenario run by the helpers here writes its recording (the
/// argument after the scenario's path).
pub fn record_path(dir: &TestDir) -> PathBuf {
    dir.join("record.json")
}

/// [`core_of_parked`] of a scenario that `command` starts some other way
/// (through a script, a virtualenv, a moved interpreter…): it must write
/// its recording to [`record_path`]`(dir)`.
pub fn core_of_parked_command(
    command: &Command,
    dir: &TestDir,
    take: Take,
    progress: &mut Progress,
) -> Result<(Recording, Core), String> {
    if take == Take::Quit {
        check_core_pattern()?;
    }
    let cwd = dir.join("cwd");
    std::fs::create_dir(&cwd).map_err(|e| format!("creating {}: {e}", cwd.display()))?;
    let record = record_path(dir);
    let mut command = with_unlimited_core_size(command, false);
    command.current_dir(&cwd);
    let spawned_by = current_tid()?;
    let mut child = ChildGuard::spawn(&mut command, dir.path(), "scenario")?;
    wait_for_file(&mut child, &record)?;
    let recording = Recording::load(&record)?;
    wait_for_only_recorded_threads(child.pid(), &recording)?;
    wait_until_blocked(child.pid(), &recording)?;
    progress.recorded = true;
    let core = match take {
        Take::Quit => quit_and_collect(
            &mut child,
            &cwd,
            dir,
            CoreKind::KernelQuit,
            Vec::new(),
            spawned_by,
        )?,
        Take::GcoreOrKernel => {
            let taken = gcore(child.pid(), dir.path())?;
            let stacks = if taken.unreadable.is_empty() {
                Vec::new()
            } else {
                thread_stack_mappings(child.pid())?
            };
            let (on_stacks, elsewhere): (Vec<_>, Vec<_>) = taken
                .unreadable
                .iter()
                .partition(|(start, end)| stacks.iter().any(|(s, e)| start < e && s < end));
            let notes: Vec<String> = elsewhere
                .iter()
                .map(|(start, end)| {
                    format!(
                        "gcore could not read {start:#x}-{end:#x} (not the stack of a thread \
                         blocked in a system call)"
                    )
                })
                .collect();
            if on_stacks.is_empty() {
                Core {
                    path: taken.core,
                    kind: CoreKind::Gcore,
                    quit_sender: None,
                    notes,
                    spawned_by,
                }
            } else {
                // gcore wrote thread stacks as zeros: a gcore limitation,
                // not pycore's; the kernel's core has them.
                let _ = std::fs::remove_file(&taken.core);
                check_core_pattern().map_err(|e| {
                    format!(
                        "gcore cannot read thread stacks (glibc guard regions: {}), and no \
                         kernel core can replace its core: {e}",
                        show_ranges(&on_stacks)
                    )
                })?;
                quit_and_collect(
                    &mut child,
                    &cwd,
                    dir,
                    CoreKind::KernelQuitForStacks,
                    notes,
                    spawned_by,
                )?
            }
        }
    };
    progress.cored = true;
    progress.core = Some(core.kind);
    // Dropping `child` kills the scenario, if it still runs.
    Ok((recording, core))
}

/// parked_threads.py, gcore (or the kernel when gcore cannot read thread stacks).
pub fn gcore_of_parked_threads(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
) -> Result<(Recording, Core), String> {
    core_of_parked(
        python,
        dir,
        &Run::new("parked_threads.py"),
        Take::GcoreOrKernel,
        progress,
    )
}

fn show_ranges(ranges: &[(u64, u64)]) -> String {
    ranges
        .iter()
        .map(|(start, end)| format!("{start:#x}-{end:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// SIGQUIT (whose default action dumps core; Python installs no handler for
/// it), then the kernel's core from the scenario's working directory.
fn quit_and_collect(
    child: &mut ChildGuard,
    cwd: &Path,
    dir: &TestDir,
    kind: CoreKind,
    notes: Vec<String>,
    spawned_by: u64,
) -> Result<Core, String> {
    let sender = send_signal("QUIT", child.pid(), dir.path())?;
    wait_for_core_dump(child, SIGQUIT)?;
    Ok(Core {
        path: only_file_in(cwd)?,
        kind,
        quit_sender: Some(sender),
        notes,
        spawned_by,
    })
}

/// Runs `run`, a scenario that records itself and then crashes by `signal`,
/// with core dumps enabled, in an empty working directory where the kernel
/// writes the core. `None` if cores cannot be enabled.
pub fn core_of_crash(
    python: &Interpreter,
    dir: &TestDir,
    run: &Run,
    signal: i32,
    progress: &mut Progress,
) -> Result<Option<(Recording, Core)>, String> {
    use std::os::unix::process::ExitStatusExt;
    let cwd = dir.join("cwd");
    std::fs::create_dir(&cwd).map_err(|e| format!("creating {}: {e}", cwd.display()))?;
    let record = record_path(dir);
    let mut command = with_unlimited_core_size(&python_run_command(python, run, &record), true);
    command.current_dir(&cwd);
    let spawned_by = current_tid()?;
    let finished = run_with_timeout(
        &mut command,
        RECORD_TIMEOUT + CORE_DUMP_TIMEOUT,
        dir.path(),
        "scenario",
    )?;
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
    let path = only_file_in(&cwd)?;
    progress.cored = true;
    progress.core = Some(CoreKind::KernelCrash);
    Ok(Some((
        recording,
        Core {
            path,
            kind: CoreKind::KernelCrash,
            quit_sender: None,
            notes: Vec::new(),
            spawned_by,
        },
    )))
}

/// gdb starts the scenario, stops it on its crash and writes the core; the
/// core's size (~25 MB) takes well under a second to write.
const GDB_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `run`, a scenario that records itself and then crashes by `signal`,
/// under gdb (`gdb -batch -ex run -ex 'generate-core-file CORE'`), as
/// PyStack's tests make their crash cores: gdb stops the process on the
/// signal ("Program received signal SIGSEGV"), before the kernel could
/// dump it, and writes the core itself.
pub fn core_of_crash_under_gdb(
    python: &Interpreter,
    dir: &TestDir,
    run: &Run,
    signal: &str,
    progress: &mut Progress,
) -> Result<(Recording, Core), String> {
    let record = record_path(dir);
    let core_path = dir.join("core.gdb");
    let inner = python_run_command(python, run, &record);
    let mut command = Command::new("gdb");
    command
        .args([
            "-batch",
            "-nx",
            "-ex",
            "set startup-with-shell off",
            "-ex",
            "run",
        ])
        .arg("-ex")
        .arg(format!("generate-core-file {}", core_path.display()))
        .arg("--args")
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let spawned_by = current_tid()?;
    let finished = run_with_timeout(&mut command, GDB_TIMEOUT, dir.path(), "gdb")?;
    progress.recorded = record.exists();
    let stdout = finished.stdout_text();
    // "Program received signal SIGSEGV, Segmentation fault." (one thread),
    // "Thread 3 "python3" received signal SIGSEGV, ..." (several).
    let stopped = format!("received signal {signal},");
    let size = std::fs::metadata(&core_path).map_or(0, |m| m.len());
    if !stdout.contains(&stopped) || size == 0 {
        return Err(format!(
            "gdb: expected the scenario to stop with {signal} and a core in {} (size {size}); \
             {}; stdout:\n{}\nstderr:\n{}",
            core_path.display(),
            finished.status,
            last_lines(&stdout, 15),
            last_lines(&finished.stderr, 15)
        ));
    }
    let recording = Recording::load(&record)?;
    let notes = super::process::unreadable_sections(&finished.stderr)
        .into_iter()
        .filter(|(start, _)| *start != super::process::VSYSCALL_PAGE)
        .map(|(start, end)| format!("gdb could not read {start:#x}-{end:#x}"))
        .collect();
    progress.cored = true;
    progress.core = Some(CoreKind::GdbCrash);
    Ok((
        recording,
        Core {
            path: core_path,
            kind: CoreKind::GdbCrash,
            quit_sender: None,
            notes,
            spawned_by,
        },
    ))
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

/// A thread that recorded its own stack (record_parked_threads_and_caller)
/// parks right after writing the recording, on the same line: the core must
/// wait until it sleeps in the kernel. Spinning threads (a recorded line
/// range) never do.
fn wait_until_blocked(pid: u32, recording: &Recording) -> Result<(), String> {
    let spinning: Vec<u64> = recording
        .threads
        .iter()
        .filter(|t| t.frames.first().is_some_and(|f| f.line_range.is_some()))
        .map(|t| t.tid)
        .collect();
    let mut states = Vec::new();
    wait_for("every parked thread to sleep", BLOCK_TIMEOUT, || {
        states = thread_states(pid)?;
        Ok(states
            .iter()
            .all(|(tid, state)| *state == 'S' || spinning.contains(tid))
            .then_some(()))
    })
    .map_err(|e| format!("{e}: thread states {states:?}"))
}

/// pycore's exit code and parsed `--json` output.
pub struct Analysis {
    pub exit_code: i32,
    pub report: Report,
}

/// [`analyze`] of a core of `python`'s process, with the arguments every
/// analysis of its cores may pass ([`Interpreter::pycore_args`]: its
/// detached debug symbols).
pub fn analyze_for(python: &Interpreter, core: &Path, dir: &Path) -> Result<Analysis, String> {
    let args = python.pycore_args();
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    analyze_with(core, dir, &args)
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

/// The stacks (compare_with), the crash and process facts (facts::check),
/// and the exit-code contract: 1 exactly when there are warnings.
pub fn judge(recording: &Recording, analysis: &Analysis, expect: &Expect) -> Verdict {
    let mut verdict = compare_with(recording, &analysis.report, expect.require);
    verdict
        .problems
        .extend(facts::check(recording, &analysis.report.doc, expect));
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

/// Turns a check's result into a row outcome; removes the test directory only
/// when the check passed.
pub fn outcome(result: Result<Verdict, String>, dir: TestDir) -> Outcome {
    let kept = format!("core and logs kept in {}", dir.path().display());
    match result {
        Ok(verdict) if verdict.passed() => {
            dir.remove();
            Outcome::Pass {
                notes: verdict.notes,
                caveat: verdict.caveat,
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
