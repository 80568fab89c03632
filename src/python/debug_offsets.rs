//! `_Py_DebugOffsets`: the table of offsets that CPython 3.13+ puts at the very start of
//! `_PyRuntime` for out-of-process readers (Include/internal/pycore_runtime.h).
//!
//! Where it has a field, its value wins over the generated table, and any disagreement is
//! reported (it would mean the generated table is wrong for this build). The struct itself
//! changes between minor versions, so the position of each field is data per version.

use super::layout::Layout;
use crate::memory::Memory;

/// Word positions in the 3.13 struct (every member is a uint64_t).
mod v3_13 {
    pub const WORDS: usize = 73;
    pub const FREE_THREADED: usize = 2;
    pub const RUNTIME_INTERPRETERS_HEAD: usize = 5;
    pub const INTERP_ID: usize = 7;
    pub const INTERP_NEXT: usize = 8;
    pub const INTERP_THREADS_HEAD: usize = 9;
    pub const INTERP_IMPORTS_MODULES: usize = 11;
    pub const INTERP_CEVAL_GIL: usize = 14;
    pub const INTERP_GIL: usize = 15;
    pub const INTERP_GIL_LOCKED: usize = 17;
    pub const INTERP_GIL_HOLDER: usize = 18;
    pub const TSTATE_NEXT: usize = 21;
    pub const TSTATE_INTERP: usize = 22;
    pub const TSTATE_CURRENT_FRAME: usize = 23;
    pub const TSTATE_THREAD_ID: usize = 24;
    pub const TSTATE_NATIVE_THREAD_ID: usize = 25;
    pub const IFRAME_PREVIOUS: usize = 29;
    pub const IFRAME_EXECUTABLE: usize = 30;
    pub const IFRAME_INSTR_PTR: usize = 31;
    pub const IFRAME_OWNER: usize = 33;
    pub const CODE_FILENAME: usize = 35;
    pub const CODE_NAME: usize = 36;
    pub const CODE_QUALNAME: usize = 37;
    pub const CODE_LINETABLE: usize = 38;
    pub const CODE_FIRSTLINENO: usize = 39;
    pub const CODE_ADAPTIVE: usize = 43;
    pub const OBJECT_OB_TYPE: usize = 45;
    pub const TYPE_TP_NAME: usize = 47;
    pub const TYPE_TP_FLAGS: usize = 49;
    pub const DICT_MA_KEYS: usize = 57;
    pub const DICT_MA_VALUES: usize = 58;
    pub const LONG_LV_TAG: usize = 62;
    pub const LONG_OB_DIGIT: usize = 63;
    pub const BYTES_OB_SIZE: usize = 65;
    pub const BYTES_OB_SVAL: usize = 66;
    pub const UNICODE_STATE: usize = 68;
    pub const UNICODE_LENGTH: usize = 69;
    pub const UNICODE_ASCII_SIZE: usize = 70;
}

/// What the process's own `_Py_DebugOffsets` said.
#[derive(Debug, Clone, Default)]
pub struct DebugOffsets {
    pub free_threaded: bool,
    /// Fields where the generated table disagreed: `name: table X, process Y`.
    pub disagreements: Vec<String>,
}

