//! The ELF core file: its PT_LOAD segments and the notes that describe the process.
//!
//! Nothing is copied: segments are ranges of the mapped file and are served by
//! [`crate::memory`]. Only 64-bit little-endian x86_64 and aarch64 cores are accepted.

pub mod notes;
pub mod regs;
pub mod signal;

use std::path::{Path, PathBuf};

use goblin::elf::header;

use crate::elf::{self, PT_LOAD, PT_NOTE};
use crate::error::{Error, Result};
use crate::input::MappedFile;
pub use notes::{Arch, FileMapping, ProcessInfo, Registers, SignalInfo, ThreadStatus};

/// One PT_LOAD segment. `[vaddr, vaddr + file_size)` is backed by core bytes at `offset`;
/// `[vaddr + file_size, vaddr + mem_size)` was not dumped (clean file-backed pages, or cut off).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub offset: u64,
    /// Bytes present in the core file (already clamped to the file's real length).
    pub file_size: u64,
    /// Bytes the header says were dumped (`p_filesz`); more than `file_size` when the file is
    /// cut short. Memory between the two was dumped but is lost.
    pub dumped_size: u64,
    /// `p_flags`: the mapping's permissions when it was dumped (PF_X 1, PF_W 2, PF_R 4).
    pub flags: u32,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.mem_size)
    }
}

/// A parsed core: the mapped bytes plus what its headers and notes say.
pub struct CoreFile {
    pub path: PathBuf,
    data: MappedFile,
    pub arch: Arch,
    /// Sorted by `vaddr`.
    pub segments: Vec<Segment>,
    pub threads: Vec<ThreadStatus>,
    /// Thread notes past [`MAX_THREADS`], not read.
    pub dropped_threads: usize,
    pub process: Option<ProcessInfo>,
    /// The first NT_SIGINFO: the kernel writes exactly one (the fatal signal); gdb writes one
    /// per thread, the signalled thread's first (see [`ThreadStatus::siginfo`]).
    pub signal: Option<SignalInfo>,
    pub auxv: Vec<(u64, u64)>,
    /// Sorted by `start`.
    pub files: Vec<FileMapping>,
    /// Bytes of segments that the headers promise but the file does not hold (a cut core).
    pub truncated_bytes: u64,
    /// The file's length and the length its headers promise, when it is cut short.
    pub truncation: Option<Truncation>,
    /// Who wrote the core.
    pub dumper: Dumper,
    /// `[start, end)` in the file of each PT_NOTE segment, as dumped (for `pycore pack`).
    pub note_ranges: Vec<(usize, usize)>,
    /// Set above the core layer when the core records no NT_FILE and `files` was recovered
    /// from memory (`loaded_objects`): how, and what the core lacks.
    pub recovery_warnings: Vec<crate::warning::Warning>,
    /// The descriptor of the note `pycore pack` adds (owner "PYCORE"), when this core is one
    /// it wrote: `Err(size)` when it is larger than [`notes::MAX_PACKED_NOTE`] (not copied).
    pub packed: Option<std::result::Result<Vec<u8>, usize>>,
}

/// How a cut-off core (`ulimit -c`, a full disk, an interrupted copy) falls short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    pub file_len: u64,
    pub expected_len: u64,
    /// The lowest address whose memory is missing because of the cut.
    pub first_missing_address: u64,
    /// Segments whose dumped bytes are missing entirely or in part.
    pub segments_cut: usize,
    /// The notes are cut too: threads after the cut may be missing.
    pub notes_cut: bool,
}

/// What wrote a core, as far as its notes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dumper {
    /// gdb: `gcore` or `generate-core-file` (it adds a "GDB" target-description note). A
    /// snapshot of a live process, or of one stopped under gdb by a crash: the signal
    /// information tells which (see `report::crash_summary`).
    Gdb,
    /// The kernel (directly or through systemd-coredump/apport), on a fatal signal.
    Kernel,
    Unknown,
}

