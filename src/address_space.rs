//! The process's address space as the core recorded it: bytes the core holds come straight
//! from the mapped core file; pages it left out (clean file-backed pages, not dumped under the
//! default `coredump_filter`) come from the mapped ELF file named by NT_FILE, once a higher layer
//! has registered a verified local copy of that file.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use crate::core::CoreFile;
use crate::input::MappedFile;
use crate::memory::{Memory, Unreadable};

/// What the core itself holds at an address.
enum CoreRead {
    /// This many bytes were copied.
    Copied(usize),
    /// The core did not dump this memory (by design: clean file-backed pages, or no segment).
    NotDumped,
    /// The core dumped it, but the file was cut before it.
    Lost,
}

/// Finds a verified local copy of the file a core recorded at a path (NT_FILE), on the first
/// read that needs one; `None` when there is none (or it cannot be shown to be the same file).
pub type BackingResolver<'c> = Box<dyn Fn(&str) -> Option<Arc<MappedFile>> + 'c>;

/// The core's memory plus the verified files that back its file mappings.
pub struct AddressSpace<'c> {
    core: &'c CoreFile,
    /// Local copies of mapped files, keyed by the path recorded in NT_FILE.
    backing: HashMap<String, Arc<MappedFile>>,
    /// For the other mapped files: found on first need, and remembered (found or not).
    resolver: Option<BackingResolver<'c>>,
    resolved: RefCell<HashMap<String, Option<Arc<MappedFile>>>>,
    /// The segment the last read found: reads come in runs within one segment (a thread's
    /// frames, a dict's entries), so it is tried before the binary search.
    last_segment: Cell<usize>,
}

impl<'c> AddressSpace<'c> {
    pub fn new(core: &'c CoreFile) -> AddressSpace<'c> {
        AddressSpace {
            core,
            backing: HashMap::new(),
            resolver: None,
            resolved: RefCell::new(HashMap::new()),
            last_segment: Cell::new(0),
        }
    }

    /// Serve pages of any other mapped file (an extension module's read-only data: its types'
    /// names) from the copy `resolver` finds when one is first needed.
    pub fn set_backing_resolver(&mut self, resolver: BackingResolver<'c>) {
        self.resolver = Some(resolver);
    }

    /// The backing file of the mapping of `path`, registered or resolved.
    fn backing_file(&self, path: &str) -> Option<Arc<MappedFile>> {
        if let Some(file) = self.backing.get(path) {
            return Some(Arc::clone(file));
        }
        let resolver = self.resolver.as_ref()?;
        if let Some(known) = self.resolved.borrow().get(path) {
            return known.clone();
        }
        let found = resolver(path);
        self.resolved
            .borrow_mut()
            .insert(path.to_string(), found.clone());
        found
    }

    /// Serve pages of the mappings of `core_path` that the core left out from `file`.
    /// The caller must have checked that `file` is the file the process mapped (build-id).
    pub fn add_backing_file(&mut self, core_path: &str, file: Arc<MappedFile>) {
        self.backing.insert(core_path.to_string(), file);
    }

    pub fn core(&self) -> &'c CoreFile {
        self.core
    }

    /// Where the core maps the start (file offset 0) of the file it recorded at `core_path`:
    /// the page that holds its ELF header and, for a build-id, its notes.
    pub fn header_mapping(&self, core_path: &str) -> Option<u64> {
        self.core
            .files
            .iter()
            .filter(|f| f.path == core_path && f.file_offset == 0)
            .map(|f| f.start)
            .min()
    }

    /// This address space without its backing files: what the process really had.
    pub fn core_only(&self) -> CoreOnly<'_, 'c> {
        CoreOnly(self)
    }

    /// Read only what the core itself holds (no file fallback).
    pub fn read_core_only(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.read_with(addr, buf, false)
    }

    fn read_with(&self, addr: u64, buf: &mut [u8], use_files: bool) -> Result<(), Unreadable> {
        if let Some(bytes) = self.in_last_segment(addr, buf.len()) {
            buf.copy_from_slice(bytes);
            return Ok(());
        }
        self.read_segments(addr, buf, use_files)
    }

