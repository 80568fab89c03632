//! asyncio's tasks: every task of every event loop, what coroutines each is suspended in and
//! what it waits for.
//!
//! Where the tasks are (Lib/asyncio/tasks.py, Modules/_asynciomodule.c): `asyncio.tasks`
//! keeps them in `_all_tasks` (3.8–3.11, a `weakref.WeakSet` that `_asyncio` shares), or in
//! `_scheduled_tasks` (a WeakSet) and `_eager_tasks` (a set) (3.12+; from 3.14 they hold only
//! tasks that are not `_asyncio`'s). The walk looks for each of these names, whatever the
//! version. 3.14+ links `_asyncio`'s tasks into lists headed in each thread state and in the
//! interpreter (`asyncio_tasks_head`), which the walk follows when the layout has them. A task
//! is `_asyncio`'s C `TaskObj` (its members from the layout) or a pure-Python `asyncio.Task`
//! (its `_coro`, `_state`, ... attributes). Versions whose C task the layout does not describe
//! get a warning instead.
//!
//! A task's stack is its coroutine, then what each coroutine awaits (`_PyGen_yf`: the top of
//! a suspended frame's value stack), innermost first. What a task waits for is its
//! `_fut_waiter`: another task, a `_GatheringFuture` (its `_children`), or a plain future.

use std::collections::{HashMap, HashSet};

use super::dicts::dict_get_str;
use super::dicts::instance_attribute;
use super::frames::{Frame, FrameWalker};
use super::locals::{Family, LocalsReader};
use super::names::{module_attribute, module_dict};
use super::objects::{ObjectError, ObjectResult, Objects};
use crate::memory::Memory;
use crate::warning::{Warning, WarningKind};

/// More tasks than any real program keeps alive: the registry is corrupt past this.
pub const MAX_TASKS: usize = 100_000;
/// Coroutines awaiting each other in one task; deeper chains are cut with a warning.
pub const MAX_AWAIT_DEPTH: usize = 10_000;
/// Futures nested in gathers looked through for one task.
const MAX_GATHER_DEPTH: usize = 16;
/// Set tables larger than this are corrupt.
const MAX_SET_MASK: u64 = 1 << 20;
/// Stack slots a frame can have (a code object's `co_stacksize` is far below).
const MAX_STACK_SLOTS: i64 = 1 << 20;

/// Where asyncio's module keeps its tasks, in every version that has each name.
const REGISTRIES: [&str; 3] = ["_all_tasks", "_scheduled_tasks", "_eager_tasks"];

/// A task's state (`fut_state`, Modules/_asynciomodule.c; `_state` of Lib/asyncio/futures.py).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Cancelled,
    Done,
}

/// One task.
#[derive(Debug, Clone)]
pub struct Task {
    pub address: u64,
    pub name: String,
    pub state: Option<TaskState>,
    /// Innermost first: the coroutine it is suspended in, then each one awaiting it, up to the
    /// task's own coroutine.
    pub stack: Vec<Frame>,
    /// The tasks it waits for (addresses of tasks of the same walk).
    pub awaiting: Vec<u64>,
    /// What it waits on when that is no task: `asyncio.Lock`, `asyncio.sleep`, a future's type.
    pub waiting_on: Option<String>,
}

/// The tasks of one event loop.
#[derive(Debug, Clone)]
pub struct EventLoop {
    pub interpreter: u64,
    pub address: u64,
    /// The `pthread_t` of the thread running it (`BaseEventLoop._thread_id`), if it runs.
    pub thread_ident: Option<u64>,
    pub tasks: Vec<Task>,
}

/// A coroutine's frame as read, and where it is.
struct Suspended {
    frame: Frame,
    address: u64,
}

enum Kind {
    /// `_asyncio.Task` or a subclass.
    Native,
    /// Lib/asyncio/tasks.py's `Task`.
    Python,
}

