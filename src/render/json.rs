//! `--json`: the report as one JSON document (schema in docs/json-schema.md).

use std::io::{self, Write};

use crate::report::Report;

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