impl CoreFile {
    pub fn parse(path: &Path, data: MappedFile) -> Result<CoreFile> {
        let not_core = |reason: &str| Error::NotACore {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let bytes = data.bytes();
        let header = elf::header(bytes).map_err(|e| not_core(&e.to_string()))?;
        if header.e_type != header::ET_CORE {
            return Err(not_core(&format!(
                "it is an ELF {} file, not a core (e_type {})",
                header::et_to_str(header.e_type),
                header.e_type
            )));
        }
        let arch = match header.e_machine {
            header::EM_X86_64 => Arch::X86_64,
            header::EM_AARCH64 => Arch::Aarch64,
            other => {
                return Err(not_core(&format!(
                    "its machine type {} ({other}) is not supported (x86_64, aarch64 are)",
                    header::machine_to_str(other)
                )))
            }
        };
        let program_headers = elf::program_headers(bytes, &header)
            .ok_or_else(|| not_core("its program headers are cut off or malformed"))?;

        let mut notes = Notes::default();
        let mut note_ranges = Vec::new();
        let mut segments = Vec::new();
        let mut truncated_bytes = 0u64;
        let file_len = bytes.len() as u64;
        let notes_cut = program_headers
            .iter()
            .any(|ph| ph.p_type == PT_NOTE && ph.p_offset.saturating_add(ph.p_filesz) > file_len);
        for ph in &program_headers {
            match ph.p_type {
                PT_LOAD => {
                    let available = file_len.saturating_sub(ph.p_offset);
                    let file_size = ph.p_filesz.min(available).min(ph.p_memsz);
                    truncated_bytes =
                        truncated_bytes.saturating_add(ph.p_filesz.min(ph.p_memsz) - file_size);
                    segments.push(Segment {
                        vaddr: ph.p_vaddr,
                        mem_size: ph.p_memsz,
                        offset: ph.p_offset,
                        file_size,
                        dumped_size: ph.p_filesz.min(ph.p_memsz),
                        flags: ph.p_flags,
                    });
                }
                PT_NOTE => {
                    let start = ph.p_offset.min(file_len) as usize;
                    let end = ph.p_offset.saturating_add(ph.p_filesz).min(file_len) as usize;
                    notes.read(bytes.get(start..end).unwrap_or_default(), arch);
                    note_ranges.push((start, end.max(start)));
                }
                _ => {}
            }
        }
        if notes_cut {
            // Without the thread list or the mapped-file list nothing can be located; with
            // them, the threads whose notes survived are analysed and the cut is reported.
            let lost = [
                (notes.threads.is_empty(), "the threads (NT_PRSTATUS)"),
                (notes.files.is_empty(), "the mapped files (NT_FILE)"),
            ];
            if let Some((_, what)) = lost.iter().find(|(missing, _)| *missing) {
                return Err(not_core(&format!(
                    "the file is truncated: its notes are cut off, and with them {what}"
                )));
            }
        } else if notes.threads.is_empty() {
            return Err(not_core("it has no NT_PRSTATUS thread notes"));
        }
        let expected_len = program_headers
            .iter()
            .map(|ph| ph.p_offset.saturating_add(ph.p_filesz))
            .max()
            .unwrap_or(0);
        let mut truncation = None;
        if expected_len > file_len {
            // Each cut segment loses its memory from where the file ends.
            let cut_segments: Vec<u64> = program_headers
                .iter()
                .filter(|ph| {
                    ph.p_type == PT_LOAD && ph.p_offset.saturating_add(ph.p_filesz) > file_len
                })
                .map(|ph| {
                    ph.p_vaddr
                        .saturating_add(file_len.saturating_sub(ph.p_offset))
                })
                .collect();
            truncation = Some(Truncation {
                file_len,
                expected_len,
                first_missing_address: cut_segments.iter().copied().min().unwrap_or(0),
                segments_cut: cut_segments.len(),
                notes_cut,
            });
        }
        // gcore adds a "GDB" note; the kernel writes no section headers.
        let dumper = if notes.gdb {
            Dumper::Gdb
        } else if header.e_shnum <= 1 && notes.signal.is_some() {
            Dumper::Kernel
        } else {
            Dumper::Unknown
        };
        segments.sort_by_key(|s| s.vaddr);
        notes.files.sort_by_key(|f| f.start);
        Ok(CoreFile {
            path: path.to_path_buf(),
            data,
            arch,
            segments,
            threads: notes.threads,
            dropped_threads: notes.dropped_threads,
            process: notes.process,
            signal: notes.signal,
            auxv: notes.auxv,
            files: notes.files,
            truncated_bytes,
            truncation,
            dumper,
            note_ranges,
            recovery_warnings: Vec::new(),
            packed: notes.packed,
        })
    }

    /// The whole core file's bytes.
    /// The segment whose address range holds `address` (e.g. a thread's stack, from its SP).
    pub fn segment_containing(&self, address: u64) -> Option<&Segment> {
        self.segments.get(self.segment_index(address)?)
    }

    /// The index in `segments` of the segment holding `address`: the last one starting at or
    /// below it (segments are sorted by address), if it reaches that far.
    pub fn segment_index(&self, address: u64) -> Option<usize> {
        let index = self
            .segments
            .partition_point(|s| s.vaddr <= address)
            .checked_sub(1)?;
        (address < self.segments.get(index)?.end()).then_some(index)
    }

    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }

    /// The dumped bytes of `segment`.
    pub fn segment_bytes(&self, segment: &Segment) -> &[u8] {
        crate::bytes::slice(
            self.bytes(),
            segment.offset as usize,
            segment.file_size as usize,
        )
        .unwrap_or(&[])
    }

    /// Value of an auxiliary vector entry (`AT_*`).
    pub fn auxv_value(&self, kind: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == kind).map(|&(_, v)| v)
    }
}

/// More NT_PRSTATUS notes than this are not read (a process's threads are capped far lower by
/// the kernel's default `threads-max` share; a larger count is a corrupt or hostile core).
pub const MAX_THREADS: usize = 1 << 16;

/// What the PT_NOTE segments say, gathered before the core is put together.
#[derive(Default)]
struct Notes {
    threads: Vec<ThreadStatus>,
    /// Thread notes past [`MAX_THREADS`], not read.
    dropped_threads: usize,
    process: Option<ProcessInfo>,
    signal: Option<SignalInfo>,
    auxv: Vec<(u64, u64)>,
    files: Vec<FileMapping>,
    /// gdb (`gcore`, `generate-core-file`) wrote it.
    gdb: bool,
    packed: Option<std::result::Result<Vec<u8>, usize>>,
}

impl Notes {
    fn read(&mut self, segment: &[u8], arch: Arch) {
        for note in notes::iter_notes(segment) {
            match (note.name, note.kind) {
                (b"CORE", notes::NT_PRSTATUS) if self.threads.len() >= MAX_THREADS => {
                    self.dropped_threads += 1;
                }
                (b"CORE", notes::NT_PRSTATUS) => {
                    if let Some(thread) = notes::parse_prstatus(note.desc, arch) {
                        self.threads.push(thread);
                    }
                }
                (b"CORE", notes::NT_PRPSINFO) => self.process = notes::parse_prpsinfo(note.desc),
                (b"CORE", notes::NT_AUXV) => self.auxv = notes::parse_auxv(note.desc),
                (b"CORE", notes::NT_SIGINFO) => {
                    let info = notes::parse_siginfo(note.desc);
                    if self.signal.is_none() {
                        self.signal = info;
                    }
                    // It belongs to the thread whose NT_PRSTATUS it follows.
                    if let Some(thread) = self.threads.last_mut() {
                        thread.siginfo = thread.siginfo.or(info);
                    }
                }
                (b"CORE", notes::NT_FILE) => self.files = notes::parse_file_note(note.desc),
                (b"GDB", _) => self.gdb = true,
                (notes::PACKED_OWNER, notes::NT_PYCORE_PACKED) if self.packed.is_none() => {
                    self.packed = Some(if note.desc.len() > notes::MAX_PACKED_NOTE {
                        Err(note.desc.len())
                    } else {
                        Ok(note.desc.to_vec())
                    });
                }
                // The TLS register note follows the NT_PRSTATUS of the thread it belongs to.
                (b"LINUX", notes::NT_ARM_TLS) => {
                    if let (Some(thread), Some(tp)) =
                        (self.threads.last_mut(), crate::bytes::u64_at(note.desc, 0))
                    {
                        thread.registers.thread_pointer = Some(tp);
                    }
                }
                _ => {}
            }
        }
    }
}
