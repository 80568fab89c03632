//! The build shapes a layout table describes.

/// Which build shape a table describes: object header sizes differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Ordinary release build (GIL, no `Py_TRACE_REFS`).
    Release,
    /// `--with-pydebug` build (≤3.12 adds `_ob_next`/`_ob_prev` to every object header).
    Debug,
    /// `--disable-gil` build (PEP 703): larger object header, per-thread bytecode.
    FreeThreaded,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shape::Release => "release",
            Shape::Debug => "debug",
            Shape::FreeThreaded => "free-threaded",
        })
    }
}
