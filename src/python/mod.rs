//! The CPython interpreter state inside a core: version, layout, threads, frames, names.
//!
//! Everything here reads through [`Memory`] and asks for symbols through [`SymbolSource`], so it
//! works the same on a core, a live process or synthetic test memory. The one place that turns
//! a version into struct offsets is [`layouts::lookup`]; code below it is driven by the
//! [`Layout`] data only.

pub mod asyncio;
mod chain_guard;
mod debug_offsets;
mod debug_offsets_map;
mod dicts;
pub mod exceptions;
pub mod field;
pub mod frames;
pub mod greenlets;
pub mod layout;
mod layouts;
pub mod linetable;
pub mod locals;
mod names;
pub mod objects;
mod printable;
mod shape;
pub mod str_hash;
mod symbols;
mod threads;
mod values;
pub mod version;

use std::collections::HashMap;

pub use frames::{Frame, LocalsScope};
pub use layout::{Layout, Shape};
pub use version::PythonVersion;

use crate::error::{Error, Result};
use crate::memory::Memory;
use crate::warning::{Warning, WarningKind};
use objects::Objects;

/// Where the interpreter's global symbols are, at run time.
pub trait SymbolSource {
    /// Runtime address of a symbol of the python executable or libpython.
    fn symbol(&self, name: &str) -> Option<u64>;
    /// A symbol of Python's C API (`PyAPI_FUNC`/`PyAPI_DATA`): where the binaries export the
    /// API, only their dynamic tables are searched (a miss costs no `.symtab` index).
    fn api_symbol(&self, name: &str) -> Option<u64> {
        self.symbol(name)
    }
    /// The version that file names suggest (`libpython3.9.so`), when memory says nothing.
    fn version_hint(&self) -> Option<PythonVersion>;
    /// ABI flags in the binaries' file names (`t` of `libpython3.13t.so`, `d`, `m`), if any.
    fn abi_flags(&self) -> String {
        String::new()
    }
}

/// One Python thread state and what was read from it.
#[derive(Debug, Clone)]
pub struct PythonThread {
    /// `pthread_t` of the thread.
    pub thread_id: u64,
    /// Kernel TID, when the version records it (3.8+).
    pub native_thread_id: Option<u64>,
    /// Without it: the TID glibc keeps in the thread's `struct pthread`, if readable.
    pub pthread_tid: Option<u64>,
    /// Name from `threading`, when the thread is registered there.
    pub name: Option<String>,
    /// Whether it holds the GIL; `None` when that cannot be told.
    pub holds_gil: Option<bool>,
    /// Address of the `PyInterpreterState` it belongs to.
    pub interpreter: u64,
    /// `PyInterpreterState.id` (3.7+; the main interpreter is 0).
    pub interpreter_id: Option<i64>,
    /// Whether it belongs to the main interpreter (`_PyRuntime.interpreters.main`, else the
    /// oldest interpreter: the list's last).
    pub main_interpreter: bool,
    /// Address of the `PyThreadState`.
    pub address: u64,
    /// See [`frames::Stack::c_stack_hint`].
    pub c_stack_hint: Option<u64>,
    /// The exception being handled in an `except` block, if any.
    pub handling_exception: Option<exceptions::ExceptionInfo>,
    /// Whether a garbage collection was running in this thread's interpreter (not necessarily
    /// in this thread); `None` when the build does not tell.
    pub interpreter_gc_collecting: Option<bool>,
    pub frames: Vec<Frame>,
    pub warnings: Vec<Warning>,
}

/// The interpreter state of a whole process.
#[derive(Debug, Clone)]
pub struct PythonProcess {
    pub version: PythonVersion,
    pub shape: Shape,
    pub threads: Vec<PythonThread>,
    /// Every greenlet found, when `greenlet` is loaded (`None` when it is not).
    pub greenlets: Option<greenlets::GreenletState>,
    /// asyncio's event loops and their tasks, per interpreter (empty without asyncio).
    pub event_loops: Vec<asyncio::EventLoop>,
    pub warnings: Vec<Warning>,
    /// Information that does not make the data partial (how the layout was found).
    pub notes: Vec<String>,
}

/// Where the interpreter state hangs from, which changed in 3.7.
#[derive(Debug, Clone, Copy)]
enum Roots {
    /// 3.7+: the `_PyRuntime` global (`_PyRuntimeState`).
    Runtime(u64),
    /// 2.7, 3.6: the globals `interp_head` and `_PyThreadState_Current` (Python/pystate.c).
    /// `interp_head` is static, so stripped builds lack it; then the interpreter is found
    /// through the thread that held the GIL.
    Globals {
        interp_head: Option<u64>,
        tstate_current: Option<u64>,
    },
}

