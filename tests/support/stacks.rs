//! What a scenario recorded about itself, what pycore reported from the core,
//! and the comparison of the two.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    /// Recorded only on Python 3.11+ (code.co_qualname); pycore may or may not give it.
    pub qualname: Option<String>,
    pub file: String,
    pub line: Option<u64>,
    /// Recorded only for a frame busy in a loop whose line changes while the
    /// process runs (the spinner of gil_spinner.py): `line` is then null and
    /// any line of `[first, last]` is right.
    pub line_range: Option<(u64, u64)>,
    /// 3.11+ parked frames: `[end_line, column, end_column]` of the instruction, as
    /// `code.co_positions()` gives them (each may be null); checked only where recorded.
    pub positions: Option<[Option<u64>; 3]>,
}

/// The exception a thread is handling (`sys.exc_info()[1]` in an `except` block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// The type's name (`type(e).__name__`: "ValueError").
    pub type_name: String,
    /// `str(e)`; pycore may give null when it cannot read it.
    pub message: Option<String>,
}

/// One thread as the scenario recorded it from inside (tests/scenarios/recording.py).
#[derive(Clone, Debug)]
pub struct RecordedThread {
    pub tid: u64,
    /// `None` when the process never imported threading: nothing names it.
    pub name: Option<String>,
    pub frames: Vec<Frame>,
    /// The exception it was handling; `None` when the recording does not say
    /// (older recordings), `Some(None)` when it handled none.
    pub handling_exception: Option<Option<Exception>>,
}

/// What a scenario about to crash recorded of the crash.
#[derive(Clone, Copy, Debug)]
pub struct RecordedCrash {
    /// The thread that crashes.
    pub tid: u64,
    /// The exact fault address, when the scenario knows it.
    pub fault_address: Option<u64>,
    /// `[start, end)` the fault address lies in, when the scenario knows no
    /// more (the trapping instruction of a libc function).
    pub fault_address_range: Option<(u64, u64)>,
}

#[derive(Clone, Debug)]
pub struct Recording {
    pub python_version: String,
    /// "release", "debug" or "free-threaded", as the build said of itself
    /// (absent from recordings older than this field, such as testdata/example's).
    pub shape: Option<String>,
    /// Who holds the GIL in the core; absent from older recordings.
    pub gil: Option<Gil>,
    pub threads: Vec<RecordedThread>,
    /// The process's own facts (os.getpid() …); absent from older recordings.
    pub pid: Option<u64>,
    pub ppid: Option<u64>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    /// The arguments of /proc/self/cmdline.
    pub cmdline: Option<Vec<String>>,
    /// Whether the threading module was imported by the time of the recording.
    pub threading_imported: Option<bool>,
    /// The thread inside a garbage collection when the core is taken:
    /// `Some(None)` for none, `None` when the recording does not say.
    pub gc_collector: Option<Option<u64>>,
    /// Set by a scenario that crashes right after recording.
    pub crash: Option<RecordedCrash>,
}

/// The GIL as the scenario left it for the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gil {
    /// False on a free-threaded build running without a GIL: then no thread
    /// holds one, and pycore may say it cannot tell (null).
    pub enabled: bool,
    /// The TID of the thread holding it, if any.
    pub holder: Option<u64>,
}

/// One thread of pycore's `--json` output.
#[derive(Clone, Debug)]
pub struct ReportedThread {
    pub tid: u64,
    pub name: Option<String>,
    pub python: bool,
    /// `None` for null (or a report without the field).
    pub holds_gil: Option<bool>,
    pub frames: Vec<Frame>,
    /// threads[].handling_exception: `None` when the report has no such
    /// field, `Some(None)` for null.
    pub handling_exception: Option<Option<Exception>>,
    /// threads[].gc_collecting: `None` when the report has no such field,
    /// `Some(None)` for null (cannot be told).
    pub gc_collecting: Option<Option<bool>>,
}

/// pycore's `--json` output.
#[derive(Clone, Debug)]
pub struct Report {
    pub python_version: Option<String>,
    /// python.shape: "release", "debug" or "free-threaded".
    pub shape: Option<String>,
    pub threads: Vec<ReportedThread>,
    pub warnings: Vec<String>,
    /// The whole document, for the checks of support::facts.
    pub doc: Value,
}

