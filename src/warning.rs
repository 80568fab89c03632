//! Warnings: what makes a report partial (exit code 1), each with a stable kind that scripts and
//! tests match on, and a message for people. In JSON: `{"kind": "frame-chain-loop",
//! "message": "..."}` (docs/json-schema.md).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// The core file is shorter than its headers say.
    CoreTruncated,
    /// The core has more thread notes than pycore reads.
    TooManyThreads,
    /// The executable is missing, but libpython holds the interpreter.
    ExecutableMissing,
    /// A binary could not be shown to be the build the process ran (no build-id in the core).
    BinaryUnverified,
    /// A candidate binary was skipped (unparsable, or another build).
    BinarySkipped,
    /// A binary of another build is used because of `--allow-mismatch`.
    BinaryMismatchAllowed,
    /// A binary missing here could not be fetched from the debuginfod servers.
    DebuginfodFailed,
    /// The list of interpreters is cut (a loop, too long, unreadable).
    InterpreterList,
    /// An interpreter's state or list of thread states is unreadable or cut.
    ThreadList,
    /// A thread state is unreadable.
    ThreadStateUnreadable,
    /// A Python thread state matches no thread of the core.
    ThreadStateWithoutThread,
    /// Thread names (`threading._active`) are unreadable.
    ThreadNames,
    /// Who holds the GIL cannot be told.
    GilUnknown,
    /// Whether a garbage collection runs cannot be told.
    GcUnknown,
    /// An interpreter's id is unreadable.
    InterpreterId,
    /// `_Py_DebugOffsets` is unreadable, or disagrees with pycore's table.
    DebugOffsets,
    /// A frame chain loops.
    FrameChainLoop,
    /// A stack is deeper than pycore reads.
    StackTooDeep,
    /// A stack stops at unreadable memory.
    StackCut,
    /// A frame reads as zeros (memory the core lost).
    FrameZeroed,
    /// The frames of all threads exceed what a real process has: the core is corrupt.
    FrameBudget,
    /// A code object is unreadable (its frame is a placeholder).
    CodeObjectUnreadable,
    /// A frame's variables are unreadable (`--locals`): its code object's names, or the budget
    /// of locals over all frames is spent.
    LocalsUnreadable,
    /// The exception a thread handles is unreadable.
    ExceptionUnreadable,
    /// A native stack stops early (unreadable stack, a loop, no unwind data).
    NativeStackCut,
    /// The interpreter-loop frames and the runs of Python frames do not pair up.
    NativeMerge,
    /// A mapped module is not on this machine (or is another build): its frames are unnamed.
    NativeModuleMissing,
    /// A packed core lacks what was asked (`--locals`, native stacks): it was packed without it.
    PackedWithout,
    /// Greenlets could not all be found or read (the collector's lists are cut or absent, a
    /// greenlet's state is unrecognised, or its thread cannot be told).
    Greenlets,
    /// asyncio is loaded but pycore cannot read this version's tasks.
    AsyncioUnsupported,
    /// asyncio's tasks are partly unreadable: a registry, a task, an await chain (cut, looping).
    AsyncioTasks,
    /// The core records no mapped files (qemu-user's, or a kernel core that lost NT_FILE): they
    /// were found from the auxv, the local binaries and the dynamic loader's list in memory.
    MappedFilesRecovered,
    /// The core lacks facts a kernel core holds (NT_SIGINFO, NT_ARM_TLS): what cannot be told.
    CoreFactsMissing,
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

impl Warning {
    pub fn new(kind: WarningKind, message: impl Into<String>) -> Warning {
        Warning {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