fn find_roots(symbols: &impl SymbolSource) -> Result<Roots> {
    if let Some(runtime) = symbols.symbol("_PyRuntime") {
        return Ok(Roots::Runtime(runtime));
    }
    let interp_head = symbols.symbol("interp_head");
    let tstate_current = symbols.symbol("_PyThreadState_Current");
    if interp_head.is_some() || tstate_current.is_some() {
        return Ok(Roots::Globals {
            interp_head,
            tstate_current,
        });
    }
    Err(Error::NotPython)
}

/// Read every thread's Python stack (with the variables of the frames `locals` says).
/// `arch` is the core's machine: only its tables are used (offsets differ between ABIs).
pub fn inspect(
    memory: &impl Memory,
    symbols: &impl SymbolSource,
    arch: crate::core::Arch,
    locals: LocalsScope,
) -> Result<PythonProcess> {
    inspect_with(memory, symbols, layouts::tables_for(arch), locals)
}

/// [`inspect`] with the tables `tables` gives.
fn inspect_with(
    memory: &impl Memory,
    symbols: &impl SymbolSource,
    tables: Tables,
    locals: LocalsScope,
) -> Result<PythonProcess> {
    let roots = find_roots(symbols)?;
    let runtime = match roots {
        Roots::Runtime(runtime) => Some(runtime),
        Roots::Globals { .. } => None,
    };
    let version = version::version_from_memory(memory, runtime, symbols.symbol("Py_Version"))
        .or_else(|| symbols.version_hint())
        .ok_or(Error::UnknownVersion)?;
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let (layout, shape) = select_layout(
        memory,
        symbols,
        runtime,
        version,
        tables,
        &mut notes,
        &mut warnings,
    )?;
    let objects = Objects {
        hash_secret: symbols
            .symbol("_Py_HashSecret")
            .and_then(|secret| str_hash::HashSecret::read(memory, secret)),
        ..Objects::new(memory, &layout)
    };
    let head = first_interpreter(&objects, roots, version)?;
    let version = with_micro_from_sys(&objects, head, version);
    let (states, list_warnings) = threads::thread_states(&objects, head);
    warnings.extend(list_warnings);
    let main_interpreter = main_interpreter(&objects, roots, &states);

    // gcmodule.c's static `collecting` exists where the interpreter has no `_PyRuntime` (2.7,
    // 3.6); from 3.7 the flag is a field, or unknown. Asked only there: a miss indexes the
    // whole `.symtab`.
    let static_gc_flag = matches!(roots, Roots::Globals { .. })
        .then(|| symbols.symbol("collecting"))
        .flatten();
    let mut interpreter_info: HashMap<u64, InterpreterFacts> = HashMap::new();
    let mut walker = frames::FrameWalker::new(&objects, locals);
    let mut threads = Vec::with_capacity(states.len());
    for state in states {
        let facts = interpreter_info
            .entry(state.interpreter)
            .or_insert_with(|| {
                let names = names::thread_names(&objects, state.interpreter).unwrap_or_else(|e| {
                    warnings.push(Warning::new(
                        WarningKind::ThreadNames,
                        format!("thread names unavailable: {e}"),
                    ));
                    HashMap::new()
                });
                let gil = gil_state(&objects, roots, state.interpreter).unwrap_or_else(|e| {
                    warnings.push(Warning::new(
                        WarningKind::GilUnknown,
                        format!("GIL holder unknown: {e}"),
                    ));
                    threads::Gil::Unknown
                });
                let gc =
                    exceptions::gc_collecting(&objects, runtime, state.interpreter, static_gc_flag)
                        .unwrap_or_else(|e| {
                            warnings.push(Warning::new(
                                WarningKind::GcUnknown,
                                format!("garbage collector state unknown: {e}"),
                            ));
                            None
                        });
                let id = threads::interpreter_id(&objects, state.interpreter).unwrap_or_else(|e| {
                    warnings.push(Warning::new(
                        WarningKind::InterpreterId,
                        format!(
                            "interpreter at {:#x}: its id is unreadable: {e}",
                            state.interpreter
                        ),
                    ));
                    None
                });
                InterpreterFacts { names, gil, gc, id }
            });
        let mut thread_warnings = Vec::new();
        let handling_exception = exceptions::handled_exception(&objects, state.address)
            .unwrap_or_else(|e| {
                thread_warnings.push(Warning::new(
                    WarningKind::ExceptionUnreadable,
                    format!("the exception being handled is unreadable: {e}"),
                ));
                None
            });
        let stack = walker.stack(state.address);
        threads.push(PythonThread {
            thread_id: state.thread_id,
            native_thread_id: state.native_thread_id,
            pthread_tid: state.pthread_tid,
            name: facts.names.get(&state.thread_id).cloned(),
            holds_gil: facts.gil.held_by(state.address),
            interpreter: state.interpreter,
            interpreter_id: facts.id,
            main_interpreter: Some(state.interpreter) == main_interpreter,
            address: state.address,
            c_stack_hint: stack.c_stack_hint,
            handling_exception,
            interpreter_gc_collecting: facts.gc,
            frames: stack.frames,
            warnings: stack.warnings.into_iter().chain(thread_warnings).collect(),
        });
    }
    let greenlets = all_greenlets(&objects, &threads, runtime, shape, symbols, &mut walker);
    let mut interpreters: Vec<u64> = Vec::new();
    for thread in &threads {
        if !interpreters.contains(&thread.interpreter) {
            interpreters.push(thread.interpreter);
        }
    }
    let mut event_loops = Vec::new();
    for interpreter in interpreters {
        let thread_states: Vec<u64> = threads
            .iter()
            .filter(|t| t.interpreter == interpreter)
            .map(|t| t.address)
            .collect();
        event_loops.extend(asyncio::event_loops(
            &objects,
            &mut walker,
            interpreter,
            &thread_states,
            &mut warnings,
        ));
    }
    Ok(PythonProcess {
        version,
        shape,
        threads,
        greenlets,
        event_loops,
        warnings,
        notes,
    })
}

