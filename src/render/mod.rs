//! Output formats. Each takes the finished [`Report`] and writes it; none reads the core.

pub mod greenlets;
pub mod json;
pub mod markdown;
pub mod summary;
pub mod table;
mod tasks;
pub mod text;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::report::{
    file_name, signal_name, CoreKind, FrameReport, LocalKind, Report, ThreadReport, SIGSTOP,
};

/// `report` with its strings from the core safe to print on a terminal: control characters (a
/// hostile core could carry escape sequences that retitle the window or write the clipboard)
/// become visible `\u{1b}` escapes. JSON needs no such care: it escapes them. A report already
/// made printable ([`make_printable`]) is used as it is; another is copied and cleaned.
pub fn printable(report: &Report) -> Cow<'_, Report> {
    if report.printable {
        return Cow::Borrowed(report);
    }
    let mut report = report.clone();
    make_printable(&mut report);
    Cow::Owned(report)
}

/// Clean `report`'s strings from the core in place (see [`printable`]): renderers then use it
/// without a copy (a deep recursion's report is large).
pub fn make_printable(report: &mut Report) {
    if report.printable {
        return;
    }
    report.printable = true;
    let mut shared = SharedCleaner::default();
    let core = &mut report.core;
    for text in [
        &mut core.command,
        &mut core.invoked_as,
        &mut core.executable,
    ]
    .into_iter()
    .flatten()
    {
        clean(text);
    }
    report
        .warnings
        .iter_mut()
        .for_each(|w| clean(&mut w.message));
    report.notes.iter_mut().for_each(clean);
    if let Some(error) = &mut report.error {
        clean(&mut error.message);
    }
    if let Some(python) = &mut report.python {
        for binary in [&mut python.executable, &mut python.libpython]
            .into_iter()
            .flatten()
        {
            clean(&mut binary.path);
        }
        if let Some(greenlet) = &mut python.greenlet {
            greenlet.version.iter_mut().for_each(clean);
        }
    }
    if let Some(location) = &mut report.crash.location {
        location.function.iter_mut().for_each(clean);
        location.module.iter_mut().for_each(clean);
    }
    for thread in &mut report.threads {
        thread.name.iter_mut().for_each(clean);
        thread
            .warnings
            .iter_mut()
            .for_each(|w| clean(&mut w.message));
        if let Some(exception) = &mut thread.handling_exception {
            clean(&mut exception.type_name);
            clean(&mut exception.message);
        }
        thread
            .frames
            .iter_mut()
            .for_each(|f| clean_frame(f, &mut shared));
    }
    for greenlet in &mut report.greenlets {
        greenlet
            .frames
            .iter_mut()
            .for_each(|f| clean_frame(f, &mut shared));
    }
    for task in report.asyncio.iter_mut().flat_map(|l| l.tasks.iter_mut()) {
        clean(&mut task.name);
        task.awaiting.iter_mut().for_each(clean);
        task.waiting_on.iter_mut().for_each(clean);
        task.state.iter_mut().for_each(clean);
        for frame in &mut task.stack {
            shared.clean_place(&mut frame.function, &mut frame.file, &mut frame.qualname);
        }
    }
}

/// A frame's strings from the core, cleaned as [`printable`] says.
fn clean_frame(frame: &mut FrameReport, shared: &mut SharedCleaner) {
    shared.clean_place(&mut frame.function, &mut frame.file, &mut frame.qualname);
    frame
        .source
        .iter_mut()
        .for_each(|s| shared.clean(Field::Source, s));
    if let Some(native) = &mut frame.native {
        native.module.iter_mut().for_each(clean);
    }
    for local in frame.locals.iter_mut().flatten() {
        shared.clean(Field::LocalName, &mut local.name);
        clean(&mut local.repr);
        local
            .type_name
            .iter_mut()
            .for_each(|t| shared.clean(Field::TypeName, t));
    }
}

/// A shared string met before, and its cleaned form if cleaning changed it.
type Cleaned = (Arc<str>, Option<Arc<str>>);

/// Cleans each string that frames share once: the other frames holding it get the first
/// one's result (a 100,000-frame recursion holds one function name, not 100,000).
#[derive(Default)]
struct SharedCleaner {
    /// By the address of a string met before: the string (kept alive here, so that no other
    /// string takes its address during the pass) and its cleaned form, if it had to change.
    seen: HashMap<usize, Cleaned, crate::bytes::AddressHash>,
    /// For each kind of string, the address of the last one met if it is clean: a recursion's
    /// frames hold the same name, file and line as the frame before, answered here before the
    /// map. Only strings `seen` keeps alive.
    clean_last: [usize; FIELDS],
}

