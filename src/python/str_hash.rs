//! The hash CPython gives a `str` (PEP 456, Python/pyhash.c), so that a dict can be searched
//! the way CPython searches it (one probe sequence through its index table) instead of by
//! reading every key: on a small process, reading the key strings of `sys.modules` one by one
//! was a fifth of the pages pycore touched in the core.
//!
//! A `str`'s hash is SipHash over its code units (one byte each for the ASCII and Latin-1 names
//! looked up here) keyed by the 16 bytes at the start of `_Py_HashSecret` (its `siphash.k0`,
//! `siphash.k1`, little-endian), with −1 turned into −2: SipHash-1-3 from 3.11, SipHash-2-4 from
//! 3.4 to 3.10 (the defaults of `Py_HASH_ALGORITHM`). A build may set `Py_HASH_CUTOFF` (0 by
//! default, at most 7): strings shorter than it are hashed with DJBX33A instead. Which SipHash
//! this process uses, and from which length on, is learnt from keys whose hash the process
//! itself stored ([`HashSecret::confirm`]); until then, or in a build configured with another
//! algorithm, dicts are read key by key as before. A probe's hit is still checked against the
//! key's text.

use std::borrow::Cow;
use std::cell::Cell;
use std::hash::Hasher;

use siphasher::sip::{SipHasher13, SipHasher24};

use crate::memory::Memory;

/// The largest `Py_HASH_CUTOFF` (Include/pyhash.h): strings of this many units or more are
/// never hashed otherwise.
const MAX_CUTOFF: usize = 7;

/// `_Py_HashSecret`'s SipHash key, as read from the process, and what its stored hashes taught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSecret {
    k0: u64,
    k1: u64,
    /// Which of [`HashSecret::candidates`] a stored hash matched, once one did.
    variant: Cell<Option<usize>>,
    /// The shortest length a matching stored hash was seen at, at most [`MAX_CUTOFF`]: the
    /// cutoff is at most that, so every string at least that long is hashed with `variant`.
    sip_from: Cell<usize>,
    /// The longest length a stored hash matched neither candidate at (below the cutoff, or
    /// another algorithm when [`MAX_CUTOFF`] or more): strings that short are not probed.
    other_upto: Cell<Option<usize>>,
}

impl HashSecret {
    pub fn new(k0: u64, k1: u64) -> Self {
        Self {
            k0,
            k1,
            variant: Cell::new(None),
            sip_from: Cell::new(MAX_CUTOFF),
            other_upto: Cell::new(None),
        }
    }

    /// The key at `address` (the `_Py_HashSecret` symbol), if those bytes are in the core.
    pub fn read(memory: &impl Memory, address: u64) -> Option<Self> {
        let k0 = memory.read_u64(address).ok()?;
        let k1 = memory.read_u64(address.wrapping_add(8)).ok()?;
        Some(Self::new(k0, k1))
    }

    /// `name`'s hash in this process, once it is known how strings its length are hashed.
    pub fn hash(&self, name: &str) -> Option<u64> {
        let units = latin1_units(name)?;
        if !self.knows_length(units.len()) {
            return None;
        }
        Some(self.sip_hash(self.variant.get()?, &units))
    }

    /// Learn from a key of one-byte `units` whose hash the process stored (`stored`).
    pub fn confirm(&self, units: &[u8], stored: u64) {
        // −1: a `str` whose hash was never computed; "": 0 under every algorithm.
        if stored == u64::MAX || units.is_empty() {
            return;
        }
        let length = units.len();
        match self.candidates_of(units).iter().position(|&h| h == stored) {
            Some(which) => {
                if self.variant.get().is_none() {
                    self.variant.set(Some(which));
                }
                self.sip_from.set(self.sip_from.get().min(length));
            }
            None => {
                // At MAX_CUTOFF or more the build does not hash with SipHash at all.
                let upto = if length >= MAX_CUTOFF {
                    usize::MAX
                } else {
                    length
                };
                self.other_upto
                    .set(Some(self.other_upto.get().map_or(upto, |u| u.max(upto))));
            }
        }
    }

    /// Whether strings of `length` one-byte units are known to hash with the learnt SipHash.
    pub fn knows_length(&self, length: usize) -> bool {
        self.variant.get().is_some() && (length == 0 || length >= self.sip_from.get())
    }

