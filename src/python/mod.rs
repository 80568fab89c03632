//! The CPython interpreter state inside a core: version, layout, threads, frames, names.
//!
//! Everything here reads through [`Memory`] and asks for symbols through [`SymbolSource`], so it
//! works the same on a core, a live process or synthetic test memory. The one place that turns
//! a version into struct offsets is [`layouts::lookup`]; code below it is driven by the
//! [`Layout`] data only.

mod debug_offsets;
mod dicts;
pub mod frames;
pub mod layout;
mod layouts;
pub mod linetable;
mod names;
pub mod objects;
mod threads;
pub mod version;

use std::collections::HashMap;

pub use frames::Frame;
pub use layout::{Layout, Shape};
pub use version::PythonVersion;

use crate::error::{Error, Result};
use crate::memory::Memory;
use objects::Objects;

/// Where the interpreter's global symbols are, at run time.
pub trait SymbolSource {
    /// Runtime address of a symbol of the python executable or libpython.
    fn symbol(&self, name: &str) -> Option<u64>;
    /// The version that file names suggest (`libpython3.9.so`), when memory says nothing.
    fn version_hint(&self) -> Option<PythonVersion>;
}

/// One Python thread state and what was read from it.
#[derive(Debug, Clone)]
pub struct PythonThread {
    /// `pthread_t` of the thread.
    pub thread_id: u64,
    /// Kernel TID, when the version records it (3.8+).
    pub native_thread_id: Option<u64>,
    /// Name from `threading`, when the thread is registered there.
    pub name: Option<String>,
    /// Whether it holds the GIL; `None` when that cannot be told.
    pub holds_gil: Option<bool>,
    pub interpreter: u64,
    pub frames: Vec<Frame>,
    pub warnings: Vec<String>,
}

/// The interpreter state of a whole process.
#[derive(Debug, Clone)]
pub struct PythonProcess {
    pub version: PythonVersion,
    pub shape: Shape,
    /// Address of `_PyRuntime`.
    pub runtime: u64,
    pub threads: Vec<PythonThread>,
    pub warnings: Vec<String>,
}

/// Read every thread's Python stack.
pub fn inspect(memory: &impl Memory, symbols: &impl SymbolSource) -> Result<PythonProcess> {
    let runtime = symbols.symbol("_PyRuntime");
    if runtime.is_none() && symbols.symbol("interp_head").is_some() {
        let version = symbols
            .version_hint()
            .map_or("2.7 or 3.6".to_string(), |v| v.to_string());
        return Err(Error::UnsupportedVersion(format!(
            "CPython {version} (no _PyRuntime) is not supported yet by this pycore; 3.8 to 3.13 are"
        )));
    }
    let Some(runtime) = runtime else {
        return Err(Error::NotPython(
            "neither the executable nor a mapped libpython defines _PyRuntime".into(),
        ));
    };
    let version = version::version_from_memory(memory, Some(runtime), symbols.symbol("Py_Version"))
        .or_else(|| symbols.version_hint())
        .ok_or_else(|| {
            Error::UnsupportedVersion(
                "cannot tell the CPython version: no _Py_DebugOffsets, Py_Version or versioned file name".into(),
            )
        })?;
    let mut warnings = Vec::new();
    let mut shape = detect_shape(symbols);
    let mut layout = table_for(version, shape)?.clone();
    if let Some(debug) = debug_offsets::apply(memory, runtime, &mut layout) {
        if debug.free_threaded {
            shape = Shape::FreeThreaded;
            layout = table_for(version, shape)?.clone();
        }
        for disagreement in debug.disagreements {
            warnings.push(format!(
                "_Py_DebugOffsets disagrees with pycore's table for {version}: {disagreement} (using the process's value)"
            ));
        }
    }
    let objects = Objects {
        memory,
        layout: &layout,
    };
    let head_field = layout
        .runtime_interpreters_head
        .ok_or_else(|| Error::PythonState(format!("no interpreters-list offset for {version}")))?;
    let head = objects
        .pointer(runtime + u64::from(head_field))
        .map_err(|e| Error::PythonState(format!("_PyRuntime.interpreters.head: {e}")))?;
    if head == 0 {
        return Err(Error::PythonState(
            "no interpreter: the process had not initialised Python yet or had finalised it".into(),
        ));
    }
    let version = with_micro_from_sys(&objects, head, version);
    let (states, list_warnings) = threads::thread_states(&objects, head);
    warnings.extend(list_warnings);

    let mut interpreter_info: HashMap<u64, (HashMap<u64, String>, Option<u64>)> = HashMap::new();
    let mut walker = frames::FrameWalker::new(&objects);
    let mut threads = Vec::with_capacity(states.len());
    for state in states {
        let (names, gil_holder) = interpreter_info
            .entry(state.interpreter)
            .or_insert_with(|| {
                let names = names::thread_names(&objects, state.interpreter).unwrap_or_else(|e| {
                    warnings.push(format!("thread names unavailable: {e}"));
                    HashMap::new()
                });
                let holder = threads::gil_holder(&objects, runtime, state.interpreter)
                    .unwrap_or_else(|e| {
                        warnings.push(format!("GIL holder unknown: {e}"));
                        None
                    });
                (names, holder)
            });
        let stack = walker.stack(state.address);
        threads.push(PythonThread {
            thread_id: state.thread_id,
            native_thread_id: state.native_thread_id,
            name: names.get(&state.thread_id).cloned(),
            holds_gil: Some(*gil_holder == Some(state.address)),
            interpreter: state.interpreter,
            frames: stack.frames,
            warnings: stack.warnings,
        });
    }
    Ok(PythonProcess {
        version,
        shape,
        runtime,
        threads,
        warnings,
    })
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
        ((major, minor) == (version.major, version.minor)).then_some(micro.parse().ok()?)
    });
    PythonVersion {
        micro: parsed,
        ..version
    }
}

/// Debug builds export reference-count debugging helpers that release builds lack.
fn detect_shape(symbols: &impl SymbolSource) -> Shape {
    if symbols.symbol("_Py_NegativeRefcount").is_some() || symbols.symbol("_Py_RefTotal").is_some()
    {
        Shape::Debug
    } else {
        Shape::Release
    }
}

fn table_for(version: PythonVersion, shape: Shape) -> Result<&'static Layout> {
    layouts::lookup(version.major, version.minor, shape).ok_or_else(|| {
        let known: Vec<String> = layouts::ALL
            .iter()
            .filter(|l| l.shape == shape)
            .map(|l| format!("{}.{}", l.major, l.minor))
            .collect();
        let newest = layouts::ALL.iter().map(|l| (l.major, l.minor)).max();
        let shape_name = match shape {
            Shape::Release => "",
            Shape::Debug => " debug build",
            Shape::FreeThreaded => " free-threaded build",
        };
        if newest.is_some_and(|n| (version.major, version.minor) > n) {
            Error::UnsupportedVersion(format!(
                "CPython {version}{shape_name} is newer than this pycore knows (it knows {})",
                known.join(", ")
            ))
        } else {
            Error::UnsupportedVersion(format!(
                "CPython {version}{shape_name} is not supported by this pycore (supported: {})",
                known.join(", ")
            ))
        }
    })
}

#[cfg(test)]
mod tests;
