//! The greenlets section of the text, table and markdown outputs (after the threads): each
//! greenlet's stack, most recent call first, the running one of each thread marked (its
//! frames are its thread's, printed above, and are not repeated).

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use crate::report::{GreenletReport, Report};

/// `Greenlet 0x7f… on thread 123 (running, main)`.
pub fn title(greenlet: &GreenletReport) -> String {
    let mut words = vec![if greenlet.running {
        "running"
    } else {
        "suspended"
    }];
    if greenlet.main == Some(true) {
        words.push("main");
    }
    let address = greenlet.address.as_deref().unwrap_or("(address unknown)");
    let thread = greenlet
        .thread
        .map_or("no thread of the core".to_string(), |tid| {
            format!("thread {tid}")
        });
    format!("Greenlet {address} on {thread} ({})", words.join(", "))
}

/// The heading: `Greenlets (greenlet 3.0.3)`.
pub fn heading(report: &Report) -> String {
    let version = report
        .python
        .as_ref()
        .and_then(|p| p.greenlet.as_ref())
        .and_then(|g| g.version.as_deref());
    match version {
        Some(version) => format!("Greenlets (greenlet {version})"),
        None => "Greenlets".to_string(),
    }
}

/// The frame lines of one greenlet (text and markdown): a running greenlet's frames are
/// its thread's, shown with the thread.
pub fn frame_lines(greenlet: &GreenletReport) -> Vec<String> {
    if greenlet.running {
        return vec!["  (its frames are the thread's, above)".to_string()];
    }
    if greenlet.frames.is_empty() {
        return vec!["  (no Python frames)".to_string()];
    }
    let mut lines = Vec::new();
    for shown in super::fold_repeats(&greenlet.frames) {
        let frame = match shown {
            super::Shown::Frame(frame) => frame,
            super::Shown::Repeated(times) => {
                lines.push(format!("  {}", super::repeated_line(times)));
                continue;
            }
        };
        lines.push(super::frame_line(frame));
        if let Some(source) = &frame.source {
            lines.push(format!("    {source}"));
            if let Some(markers) = &frame.markers {
                lines.push(format!("    {markers}"));
            }
        }
        lines.extend(super::locals_lines(frame).map(|l| format!("      {l}")));
    }
    lines
}

/// The text section (nothing when there are no greenlets).
pub fn write_text(report: &Report, bold: anstyle::Style, out: &mut impl Write) -> io::Result<()> {
    if report.greenlets.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{bold}{}{bold:#}, most recent call first:",
        heading(report)
    )?;
    for greenlet in &report.greenlets {
        writeln!(out)?;
        writeln!(out, "{bold}{}{bold:#}:", title(greenlet))?;
        for line in frame_lines(greenlet) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The table: one row per greenlet.
pub fn write_table(report: &Report, width: Option<u16>, out: &mut impl Write) -> io::Result<()> {
    if report.greenlets.is_empty() {
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "thread",
        "greenlet",
        "state",
        "depth",
        "innermost frame",
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
    for greenlet in &report.greenlets {
        let frames = &greenlet.frames;
        let mut state = if greenlet.running {
            "running".to_string()
        } else {
            "suspended".to_string()
        };
        if greenlet.main == Some(true) {
            state.push_str(", main");
        }
        table.add_row(vec![
            greenlet
                .thread
                .map_or("-".to_string(), |tid| tid.to_string()),
            greenlet.address.clone().unwrap_or_else(|| "?".to_string()),
            state,
            frames.len().to_string(),
            frames.first().map(super::frame_summary).unwrap_or_default(),
        ]);
    }
    writeln!(out, "{}:", heading(report))?;
    writeln!(out, "{table}")
}

/// The markdown section: a table, then each suspended greenlet's stack.
pub fn write_markdown(
    report: &Report,
    escape: fn(&str) -> String,
    out: &mut impl Write,
) -> io::Result<()> {
    if report.greenlets.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "#### {}", escape(&heading(report)))?;
    writeln!(out)?;
    writeln!(
        out,
        "| thread | greenlet | state | depth | innermost frame |"
    )?;
    writeln!(out, "|---:|---|---|---:|---|")?;
    for greenlet in &report.greenlets {
        let frames = &greenlet.frames;
        let state = match (greenlet.running, greenlet.main == Some(true)) {
            (true, true) => "**running**, main",
            (true, false) => "**running**",
            (false, true) => "suspended, main",
            (false, false) => "suspended",
        };
        writeln!(
            out,
            "| {} | {} | {state} | {} | {} |",
            greenlet
                .thread
                .map_or("-".to_string(), |tid| tid.to_string()),
            escape(greenlet.address.as_deref().unwrap_or("?")),
            frames.len(),
            escape(&frames.first().map(super::frame_summary).unwrap_or_default()),
        )?;
    }
    for greenlet in report.greenlets.iter().filter(|g| !g.running) {
        writeln!(out)?;
        writeln!(
            out,
            "<details><summary>{} (most recent call first)</summary>",
            escape(&title(greenlet))
        )?;
        writeln!(out)?;
        writeln!(out, "```")?;
        for line in frame_lines(greenlet) {
            writeln!(out, "{}", line.replace("```", "'''"))?;
        }
        writeln!(out, "```")?;
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FrameReport;

    fn greenlet(running: bool, frames: usize) -> GreenletReport {
        GreenletReport {
            thread: Some(7),
            running,
            address: Some("0x10".into()),
            main: Some(running),
            frames: (0..frames)
                .map(|i| FrameReport {
                    function: "f".into(),
                    file: "x.py".into(),
                    line: Some(3 + i as u32),
                    ..FrameReport::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_running_greenlet_points_at_its_thread_and_suspended_ones_show_their_frames() {
        let running = greenlet(true, 2);
        assert_eq!(title(&running), "Greenlet 0x10 on thread 7 (running, main)");
        assert_eq!(
            frame_lines(&running),
            ["  (its frames are the thread's, above)"]
        );
        let suspended = GreenletReport {
            thread: None,
            ..greenlet(false, 2)
        };
        assert_eq!(
            title(&suspended),
            "Greenlet 0x10 on no thread of the core (suspended)"
        );
        assert_eq!(
            frame_lines(&suspended),
            [
                "  File \"x.py\", line 3, in f",
                "  File \"x.py\", line 4, in f"
            ]
        );
        assert_eq!(frame_lines(&greenlet(false, 0)), ["  (no Python frames)"]);
    }
}
