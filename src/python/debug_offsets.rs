//! `_Py_DebugOffsets`: the table of offsets that CPython 3.13+ puts at the very start of
//! `_PyRuntime` for out-of-process readers (Include/internal/pycore_runtime.h in 3.13,
//! pycore_debug_offsets.h from 3.14).
//!
//! Where it has a field, the process's value wins over the generated table, and every
//! disagreement is reported (it would mean the table is wrong for this build). The struct itself
//! changes between minor versions, so where each member sits in it is generated data too
//! ([`DebugOffsetsLayout`]).

use super::layout::{DebugOffsetsLayout, Layout};
use crate::memory::Memory;

/// What the process's own `_Py_DebugOffsets` said.
#[derive(Debug, Clone, Default)]
pub struct DebugOffsets {
    /// Fields where the generated table disagreed: `name: table X, process Y`.
    pub disagreements: Vec<String>,
}

/// Reads `_Py_DebugOffsets` at `runtime`. `None` when the layout has no description of the
/// struct (before 3.13) or it is unreadable.
pub struct Reader {
    raw: Vec<u8>,
}

impl Reader {
    pub fn read(memory: &impl Memory, runtime: u64, layout: &Layout) -> Option<Reader> {
        let positions = layout.debug_offsets.as_ref()?;
        let raw = memory.read_vec(runtime, positions.size as usize).ok()?;
        Some(Reader { raw })
    }

    fn word(&self, position: Option<u32>) -> Option<u64> {
        crate::bytes::u64_at(&self.raw, position? as usize)
    }

    pub fn free_threaded(&self, positions: &DebugOffsetsLayout) -> bool {
        self.word(positions.free_threaded)
            .is_some_and(|flag| flag != 0)
    }

