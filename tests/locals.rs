//! `--locals` on real cores: tests/scenarios/locals.py parks threads in
//! functions holding every kind of value pycore prints (None, bools, ints of
//! any size, floats, str of every PEP 393 kind, bytes, tuples, lists, dicts,
//! sets, frozensets, nested and cyclic containers, instances printed by
//! `object.__repr__`, other objects), as arguments, locals, cells and free
//! variables, with variables not bound yet. Each function records, from
//! inside the process, `[name, kind, type, repr]` of its bound variables in
//! the code object's order; pycore's frame of that function must list exactly
//! those (a repr longer than 200 characters cut by pycore's documented rule)
//! on every interpreter row, and the stacks must match as in `cores` (with
//! 3.11+ positions), on gcore's cores and on the kernel's.

use crate::support;

use std::collections::BTreeMap;
use std::ffi::OsString;

use serde_json::Value;
use support::facts::Expect;
use support::interpreters::Interpreter;
use support::matrix::{check_wanted_rows, Outcome, Progress};
use support::process::{own_uid, TestDir};
use support::scenario::{analyze_with, core_of_parked, judge, outcome, record_path, Run, Take};
use support::stacks::Verdict;

/// pycore's documented cut: a repr longer than 200 characters keeps 197, then `...`.
fn cut(repr: &str) -> String {
    if repr.chars().count() <= 200 {
        return repr.to_string();
    }
    let kept: String = repr.chars().take(197).collect();
    format!("{kept}...")
}

#[test]
fn locals_match_what_the_process_recorded() {
    matrix(
        "--locals on cores of tests/scenarios/locals.py",
        Take::GcoreOrKernel,
    );
}

#[test]
fn locals_match_on_kernel_cores() {
    matrix(
        "--locals on kernel cores of tests/scenarios/locals.py",
        Take::Quit,
    );
}

fn matrix(title: &str, take: Take) {
    check_wanted_rows(title, |python, progress| check_row(python, progress, take));
}

fn check_row(python: &Interpreter, progress: &mut Progress, take: Take) -> Outcome {
    let how = if take == Take::Quit {
        "kernel"
    } else {
        "gcore"
    };
    let dir = TestDir::new(&format!(
        "locals-{how}-{}-{}",
        python.label(),
        python.linkage
    ));
    let result = core_and_judge(python, &dir, progress, take);
    outcome(result, dir)
}

fn core_and_judge(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
    take: Take,
) -> Result<Verdict, String> {
    let run = Run::new("locals.py");
    let (recording, core) = core_of_parked(python, dir, &run, take, progress)?;
    let mut locals_path = record_path(dir).into_os_string();
    locals_path.push(".locals.json");
    let expected: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(
        &std::fs::read_to_string(&locals_path).map_err(|e| format!("{locals_path:?}: {e}"))?,
    )
    .map_err(|e| format!("locals recording: {e}"))?;
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
    let mut args: Vec<OsString> = python.pycore_args();
    args.push("--locals".into());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let analysis = analyze_with(&core.path, dir.path(), &args)?;
    let mut verdict = judge(&recording, &analysis, &expect);
    verdict
        .problems
        .extend(locals_problems(&expected, &analysis.report.doc));
    verdict.notes.extend(core.notes);
    Ok(verdict)
}

/// Each recorded function's frame must hold exactly the recorded variables.
pub(crate) fn locals_problems(
    expected: &BTreeMap<String, Vec<Vec<String>>>,
    report: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let frames: Vec<&Value> = report["threads"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .flat_map(|t| t["frames"].as_array().unwrap_or(&empty))
        .collect();
    for (function, want) in expected {
        let Some(frame) = frames.iter().find(|f| f["function"] == function.as_str()) else {
            problems.push(format!("no frame of {function}"));
            continue;
        };
        let got: Vec<Vec<String>> = frame["locals"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|local| {
                ["name", "kind", "type", "repr"]
                    .iter()
                    .map(|key| local[key].as_str().unwrap_or("<null>").to_string())
                    .collect()
            })
            .collect();
        let want: Vec<Vec<String>> = want
            .iter()
            .map(|local| {
                let mut local = local.clone();
                if let Some(repr) = local.get_mut(3) {
                    *repr = cut(repr);
                }
                local
            })
            .collect();
        if got != want {
            let mut details = Vec::new();
            for index in 0..got.len().max(want.len()) {
                let (g, w) = (got.get(index), want.get(index));
                if g != w {
                    details.push(format!("  #{index}: got {g:?}, recorded {w:?}"));
                }
            }
            problems.push(format!(
                "{function}: locals differ from the recording:\n{}",
                details.join("\n")
            ));
        }
    }
    problems
}