/// The greenlets of every interpreter that has loaded `greenlet` (`None` when none has).
fn all_greenlets<M: Memory>(
    objects: &Objects<'_, M>,
    threads: &[PythonThread],
    runtime: Option<u64>,
    shape: Shape,
    symbols: &impl SymbolSource,
    walker: &mut frames::FrameWalker<'_, M>,
) -> Option<greenlets::GreenletState> {
    let gc = &objects.layout.gc;
    let mut interpreters: Vec<u64> = Vec::new();
    for thread in threads {
        if !interpreters.contains(&thread.interpreter) {
            interpreters.push(thread.interpreter);
        }
    }
    let mut all: Option<greenlets::GreenletState> = None;
    for (index, interpreter) in interpreters.into_iter().enumerate() {
        // 3.9+ keep the collector's lists per interpreter; 3.7/3.8 in _PyRuntime and 2.7/3.6
        // in gcmodule.c's statics, shared by all interpreters (walked once).
        let roots = match (
            shape,
            gc.interp_generations,
            gc.runtime_generations,
            runtime,
        ) {
            (Shape::FreeThreaded, _, _, _) => greenlets::GcRoots::None,
            (_, Some(generations), _, _) => greenlets::GcRoots::Structs {
                generations: interpreter.wrapping_add(u64::from(generations)),
                permanent: gc
                    .interp_permanent
                    .map(|p| interpreter.wrapping_add(u64::from(p))),
            },
            _ if index > 0 => continue,
            (_, None, Some(generations), Some(runtime)) => greenlets::GcRoots::Structs {
                generations: runtime.wrapping_add(u64::from(generations)),
                permanent: gc
                    .runtime_permanent
                    .map(|p| runtime.wrapping_add(u64::from(p))),
            },
            _ => match symbols.symbol("_PyGC_generation0") {
                Some(symbol) => greenlets::GcRoots::Generation0(symbol),
                None => greenlets::GcRoots::Unknown,
            },
        };
        if let Some(found) = greenlets::greenlets(objects, interpreter, roots, walker) {
            let merged = all.get_or_insert_with(Default::default);
            merged.version = merged.version.take().or(found.version);
            merged.greenlets.extend(found.greenlets);
            merged.warnings.extend(found.warnings);
        }
    }
    all
}

/// What is read once per interpreter and shared by its threads.
struct InterpreterFacts {
    /// `pthread_t` → `threading` name.
    names: HashMap<u64, String>,
    gil: threads::Gil,
    gc: Option<bool>,
    id: Option<i64>,
}

/// The main interpreter: `_PyRuntime.interpreters.main` (3.7+), else the oldest one (new
/// interpreters are put at the head of the list, Python/pystate.c).
fn main_interpreter<M: Memory>(
    objects: &Objects<'_, M>,
    roots: Roots,
    states: &[threads::ThreadState],
) -> Option<u64> {
    if let (Roots::Runtime(runtime), Some(field)) =
        (roots, objects.layout.runtime.interpreters_main)
    {
        if let Ok(main) = objects.read(runtime, field) {
            if main != 0 {
                return Some(main);
            }
        }
    }
    states.last().map(|s| s.interpreter)
}

