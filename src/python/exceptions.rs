//! The exception a thread is handling (what `sys.exc_info()` returns inside an `except` block),
//! and the garbage collector's "a collection is running" flag.
//!
//! 3.7+: `tstate->exc_info` points to a stack of `_PyErr_StackItem`; like
//! `_PyErr_GetTopmostException` (Python/errors.c) we take the first item holding an exception.
//! ≤3.6: `tstate->exc_value` holds it directly.

use serde::{Deserialize, Serialize};

use super::objects::{ObjectResult, Objects};
use crate::memory::Memory;

/// No handler nests this deep; a longer chain is corrupt.
const MAX_EXCEPTION_STACK: usize = 256;
const MAX_ARGS: i64 = 64;

/// An exception: its type's name and its message (`str(exc)` for the common cases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionInfo {
    #[serde(rename = "type")]
    pub type_name: String,
    pub message: String,
}

/// The exception the thread at `tstate` is handling, if any.
pub fn handled_exception<M: Memory>(
    objects: &Objects<'_, M>,
    tstate: u64,
) -> ObjectResult<Option<ExceptionInfo>> {
    let layout = objects.layout;
    let value = match (
        layout.tstate.exc_info,
        layout.err_stackitem.exc_value,
        layout.err_stackitem.previous_item,
        layout.tstate.exc_value,
    ) {
        (Some(exc_info), Some(exc_value), Some(previous), _) => {
            let mut item = objects.read(tstate, exc_info)?;
            let mut found = 0;
            for _ in 0..MAX_EXCEPTION_STACK {
                if item == 0 {
                    break;
                }
                let value = objects.read(item, exc_value)?;
                if value != 0 && !is_none(objects, value)? {
                    found = value;
                    break;
                }
                item = objects.read(item, previous)?;
            }
            found
        }
        (_, _, _, Some(exc_value)) => objects.read(tstate, exc_value)?,
        _ => 0,
    };
    if value == 0 || is_none(objects, value)? {
        return Ok(None);
    }
    // 2.7 names built-in exception types after their module ("exceptions.ValueError");
    // Python itself prints them bare.
    let type_name = objects.type_name(value)?;
    let type_name = type_name
        .strip_prefix("exceptions.")
        .unwrap_or(&type_name)
        .to_string();
    Ok(Some(ExceptionInfo {
        type_name,
        message: message(objects, value).unwrap_or_else(|_| "<unreadable>".to_string()),
    }))
}

fn is_none<M: Memory>(objects: &Objects<'_, M>, object: u64) -> ObjectResult<bool> {
    Ok(objects.type_name(object)? == "NoneType")
}

/// `str(exc)` as BaseException computes it from `args`: "" for none, the one argument's text,
/// or the tuple's text for several.
fn message<M: Memory>(objects: &Objects<'_, M>, exception: u64) -> ObjectResult<String> {
    let args = objects.read(exception, objects.layout.base_exception.args)?;
    if args == 0 {
        return Ok(String::new());
    }
    let count = objects.ob_size(args)?;
    if !(0..=MAX_ARGS).contains(&count) {
        return Ok(String::new());
    }
    let items = args.wrapping_add(u64::from(objects.layout.tuple.ob_item));
    let texts = (0..count as u64)
        .map(|index| object_text(objects, objects.pointer(items.wrapping_add(index * 8))?))
        .collect::<ObjectResult<Vec<String>>>()?;
    Ok(match texts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    })
}

/// The text of a message argument: strings and ints as Python prints them, else the type.
fn object_text<M: Memory>(objects: &Objects<'_, M>, object: u64) -> ObjectResult<String> {
    match objects.type_name(object)?.as_str() {
        "str" | "unicode" => objects.unicode(object),
        "int" | "long" => Ok(objects.int(object)?.to_string()),
        "bytes" => Ok(format!(
            "b{:?}",
            String::from_utf8_lossy(&objects.bytes(object)?)
        )),
        other => Ok(format!("<{other} object>")),
    }
}

/// Whether the interpreter's collector is running a collection (`gcstate->collecting`).
/// `static_flag` is the address of 2.7/3.6's static `collecting` in Modules/gcmodule.c, found
/// by symbol.
pub fn gc_collecting<M: Memory>(
    objects: &Objects<'_, M>,
    runtime: Option<u64>,
    interpreter: u64,
    static_flag: Option<u64>,
) -> ObjectResult<Option<bool>> {
    let layout = objects.layout;
    let flag = match (
        layout.interp.gc_collecting,
        layout.runtime.gc_collecting,
        runtime,
    ) {
        (Some(field), _, _) => field.address(interpreter),
        (None, Some(field), Some(runtime)) => field.address(runtime),
        _ => match static_flag {
            Some(address) => address,
            None => return Ok(None),
        },
    };
    Ok(Some(objects.memory.read_i32(flag)? != 0))
}
