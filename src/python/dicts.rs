//! Reading `dict` objects and instance attributes.
//!
//! Dict storage changed across versions (Objects/dict-common.h ≤3.10,
//! Include/internal/pycore_dict.h 3.11+): the index array's width comes from `dk_size` (≤3.10)
//! or `dk_log2_index_bytes` (3.11+); entries are (hash, key, value) or, for str-only keys on
//! 3.11+, (key, value); split tables keep values apart in `ma_values`.
//! Instance attributes live in a dict at `tp_dictoffset` (≤3.10), in a "managed" dict or values
//! array just before the object (3.11, 3.12), or inline after it (3.13+).

use super::layout::Shape;
use super::objects::{ObjectError, ObjectResult, Objects, MAX_DICT_ENTRIES};
use crate::memory::Memory;

/// `Py_TPFLAGS_MANAGED_DICT` (3.11+) and `Py_TPFLAGS_INLINE_VALUES` (3.13+), Include/object.h.
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;

/// The `(key, value)` object pointers of a dict, in insertion order, skipping deleted slots.
pub fn dict_items<M: Memory>(objects: &Objects<'_, M>, dict: u64) -> ObjectResult<Vec<(u64, u64)>> {
    let layout = objects.layout;
    if let (Some(mask), Some(table)) = (layout.dict_ma_mask, layout.dict_ma_table) {
        return open_addressing_items(objects, dict, mask, table);
    }
    let (Some(keys_field), Some(values_field)) = (layout.dict_ma_keys, layout.dict_ma_values)
    else {
        return Err(ObjectError::Invalid("layout lacks dict fields".into()));
    };
    let keys = objects.pointer(dict.wrapping_add(u64::from(keys_field)))?;
    let values = objects.pointer(dict.wrapping_add(u64::from(values_field)))?;
    let values = (values != 0).then_some(values);
    keys_items(objects, keys, values)
}

/// 2.7's dict: `ma_table` holds `ma_mask + 1` (hash, key, value) slots; empty and deleted
/// slots have no value (Objects/dictobject.c).
fn open_addressing_items<M: Memory>(
    objects: &Objects<'_, M>,
    dict: u64,
    mask_field: u32,
    table_field: u32,
) -> ObjectResult<Vec<(u64, u64)>> {
    let layout = objects.layout;
    let mask = objects
        .memory
        .read_u64(dict.wrapping_add(u64::from(mask_field)))?;
    if mask >= MAX_DICT_ENTRIES || !(mask + 1).is_power_of_two() {
        return Err(ObjectError::Invalid(format!(
            "dict at {dict:#x} has mask {mask:#x}"
        )));
    }
    let table = objects.pointer(dict.wrapping_add(u64::from(table_field)))?;
    let entry_size = u64::from(layout.dict_entry_size);
    let raw = objects
        .memory
        .read_vec(table, ((mask + 1) * entry_size) as usize)?;
    Ok(raw
        .chunks_exact(entry_size as usize)
        .filter_map(|entry| {
            let key = crate::bytes::u64_at(entry, 8)?;
            let value = crate::bytes::u64_at(entry, 16)?;
            (key != 0 && value != 0).then_some((key, value))
        })
        .collect())
}

/// Entries of a `PyDictKeysObject`; values come from `values` (a split table) when given.
fn keys_items<M: Memory>(
    objects: &Objects<'_, M>,
    keys: u64,
    values: Option<u64>,
) -> ObjectResult<Vec<(u64, u64)>> {
    let layout = objects.layout;
    let memory = objects.memory;
    let (Some(nentries_field), Some(indices_field)) =
        (layout.dictkeys_dk_nentries, layout.dictkeys_dk_indices)
    else {
        return Err(ObjectError::Invalid("layout lacks dict key fields".into()));
    };
    let nentries = memory.read_u64(keys.wrapping_add(u64::from(nentries_field)))?;
    if nentries > MAX_DICT_ENTRIES {
        return Err(ObjectError::Invalid(format!(
            "dict keys at {keys:#x} claim {nentries} entries"
        )));
    }
    let indices = keys.wrapping_add(u64::from(indices_field));
    let (index_bytes, entry_size) = match (
        layout.dictkeys_dk_size,
        layout.dictkeys_dk_log2_index_bytes,
        layout.dictkeys_dk_kind,
    ) {
        (Some(size_field), _, _) => {
            let size = memory.read_u64(keys.wrapping_add(u64::from(size_field)))?;
            let width = match size {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xffff_ffff => 4,
                _ => 8,
            };
            (
                size.saturating_mul(width),
                u64::from(layout.dict_entry_size),
            )
        }
        (None, Some(log2_bytes), Some(kind_field)) => {
            let log2 = memory.read_u8(keys.wrapping_add(u64::from(log2_bytes)))?;
            let kind = memory.read_u8(keys.wrapping_add(u64::from(kind_field)))?;
            let entry = match (kind, layout.dict_unicode_entry_size) {
                (0, _) | (_, None) => layout.dict_entry_size,
                (_, Some(unicode)) => unicode,
            };
            (
                1u64.checked_shl(u32::from(log2)).unwrap_or(u64::MAX),
                u64::from(entry),
            )
        }
        _ => return Err(ObjectError::Invalid("layout lacks dict key fields".into())),
    };
    if index_bytes > MAX_DICT_ENTRIES * 8 {
        return Err(ObjectError::Invalid(format!(
            "dict keys at {keys:#x} claim {index_bytes} index bytes"
        )));
    }
    let entries = indices.wrapping_add(index_bytes);
    let raw = memory.read_vec(entries, (nentries * entry_size) as usize)?;
    // (hash, key, value) entries have the key at 8; (key, value) ones at 0.
    let key_at = if entry_size >= 24 { 8 } else { 0 };
    let values_base =
        values.map(|v| v.wrapping_add(u64::from(layout.dict_values_values.unwrap_or(0))));
    let mut items = Vec::new();
    for (index, entry) in raw.chunks_exact(entry_size as usize).enumerate() {
        let key = crate::bytes::u64_at(entry, key_at).unwrap_or(0);
        let value = match values_base {
            Some(base) => memory.read_u64(base.wrapping_add(index as u64 * 8))?,
            None => crate::bytes::u64_at(entry, key_at + 8).unwrap_or(0),
        };
        if key != 0 && value != 0 {
            items.push((key, value));
        }
    }
    Ok(items)
}

