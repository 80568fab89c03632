//! What an analysis read: every successful memory read and every symbol answer, kept so that
//! `pycore pack` can write exactly those bytes and answers into the packed core.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::memory::{Memory, Unreadable};
use crate::python::{PythonVersion, SymbolSource};

/// Reads of `inner`, recorded as `[start, end)` ranges (merged when the analysis ends).
pub(crate) struct RecordingMemory<'a, M: Memory> {
    inner: &'a M,
    pub(crate) ranges: RefCell<Vec<(u64, u64)>>,
}

impl<'a, M: Memory> RecordingMemory<'a, M> {
    pub(crate) fn new(inner: &'a M) -> Self {
        RecordingMemory {
            inner,
            ranges: RefCell::new(Vec::new()),
        }
    }
}

impl<M: Memory> Memory for RecordingMemory<'_, M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.inner.read(addr, buf)?;
        if !buf.is_empty() {
            let end = addr.saturating_add(buf.len() as u64);
            let mut ranges = self.ranges.borrow_mut();
            // Consecutive reads of one object extend the last range instead of adding one.
            match ranges.last_mut() {
                Some(last) if last.0 <= addr && addr <= last.1 => last.1 = last.1.max(end),
                _ => ranges.push((addr, end)),
            }
        }
        Ok(())
    }
}

/// Symbol answers of `inner`, recorded (misses too: the packed analysis must miss them too).
pub(crate) struct RecordingSymbols<'a, S: SymbolSource> {
    inner: &'a S,
    pub(crate) answers: RefCell<BTreeMap<String, Option<u64>>>,
}

impl<'a, S: SymbolSource> RecordingSymbols<'a, S> {
    pub(crate) fn new(inner: &'a S) -> Self {
        RecordingSymbols {
            inner,
            answers: RefCell::new(BTreeMap::new()),
        }
    }

    /// Keep the answer for `name`, and give it.
    fn record(&self, name: &str, address: Option<u64>) -> Option<u64> {
        self.answers.borrow_mut().insert(name.to_string(), address);
        address
    }
}

impl<S: SymbolSource> SymbolSource for RecordingSymbols<'_, S> {
    fn symbol(&self, name: &str) -> Option<u64> {
        self.record(name, self.inner.symbol(name))
    }

    fn api_symbol(&self, name: &str) -> Option<u64> {
        self.record(name, self.inner.api_symbol(name))
    }

    fn version_hint(&self) -> Option<PythonVersion> {
        self.inner.version_hint()
    }

    fn abi_flags(&self) -> String {
        self.inner.abi_flags()
    }
}

/// Sorted, merged ranges: overlapping ones and ones at most `gap` bytes apart become one.
pub(crate) fn merged(mut ranges: Vec<(u64, u64)>, gap: u64) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(gap) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merged;

    #[test]
    fn ranges_merge_when_they_touch_or_overlap() {
        assert_eq!(
            merged(vec![(10, 20), (0, 5), (18, 30), (31, 40), (100, 108)], 1),
            vec![(0, 5), (10, 40), (100, 108)]
        );
        assert_eq!(merged(vec![(0, 5), (6, 8)], 0), vec![(0, 5), (6, 8)]);
    }
}
