//! `--format markdown`: a report to paste into a bug tracker.

use std::io::{self, Write};

use crate::report::Report;

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let report = &*super::printable(report);
    writeln!(out, "### pycore: {}", escape(&super::headline(report)))?;
    writeln!(out)?;
    match (&report.python, &report.error) {
        (Some(python), _) => writeln!(
            out,
            "- **Python**: {} ({} build)",
            python.version, python.shape
        )?,
        (None, Some(error)) => writeln!(out, "- **Python**: not read: {}", escape(&error.message))?,
        (None, None) => writeln!(out, "- **Python**: not read")?,
    }
    if let Some(command) = &report.core.command {
        writeln!(out, "- **Command**: `{}`", command.replace('`', "'"))?;
    }
    if let Some(pid) = report.core.pid {
        writeln!(out, "- **PID**: {pid}")?;
    }
    if let Some(signature) = &report.crash.signature {
        writeln!(out, "- **Crash signature**: `{signature}`")?;
    }
    if let Some(packed) = super::packed_line(report) {
        writeln!(out, "- **Core**: {}", escape(&packed))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| TID | name | crashed | GIL | depth | innermost frame |"
    )?;
    writeln!(out, "|---:|---|---|---|---:|---|")?;
    for thread in super::crashed_first(report) {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            thread.tid.map_or("-".to_string(), |t| t.to_string()),
            escape(thread.name.as_deref().unwrap_or("")),
            if thread.crashed { "**yes**" } else { "" },
            if thread.holds_gil == Some(true) {
                "held"
            } else {
                ""
            },
            thread.frames.len(),
            escape(
                &thread
                    .frames
                    .first()
                    .map(super::frame_summary)
                    .unwrap_or_default()
            ),
        )?;
    }
    for thread in super::crashed_first(report) {
        if thread.frames.is_empty() {
            continue;
        }
        writeln!(out)?;
        let name = thread
            .name
            .as_deref()
            .map(|n| format!(" \"{}\"", escape(n)))
            .unwrap_or_default();
        let tid = thread.tid.map_or("?".to_string(), |t| t.to_string());
        writeln!(
            out,
            "<details{}><summary>Thread {tid}{name} (most recent call first)</summary>",
            if thread.crashed { " open" } else { "" }
        )?;
        writeln!(out)?;
        if let Some(exception) = &thread.handling_exception {
            writeln!(
                out,
                "Handling **{}**: {}",
                escape(&exception.type_name),
                escape(&exception.message)
            )?;
            writeln!(out)?;
        }
        writeln!(out, "```")?;
        let grouped = report.interpreter_count() > 1;
        let mut current_group = None;
        for shown in super::fold_repeats(&thread.frames) {
            let frame = match shown {
                super::Shown::Frame(frame) => frame,
                super::Shown::Repeated(times) => {
                    writeln!(out, "  {}", super::repeated_line(times))?;
                    continue;
                }
            };
            if grouped && frame.native.is_none() && current_group != Some(frame.interpreter) {
                current_group = Some(frame.interpreter);
                writeln!(
                    out,
                    "{}:",
                    super::interpreter_title(report, frame.interpreter)
                )?;
            }
            writeln!(out, "{}", super::frame_line(frame))?;
            if let Some(source) = &frame.source {
                writeln!(out, "    {source}")?;
                if let Some(markers) = &frame.markers {
                    writeln!(out, "    {markers}")?;
                }
            }
            for line in super::locals_lines(frame) {
                writeln!(out, "      {line}")?;
            }
        }
        writeln!(out, "```")?;
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }
    super::greenlets::write_markdown(report, escape, out)?;
    write_tasks(report, out)?;
    if !report.warnings.is_empty() {
        writeln!(out)?;
        for warning in &report.warnings {
            writeln!(out, "> warning: {}", escape(&warning.message))?;
        }
    }
    Ok(())
}

/// The task view: a table of every asyncio task, then each loop's tree (who awaits whom).
fn write_tasks(report: &Report, out: &mut impl Write) -> io::Result<()> {
    if report.asyncio.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "| loop thread | task | state | awaits | waiting on | innermost coroutine |"
    )?;
    writeln!(out, "|---:|---|---|---|---|---|")?;
    for event_loop in &report.asyncio {
        for task in &event_loop.tasks {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                event_loop.thread.map_or("-".to_string(), |t| t.to_string()),
                escape(&task.name),
                escape(task.state.as_deref().unwrap_or("?")),
                escape(&task.awaiting.join(", ")),
                escape(task.waiting_on.as_deref().unwrap_or("")),
                escape(&super::tasks::innermost(task)),
            )?;
        }
    }
    let several = report.interpreter_count() > 1;
    for event_loop in &report.asyncio {
        writeln!(out)?;
        writeln!(
            out,
            "<details><summary>{}</summary>",
            escape(&super::tasks::loop_title(event_loop, several))
        )?;
        writeln!(out)?;
        writeln!(out, "```")?;
        for line in super::tasks::tree_lines(event_loop) {
            // A fence inside the block would end it.
            writeln!(out, "{}", line.replace("```", "` ` `"))?;
        }
        writeln!(out, "```")?;
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }
    Ok(())
}

/// Keep table cells and inline text from being read as markdown or HTML.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}
