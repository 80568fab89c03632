//! One frame as the report holds it (Python or native) and a Python frame's variables: plain,
//! serialisable data, below every layer like [`crate::warning`]. The Python
//! walker builds these directly (`python::Frame` is this type), so a 100,000-frame stack is
//! one array moved into the report, not a second one it is copied into.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameReport {
    /// The names are shared with every other frame of the same code object.
    pub function: Arc<str>,
    pub qualname: Option<Arc<str>>,
    pub file: Arc<str>,
    pub line: Option<u32>,
    pub first_line: u32,
    /// 3.11+: the instruction's last line and its columns (0-based UTF-8 byte offsets into the
    /// source lines), as `code.co_positions()` gives them; null before 3.11 or when unknown.
    #[serde(default)]
    pub end_line: Option<u32>,
    #[serde(default)]
    pub column: Option<u32>,
    #[serde(default)]
    pub end_column: Option<u32>,
    /// The source line, when the file could be read (see `--source-root`).
    pub source: Option<Arc<str>>,
    /// The `~~~^^^` line under `source` that marks the instruction's columns, as that version's
    /// tracebacks draw it (`src/anchors.rs`; text formats only; JSON has the columns).
    #[serde(skip)]
    pub markers: Option<Arc<str>>,
    /// Id of the interpreter that runs it.
    pub interpreter: Option<i64>,
    /// `python` or `native` (native frames come with `--native`/`--native-all`).
    pub kind: FrameKind,
    /// The outermost Python frame of one interpreter-loop call (`_PyEval_EvalFrameDefault`/`PyEval_EvalFrameEx`): every frame ≤3.10; 3.11's `is_entry` frames; 3.12+ the frame before a C-stack entry shim and the thread's last frame.
    #[serde(skip)]
    pub entry: bool,
    /// A native frame's address, module, offset (flattened into the frame; boxed: most
    /// frames are Python's, and a 100,000-frame thread should not carry 80 empty bytes each).
    #[serde(flatten)]
    pub native: Option<Box<NativeFrameReport>>,
    /// With `--locals`: the frame's bound variables, parameters first, in the code object's
    /// order (absent without `--locals`; empty, with a warning, when they could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locals: Option<Vec<LocalReport>>,
}

impl FrameReport {
    /// Whether `other` runs at this frame's place (file, line, function): the repeats of a
    /// recursion, which the text formats fold (`render::fold_repeats`) and whose variables the
    /// walker then need not read.
    pub fn same_place(&self, other: &FrameReport) -> bool {
        self.line == other.line
            && same_text(&self.file, &other.file)
            && same_text(&self.function, &other.function)
            && match (&self.qualname, &other.qualname) {
                (Some(a), Some(b)) => same_text(a, b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

/// Whether two shared strings are equal, the pointers compared first: a recursion's frames share
/// their code object's strings. (`Arc<str>`'s `==` compares the bytes: std checks the pointers
/// first only for sized types.)
pub fn same_text(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// One bound variable of a Python frame (`--locals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalReport {
    pub name: Arc<str>,
    /// `argument`, `local`, `cell` or `free`.
    pub kind: LocalKind,
    /// The value's type `__name__` (`tp_name` after its last dot); null when unreadable.
    #[serde(rename = "type")]
    pub type_name: Option<Arc<str>>,
    /// As Python's `repr()` shows it, bounded (docs/json-schema.md, "Locals").
    pub repr: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    #[default]
    Python,
    Native,
}

/// The native half of a `frames` entry (flattened into it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeFrameReport {
    /// `0x…`: the pc of the innermost frame (and of a frame a signal interrupted), the return
    /// address of the others; an inlined entry has its containing frame's address.
    pub address: String,
    /// The mapped file's path as the core recorded it (null: no file mapped there).
    pub module: Option<String>,
    /// `0x…`: the address in the module's own (link-time) addresses, as `addr2line -e MODULE`
    /// takes it (for callers, of the return address).
    pub offset: Option<String>,
    /// A call the compiler inlined: its own entry, before the frame it was inlined into.
    pub inlined: bool,
    /// A signal trampoline (`__restore_rt`): the frame after it was interrupted by a signal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signal_frame: bool,
}

/// What a variable is to its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalKind {
    Argument,
    Local,
    Cell,
    Free,
}
