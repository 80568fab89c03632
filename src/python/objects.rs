//! Readers for the CPython objects a stack needs: type names, str (every PEP 393 kind), bytes,
//! small ints, dicts and modules. Every size read from memory is bounded before it is used.

use crate::memory::{Memory, Unreadable};
use crate::python::field::{Field, Scalar};
use crate::python::layout::Layout;
use crate::python::str_hash::HashSecret;

/// Names, file paths and dict sizes beyond these are treated as corrupt.
const MAX_STR_CHARS: u64 = 1 << 16;
const MAX_BYTES: u64 = 8 << 20;
const MAX_TYPE_NAME: usize = 256;
pub const MAX_DICT_ENTRIES: u64 = 1 << 20;

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    #[error("{0}")]
    Invalid(String),
}

pub type ObjectResult<T> = Result<T, ObjectError>;

fn invalid<T>(message: String) -> ObjectResult<T> {
    Err(ObjectError::Invalid(message))
}

/// Object readers over one memory and one layout.
pub struct Objects<'a, M: Memory> {
    pub memory: &'a M,
    pub layout: &'a Layout,
    /// The process's `str` hash key, when found: dicts are then searched by hash
    /// ([`super::str_hash`]).
    pub hash_secret: Option<HashSecret>,
}

/// What [`Objects::pep393`] read of a `str`.
pub struct Pep393 {
    /// Bytes per code point: 1, 2 or 4.
    pub kind: u32,
    /// Its length in code points.
    pub length: u64,
    /// The raw units of the code points read.
    pub raw: Vec<u8>,
}

impl<'a, M: Memory> Objects<'a, M> {
    /// Readers that search dicts key by key (no hash key known).
    pub fn new(memory: &'a M, layout: &'a Layout) -> Self {
        Self {
            memory,
            layout,
            hash_secret: None,
        }
    }

    pub fn pointer(&self, addr: u64) -> ObjectResult<u64> {
        Ok(self.memory.read_u64(addr)?)
    }

    /// The member `field` of the struct at `base`, read with the member's own width.
    pub fn read<T: Scalar>(&self, base: u64, field: Field<T>) -> ObjectResult<T::Value> {
        Ok(field.read(self.memory, base)?)
    }

    /// Like [`Objects::read`] for a member this version may lack: an error naming `what`.
    pub fn read_some<T: Scalar>(
        &self,
        base: u64,
        field: Option<Field<T>>,
        what: &str,
    ) -> ObjectResult<T::Value> {
        match field {
            Some(field) => self.read(base, field),
            None => invalid(format!(
                "CPython {}.{} has no {what}",
                self.layout.major, self.layout.minor
            )),
        }
    }

    /// An object's type.
    pub fn type_of(&self, object: u64) -> ObjectResult<u64> {
        self.read(object, self.layout.object.ob_type)
    }

    /// The `tp_name` of an object's type.
    pub fn type_name(&self, object: u64) -> ObjectResult<String> {
        self.type_object_name(self.type_of(object)?)
    }

    /// The `tp_name` of a type object.
    pub fn type_object_name(&self, type_object: u64) -> ObjectResult<String> {
        let name = self.read(type_object, self.layout.type_object.tp_name)?;
        crate::memory::read_c_string(self.memory, name, MAX_TYPE_NAME).ok_or_else(|| {
            ObjectError::Invalid(format!("type name at {name:#x} is unreadable or too long"))
        })
    }

    pub fn ob_size(&self, object: u64) -> ObjectResult<i64> {
        self.read(object, self.layout.var_object.ob_size)
    }

    /// A `str` object's text. Handles compact ASCII, compact latin-1/UCS-2/UCS-4 and legacy
    /// (non-compact) strings; code points that are not valid Unicode become U+FFFD. On 2.7, where
    /// `str` is a byte string, the bytes are decoded as UTF-8 (lossy).
    pub fn unicode(&self, object: u64) -> ObjectResult<String> {
        match self.pep393(object, MAX_STR_CHARS as i64, MAX_STR_CHARS)? {
            Some(text) => Ok(decode_pep393(&text.raw, text.kind)),
            None => Ok(String::from_utf8_lossy(&self.bytes(object)?).into_owned()),
        }
    }

    /// A PEP 393 `str`'s storage (Include/cpython/unicodeobject.h): its kind (bytes per code
    /// point), its length, and the raw units of its first `read` code points. `None` when the
    /// layout has no PEP 393 fields (2.7, where `str` is bytes); a length above `max` is refused.
    pub fn pep393(&self, object: u64, max: i64, read: u64) -> ObjectResult<Option<Pep393>> {
        let unicode = &self.layout.unicode;
        let (Some(length_field), Some(state_field), Some(ascii_size), Some(compact_size)) = (
            unicode.length,
            unicode.state,
            unicode.ascii_size,
            unicode.compact_size,
        ) else {
            return Ok(None);
        };
        let length = self.read(object, length_field)?;
        if !(0..=max).contains(&length) {
            return invalid(format!("str at {object:#x} claims {length} characters"));
        }
        // PyASCIIObject.state: interned:2, kind:3, compact:1, ascii:1.
        let state = self.read(object, state_field)?;
        let kind = (state >> 2) & 0x7;
        let compact = (state >> 5) & 1 == 1;
        let ascii = (state >> 6) & 1 == 1;
        let data = match (compact, ascii) {
            (true, true) => object.wrapping_add(u64::from(ascii_size)),
            (true, false) => object.wrapping_add(u64::from(compact_size)),
            (false, _) => self.read_some(object, unicode.legacy_data, "legacy str data")?,
        };
        if !matches!(kind, 1 | 2 | 4) {
            return invalid(format!("str at {object:#x} has kind {kind}"));
        }
        let units = (length as u64).min(read);
        let raw = self
            .memory
            .read_vec(data, (units * u64::from(kind)) as usize)?;
        Ok(Some(Pep393 {
            kind,
            length: length as u64,
            raw,
        }))
    }