/// Every event loop's tasks in one interpreter; empty when asyncio was never imported.
pub fn event_loops<'a, M: Memory>(
    objects: &'a Objects<'a, M>,
    walker: &mut FrameWalker<'a, M>,
    interpreter: u64,
    thread_states: &[u64],
    warnings: &mut Vec<Warning>,
) -> Vec<EventLoop> {
    // The cheap check first: no `asyncio.tasks` in sys.modules, no walk.
    let tasks_module = match module_dict(objects, interpreter, "asyncio.tasks") {
        Ok(Some(tasks_module)) => tasks_module,
        Ok(None) => return Vec::new(),
        Err(error) => {
            warnings.push(Warning::new(
                WarningKind::AsyncioTasks,
                format!("sys.modules['asyncio.tasks'] is unreadable: {error}"),
            ));
            return Vec::new();
        }
    };
    let mut registries = Vec::new();
    for name in REGISTRIES {
        match dict_get_str(objects, tasks_module, name) {
            Ok(Some(registry)) => registries.push((name, registry)),
            Ok(None) => {}
            Err(error) => warnings.push(Warning::new(
                WarningKind::AsyncioTasks,
                format!("asyncio.tasks.{name} is unreadable: {error}"),
            )),
        }
    }
    // 3.14+: native tasks are in lists headed in each thread state and in the interpreter.
    let layout = objects.layout;
    let mut lists = Vec::new();
    if let (Some(node), Some(in_thread), Some(in_interpreter)) = (
        layout.asyncio_task.node,
        layout.tstate.asyncio_tasks_head,
        layout.interp.asyncio_tasks_head,
    ) {
        for tstate in thread_states {
            lists.push((tstate.wrapping_add(u64::from(in_thread)), node));
        }
        lists.push((interpreter.wrapping_add(u64::from(in_interpreter)), node));
    }
    if registries.is_empty() && lists.is_empty() {
        return Vec::new();
    }
    // The task classes by address: `_asyncio`'s static types keep their names in the
    // module's read-only data, which cores leave out.
    let class = |module: &str, name: &str| {
        module_attribute(objects, interpreter, module, name)
            .ok()
            .flatten()
    };
    let mut reader = Reader {
        objects,
        walker,
        kinds: HashMap::new(),
        none: None,
        native_task: class("_asyncio", "Task"),
        python_task: dict_get_str(objects, tasks_module, "_PyTask")
            .ok()
            .flatten(),
        native_future: class("_asyncio", "Future"),
        locals: LocalsReader::new(objects),
        warnings,
    };
    if objects.layout.asyncio_task.coro.is_none() {
        reader.warnings.push(Warning::new(
            WarningKind::AsyncioUnsupported,
            format!(
                "asyncio tasks not supported on this version (CPython {}.{})",
                objects.layout.major, objects.layout.minor
            ),
        ));
        return Vec::new();
    }
    let mut addresses = Vec::new();
    let mut seen = HashSet::new();
    for (head, node) in lists {
        match reader.linked_tasks(head, node, MAX_TASKS.saturating_sub(addresses.len())) {
            Ok(tasks) => {
                for task in tasks {
                    if seen.insert(task) {
                        addresses.push(task);
                    }
                }
            }
            Err(error) => reader.warn(format!(
                "the list of native tasks at {head:#x} is unreadable: {error}"
            )),
        }
    }
    for (name, registry) in registries {
        match reader.registry_members(registry) {
            Ok(members) => {
                for task in members {
                    if addresses.len() >= MAX_TASKS {
                        reader.warn(format!(
                            "more than {MAX_TASKS} tasks: the rest are left out"
                        ));
                        break;
                    }
                    if seen.insert(task) {
                        addresses.push(task);
                    }
                }
            }
            Err(error) => reader.warn(format!("asyncio.tasks.{name} is unreadable: {error}")),
        }
    }
    let mut loops: Vec<EventLoop> = Vec::new();
    for address in addresses {
        let Some(kind) = reader.kind(address) else {
            continue;
        };
        match reader.task(address, &kind) {
            Ok((event_loop, task)) => match loops.iter_mut().find(|l| l.address == event_loop) {
                Some(found) => found.tasks.push(task),
                None => {
                    let thread_ident = reader.thread_ident(event_loop);
                    loops.push(EventLoop {
                        interpreter,
                        address: event_loop,
                        thread_ident,
                        tasks: vec![task],
                    });
                }
            },
            Err(error) => reader.warn(format!("the task at {address:#x} is unreadable: {error}")),
        }
    }
    // Only tasks of the walk are named as awaited.
    let known: HashSet<u64> = loops
        .iter()
        .flat_map(|l| l.tasks.iter().map(|t| t.address))
        .collect();
    for task in loops.iter_mut().flat_map(|l| l.tasks.iter_mut()) {
        task.awaiting.retain(|a| known.contains(a));
    }
    loops
}