/// The kinds of shared string a frame holds, each with its own [`SharedCleaner::clean_last`].
#[derive(Clone, Copy)]
enum Field {
    Function,
    File,
    Qualname,
    Source,
    LocalName,
    TypeName,
}

const FIELDS: usize = Field::TypeName as usize + 1;

impl SharedCleaner {
    /// A frame's function, file and qualified name (a thread's frames and a task's alike).
    fn clean_place(
        &mut self,
        function: &mut Arc<str>,
        file: &mut Arc<str>,
        qualname: &mut Option<Arc<str>>,
    ) {
        self.clean(Field::Function, function);
        self.clean(Field::File, file);
        if let Some(qualname) = qualname {
            self.clean(Field::Qualname, qualname);
        }
    }

    fn clean(&mut self, field: Field, text: &mut Arc<str>) {
        let key = text.as_ptr() as usize;
        // cannot panic: `Field` has `FIELDS` variants.
        let last = &mut self.clean_last[field as usize];
        if *last == key {
            return;
        }
        if let Some((_, changed)) = self.seen.get(&key) {
            match changed {
                Some(clean) => text.clone_from(clean),
                None => *last = key,
            }
            return;
        }
        let original = Arc::clone(text);
        clean_shared(text);
        let changed = !Arc::ptr_eq(&original, text);
        if !changed {
            *last = key;
        }
        self.seen
            .insert(key, (original, changed.then(|| Arc::clone(text))));
    }
}

/// `text` with its control characters made visible (`\\u{1b}`).
pub fn clean(text: &mut String) {
    if let Some(clean) = cleaned(text) {
        *text = clean;
    }
}

/// [`clean`] for a string shared between frames (left shared when it is clean).
pub fn clean_shared(text: &mut std::sync::Arc<str>) {
    if let Some(clean) = cleaned(text) {
        *text = clean.into();
    }
}

/// `text` with its control characters made visible, if it has any.
fn cleaned(text: &str) -> Option<String> {
    // ASCII text (nearly all of it) is checked byte by byte; C1 controls need a char walk.
    let has_control = if text.is_ascii() {
        text.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        text.chars().any(char::is_control)
    };
    has_control.then(|| {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    })
}

/// "In interpreter 1", "In the main interpreter (0)" for a frame's interpreter id.
pub fn interpreter_title(report: &Report, id: Option<i64>) -> String {
    let main = report
        .python
        .iter()
        .flat_map(|p| &p.interpreters)
        .any(|i| i.main && i.id == id);
    match (id, main) {
        (Some(id), true) => format!("In the main interpreter ({id})"),
        (Some(id), false) => format!("In interpreter {id}"),
        (None, true) => "In the main interpreter".to_string(),
        (None, false) => "In a subinterpreter".to_string(),
    }
}

/// Threads with the crashed one first, then in the core's order.
pub fn crashed_first(report: &Report) -> impl Iterator<Item = &ThreadReport> {
    let crashed = report.threads.iter().filter(|t| t.crashed);
    crashed.chain(report.threads.iter().filter(|t| !t.crashed))
}

/// One line saying why the core exists.
/// "Packed by pycore X from ORIGINAL (N bytes)", for a core `pycore pack` wrote.
pub fn packed_line(report: &Report) -> Option<String> {
    let from = report.packed_from.as_ref()?;
    Some(format!(
        "Packed core: written by {} from {} ({} bytes); analysed from itself alone",
        from.packed_by, from.path, from.size
    ))
}

pub fn headline(report: &Report) -> String {
    let crash = &report.crash;
    let crashed_thread = report.threads.iter().find(|t| t.crashed);
    match (crash.kind, &crash.signal) {
        // gcore attaches with SIGSTOP; a breakpoint (SIGTRAP) or an interrupt (SIGINT) under gdb
        // is said.
        (CoreKind::Snapshot, Some(signal)) if signal.number != SIGSTOP => format!(
            "taken from a live process stopped under gdb by {} ({}): nothing crashed",
            signal.name, signal.description
        ),
        (CoreKind::Snapshot, _) => {
            "taken from a live process (gdb's gcore): nothing crashed".to_string()
        }
        (_, Some(signal)) => {
            let mut line = format!("crashed: {}", signal.name);
            match &signal.code_name {
                Some(code) => line.push_str(&format!(" ({code}: {})", signal.description)),
                None => line.push_str(&format!(" ({})", signal.description)),
            }
            if let Some(address) = &signal.fault_address {
                line.push_str(&format!(" at address {address}"));
            }
            if let Some(tid) = crash.thread {
                line.push_str(&format!(", in thread {tid}"));
            }
            line
        }
        // A thread's pr_cursig names the signal, but the core has no siginfo for it.
        (CoreKind::Crashed, None) if crashed_thread.is_some_and(|t| t.signal != 0) => {
            let thread = crashed_thread.map_or(0, |t| t.signal);
            format!(
                "crashed: {} (the core records no siginfo), in thread {}",
                signal_name(thread),
                crash.thread.unwrap_or_default()
            )
        }
        (_, None) => "no signal recorded: the core does not say why it was written".to_string(),
    }
}

