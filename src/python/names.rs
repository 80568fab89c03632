//! Python thread names, from `threading`'s registry of live threads:
//! `sys.modules['threading']._active` maps each thread's ident (its `pthread_t`) to its `Thread`,
//! whose `_name` attribute is the name users gave it (Lib/threading.py).

use std::collections::HashMap;

use super::dicts::{dict_get_str, dict_items, instance_attribute};
use super::objects::{ObjectResult, Objects};
use crate::memory::Memory;

/// `pthread_t` → thread name, for one interpreter. Empty when `threading` was never imported.
pub fn thread_names<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
) -> ObjectResult<HashMap<u64, String>> {
    let layout = objects.layout;
    let mut names = HashMap::new();
    let modules = objects.pointer(interpreter + u64::from(layout.interp_modules))?;
    if modules == 0 {
        return Ok(names);
    }
    let Some(threading) = dict_get_str(objects, modules, "threading")? else {
        return Ok(names);
    };
    let module_dict = objects.pointer(threading + u64::from(layout.module_md_dict))?;
    let Some(active) = dict_get_str(objects, module_dict, "_active")? else {
        return Ok(names);
    };
    for (ident, thread) in dict_items(objects, active)? {
        let Ok(ident) = objects.int(ident) else {
            continue;
        };
        if let Some(name) = instance_attribute(objects, thread, "_name")? {
            if let Ok(name) = objects.unicode(name) {
                names.insert(ident as u64, name);
            }
        }
    }
    Ok(names)
}
