//! asyncio's event loops and their tasks in the report (docs/json-schema.md, `asyncio`).

use std::sync::Arc;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::python::asyncio::{EventLoop, Task, TaskState};
use crate::python::Frame;

/// One event loop (per interpreter) and its tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AsyncioLoopReport {
    /// TID of the thread running the loop; null when no thread runs it (or it is not found).
    pub thread: Option<i32>,
    /// The interpreter's id (0: the main one), when known.
    pub interpreter: Option<i64>,
    pub tasks: Vec<TaskReport>,
}

/// One task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskReport {
    pub name: String,
    /// "pending", "done" or "cancelled"; null when unreadable.
    pub state: Option<String>,
    /// Innermost first: the coroutine the task is suspended in, then each one awaiting it, up
    /// to the task's own coroutine.
    pub stack: Vec<TaskFrameReport>,
    /// Names of the tasks it waits for: directly, or through `asyncio.gather`.
    pub awaiting: Vec<String>,
    /// What it waits on when that is no task: `asyncio.Lock`, `asyncio.Event`,
    /// `asyncio.sleep`, ... (the asyncio primitive its innermost coroutine runs in), or the
    /// type of the future it waits for (`_asyncio.Future`); null when it waits on nothing.
    pub waiting_on: Option<String>,
}

/// One suspended coroutine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskFrameReport {
    pub function: Arc<str>,
    pub qualname: Option<Arc<str>>,
    pub file: Arc<str>,
    pub line: Option<u32>,
}

impl From<Frame> for TaskFrameReport {
    fn from(frame: Frame) -> Self {
        TaskFrameReport {
            function: frame.function,
            qualname: frame.qualname,
            file: frame.file,
            line: frame.line,
        }
    }
}

/// The report's loops: `tid_of` gives the TID of a `pthread_t`, `interpreter_id` the id of an
/// interpreter's address.
pub(super) fn loop_reports(
    loops: Vec<EventLoop>,
    tid_of: &HashMap<u64, i32>,
    interpreter_id: &HashMap<u64, Option<i64>>,
) -> Vec<AsyncioLoopReport> {
    loops
        .into_iter()
        .map(|event_loop| {
            let names: HashMap<u64, String> = event_loop
                .tasks
                .iter()
                .map(|t| (t.address, t.name.clone()))
                .collect();
            AsyncioLoopReport {
                thread: event_loop
                    .thread_ident
                    .and_then(|ident| tid_of.get(&ident).copied()),
                interpreter: interpreter_id
                    .get(&event_loop.interpreter)
                    .copied()
                    .flatten(),
                tasks: event_loop
                    .tasks
                    .into_iter()
                    .map(|task| task_report(task, &names))
                    .collect(),
            }
        })
        .collect()
}

fn task_report(task: Task, names: &HashMap<u64, String>) -> TaskReport {
    TaskReport {
        name: task.name,
        state: task.state.map(|state| {
            match state {
                TaskState::Pending => "pending",
                TaskState::Done => "done",
                TaskState::Cancelled => "cancelled",
            }
            .to_string()
        }),
        stack: task.stack.into_iter().map(TaskFrameReport::from).collect(),
        // A task of another loop is named too (by address when it is in none).
        awaiting: task
            .awaiting
            .iter()
            .map(|a| names.get(a).cloned().unwrap_or_else(|| format!("{a:#x}")))
            .collect(),
        waiting_on: task.waiting_on,
    }
}