/// The crash site in words: `__strlen_evex in libc.so.6 (pc 0x7f…)`.
pub fn crash_site(report: &Report) -> Option<String> {
    let location = report.crash.location.as_ref()?;
    let function = location.function.as_deref().unwrap_or("??");
    let module = location
        .module
        .as_deref()
        .map_or("no mapped file".to_string(), |m| file_name(m).to_string());
    Some(format!("{function} in {module} (pc {})", location.address))
}

/// A native frame in one line: `0x7f… in strlen (libc.so.6) at file.c:12`, `None` for
/// Python frames.
pub fn native_frame_line(frame: &FrameReport) -> Option<String> {
    let native = frame.native.as_ref()?;
    let module = native.module.as_deref().map_or("?", file_name);
    let mut line = if native.inlined {
        format!("(inlined) {} ({module})", frame.function)
    } else {
        format!("{} in {} ({module})", native.address, frame.function)
    };
    if native.signal_frame {
        line.push_str(" <signal handler called>");
    }
    if !frame.file.is_empty() {
        line.push_str(&format!(" at {}", frame.file));
        if let Some(number) = frame.line {
            line.push_str(&format!(":{number}"));
        }
    }
    Some(line)
}

/// `File "x.py", line 3, in f`, as Python tracebacks print it.
pub fn frame_line(frame: &FrameReport) -> String {
    if let Some(native) = native_frame_line(frame) {
        return format!("  {native}");
    }
    let function = frame.qualname.as_deref().unwrap_or(&frame.function);
    match frame.line {
        Some(line) => format!("  File \"{}\", line {line}, in {function}", frame.file),
        None => format!("  File \"{}\", in {function}", frame.file),
    }
}

/// A Python frame's variables (`--locals`), as PyStack lays them out but in the code object's
/// order: a heading for each run of one kind (`Arguments:`, `Locals:`, `Cells:`,
/// `Free variables:`), then `name: repr` lines indented under it.
/// Lines to write straight to the output, not strings (1,000 threads with `--locals` have
/// thousands of them).
pub fn locals_lines(frame: &FrameReport) -> impl Iterator<Item = LocalLine<'_>> {
    let mut current = None;
    frame.locals.iter().flatten().flat_map(move |local| {
        let heading = (current != Some(local.kind)).then(|| {
            current = Some(local.kind);
            LocalLine::Heading(match local.kind {
                LocalKind::Argument => "Arguments:",
                LocalKind::Local => "Locals:",
                LocalKind::Cell => "Cells:",
                LocalKind::Free => "Free variables:",
            })
        });
        heading
            .into_iter()
            .chain([LocalLine::Variable(&local.name, &local.repr)])
    })
}

/// One line of [`locals_lines`].
pub enum LocalLine<'a> {
    Heading(&'static str),
    /// Name and repr.
    Variable(&'a str, &'a str),
}

impl<'a> LocalLine<'a> {
    /// The line's text in pieces (`Arguments:`; `  name: repr`).
    pub fn pieces(&self) -> [&'a str; 4] {
        match *self {
            LocalLine::Heading(heading) => [heading, "", "", ""],
            LocalLine::Variable(name, repr) => ["  ", name, ": ", repr],
        }
    }
}

impl std::fmt::Display for LocalLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.pieces()
            .iter()
            .try_for_each(|piece| f.write_str(piece))
    }
}

