//! Many cores (`pycore analyze CORE… | DIR`): one JSON document per line (`--json`), or one
//! row per core with its crash signature, then the cores grouped by signature (text, table,
//! markdown).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;

use crate::error::Error;
use crate::report::Report;

/// One JSON Lines line: the core's report, or, when it could not be read at all, its error
/// document with `"core": {"path": …}`.
pub fn write_json_line(
    path: &Path,
    result: &Result<Report, Error>,
    out: &mut impl Write,
) -> io::Result<()> {
    match result {
        Ok(report) => serde_json::to_writer(&mut *out, report)?,
        Err(error) => {
            let mut document = super::json::error_document(error);
            if let Some(fields) = document.as_object_mut() {
                fields.insert("core".into(), serde_json::json!({ "path": path }));
            }
            serde_json::to_writer(&mut *out, &document)?;
        }
    }
    writeln!(out)
}

/// What the summary keeps of one core (its report is dropped once this is made).
pub struct Row {
    cells: [String; 7],
    signature: Option<String>,
    what_and_where: String,
}

impl Row {
    pub fn of(path: &Path, exit_code: i32, result: &Result<Report, Error>) -> Row {
        let path = safe(path.display().to_string());
        let exit = exit_code.to_string();
        match result {
            Err(error) => Row {
                cells: [
                    path,
                    exit,
                    String::new(),
                    String::new(),
                    safe(format!("error: {error}")),
                    String::new(),
                    String::new(),
                ],
                signature: None,
                what_and_where: String::new(),
            },
            Ok(report) => {
                let headline = safe(super::headline(report));
                let innermost = innermost_python(report);
                Row {
                    what_and_where: format!("{headline}, {innermost}"),
                    signature: report.crash.signature.clone(),
                    cells: [
                        path,
                        exit,
                        report.core.pid.map_or(String::new(), |p| p.to_string()),
                        report
                            .python
                            .as_ref()
                            .map_or("not read".to_string(), |p| p.version.clone()),
                        headline,
                        innermost,
                        report.crash.signature.clone().unwrap_or_default(),
                    ],
                }
            }
        }
    }
}

/// One row per core, then the signatures shared by several cores.
pub fn write_table(rows: &[Row], markdown: bool, out: &mut impl Write) -> io::Result<()> {
    let header = [
        "core",
        "exit",
        "pid",
        "python",
        "what",
        "where (Python)",
        "signature",
    ];
    if markdown {
        writeln!(out, "| {} |", header.join(" | "))?;
        writeln!(out, "|---|---:|---:|---|---|---|---|")?;
        for row in rows {
            let cells: Vec<String> = row
                .cells
                .iter()
                .map(|c| super::markdown::escape(c))
                .collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
        for row in rows {
            table.add_row(row.cells.iter());
        }
        writeln!(out, "{table}")?;
    }
    let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        if let Some(signature) = &row.signature {
            groups.entry(signature).or_default().push(row);
        }
    }
    let crashes: usize = groups.values().map(Vec::len).sum();
    writeln!(
        out,
        "\n{} cores, {crashes} crashed, {} distinct crash signatures",
        rows.len(),
        groups.len()
    )?;
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    for (signature, members) in groups {
        let first = members.first().map_or("", |r| r.what_and_where.as_str());
        let bullet = if markdown { "- " } else { "  " };
        writeln!(out, "{bullet}{signature} × {}: {first}", members.len())?;
    }
    Ok(())
}

/// The crashed thread's innermost Python frame (else the main thread's, else the first
/// thread's with Python frames).
fn innermost_python(report: &Report) -> String {
    let crashed = report.threads.iter().find(|t| t.crashed);
    let main = report.threads.iter().find(|t| t.is_main);
    let any = report.threads.iter().find(|t| t.python);
    crashed
        .or(main)
        .or(any)
        .and_then(|t| t.frames.iter().find(|f| f.native.is_none()))
        .map(super::frame_summary)
        .map(safe)
        .unwrap_or_default()
}

/// `text` with control characters from the core made visible.
fn safe(mut text: String) -> String {
    super::clean(&mut text);
    text
}