/// Fields of pycore's report that a test needs: the comparison fails when
/// pycore's JSON lacks them (rather than skipping the check, as it does for
/// every test that is not about them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Require {
    /// threads[].handling_exception.
    pub handling_exception: bool,
    /// threads[].gc_collecting, and python.gc_collecting.
    pub gc_collecting: bool,
    /// The binary holding the garbage collector has no symbols for its
    /// functions (stripped, and no detached debug symbols at hand): pycore
    /// cannot tell which thread's stack is inside them, so null on every
    /// thread is right there; python.gc_collecting must still say true.
    pub gc_without_collector_symbols: bool,
}

impl Recording {
    pub fn load(path: &Path) -> Result<Recording, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Recording::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Recording, String> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("recording is not JSON: {e}"))?;
        let threads = array(&doc, "threads", "recording")?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let at = format!("recording threads[{i}]");
                Ok(RecordedThread {
                    tid: u64_field(t, "tid", &at)?,
                    name: opt_str_field(t, "name", &at)?,
                    frames: frames(t, &at)?,
                    handling_exception: match t.get("handling_exception") {
                        None => None,
                        Some(_) => Some(exception_field(t, "handling_exception", &at)?),
                    },
                })
            })
            .collect::<Result<_, String>>()?;
        let optional_u64 = |key: &str| -> Result<Option<u64>, String> {
            match doc.get(key) {
                None => Ok(None),
                Some(_) => opt_u64_field(&doc, key, "recording"),
            }
        };
        let cmdline = match doc.get("cmdline") {
            None => None,
            Some(_) => Some(
                array(&doc, "cmdline", "recording")?
                    .iter()
                    .map(|a| {
                        a.as_str()
                            .map(str::to_owned)
                            .ok_or("recording cmdline holds a non-string".to_string())
                    })
                    .collect::<Result<_, String>>()?,
            ),
        };
        let crash = match doc.get("crash") {
            None => None,
            Some(crash) => {
                let at = "recording crash";
                let range = match crash.get("fault_address_range") {
                    None => None,
                    Some(range) => match range.as_array().map(Vec::as_slice) {
                        Some([start, end]) => Some((
                            start
                                .as_u64()
                                .ok_or(format!("{at}: bad fault_address_range"))?,
                            end.as_u64()
                                .ok_or(format!("{at}: bad fault_address_range"))?,
                        )),
                        _ => return Err(format!("{at}: bad fault_address_range")),
                    },
                };
                Some(RecordedCrash {
                    tid: u64_field(crash, "tid", at)?,
                    fault_address: match crash.get("fault_address") {
                        None => None,
                        Some(_) => opt_u64_field(crash, "fault_address", at)?,
                    },
                    fault_address_range: range,
                })
            }
        };
        let gil = match doc.get("gil_holder") {
            None => None,
            Some(_) => Some(Gil {
                enabled: field(&doc, "gil_enabled", "recording")?
                    .as_bool()
                    .ok_or("recording gil_enabled is not a boolean")?,
                holder: opt_u64_field(&doc, "gil_holder", "recording")?,
            }),
        };
        Ok(Recording {
            python_version: str_field(&doc, "python_version", "recording")?,
            shape: match doc.get("shape") {
                Some(_) => opt_str_field(&doc, "shape", "recording")?,
                None => None,
            },
            gil,
            threads,
            pid: optional_u64("pid")?,
            ppid: optional_u64("ppid")?,
            uid: optional_u64("uid")?,
            gid: optional_u64("gid")?,
            cmdline,
            threading_imported: match doc.get("threading_imported") {
                None => None,
                Some(v) => Some(
                    v.as_bool()
                        .ok_or("recording threading_imported is not a boolean")?,
                ),
            },
            gc_collector: match doc.get("gc_collector") {
                None => None,
                Some(_) => Some(opt_u64_field(&doc, "gc_collector", "recording")?),
            },
            crash,
        })
    }

    /// The recorded thread `tid`.
    pub fn thread(&self, tid: u64) -> Option<&RecordedThread> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    pub fn tids(&self) -> std::collections::BTreeSet<u64> {
        self.threads.iter().map(|t| t.tid).collect()
    }
}

