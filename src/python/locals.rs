//! A frame's arguments, locals, cells and free variables, in the code object's order, with
//! their values' reprs ([`values`](super::values)).
//!
//! Where the names and slots are, by which layout fields exist (no version tests here):
//! - `PyFrameObject.f_localsplus` (≤3.10): `co_varnames` slots (parameters first), then
//!   `co_cellvars` cells, then `co_freevars` cells; a parameter that a closure captures has an
//!   empty local slot and lives in the cell of the same name, which is shown in its place;
//! - `_PyInterpreterFrame.localsplus` (3.11+): one slot per `co_localsplusnames` entry, its kind
//!   in `co_localspluskinds` (`CO_FAST_LOCAL`, `_CELL`, `_FREE`; `_HIDDEN` ones, the inlined
//!   comprehensions' variables of 3.12+, are left out as `frame.f_locals` leaves them out); a
//!   cell slot holds its cell once `MAKE_CELL` ran, the bare value before; 3.14+ slots are
//!   tagged `_PyStackRef`s (the low bits masked).
//!
//! Parameters are the first `co_argcount + co_kwonlyargcount` slots, plus one for `*args`
//! (`CO_VARARGS`) and one for `**kwargs` (`CO_VARKEYWORDS`). Unbound variables (an empty slot,
//! an empty cell) are left out.

use std::collections::HashMap;
use std::sync::Arc;

use super::objects::{ObjectError, ObjectResult, Objects};
use super::values::Reprs;
use crate::memory::Memory;

/// `CO_VARARGS`, `CO_VARKEYWORDS` (Include/cpython/code.h; the same since 2.x).
const CO_VARARGS: i32 = 0x4;
const CO_VARKEYWORDS: i32 = 0x8;
/// `CO_FAST_HIDDEN`, `CO_FAST_CELL`, `CO_FAST_FREE` (Include/internal/pycore_code.h, 3.11+).
const CO_FAST_HIDDEN: u8 = 0x10;
const CO_FAST_CELL: u8 = 0x40;
const CO_FAST_FREE: u8 = 0x80;
/// No code object has more slots (CPython's own limit is far lower in practice).
const MAX_SLOTS: i64 = 1 << 16;
/// Locals read in all, over every frame of the core: past it, frames have no locals.
pub const MAX_TOTAL_LOCALS: usize = 1_000_000;
/// Slot tag bits of 3.14+'s `_PyStackRef` (pointers are 8-aligned, so masking is harmless
/// before 3.14).
const STACKREF_TAG_BITS: u64 = 0x7;

/// One bound variable of a frame: the report's own type, built here so that a frame's
/// variables are not copied into it.
pub type Local = crate::frame::LocalReport;
pub use crate::frame::LocalKind;

/// One variable slot of a code object.
#[derive(Debug)]
struct Slot {
    name: Arc<str>,
    kind: LocalKind,
    index: usize,
    /// The slot may hold a cell, whose contents are the value.
    cell: bool,
    /// ≤3.10: a captured parameter's cell slot, read when its own slot is empty.
    also_cell: Option<usize>,
}

/// How a frame family keeps its slots.
#[derive(Debug, Clone, Copy)]
pub enum Family {
    /// `PyFrameObject`, slots at `f_localsplus`.
    FrameObject,
    /// `_PyInterpreterFrame`, slots at `localsplus`.
    InterpreterFrame,
}

/// Reads frames' locals; one per core (it caches each code object's slots).
pub struct LocalsReader<'a, M: Memory> {
    objects: &'a Objects<'a, M>,
    reprs: Reprs<'a, M>,
    codes: HashMap<u64, Arc<Vec<Slot>>, crate::bytes::AddressHash>,
    total: usize,
}

impl<'a, M: Memory> LocalsReader<'a, M> {
    pub fn new(objects: &'a Objects<'a, M>) -> Self {
        LocalsReader {
            objects,
            reprs: Reprs::new(objects),
            codes: HashMap::default(),
            total: 0,
        }
    }

    /// How many variables were read so far (against `MAX_TOTAL_LOCALS`).
    pub fn read_so_far(&self) -> usize {
        self.total
    }