    /// Whether strings of `length` units are known not to be, or can never be learnt to be.
    pub fn hashes_otherwise(&self, length: usize) -> bool {
        self.other_upto
            .get()
            .is_some_and(|upto| length <= upto && !self.knows_length(length))
    }

    /// The hashes `name` has under each algorithm a CPython 3.6+ uses by default, the newer
    /// first. `None` for a name with a character past U+00FF (stored two or four bytes per
    /// code point: no name pycore looks up).
    pub fn candidates(&self, name: &str) -> Option<[u64; 2]> {
        Some(self.candidates_of(&latin1_units(name)?))
    }

    fn candidates_of(&self, units: &[u8]) -> [u64; 2] {
        [self.sip_hash(0, units), self.sip_hash(1, units)]
    }

    /// `units` hashed with SipHash-1-3 (`which` 0) or SipHash-2-4 (1), as `_Py_HashBytes` does.
    fn sip_hash(&self, which: usize, units: &[u8]) -> u64 {
        if units.is_empty() {
            return 0;
        }
        let hash = if which == 0 {
            let mut sip = SipHasher13::new_with_keys(self.k0, self.k1);
            sip.write(units);
            sip.finish()
        } else {
            let mut sip = SipHasher24::new_with_keys(self.k0, self.k1);
            sip.write(units);
            sip.finish()
        };
        if hash == u64::MAX {
            (-2i64) as u64
        } else {
            hash
        }
    }
}

/// `name`'s one-byte code units (ASCII names as they are), `None` past U+00FF.
fn latin1_units(name: &str) -> Option<Cow<'_, [u8]>> {
    if name.is_ascii() {
        return Some(Cow::Borrowed(name.as_bytes()));
    }
    name.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SipHash-2-4's reference vector (Aumasson and Bernstein, "SipHash: a fast short-input
    /// PRF", appendix A): key 00..0f, message 00..0e.
    #[test]
    fn siphash24_reference_vector() {
        let secret = HashSecret::new(0x0706050403020100, 0x0f0e0d0c0b0a0908);
        let message: String = (0u8..15).map(char::from).collect();
        assert_eq!(secret.candidates(&message).unwrap()[1], 0xa129ca6149be45e5);
    }

    #[test]
    fn wide_names_have_no_candidates() {
        assert!(HashSecret::new(1, 2).candidates("λ").is_none());
        assert_eq!(HashSecret::new(1, 2).candidates(""), Some([0, 0]));
    }

    #[test]
    fn the_algorithm_is_learnt_from_a_stored_hash() {
        let secret = HashSecret::new(3, 4);
        assert_eq!(secret.hash("threading"), None);
        let [_, sip24] = secret.candidates("builtins").unwrap();
        secret.confirm(b"builtins", sip24);
        // Eight units prove SipHash-2-4 for every string of MAX_CUTOFF units or more...
        let threading = secret.candidates("threading").unwrap()[1];
        assert_eq!(secret.hash("threading"), Some(threading));
        assert_eq!(
            secret.hash("_active"),
            secret.candidates("_active").map(|h| h[1])
        );
        // ...but not for shorter ones, which a build's Py_HASH_CUTOFF may hash otherwise.
        assert!(!secret.knows_length(3));
        assert_eq!(secret.hash("sys"), None);
        // A key of three units whose stored hash is neither: three units and fewer are
        // hashed otherwise (below the cutoff), and are not asked again.
        let [_, sip24] = secret.candidates("sys").unwrap();
        secret.confirm(b"sys", sip24 ^ 1);
        assert!(secret.hashes_otherwise(3) && secret.hashes_otherwise(2));
        assert!(!secret.hashes_otherwise(4));
        // A matching key of five units proves the cutoff is at most five.
        let [_, sip24] = secret.candidates("_name").unwrap();
        secret.confirm(b"_name", sip24);
        assert!(secret.knows_length(5) && secret.knows_length(6) && !secret.knows_length(4));
        // A hash never computed (-1) teaches nothing.
        secret.confirm(b"abcd", u64::MAX);
        assert!(!secret.hashes_otherwise(4) && !secret.knows_length(4));
    }

    #[test]
    fn a_mismatch_at_full_length_rules_siphash_out() {
        let secret = HashSecret::new(3, 4);
        secret.confirm(b"threading", 12345);
        assert!(secret.hashes_otherwise(9) && secret.hashes_otherwise(100));
        assert_eq!(secret.hash("threading"), None);
    }
}