impl Report {
    pub fn parse(stdout: &[u8]) -> Result<Report, String> {
        let text = std::str::from_utf8(stdout)
            .map_err(|e| format!("pycore's stdout is not UTF-8: {e}"))?;
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| format!("pycore's stdout is not one JSON document: {e}"))?;
        let schema = u64_field(&doc, "schema_version", "report")?;
        if schema != 2 {
            return Err(format!(
                "report schema_version is {schema}, these tests know 2"
            ));
        }
        if doc.get("core").is_some() {
            return Report::from_typed(doc);
        }
        // The harness's own tests hand-write partial reports: read those field by field.
        let (python_version, shape) = match doc.get("python").filter(|p| !p.is_null()) {
            Some(python) => (
                opt_str_field(python, "version", "report python")?,
                match python.get("shape") {
                    Some(_) => opt_str_field(python, "shape", "report python")?,
                    None => None,
                },
            ),
            None => (None, None),
        };
        let threads = array(&doc, "threads", "report")?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let at = format!("report threads[{i}]");
                Ok(ReportedThread {
                    tid: u64_field(t, "tid", &at)?,
                    name: opt_str_field(t, "name", &at)?,
                    python: field(t, "python", &at)?
                        .as_bool()
                        .ok_or(format!("{at}.python is not a boolean"))?,
                    holds_gil: match t.get("holds_gil") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(
                            v.as_bool()
                                .ok_or(format!("{at}.holds_gil is neither a boolean nor null"))?,
                        ),
                    },
                    frames: frames(t, &at)?,
                    handling_exception: match t.get("handling_exception") {
                        None => None,
                        Some(_) => Some(exception_field(t, "handling_exception", &at)?),
                    },
                    gc_collecting: match t.get("gc_collecting") {
                        None => None,
                        Some(Value::Null) => Some(None),
                        Some(v) => {
                            Some(Some(v.as_bool().ok_or(format!(
                                "{at}.gc_collecting is neither a boolean nor null"
                            ))?))
                        }
                    },
                })
            })
            .collect::<Result<_, String>>()?;
        let warnings = match doc.get("warnings") {
            Some(w) => w
                .as_array()
                .ok_or("report warnings is not an array")?
                .iter()
                .map(warning_message)
                .collect::<Result<_, String>>()?,
            None => Vec::new(),
        };
        Ok(Report {
            python_version,
            shape,
            threads,
            warnings,
            doc,
        })
    }
}

