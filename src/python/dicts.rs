//! Reading `dict` and `set` objects and instance attributes.
//!
//! Dict storage changed across versions (Objects/dict-common.h ≤3.10,
//! Include/internal/pycore_dict.h 3.11+): the index array's width comes from `dk_size` (≤3.10)
//! or `dk_log2_index_bytes` (3.11+); entries are (hash, key, value) or, for str-only keys on
//! 3.11+, (key, value); split tables keep values apart in `ma_values`, and from 3.11 the
//! instance's own insertion order beside them ([`InsertionOrder`]), which `repr()` follows.
//! Instance attributes live in a dict at `tp_dictoffset` (≤3.10), in a "managed" dict or values
//! array just before the object (3.11, 3.12), or inline after it (3.13+).

use super::field::{Field, Ptr};
use super::objects::{ObjectError, ObjectResult, Objects, MAX_DICT_ENTRIES};
use crate::memory::Memory;

/// `Py_TPFLAGS_MANAGED_DICT` (3.11+) and `Py_TPFLAGS_INLINE_VALUES` (3.13+), Include/object.h.
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;

/// The table's size and the keys of a set's hash table (Objects/setobject.c: `mask + 1`
/// entries of hash and key), in table order (as Python iterates it): every non-empty slot, the
/// `<dummy>` key of deleted ones too (callers that print keys tell it by its type). `max_mask`
/// bounds the table.
pub fn set_keys<M: Memory>(
    objects: &Objects<'_, M>,
    set: u64,
    max_mask: u64,
) -> ObjectResult<(u64, Vec<u64>)> {
    let layout = objects.layout;
    let mask = objects.read(set, layout.set.mask)? as u64;
    if mask >= max_mask || !(mask + 1).is_power_of_two() {
        return Err(ObjectError::Invalid(format!(
            "set at {set:#x} has mask {mask:#x}"
        )));
    }
    let table = objects.read(set, layout.set.table)?;
    let entry_size = u64::from(layout.set.entry_size).max(8);
    let key_at = layout.set.entry_key as usize;
    let raw = objects
        .memory
        .read_vec(table, ((mask + 1) * entry_size) as usize)?;
    let keys = raw
        .chunks_exact(entry_size as usize)
        .filter_map(|entry| crate::bytes::u64_at(entry, key_at))
        .filter(|&key| key != 0)
        .collect();
    Ok((mask + 1, keys))
}

/// The `(key, value)` object pointers of a dict, in insertion order, skipping deleted slots.
pub fn dict_items<M: Memory>(objects: &Objects<'_, M>, dict: u64) -> ObjectResult<Vec<(u64, u64)>> {
    let layout = objects.layout;
    if let (Some(mask), Some(table)) = (layout.dict.ma_mask, layout.dict.ma_table) {
        return open_addressing_items(objects, dict, mask, table);
    }
    let Some((keys, values)) = keys_and_values(objects, dict)? else {
        return Err(ObjectError::Invalid("layout lacks dict fields".into()));
    };
    keys_items(objects, keys, values)
}

/// A 3.x dict's keys table and, for a split table, its values array (`ma_keys`, `ma_values`);
/// `None` for a layout without them (2.7's open addressing).
fn keys_and_values<M: Memory>(
    objects: &Objects<'_, M>,
    dict: u64,
) -> ObjectResult<Option<(u64, Option<u64>)>> {
    let layout = objects.layout;
    let (Some(keys_field), Some(values_field), None) = (
        layout.dict.ma_keys,
        layout.dict.ma_values,
        layout.dict.ma_table,
    ) else {
        return Ok(None);
    };
    let keys = objects.read(dict, keys_field)?;
    let values = objects.read(dict, values_field)?;
    Ok(Some((keys, (values != 0).then_some(values))))
}

