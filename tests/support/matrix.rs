//! Running one check per interpreter, at most two at a time, and printing the
//! results as a matrix (one row per interpreter) that CI logs show.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::interpreters::{Found, Interpreter};

/// The machine has two cores; each check runs a Python process, gcore and pycore.
pub const PARALLEL: usize = 2;

pub enum Outcome {
    Pass { notes: Vec<String> },
    Fail { summary: String, details: String },
    Skipped { reason: String },
}

impl Outcome {
    pub fn fail(summary: impl Into<String>, details: impl Into<String>) -> Outcome {
        Outcome::Fail {
            summary: summary.into(),
            details: details.into(),
        }
    }

    fn short(&self) -> String {
        match self {
            Outcome::Pass { notes } if notes.is_empty() => "pass".to_string(),
            Outcome::Pass { notes } => format!("pass ({} notes)", notes.len()),
            Outcome::Fail { summary, .. } => format!("FAIL {summary}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        }
    }
}

pub struct Row {
    pub version: String,
    pub path: String,
    pub shape: String,
    pub elapsed: Option<Duration>,
    pub outcome: Outcome,
}

/// Runs `check` on every found interpreter that is not skipped, in parallel,
/// and returns one row per interpreter in the order found.
pub fn run_matrix(
    title: &str,
    found: &[Found],
    check: impl Fn(&Interpreter) -> Outcome + Sync,
) -> Vec<Row> {
    run_parallel(found, |found| {
        let row = row_for(found, &check);
        println!(
            "[{title}] {} {}: {}{}",
            row.version,
            row.path,
            row.outcome.short(),
            show_elapsed(row.elapsed, " in ")
        );
        row
    })
}

fn row_for(found: &Found, check: &(impl Fn(&Interpreter) -> Outcome + Sync)) -> Row {
    let interpreter = match found {
        Ok(interpreter) => interpreter,
        Err((path, error)) => {
            return Row {
                version: "?".to_string(),
                path: path.display().to_string(),
                shape: "?".to_string(),
                elapsed: None,
                outcome: Outcome::fail("interpreter does not run", error.clone()),
            }
        }
    };
    let mut row = Row {
        version: interpreter.version.to_string(),
        path: interpreter.path.display().to_string(),
        shape: interpreter.shape.to_string(),
        elapsed: None,
        outcome: Outcome::Pass { notes: Vec::new() },
    };
    row.outcome = match interpreter.skip_reason() {
        Some(reason) => Outcome::Skipped { reason },
        None => {
            let start = Instant::now();
            let outcome = check(interpreter);
            row.elapsed = Some(start.elapsed());
            outcome
        }
    };
    row
}

/// `f` on every item, at most PARALLEL at a time; results in item order.
fn run_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..PARALLEL.min(items.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let result = f(item);
                results.lock().unwrap()[index] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item was run"))
        .collect()
}

/// The matrix, then the details of every failure and the notes of every pass.
pub fn print_matrix(title: &str, rows: &[Row], total: Duration) {
    let version_width = rows
        .iter()
        .map(|r| r.version.len())
        .chain([7])
        .max()
        .unwrap_or(0);
    let path_width = rows
        .iter()
        .map(|r| r.path.len())
        .chain([4])
        .max()
        .unwrap_or(0);
    println!("\n==== {title} ({:.1} s) ====", total.as_secs_f64());
    println!(
        "{:version_width$}  {:path_width$}  {:6}  {:>6}  result",
        "version", "path", "shape", "time"
    );
    for row in rows {
        println!(
            "{:version_width$}  {:path_width$}  {:6}  {:>6}  {}",
            row.version,
            row.path,
            row.shape,
            show_elapsed(row.elapsed, ""),
            row.outcome.short()
        );
    }
    for row in rows {
        match &row.outcome {
            Outcome::Fail { summary, details } => println!(
                "\n---- {} {}: FAIL {summary}\n{details}",
                row.version, row.path
            ),
            Outcome::Pass { notes } if !notes.is_empty() => {
                println!("\n---- {} {}: notes", row.version, row.path);
                for note in notes {
                    println!("  {note}");
                }
            }
            _ => {}
        }
    }
    // Deliberately not "N passed, N failed": CI reads such lines as a test
    // runner's own summary.
    let count = |wanted: fn(&Outcome) -> bool| rows.iter().filter(|r| wanted(&r.outcome)).count();
    println!(
        "\n==== {title}: pass {}, FAIL {}, skipped {} ====",
        count(|o| matches!(o, Outcome::Pass { .. })),
        count(|o| matches!(o, Outcome::Fail { .. })),
        count(|o| matches!(o, Outcome::Skipped { .. }))
    );
}

/// Fails the test if there is no row at all, or any row failed.
pub fn assert_all_passed(title: &str, rows: &[Row]) {
    assert!(!rows.is_empty(), "{title}: no Python interpreter to test");
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Fail { summary, .. } => Some(format!("{} ({}): {summary}", r.version, r.path)),
            _ => None,
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{title}: failed rows (details above):\n  {}",
        failed.join("\n  ")
    );
}

/// Fails the test if every row was skipped: then it tested nothing.
pub fn assert_some_passed(title: &str, rows: &[Row]) {
    let passed = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Pass { .. }))
        .count();
    assert!(
        passed > 0,
        "{title}: every interpreter was skipped, nothing was tested"
    );
}

fn show_elapsed(elapsed: Option<Duration>, prefix: &str) -> String {
    elapsed.map_or(String::new(), |e| {
        format!("{prefix}{:.1}s", e.as_secs_f64())
    })
}