/// `x=1, y='a'`: a frame's variables on one line, each repr cut to `width` characters.
pub fn locals_summary(frame: &FrameReport, width: usize) -> String {
    frame
        .locals
        .iter()
        .flatten()
        .map(|local| {
            let repr: String = if local.repr.chars().count() > width {
                let kept: String = local.repr.chars().take(width.saturating_sub(3)).collect();
                format!("{kept}...")
            } else {
                local.repr.clone()
            };
            format!("{}={repr}", local.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `f (x.py:3)`: a frame in a few words.
pub fn frame_summary(frame: &FrameReport) -> String {
    if let Some(native) = &frame.native {
        let module = native.module.as_deref().map_or("?", file_name);
        return format!("{} ({module})", frame.function);
    }
    let function = frame.qualname.as_deref().unwrap_or(&frame.function);
    let file = file_name(&frame.file);
    match frame.line {
        Some(line) => format!("{function} ({file}:{line})"),
        None => format!("{function} ({file})"),
    }
}

/// The roles of a thread in words: crashed (with the signal), main, GIL holder (when
/// `with_gil`: formats with a GIL column leave it out), collector.
pub fn thread_roles(report: &Report, thread: &ThreadReport, with_gil: bool) -> Vec<String> {
    let mut roles = Vec::new();
    if thread.crashed {
        let signal = report
            .crash
            .signal
            .as_ref()
            .map_or("a signal", |s| s.name.as_str());
        roles.push(format!("crashed: {signal}"));
    }
    if thread.is_main {
        roles.push("main thread".to_string());
    }
    if with_gil && thread.holds_gil == Some(true) {
        roles.push("holds the GIL".to_string());
    }
    if thread.gc_collecting == Some(true) {
        roles.push("running a garbage collection".to_string());
    }
    if let Some(state) = &thread.state {
        roles.push(state.description.clone());
    }
    roles
}

/// A thread's frames as the text formats show them.
pub enum Shown<'a> {
    Frame(&'a FrameReport),
    /// The frame before was repeated this many more times (a recursion).
    Repeated(usize),
}

/// Consecutive Python frames at the same place (a recursion: file, line, function) are shown
/// [`REPEAT_CUTOFF`] times, then counted, as Python's tracebacks do (`[Previous line repeated
/// 996 more times]`); JSON keeps every frame. Their variables do not count, as in a traceback
/// of `capture_locals=True` (Lib/traceback.py, `StackSummary.format`): a recursion of 100,000
/// frames is not 500,000 lines of text with `--locals` (and the walk reads no variables for
/// the folded frames when the command line asks for text: `Options::skip_folded_locals`).
pub use crate::report::REPEAT_CUTOFF;

pub fn fold_repeats(frames: &[FrameReport]) -> Vec<Shown<'_>> {
    let same = |a: &FrameReport, b: &FrameReport| {
        a.native.is_none()
            && b.native.is_none()
            && a.interpreter == b.interpreter
            && a.same_place(b)
    };
    let mut shown = Vec::new();
    let mut index = 0;
    while index < frames.len() {
        // cannot panic: `index < frames.len()` (the loop's condition).
        let run = frames[index..]
            .iter()
            .take_while(|f| same(f, &frames[index]))
            .count()
            .max(1);
        // cannot panic: `index < len` and `run` is at most `len - index` (counted in
        // `frames[index..]`, at least 1).
        shown.extend(
            frames[index..index + run.min(REPEAT_CUTOFF)]
                .iter()
                .map(Shown::Frame),
        );
        if run > REPEAT_CUTOFF {
            shown.push(Shown::Repeated(run - REPEAT_CUTOFF));
        }
        index += run;
    }
    shown
}

/// Python's words for a folded run.
pub fn repeated_line(times: usize) -> String {
    let plural = if times == 1 { "" } else { "s" };
    format!("[Previous line repeated {times} more time{plural}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursion_is_folded_as_python_folds_it() {
        let frame = |line| FrameReport {
            function: "f".into(),
            qualname: None,
            file: "x.py".into(),
            line: Some(line),
            first_line: 1,
            ..FrameReport::default()
        };
        let mut frames = vec![frame(9)];
        frames.extend(std::iter::repeat_with(|| frame(5)).take(1000));
        frames.push(frame(2));
        let shown = fold_repeats(&frames);
        let kinds: Vec<String> = shown
            .iter()
            .map(|s| match s {
                Shown::Frame(f) => format!("{}", f.line.unwrap_or(0)),
                Shown::Repeated(n) => format!("+{n}"),
            })
            .collect();
        assert_eq!(kinds, ["9", "5", "5", "5", "+997", "2"]);
        assert_eq!(repeated_line(1), "[Previous line repeated 1 more time]");
        assert_eq!(fold_repeats(&frames[..4]).len(), 4);
        // With --locals too, as Python's traceback with capture_locals=True folds it.
        let with_n = |n: u32| FrameReport {
            locals: Some(vec![crate::report::LocalReport {
                name: "n".into(),
                kind: crate::report::LocalKind::Argument,
                type_name: Some("int".into()),
                repr: n.to_string(),
            }]),
            ..frame(5)
        };
        let recursion: Vec<FrameReport> = (0..10).map(with_n).collect();
        assert_eq!(fold_repeats(&recursion).len(), 4);
        let same: Vec<FrameReport> = (0..10).map(|_| with_n(1)).collect();
        assert_eq!(fold_repeats(&same).len(), 4);
    }

    #[test]
    fn control_characters_become_visible() {
        let mut text = "evil\u{1b}]0;title\u{7}name".to_string();
        super::clean(&mut text);
        assert_eq!(text, "evil\\u{1b}]0;title\\u{7}name");
        let mut plain = "naïve_λ".to_string();
        super::clean(&mut plain);
        assert_eq!(plain, "naïve_λ");
    }
}
