//! Shared by the fuzz targets: the whole analysis, then every renderer.

use std::path::PathBuf;

/// What `pycore analyze CORE --no-source` does, minus the printing to a terminal: parse the
/// core, open the binaries its NT_FILE note names (from this machine's disk; see
/// docs/fuzzing.md), walk the interpreter, build the report, render it in every format; then
/// the same with `--native-all --locals` (every thread's native stack unwound, every frame's
/// variables and their reprs read).
pub fn analyze(data: &[u8]) {
    for more in [false, true] {
        analyze_with(data, more);
    }
}

fn analyze_with(data: &[u8], more: bool) {
    let data = pycore::input::MappedFile::from_vec(data.to_vec());
    let options = pycore::Options {
        core: PathBuf::from("fuzz-input"),
        native_all: more,
        locals: more,
        ..Default::default()
    };
    let Ok(report) = pycore::analyze_data(data, &options) else {
        return;
    };
    let mut out = Vec::new();
    pycore::render::text::write(&report, &mut out, true).expect("text to a Vec");
    out.clear();
    pycore::render::json::write(&report, &mut out).expect("json to a Vec");
    out.clear();
    pycore::render::table::write(&report, &mut out).expect("table to a Vec");
    out.clear();
    pycore::render::markdown::write(&report, &mut out).expect("markdown to a Vec");
}
