//! Interpreters and thread states: `_PyRuntime.interpreters.head` → `PyInterpreterState.next`,
//! each with its `tstate_head` (`threads.head` from 3.12) → `PyThreadState.next`
//! (Include/internal/pycore_runtime.h, pycore_interp.h, Include/cpython/pystate.h).

use std::collections::HashSet;

use super::field::{Field, Ptr};
use super::objects::{ObjectError, ObjectResult, Objects};
use crate::memory::Memory;
use crate::warning::{Warning, WarningKind};

/// More interpreters or threads than this means the list is corrupt.
const MAX_INTERPRETERS: usize = 256;
const MAX_THREADS: usize = 1 << 16;

/// One `PyThreadState`, before its frames are read.
#[derive(Debug, Clone)]
pub struct ThreadState {
    pub address: u64,
    pub interpreter: u64,
    /// `thread_id`: the thread's `pthread_t`.
    pub thread_id: u64,
    /// `native_thread_id` (3.8+): the kernel TID.
    pub native_thread_id: Option<u64>,
    /// Without `native_thread_id`: the TID glibc keeps in the thread's `struct pthread` (which
    /// `pthread_t` points to), when it reads as one.
    pub pthread_tid: Option<u64>,
}

/// Where glibc keeps the kernel TID in `struct pthread` (nptl/descr.h: `tid` after the header
/// union, which holds `tcbhead_t` on x86_64 (TLS_TCB_AT_TP) and 24 words on aarch64
/// (TLS_DTV_AT_TP), and `list_t list`). Unlike the thread pointer, which equals `pthread_t` on
/// x86_64 but lies `sizeof(struct pthread)` past it on aarch64 (0x740 in glibc 2.36, 0x720 in
/// 2.41), this place holds in every glibc release these cores come from; checked by running
/// `pthread_self()` against `gettid()` (glibc 2.36, 2.41) and by tests/aarch64.rs, whose 3.9 row
/// (glibc 2.31) is joined this way.
pub fn glibc_tid_offset(arch: crate::core::Arch) -> u64 {
    match arch {
        crate::core::Arch::X86_64 => 0x2d0,
        crate::core::Arch::Aarch64 => 0xd0,
    }
}

/// Every thread state of every interpreter reachable from `first_interpreter`, and a warning
/// for each list that had to be cut.
pub fn thread_states<M: Memory>(
    objects: &Objects<'_, M>,
    first_interpreter: u64,
) -> (Vec<ThreadState>, Vec<Warning>) {
    let layout = objects.layout;
    let mut states = Vec::new();
    let mut warnings = Vec::new();
    let interpreters = walk_list(
        objects,
        first_interpreter,
        layout.interp.next,
        MAX_INTERPRETERS,
    );
    if let Some(problem) = interpreters.problem {
        warnings.push(Warning::new(
            WarningKind::InterpreterList,
            format!("interpreter list: {problem}"),
        ));
    }
    for interpreter in interpreters.items {
        let head = match objects.read(interpreter, layout.interp.threads_head) {
            Ok(head) => head,
            Err(e) => {
                warnings.push(Warning::new(
                    WarningKind::ThreadList,
                    format!("interpreter at {interpreter:#x}: {e}"),
                ));
                continue;
            }
        };
        // One budget for all interpreters: corrupt lists may share their nodes.
        let budget = MAX_THREADS.saturating_sub(states.len());
        let threads = walk_list(objects, head, layout.tstate.next, budget);
        if let Some(problem) = threads.problem {
            warnings.push(Warning::new(
                WarningKind::ThreadList,
                format!("thread list of interpreter {interpreter:#x}: {problem}"),
            ));
        }
        for address in threads.items {
            match read_thread_state(objects, address, interpreter) {
                Ok(state) => states.push(state),
                Err(e) => warnings.push(Warning::new(
                    WarningKind::ThreadStateUnreadable,
                    format!("thread state at {address:#x}: {e}"),
                )),
            }
        }
    }
    (states, warnings)
}

