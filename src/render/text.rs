//! The default, human-readable output, in the spirit of faulthandler's tracebacks so Python
//! users recognise it: what happened first, then one block per thread (the crashed thread
//! first), most recent call first. It writes ANSI styles; the caller's stream strips them when
//! colour is off (not a terminal, `NO_COLOR`, `--color never`).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use crate::report::{CoreKind, Report, Shape, ThreadReport};

/// The styles of the text output; all empty (nothing written) when colour is off, so that
/// uncoloured output needs no escape-sequence filter.
#[derive(Clone, Copy)]
struct Palette {
    bold: Style,
    crash: Style,
    dim: Style,
    warning: Style,
    function: Style,
}

impl Palette {
    fn new(colour: bool) -> Palette {
        if !colour {
            let plain = Style::new();
            return Palette {
                bold: plain,
                crash: plain,
                dim: plain,
                warning: plain,
                function: plain,
            };
        }
        Palette {
            bold: Style::new().bold(),
            crash: AnsiColor::Red.on_default().bold(),
            dim: Style::new().dimmed(),
            warning: AnsiColor::Yellow.on_default(),
            function: AnsiColor::Cyan.on_default(),
        }
    }
}

/// The report as text, with ANSI colours when `colour`.
pub fn write(report: &Report, out: &mut impl Write, colour: bool) -> io::Result<()> {
    let palette = Palette::new(colour);
    let Palette {
        warning: warn_style,
        dim,
        ..
    } = palette;
    let report = &*super::printable(report);
    write_header(report, palette, out)?;
    for thread in super::crashed_first(report) {
        writeln!(out)?;
        write_thread(report, thread, palette, out)?;
    }
    super::greenlets::write_text(report, palette.bold, out)?;
    let several = report.interpreter_count() > 1;
    for event_loop in &report.asyncio {
        writeln!(out)?;
        let bold = palette.bold;
        writeln!(
            out,
            "{bold}{}:{bold:#}",
            super::tasks::loop_title(event_loop, several)
        )?;
        for line in super::tasks::tree_lines(event_loop) {
            writeln!(out, "{line}")?;
        }
    }
    if !report.warnings.is_empty() || !report.notes.is_empty() {
        writeln!(out)?;
        for warning in &report.warnings {
            writeln!(out, "{warn_style}warning:{warn_style:#} {warning}")?;
        }
        for note in &report.notes {
            writeln!(out, "{dim}note:{dim:#} {note}")?;
        }
    }
    Ok(())
}

fn write_header(report: &Report, palette: Palette, out: &mut impl Write) -> io::Result<()> {
    let Palette {
        bold,
        warning: warn_style,
        ..
    } = palette;
    let core = &report.core;
    write!(out, "{bold}Core {}{bold:#}", core.path.display())?;
    if let Some(pid) = core.pid {
        write!(out, " of process {pid}")?;
    }
    if let Some(command) = &core.command {
        write!(out, ": {command}")?;
    }
    writeln!(out)?;
    if let Some(packed) = super::packed_line(report) {
        writeln!(out, "{packed}")?;
    }
    if let Some(store) = &core.systemd {
        writeln!(
            out,
            "Dumped at {} by systemd-coredump (boot {})",
            store.time, store.boot_id
        )?;
    }
    if let (Some(invoked), Some(executable)) = (&core.invoked_as, &core.executable) {
        if invoked != executable {
            writeln!(out, "Started as {invoked} (executable {executable})")?;
        }
    }
    let headline = super::headline(report);
    let style = match (report.crash.kind, &report.crash.signal) {
        (CoreKind::Snapshot, _) | (CoreKind::Unknown, None) => Style::new(),
        _ => palette.crash,
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
    if let Some(signature) = &report.crash.signature {
        writeln!(out, "Crash signature: {signature}")?;
    }
    let Some(python) = &report.python else {
        let why = report.error.as_ref().map_or("", |e| e.message.as_str());
        writeln!(out, "{warn_style}Python: not read: {why}{warn_style:#}")?;
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

/// `pieces` one after the other.
fn put(out: &mut impl Write, pieces: &[&str]) -> io::Result<()> {
    pieces
        .iter()
        .try_for_each(|piece| out.write_all(piece.as_bytes()))
}

fn write_thread(
    report: &Report,
    thread: &ThreadReport,
    palette: Palette,
    out: &mut impl Write,
) -> io::Result<()> {
    let Palette {
        bold,
        crash,
        dim,
        warning: warn_style,
        function: fn_style,
    } = palette;
    let style = if thread.crashed { crash } else { bold };
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
        writeln!(out, ": {dim}{registers}{dim:#}")?;
    } else if !thread.python && !thread.frames.is_empty() {
        writeln!(
            out,
            ": {dim}no Python thread state{dim:#}; native frames, most recent call first:"
        )?;
    } else if !thread.python {
        writeln!(out, ": {dim}no Python thread state{dim:#}")?;
    } else if thread.frames.is_empty() {
        writeln!(out, ": {dim}no Python frames{dim:#}")?;
    } else {
        writeln!(out, ", most recent call first:")?;
    }
    if let Some(exception) = &thread.handling_exception {
        writeln!(
            out,
            "  {warn_style}handling {}: {}{warn_style:#}",
            exception.type_name, exception.message
        )?;
    }
    // In a process with subinterpreters, a thread's frames are grouped by the interpreter
    // that runs them (as PyStack does), innermost first.
    let grouped = report.interpreter_count() > 1;
    let indent = if grouped { "    " } else { "  " };
    let codes = |style: Style| (style.render().to_string(), style.render_reset().to_string());
    let ((fn_on, fn_off), (dim_on, dim_off), (crash_on, crash_off)) =
        (codes(fn_style), codes(dim), codes(crash));
    let mut current_group = None;
    for shown in super::fold_repeats(&thread.frames) {
        let frame = match shown {
            super::Shown::Frame(frame) => frame,
            super::Shown::Repeated(times) => {
                writeln!(out, "{indent}{}", super::repeated_line(times))?;
                continue;
            }
        };
        if grouped && frame.native.is_none() && current_group != Some(frame.interpreter) {
            current_group = Some(frame.interpreter);
            let title = super::interpreter_title(report, frame.interpreter);
            writeln!(out, "  {bold}{title}:{bold:#}")?;
        }
        if let Some(native) = super::native_frame_line(frame) {
            writeln!(out, "{indent}{dim}{native}{dim:#}")?;
            continue;
        }
        // Written in pieces, not through `format_args!`: with `--locals` on 1,000 threads or
        // a long stack the formatting machinery was a quarter of the run.
        let function = frame.qualname.as_deref().unwrap_or(&frame.function);
        put(out, &[indent, "File \"", &frame.file, "\""])?;
        if let Some(line) = frame.line {
            write!(out, ", line {line}")?;
        }
        put(out, &[", in ", &fn_on, function, &fn_off, "\n"])?;
        if let Some(source) = &frame.source {
            put(out, &[indent, "  ", &dim_on, source, &dim_off, "\n"])?;
            if let Some(markers) = &frame.markers {
                put(out, &[indent, "  ", &crash_on, markers, &crash_off, "\n"])?;
            }
        }
        for line in super::locals_lines(frame) {
            put(out, &[indent, "    "])?;
            put(out, &line.pieces())?;
            put(out, &["\n"])?;
        }
    }
    for warning in &thread.warnings {
        writeln!(out, "  {warn_style}warning:{warn_style:#} {warning}")?;
    }
    Ok(())
}
