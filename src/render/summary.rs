//! Many cores (`pycore analyze CORE… | DIR`): one JSON document per line (`--json`), or one
//! row per core with its crash signature, then the cores grouped by signature (text, table,
//! markdown).

use std::collections::BTreeMap;
use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;

use crate::batch::Analysed;
use crate::report::Report;

/// JSON Lines: each core's report (or, when it could not be read, its error document) on one
/// line, in the order the cores were named.
pub fn write_json_lines(analysed: &[Analysed], out: &mut impl Write) -> io::Result<()> {
    for item in analysed {
        match &item.result {
            Ok(report) => serde_json::to_writer(&mut *out, report)?,
            Err(error) => {
                let mut document = super::json::error_document(error);
                document["core"] = serde_json::json!({ "path": item.path });
                serde_json::to_writer(&mut *out, &document)?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One row per core, then the signatures shared by several cores.
pub fn write_table(analysed: &[Analysed], markdown: bool, out: &mut impl Write) -> io::Result<()> {
    let header = [
        "core",
        "exit",
        "pid",
        "python",
        "what",
        "where (Python)",
        "signature",
    ];
    let rows: Vec<[String; 7]> = analysed.iter().map(row).collect();
    if markdown {
        writeln!(out, "| {} |", header.join(" | "))?;
        writeln!(out, "|---|---:|---:|---|---|---|---|")?;
        for row in &rows {
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
        for row in rows.iter() {
            table.add_row(row.iter());
        }
        writeln!(out, "{table}")?;
    }
    let mut groups: BTreeMap<&str, Vec<&Analysed>> = BTreeMap::new();
    for item in analysed {
        if let Some(signature) = signature(item) {
            groups.entry(signature).or_default().push(item);
        }
    }
    let crashes: usize = groups.values().map(Vec::len).sum();
    writeln!(
        out,
        "\n{} cores, {crashes} crashed, {} distinct crash signatures",
        analysed.len(),
        groups.len()
    )?;
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    for (signature, items) in groups {
        let first = items.first().map_or(String::new(), |i| what_and_where(i));
        writeln!(
            out,
            "{}{signature} × {}: {first}",
            if markdown { "- " } else { "  " },
            items.len()
        )?;
    }
    Ok(())
}

fn signature(item: &Analysed) -> Option<&str> {
    item.result.as_ref().ok()?.crash.signature.as_deref()
}

fn row(item: &Analysed) -> [String; 7] {
    let path = safe(item.path.display().to_string());
    let exit = item.exit_code().to_string();
    match &item.result {
        Err(error) => [
            path,
            exit,
            String::new(),
            String::new(),
            safe(format!("error: {error}")),
            String::new(),
            String::new(),
        ],
        Ok(report) => [
            path,
            exit,
            report.core.pid.map_or(String::new(), |p| p.to_string()),
            report
                .python
                .as_ref()
                .map_or("not read".to_string(), |p| p.version.clone()),
            safe(super::headline(report)),
            innermost_python(report),
            report.crash.signature.clone().unwrap_or_default(),
        ],
    }
}

fn what_and_where(item: &Analysed) -> String {
    match &item.result {
        Ok(report) => safe(format!(
            "{}, {}",
            super::headline(report),
            innermost_python(report)
        )),
        Err(_) => String::new(),
    }
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
