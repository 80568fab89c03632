//! Subinterpreters on real cores: tests/scenarios/subinterpreters.py runs
//! code in subinterpreters from the main thread (nested two deep on the same
//! thread), from worker threads (one level; and a second nested chain), and
//! starts a thread inside a subinterpreter. Every park point records its own
//! interpreter id, TID, name and frames from inside; the scenario joins them
//! per OS thread. pycore must report each OS thread once, with all its
//! thread states joined to it (no thread "not in the core"), its frames
//! innermost first over all its interpreters with each frame's interpreter
//! id, its thread states in order (interpreter id and frame count), the
//! name `threading` gave it where it was started, and the process's
//! interpreters (python.interpreters, main first).
//!
//! Runs on every wanted row from 3.8 (where `_xxsubinterpreters` appeared;
//! `_interpreters` from 3.13); older rows are skipped with that reason.
//! 3.11+ orders one thread's states by where their interpreter loops sit on
//! its C stack; 3.8 to 3.10 by interpreter id (see src/report.rs).

use crate::support;

use serde_json::Value;
use support::facts::Expect;
use support::interpreters::Interpreter;
use support::matrix::{check_wanted_rows, Outcome, Progress};
use support::process::{own_uid, TestDir};
use support::scenario::{analyze_for, core_of_parked, judge, outcome, record_path, Run, Take};
use support::stacks::Verdict;

#[test]
fn subinterpreter_thread_states_join_their_threads() {
    let title = "cores of tests/scenarios/subinterpreters.py";
    check_wanted_rows(title, check_row);
}

fn check_row(python: &Interpreter, progress: &mut Progress) -> Outcome {
    if python.version.major_minor() < (3, 8) {
        return Outcome::Skipped {
            reason: "no subinterpreter module before 3.8 (_xxsubinterpreters)".to_string(),
        };
    }
    let dir = TestDir::new(&format!(
        "subinterpreters-{}-{}",
        python.label(),
        python.linkage
    ));
    let result = core_and_judge(python, &dir, progress);
    outcome(result, dir)
}

fn core_and_judge(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
) -> Result<Verdict, String> {
    let run = Run::new("subinterpreters.py");
    let (recording, core) = core_of_parked(python, dir, &run, Take::GcoreOrKernel, progress)?;
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(record_path(dir)).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("recording: {e}"))?;
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
    let analysis = analyze_for(python, &core.path, dir.path())?;
    let mut verdict = judge(&recording, &analysis, &expect);
    verdict
        .problems
        .extend(interpreter_problems(&recorded, &analysis.report.doc));
    verdict.notes.extend(core.notes);
    Ok(verdict)
}

/// What the frame comparison does not cover: each frame's interpreter, the
/// thread states of each thread, and the process's interpreters.
fn interpreter_problems(recorded: &Value, report: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let reported = report["threads"].as_array().unwrap_or(&empty);
    if reported.iter().any(|t| t["tid"].is_null()) {
        problems.push("a thread state matches no thread of the core (tid null)".to_string());
    }
    for thread in recorded["threads"].as_array().unwrap_or(&empty) {
        let tid = &thread["tid"];
        let Some(got) = reported.iter().find(|t| &t["tid"] == tid) else {
            problems.push(format!("thread {tid} is missing"));
            continue;
        };
        let want_frames: Vec<&Value> = thread["frames"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|f| &f["interpreter"])
            .collect();
        let got_frames: Vec<&Value> = got["frames"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|f| &f["interpreter"])
            .collect();
        if want_frames != got_frames {
            problems.push(format!(
                "thread {tid}: frames' interpreters {got_frames:?}, recorded {want_frames:?}"
            ));
        }
        let want_states = &thread["thread_states"];
        let got_states: Vec<Value> = got["thread_states"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|s| serde_json::json!([s["interpreter"], s["frame_count"]]))
            .collect();
        if want_states.as_array() != Some(&got_states) {
            problems.push(format!(
                "thread {tid}: thread states (interpreter, frames) {got_states:?}, recorded {want_states}"
            ));
        }
        let innermost = want_states[0][0].clone();
        if got["interpreter"] != innermost {
            problems.push(format!(
                "thread {tid}: interpreter {}, recorded {innermost}",
                got["interpreter"]
            ));
        }
        let main_flags: Vec<bool> = got["thread_states"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|s| s["main_interpreter"] == Value::Bool(true))
            .collect();
        let want_main: Vec<bool> = want_states
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|s| s[0] == 0)
            .collect();
        if main_flags != want_main {
            problems.push(format!(
                "thread {tid}: main_interpreter flags {main_flags:?}, expected {want_main:?}"
            ));
        }
    }
    let got_interpreters: Vec<&Value> = report["python"]["interpreters"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|i| &i["id"])
        .collect();
    let want_interpreters: Vec<&Value> = recorded["interpreters"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .collect();
    if got_interpreters != want_interpreters {
        problems.push(format!(
            "python.interpreters ids {got_interpreters:?}, recorded {want_interpreters:?}"
        ));
    }
    problems
}
