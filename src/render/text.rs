//! The default, human-readable output, in the spirit of faulthandler's tracebacks so Python
//! users recognise it: one block per thread, most recent call first.

use std::io::{self, Write};

use crate::report::{Report, ThreadReport};

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let core = &report.core;
    write!(out, "Core {}", core.path.display())?;
    if let Some(pid) = core.pid {
        write!(out, " of process {pid}")?;
    }
    if let Some(command) = &core.command {
        write!(out, ": {command}")?;
    }
    writeln!(out)?;
    let python = &report.python;
    let linkage = match (&python.libpython, &python.executable) {
        (Some(lib), _) => format!("shared {}", lib.path),
        (None, Some(exe)) => format!("static {}", exe.path),
        (None, None) => "binary unknown".to_string(),
    };
    let gil = if python.shape == crate::python::Shape::FreeThreaded {
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
        "{} threads, {with_frames} with Python frames; stacks show the most recent call first.",
        report.threads.len()
    )?;
    for thread in &report.threads {
        writeln!(out)?;
        write_thread(thread, out)?;
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        for warning in &report.warnings {
            writeln!(out, "warning: {warning}")?;
        }
    }
    Ok(())
}

fn write_thread(thread: &ThreadReport, out: &mut impl Write) -> io::Result<()> {
    match thread.tid {
        Some(tid) => write!(out, "Thread {tid}")?,
        None => write!(out, "Thread (not in the core)")?,
    }
    if let Some(name) = &thread.name {
        write!(out, " \"{name}\"")?;
    }
    let mut notes = Vec::new();
    if thread.holds_gil == Some(true) {
        notes.push("holds the GIL".to_string());
    }
    if thread.signal != 0 {
        notes.push(format!("stopped by signal {}", thread.signal));
    }
    if !notes.is_empty() {
        write!(out, " ({})", notes.join(", "))?;
    }
    writeln!(out)?;
    if !thread.python {
        writeln!(out, "  (no Python thread state)")?;
    } else if thread.frames.is_empty() {
        writeln!(out, "  (no Python frames)")?;
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
