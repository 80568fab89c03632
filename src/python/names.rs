//! Names looked up through `sys.modules`: Python thread names from `threading`'s registry of
//! live threads (`threading._active` maps each thread's ident, its `pthread_t`, to its `Thread`,
//! whose `_name` is the name users gave it; Lib/threading.py), and `sys.version`.

use std::collections::HashMap;

use super::dicts::{dict_get_str, dict_items, instance_attribute};
use super::objects::{ObjectResult, Objects};
use crate::memory::Memory;

/// `sys.modules[module].attribute` of an interpreter, if the module is loaded and has it.
pub fn module_attribute<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
    module: &str,
    attribute: &str,
) -> ObjectResult<Option<u64>> {
    match module_dict(objects, interpreter, module)? {
        Some(module_dict) => dict_get_str(objects, module_dict, attribute),
        None => Ok(None),
    }
}

/// `sys.modules[module]` of an interpreter, if the module is loaded.
pub fn loaded_module<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
    module: &str,
) -> ObjectResult<Option<u64>> {
    let modules = objects.read(interpreter, objects.layout.interp.modules)?;
    if modules == 0 {
        return Ok(None);
    }
    dict_get_str(objects, modules, module)
}

/// The `__dict__` of `sys.modules[module]` of an interpreter, if the module is loaded.
pub fn module_dict<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
    module: &str,
) -> ObjectResult<Option<u64>> {
    let Some(module) = loaded_module(objects, interpreter, module)? else {
        return Ok(None);
    };
    Ok(Some(objects.read(module, objects.layout.module.md_dict)?))
}

/// `pthread_t` → thread name, for one interpreter. Empty when `threading` was never imported.
pub fn thread_names<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
) -> ObjectResult<HashMap<u64, String>> {
    let mut names = HashMap::new();
    let Some(active) = module_attribute(objects, interpreter, "threading", "_active")? else {
        return Ok(names);
    };
    for (ident, thread) in dict_items(objects, active)? {
        let Ok(ident) = objects.int(ident) else {
            continue;
        };
        // 2.7's Thread keeps its name in the private `__name`, mangled to `_Thread__name`.
        // One unreadable entry must not cost the other threads their names.
        let name = match instance_attribute(objects, thread, "_name") {
            Ok(Some(name)) => Some(name),
            Ok(None) => instance_attribute(objects, thread, "_Thread__name")
                .ok()
                .flatten(),
            Err(_) => continue,
        };
        if let Some(name) = name {
            if let Ok(name) = objects.unicode(name) {
                names.insert(ident as u64, name);
            }
        }
    }
    Ok(names)
}