/// The value stored under the `str` key `name` in `dict`.
pub fn dict_get_str<M: Memory>(
    objects: &Objects<'_, M>,
    dict: u64,
    name: &str,
) -> ObjectResult<Option<u64>> {
    find_str_key(objects, dict_items(objects, dict)?, name)
}

fn find_str_key<M: Memory>(
    objects: &Objects<'_, M>,
    items: Vec<(u64, u64)>,
    name: &str,
) -> ObjectResult<Option<u64>> {
    for (key, value) in items {
        // Keys that are not readable strings cannot be the one we look for.
        if objects.unicode(key).ok().as_deref() == Some(name) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// The attribute `name` of an ordinary class instance, from its instance dict or values.
pub fn instance_attribute<M: Memory>(
    objects: &Objects<'_, M>,
    object: u64,
    name: &str,
) -> ObjectResult<Option<u64>> {
    let layout = objects.layout;
    let type_object = objects.pointer(object.wrapping_add(u64::from(layout.object_ob_type)))?;
    let flags = objects.pointer(type_object.wrapping_add(u64::from(layout.type_tp_flags)))?;
    let is_311_plus = (layout.major, layout.minor) >= (3, 11);
    if is_311_plus && flags & TPFLAGS_MANAGED_DICT != 0 {
        let cached_keys = || match layout.heaptype_ht_cached_keys {
            Some(field) => objects.pointer(type_object.wrapping_add(u64::from(field))),
            None => Err(ObjectError::Invalid("layout lacks ht_cached_keys".into())),
        };
        // 3.13+: values inline after the object while `valid` (byte 3 of PyDictValues).
        if layout.minor >= 13 && flags & TPFLAGS_INLINE_VALUES != 0 {
            let basicsize =
                objects.pointer(type_object.wrapping_add(u64::from(layout.type_tp_basicsize)))?;
            let values = object.wrapping_add(basicsize);
            if objects.memory.read_u8(values.wrapping_add(3))? != 0 {
                let items = keys_items(objects, cached_keys()?, Some(values))?;
                return find_str_key(objects, items, name);
            }
        }
        // MANAGED_DICT_OFFSET (Include/internal/pycore_object.h): 3 words before the object,
        // 1 in free-threaded builds.
        let words_before = if layout.shape == Shape::FreeThreaded {
            1
        } else {
            3
        };
        let managed = objects.pointer(object.wrapping_sub(words_before * 8))?;
        // 3.12 stores a values pointer as `values - 1`, so its low bit is set (_PyDictOrValues,
        // Include/internal/pycore_object.h).
        if layout.minor == 12 && managed & 1 == 1 {
            let items = keys_items(objects, cached_keys()?, Some(managed.wrapping_add(1)))?;
            return find_str_key(objects, items, name);
        }
        if managed != 0 {
            return dict_get_str(objects, managed, name);
        }
        // 3.11: values pointer one word further back.
        if layout.minor == 11 {
            let values = objects.pointer(object.wrapping_sub(4 * 8))?;
            if values != 0 {
                let items = keys_items(objects, cached_keys()?, Some(values))?;
                return find_str_key(objects, items, name);
            }
        }
        return Ok(None);
    }
    let dict_offset =
        objects.pointer(type_object.wrapping_add(u64::from(layout.type_tp_dictoffset)))? as i64;
    if dict_offset <= 0 || dict_offset > 1 << 16 {
        return Ok(None);
    }
    let dict = objects.pointer(object.wrapping_add(dict_offset as u64))?;
    if dict == 0 {
        return Ok(None);
    }
    dict_get_str(objects, dict, name)
}