    /// `read_with` the long way: segment by segment, from the files where the core left pages
    /// out.
    fn read_segments(&self, addr: u64, buf: &mut [u8], use_files: bool) -> Result<(), Unreadable> {
        let fail = Unreadable {
            addr,
            len: buf.len(),
            cut_off: false,
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or(fail)?;
            // cannot panic: `done < buf.len()` (the loop's condition).
            let chunk = match self.read_from_core(at, &mut buf[done..]) {
                CoreRead::Copied(n) => n,
                // Clean file-backed pages the kernel chose not to dump: the file has them.
                CoreRead::NotDumped if use_files => {
                    self.read_from_file(at, &mut buf[done..]).ok_or(fail)?
                }
                // Dumped but cut off with the file: what the file on disk holds may be stale
                // (written data pages), so it must not stand in.
                CoreRead::NotDumped => return Err(fail),
                CoreRead::Lost => {
                    return Err(Unreadable {
                        cut_off: true,
                        ..fail
                    })
                }
            };
            done += chunk;
        }
        Ok(())
    }

    /// The core's bytes at `[addr, addr + len)` when the segment of the last read holds all of
    /// them (the walkers' reads come in runs: a frame's members, a dict's entries): the
    /// answer `read_from_core` would give, without its copy loop. `None` sends the read the
    /// long way.
    #[inline]
    fn in_last_segment(&self, addr: u64, len: usize) -> Option<&'c [u8]> {
        let segments = &self.core.segments;
        let last = self.last_segment.get();
        let segment = segments.get(last)?;
        let within = addr.checked_sub(segment.vaddr)?;
        // Dumped and still in the file (`file_size` is within `p_memsz`: `CoreFile::parse`).
        if within.checked_add(len as u64)? > segment.file_size {
            return None;
        }
        // The segment the search would pick (overlapping segments: the last that starts at or
        // below `addr`).
        if segments
            .get(last + 1)
            .is_some_and(|next| next.vaddr <= addr)
        {
            return None;
        }
        let start = usize::try_from(segment.offset.checked_add(within)?).ok()?;
        self.core.bytes().get(start..)?.get(..len)
    }

    /// `N` bytes at `addr` (the fixed-size reads of [`Memory::read_u64`] and its kin).
    #[inline]
    fn read_array<const N: usize>(
        &self,
        addr: u64,
        use_files: bool,
    ) -> Result<[u8; N], Unreadable> {
        if let Some(bytes) = self.in_last_segment(addr, N) {
            if let Ok(array) = <[u8; N]>::try_from(bytes) {
                return Ok(array);
            }
        }
        let mut buf = [0u8; N];
        self.read_segments(addr, &mut buf, use_files)?;
        Ok(buf)
    }

    /// Copy the longest prefix of `buf` that one segment's dumped bytes hold.
    fn read_from_core(&self, addr: u64, buf: &mut [u8]) -> CoreRead {
        let segments = &self.core.segments;
        let last = self.last_segment.get();
        // The memo answers only where the search would give the same segment (a hostile core
        // may have overlapping segments: the search takes the last that starts at or below).
        let memo = segments.get(last).filter(|s| {
            s.vaddr <= addr
                && addr < s.end()
                && segments.get(last + 1).is_none_or(|next| next.vaddr > addr)
        });
        let segment = match memo {
            Some(segment) => segment,
            None => match self.core.segment_index(addr) {
                Some(index) if index < segments.len() => {
                    self.last_segment.set(index);
                    // cannot panic: the guard checked `index`.
                    &segments[index]
                }
                _ => return CoreRead::NotDumped,
            },
        };
        let within = addr - segment.vaddr;
        if within >= segment.dumped_size {
            return CoreRead::NotDumped;
        }
        if within >= segment.file_size {
            return CoreRead::Lost;
        }
        let dumped = self.core.segment_bytes(segment);
        let Some(available) = dumped.get(within as usize..) else {
            return CoreRead::Lost;
        };
        let n = available.len().min(buf.len());
        if n == 0 {
            return CoreRead::Lost;
        }
        // cannot panic: `n` is at most both lengths.
        buf[..n].copy_from_slice(&available[..n]);
        CoreRead::Copied(n)
    }

    /// Copy the longest prefix of `buf` that the registered file mapped at `addr` holds.
    fn read_from_file(&self, addr: u64, buf: &mut [u8]) -> Option<usize> {
        let files = &self.core.files;
        let index = files.partition_point(|f| f.start <= addr).checked_sub(1)?;
        let mapping = files.get(index)?;
        if addr >= mapping.end {
            return None;
        }
        let file = self.backing_file(&mapping.path)?;
        let offset = mapping.file_offset.checked_add(addr - mapping.start)?;
        let bytes = file.bytes().get(usize::try_from(offset).ok()?..)?;
        let n = bytes
            .len()
            .min(buf.len())
            .min((mapping.end - addr) as usize);
        if n == 0 {
            return None;
        }
        // cannot panic: `n` is at most both lengths.
        buf[..n].copy_from_slice(&bytes[..n]);
        Some(n)
    }
}

