//! Running one check per interpreter row, at most two at a time, and printing
//! the results as a matrix (one row per interpreter) that CI logs show.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::interpreters::{require_all, Candidate, Interpreter, FETCH_HINT, REQUIRE_ALL_ENV};

/// How many checks run at once: one per core (each runs a Python process, gcore and pycore).
fn parallel() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

pub enum Outcome {
    /// `caveat`: what could not be checked on this row and why, shown in the
    /// matrix's result column (the notes are listed below the matrix).
    Pass {
        notes: Vec<String>,
        caveat: Option<String>,
    },
    Fail {
        summary: String,
        details: String,
    },
    Skipped {
        reason: String,
    },
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
            Outcome::Pass { notes, caveat } => {
                let mut text = "pass".to_string();
                if let Some(caveat) = caveat {
                    text.push_str(&format!(" ({caveat})"));
                }
                if !notes.is_empty() {
                    text.push_str(&format!(" ({} notes)", notes.len()));
                }
                text
            }
            Outcome::Fail { summary, .. } => format!("FAIL {summary}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        }
    }
}

/// How far a check got before its outcome: the scenario process started and
/// recorded itself, then a core of it was written (by gcore or the kernel).
/// What pycore made of the core is the outcome, once both are done.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub recorded: bool,
    pub cored: bool,
    /// Who wrote the core (once known).
    pub core: Option<CoreKind>,
}

/// Who wrote a core, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreKind {
    /// gdb's gcore, from the live process.
    Gcore,
    /// The kernel, when the scenario crashed.
    KernelCrash,
    /// The kernel, when the harness sent SIGQUIT.
    KernelQuit,
    /// The kernel, when the harness sent SIGQUIT because gcore wrote thread
    /// stacks as zeros: gdb cannot read a thread stack that holds glibc 2.41+
    /// guard regions (MADV_GUARD_INSTALL); the kernel dumps those as zero
    /// pages and the stack itself whole.
    KernelQuitForStacks,
    /// gdb's `generate-core-file` of a scenario run under gdb, once gdb
    /// stopped it on its crash ("Program received signal SIGSEGV"): the
    /// way PyStack's tests make crash cores.
    GdbCrash,
}

impl CoreKind {
    pub fn describe(self) -> &'static str {
        match self {
            CoreKind::Gcore => "gcore",
            CoreKind::KernelCrash => "kernel core (crash)",
            CoreKind::KernelQuit => "kernel core (kill -QUIT)",
            CoreKind::KernelQuitForStacks => {
                "kernel core (gcore cannot read thread stacks: glibc guard regions)"
            }
            CoreKind::GdbCrash => "gdb core (crash under gdb, generate-core-file)",
        }
    }
}

pub struct Row {
    /// "3.13t", "2.7": version and build shape.
    pub name: String,
    pub build: String,
    pub linkage: String,
    /// The full version ("3.13.5"), or "-" when the row has no interpreter.
    pub version: String,
    pub path: String,
    pub elapsed: Option<Duration>,
    /// `None` when the check did not run.
    pub progress: Option<Progress>,
    pub outcome: Outcome,
}

impl Row {
    /// "ok", "FAIL" or "-" (not reached) for the record, core and pycore steps.
    fn steps(&self) -> [&'static str; 3] {
        let Some(progress) = self.progress else {
            return ["-", "-", "-"];
        };
        let failed = matches!(self.outcome, Outcome::Fail { .. });
        let step = |done: bool, reached: bool| match (done, reached, failed) {
            (true, _, _) => "ok",
            (false, true, true) => "FAIL",
            _ => "-",
        };
        let pycore = match (&self.outcome, progress.recorded && progress.cored) {
            (Outcome::Pass { .. }, _) => "ok",
            (Outcome::Fail { .. }, true) => "FAIL",
            _ => "-",
        };
        [
            step(progress.recorded, true),
            step(progress.cored, progress.recorded),
            pycore,
        ]
    }
}

/// Runs `check` on `candidates` ([`run_matrix`]), prints the matrix, and fails unless every
/// row that ran passed and at least one did.
pub fn check_rows(
    title: &str,
    candidates: &[Candidate],
    check: impl Fn(&Interpreter, &mut Progress) -> Outcome + Sync,
) {
    let start = std::time::Instant::now();
    let rows = run_matrix(title, candidates, check);
    print_matrix(title, &rows, start.elapsed());
    assert_all_passed(title, &rows);
    assert_some_passed(title, &rows);
}

/// [`check_rows`] on the rows every matrix test wants (`interpreters::WANTED`) found here.
pub fn check_wanted_rows(
    title: &str,
    check: impl Fn(&Interpreter, &mut Progress) -> Outcome + Sync,
) {
    let found = super::interpreters::discover();
    let candidates = super::interpreters::rows_for(&found, super::interpreters::WANTED, false);
    check_rows(title, &candidates, check);
}

/// Runs `check` on every row that has a supported interpreter, in parallel,
/// and returns the rows in the order given.
pub fn run_matrix(
    title: &str,
    rows: &[Candidate],
    check: impl Fn(&Interpreter, &mut Progress) -> Outcome + Sync,
) -> Vec<Row> {
    run_parallel(rows, |candidate| {
        let row = row_for(candidate, &check);
        println!(
            "[{title}] {} {} {}: {}{}",
            row.name,
            row.linkage,
            row.path,
            row.outcome.short(),
            show_elapsed(row.elapsed, " in ")
        );
        row
    })
}

