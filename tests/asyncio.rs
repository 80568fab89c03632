//! asyncio tasks on real cores: tests/scenarios/asyncio_tasks.py runs one event loop with named
//! tasks parked every way the issue names (a 3-coroutine chain in `asyncio.sleep`, a task
//! awaiting another, a gather of two, a task blocked on a held `asyncio.Lock`, one on an
//! `Event`, one with a non-ASCII name, `asyncio.wait_for` of a task, a `TaskGroup` of two on
//! 3.11+), records from inside the process what each task is (`asyncio.all_tasks()`, the
//! `cr_await` chains, `cr_frame.f_lineno`, `_fut_waiter`), then parks the loop's thread inside
//! its main task; a second thread runs a second loop (a task awaiting another) and parks the
//! same way. pycore's `asyncio` entries must say the same, one per loop, each naming its loop's
//! thread, and the thread stacks must match as in `cores`, on gcore's cores and on the
//! kernel's, on every interpreter row from 3.8 (3.14+ through the per-thread task lists), with
//! `_asyncio`'s C tasks and with Lib/asyncio's pure-Python ones.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::facts::Expect;
use support::interpreters::Interpreter;
use support::matrix::{check_wanted_rows, Outcome, Progress};
use support::process::{own_uid, TestDir};
use support::scenario::{analyze_with, core_of_parked, judge, outcome, record_path, Run, Take};
use support::stacks::Verdict;

/// The versions whose tasks pycore reads (their C task is in the layouts); a newer row must
/// carry the `asyncio-unsupported` warning.
const TASKS_FROM: (u32, u32) = (3, 8);
const TASKS_UNTIL: (u32, u32) = (3, 16);

const NATIVE_TASKS: Run = Run::new("asyncio_tasks.py");
const PYTHON_TASKS: Run = Run {
    scenario: "asyncio_tasks.py",
    args: &["--python-tasks"],
    flags: &[],
};

#[test]
fn tasks_match_what_the_process_recorded() {
    matrix(
        "asyncio tasks on cores of tests/scenarios/asyncio_tasks.py",
        Take::GcoreOrKernel,
        NATIVE_TASKS,
    );
}

#[test]
fn tasks_match_on_kernel_cores() {
    matrix(
        "asyncio tasks on kernel cores of tests/scenarios/asyncio_tasks.py",
        Take::Quit,
        NATIVE_TASKS,
    );
}

/// The same loop with Lib/asyncio/tasks.py's pure-Python tasks (`_PyTask`).
#[test]
fn pure_python_tasks_match_what_the_process_recorded() {
    matrix(
        "pure-Python asyncio tasks on cores of tests/scenarios/asyncio_tasks.py --python-tasks",
        Take::GcoreOrKernel,
        PYTHON_TASKS,
    );
}

fn matrix(title: &str, take: Take, run: Run<'static>) {
    check_wanted_rows(title, |python, progress| {
        if python.version.major_minor() < TASKS_FROM {
            return Outcome::Skipped {
                reason: "the scenario needs asyncio's task names (3.8+)".into(),
            };
        }
        check_row(python, progress, take, run)
    });
}

fn check_row(python: &Interpreter, progress: &mut Progress, take: Take, run: Run) -> Outcome {
    let how = if take == Take::Quit {
        "kernel"
    } else {
        "gcore"
    };
    let kind = if run.args.is_empty() { "c" } else { "py" };
    let dir = TestDir::new(&format!(
        "asyncio-{kind}-{how}-{}-{}",
        python.label(),
        python.linkage
    ));
    let result = core_and_judge(python, &dir, progress, take, run);
    outcome(result, dir)
}

fn core_and_judge(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
    take: Take,
    run: Run,
) -> Result<Verdict, String> {
    let (recording, core) = core_of_parked(python, dir, &run, take, progress)?;
    let mut tasks_path = record_path(dir).into_os_string();
    tasks_path.push(".asyncio.json");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(&tasks_path).map_err(|e| format!("{tasks_path:?}: {e}"))?,
    )
    .map_err(|e| format!("asyncio recording: {e}"))?;
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
    let args = python.pycore_args();
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let analysis = analyze_with(&core.path, dir.path(), &args)?;
    let supported = (TASKS_FROM..TASKS_UNTIL).contains(&python.version.major_minor());
    let doc = &analysis.report.doc;
    let mut verdict = if supported {
        judge(&recording, &analysis, &expect)
    } else {
        // The unsupported warning makes the report partial (exit code 1): the thread stacks
        // are `cores`' job; here only the warning counts.
        Verdict {
            problems: Vec::new(),
            notes: Vec::new(),
            caveat: Some("tasks not read on this version: warned".into()),
        }
    };
    if supported {
        verdict.problems.extend(task_problems(&expected, doc));
    } else if !has_warning(doc, "asyncio-unsupported") {
        verdict.problems.push(
            "no asyncio-unsupported warning on a version whose tasks pycore does not read".into(),
        );
    }
    verdict.notes.extend(core.notes);
    Ok(verdict)
}

fn has_warning(doc: &Value, kind: &str) -> bool {
    doc["warnings"]
        .as_array()
        .is_some_and(|w| w.iter().any(|w| w["kind"] == kind))
}

/// pycore's loops must be the recorded ones (by thread), each with exactly its recorded tasks.
fn task_problems(expected: &Value, doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    for warning in doc["warnings"].as_array().unwrap_or(&empty) {
        if warning["kind"]
            .as_str()
            .unwrap_or("")
            .starts_with("asyncio")
        {
            problems.push(format!("warning: {warning}"));
        }
    }
    let loops = doc["asyncio"].as_array().unwrap_or(&empty);
    let recorded = expected["loops"].as_array().unwrap_or(&empty);
    if loops.len() != recorded.len() {
        problems.push(format!(
            "{} event loops, recorded {}",
            loops.len(),
            recorded.len()
        ));
    }
    for want in recorded {
        let Some(got) = loops.iter().find(|l| l["thread"] == want["thread"]) else {
            problems.push(format!("no event loop in thread {}", want["thread"]));
            continue;
        };
        problems.extend(loop_problems(want, got));
    }
    problems
}

/// One loop's tasks against the recording.
fn loop_problems(want: &Value, got: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let thread = &want["thread"];
    let mut tasks: BTreeMap<String, &Value> = BTreeMap::new();
    for task in got["tasks"].as_array().unwrap_or(&empty) {
        tasks.insert(task["name"].as_str().unwrap_or("<null>").to_string(), task);
    }
    for want in want["tasks"].as_array().unwrap_or(&empty) {
        let name = want["name"].as_str().unwrap_or("<null>");
        let Some(task) = tasks.remove(name) else {
            problems.push(format!("loop of thread {thread}: no task {name:?}"));
            continue;
        };
        for key in ["state", "waiting_on", "stack"] {
            if task[key] != want[key] {
                problems.push(format!(
                    "task {name:?}: {key} is {}, recorded {}",
                    task[key], want[key]
                ));
            }
        }
        let sorted = |v: &Value| {
            let mut names: Vec<String> = v
                .as_array()
                .unwrap_or(&Vec::new())
                .iter()
                .map(|n| n.as_str().unwrap_or("<null>").to_string())
                .collect();
            names.sort();
            names
        };
        if sorted(&task["awaiting"]) != sorted(&want["awaiting"]) {
            problems.push(format!(
                "task {name:?}: awaiting {}, recorded {}",
                task["awaiting"], want["awaiting"]
            ));
        }
    }
    for name in tasks.keys() {
        problems.push(format!(
            "loop of thread {thread}: a task the process did not have: {name:?}"
        ));
    }
    problems
}