impl Report {
    /// A whole report of pycore's, read through the library's own serde types (so any field
    /// of the documented schema that is missing or mistyped fails the test).
    fn from_typed(doc: Value) -> Result<Report, String> {
        let typed: pycore::Report = serde_json::from_value(doc.clone())
            .map_err(|e| format!("pycore's report does not fit its own schema: {e}"))?;
        let threads = typed
            .threads
            .iter()
            .map(|t| {
                Ok(ReportedThread {
                    tid: t
                        .tid
                        .and_then(|tid| u64::try_from(tid).ok())
                        .ok_or("a thread of the report has no tid")?,
                    name: t.name.clone(),
                    python: t.python,
                    holds_gil: t.holds_gil,
                    frames: t
                        .frames
                        .iter()
                        .map(|f| Frame {
                            function: f.function.to_string(),
                            qualname: f.qualname.as_deref().map(str::to_string),
                            file: f.file.to_string(),
                            line: f.line.map(u64::from),
                            line_range: None,
                            positions: Some([
                                f.end_line.map(u64::from),
                                f.column.map(u64::from),
                                f.end_column.map(u64::from),
                            ]),
                        })
                        .collect(),
                    handling_exception: Some(t.handling_exception.as_ref().map(|e| Exception {
                        type_name: e.type_name.clone(),
                        message: Some(e.message.clone()),
                    })),
                    gc_collecting: Some(t.gc_collecting),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Report {
            python_version: typed.python.as_ref().map(|p| p.version.clone()),
            shape: typed.python.as_ref().map(|p| p.shape.to_string()),
            threads,
            warnings: typed.warnings.iter().map(|w| w.message.clone()).collect(),
            doc,
        })
    }
}

/// The outcome of comparing a recording with a report: `problems` fail the
/// test, `notes` are printed only.
#[derive(Debug, Default)]
pub struct Verdict {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// What could not be checked and why, for the matrix's result column.
    pub caveat: Option<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// [`compare_with`] requiring no optional field.
pub fn compare(expected: &Recording, got: &Report) -> Verdict {
    compare_with(expected, got, Require::default())
}

/// Every recorded thread must be reported once, with the recorded name (when
/// pycore gives one; null when the process never imported threading),
/// exactly the recorded frames and (where the recording says) the right GIL
/// holder, handled exception and garbage-collection state; pycore must report
/// no other thread, and the build shape the process recorded (where both say
/// one). The handled exception and the collection state are checked wherever
/// pycore reports them, and their absence fails only what `require` names.
pub fn compare_with(expected: &Recording, got: &Report, require: Require) -> Verdict {
    let mut verdict = Verdict::default();
    compare_version(
        &expected.python_version,
        got.python_version.as_deref(),
        &mut verdict,
    );
    compare_shape(
        expected.shape.as_deref(),
        got.shape.as_deref(),
        &mut verdict,
    );
    check_each_thread_listed_once(expected, got, &mut verdict);
    let no_exception_field = got.threads.iter().all(|t| t.handling_exception.is_none());
    if require.handling_exception && no_exception_field {
        verdict.problems.push(
            "pycore's JSON has no threads[].handling_exception field (this test expects the \
             exception each thread is handling, or null)"
                .to_string(),
        );
    }
    for thread in &expected.threads {
        match got.threads.iter().find(|t| t.tid == thread.tid) {
            Some(reported) => {
                compare_thread(thread, reported, &mut verdict);
                if let Some(gil) = expected.gil {
                    compare_gil(thread, gil, reported.holds_gil, &mut verdict);
                }
                if let Some(exception) = &thread.handling_exception {
                    let require = require.handling_exception && !no_exception_field;
                    compare_exception(thread, exception, reported, require, &mut verdict);
                }
            }
            None => verdict.problems.push(format!(
                "{} is missing from pycore's output; expected frames:\n{}",
                who(thread),
                list_frames(&thread.frames)
            )),
        }
    }
    if let Some(collector) = expected.gc_collector {
        compare_gc(expected, collector, got, require, &mut verdict);
    }
    verdict
}

/// handling_exception: exactly the recorded exception (type name and str())
/// or null. Without the field on this thread of pycore's report, a problem
/// only if `required`.
fn compare_exception(
    expected: &RecordedThread,
    exception: &Option<Exception>,
    got: &ReportedThread,
    required: bool,
    verdict: &mut Verdict,
) {
    let who = who(expected);
    match &got.handling_exception {
        Some(reported) if reported != exception => verdict.problems.push(format!(
            "{who}: handling_exception: expected {}, got {}",
            show_exception(exception),
            show_exception(reported)
        )),
        Some(_) => {}
        None if required => verdict.problems.push(format!(
            "{who}: no handling_exception field on this thread (expected {})",
            show_exception(exception)
        )),
        None => {}
    }
}

fn show_exception(exception: &Option<Exception>) -> String {
    match exception {
        None => "null".to_string(),
        Some(e) => format!(
            "{{\"type\": {:?}, \"message\": {}}}",
            e.type_name,
            e.message
                .as_ref()
                .map_or("null".to_string(), |m| format!("{m:?}"))
        ),
    }
}

/// gc_collecting. With a collection running in thread C (`collector`),
/// pycore tells which thread runs it (it finds return addresses into the
/// collector's functions on the thread stacks): C must say true and every
/// other thread false. Only where the collector's functions have no symbols
/// (`require.gc_without_collector_symbols`) may every thread say null
/// instead. python.gc_collecting must be true (where the report has the
/// field; required with `require.gc_collecting`). With no collection
/// running, no thread and not python.gc_collecting may say true; null
/// (cannot be told) is accepted there. Without the per-thread field in
/// pycore's report, a problem only if required.
fn compare_gc(
    expected: &Recording,
    collector: Option<u64>,
    got: &Report,
    require: Require,
    verdict: &mut Verdict,
) {
    let recorded = expected.tids();
    let reported: Vec<(&ReportedThread, Option<Option<bool>>)> = got
        .threads
        .iter()
        .filter(|t| recorded.contains(&t.tid))
        .map(|t| (t, t.gc_collecting))
        .collect();
    let interpreter_wide = got.doc.get("python").and_then(|p| p.get("gc_collecting"));
    match (interpreter_wide, collector) {
        (None, _) if require.gc_collecting => verdict
            .problems
            .push("pycore's JSON has no python.gc_collecting field".to_string()),
        (Some(value), Some(collector)) if *value != Value::Bool(true) => {
            verdict.problems.push(format!(
                "python.gc_collecting: expected true (thread {collector} is inside \
                 gc.collect()), got {value}"
            ))
        }
        (Some(Value::Bool(true)), None) => verdict
            .problems
            .push("python.gc_collecting: true, but no garbage collection was running".to_string()),
        _ => {}
    }
    if reported.iter().all(|(_, value)| value.is_none()) {
        if require.gc_collecting {
            verdict.problems.push(format!(
                "pycore's JSON has no threads[].gc_collecting field (expected true on {})",
                collector.map_or("no thread".to_string(), |c| format!("thread {c}"))
            ));
        }
        return;
    }
    let show = |value: Option<Option<bool>>| match value {
        None => "(no field)".to_string(),
        Some(None) => "null".to_string(),
        Some(Some(b)) => b.to_string(),
    };
    let values = reported
        .iter()
        .map(|(t, value)| format!("{} {}", t.tid, show(*value)))
        .collect::<Vec<_>>()
        .join(", ");
    match collector {
        None => {
            for (thread, value) in &reported {
                if *value == Some(Some(true)) {
                    verdict.problems.push(format!(
                        "thread {}: gc_collecting: true, but no garbage collection was running",
                        thread.tid
                    ));
                }
            }
        }
        Some(_)
            if require.gc_without_collector_symbols
                && reported.iter().all(|(_, value)| *value == Some(None)) => {}
        Some(collector) if reported.iter().all(|(_, value)| *value == Some(None)) => {
            verdict.problems.push(format!(
                "gc_collecting is null on every thread (pycore could not tell which thread runs \
                 the collection, although the collector's functions have symbols); expected true \
                 on thread {collector}, inside gc.collect(), false on the others"
            ))
        }
        Some(collector) => {
            let wrong: Vec<u64> = reported
                .iter()
                .filter(|(t, value)| *value != Some(Some(t.tid == collector)))
                .map(|(t, _)| t.tid)
                .collect();
            if !wrong.is_empty() {
                verdict.problems.push(format!(
                    "gc_collecting: expected true on thread {collector} (inside gc.collect()) \
                     and false on every other thread; wrong on {wrong:?}; all threads: {values}"
                ));
            }
        }
    }
}

/// "3.8" for a recorded "3.8.18" is accepted with a note: before 3.11 the
/// patch level is not in any structure pycore reads (no Py_Version).
fn compare_version(expected: &str, got: Option<&str>, verdict: &mut Verdict) {
    match got {
        Some(got) if got == expected => {}
        Some(got) if expected.starts_with(&format!("{got}.")) => verdict.notes.push(format!(
            "python version reported as {got} (recorded {expected})"
        )),
        Some(got) => verdict
            .problems
            .push(format!("python version: expected {expected}, got {got}")),
        None => verdict
            .notes
            .push("pycore reported no python version".to_string()),
    }
}

fn compare_shape(expected: Option<&str>, got: Option<&str>, verdict: &mut Verdict) {
    match (expected, got) {
        (Some(expected), Some(got)) if expected != got => verdict
            .problems
            .push(format!("build shape: expected {expected}, got {got}")),
        (Some(_), None) => verdict
            .notes
            .push("pycore reported no build shape".to_string()),
        _ => {}
    }
}

/// With a GIL, pycore must say which thread holds it (true for the holder,
/// false for every other thread). A free-threaded build running without one
/// has no holder: false or null (cannot be told) are both right there.
fn compare_gil(expected: &RecordedThread, gil: Gil, got: Option<bool>, verdict: &mut Verdict) {
    let who = who(expected);
    let holds = gil.holder == Some(expected.tid);
    match (gil.enabled, got) {
        (true, Some(got)) if got != holds => verdict
            .problems
            .push(format!("{who}: holds_gil: expected {holds}, got {got}")),
        (true, None) => verdict.problems.push(format!(
            "{who}: holds_gil: expected {holds}, got null on a build with a GIL"
        )),
        (false, Some(true)) => verdict.problems.push(format!(
            "{who}: holds_gil: true, but the process ran without a GIL (free-threaded)"
        )),
        _ => {}
    }
}

/// "thread 12 \"worker\"", or "thread 12 (no name)".
fn who(thread: &RecordedThread) -> String {
    match &thread.name {
        Some(name) => format!("thread {} {name:?}", thread.tid),
        None => format!("thread {} (no name)", thread.tid),
    }
}

fn check_each_thread_listed_once(expected: &Recording, got: &Report, verdict: &mut Verdict) {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for thread in &got.threads {
        *counts.entry(thread.tid).or_default() += 1;
    }
    for (tid, count) in counts.iter().filter(|(_, count)| **count > 1) {
        verdict
            .problems
            .push(format!("thread {tid} is listed {count} times"));
    }
    let recorded = expected.tids();
    for thread in got.threads.iter().filter(|t| !recorded.contains(&t.tid)) {
        verdict.problems.push(format!(
            "thread {} {} is not a thread of the process; pycore's frames:\n{}",
            thread.tid,
            thread
                .name
                .as_ref()
                .map_or("(no name)".to_string(), |n| format!("{n:?}")),
            list_frames(&thread.frames)
        ));
    }
}

fn compare_thread(expected: &RecordedThread, got: &ReportedThread, verdict: &mut Verdict) {
    let who = who(expected);
    if !got.python {
        verdict
            .problems
            .push(format!("{who}: reported as python: false"));
    }
    match (&expected.name, &got.name) {
        (Some(_), None) => verdict.notes.push(format!("{who}: pycore gave no name")),
        (Some(expected), Some(name)) if name != expected => verdict
            .problems
            .push(format!("{who}: name: expected {expected:?}, got {name:?}")),
        (None, Some(name)) => verdict.problems.push(format!(
            "{who}: name: expected null (the process never imported threading), got {name:?}"
        )),
        _ => {}
    }
    let same_length = expected.frames.len() == got.frames.len();
    if !same_length
        || expected
            .frames
            .iter()
            .zip(&got.frames)
            .any(|(e, g)| !frame_matches(e, g))
    {
        verdict.problems.push(format!(
            "{who}: frames differ (innermost first; '!' marks a difference; {} expected, {} got)\n{}",
            expected.frames.len(),
            got.frames.len(),
            frame_diff(&expected.frames, &got.frames)
        ));
    }
}

/// A qualname is checked only where the recording has one (Python 3.11+):
/// older interpreters have no co_qualname, so pycore's value can't be checked.
/// A recorded line range (a spinning frame) accepts any line in it.
pub fn frame_matches(expected: &Frame, got: &Frame) -> bool {
    let line_matches = match expected.line_range {
        Some((first, last)) => got.line.is_some_and(|line| (first..=last).contains(&line)),
        None => expected.line == got.line,
    };
    expected.function == got.function
        && expected.file == got.file
        && line_matches
        && (expected.qualname.is_none() || expected.qualname == got.qualname)
        && (expected.positions.is_none() || expected.positions == got.positions)
}

/// Frame by frame, innermost first: matching frames once, differing ones as an
/// expected/got pair marked with '!'.
pub fn frame_diff(expected: &[Frame], got: &[Frame]) -> String {
    let mut out = String::new();
    for index in 0..expected.len().max(got.len()) {
        match (expected.get(index), got.get(index)) {
            (Some(e), Some(g)) if frame_matches(e, g) => {
                let _ = writeln!(out, "     #{index:<3} {}", show_frame(Some(e)));
            }
            (e, g) => {
                let _ = writeln!(out, "   ! #{index:<3} expected {}", show_frame(e));
                let _ = writeln!(out, "          got      {}", show_frame(g));
            }
        }
    }
    out
}

fn list_frames(frames: &[Frame]) -> String {
    if frames.is_empty() {
        return "     (no frames)\n".to_string();
    }
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| format!("     #{i:<3} {}\n", show_frame(Some(f))))
        .collect()
}

fn show_frame(frame: Option<&Frame>) -> String {
    let Some(frame) = frame else {
        return "(no frame)".to_string();
    };
    let qualname = match &frame.qualname {
        Some(q) if *q != frame.function => format!(" [{q}]"),
        _ => String::new(),
    };
    let line = match (frame.line_range, frame.line) {
        (Some((first, last)), _) => format!("{first}-{last} (spinning)"),
        (None, Some(line)) => line.to_string(),
        (None, None) => "?".to_string(),
    };
    let positions = match frame.positions {
        Some([end_line, column, end_column]) => {
            let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
            format!(
                " (columns {}..{}, to line {})",
                show(column),
                show(end_column),
                show(end_line)
            )
        }
        None => String::new(),
    };
    format!(
        "{}{qualname}  {}:{line}{positions}",
        frame.function, frame.file
    )
}

// JSON field access with messages that say where the document is wrong.

fn field<'a>(value: &'a Value, key: &str, at: &str) -> Result<&'a Value, String> {
    value
        .get(key)
        .ok_or_else(|| format!("{at}: no field {key:?}"))
}

fn array<'a>(value: &'a Value, key: &str, at: &str) -> Result<&'a Vec<Value>, String> {
    field(value, key, at)?
        .as_array()
        .ok_or_else(|| format!("{at}.{key} is not an array"))
}