/// Read the struct at `runtime` and apply it to `layout`. `None` if this minor version's
/// struct is unknown or unreadable (the caller then relies on the table alone, and says so).
pub fn apply(memory: &impl Memory, runtime: u64, layout: &mut Layout) -> Option<DebugOffsets> {
    if (layout.major, layout.minor) != (3, 13) {
        return None;
    }
    use v3_13::*;
    let raw = memory.read_vec(runtime, WORDS * 8).ok()?;
    let word = |index: usize| crate::bytes::u64_at(&raw, index * 8);
    let mut result = DebugOffsets {
        free_threaded: word(FREE_THREADED)? != 0,
        disagreements: Vec::new(),
    };
    let mut set = |name: &str, field: &mut u32, index: usize| {
        let Some(value) = word(index).and_then(|v| u32::try_from(v).ok()) else {
            return;
        };
        if *field != value {
            result
                .disagreements
                .push(format!("{name}: table {}, process {value}", *field));
            *field = value;
        }
    };
    let set_opt = |name: &str,
                   field: &mut Option<u32>,
                   index: usize,
                   set: &mut dyn FnMut(&str, &mut u32, usize)| {
        let mut value = field.unwrap_or(u32::MAX);
        set(name, &mut value, index);
        *field = Some(value);
    };
    let l = layout;
    set_opt(
        "runtime.interpreters_head",
        &mut l.runtime_interpreters_head,
        RUNTIME_INTERPRETERS_HEAD,
        &mut set,
    );
    set_opt("interp.id", &mut l.interp_id, INTERP_ID, &mut set);
    set("interp.next", &mut l.interp_next, INTERP_NEXT);
    set(
        "interp.threads_head",
        &mut l.interp_tstate_head,
        INTERP_THREADS_HEAD,
    );
    set(
        "interp.imports_modules",
        &mut l.interp_modules,
        INTERP_IMPORTS_MODULES,
    );
    set_opt(
        "interp.ceval_gil",
        &mut l.interp_ceval_gil,
        INTERP_CEVAL_GIL,
        &mut set,
    );
    set("tstate.next", &mut l.tstate_next, TSTATE_NEXT);
    set("tstate.interp", &mut l.tstate_interp, TSTATE_INTERP);
    set_opt(
        "tstate.current_frame",
        &mut l.tstate_current_frame,
        TSTATE_CURRENT_FRAME,
        &mut set,
    );
    set(
        "tstate.thread_id",
        &mut l.tstate_thread_id,
        TSTATE_THREAD_ID,
    );
    set_opt(
        "tstate.native_thread_id",
        &mut l.tstate_native_thread_id,
        TSTATE_NATIVE_THREAD_ID,
        &mut set,
    );
    set_opt(
        "frame.previous",
        &mut l.iframe_previous,
        IFRAME_PREVIOUS,
        &mut set,
    );
    set_opt(
        "frame.executable",
        &mut l.iframe_code,
        IFRAME_EXECUTABLE,
        &mut set,
    );
    set_opt(
        "frame.instr_ptr",
        &mut l.iframe_instr_ptr,
        IFRAME_INSTR_PTR,
        &mut set,
    );
    set_opt("frame.owner", &mut l.iframe_owner, IFRAME_OWNER, &mut set);
    set("code.filename", &mut l.code_co_filename, CODE_FILENAME);
    set("code.name", &mut l.code_co_name, CODE_NAME);
    set_opt(
        "code.qualname",
        &mut l.code_co_qualname,
        CODE_QUALNAME,
        &mut set,
    );
    set_opt(
        "code.linetable",
        &mut l.code_co_linetable,
        CODE_LINETABLE,
        &mut set,
    );
    set(
        "code.firstlineno",
        &mut l.code_co_firstlineno,
        CODE_FIRSTLINENO,
    );
    set_opt(
        "code.co_code_adaptive",
        &mut l.code_co_code_adaptive,
        CODE_ADAPTIVE,
        &mut set,
    );
    set("object.ob_type", &mut l.object_ob_type, OBJECT_OB_TYPE);
    set("type.tp_name", &mut l.type_tp_name, TYPE_TP_NAME);
    set("type.tp_flags", &mut l.type_tp_flags, TYPE_TP_FLAGS);
    set("dict.ma_keys", &mut l.dict_ma_keys, DICT_MA_KEYS);
    set("dict.ma_values", &mut l.dict_ma_values, DICT_MA_VALUES);
    set_opt("long.lv_tag", &mut l.long_lv_tag, LONG_LV_TAG, &mut set);
    set("long.ob_digit", &mut l.long_digits, LONG_OB_DIGIT);
    set("bytes.ob_size", &mut l.var_object_ob_size, BYTES_OB_SIZE);
    set("bytes.ob_sval", &mut l.bytes_ob_sval, BYTES_OB_SVAL);
    set("unicode.state", &mut l.unicode_state, UNICODE_STATE);
    set("unicode.length", &mut l.unicode_length, UNICODE_LENGTH);
    set(
        "unicode.asciiobject_size",
        &mut l.unicode_ascii_size,
        UNICODE_ASCII_SIZE,
    );
    // The GIL's member offsets are given relative to the interpreter's own `_gil`; the table
    // keeps them relative to the GIL struct that `ceval.gil` points to.
    if let (Some(gil), Some(locked), Some(holder)) = (
        word(INTERP_GIL),
        word(INTERP_GIL_LOCKED),
        word(INTERP_GIL_HOLDER),
    ) {
        for (name, field, absolute) in [
            ("gil.locked", &mut l.gil_locked, locked),
            ("gil.last_holder", &mut l.gil_last_holder, holder),
        ] {
            let value = u32::try_from(absolute.wrapping_sub(gil)).ok();
            if *field != value {
                result
                    .disagreements
                    .push(format!("{name}: table {field:?}, process {value:?}"));
                *field = value;
            }
        }
    }
    Some(result)
}