    /// A `bytes` object's contents.
    pub fn bytes(&self, object: u64) -> ObjectResult<Vec<u8>> {
        let size = self.ob_size(object)?;
        if !(0..=MAX_BYTES as i64).contains(&size) {
            return invalid(format!("bytes at {object:#x} claims {size} bytes"));
        }
        Ok(self.memory.read_vec(
            object.wrapping_add(u64::from(self.layout.bytes.ob_sval)),
            size as usize,
        )?)
    }

    /// How many 30-bit digits an `int` (`PyLongObject`) has, and whether it is negative.
    pub fn long_size(&self, object: u64) -> ObjectResult<(u64, bool)> {
        Ok(match self.layout.long.lv_tag {
            // 3.12+: lv_tag = ndigits << 3 | sign (0 positive, 1 zero, 2 negative).
            Some(tag_field) => {
                let tag = self.read(object, tag_field)?;
                (tag >> 3, tag & 3 == 2)
            }
            None => {
                let size = self.ob_size(object)?;
                (size.unsigned_abs(), size < 0)
            }
        })
    }

    /// An `int` that fits in 64 bits (CPython stores 30-bit digits). On 2.7 also a `PyIntObject`.
    pub fn int(&self, object: u64) -> ObjectResult<i64> {
        if let Some(ival) = self.layout.int.ob_ival {
            if self.type_name(object)? == "int" {
                return self.read(object, ival);
            }
        }
        let Some((negative, magnitude)) = self.small_long(object, 3)? else {
            return invalid(format!("int at {object:#x} does not fit in 64 bits"));
        };
        let value = i128::try_from(magnitude).unwrap_or(i128::MAX);
        let value = if negative { -value } else { value };
        i64::try_from(value).or_else(|_| invalid(format!("int at {object:#x} is too large")))
    }

    /// An `int` of at most `max_digits` (≤ 4) 30-bit digits: its sign and magnitude; `None`
    /// for a longer one.
    pub fn small_long(&self, object: u64, max_digits: u64) -> ObjectResult<Option<(bool, u128)>> {
        let (count, negative) = self.long_size(object)?;
        if count > max_digits.min(4) {
            return Ok(None);
        }
        let mut raw = [0u8; 16];
        let digits = object.wrapping_add(u64::from(self.layout.long.digits));
        // cannot panic: `count` ≤ 4, so at most 16 bytes.
        self.memory.read(digits, &mut raw[..(count * 4) as usize])?;
        let magnitude = raw.chunks_exact(4).rev().fold(0u128, |value, digit| {
            let digit = u32::from_le_bytes([digit[0], digit[1], digit[2], digit[3]]) & 0x3fff_ffff;
            (value << 30) | u128::from(digit)
        });
        Ok(Some((negative, magnitude)))
    }
}

/// The code points of PEP 393 storage of the given kind (1 = latin-1, 2 = UCS-2, 4 = UCS-4),
/// unchecked (reprs escape what `char` cannot hold), read as they are needed.
pub fn pep393_units(raw: &[u8], kind: u32) -> impl Iterator<Item = u32> + '_ {
    let width = match kind {
        1 => 1,
        2 => 2,
        _ => 4,
    };
    raw.chunks_exact(width).filter_map(|unit| match unit {
        [byte] => Some(u32::from(*byte)),
        [_, _] => crate::bytes::u16_at(unit, 0).map(u32::from),
        _ => crate::bytes::u32_at(unit, 0),
    })
}

/// Decode PEP 393 storage of the given kind (1 = latin-1, 2 = UCS-2, 4 = UCS-4).
pub fn decode_pep393(raw: &[u8], kind: u32) -> String {
    pep393_units(raw, kind)
        .map(|c| char::from_u32(c).unwrap_or('\u{fffd}'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep393_kinds() {
        assert_eq!(decode_pep393(b"na\xefve", 1), "naïve");
        let ucs2: Vec<u8> = "λx".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode_pep393(&ucs2, 2), "λx");
        let ucs4: Vec<u8> = "𠀀a"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        assert_eq!(decode_pep393(&ucs4, 4), "𠀀a");
        // Lone surrogates and out-of-range code points never panic.
        assert_eq!(decode_pep393(&[0x00, 0xd8], 2), "\u{fffd}");
        assert_eq!(decode_pep393(&[0xff, 0xff, 0xff, 0xff], 4), "\u{fffd}");
    }
}