fn u64_field(value: &Value, key: &str, at: &str) -> Result<u64, String> {
    field(value, key, at)?
        .as_u64()
        .ok_or_else(|| format!("{at}.{key} is not a non-negative integer"))
}

fn str_field(value: &Value, key: &str, at: &str) -> Result<String, String> {
    field(value, key, at)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{at}.{key} is not a string"))
}

fn opt_str_field(value: &Value, key: &str, at: &str) -> Result<Option<String>, String> {
    match field(value, key, at)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(format!("{at}.{key} is neither a string nor null")),
    }
}

fn opt_u64_field(value: &Value, key: &str, at: &str) -> Result<Option<u64>, String> {
    match field(value, key, at)? {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{at}.{key} is neither a non-negative integer nor null")),
    }
}

fn exception_field(value: &Value, key: &str, at: &str) -> Result<Option<Exception>, String> {
    match field(value, key, at)? {
        Value::Null => Ok(None),
        exception @ Value::Object(_) => {
            let at = format!("{at}.{key}");
            Ok(Some(Exception {
                type_name: str_field(exception, "type", &at)?,
                message: opt_str_field(exception, "message", &at)?,
            }))
        }
        _ => Err(format!("{at}.{key} is neither an object nor null")),
    }
}

fn frames(thread: &Value, at: &str) -> Result<Vec<Frame>, String> {
    array(thread, "frames", at)?
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let at = format!("{at}.frames[{i}]");
            Ok(Frame {
                function: str_field(f, "function", &at)?,
                qualname: match f.get("qualname") {
                    Some(_) => opt_str_field(f, "qualname", &at)?,
                    None => None,
                },
                file: str_field(f, "file", &at)?,
                line: opt_u64_field(f, "line", &at)?,
                line_range: match f.get("line_range") {
                    None | Some(Value::Null) => None,
                    Some(range) => match range.as_array().map(Vec::as_slice) {
                        Some([first, last]) => first.as_u64().zip(last.as_u64()),
                        _ => None,
                    }
                    .map(Some)
                    .ok_or(format!("{at}.line_range is not [first, last]"))?,
                },
                positions: match f.get("positions") {
                    None | Some(Value::Null) => None,
                    Some(positions) => match positions.as_array().map(Vec::as_slice) {
                        Some([_, end_line, column, end_column]) => {
                            Some([end_line.as_u64(), column.as_u64(), end_column.as_u64()])
                        }
                        _ => {
                            return Err(format!(
                                "{at}.positions is not [line, end_line, column, end_column]"
                            ))
                        }
                    },
                },
            })
        })
        .collect()
}

/// The message of one warning of the report, `{"kind": "...", "message": "..."}` (both strings).
pub fn warning_message(warning: &Value) -> Result<String, String> {
    match (warning["kind"].as_str(), warning["message"].as_str()) {
        (Some(kind), Some(message)) if !kind.is_empty() => Ok(message.to_owned()),
        _ => Err(format!(
            "a warning is not {{\"kind\", \"message\"}}: {warning}"
        )),
    }
}
