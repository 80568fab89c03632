//! The report's greenlets: each one joined to its thread (the thread whose C stack holds the
//! greenlet's stack addresses, `python::greenlets`), the running one of each thread carrying
//! the thread's own Python frames.

use serde::{Deserialize, Serialize};

use super::{FrameReport, Report};
use crate::core::CoreFile;
use crate::python::greenlets::GreenletState;
use crate::warning::{Warning, WarningKind};

/// Greenlets listed in all: a corrupt core must not make the report explode.
const MAX_REPORTED: usize = 100_000;

/// One greenlet (docs/json-schema.md, "Greenlets").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GreenletReport {
    /// Kernel TID of the thread it belongs to; null when no thread of the core holds it.
    pub thread: Option<i32>,
    /// It is the greenlet running on its thread: its frames are the thread's Python frames.
    pub running: bool,
    /// Address of the `PyGreenlet` (null for a running greenlet that was not identified).
    pub address: Option<String>,
    /// The thread's main greenlet (the one it started in); null when unknown.
    pub main: Option<bool>,
    /// Python frames, innermost first, as in `threads[].frames`.
    pub frames: Vec<FrameReport>,
}

/// Greenlet facts for `python.greenlet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GreenletSummary {
    /// `greenlet.__version__`.
    pub version: Option<String>,
}

/// Join the greenlets found to the core's threads: per thread (in the report's order) the
/// running greenlet first, then the suspended ones; greenlets of no thread last.
pub(super) fn add_greenlets(report: &mut Report, core: &CoreFile, state: GreenletState) {
    let stacks: Vec<(i32, u64, u64)> = core
        .threads
        .iter()
        .filter_map(|t| {
            let segment = core.segment_containing(t.registers.sp)?;
            Some((t.tid, segment.vaddr, segment.end()))
        })
        .collect();
    let thread_of = |addresses: &[u64]| {
        addresses.iter().find_map(|a| {
            stacks
                .iter()
                .find(|(_, start, end)| (*start..*end).contains(a))
                .map(|(tid, _, _)| *tid)
        })
    };
    report.warnings.extend(state.warnings);
    let version = state.version;
    let hex = |v: u64| format!("{v:#x}");
    let mut running: Vec<(i32, u64, bool)> = Vec::new();
    let mut suspended: Vec<GreenletReport> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    for greenlet in state.greenlets {
        let thread = thread_of(&greenlet.stack_addresses);
        warnings.extend(greenlet.warnings);
        if greenlet.running {
            if let Some(tid) = thread {
                running.push((tid, greenlet.address, greenlet.main));
            }
            continue;
        }
        if thread.is_none() {
            warnings.push(Warning::new(
                WarningKind::Greenlets,
                format!(
                    "the greenlet at {:#x} is on the C stack of no thread of the core (its thread has exited?)",
                    greenlet.address
                ),
            ));
        }
        suspended.push(GreenletReport {
            thread,
            running: false,
            address: Some(hex(greenlet.address)),
            main: Some(greenlet.main),
            frames: greenlet.frames,
        });
    }
    let mut greenlets = Vec::new();
    for thread in &report.threads {
        let Some(tid) = thread.tid else { continue };
        let mine: Vec<&GreenletReport> =
            suspended.iter().filter(|g| g.thread == Some(tid)).collect();
        let runner: Vec<&(i32, u64, bool)> = running.iter().filter(|r| r.0 == tid).collect();
        if mine.is_empty() && runner.is_empty() {
            continue;
        }
        // Exactly one greenlet runs on a thread; more candidates means one is misread.
        let identified = match runner.as_slice() {
            [one] => Some(**one),
            _ => None,
        };
        greenlets.push(GreenletReport {
            thread: Some(tid),
            running: true,
            address: identified.map(|(_, address, _)| hex(address)),
            main: identified.map(|(_, _, main)| main),
            frames: thread
                .frames
                .iter()
                .filter(|f| f.native.is_none())
                .cloned()
                .collect(),
        });
        greenlets.extend(mine.into_iter().cloned());
    }
    greenlets.extend(suspended.into_iter().filter(|g| g.thread.is_none()));
    if greenlets.len() > MAX_REPORTED {
        warnings.push(Warning::new(
            WarningKind::Greenlets,
            format!(
                "{} greenlets: only the first {MAX_REPORTED} are listed",
                greenlets.len()
            ),
        ));
        greenlets.truncate(MAX_REPORTED);
    }
    report.warnings.extend(warnings);
    report.greenlets = greenlets;
    if let Some(python) = report.python.as_mut() {
        python.greenlet = Some(GreenletSummary { version });
    }
}