/// Where tables come from: the generated ones, or others in tests.
type Tables = fn(u8, u8, Shape) -> Option<&'static Layout>;

/// The table for this build, corrected by the process's own `_Py_DebugOffsets` (3.13+), which
/// also says whether the build is free-threaded. A 3.13+ shape with no table of its own
/// (free-threaded 3.14t, 3.15t) is read through those offsets alone, with a note.
fn select_layout(
    memory: &impl Memory,
    symbols: &impl SymbolSource,
    runtime: Option<u64>,
    version: PythonVersion,
    tables: Tables,
    notes: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
) -> Result<(Layout, Shape)> {
    let mut shape = detect_shape(symbols);
    let exact = table_for(version, shape, tables);
    // Where the members of _Py_DebugOffsets sit does not depend on the shape: any table of the
    // version tells.
    let base = exact.as_ref().ok().copied().or_else(|| {
        [Shape::Release, Shape::Debug, Shape::FreeThreaded]
            .into_iter()
            .find_map(|other| tables(version.major, version.minor, other))
    });
    let reader = match (runtime, base) {
        (Some(runtime), Some(base)) => debug_offsets::Reader::read(memory, runtime, base),
        _ => None,
    };
    let Some(reader) = reader else {
        let layout = exact?.clone();
        if layout.debug_offsets.is_some() {
            warnings.push(Warning::new(
                WarningKind::DebugOffsets,
                format!("cannot read _Py_DebugOffsets of {version}; relying on pycore's own table"),
            ));
        }
        return Ok((layout, shape));
    };
    if let Some(positions) = base.and_then(|b| b.debug_offsets.as_ref()) {
        if reader.free_threaded(positions) {
            shape = Shape::FreeThreaded;
        }
    }
    let mut layout = match (table_for(version, shape, tables), base) {
        (Ok(table), _) => table.clone(),
        (Err(no_table), Some(base)) => {
            let layout = from_debug_offsets_alone(&reader, base, shape).ok_or(no_table)?;
            notes.push(format!(
                "pycore has no table of its own for CPython {version} {shape} builds: it read this one through the process's own _Py_DebugOffsets (thread names, handled exceptions and the garbage collector's state may be missing)"
            ));
            return Ok((layout, shape));
        }
        (Err(no_table), None) => return Err(no_table),
    };
    for disagreement in reader.apply(&mut layout).disagreements {
        warnings.push(Warning::new(
            WarningKind::DebugOffsets,
            format!(
            "_Py_DebugOffsets disagrees with pycore's {version} {shape} table on {disagreement}"
        ),
        ));
    }
    Ok((layout, shape))
}

/// A layout for `shape` from another shape's table of the same version and what the process's
/// `_Py_DebugOffsets` gives; `None` unless it gives every member a walk needs.
fn from_debug_offsets_alone(
    reader: &debug_offsets::Reader,
    base: &Layout,
    shape: Shape,
) -> Option<Layout> {
    let positions = base.debug_offsets.as_ref()?;
    let ob_type = reader.word(positions.pyobject_ob_type)?;
    let header_growth =
        u32::try_from(ob_type.checked_sub(u64::from(base.object.ob_type.offset()))?)
            .ok()
            .filter(|growth| *growth < 256)?;
    let managed = layouts::managed_dict(base.major, base.minor, shape).unwrap_or(base.managed_dict);
    let mut layout = debug_offsets_map::for_other_shape(base, shape, managed, header_growth);
    let applied = reader.apply(&mut layout).applied;
    debug_offsets_map::GIVEN_BY_PROCESS
        .iter()
        .all(|name| applied.contains(name))
        .then_some(layout)
}

fn first_interpreter<M: Memory>(
    objects: &Objects<'_, M>,
    roots: Roots,
    version: PythonVersion,
) -> Result<u64> {
    let head = match roots {
        Roots::Runtime(runtime) => {
            let field =
                objects
                    .layout
                    .runtime
                    .interpreters_head
                    .ok_or_else(|| Error::TableLacks {
                        version: version.to_string(),
                        member: "_PyRuntime.interpreters.head",
                    })?;
            objects
                .read(runtime, field)
                .map_err(|e| unreadable("_PyRuntime.interpreters.head", e))?
        }
        Roots::Globals {
            interp_head: Some(interp_head),
            ..
        } => objects
            .pointer(interp_head)
            .map_err(|e| unreadable("interp_head", e))?,
        Roots::Globals {
            interp_head: None,
            tstate_current: Some(current),
        } => {
            let current_unreadable = |e| unreadable("_PyThreadState_Current", e);
            let tstate = objects.pointer(current).map_err(current_unreadable)?;
            if tstate == 0 {
                return Err(Error::InterpreterNotFound);
            }
            objects
                .read(tstate, objects.layout.tstate.interp)
                .map_err(current_unreadable)?
        }
        Roots::Globals {
            interp_head: None,
            tstate_current: None,
        } => 0,
    };
    if head == 0 {
        return Err(Error::NoInterpreter);
    }
    Ok(head)
}

