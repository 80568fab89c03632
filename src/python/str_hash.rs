//! The hash CPython gives a `str` (PEP 456, Python/pyhash.c), so that a dict can be searched
//! the way CPython searches it (one probe sequence through its index table) instead of by
//! reading every key: on a small process, reading the key strings of `sys.modules` one by one
//! was a fifth of the pages pycore touched in the core.
//!
//! A `str`'s hash is SipHash over its code units (one byte each for the ASCII and Latin-1 names
//! looked up here) keyed by the 16 bytes at the start of `_Py_HashSecret` (its `siphash.k0`,
//! `siphash.k1`, little-endian), with −1 turned into −2: SipHash-1-3 from 3.11, SipHash-2-4 from
//! 3.4 to 3.10 (the defaults of `Py_HASH_ALGORITHM`; `Py_HASH_CUTOFF` is 0 by default, so short
//! strings are not special). Which of the two this process uses is learnt from a key whose hash
//! the process itself stored ([`HashSecret::confirm`]), apart for strings of up to
//! `Py_HASH_CUTOFF`'s largest value and longer ones (a build may hash the short ones otherwise);
//! until then, or in a build configured with another algorithm, dicts are read key by key as
//! before. A probe's hit is still checked against the key's text.

use std::cell::Cell;
use std::hash::Hasher;

use siphasher::sip::{SipHasher13, SipHasher24};

use crate::memory::Memory;

/// `_Py_HashSecret`'s SipHash key, as read from the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSecret {
    k0: u64,
    k1: u64,
    /// Which of [`HashSecret::candidates`] the process's hashes matched, once seen: for
    /// strings of at most [`SHORT`] characters, and for longer ones.
    confirmed: [Cell<Option<usize>>; 2],
}

/// The largest `Py_HASH_CUTOFF` (Include/pyhash.h): a build may hash strings up to this long
/// with DJBX33A (0 by default: none).
const SHORT: usize = 7;

/// Which of `confirmed` a string of `len` one-byte units needs.
fn length_class(len: usize) -> usize {
    usize::from(len > SHORT)
}

impl HashSecret {
    pub fn new(k0: u64, k1: u64) -> Self {
        Self {
            k0,
            k1,
            confirmed: Default::default(),
        }
    }

    /// The key at `address` (the `_Py_HashSecret` symbol), if those bytes are in the core.
    pub fn read(memory: &impl Memory, address: u64) -> Option<Self> {
        let k0 = memory.read_u64(address).ok()?;
        let k1 = memory.read_u64(address.wrapping_add(8)).ok()?;
        Some(Self {
            k0,
            k1,
            confirmed: Default::default(),
        })
    }

    /// `name`'s hash in this process, once the algorithm is confirmed for strings its length.
    pub fn hash(&self, name: &str) -> Option<u64> {
        let hashes = self.candidates(name)?;
        let which = self
            .confirmed
            .get(length_class(name.chars().count()))?
            .get()?;
        hashes.get(which).copied()
    }

    /// Learn the algorithm for strings as long as `text` from its hash as the process stored
    /// it (`stored`): whether it is known now.
    pub fn confirm(&self, text: &str, stored: u64) -> bool {
        let Some(confirmed) = self.confirmed.get(length_class(text.chars().count())) else {
            return false;
        };
        if confirmed.get().is_none() {
            if let Some(which) = self
                .candidates(text)
                .and_then(|hashes| hashes.iter().position(|&hash| hash == stored))
            {
                confirmed.set(Some(which));
            }
        }
        confirmed.get().is_some()
    }

    /// Whether a string as long as `name` has its algorithm confirmed.
    pub fn knows_length_of(&self, name: &str) -> bool {
        self.confirmed
            .get(length_class(name.chars().count()))
            .is_some_and(|confirmed| confirmed.get().is_some())
    }

    /// The hashes `name` has under each algorithm a CPython 3.6+ uses by default, the newer
    /// first. `None` for a name with a character past U+00FF (stored two or four bytes per
    /// code point: no name pycore looks up).
    pub fn candidates(&self, name: &str) -> Option<[u64; 2]> {
        let units: Vec<u8> = name
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<_>>()?;
        let finish = |hash: u64| {
            if hash == u64::MAX {
                (-2i64) as u64
            } else {
                hash
            }
        };
        let mut sip13 = SipHasher13::new_with_keys(self.k0, self.k1);
        sip13.write(&units);
        let mut sip24 = SipHasher24::new_with_keys(self.k0, self.k1);
        sip24.write(&units);
        // An empty str hashes to 0 whatever the algorithm (`_Py_HashBytes`).
        if units.is_empty() {
            return Some([0, 0]);
        }
        Some([finish(sip13.finish()), finish(sip24.finish())])
    }
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
        let [_, sip24] = secret.candidates("sys").unwrap();
        assert!(!secret.confirm("sys", sip24 ^ 1));
        assert!(secret.confirm("sys", sip24));
        assert_eq!(
            secret.hash("_name"),
            Some(secret.candidates("_name").unwrap()[1])
        );
        // Longer strings are learnt apart (a build's Py_HASH_CUTOFF may hash short ones so).
        assert!(!secret.knows_length_of("threading"));
        assert_eq!(secret.hash("threading"), None);
        let [_, sip24] = secret.candidates("builtins").unwrap();
        assert!(secret.confirm("builtins", sip24));
        let threading = secret.candidates("threading").unwrap()[1];
        assert_eq!(secret.hash("threading"), Some(threading));
    }
}