    /// Give back what a walk that is done again spent.
    pub fn set_read_so_far(&mut self, total: usize) {
        self.total = total;
    }

    /// The object bound to the variable `name` of the frame at `frame` running `code` (a
    /// cell's contents for a cell), if it is bound.
    pub fn local_object(
        &mut self,
        family: Family,
        frame: u64,
        code: u64,
        name: &str,
    ) -> ObjectResult<Option<u64>> {
        let (base, slots) = self.frame_slots(family, frame, code)?;
        let Some(slot) = slots.iter().find(|slot| &*slot.name == name) else {
            return Ok(None);
        };
        let value = self
            .objects
            .pointer(base.wrapping_add(slot.index as u64 * 8))?
            & !STACKREF_TAG_BITS;
        if value != 0 && slot.cell {
            return Ok(self.reprs.cell_contents(value));
        }
        Ok((value != 0).then_some(value))
    }

    /// Where the frame at `frame` keeps its slots, and what `code` says they are (read once
    /// per code object).
    fn frame_slots(
        &mut self,
        family: Family,
        frame: u64,
        code: u64,
    ) -> ObjectResult<(u64, Arc<Vec<Slot>>)> {
        let layout = self.objects.layout;
        let base = match family {
            Family::FrameObject => layout.frame.f_localsplus,
            Family::InterpreterFrame => layout.iframe.localsplus,
        }
        .ok_or_else(|| ObjectError::Invalid("layout lacks the frame's locals".into()))?;
        let slots = match self.codes.get(&code) {
            Some(slots) => Arc::clone(slots),
            None => {
                let slots = Arc::new(self.slots(code)?);
                self.codes.insert(code, Arc::clone(&slots));
                slots
            }
        };
        Ok((frame.wrapping_add(u64::from(base)), slots))
    }

    /// The bound variables of the frame at `frame` running `code`.
    pub fn locals(&mut self, family: Family, frame: u64, code: u64) -> ObjectResult<Vec<Local>> {
        if self.total > MAX_TOTAL_LOCALS {
            return Err(ObjectError::Invalid(format!(
                "more than {MAX_TOTAL_LOCALS} locals in all frames: the core is corrupt"
            )));
        }
        let (base, slots) = self.frame_slots(family, frame, code)?;
        let mut locals = Vec::with_capacity(slots.len());
        for slot in slots.iter() {
            self.total += 1;
            let address = base.wrapping_add(slot.index as u64 * 8);
            let mut value = match self.objects.pointer(address) {
                Ok(value) => value & !STACKREF_TAG_BITS,
                Err(_) => {
                    locals.push(unreadable(slot, address));
                    continue;
                }
            };
            let mut cell = slot.cell;
            if value == 0 {
                if let Some(index) = slot.also_cell {
                    let address = base.wrapping_add(index as u64 * 8);
                    match self.objects.pointer(address) {
                        Ok(v) => value = v & !STACKREF_TAG_BITS,
                        Err(_) => {
                            locals.push(unreadable(slot, address));
                            continue;
                        }
                    }
                    cell = true;
                }
            }
            if value != 0 && cell {
                if let Some(contents) = self.reprs.cell_contents(value) {
                    value = contents;
                }
            }
            if value == 0 {
                continue; // not bound yet
            }
            let shown = self.reprs.value(value);
            locals.push(Local {
                name: slot.name.clone(),
                kind: slot.kind,
                type_name: shown.type_name,
                repr: shown.repr,
            });
        }
        Ok(locals)
    }

    fn parameters(&self, code: u64) -> ObjectResult<usize> {
        let objects = self.objects;
        let layout = objects.layout;
        let positional = objects.read(code, layout.code.co_argcount)?;
        let keyword = match layout.code.co_kwonlyargcount {
            Some(field) => objects.read(code, field)?,
            None => 0,
        };
        let flags = objects.read(code, layout.code.co_flags)?;
        let star = i32::from(flags & CO_VARARGS != 0) + i32::from(flags & CO_VARKEYWORDS != 0);
        let total = i64::from(positional) + i64::from(keyword) + i64::from(star);
        if !(0..=MAX_SLOTS).contains(&total) {
            return Err(ObjectError::Invalid(format!(
                "code object at {code:#x} claims {total} parameters"
            )));
        }
        Ok(total as usize)
    }