/// 2.7's dict: `ma_table` holds `ma_mask + 1` (hash, key, value) slots; empty and deleted
/// slots have no value (Objects/dictobject.c).
fn open_addressing_items<M: Memory>(
    objects: &Objects<'_, M>,
    dict: u64,
    mask_field: Field<i64>,
    table_field: Field<Ptr>,
) -> ObjectResult<Vec<(u64, u64)>> {
    let layout = objects.layout;
    let mask = objects.read(dict, mask_field)? as u64;
    if mask >= MAX_DICT_ENTRIES || !(mask + 1).is_power_of_two() {
        return Err(ObjectError::Invalid(format!(
            "dict at {dict:#x} has mask {mask:#x}"
        )));
    }
    let table = objects.read(dict, table_field)?;
    let entry_size = u64::from(layout.dict.entry_size);
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

/// Where a `PyDictKeysObject`'s index table and entries are.
struct KeysTable {
    /// Slots in the index table (a power of two whose index width agrees with the header),
    /// when the layout tells (3.6+): only then is the table probed.
    slots: Option<u64>,
    indices: u64,
    entries: u64,
    nentries: u64,
    entry_size: u64,
    /// Where an entry keeps its key: (hash, key, value) entries at 8, (key, value) ones at 0.
    key_at: u64,
}

impl KeysTable {
    fn read<M: Memory>(objects: &Objects<'_, M>, keys: u64) -> ObjectResult<Self> {
        let layout = objects.layout;
        let (Some(nentries_field), Some(indices_field)) =
            (layout.dict_keys.dk_nentries, layout.dict_keys.dk_indices)
        else {
            return Err(ObjectError::Invalid("layout lacks dict key fields".into()));
        };
        let nentries = objects.read(keys, nentries_field)? as u64;
        if nentries > MAX_DICT_ENTRIES {
            return Err(ObjectError::Invalid(format!(
                "dict keys at {keys:#x} claim {nentries} entries"
            )));
        }
        let (slots, index_bytes, entry_size) = match (
            layout.dict_keys.dk_size,
            layout.dict_keys.dk_log2_index_bytes,
            layout.dict_keys.dk_kind,
        ) {
            (Some(size_field), _, _) => {
                let size = objects.read(keys, size_field)? as u64;
                (
                    Some(size),
                    size.saturating_mul(index_width_for(size)),
                    u64::from(layout.dict.entry_size),
                )
            }
            (None, Some(log2_bytes), Some(kind_field)) => {
                let log2 = objects.read(keys, log2_bytes)?;
                let kind = objects.read(keys, kind_field)?;
                let entry = match (kind, layout.dict.unicode_entry_size) {
                    (0, _) | (_, None) => layout.dict.entry_size,
                    (_, Some(unicode)) => unicode,
                };
                // Only probes need the table's size: without it the entries are still read
                // (a packed core made before probing has no copy of this byte).
                let slots = layout
                    .dict_keys
                    .dk_log2_size
                    .and_then(|field| objects.read(keys, field).ok())
                    .and_then(|log2| 1u64.checked_shl(u32::from(log2)));
                (
                    slots,
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
        let indices = keys.wrapping_add(u64::from(indices_field));
        // Probes need the index width CPython gives a table of this size (`DK_IXSIZE`, 3.11+'s
        // `dk_log2_index_bytes`); another one means a corrupt header: no probing.
        let slots = slots.filter(|&slots| {
            slots.is_power_of_two()
                && slots.checked_mul(index_width_for(slots)) == Some(index_bytes)
        });
        Ok(Self {
            slots,
            indices,
            entries: indices.wrapping_add(index_bytes),
            nentries,
            entry_size,
            key_at: if entry_size >= 24 { 8 } else { 0 },
        })
    }

    /// The index table's slot `slot`: an entry's index, or −1 (empty) or −2 (deleted).
    fn index<M: Memory>(&self, memory: &M, slot: u64) -> Option<i64> {
        let width = index_width_for(self.slots?);
        let at = self.indices.wrapping_add(slot.wrapping_mul(width));
        let mut bytes = [0u8; 8];
        // `width` is 1, 2, 4 or 8.
        let raw = bytes.get_mut(..width as usize)?;
        memory.read(at, raw).ok()?;
        let unsigned = u64::from_le_bytes(bytes);
        let unused = 64 - 8 * width as u32;
        Some(((unsigned << unused) as i64) >> unused)
    }
}

/// Bytes per index of a table of `slots` slots (`DK_IXSIZE`, Objects/dict-common.h; 3.11+
/// `new_keys_object` sizes `dk_log2_index_bytes` by the same rule).
fn index_width_for(slots: u64) -> u64 {
    match slots {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// What a [`probe`] found.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Found(u64),
    /// The probe sequence ended at an empty slot: the key is not there.
    Absent,
    /// No answer (the hash algorithm not confirmed, an index unreadable, too many steps).
    Unknown,
}

/// The value under the `str` key `name`, found as CPython finds it (Objects/dictobject.c
/// `unicodekeys_lookup_unicode`, `dictkeys_generic_lookup`): from slot `hash & mask`, each next
/// slot `(5 * slot + perturb + 1) & mask`, `perturb` (at first the hash) shifted right by 5 at
/// each step, until an empty slot.
fn probe<M: Memory>(
    objects: &Objects<'_, M>,
    table: &KeysTable,
    values_base: Option<u64>,
    name: &str,
) -> Probe {
    let memory = objects.memory;
    let (Some(slots), Some(secret)) = (table.slots, objects.hash_secret.as_ref()) else {
        return Probe::Unknown;
    };
    if !confirm_hash(objects, table, name) {
        return Probe::Unknown;
    }
    let Some(hash) = secret.hash(name) else {
        return Probe::Unknown;
    };
    let mask = slots - 1;
    let mut perturb = hash;
    let mut slot = hash & mask;
    // Once `perturb` is 0 (after 13 shifts) the sequence visits every slot once, and at most
    // `nentries` slots are not empty (entries are only appended): a probe of a consistent table
    // meets an empty slot within `nentries + 14` steps. The bound also ends a hostile one.
    for _ in 0..slots.min(table.nentries).saturating_add(16) {
        let Some(index) = table.index(memory, slot) else {
            return Probe::Unknown;
        };
        if index == -1 {
            return Probe::Absent;
        }
        if let Some(found) = u64::try_from(index)
            .ok()
            .filter(|&index| index < table.nentries)
            .and_then(|index| probe_entry(objects, table, values_base, index, hash, name))
        {
            return found;
        }
        perturb >>= 5;
        slot = slot.wrapping_mul(5).wrapping_add(perturb).wrapping_add(1) & mask;
    }
    Probe::Unknown
}

/// What entry `index` says of the key `name` (hashed `hash`): `None` when it holds another key.
fn probe_entry<M: Memory>(
    objects: &Objects<'_, M>,
    table: &KeysTable,
    values_base: Option<u64>,
    index: u64,
    hash: u64,
    name: &str,
) -> Option<Probe> {
    let memory = objects.memory;
    let entry = table.entries.wrapping_add(index * table.entry_size);
    let Ok(key) = memory.read_u64(entry.wrapping_add(table.key_at)) else {
        return Some(Probe::Unknown);
    };
    // A deleted entry has no key; a different stored hash is a different key.
    if key == 0
        || stored_hash(objects, table, entry, key) != Some(hash)
        || !str_equals(objects, key, name)
    {
        return None;
    }
    let value = match values_base {
        Some(base) => memory.read_u64(base.wrapping_add(index * 8)),
        None => memory.read_u64(entry.wrapping_add(table.key_at + 8)),
    };
    Some(match value {
        // A split table's key that this instance never set.
        Ok(0) => Probe::Absent,
        Ok(value) => Probe::Found(value),
        Err(_) => Probe::Unknown,
    })
}

/// The hash the process stored for the key of `entry`: in the entry itself ((hash, key, value)
/// entries), else in the key's `str` (`PyASCIIObject.hash`, the word after `length` in every
/// version with PEP 393 strings, Include/cpython/unicodeobject.h).
fn stored_hash<M: Memory>(
    objects: &Objects<'_, M>,
    table: &KeysTable,
    entry: u64,
    key: u64,
) -> Option<u64> {
    if table.key_at == 8 {
        return objects.memory.read_u64(entry).ok();
    }
    let length = objects.layout.unicode.length?;
    let at = key.wrapping_add(u64::from(length.offset()) + 8);
    objects.memory.read_u64(at).ok()
}

/// Whether it is known how the process hashes strings as long as `name`, learning it from the
/// table's first 16 keys that are one-byte-per-character `str`s (of at most 256 characters)
/// with a stored hash; `false` at once for a length already found hashed otherwise.
fn confirm_hash<M: Memory>(objects: &Objects<'_, M>, table: &KeysTable, name: &str) -> bool {
    let Some(secret) = objects.hash_secret.as_ref() else {
        return false;
    };
    let length = name.chars().count();
    if secret.knows_length(length) {
        return true;
    }
    if secret.hashes_otherwise(length) {
        return false;
    }
    for index in 0..table.nentries.min(16) {
        let entry = table.entries.wrapping_add(index * table.entry_size);
        let Ok(key) = objects.memory.read_u64(entry.wrapping_add(table.key_at)) else {
            continue;
        };
        let Ok(Some(text)) = objects.pep393(key, 256, 256) else {
            continue;
        };
        if text.kind != 1 || key == 0 {
            continue;
        }
        if let Some(stored) = stored_hash(objects, table, entry, key) {
            secret.confirm(&text.raw, stored);
            if secret.knows_length(length) {
                return true;
            }
        }
    }
    false
}

/// Whether the `str` at `key` is `name` (one byte per code point), reading no more than
/// `name`'s length of it.
fn str_equals<M: Memory>(objects: &Objects<'_, M>, key: u64, name: &str) -> bool {
    let length = name.chars().count();
    match objects.pep393(key, length as i64, length as u64) {
        Ok(Some(text)) => {
            text.kind == 1
                && text.length == length as u64
                && text
                    .raw
                    .iter()
                    .map(|&unit| char::from(unit))
                    .eq(name.chars())
        }
        _ => false,
    }
}

/// Entries of a `PyDictKeysObject`; values come from `values` (a split table) when given.
fn keys_items<M: Memory>(
    objects: &Objects<'_, M>,
    keys: u64,
    values: Option<u64>,
) -> ObjectResult<Vec<(u64, u64)>> {
    table_items(objects, &KeysTable::read(objects, keys)?, values)
}

/// [`keys_items`] of a table already read.
fn table_items<M: Memory>(
    objects: &Objects<'_, M>,
    table: &KeysTable,
    values: Option<u64>,
) -> ObjectResult<Vec<(u64, u64)>> {
    let memory = objects.memory;
    let (entries, entry_size) = (table.entries, table.entry_size);
    let nentries = table.nentries;
    let raw = memory.read_vec(entries, (nentries * entry_size) as usize)?;
    let key_at = table.key_at as usize;
    let entries: Vec<&[u8]> = raw.chunks_exact(entry_size as usize).collect();
    let key_of = |index: usize| {
        entries
            .get(index)
            .and_then(|entry| crate::bytes::u64_at(entry, key_at))
            .unwrap_or(0)
    };
    let mut items = Vec::new();
    let Some(values) = values else {
        for (index, entry) in entries.iter().enumerate() {
            let value = crate::bytes::u64_at(entry, key_at + 8).unwrap_or(0);
            push_item(&mut items, key_of(index), value);
        }
        return Ok(items);
    };
    let values_base = values_base(objects, values);
    let value_at = |index: usize| memory.read_u64(values_base.wrapping_add(index as u64 * 8));
    match insertion_order(objects, values, values_base)? {
        Some(order) => {
            for index in order {
                let index = usize::from(index);
                if index < entries.len() {
                    push_item(&mut items, key_of(index), value_at(index)?);
                }
            }
        }
        None => {
            for index in 0..entries.len() {
                push_item(&mut items, key_of(index), value_at(index)?);
            }
        }
    }
    Ok(items)
}

fn push_item(items: &mut Vec<(u64, u64)>, key: u64, value: u64) {
    if key != 0 && value != 0 {
        items.push((key, value));
    }
}

/// The shared keys' indices of a split dict's values in the order they were set, or `None` when
/// the version keeps the shared keys' order ([`InsertionOrder`]). At most 255 indices: the
/// counts are bytes.
fn insertion_order<M: Memory>(
    objects: &Objects<'_, M>,
    values: u64,
    values_base: u64,
) -> ObjectResult<Option<Vec<u8>>> {
    let layout = objects.layout;
    let memory = objects.memory;
    match layout.insertion_order {
        InsertionOrder::SharedKeys => Ok(None),
        InsertionOrder::BytesBefore => {
            // [-1] = prefix size, [-2] = size, [-3 - i] = the i-th index: the `size` bytes
            // ending at [-3], inside the prefix.
            let size = memory.read_u8(values.wrapping_sub(2))?;
            let prefix = memory.read_u8(values.wrapping_sub(1))?;
            if u16::from(size) + 2 > u16::from(prefix) {
                return Err(ObjectError::Invalid(format!(
                    "dict values at {values:#x} claim {size} set in a prefix of {prefix}"
                )));
            }
            let start = values.wrapping_sub(2 + u64::from(size));
            let mut order = memory.read_vec(start, usize::from(size))?;
            order.reverse();
            Ok(Some(order))
        }
        InsertionOrder::AfterValues => {
            let (Some(capacity), Some(size)) =
                (layout.dict_values.capacity, layout.dict_values.size)
            else {
                return Err(ObjectError::Invalid(
                    "layout lacks PyDictValues capacity and size".into(),
                ));
            };
            let capacity = objects.read(values, capacity)?;
            let size = objects.read(values, size)?;
            if size > capacity {
                return Err(ObjectError::Invalid(format!(
                    "dict values at {values:#x} claim {size} of {capacity} set"
                )));
            }
            let array = values_base.wrapping_add(u64::from(capacity) * 8);
            Ok(Some(memory.read_vec(array, usize::from(size))?))
        }
    }
}

/// Where a split table's values start (`PyDictValues.values`).
fn values_base<M: Memory>(objects: &Objects<'_, M>, values: u64) -> u64 {
    values.wrapping_add(u64::from(objects.layout.dict_values.values.unwrap_or(0)))
}

/// The value stored under the `str` key `name` in `dict`.
pub fn dict_get_str<M: Memory>(
    objects: &Objects<'_, M>,
    dict: u64,
    name: &str,
) -> ObjectResult<Option<u64>> {
    match keys_and_values(objects, dict)? {
        Some((keys, values)) => keys_get_str(objects, keys, values, name),
        None => find_str_key(objects, dict_items(objects, dict)?, name),
    }
}

/// The value under the `str` key `name` in the keys table `keys` (with a split table's
/// `values`): by [`probe`] when the process's hash key is known, else, or when the probe misses,
/// by reading every key.
fn keys_get_str<M: Memory>(
    objects: &Objects<'_, M>,
    keys: u64,
    values: Option<u64>,
    name: &str,
) -> ObjectResult<Option<u64>> {
    let table = KeysTable::read(objects, keys)?;
    let base = values.map(|values| values_base(objects, values));
    match probe(objects, &table, base, name) {
        Probe::Found(value) => Ok(Some(value)),
        Probe::Absent => Ok(None),
        Probe::Unknown => find_str_key(objects, table_items(objects, &table, values)?, name),
    }
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

/// Where instances of classes with `Py_TPFLAGS_MANAGED_DICT` (3.11+) keep their attributes
/// (`MANAGED_DICT_OFFSET` and the values' place, Include/internal/pycore_object.h). Per version
/// and shape in the generated layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedDict {
    /// No managed dicts (≤3.10): the instance dict is at `tp_dictoffset`.
    None,
    /// 3.11: the dict pointer 3 words before the object, the values pointer 4 words before.
    DictAndValuesBefore,
    /// 3.12: one word 3 words before the object: a dict, or the values pointer − 1 (its low bit
    /// set; `_PyDictOrValues`).
    TaggedBefore,
    /// 3.13+: the values inline after the object (at `tp_basicsize`) while valid, else the dict
    /// pointer `dict_words_before` words before the object (3, or 1 in free-threaded builds).
    InlineValues { dict_words_before: u8 },
}

/// Where a split dict's values keep the order the instance's attributes were set in, which is
/// the order `repr()` and iteration follow (Objects/dictobject.c `get_index_from_order`). Per
/// version in the generated layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertionOrder {
    /// ≤3.10: a split table keeps the shared keys' order (an insertion out of that order makes
    /// the dict combined).
    SharedKeys,
    /// 3.11, 3.12: bytes before the values: `[-2]` how many were set, `[-3 - i]` the shared keys'
    /// index of the `i`-th (Include/internal/pycore_dict.h `_PyDictValues_AddToInsertionOrder`).
    BytesBefore,
    /// 3.13+: `size` indices after the `capacity` values (`get_insertion_order_array`), both
    /// counts in the `PyDictValues` header (`dict_values.capacity`, `dict_values.size`).
    AfterValues,
}

/// The attribute `name` of an ordinary class instance, from its instance dict or values.
pub fn instance_attribute<M: Memory>(
    objects: &Objects<'_, M>,
    object: u64,
    name: &str,
) -> ObjectResult<Option<u64>> {
    let layout = objects.layout;
    let type_object = objects.type_of(object)?;
    let flags = objects.read(type_object, layout.type_object.tp_flags)?;
    let managed = layout.managed_dict;
    if managed != ManagedDict::None && flags & TPFLAGS_MANAGED_DICT != 0 {
        let cached_keys = || {
            objects.read_some(
                type_object,
                layout.heap_type.ht_cached_keys,
                "ht_cached_keys",
            )
        };
        let word_before = |words: u64| objects.pointer(object.wrapping_sub(words * 8));
        match managed {
            ManagedDict::None => {}
            ManagedDict::DictAndValuesBefore => {
                let dict = word_before(3)?;
                if dict != 0 {
                    return dict_get_str(objects, dict, name);
                }
                let values = word_before(4)?;
                if values != 0 {
                    return keys_get_str(objects, cached_keys()?, Some(values), name);
                }
            }
            ManagedDict::TaggedBefore => {
                let word = word_before(3)?;
                if word & 1 == 1 {
                    return keys_get_str(objects, cached_keys()?, Some(word.wrapping_add(1)), name);
                }
                if word != 0 {
                    return dict_get_str(objects, word, name);
                }
            }
            ManagedDict::InlineValues { dict_words_before } => {
                // The values are valid while byte 3 of PyDictValues (`valid`) is set.
                if flags & TPFLAGS_INLINE_VALUES != 0 {
                    let basicsize = objects.read(type_object, layout.type_object.tp_basicsize)?;
                    let values = object.wrapping_add(basicsize as u64);
                    if objects.memory.read_u8(values.wrapping_add(3))? != 0 {
                        return keys_get_str(objects, cached_keys()?, Some(values), name);
                    }
                }
                let dict = word_before(u64::from(dict_words_before))?;
                if dict != 0 {
                    return dict_get_str(objects, dict, name);
                }
            }
        }
        return Ok(None);
    }
    let dict_offset = objects.read(type_object, layout.type_object.tp_dictoffset)?;
    if dict_offset <= 0 || dict_offset > 1 << 16 {
        return Ok(None);
    }
    let dict = objects.pointer(object.wrapping_add(dict_offset as u64))?;
    if dict == 0 {
        return Ok(None);
    }
    dict_get_str(objects, dict, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::fake::FakeMemory;
    use crate::python::layout::{Layout, Shape};
    use crate::python::layouts;
    use crate::python::str_hash::HashSecret;

    const KEYS: u64 = 0x1000;
    const VALUES: u64 = 0x2000;

    /// Shared keys `k0, k1, k2` (unicode entries, 8 index bytes) and an instance's values
    /// `v0, v1, v2` set in the order 2, 0, 1, laid out as `layout`'s version keeps them.
    fn split_dict(layout: &Layout, order: &[u8], size: u8) -> FakeMemory {
        let mut memory = FakeMemory::default();
        let keys = &layout.dict_keys;
        let mut header = vec![0u8; 64];
        header[keys.dk_log2_index_bytes.unwrap().offset() as usize] = 3;
        header[keys.dk_kind.unwrap().offset() as usize] = 1;
        let nentries = keys.dk_nentries.unwrap().offset() as usize;
        header[nentries..nentries + 8].copy_from_slice(&3u64.to_le_bytes());
        memory.add(KEYS, header);
        let entries = KEYS + u64::from(keys.dk_indices.unwrap()) + 8;
        let mut raw = Vec::new();
        for key in [0xa0u64, 0xa1, 0xa2] {
            raw.extend(key.to_le_bytes());
            raw.extend(0u64.to_le_bytes());
        }
        memory.add(entries, raw);
        let values_at = VALUES + u64::from(layout.dict_values.values.unwrap());
        let mut values = Vec::new();
        for value in [0xb0u64, 0xb1, 0xb2] {
            values.extend(value.to_le_bytes());
        }
        match layout.insertion_order {
            InsertionOrder::SharedKeys => {}
            InsertionOrder::BytesBefore => {
                // [-1] prefix size, [-2] size, [-3 - i] the i-th index.
                let mut prefix = vec![8u8, size];
                prefix.extend(order);
                prefix.resize(8, 0);
                prefix.reverse();
                memory.add(VALUES - 8, prefix);
            }
            InsertionOrder::AfterValues => {
                let mut header = vec![0u8; 8];
                header[layout.dict_values.capacity.unwrap().offset() as usize] = 3;
                header[layout.dict_values.size.unwrap().offset() as usize] = size;
                memory.add(VALUES, header);
                values.extend(order);
            }
        }
        memory.add(values_at, values);
        memory
    }

    #[test]
    fn split_values_follow_the_instances_insertion_order() {
        for (minor, order) in [
            (12, InsertionOrder::BytesBefore),
            (13, InsertionOrder::AfterValues),
        ] {
            let layout = layouts::lookup(3, minor, Shape::Release).unwrap();
            assert_eq!(layout.insertion_order, order);
            let memory = split_dict(layout, &[2, 0, 1], 3);
            let objects = Objects::new(&memory, layout);
            assert_eq!(
                keys_items(&objects, KEYS, Some(VALUES)).unwrap(),
                [(0xa2, 0xb2), (0xa0, 0xb0), (0xa1, 0xb1)],
                "3.{minor}"
            );
            // Indices past the shared keys are skipped; a count beyond its room is refused.
            let memory = split_dict(layout, &[9, 1], 2);
            let objects = Objects::new(&memory, layout);
            assert_eq!(
                keys_items(&objects, KEYS, Some(VALUES)).unwrap(),
                [(0xa1, 0xb1)]
            );
            let memory = split_dict(layout, &[0, 1, 2], 200);
            let objects = Objects::new(&memory, layout);
            assert!(
                keys_items(&objects, KEYS, Some(VALUES)).is_err(),
                "3.{minor}"
            );
        }
    }

    /// A 3.12 dict of `str` keys ("sys", "threading", and a third whose entry is not in
    /// memory), indexed where the hashes under `secret` put them; `sys`'s stored hash is
    /// `sys_hash` (the right one unless a test says otherwise).
    fn hashed_dict(layout: &Layout, secret: &HashSecret, sys_hash: Option<u64>) -> FakeMemory {
        let mut memory = FakeMemory::default();
        let unicode = &layout.unicode;
        let string = |text: &str, hash: u64| {
            let mut object = vec![0u8; unicode.ascii_size.unwrap() as usize];
            let length = unicode.length.unwrap().offset() as usize;
            object[length..length + 8].copy_from_slice(&(text.len() as u64).to_le_bytes());
            object[length + 8..length + 16].copy_from_slice(&hash.to_le_bytes());
            let state = unicode.state.unwrap().offset() as usize;
            object[state] = (1 << 2) | (1 << 5) | (1 << 6); // kind 1, compact, ascii
            object.extend(text.as_bytes());
            object.push(0);
            object
        };
        let [sys, threading] = ["sys", "threading"].map(|name| secret.candidates(name).unwrap()[0]);
        memory.add(0x3000, string("sys", sys_hash.unwrap_or(sys)));
        memory.add(0x3100, string("threading", threading));
        let keys = &layout.dict_keys;
        let mut header = vec![0u8; keys.dk_indices.unwrap() as usize + 8];
        header[keys.dk_log2_size.unwrap().offset() as usize] = 3;
        header[keys.dk_log2_index_bytes.unwrap().offset() as usize] = 3;
        header[keys.dk_kind.unwrap().offset() as usize] = 1;
        let nentries = keys.dk_nentries.unwrap().offset() as usize;
        header[nentries..nentries + 8].copy_from_slice(&3u64.to_le_bytes());
        let indices = keys.dk_indices.unwrap() as usize;
        header[indices..indices + 8].fill(0xff);
        header[indices + (sys & 7) as usize] = 0;
        header[indices + (threading & 7) as usize] = 1;
        memory.add(KEYS, header);
        let mut entries = Vec::new();
        for (key, value) in [(0x3000u64, 0xb0u64), (0x3100, 0xb1)] {
            entries.extend(key.to_le_bytes());
            entries.extend(value.to_le_bytes());
        }
        memory.add(KEYS + u64::from(keys.dk_indices.unwrap()) + 8, entries);
        let mut dict = vec![0u8; 64];
        let ma_keys = layout.dict.ma_keys.unwrap().offset() as usize;
        dict[ma_keys..ma_keys + 8].copy_from_slice(&KEYS.to_le_bytes());
        memory.add(0x4000, dict);
        memory
    }

    #[test]
    fn str_keys_are_found_by_their_hash_once_the_algorithm_is_confirmed() {
        let layout = layouts::lookup(3, 12, Shape::Release).unwrap();
        // A secret under which the two keys and "asyncio" fall in three different slots.
        let secret = (0..64)
            .map(|k0| HashSecret::new(k0, 7))
            .find(|secret| {
                let slots: Vec<u64> = ["sys", "threading", "asyncio"]
                    .iter()
                    .map(|name| secret.candidates(name).unwrap()[0] & 7)
                    .collect();
                slots[0] != slots[1] && slots[0] != slots[2] && slots[1] != slots[2]
            })
            .unwrap();
        let memory = hashed_dict(layout, &secret, None);
        let objects = Objects {
            hash_secret: Some(secret.clone()),
            ..Objects::new(&memory, layout)
        };
        // Reading every entry fails (the third is not in memory): answers come from probes.
        assert!(dict_items(&objects, 0x4000).is_err());
        assert_eq!(
            dict_get_str(&objects, 0x4000, "threading").unwrap(),
            Some(0xb1)
        );
        assert_eq!(dict_get_str(&objects, 0x4000, "sys").unwrap(), Some(0xb0));
        assert_eq!(dict_get_str(&objects, 0x4000, "asyncio").unwrap(), None);
        // Without the key, or when no stored hash confirms the algorithm for names that long
        // (here `sys`'s, the one short key, is wrong: names of up to six units may be below a
        // build's `Py_HASH_CUTOFF`), every entry is read. Seven units and more are never cut
        // off: `threading`'s hash settles them.
        let objects = Objects::new(&memory, layout);
        assert!(dict_get_str(&objects, 0x4000, "threading").is_err());
        let memory = hashed_dict(layout, &secret, Some(1));
        let objects = Objects {
            hash_secret: Some(secret.clone()),
            ..Objects::new(&memory, layout)
        };
        assert!(dict_get_str(&objects, 0x4000, "sys").is_err());
        assert!(dict_get_str(&objects, 0x4000, "codecs").is_err());
        assert_eq!(
            dict_get_str(&objects, 0x4000, "threading").unwrap(),
            Some(0xb1)
        );
        assert_eq!(dict_get_str(&objects, 0x4000, "asyncio").unwrap(), None);
    }
}
