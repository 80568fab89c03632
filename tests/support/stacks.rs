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
}

/// One thread as the scenario recorded it from inside (tests/scenarios/recording.py).
#[derive(Clone, Debug)]
pub struct RecordedThread {
    pub tid: u64,
    pub name: String,
    pub frames: Vec<Frame>,
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
}

/// pycore's `--json` output.
#[derive(Clone, Debug)]
pub struct Report {
    pub python_version: Option<String>,
    /// python.shape: "release", "debug" or "free-threaded".
    pub shape: Option<String>,
    pub threads: Vec<ReportedThread>,
    pub warnings: Vec<String>,
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
                    name: str_field(t, "name", &at)?,
                    frames: frames(t, &at)?,
                })
            })
            .collect::<Result<_, String>>()?;
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
        })
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
        if schema != 1 {
            return Err(format!(
                "report schema_version is {schema}, these tests know 1"
            ));
        }
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
                })
            })
            .collect::<Result<_, String>>()?;
        let warnings = match doc.get("warnings") {
            Some(w) => w
                .as_array()
                .ok_or("report warnings is not an array")?
                .iter()
                .map(|w| {
                    w.as_str()
                        .map(str::to_owned)
                        .ok_or("report warnings holds a non-string".to_string())
                })
                .collect::<Result<_, String>>()?,
            None => Vec::new(),
        };
        Ok(Report {
            python_version,
            shape,
            threads,
            warnings,
        })
    }
}

/// The outcome of comparing a recording with a report: `problems` fail the
/// test, `notes` are printed only.
#[derive(Debug, Default)]
pub struct Verdict {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Every recorded thread must be reported once, with the recorded name (when
/// pycore gives one), exactly the recorded frames and (where the recording
/// says) the right GIL holder; pycore must report no other thread, and the
/// build shape the process recorded (where both say one).
pub fn compare(expected: &Recording, got: &Report) -> Verdict {
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
    for thread in &expected.threads {
        match got.threads.iter().find(|t| t.tid == thread.tid) {
            Some(reported) => {
                compare_thread(thread, reported, &mut verdict);
                if let Some(gil) = expected.gil {
                    compare_gil(thread, gil, reported.holds_gil, &mut verdict);
                }
            }
            None => verdict.problems.push(format!(
                "thread {} {:?} is missing from pycore's output; expected frames:\n{}",
                thread.tid,
                thread.name,
                list_frames(&thread.frames)
            )),
        }
    }
    verdict
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
    let who = format!("thread {} {:?}", expected.tid, expected.name);
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
    let who = format!("thread {} {:?}", expected.tid, expected.name);
    if !got.python {
        verdict
            .problems
            .push(format!("{who}: reported as python: false"));
    }
    match &got.name {
        None => verdict.notes.push(format!("{who}: pycore gave no name")),
        Some(name) if *name != expected.name => verdict.problems.push(format!(
            "{who}: name: expected {:?}, got {name:?}",
            expected.name
        )),
        Some(_) => {}
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
fn frame_matches(expected: &Frame, got: &Frame) -> bool {
    expected.function == got.function
        && expected.file == got.file
        && expected.line == got.line
        && (expected.qualname.is_none() || expected.qualname == got.qualname)
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
    let line = frame.line.map_or("?".to_string(), |l| l.to_string());
    format!("{}{qualname}  {}:{line}", frame.function, frame.file)
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
            })
        })
        .collect()
}
