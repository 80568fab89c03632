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
}

impl Memory for AddressSpace<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.read_with(addr, buf, true)
    }
}