fn read_thread_state<M: Memory>(
    objects: &Objects<'_, M>,
    address: u64,
    interpreter: u64,
) -> ObjectResult<ThreadState> {
    let layout = objects.layout;
    let thread_id = objects.read(address, layout.tstate.thread_id)?;
    let native_thread_id = match layout.tstate.native_thread_id {
        Some(field) => Some(objects.read(address, field)?),
        None => None,
    };
    // Read only where it is needed (and where `pthread_t` may point at a `struct pthread`).
    let pthread_tid = match native_thread_id {
        None if thread_id != 0 => thread_id
            .checked_add(glibc_tid_offset(layout.arch))
            .and_then(|at| objects.memory.read_i32(at).ok())
            .filter(|tid| *tid > 0)
            .map(|tid| tid as u64),
        _ => None,
    };
    Ok(ThreadState {
        address,
        interpreter,
        thread_id,
        native_thread_id,
        pthread_tid,
    })
}

struct Walked {
    items: Vec<u64>,
    problem: Option<String>,
}

/// Follow a NULL-terminated singly linked list through the pointer at `next_offset`.
fn walk_list<M: Memory>(
    objects: &Objects<'_, M>,
    head: u64,
    next: Field<Ptr>,
    limit: usize,
) -> Walked {
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut node = head;
    while node != 0 {
        if !seen.insert(node) {
            return Walked {
                items,
                problem: Some(format!("loops back to {node:#x}")),
            };
        }
        if items.len() == limit {
            return Walked {
                items,
                problem: Some(format!("longer than {limit} entries")),
            };
        }
        items.push(node);
        match objects.read(node, next) {
            Ok(next) => node = next,
            Err(e) => {
                return Walked {
                    items,
                    problem: Some(e.to_string()),
                }
            }
        }
    }
    Walked {
        items,
        problem: None,
    }
}

/// `PyInterpreterState.id`, where the version has one (3.7+).
pub fn interpreter_id<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
) -> ObjectResult<Option<i64>> {
    let Some(field) = objects.layout.interp.id else {
        return Ok(None);
    };
    Ok(Some(objects.read(interpreter, field)?))
}

/// What can be told about the GIL of one interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gil {
    /// The thread state at this address holds it.
    HeldBy(u64),
    /// Nobody holds it.
    Free,
    /// A free-threaded build running without a GIL.
    Disabled,
    Unknown,
}

impl Gil {
    pub fn from_holder(holder: u64) -> ObjectResult<Gil> {
        Ok(if holder == 0 {
            Gil::Free
        } else {
            Gil::HeldBy(holder)
        })
    }

    /// Whether the thread state at `tstate` holds the GIL; `None` when there is no GIL or it
    /// cannot be told.
    pub fn held_by(&self, tstate: u64) -> Option<bool> {
        match self {
            Gil::HeldBy(holder) => Some(*holder == tstate),
            Gil::Free => Some(false),
            Gil::Disabled | Gil::Unknown => None,
        }
    }
}

/// The GIL of `interpreter`.
///
/// 3.7–3.11: `_PyRuntime.gilstate.tstate_current` (NULL while no thread holds it).
/// 3.12+: `interp->ceval.gil` points to `struct _gil_runtime_state`; its `last_holder` holds it
/// while `locked` is set; free-threaded builds run without it unless `enabled`
/// (Include/internal/pycore_gil.h).
pub fn gil_state<M: Memory>(
    objects: &Objects<'_, M>,
    runtime: u64,
    interpreter: u64,
) -> ObjectResult<Gil> {
    let layout = objects.layout;
    if let Some(field) = layout.runtime.gilstate_tstate_current {
        return Gil::from_holder(objects.read(runtime, field)?);
    }
    let (Some(gil_field), Some(locked), Some(last_holder)) = (
        layout.interp.ceval_gil,
        layout.gil.locked,
        layout.gil.last_holder,
    ) else {
        return Err(ObjectError::Invalid("layout has no GIL fields".into()));
    };
    let gil = objects.read(interpreter, gil_field)?;
    if gil == 0 {
        return Ok(Gil::Unknown);
    }
    if let Some(enabled) = layout.gil.enabled {
        if objects.read(gil, enabled)? == 0 {
            return Ok(Gil::Disabled);
        }
    }
    if objects.read(gil, locked)? == 0 {
        return Ok(Gil::Free);
    }
    Gil::from_holder(objects.read(gil, last_holder)?)
}
