//! The process's address space as the core recorded it.
//!
//! [`Memory`] is the one trait every reader above this layer uses, so the Python walker can be
//! unit-tested on synthetic memory. [`AddressSpace`] implements it over a core: bytes the core
//! holds come straight from the mapped core file; pages it left out (clean file-backed pages,
//! not dumped under the default `coredump_filter`) come from the mapped ELF file named by NT_FILE,
//! once a higher layer has registered a verified local copy of that file.

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::{CoreFile, Segment};
use crate::input::MappedFile;

/// A read that the core and its registered files cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory at {addr:#x} ({len} bytes) {}", if *.cut_off { "was dumped, but the core file is cut off before it" } else { "is not in the core or in its mapped files" })]
pub struct Unreadable {
    pub addr: u64,
    pub len: usize,
    /// The core dumped this memory but the file is truncated before it.
    pub cut_off: bool,
}

/// Largest single read the readers above will ask for; bigger requests are refused so that a
/// size read from hostile memory can never drive an allocation.
pub const MAX_READ: usize = 16 << 20;

/// Bounded reads by virtual address.
pub trait Memory {
    /// Fill `buf` with the bytes at `addr`, or fail without partial results.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable>;

    fn read_u8(&self, addr: u64) -> Result<u8, Unreadable> {
        let mut buf = [0u8; 1];
        self.read(addr, &mut buf)?;
        Ok(buf[0])
    }

    fn read_u32(&self, addr: u64) -> Result<u32, Unreadable> {
        let mut buf = [0u8; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn read_i32(&self, addr: u64) -> Result<i32, Unreadable> {
        Ok(self.read_u32(addr)? as i32)
    }

    fn read_u64(&self, addr: u64) -> Result<u64, Unreadable> {
        let mut buf = [0u8; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Read `len` bytes into a new vector; `len` above [`MAX_READ`] is refused.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, Unreadable> {
        if len > MAX_READ {
            return Err(Unreadable {
                addr,
                len,
                cut_off: false,
            });
        }
        let mut buf = vec![0u8; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }
}

/// What the core itself holds at an address.
enum CoreRead {
    /// This many bytes were copied.
    Copied(usize),
    /// The core did not dump this memory (by design: clean file-backed pages, or no segment).
    NotDumped,
    /// The core dumped it, but the file was cut before it.
    Lost,
}

/// A NUL-terminated string of at most `limit` bytes at `addr` (lossy UTF-8); `None` if it is
/// unreadable or longer.
pub fn read_c_string(memory: &impl Memory, addr: u64, limit: usize) -> Option<String> {
    let mut out = Vec::new();
    while out.len() < limit {
        let byte = memory.read_u8(addr.checked_add(out.len() as u64)?).ok()?;
        if byte == 0 {
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.push(byte);
    }
    None
}

/// The core's memory plus the verified files that back its file mappings.
pub struct AddressSpace<'c> {
    core: &'c CoreFile,
    /// Local copies of mapped files, keyed by the path recorded in NT_FILE.
    backing: HashMap<String, Arc<MappedFile>>,
}

impl<'c> AddressSpace<'c> {
    pub fn new(core: &'c CoreFile) -> AddressSpace<'c> {
        AddressSpace {
            core,
            backing: HashMap::new(),
        }
    }

    /// Serve pages of the mappings of `core_path` that the core left out from `file`.
    /// The caller must have checked that `file` is the file the process mapped (build-id).
    pub fn add_backing_file(&mut self, core_path: &str, file: Arc<MappedFile>) {
        self.backing.insert(core_path.to_string(), file);
    }

    pub fn core(&self) -> &'c CoreFile {
        self.core
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
        let Some(segment) = find_segment(&self.core.segments, addr) else {
            return CoreRead::NotDumped;
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
        buf[..n].copy_from_slice(&available[..n]);
        CoreRead::Copied(n)
    }

    /// Copy the longest prefix of `buf` that the registered file mapped at `addr` holds.
    fn read_from_file(&self, addr: u64, buf: &mut [u8]) -> Option<usize> {
        let files = &self.core.files;
        let index = files.partition_point(|f| f.start <= addr).checked_sub(1)?;
        let mapping = &files[index];
        if addr >= mapping.end {
            return None;
        }
        let file = self.backing.get(&mapping.path)?;
        let offset = mapping.file_offset.checked_add(addr - mapping.start)?;
        let bytes = file.bytes().get(usize::try_from(offset).ok()?..)?;
        let n = bytes
            .len()
            .min(buf.len())
            .min((mapping.end - addr) as usize);
        if n == 0 {
            return None;
        }
        buf[..n].copy_from_slice(&bytes[..n]);
        Some(n)
    }
}

impl Memory for AddressSpace<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        self.read_with(addr, buf, true)
    }
}

fn find_segment(segments: &[Segment], addr: u64) -> Option<&Segment> {
    let index = segments
        .partition_point(|s| s.vaddr <= addr)
        .checked_sub(1)?;
    let segment = &segments[index];
    (addr < segment.end()).then_some(segment)
}

/// Synthetic memory for unit tests: a set of byte regions at given addresses.
#[cfg(test)]
pub mod fake {
    use super::{Memory, Unreadable};

    #[derive(Default)]
    pub struct FakeMemory {
        regions: Vec<(u64, Vec<u8>)>,
    }

    impl FakeMemory {
        pub fn add(&mut self, addr: u64, bytes: Vec<u8>) {
            self.regions.push((addr, bytes));
        }
    }

    impl Memory for FakeMemory {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
            let fail = Unreadable {
                addr,
                len: buf.len(),
                cut_off: false,
            };
            for (start, bytes) in &self.regions {
                if addr >= *start {
                    let offset = (addr - start) as usize;
                    if let Some(src) = offset
                        .checked_add(buf.len())
                        .and_then(|end| bytes.get(offset..end))
                    {
                        buf.copy_from_slice(src);
                        return Ok(());
                    }
                }
            }
            Err(fail)
        }
    }
}
