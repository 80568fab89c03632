//! The default, human-readable output, in the spirit of faulthandler's tracebacks so Python
//! users recognise it: what happened first, then one block per thread (the crashed thread
//! first), most recent call first.

use std::io::{self, Write};

use crate::python::Shape;
use crate::report::{CoreKind, Report, ThreadReport};

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    write_header(report, out)?;
    let crashed = report.threads.iter().filter(|t| t.crashed);
    let others = report.threads.iter().filter(|t| !t.crashed);
    for thread in crashed.chain(others) {
        writeln!(out)?;
        write_thread(report, thread, out)?;
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        for warning in &report.warnings {
            writeln!(out, "warning: {warning}")?;
        }
    }
    Ok(())
}

fn write_header(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let core = &report.core;
    write!(out, "Core {}", core.path.display())?;
    if let Some(pid) = core.pid {
        write!(out, " of process {pid}")?;
    }
    if let Some(command) = &core.command {
        write!(out, ": {command}")?;
    }
    writeln!(out)?;
    let crash = &report.crash;
    match (crash.kind, &crash.signal) {
        (CoreKind::Snapshot, _) => writeln!(
            out,
            "Taken from a live process (gdb's gcore): nothing crashed; this is where every thread was"
        )?,
        (_, Some(signal)) => {
            write!(out, "Crashed: {}", signal.name)?;
            match &signal.code_name {
                Some(code) => write!(out, " ({code}: {})", signal.description)?,
                None => write!(out, " ({})", signal.description)?,
            }
            if let Some(address) = &signal.fault_address {
                write!(out, " at address {address}")?;
            }
            if let Some(tid) = crash.thread {
                write!(out, ", in thread {tid}")?;
            }
            writeln!(out)?;
        }
        (_, None) => writeln!(out, "No signal recorded: the core does not say why it was written")?,
    }
    let python = &report.python;
    let linkage = match (&python.libpython, &python.executable) {
        (Some(lib), _) => format!("shared {}", lib.path),
        (None, Some(exe)) => format!("static {}", exe.path),
        (None, None) => "binary unknown".to_string(),
    };
    let gil = if python.shape == Shape::FreeThreaded {
        ", runs without a GIL unless one was re-enabled"
    } else {
        ""
    };
    writeln!(
        out,
        "Python {}, {} build ({linkage}){gil}",
        python.version, python.shape
    )?;
    let with_frames = report
        .threads
        .iter()
        .filter(|t| !t.frames.is_empty())
        .count();
    writeln!(
        out,
        "{} threads, {with_frames} with Python frames",
        report.threads.len()
    )
}

fn write_thread(report: &Report, thread: &ThreadReport, out: &mut impl Write) -> io::Result<()> {
    match thread.tid {
        Some(tid) => write!(out, "Thread {tid}")?,
        None => write!(out, "Thread (not in the core)")?,
    }
    if let Some(name) = &thread.name {
        write!(out, " \"{name}\"")?;
    }
    let mut notes = Vec::new();
    if thread.crashed {
        let signal = report
            .crash
            .signal
            .as_ref()
            .map_or("a signal", |s| s.name.as_str());
        notes.push(format!("crashed: {signal}"));
    }
    if thread.is_main {
        notes.push("main thread".to_string());
    }
    if thread.holds_gil == Some(true) {
        notes.push("holds the GIL".to_string());
    }
    if !notes.is_empty() {
        write!(out, " ({})", notes.join(", "))?;
    }
    if !thread.python {
        writeln!(out, ": no Python thread state")?;
    } else if thread.frames.is_empty() {
        writeln!(out, ": no Python frames")?;
    } else {
        writeln!(out, ", most recent call first:")?;
    }
    for frame in &thread.frames {
        let function = frame.qualname.as_deref().unwrap_or(&frame.function);
        match frame.line {
            Some(line) => writeln!(out, "  File \"{}\", line {line}, in {function}", frame.file)?,
            None => writeln!(out, "  File \"{}\", in {function}", frame.file)?,
        }
    }
    for warning in &thread.warnings {
        writeln!(out, "  warning: {warning}")?;
    }
    Ok(())
}
