//! The default, human-readable output, in the spirit of faulthandler's tracebacks so Python
//! users recognise it: what happened first, then one block per thread (the crashed thread
//! first), most recent call first. It writes ANSI styles; the caller's stream strips them when
//! colour is off (not a terminal, `NO_COLOR`, `--color never`).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use crate::report::{CoreKind, Report, Shape, ThreadReport};

const BOLD: Style = Style::new().bold();
const CRASH: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();
const WARNING: Style = AnsiColor::Yellow.on_default();
const FUNCTION: Style = AnsiColor::Cyan.on_default();

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let report = &super::printable(report);
    write_header(report, out)?;
    for thread in super::crashed_first(report) {
        writeln!(out)?;
        write_thread(report, thread, out)?;
    }
    if !report.warnings.is_empty() || !report.notes.is_empty() {
        writeln!(out)?;
        for warning in &report.warnings {
            writeln!(out, "{WARNING}warning:{WARNING:#} {warning}")?;
        }
        for note in &report.notes {
            writeln!(out, "{DIM}note:{DIM:#} {note}")?;
        }
    }
    Ok(())
}

fn write_header(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let core = &report.core;
    write!(out, "{BOLD}Core {}{BOLD:#}", core.path.display())?;
    if let Some(pid) = core.pid {
        write!(out, " of process {pid}")?;
    }
    if let Some(command) = &core.command {
        write!(out, ": {command}")?;
    }
    writeln!(out)?;
    if let (Some(invoked), Some(executable)) = (&core.invoked_as, &core.executable) {
        if invoked != executable {
            writeln!(out, "Started as {invoked} (executable {executable})")?;
        }
    }
    let headline = super::headline(report);
    let style = match (report.crash.kind, &report.crash.signal) {
        (CoreKind::Snapshot, _) | (CoreKind::Unknown, None) => Style::new(),
        _ => CRASH,
    };
    let mut chars = headline.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    writeln!(out, "{style}{first}{}{style:#}", chars.as_str())?;
    if let Some(site) = super::crash_site(report) {
        writeln!(out, "{style}Crash site: {site}{style:#}")?;
    }
    let Some(python) = &report.python else {
        let why = report.error.as_ref().map_or("", |e| e.message.as_str());
        writeln!(out, "{WARNING}Python: not read: {why}{WARNING:#}")?;
        writeln!(
            out,
            "{} threads (what the core says of them without the Python state)",
            report.threads.len()
        )?;
        return Ok(());
    };
    let read_from = |binary: &crate::report::BinarySummary| {
        let local = binary.local_path.display().to_string();
        if local == binary.path {
            binary.path.clone()
        } else {
            format!("{}, read from {local}", binary.path)
        }
    };
    let linkage = match (&python.libpython, &python.executable) {
        (Some(lib), _) => format!("shared {}", read_from(lib)),
        (None, Some(exe)) => format!("static {}", read_from(exe)),
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
        .filter(|t| t.frames.iter().any(|f| f.native.is_none()))
        .count();
    write!(
        out,
        "{} threads, {with_frames} with Python frames",
        report.threads.len()
    )?;
    let subinterpreters = python.interpreters.iter().filter(|i| !i.main).count();
    match subinterpreters {
        0 => writeln!(out)?,
        1 => writeln!(out, "; the main interpreter and 1 subinterpreter")?,
        n => writeln!(out, "; the main interpreter and {n} subinterpreters")?,
    }
    if python.gc_collecting == Some(true) {
        let who = report
            .threads
            .iter()
            .find(|t| t.gc_collecting == Some(true))
            .and_then(|t| t.tid)
            .map_or(String::new(), |tid| format!(" (in thread {tid})"));
        writeln!(out, "A garbage collection was running{who}")?;
    }
    Ok(())
}

fn write_thread(report: &Report, thread: &ThreadReport, out: &mut impl Write) -> io::Result<()> {
    let style = if thread.crashed { CRASH } else { BOLD };
    match thread.tid {
        Some(tid) => write!(out, "{style}Thread {tid}{style:#}")?,
        None => write!(out, "{style}Thread (not in the core){style:#}")?,
    }
    if let Some(name) = &thread.name {
        write!(out, " {style}\"{name}\"{style:#}")?;
    }
    let notes = super::thread_roles(report, thread, true);
    if !notes.is_empty() {
        write!(out, " ({})", notes.join(", "))?;
    }
    if report.python.is_none() {
        let registers = match (&thread.pc, &thread.sp) {
            (Some(pc), Some(sp)) => format!("pc {pc}, sp {sp}"),
            _ => "no registers".to_string(),
        };
        writeln!(out, ": {DIM}{registers}{DIM:#}")?;
    } else if !thread.python && !thread.frames.is_empty() {
        writeln!(
            out,
            ": {DIM}no Python thread state{DIM:#}; native frames, most recent call first:"
        )?;
    } else if !thread.python {
        writeln!(out, ": {DIM}no Python thread state{DIM:#}")?;
    } else if thread.frames.is_empty() {
        writeln!(out, ": {DIM}no Python frames{DIM:#}")?;
    } else {
        writeln!(out, ", most recent call first:")?;
    }
    if let Some(exception) = &thread.handling_exception {
        writeln!(
            out,
            "  {WARNING}handling {}: {}{WARNING:#}",
            exception.type_name, exception.message
        )?;
    }
    // In a process with subinterpreters, a thread's frames are grouped by the interpreter
    // that runs them (as PyStack does), innermost first.
    let grouped = report.interpreter_count() > 1;
    let indent = if grouped { "    " } else { "  " };
    let mut current_group = None;
    for frame in &thread.frames {
        if grouped && frame.native.is_none() && current_group != Some(frame.interpreter) {
            current_group = Some(frame.interpreter);
            let title = super::interpreter_title(report, frame.interpreter);
            writeln!(out, "  {BOLD}{title}:{BOLD:#}")?;
        }
        if let Some(native) = super::native_frame_line(frame) {
            writeln!(out, "{indent}{DIM}{native}{DIM:#}")?;
            continue;
        }
        let function = frame.qualname.as_deref().unwrap_or(&frame.function);
        match frame.line {
            Some(line) => writeln!(
                out,
                "{indent}File \"{}\", line {line}, in {FUNCTION}{function}{FUNCTION:#}",
                frame.file
            )?,
            None => writeln!(
                out,
                "{indent}File \"{}\", in {FUNCTION}{function}{FUNCTION:#}",
                frame.file
            )?,
        }
        if let Some(source) = &frame.source {
            writeln!(out, "{indent}  {DIM}{source}{DIM:#}")?;
            if let Some(markers) = &frame.markers {
                writeln!(out, "{indent}  {CRASH}{markers}{CRASH:#}")?;
            }
        }
        for line in super::locals_lines(frame) {
            writeln!(out, "{indent}    {line}")?;
        }
    }
    for warning in &thread.warnings {
        writeln!(out, "  {WARNING}warning:{WARNING:#} {warning}")?;
    }
    Ok(())
}
