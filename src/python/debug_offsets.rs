//! `_Py_DebugOffsets`: the table of offsets that CPython 3.13+ puts at the very start of
//! `_PyRuntime` for out-of-process readers (Include/internal/pycore_runtime.h in 3.13,
//! pycore_debug_offsets.h from 3.14).
//!
//! Where it has a field, the process's value wins over the generated table, and every
//! disagreement is reported (it would mean the table is wrong for this build). The struct itself
//! changes between minor versions, so where each member sits in it is generated data too
//! ([`DebugOffsetsLayout`]).

use super::debug_offsets_map::mappings;
use super::layout::{DebugOffsetsLayout, Layout};
use crate::memory::Memory;

/// Larger offsets in `_Py_DebugOffsets` are corrupt (the largest real ones, in
/// `PyInterpreterState`, are below 16 KiB).
const MAX_PLAUSIBLE_OFFSET: u32 = 1 << 16;

/// What the process's own `_Py_DebugOffsets` said.
#[derive(Debug, Clone, Default)]
pub struct DebugOffsets {
    /// Fields where the generated table disagreed: `name: table X, process Y`.
    pub disagreements: Vec<String>,
    /// Every member the process gave (`thread_state.next`, ...).
    pub applied: Vec<&'static str>,
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

    pub fn word(&self, position: Option<u32>) -> Option<u64> {
        crate::bytes::u64_at(&self.raw, position? as usize)
    }

    pub fn free_threaded(&self, positions: &DebugOffsetsLayout) -> bool {
        self.word(positions.free_threaded)
            .is_some_and(|flag| flag != 0)
    }

    /// Apply every offset the process gives to `layout` (the spec's mapping,
    /// `debug_offsets_map.rs`), noting disagreements.
    pub fn apply(&self, layout: &mut Layout) -> DebugOffsets {
        let Some(positions) = layout.debug_offsets.clone() else {
            return DebugOffsets::default();
        };
        let free_threaded = self.free_threaded(&positions);
        let mut result = DebugOffsets::default();
        for mapping in mappings(layout, &positions) {
            let Some(mut value) = self.word(mapping.position) else {
                continue;
            };
            if let Some(base) = mapping.relative_to {
                let Some(base) = self.word(Some(base)) else {
                    continue;
                };
                value = value.wrapping_sub(base);
            }
            if mapping.zero_means_absent_unless_free_threaded && value == 0 && !free_threaded {
                continue;
            }
            // No member of these structs sits this far in: a corrupt table is not taken.
            let value = match u32::try_from(value) {
                Ok(value) if value < MAX_PLAUSIBLE_OFFSET => value,
                _ => {
                    result.disagreements.push(format!(
                        "{}: the process gives {value}, which no such member can be; the table's kept",
                        mapping.name
                    ));
                    continue;
                }
            };
            result.applied.push(mapping.name);
            let table = mapping.slot.get();
            if table != Some(value) {
                result.disagreements.push(format!(
                    "{}: table {}, process {value} (the process's is used)",
                    mapping.name,
                    table.map_or("none".to_string(), |f| f.to_string())
                ));
                mapping.slot.set(value);
            }
        }
        result
    }
}
