//! Shared by the fuzz targets: the whole analysis, then every renderer.

use std::path::PathBuf;

/// What `pycore analyze CORE --no-source` does, minus the printing to a terminal: parse the
/// core, open the binaries its NT_FILE note names (from this machine's disk; see
/// docs/fuzzing.md), walk the interpreter, build the report, render it in every format.
pub fn analyze(data: pycore::input::MappedFile) {
    let options = pycore::Options {
        core: PathBuf::from("fuzz-input"),
        ..Default::default()
    };
    let Ok(report) = pycore::analyze_data(data, &options) else {
        return;
    };
    let mut out = Vec::new();
    pycore::render::text::write(&report, &mut out).expect("text to a Vec");
    out.clear();
    pycore::render::json::write(&report, &mut out).expect("json to a Vec");
    out.clear();
    pycore::render::table::write(&report, &mut out).expect("table to a Vec");
    out.clear();
    pycore::render::markdown::write(&report, &mut out).expect("markdown to a Vec");
}
