//! Merging a thread's native frames with its Python frames.
//!
//! Each interpreter-loop frame (`_PyEval_EvalFrameDefault`; `PyEval_EvalFrameEx` on 2.7) ran
//! a run of Python frames: one on ≤3.10, on 3.11+ every `_PyInterpreterFrame` up to its entry
//! frame ([`crate::python::Frame::entry`]). Runs are given to loop frames innermost first and
//! take their place. `--native` folds the interpreter's other frames; `--native-all` keeps
//! them.

use super::native::frame_report;
use super::FrameReport;
use crate::native::modules::Modules;
use crate::native::{NamedFrame, NativeMode};

/// Function names of the interpreter loop, preferred first: 3.6+ runs Python code in
/// `_PyEval_EvalFrameDefault` (called through `PyEval_EvalFrameEx`, which is then no loop).
const LOOPS: [&str; 2] = ["_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx"];

/// A symbol's base name: `_PyEval_EvalFrameDefault.cold` is the same C frame.
fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The merged frames, innermost first, and a warning when the Python frames and the loop
/// frames do not pair up.
pub fn merge(
    modules: &Modules<'_>,
    native: Vec<NamedFrame>,
    python: Vec<FrameReport>,
    mode: NativeMode,
) -> (Vec<FrameReport>, Option<String>) {
    let is_named = |frame: &NamedFrame, name: &str| {
        !frame.inlined && frame.function.as_deref().map(base) == Some(name)
    };
    let loop_name = LOOPS
        .iter()
        .find(|name| native.iter().any(|f| f.interpreter && is_named(f, name)))
        .copied();
    let is_loop = |frame: &NamedFrame| {
        frame.interpreter && loop_name.is_some_and(|name| is_named(frame, name))
    };
    // Runs of Python frames, innermost first: each ends with an entry frame.
    let mut runs: Vec<Vec<FrameReport>> = Vec::new();
    let mut current = Vec::new();
    for frame in python {
        let entry = frame.entry;
        current.push(frame);
        if entry {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    let loops = native.iter().filter(|f| is_loop(f)).count();
    let warning = (!runs.is_empty() && loops != runs.len()).then(|| {
        format!(
            "{} interpreter-loop frames on the native stack for {} runs of Python frames: the merge may be off",
            loops,
            runs.len()
        )
    });
    let mut runs = runs.into_iter();
    let mut out = Vec::with_capacity(native.len());
    for frame in &native {
        if is_loop(frame) {
            match runs.next() {
                Some(run) => {
                    if mode == NativeMode::All {
                        out.extend(run);
                        out.push(frame_report(modules, frame));
                    } else {
                        out.extend(run);
                    }
                    continue;
                }
                None if mode == NativeMode::Merged => continue,
                None => {}
            }
        }
        if mode == NativeMode::Merged && frame.interpreter {
            continue;
        }
        out.push(frame_report(modules, frame));
    }
    // Python frames no loop frame was found for (the native stack was cut short).
    out.extend(runs.flatten());
    (out, warning)
}
