//! Bounds-checked little-endian field access on byte slices. Every read of file or memory
//! contents goes through these, so a short or hostile input yields `None`, never a panic.

pub fn slice(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    data.get(offset..offset.checked_add(len)?)
}

pub fn u16_at(data: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(slice(data, offset, 2)?.try_into().ok()?))
}

pub fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice(data, offset, 4)?.try_into().ok()?))
}

pub fn i32_at(data: &[u8], offset: usize) -> Option<i32> {
    Some(i32::from_le_bytes(slice(data, offset, 4)?.try_into().ok()?))
}

pub fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice(data, offset, 8)?.try_into().ok()?))
}

/// A NUL-terminated string starting at `offset` within `data` (lossy UTF-8).
pub fn c_string_at(data: &[u8], offset: usize) -> Option<String> {
    let rest = data.get(offset..)?;
    Some(String::from_utf8_lossy(up_to_nul(rest)).into_owned())
}

/// `bytes` before their first NUL; `None` when there is none (a string cut off).
pub fn until_nul(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .split(|&b| b == 0)
        .next()
        .filter(|s| s.len() < bytes.len())
}

/// `bytes` before their first NUL, or all of them when there is none.
pub fn up_to_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// Hex rendering of a build-id or other byte string.
pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for &byte in data {
        // cannot panic: both halves of a byte are below 16, the table's length.
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0xab, 0x1f, 0xff]), "00ab1fff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn reads_are_bounds_checked() {
        let data = [1u8, 0, 0, 0, 2];
        assert_eq!(u32_at(&data, 0), Some(1));
        assert_eq!(u32_at(&data, 2), None);
        assert_eq!(u64_at(&data, usize::MAX - 2), None);
        assert_eq!(c_string_at(b"ab\0cd", 0).as_deref(), Some("ab"));
        assert_eq!(c_string_at(b"cd", 0).as_deref(), Some("cd"));
        assert_eq!(c_string_at(b"cd", 9), None);
    }
}

/// A hasher for addresses (u64 keys of the walkers' seen-sets and caches): one folded multiply,
/// where the standard SipHash costs a fifth of a deep recursion's walk. The folding matters:
/// hashbrown picks the bucket from the low bits, and the low bits of a plain product depend
/// only on the key's low bits, so keys from a hostile core that differ only in their high bits
/// (`i << 32`) would share one probe chain.
#[derive(Default, Clone, Copy)]
pub struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        // The 128-bit product folded: both halves of the result depend on every bit of the key.
        let product = u128::from(self.0 ^ value) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

/// `HashSet`/`HashMap` builder for address keys.
pub type AddressHash = std::hash::BuildHasherDefault<AddressHasher>;

/// The 64-bit FNV-1a hash (http://www.isthe.com/chongo/tech/comp/fnv/): stable across runs and
/// versions, so it can name things (crash signatures) as well as index them.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod fnv_tests {
    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of FNV-1a 64.
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