/// The interpreter state's root could not be read.
fn unreadable(what: &'static str, error: objects::ObjectError) -> Error {
    Error::StateUnreadable {
        what,
        reason: error.to_string(),
    }
}

fn gil_state<M: Memory>(
    objects: &Objects<'_, M>,
    roots: Roots,
    interpreter: u64,
) -> objects::ObjectResult<threads::Gil> {
    match roots {
        Roots::Runtime(runtime) => threads::gil_state(objects, runtime, interpreter),
        Roots::Globals {
            tstate_current: Some(current),
            ..
        } => threads::Gil::from_holder(objects.pointer(current)?),
        Roots::Globals {
            tstate_current: None,
            ..
        } => Ok(threads::Gil::Unknown),
    }
}

/// Complete a version known only as `X.Y` from `sys.version` ("3.9.18 (main, ...) [GCC ...]").
fn with_micro_from_sys<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
    version: PythonVersion,
) -> PythonVersion {
    if version.micro.is_some() {
        return version;
    }
    let text = names::module_attribute(objects, interpreter, "sys", "version")
        .ok()
        .flatten()
        .and_then(|string| objects.unicode(string).ok());
    let parsed = text.as_deref().and_then(|text| {
        let number = text.split_whitespace().next()?;
        let mut parts = number.split('.');
        let (major, minor) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
        let micro: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        ((major, minor) == (version.major, version.minor))
            .then(|| micro.parse().ok())
            .flatten()
    });
    PythonVersion {
        micro: parsed,
        ..version
    }
}

/// Debug builds export reference-count debugging helpers that release builds lack;
/// free-threaded builds carry a `t` in their ABI name (`libpython3.13t.so`, `python3.13t`).
fn detect_shape(symbols: &impl SymbolSource) -> Shape {
    if symbols.abi_flags().contains('t') {
        Shape::FreeThreaded
    } else if symbols.api_symbol("_Py_NegativeRefcount").is_some()
        || symbols.api_symbol("_Py_RefTotal").is_some()
    {
        Shape::Debug
    } else {
        Shape::Release
    }
}

fn table_for(version: PythonVersion, shape: Shape, tables: Tables) -> Result<&'static Layout> {
    // A debug build without a table of its own reads as the release build from the version the
    // spec names on (tools/layoutgen/spec.py, DEBUG_READS_AS_RELEASE_SINCE).
    let release_for_debug = || {
        (shape == Shape::Debug
            && (version.major, version.minor) >= layouts::DEBUG_READS_AS_RELEASE_SINCE)
            .then(|| tables(version.major, version.minor, Shape::Release))
            .flatten()
    };
    tables(version.major, version.minor, shape)
        .or_else(release_for_debug)
        .ok_or_else(|| {
            // The machine of the tables asked: every table one look-up gives is of one machine.
            let arch = layouts::ALL
                .iter()
                .find_map(|l| tables(l.major, l.minor, l.shape))
                .map_or(crate::core::Arch::X86_64, |t| t.arch);
            let known: Vec<String> = layouts::ALL
                .iter()
                .filter(|l| l.shape == shape && l.arch == arch)
                .map(|l| format!("{}.{}", l.major, l.minor))
                .collect();
            let newest = layouts::ALL.iter().map(|l| (l.major, l.minor)).max();
            let shape_name = match shape {
                Shape::Release => "",
                Shape::Debug => " debug build",
                Shape::FreeThreaded => " free-threaded build",
            };
            // Another machine's table is never used: say which machine has none.
            let shape_name = match arch {
                crate::core::Arch::X86_64 => shape_name.to_string(),
                crate::core::Arch::Aarch64 => format!("{shape_name} (aarch64)"),
            };
            let newer = newest.is_some_and(|n| (version.major, version.minor) > n);
            let (version, shape) = (version.to_string(), shape_name);
            if newer {
                Error::NewerVersion {
                    version,
                    shape,
                    known,
                }
            } else {
                Error::UnsupportedVersion {
                    version,
                    shape,
                    known,
                }
            }
        })
}

#[cfg(test)]
mod tests;