fn row_for(
    candidate: &Candidate,
    check: &(impl Fn(&Interpreter, &mut Progress) -> Outcome + Sync),
) -> Row {
    let (interpreter, wanted) = match candidate {
        Candidate::Found {
            interpreter,
            wanted,
        } => (interpreter, *wanted),
        Candidate::Broken { path, error } => {
            return Row {
                name: "?".to_string(),
                build: "?".to_string(),
                linkage: "?".to_string(),
                version: "?".to_string(),
                path: path.display().to_string(),
                elapsed: None,
                progress: None,
                outcome: Outcome::fail("interpreter does not run", error.clone()),
            }
        }
        Candidate::Missing(wanted) => {
            let why = wanted.why_missing();
            return Row {
                name: wanted.label(),
                build: wanted.build.to_string(),
                linkage: wanted.linkage.to_string(),
                version: "-".to_string(),
                path: "-".to_string(),
                elapsed: None,
                progress: None,
                outcome: if require_all() {
                    Outcome::fail(
                        format!("missing: {why}"),
                        format!(
                            "{REQUIRE_ALL_ENV}=1 requires every wanted row (support::interpreters::WANTED); \
                             {FETCH_HINT} before the tests, as CI's .ci/run does"
                        ),
                    )
                } else if why.contains(FETCH_HINT) {
                    Outcome::Skipped { reason: why }
                } else {
                    Outcome::Skipped {
                        reason: format!("{why}; {FETCH_HINT} lists what is missing"),
                    }
                },
            };
        }
    };
    let mut row = Row {
        // "(extra)": found on the machine beyond the wanted rows.
        name: if wanted {
            interpreter.label()
        } else {
            format!("{} (extra)", interpreter.label())
        },
        build: interpreter.build.to_string(),
        linkage: interpreter.linkage.to_string(),
        version: interpreter.version.to_string(),
        path: interpreter.path.display().to_string(),
        elapsed: None,
        progress: None,
        outcome: Outcome::Pass {
            notes: Vec::new(),
            caveat: None,
        },
    };
    row.outcome = match interpreter.skip_reason() {
        Some(reason) => Outcome::Skipped { reason },
        None => {
            let start = Instant::now();
            let mut progress = Progress::default();
            let outcome = check(interpreter, &mut progress);
            row.elapsed = Some(start.elapsed());
            row.progress = Some(progress);
            outcome
        }
    };
    row
}

/// `f` on every item, at most [`parallel`] at a time; results in item order.
fn run_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..parallel().min(items.len()) {
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
    let width = |header: &str, field: fn(&Row) -> &str| {
        rows.iter()
            .map(|r| field(r).chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let core_by = |r: &Row| {
        r.progress
            .and_then(|p| p.core)
            .map_or("-", CoreKind::describe)
    };
    let core_by_width = rows
        .iter()
        .map(|r| core_by(r).len())
        .chain(["core by".len()])
        .max()
        .unwrap_or(0);
    let name_width = width("row", |r| &r.name);
    let build_width = width("build", |r| &r.build);
    let version_width = width("version", |r| &r.version);
    let path_width = width("path", |r| &r.path);
    println!(
        "\n==== {title} ({:.1} s; missing rows {}) ====",
        total.as_secs_f64(),
        if require_all() {
            format!("fail: {REQUIRE_ALL_ENV}=1")
        } else {
            format!("are skipped: {REQUIRE_ALL_ENV} is not 1")
        }
    );
    println!(
        "{:name_width$}  {:build_width$}  {:7}  {:version_width$}  {:path_width$}  {:>6}  {:6}  {:4}  {:6}  {:core_by_width$}  result",
        "row", "build", "linkage", "version", "path", "time", "record", "core", "pycore", "core by"
    );
    for row in rows {
        let [record, core, pycore] = row.steps();
        println!(
            "{:name_width$}  {:build_width$}  {:7}  {:version_width$}  {:path_width$}  {:>6}  {:6}  {:4}  {:6}  {:core_by_width$}  {}",
            row.name,
            row.build,
            row.linkage,
            row.version,
            row.path,
            show_elapsed(row.elapsed, ""),
            record,
            core,
            pycore,
            core_by(row),
            row.outcome.short()
        );
    }
    for row in rows {
        let who = format!("{} {} {}", row.name, row.linkage, row.path);
        match &row.outcome {
            Outcome::Fail { summary, details } => {
                println!("\n---- {who}: FAIL {summary}\n{details}")
            }
            Outcome::Pass { notes, .. } if !notes.is_empty() => {
                println!("\n---- {who}: notes");
                for note in notes {
                    println!("  {note}");
                }
            }
            _ => {}
        }
    }
    // One line per skipped row, naming the matrix: .ci/run gathers them at the end of CI's log.
    for row in rows {
        if let Outcome::Skipped { reason } = &row.outcome {
            println!(
                "---- SKIPPED in {title}: {} {} {}: {reason}",
                row.name, row.linkage, row.path
            );
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
            Outcome::Fail { summary, .. } => {
                Some(format!("{} {} ({}): {summary}", r.name, r.linkage, r.path))
            }
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