    /// Apply every offset the process gives to `layout`, noting disagreements.
    pub fn apply(&self, layout: &mut Layout) -> DebugOffsets {
        let Some(p) = layout.debug_offsets.clone() else {
            return DebugOffsets::default();
        };
        let mut result = DebugOffsets::default();
        let mut take = |name: &str, field: &mut Option<u32>, position: Option<u32>| {
            let Some(value) = self.word(position).and_then(|v| u32::try_from(v).ok()) else {
                return;
            };
            if *field != Some(value) {
                result.disagreements.push(format!(
                    "{name}: table {}, process {value}",
                    field.map_or("none".to_string(), |f| f.to_string())
                ));
                *field = Some(value);
            }
        };
        let l = layout;
        // Required (u32) fields go through an Option and back.
        macro_rules! required {
            ($name:expr, $field:expr, $position:expr) => {{
                let mut value = Some($field);
                take($name, &mut value, $position);
                $field = value.unwrap_or($field);
            }};
        }
        take(
            "runtime_state.interpreters_head",
            &mut l.runtime_interpreters_head,
            p.runtime_state_interpreters_head,
        );
        required!(
            "interpreter_state.next",
            l.interp_next,
            p.interpreter_state_next
        );
        required!(
            "interpreter_state.threads_head",
            l.interp_tstate_head,
            p.interpreter_state_threads_head
        );
        required!(
            "interpreter_state.imports_modules",
            l.interp_modules,
            p.interpreter_state_imports_modules
        );
        take(
            "interpreter_state.ceval_gil",
            &mut l.interp_ceval_gil,
            p.interpreter_state_ceval_gil,
        );
        required!("thread_state.next", l.tstate_next, p.thread_state_next);
        required!(
            "thread_state.interp",
            l.tstate_interp,
            p.thread_state_interp
        );
        take(
            "thread_state.current_frame",
            &mut l.tstate_current_frame,
            p.thread_state_current_frame,
        );
        required!(
            "thread_state.thread_id",
            l.tstate_thread_id,
            p.thread_state_thread_id
        );
        take(
            "thread_state.native_thread_id",
            &mut l.tstate_native_thread_id,
            p.thread_state_native_thread_id,
        );
        take(
            "interpreter_frame.previous",
            &mut l.iframe_previous,
            p.interpreter_frame_previous,
        );
        take(
            "interpreter_frame.executable",
            &mut l.iframe_code,
            p.interpreter_frame_executable,
        );
        take(
            "interpreter_frame.instr_ptr",
            &mut l.iframe_instr_ptr,
            p.interpreter_frame_instr_ptr,
        );
        take(
            "interpreter_frame.owner",
            &mut l.iframe_owner,
            p.interpreter_frame_owner,
        );
        required!(
            "code_object.filename",
            l.code_co_filename,
            p.code_object_filename
        );
        required!("code_object.name", l.code_co_name, p.code_object_name);
        take(
            "code_object.qualname",
            &mut l.code_co_qualname,
            p.code_object_qualname,
        );
        take(
            "code_object.linetable",
            &mut l.code_co_linetable,
            p.code_object_linetable,
        );
        required!(
            "code_object.firstlineno",
            l.code_co_firstlineno,
            p.code_object_firstlineno
        );
        take(
            "code_object.co_code_adaptive",
            &mut l.code_co_code_adaptive,
            p.code_object_co_code_adaptive,
        );
        required!("pyobject.ob_type", l.object_ob_type, p.pyobject_ob_type);
        required!("type_object.tp_name", l.type_tp_name, p.type_object_tp_name);
        required!(
            "type_object.tp_flags",
            l.type_tp_flags,
            p.type_object_tp_flags
        );
        take(
            "dict_object.ma_keys",
            &mut l.dict_ma_keys,
            p.dict_object_ma_keys,
        );
        take(
            "dict_object.ma_values",
            &mut l.dict_ma_values,
            p.dict_object_ma_values,
        );
        take(
            "long_object.lv_tag",
            &mut l.long_lv_tag,
            p.long_object_lv_tag,
        );
        required!(
            "long_object.ob_digit",
            l.long_digits,
            p.long_object_ob_digit
        );
        required!(
            "bytes_object.ob_size",
            l.var_object_ob_size,
            p.bytes_object_ob_size
        );
        required!(
            "bytes_object.ob_sval",
            l.bytes_ob_sval,
            p.bytes_object_ob_sval
        );
        take(
            "unicode_object.state",
            &mut l.unicode_state,
            p.unicode_object_state,
        );
        take(
            "unicode_object.length",
            &mut l.unicode_length,
            p.unicode_object_length,
        );
        take(
            "unicode_object.asciiobject_size",
            &mut l.unicode_ascii_size,
            p.unicode_object_asciiobject_size,
        );
        // `locked` and `last_holder` are given relative to the interpreter
        // (`offsetof(PyInterpreterState, _gil.locked)`); the table keeps them relative to the GIL
        // struct that `ceval.gil` points to. `enabled` is already relative to the GIL struct, and
        // only free-threaded builds have it (elsewhere the word is 0, meaning "absent").
        let mut relative_to_gil = Vec::new();
        if let Some(gil) = self.word(p.interpreter_state_gil_runtime_state) {
            for (name, field, position) in [
                (
                    "gil.locked",
                    &mut l.gil_locked,
                    p.interpreter_state_gil_runtime_state_locked,
                ),
                (
                    "gil.last_holder",
                    &mut l.gil_last_holder,
                    p.interpreter_state_gil_runtime_state_holder,
                ),
            ] {
                let value = self
                    .word(position)
                    .map(|absolute| absolute.wrapping_sub(gil));
                relative_to_gil.push((name, field, value));
            }
        }
        if self.free_threaded(&p) {
            let value = self.word(p.interpreter_state_gil_runtime_state_enabled);
            relative_to_gil.push(("gil.enabled", &mut l.gil_enabled, value));
        }
        for (name, field, value) in relative_to_gil {
            let Some(value) = value.and_then(|v| u32::try_from(v).ok()) else {
                continue;
            };
            if *field != Some(value) {
                result
                    .disagreements
                    .push(format!("{name}: table {field:?}, process {value}"));
                *field = Some(value);
            }
        }
        result
    }
}
