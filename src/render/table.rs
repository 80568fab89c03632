//! `--format table`: a one-screen summary, one row per thread.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use crate::report::{Report, ThreadReport};

/// Narrower than this, wrapping would make the table unreadable: it is printed unwrapped.
const MIN_WIDTH: u16 = 40;

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let report = &*super::printable(report);
    let mut table = Table::new();
    // With --locals, the innermost Python frame's variables get a column.
    let with_locals = report
        .threads
        .iter()
        .any(|t| t.frames.iter().any(|f| f.locals.is_some()));
    let mut header = vec!["TID", "name", "state", "GIL", "depth", "innermost frame"];
    if with_locals {
        header.push("its variables");
    }
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    // comfy-table asks the terminal for its width; a pseudo-terminal nobody sized (`script`,
    // some CI runners, `docker exec -t`) answers 0 and every cell would wrap at one character.
    // COLUMNS wins when set; a width too narrow for a table means "unknown": no limit then.
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok());
    let width = columns
        .filter(|&c| c > 0)
        .or_else(|| table.width())
        .filter(|&w| w >= MIN_WIDTH);
    match width {
        Some(width) => {
            table
                .set_width(width)
                .set_content_arrangement(ContentArrangement::Dynamic);
        }
        _ => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    for thread in super::crashed_first(report) {
        let mut row = vec![
            thread.tid.map_or("-".to_string(), |tid| tid.to_string()),
            thread.name.clone().unwrap_or_default(),
            state(report, thread),
            gil(thread).to_string(),
            thread.frames.len().to_string(),
            thread
                .frames
                .first()
                .map(super::frame_summary)
                .unwrap_or_default(),
        ];
        if with_locals {
            let innermost_python = thread.frames.iter().find(|f| f.native.is_none());
            row.push(innermost_python.map_or(String::new(), |f| super::locals_summary(f, 40)));
        }
        table.add_row(row);
    }
    writeln!(out, "{}", super::headline(report))?;
    if let Some(packed) = super::packed_line(report) {
        writeln!(out, "{packed}")?;
    }
    writeln!(out, "{table}")?;
    super::greenlets::write_table(report, width, out)?;
    if !report.asyncio.is_empty() {
        writeln!(out, "{}", task_table(report, table.width()))?;
    }
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    if let Some(error) = &report.error {
        writeln!(out, "Python stacks not read: {}", error.message)?;
    }
    Ok(())
}

/// The task view: one row per asyncio task, loop by loop.
fn task_table(report: &Report, width: Option<u16>) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "loop thread",
        "task",
        "state",
        "awaits",
        "waiting on",
        "depth",
        "innermost coroutine",
    ]);
    match width {
        Some(width) => {
            table
                .set_width(width)
                .set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    for event_loop in &report.asyncio {
        for task in &event_loop.tasks {
            table.add_row(vec![
                event_loop
                    .thread
                    .map_or("-".to_string(), |tid| tid.to_string()),
                task.name.clone(),
                task.state.clone().unwrap_or_else(|| "?".into()),
                task.awaiting.join(", "),
                task.waiting_on.clone().unwrap_or_default(),
                task.stack.len().to_string(),
                super::tasks::innermost(task),
            ]);
        }
    }
    table
}

fn state(report: &Report, thread: &ThreadReport) -> String {
    let mut words = super::thread_roles(report, thread, false);
    if let Some(exception) = &thread.handling_exception {
        words.push(format!("handling {}", exception.type_name));
    }
    if report.interpreter_count() > 1 && thread.python {
        let title = super::interpreter_title(report, thread.interpreter);
        words.push(title.replacen("In ", "in ", 1));
    }
    words.push(
        match (thread.python, thread.frames.is_empty()) {
            (false, _) if report.python.is_none() => "Python not read",
            (false, _) => "no Python",
            (true, true) => "idle",
            (true, false) => "Python",
        }
        .to_string(),
    );
    words.join(", ")
}

fn gil(thread: &ThreadReport) -> &'static str {
    match thread.holds_gil {
        Some(true) => "held",
        Some(false) => "",
        None if thread.python => "?",
        None => "",
    }
}