struct Reader<'r, 'a, M: Memory> {
    objects: &'a Objects<'a, M>,
    walker: &'r mut FrameWalker<'a, M>,
    /// Type object → whether its instances are tasks: `Some(true)` native, `Some(false)`
    /// pure-Python.
    kinds: HashMap<u64, Option<bool>>,
    /// The `None` object, once seen.
    none: Option<u64>,
    /// `_asyncio.Task`, Lib/asyncio/tasks.py's `Task` (`_PyTask`), `_asyncio.Future`.
    native_task: Option<u64>,
    python_task: Option<u64>,
    native_future: Option<u64>,
    /// Reads the variables of the few asyncio frames that hold what a task waits for.
    locals: LocalsReader<'a, M>,
    warnings: &'r mut Vec<Warning>,
}

impl<'a, M: Memory> Reader<'_, 'a, M> {
    fn warn(&mut self, message: String) {
        self.warnings
            .push(Warning::new(WarningKind::AsyncioTasks, message));
    }

    /// Whether `object` is `None` (remembering `None`'s address).
    fn is_none(&mut self, object: u64) -> bool {
        if object == 0 || Some(object) == self.none {
            return true;
        }
        if self.objects.type_name(object).ok().as_deref() == Some("NoneType") {
            self.none = Some(object);
            return true;
        }
        false
    }

    /// The objects a registry holds: a `set`'s keys, or a `WeakSet`'s live referents.
    fn registry_members(&mut self, registry: u64) -> ObjectResult<Vec<u64>> {
        if self.objects.type_name(registry)? == "set" {
            return self.set_keys(registry);
        }
        let Some(data) = instance_attribute(self.objects, registry, "data")? else {
            return Err(ObjectError::Invalid("a WeakSet without `data`".into()));
        };
        let mut members = Vec::new();
        let field = self.objects.layout.weakref.wr_object;
        for reference in self.set_keys(data)? {
            let Ok(referent) = self.objects.read(reference, field) else {
                continue;
            };
            if !self.is_none(referent) {
                members.push(referent);
            }
        }
        Ok(members)
    }

    /// The tasks of a list of native tasks (3.14+): `llist_node`s from `head` through `next`,
    /// each `node` bytes into its `TaskObj` (Include/internal/pycore_llist.h). At most `limit`;
    /// a list that does not come back to its head is cut with a warning.
    fn linked_tasks(&mut self, head: u64, node: u32, limit: usize) -> ObjectResult<Vec<u64>> {
        let mut tasks = Vec::new();
        let mut seen = HashSet::new();
        let mut current = self.objects.pointer(head)?;
        while current != head {
            if current == 0 {
                // A list never used: its head is still zeroed.
                break;
            }
            if tasks.len() >= limit || !seen.insert(current) {
                self.warn(format!(
                    "the list of native tasks at {head:#x} does not come back to its head; cut after {} tasks",
                    tasks.len()
                ));
                break;
            }
            tasks.push(current.wrapping_sub(u64::from(node)));
            current = self.objects.pointer(current)?;
        }
        Ok(tasks)
    }

    /// The live keys of a set's table (dummies are no tasks, and are dropped later).
    fn set_keys(&self, set: u64) -> ObjectResult<Vec<u64>> {
        let objects = self.objects;
        let (size, keys) = super::dicts::set_keys(objects, set, MAX_SET_MASK)?;
        // Against the table's size, not the keys found: a set caught while adding counts the
        // key before it writes it.
        let used = objects.read(set, objects.layout.set.used)?;
        if used < 0 || used as u64 > size {
            return Err(ObjectError::Invalid(format!(
                "set at {set:#x} claims {used} entries"
            )));
        }
        Ok(keys)
    }

    /// Whether `object` is a task: `_asyncio.Task` or Lib/asyncio/tasks.py's `Task` (`_PyTask`
    /// once `_asyncio` replaced it), or a subclass of either.
    fn kind(&mut self, object: u64) -> Option<Kind> {
        if object == 0 {
            return None;
        }
        let type_object = self.objects.type_of(object).ok()?;
        let kind = match self.kinds.get(&type_object) {
            Some(kind) => *kind,
            None => {
                let kind = self.type_kind(type_object);
                self.kinds.insert(type_object, kind);
                kind
            }
        };
        match kind? {
            true => Some(Kind::Native),
            false => Some(Kind::Python),
        }
    }

    fn type_kind(&self, type_object: u64) -> Option<bool> {
        let mut current = type_object;
        for _ in 0..64 {
            if current == 0 {
                return None;
            }
            if Some(current) == self.native_task {
                return Some(true);
            }
            if Some(current) == self.python_task {
                return Some(false);
            }
            current = self
                .objects
                .read(current, self.objects.layout.type_object.tp_base)
                .ok()?;
        }
        None
    }

    /// A task's event loop and what it is.
    fn task(&mut self, address: u64, kind: &Kind) -> ObjectResult<(u64, Task)> {
        let objects = self.objects;
        let fields = &objects.layout.asyncio_task;
        // Lib/asyncio/futures.py keeps defaults (`_state = _PENDING`) in the class: an
        // attribute the instance lacks comes from its type or a base.
        let attribute = |name: &str| -> ObjectResult<u64> {
            if let Some(value) = instance_attribute(objects, address, name)? {
                return Ok(value);
            }
            let mut class = objects.type_of(address)?;
            for _ in 0..32 {
                if class == 0 {
                    break;
                }
                let dict = objects.read(class, objects.layout.type_object.tp_dict)?;
                if dict != 0 {
                    if let Some(value) = dict_get_str(objects, dict, name)? {
                        return Ok(value);
                    }
                }
                class = objects.read(class, objects.layout.type_object.tp_base)?;
            }
            Err(ObjectError::Invalid(format!("the task has no {name}")))
        };
        let (event_loop, state, coro, waiter, name) = match kind {
            Kind::Native => {
                let state = objects.read_some(address, fields.state, "TaskObj.task_state")?;
                let state = match state {
                    0 => Some(TaskState::Pending),
                    1 => Some(TaskState::Cancelled),
                    2 => Some(TaskState::Done),
                    _ => None,
                };
                (
                    objects.read_some(address, fields.event_loop, "TaskObj.task_loop")?,
                    state,
                    objects.read_some(address, fields.coro, "TaskObj.task_coro")?,
                    objects.read_some(address, fields.fut_waiter, "TaskObj.task_fut_waiter")?,
                    objects.read_some(address, fields.name, "TaskObj.task_name")?,
                )
            }
            Kind::Python => {
                let state = match objects.unicode(attribute("_state")?)?.as_str() {
                    "PENDING" => Some(TaskState::Pending),
                    "CANCELLED" => Some(TaskState::Cancelled),
                    "FINISHED" => Some(TaskState::Done),
                    _ => None,
                };
                (
                    attribute("_loop")?,
                    state,
                    attribute("_coro")?,
                    attribute("_fut_waiter")?,
                    attribute("_name")?,
                )
            }
        };
        let name = self.task_name(name);
        let suspended = self.coroutine_stack(coro, &name);
        let innermost = suspended.first().map(|s| s.address);
        let mut task = Task {
            address,
            name,
            state,
            stack: suspended.into_iter().map(|s| s.frame).collect(),
            awaiting: Vec::new(),
            waiting_on: None,
        };
        if !self.is_none(waiter) {
            self.waits_for(waiter, &mut task, 0);
        }
        if let Some(frame) = innermost.filter(|_| task.awaiting.is_empty()) {
            self.held_in_variables(frame, &mut task);
        }
        Ok((event_loop, task))
    }

    /// The tasks that asyncio's own coroutines wait for through a variable: `wait_for`'s
    /// inner task (`fut`, ≤3.11: the task itself waits on a plain future) and a `TaskGroup`'s
    /// tasks (`self._tasks` in `__aexit__`/`_aexit`), when the task's innermost coroutine is
    /// one of them (Lib/asyncio/tasks.py, taskgroups.py).
    fn held_in_variables(&mut self, frame: u64, task: &mut Task) {
        let Some(innermost) = task.stack.first() else {
            return;
        };
        if !innermost.file.replace('\\', "/").contains("/asyncio/") {
            return;
        }
        let qualname = innermost
            .qualname
            .clone()
            .unwrap_or_else(|| innermost.function.clone());
        let (variable, group) = match &*qualname {
            "wait_for" => ("fut", false),
            "TaskGroup.__aexit__" | "TaskGroup._aexit" => ("self", true),
            _ => return,
        };
        let layout = self.objects.layout;
        let (family, code) = match (layout.frame.f_code, layout.iframe.executable) {
            (Some(code), _) => (Family::FrameObject, self.objects.read(frame, code)),
            (None, Some(code)) => (
                Family::InterpreterFrame,
                self.objects.read(frame, code).map(|c| c & !0x7),
            ),
            (None, None) => return,
        };
        let found = code.and_then(|code| self.locals.local_object(family, frame, code, variable));
        let object = match found {
            Ok(Some(object)) => object,
            Ok(None) => return,
            Err(error) => {
                self.warn(format!(
                    "task {}: the variable {variable} of {qualname} is unreadable: {error}",
                    task.name
                ));
                return;
            }
        };
        let before = task.awaiting.len();
        if group {
            let members =
                instance_attribute(self.objects, object, "_tasks").and_then(|set| match set {
                    Some(set) => self.set_keys(set),
                    None => Ok(Vec::new()),
                });
            match members {
                Ok(members) => {
                    for member in members {
                        if self.kind(member).is_some() {
                            task.awaiting.push(member);
                        }
                    }
                }
                Err(error) => self.warn(format!(
                    "task {}: its TaskGroup's tasks are unreadable: {error}",
                    task.name
                )),
            }
        } else {
            self.waits_for(object, task, 1);
        }
        if task.awaiting.len() > before {
            task.waiting_on = None;
        }
    }

    /// A task's name: a `str`, or 3.13+'s `int` counter shown as `Task-n`.
    fn task_name(&self, name: u64) -> String {
        if let Ok(text) = self.objects.unicode(name) {
            return text;
        }
        match self.objects.int(name) {
            Ok(number) => format!("Task-{number}"),
            Err(_) => format!("<unreadable name at {name:#x}>"),
        }
    }

    /// What the future `waiter` stands for: a task, the children of a gather, something else.
    fn waits_for(&mut self, waiter: u64, task: &mut Task, depth: usize) {
        if self.kind(waiter).is_some() {
            task.awaiting.push(waiter);
            return;
        }
        let children = instance_attribute(self.objects, waiter, "_children")
            .ok()
            .flatten();
        if let Some(children) = children.filter(|_| depth < MAX_GATHER_DEPTH) {
            match self.list_items(children) {
                Ok(items) => {
                    for child in items {
                        self.waits_for(child, task, depth + 1);
                    }
                }
                Err(error) => self.warn(format!(
                    "task {}: the futures it gathers are unreadable: {error}",
                    task.name
                )),
            }
            return;
        }
        if depth == 0 {
            task.waiting_on = self.waiting_on(waiter, task.stack.first());
        }
    }

    /// A list's items (at most [`MAX_TASKS`]).
    fn list_items(&self, list: u64) -> ObjectResult<Vec<u64>> {
        let objects = self.objects;
        if objects.type_name(list)? != "list" {
            return Err(ObjectError::Invalid(format!("{list:#x} is no list")));
        }
        let size = objects.ob_size(list)?;
        if size < 0 || size as usize > MAX_TASKS {
            return Err(ObjectError::Invalid(format!(
                "the list at {list:#x} claims {size} items"
            )));
        }
        let items = objects.read(list, objects.layout.list.ob_item)?;
        let raw = objects.memory.read_vec(items, size as usize * 8)?;
        Ok(raw
            .chunks_exact(8)
            .filter_map(|item| crate::bytes::u64_at(item, 0))
            .collect())
    }

    /// What a task waits on that is no task: the asyncio primitive its innermost coroutine
    /// runs in (`asyncio.Lock` for `Lock.acquire` in Lib/asyncio/locks.py, `asyncio.sleep`),
    /// else the future's type.
    fn waiting_on(&self, waiter: u64, innermost: Option<&Frame>) -> Option<String> {
        if let Some(frame) = innermost {
            let file = frame.file.replace('\\', "/");
            if file.contains("/asyncio/") {
                let qualname = frame.qualname.as_deref().unwrap_or(&frame.function);
                let owner = qualname.split('.').next().unwrap_or(qualname);
                return Some(format!("asyncio.{owner}"));
            }
        }
        let type_object = self.objects.type_of(waiter).ok()?;
        if Some(type_object) == self.native_future {
            return Some("_asyncio.Future".to_string());
        }
        self.objects.type_object_name(type_object).ok()
    }

    /// The coroutines of a task, innermost first.
    fn coroutine_stack(&mut self, coro: u64, task: &str) -> Vec<Suspended> {
        let mut frames = Vec::new();
        let mut seen = HashSet::new();
        let mut current = coro;
        while current != 0 {
            if frames.len() >= MAX_AWAIT_DEPTH {
                self.warn(format!(
                    "task {task}: more than {MAX_AWAIT_DEPTH} coroutines await each other; cut there"
                ));
                break;
            }
            if !seen.insert(current) {
                self.warn(format!(
                    "task {task}: its await chain loops back to {current:#x}; stopped there"
                ));
                break;
            }
            match self.coroutine(current) {
                Ok(Some((suspended, awaits))) => {
                    frames.push(suspended);
                    current = awaits.unwrap_or(0);
                }
                Ok(None) => break,
                Err(error) => {
                    self.warn(format!(
                        "task {task}: the coroutine at {current:#x} is unreadable: {error}"
                    ));
                    break;
                }
            }
        }
        frames.reverse();
        frames
    }

    /// A coroutine's frame and what it awaits; `None` when `object` is no coroutine or has
    /// finished.
    fn coroutine(&mut self, object: u64) -> ObjectResult<Option<(Suspended, Option<u64>)>> {
        let objects = self.objects;
        let layout = objects.layout;
        // The stack is the chain of coroutines (`cr_await`). It ends at what the innermost one
        // awaits: a future's iterator (`_asyncio`'s `FutureIter`, whose type's name the core
        // may lack, or the generator of Lib/asyncio/futures.py's `Future.__await__`).
        if objects.type_name(object).ok().as_deref() != Some("coroutine") {
            return Ok(None);
        }
        let (frame, awaits) = if let Some(gi_frame) = layout.gen.gi_frame {
            // ≤3.10: a PyFrameObject, NULL once finished.
            let frame = objects.read(object, gi_frame)?;
            if frame == 0 {
                return Ok(None);
            }
            (frame, self.frame_object_top(frame)?)
        } else if let (Some(offset), Some(state), Some(live), Some(suspended)) = (
            layout.gen.gi_iframe,
            layout.gen.gi_frame_state,
            layout.gen_frame_live,
            layout.gen_frame_suspended,
        ) {
            // 3.11+: the embedded frame, live in some states (created, suspended, running),
            // holding what it awaits on its value stack while suspended.
            let state = objects.read(object, state)? as i8;
            let within = |(first, last): (i8, i8)| (first..=last).contains(&state);
            if !within(live) {
                return Ok(None);
            }
            let frame = object.wrapping_add(u64::from(offset));
            let awaits = if within(suspended) {
                self.interpreter_frame_top(frame)?
            } else {
                None
            };
            (frame, awaits)
        } else {
            return Err(ObjectError::Invalid("layout lacks generator fields".into()));
        };
        let mut python_frame = self.walker.one_frame(frame, self.warnings)?;
        if python_frame.qualname.is_none() {
            if let Some(field) = layout.gen.gi_qualname {
                python_frame.qualname = objects
                    .read(object, field)
                    .and_then(|q| objects.unicode(q))
                    .ok()
                    .map(Into::into);
            }
        }
        let awaits = awaits.filter(|a| *a != 0);
        let suspended = Suspended {
            frame: python_frame,
            address: frame,
        };
        Ok(Some((suspended, awaits)))
    }

    /// ≤3.10: the top of a suspended `PyFrameObject`'s value stack: `f_stacktop[-1]` (3.8,
    /// 3.9; NULL while running), `f_valuestack[f_stackdepth - 1]` (3.10).
    fn frame_object_top(&self, frame: u64) -> ObjectResult<Option<u64>> {
        let objects = self.objects;
        let fields = &objects.layout.frame;
        let Some(bottom) = fields.f_valuestack else {
            return Ok(None);
        };
        let bottom = objects.read(frame, bottom)?;
        let top = if let Some(stacktop) = fields.f_stacktop {
            let top = objects.read(frame, stacktop)?;
            if top <= bottom || top - bottom > (MAX_STACK_SLOTS as u64) * 8 {
                return Ok(None);
            }
            top - 8
        } else if let Some(depth) = fields.f_stackdepth {
            let depth = i64::from(objects.read(frame, depth)?);
            if depth <= 0 || depth > MAX_STACK_SLOTS {
                return Ok(None);
            }
            bottom.wrapping_add((depth as u64 - 1) * 8)
        } else {
            return Ok(None);
        };
        Ok(Some(objects.pointer(top)?))
    }

    /// 3.11+: what a suspended `_PyInterpreterFrame` awaits, `gen_awaited_slot` slots below
    /// the top of its value stack (one; two from 3.15): from `localsplus` up to `stacktop`
    /// slots (3.11–3.13), up to `stackpointer` (3.14+, tagged references).
    fn interpreter_frame_top(&self, frame: u64) -> ObjectResult<Option<u64>> {
        let objects = self.objects;
        let fields = &objects.layout.iframe;
        let Some(localsplus) = fields.localsplus else {
            return Ok(None);
        };
        let below = u64::from(objects.layout.gen_awaited_slot).max(1);
        let slot = if let Some(stacktop) = fields.stacktop {
            let depth = i64::from(objects.read(frame, stacktop)?);
            if depth < below as i64 || depth > MAX_STACK_SLOTS {
                return Ok(None);
            }
            frame
                .wrapping_add(u64::from(localsplus))
                .wrapping_add((depth as u64 - below) * 8)
        } else if let Some(pointer) = fields.stackpointer {
            let top = objects.read(frame, pointer)?;
            let bottom = frame.wrapping_add(u64::from(localsplus));
            if top < bottom.wrapping_add(below * 8)
                || top.wrapping_sub(bottom) > (MAX_STACK_SLOTS as u64) * 8
            {
                return Ok(None);
            }
            top - below * 8
        } else {
            return Ok(None);
        };
        Ok(Some(objects.pointer(slot)? & !0x7))
    }

    /// `loop._thread_id`: the `pthread_t` of the thread in `run_forever`, `None` otherwise.
    fn thread_ident(&mut self, event_loop: u64) -> Option<u64> {
        let ident = instance_attribute(self.objects, event_loop, "_thread_id")
            .ok()
            .flatten()?;
        if self.is_none(ident) {
            return None;
        }
        self.objects.int(ident).ok().map(|i| i as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::fake::FakeMemory;
    use crate::python::layout::Layout;
    use crate::python::layouts::ALL;

    const CORO_TYPE: u64 = 0x1000;
    const CODE_TYPE: u64 = 0x2000;
    const SET_TYPE: u64 = 0x3000;
    const CODE: u64 = 0x50_000;

    fn put(buf: &mut [u8], at: u32, value: &[u8]) {
        let at = at as usize;
        buf[at..at + value.len()].copy_from_slice(value);
    }

    fn add_type(memory: &mut FakeMemory, layout: &Layout, at: u64, name: &str) {
        let mut bytes = vec![0u8; 0x400];
        put(
            &mut bytes,
            layout.type_object.tp_name.offset(),
            &(at + 0x300).to_le_bytes(),
        );
        put(&mut bytes, 0x300, name.as_bytes());
        memory.add(at, bytes);
    }

    /// A suspended coroutine at `at` whose value stack's top is `awaits`.
    fn add_coroutine(memory: &mut FakeMemory, layout: &Layout, at: u64, awaits: u64) {
        let mut bytes = vec![0u8; 0x2000];
        put(
            &mut bytes,
            layout.object.ob_type.offset(),
            &CORO_TYPE.to_le_bytes(),
        );
        let frame_at = if let Some(gi_frame) = layout.gen.gi_frame {
            // ≤3.10: a PyFrameObject 0x1000 past the coroutine.
            put(&mut bytes, gi_frame.offset(), &(at + 0x1000).to_le_bytes());
            0x1000u32
        } else {
            let state = layout.gen.gi_frame_state.unwrap();
            let (suspended, _) = layout.gen_frame_suspended.unwrap();
            put(&mut bytes, state.offset(), &suspended.to_le_bytes());
            layout.gen.gi_iframe.unwrap()
        };
        let frame = at + u64::from(frame_at);
        let f = &layout.frame;
        let i = &layout.iframe;
        if let Some(code) = f.f_code {
            put(&mut bytes, frame_at + code.offset(), &CODE.to_le_bytes());
            let bottom = frame + 0x200;
            put(
                &mut bytes,
                frame_at + f.f_valuestack.unwrap().offset(),
                &bottom.to_le_bytes(),
            );
            put(&mut bytes, frame_at + 0x200, &awaits.to_le_bytes());
            if let Some(top) = f.f_stacktop {
                put(
                    &mut bytes,
                    frame_at + top.offset(),
                    &(bottom + 8).to_le_bytes(),
                );
            }
            if let Some(depth) = f.f_stackdepth {
                put(&mut bytes, frame_at + depth.offset(), &1i32.to_le_bytes());
            }
        } else {
            put(
                &mut bytes,
                frame_at + i.executable.unwrap().offset(),
                &CODE.to_le_bytes(),
            );
            let slot = frame_at + i.localsplus.unwrap();
            put(&mut bytes, slot, &awaits.to_le_bytes());
            let below = u64::from(layout.gen_awaited_slot);
            if let Some(top) = i.stacktop {
                put(
                    &mut bytes,
                    frame_at + top.offset(),
                    &(below as i32).to_le_bytes(),
                );
            }
            if let Some(pointer) = i.stackpointer {
                put(
                    &mut bytes,
                    frame_at + pointer.offset(),
                    &(at + u64::from(slot) + 8 * below).to_le_bytes(),
                );
            }
        }
        memory.add(at, bytes);
    }

    fn memory_for(layout: &Layout) -> FakeMemory {
        let mut memory = FakeMemory::default();
        add_type(&mut memory, layout, CORO_TYPE, "coroutine");
        add_type(&mut memory, layout, CODE_TYPE, "code");
        add_type(&mut memory, layout, SET_TYPE, "set");
        let mut code = vec![0u8; 0x400];
        put(
            &mut code,
            layout.object.ob_type.offset(),
            &CODE_TYPE.to_le_bytes(),
        );
        memory.add(CODE, code);
        memory
    }

    fn with_reader<M: Memory>(
        objects: &Objects<'_, M>,
        check: impl FnOnce(&mut Reader<'_, '_, M>),
    ) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let mut walker = FrameWalker::new(objects, super::super::frames::LocalsScope::None);
        let mut reader = Reader {
            objects,
            walker: &mut walker,
            kinds: HashMap::new(),
            none: None,
            native_task: None,
            python_task: None,
            native_future: None,
            locals: LocalsReader::new(objects),
            warnings: &mut warnings,
        };
        check(&mut reader);
        warnings
    }

    #[test]
    fn a_cyclic_await_chain_stops_with_a_warning_on_every_layout() {
        for layout in ALL.iter().filter(|l| l.asyncio_task.coro.is_some()) {
            let mut memory = memory_for(layout);
            // Two coroutines awaiting each other, a third awaiting itself.
            add_coroutine(&mut memory, layout, 0x100_000, 0x200_000);
            add_coroutine(&mut memory, layout, 0x200_000, 0x100_000);
            add_coroutine(&mut memory, layout, 0x300_000, 0x300_000);
            let objects = Objects::new(&memory, layout);
            let warnings = with_reader(&objects, |reader| {
                assert_eq!(reader.coroutine_stack(0x100_000, "pair").len(), 2);
                assert_eq!(reader.coroutine_stack(0x300_000, "self").len(), 1);
            });
            let loops = warnings
                .iter()
                .filter(|w| w.kind == WarningKind::AsyncioTasks && w.message.contains("loops"))
                .count();
            assert_eq!(
                loops, 2,
                "{}.{} {:?}: {warnings:?}",
                layout.major, layout.minor, layout.shape
            );
        }
    }

    #[test]
    fn corrupt_task_sets_are_refused_on_every_layout() {
        for layout in ALL.iter().filter(|l| l.asyncio_task.coro.is_some()) {
            let mut memory = memory_for(layout);
            let mut set = vec![0u8; 0x200];
            put(
                &mut set,
                layout.object.ob_type.offset(),
                &SET_TYPE.to_le_bytes(),
            );
            // A mask of 2**40 - 1, then one that is no power of two less one, then a count of
            // entries beyond the table.
            put(
                &mut set,
                layout.set.mask.offset(),
                &((1u64 << 40) - 1).to_le_bytes(),
            );
            memory.add(0x400_000, set.clone());
            put(&mut set, layout.set.mask.offset(), &6u64.to_le_bytes());
            memory.add(0x500_000, set.clone());
            put(&mut set, layout.set.mask.offset(), &7u64.to_le_bytes());
            put(&mut set, layout.set.used.offset(), &9u64.to_le_bytes());
            memory.add(0x600_000, set);
            let objects = Objects::new(&memory, layout);
            with_reader(&objects, |reader| {
                for set in [0x400_000, 0x500_000, 0x600_000] {
                    assert!(reader.registry_members(set).is_err(), "{set:#x}");
                }
            });
        }
    }
}