    fn names(&self, tuple: u64) -> ObjectResult<Vec<String>> {
        let objects = self.objects;
        let size = objects.ob_size(tuple)?;
        if !(0..=MAX_SLOTS).contains(&size) {
            return Err(ObjectError::Invalid(format!(
                "name tuple at {tuple:#x} claims {size} names"
            )));
        }
        let items = tuple.wrapping_add(u64::from(objects.layout.tuple.ob_item));
        let raw = objects.memory.read_vec(items, size as usize * 8)?;
        raw.chunks_exact(8)
            .map(|chunk| objects.unicode(crate::bytes::u64_at(chunk, 0).unwrap_or(0)))
            .collect()
    }

    fn slots(&self, code: u64) -> ObjectResult<Vec<Slot>> {
        let objects = self.objects;
        let layout = objects.layout;
        let parameters = self.parameters(code)?;
        let kind_of_index = |index: usize, otherwise: LocalKind| {
            if index < parameters {
                LocalKind::Argument
            } else {
                otherwise
            }
        };
        if let (Some(names), Some(kinds)) = (
            layout.code.co_localsplusnames,
            layout.code.co_localspluskinds,
        ) {
            let names = self.names(objects.read(code, names)?)?;
            let kinds = objects.bytes(objects.read(code, kinds)?)?;
            let mut slots = Vec::with_capacity(names.len());
            for (index, (name, kind)) in names.into_iter().zip(kinds).enumerate() {
                if kind & CO_FAST_HIDDEN != 0 {
                    continue;
                }
                let otherwise = if kind & CO_FAST_FREE != 0 {
                    LocalKind::Free
                } else if kind & CO_FAST_CELL != 0 {
                    LocalKind::Cell
                } else {
                    LocalKind::Local
                };
                slots.push(Slot {
                    name: name.into(),
                    kind: kind_of_index(index, otherwise),
                    index,
                    cell: kind & (CO_FAST_CELL | CO_FAST_FREE) != 0,
                    also_cell: None,
                });
            }
            return Ok(slots);
        }
        let (Some(varnames), Some(cellvars), Some(freevars)) = (
            layout.code.co_varnames,
            layout.code.co_cellvars,
            layout.code.co_freevars,
        ) else {
            return Err(ObjectError::Invalid(
                "layout names no code object variables".into(),
            ));
        };
        let varnames = self.names(objects.read(code, varnames)?)?;
        let cellvars = self.names(objects.read(code, cellvars)?)?;
        let freevars = self.names(objects.read(code, freevars)?)?;
        let locals = varnames.len();
        let mut captured = vec![false; cellvars.len()];
        let mut slots = Vec::with_capacity(locals + cellvars.len() + freevars.len());
        for (index, name) in varnames.into_iter().enumerate() {
            let also_cell = if index < parameters {
                cellvars.iter().position(|c| *c == name)
            } else {
                None
            };
            if let Some(flag) = also_cell.and_then(|cell| captured.get_mut(cell)) {
                *flag = true;
            }
            slots.push(Slot {
                name: name.into(),
                kind: kind_of_index(index, LocalKind::Local),
                index,
                cell: false,
                also_cell: also_cell.map(|cell| locals + cell),
            });
        }
        for (cell, name) in cellvars.into_iter().enumerate() {
            if !captured.get(cell).copied().unwrap_or(false) {
                slots.push(Slot {
                    name: name.into(),
                    kind: LocalKind::Cell,
                    index: locals + cell,
                    cell: true,
                    also_cell: None,
                });
            }
        }
        let frees_start = locals + captured.len();
        for (free, name) in freevars.into_iter().enumerate() {
            slots.push(Slot {
                name: name.into(),
                kind: LocalKind::Free,
                index: frees_start + free,
                cell: true,
                also_cell: None,
            });
        }
        Ok(slots)
    }
}

fn unreadable(slot: &Slot, address: u64) -> Local {
    Local {
        name: slot.name.clone(),
        kind: slot.kind,
        type_name: None,
        repr: format!("<unreadable at {address:#x}>"),
    }
}
