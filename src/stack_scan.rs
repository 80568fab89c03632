//! Which threads are inside given native functions, told by scanning the live part of each
//! thread's stack for return addresses into them. This needs no unwind information, so it works
//! on stripped builds wherever the functions' symbols are known; it answers "is this thread
//! (probably) running the garbage collector", not a full native backtrace.

use crate::core::CoreFile;
use crate::memory::Memory;

/// How much of each thread's stack, upward from its stack pointer, is scanned.
const SCAN_BYTES: u64 = 512 << 10;
const CHUNK: usize = 64 << 10;

/// At most this many function ranges are looked for (the collector's functions and their
/// compiler-made parts are a handful; more comes from a hostile binary or packed note).
const MAX_RANGES: usize = 256;

/// TIDs of the threads whose live stack holds an address inside one of `ranges`.
pub fn threads_in_functions(
    core: &CoreFile,
    memory: &impl Memory,
    ranges: &[(u64, u64)],
) -> Vec<i32> {
    // Sorted and disjoint, so each word is looked up by binary search.
    let mut sorted: Vec<(u64, u64)> = ranges
        .iter()
        .copied()
        .filter(|(lo, hi)| lo < hi)
        .take(MAX_RANGES)
        .collect();
    sorted.sort_unstable();
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (lo, hi) in sorted {
        match ranges.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => ranges.push((lo, hi)),
        }
    }
    if ranges.is_empty() {
        return Vec::new();
    }
    core.threads
        .iter()
        .filter(|thread| stack_holds(memory, thread.registers.sp, &ranges))
        .map(|thread| thread.tid)
        .collect()
}

/// Whether `word` lies strictly inside one of `ranges` (sorted, disjoint): a return address
/// into a function is past its first byte and before its end.
fn inside(ranges: &[(u64, u64)], word: u64) -> bool {
    let after = ranges.partition_point(|&(lo, _)| lo < word);
    after
        .checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, hi)| word < hi)
}

fn stack_holds(memory: &impl Memory, sp: u64, ranges: &[(u64, u64)]) -> bool {
    let start = sp & !7;
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < start.saturating_add(SCAN_BYTES) {
        // A chunk that crosses the stack's end is read word by word up to the end.
        let words: Vec<u64> = if memory.read(at, &mut buf).is_ok() {
            buf.chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
                .collect()
        } else {
            let mut words = Vec::new();
            let mut word_at = at;
            while let Ok(word) = memory.read_u64(word_at) {
                words.push(word);
                word_at = word_at.wrapping_add(8);
                if words.len() * 8 >= CHUNK {
                    break;
                }
            }
            if words.is_empty() {
                return false;
            }
            words
        };
        if words.iter().any(|&word| inside(ranges, word)) {
            return true;
        }
        if words.len() * 8 < CHUNK {
            return false;
        }
        at += CHUNK as u64;
    }
    false
}