/// Reads served by the core file alone ([`AddressSpace::core_only`]).
pub struct CoreOnly<'a, 'c>(&'a AddressSpace<'c>);

impl Memory for CoreOnly<'_, '_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.0.read_core_only(addr, buf)
    }

    fn read_u8(&self, addr: u64) -> Result<u8, Unreadable> {
        self.0.read_array(addr, false).map(u8::from_le_bytes)
    }

    fn read_u32(&self, addr: u64) -> Result<u32, Unreadable> {
        self.0.read_array(addr, false).map(u32::from_le_bytes)
    }

    fn read_u64(&self, addr: u64) -> Result<u64, Unreadable> {
        self.0.read_array(addr, false).map(u64::from_le_bytes)
    }
}

impl Memory for AddressSpace<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.read_with(addr, buf, true)
    }

    fn read_u8(&self, addr: u64) -> Result<u8, Unreadable> {
        self.read_array(addr, true).map(u8::from_le_bytes)
    }

    fn read_u32(&self, addr: u64) -> Result<u32, Unreadable> {
        self.read_array(addr, true).map(u32::from_le_bytes)
    }

    fn read_u64(&self, addr: u64) -> Result<u64, Unreadable> {
        self.read_array(addr, true).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes the core holds at `[addr, addr + len)`, segment by segment, found without the
    /// memo or the fast path: what every read must answer.
    fn expected(core: &CoreFile, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < len {
            let at = addr.checked_add(out.len() as u64)?;
            let segment = &core.segments[core.segment_index(at)?];
            let within = at - segment.vaddr;
            if within >= segment.file_size {
                return None;
            }
            let bytes = core.segment_bytes(segment).get(within as usize..)?;
            let n = bytes.len().min(len - out.len());
            out.extend_from_slice(&bytes[..n]);
        }
        Some(out)
    }

    /// Reads at every segment's edges, each after a read elsewhere has set the memo, give what
    /// the segments hold: the fast path answers only where the long way would agree.
    #[test]
    fn reads_at_segment_edges_match_the_segments() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/example/core.zst");
        let data = crate::input::open(&path, crate::elf::described_len).expect("the example core");
        let core = CoreFile::parse(&path, data).expect("a core");
        let space = AddressSpace::new(&core);
        let only = space.core_only();
        let mut checked = 0;
        for (index, segment) in core.segments.iter().enumerate() {
            // The memo on the segment before, on this one, then on the one after.
            let neighbours = [index.saturating_sub(1), index, index + 1];
            for edge in [
                segment.vaddr,
                segment.vaddr + segment.file_size,
                segment.end(),
            ] {
                for delta in [-9i64, -8, -1, 0, 1, 7] {
                    let addr = edge.wrapping_add_signed(delta);
                    for &primer in &neighbours {
                        if let Some(p) = core.segments.get(primer) {
                            let _ = only.read_u8(p.vaddr);
                        }
                        for len in [1usize, 4, 8, 24] {
                            let mut buf = vec![0u8; len];
                            let got = only.read(addr, &mut buf).ok().map(|()| buf);
                            assert_eq!(got, expected(&core, addr, len), "{len} at {addr:#x}");
                        }
                        let want = expected(&core, addr, 8)
                            .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
                        assert_eq!(only.read_u64(addr).ok(), want, "u64 at {addr:#x}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} reads checked");
    }
}
