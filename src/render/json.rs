//! `--json`: the report as one JSON document (schema in docs/json-schema.md).

use std::io::{self, Write};

use crate::report::Report;

pub fn write(report: &Report, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

/// The document for an analysis that stopped before the core's notes could be read (not a
/// core, unreadable): every section null or empty, and the error.
pub fn write_error(error: &crate::Error, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &error_document(error))?;
    writeln!(out)
}

/// The JSON document of an analysis that stopped before the core's notes were read.
pub fn error_document(error: &crate::Error) -> serde_json::Value {
    serde_json::json!({
        "schema_version": crate::report::SCHEMA_VERSION,
        "core": null,
        "crash": null,
        "python": null,
        "threads": [],
        "warnings": [],
        "notes": [],
        "error": {
            "code": error.exit_code(),
            "kind": error.kind(),
            "message": error.to_string(),
        },
    })
}
