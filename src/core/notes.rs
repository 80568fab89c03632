//! Decoding of the notes in a Linux ELF core's PT_NOTE segments.
//!
//! Layouts mirror the kernel's `struct elf_prstatus`, `struct elf_prpsinfo`
//! (include/uapi/linux/elfcore.h), `siginfo_t` and the NT_FILE format written by
//! `fill_files_note()` (fs/binfmt_elf.c), for 64-bit little-endian targets.

use crate::bytes::{c_string_at, i32_at, slice, u32_at, u64_at};

pub const NT_PRSTATUS: u32 = 1;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;
pub const NT_ARM_TLS: u32 = 0x401;
/// The note `pycore pack` adds to the cores it writes (owner [`PACKED_OWNER`]): what the
/// analysis learnt from the binaries (docs/packed-cores.md).
pub const NT_PYCORE_PACKED: u32 = 1;
pub const PACKED_OWNER: &[u8] = b"PYCORE";
/// A packed core's note larger than this is not believed (nor copied).
pub const MAX_PACKED_NOTE: usize = 64 << 20;

/// At most this many NT_FILE entries are decoded (the kernel caps a process at 2^16 mappings
/// by default; a larger count in a note is garbage).
const MAX_FILE_ENTRIES: u64 = 1 << 20;

/// One raw note: its owner name, type and descriptor bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawNote<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

/// Iterate the notes packed in one PT_NOTE segment (4-byte aligned name and descriptor).
/// Stops quietly at the first malformed header: the caller reports what it found.
pub fn iter_notes(data: &[u8]) -> impl Iterator<Item = RawNote<'_>> {
    let mut offset = 0usize;
    std::iter::from_fn(move || {
        let namesz = u32_at(data, offset)? as usize;
        let descsz = u32_at(data, offset + 4)? as usize;
        let kind = u32_at(data, offset + 8)?;
        let name_start = offset + 12;
        let desc_start = name_start.checked_add(align4(namesz)?)?;
        let name = slice(data, name_start, namesz)?;
        let desc = slice(data, desc_start, descsz)?;
        offset = desc_start.checked_add(align4(descsz)?)?;
        // The name includes its NUL terminator.
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        Some(RawNote { name, kind, desc })
    })
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Which register file layout NT_PRSTATUS carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// The few registers a Python stack reader needs from each thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    pub pc: u64,
    pub sp: u64,
    /// x86_64 `fs_base` / aarch64 `tpidr_el0`: the thread pointer. On x86_64 glibc it equals the
    /// `pthread_t` that CPython stores in `PyThreadState.thread_id`.
    pub thread_pointer: Option<u64>,
    /// Every general register the note holds (the unwinder's start, the system call).
    pub general: super::regs::RegisterSet,
}

/// One thread, from NT_PRSTATUS.
#[derive(Debug, Clone)]
pub struct ThreadStatus {
    pub tid: i32,
    /// The signal the thread was stopped by (`pr_cursig`), 0 if none. The kernel and gdb both
    /// write the one signal of the dump on every thread, so this alone does not tell which
    /// thread took it.
    pub signal: i32,
    pub registers: Registers,
    /// The NT_SIGINFO written after this thread's NT_PRSTATUS (before the next thread's), if any.
    /// The kernel writes one, after the dumping thread's; gdb writes one per thread: the signal
    /// that thread is stopped with (`PTRACE_GETSIGINFO`), so only the thread that took the
    /// reported signal has that signal here; the others have gdb's own SIGSTOP.
    pub siginfo: Option<SignalInfo>,
}

const PRSTATUS_CURSIG: usize = 12;
const PRSTATUS_PID: usize = 32;
const PRSTATUS_REGS: usize = 112;

pub fn parse_prstatus(desc: &[u8], arch: Arch) -> Option<ThreadStatus> {
    let tid = i32_at(desc, PRSTATUS_PID)?;
    let signal = i32::from(crate::bytes::u16_at(desc, PRSTATUS_CURSIG)? as i16);
    let reg = |index: usize| u64_at(desc, PRSTATUS_REGS + index * 8);
    let registers = match arch {
        // struct user_regs_struct (arch/x86/include/asm/user_64.h): rip is 16, rsp 19, fs_base 21.
        Arch::X86_64 => Registers {
            pc: reg(16)?,
            sp: reg(19)?,
            thread_pointer: reg(21),
            general: super::regs::RegisterSet::from_words(
                arch,
                desc.get(PRSTATUS_REGS..)?.get(..27 * 8)?,
            ),
        },
        // struct user_pt_regs: x0..x30, sp, pc, pstate. TLS comes in NT_ARM_TLS.
        Arch::Aarch64 => Registers {
            pc: reg(32)?,
            sp: reg(31)?,
            thread_pointer: None,
            general: super::regs::RegisterSet::from_words(
                arch,
                desc.get(PRSTATUS_REGS..)?.get(..34 * 8)?,
            ),
        },
    };
    Some(ThreadStatus {
        tid,
        signal,
        registers,
        siginfo: None,
    })
}

/// Process information from NT_PRPSINFO.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub gid: u32,
    /// `pr_fname`: the command name (at most 15 bytes).
    pub command: String,
    /// `pr_psargs`: the start of the command line (at most 80 bytes, as the kernel truncates it).
    pub args: String,
}

/// Where `struct elf_prpsinfo` keeps the command line (`pr_psargs`), and its size.
pub const PSARGS_OFFSET: usize = 56;
pub const PSARGS_LEN: usize = 80;

pub fn parse_prpsinfo(desc: &[u8]) -> Option<ProcessInfo> {
    let fixed = |offset: usize, len: usize| -> Option<String> {
        let field = slice(desc, offset, len)?;
        Some(c_string_at(field, 0)?.trim_end().to_string())
    };
    Some(ProcessInfo {
        uid: u32_at(desc, 16)?,
        gid: u32_at(desc, 20)?,
        pid: i32_at(desc, 24)?,
        ppid: i32_at(desc, 28)?,
        command: fixed(40, 16)?,
        args: fixed(PSARGS_OFFSET, PSARGS_LEN)?,
    })
}

/// The signal that killed the process, from NT_SIGINFO (`siginfo_t`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct SignalInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// The union's first word: `si_addr` for fault signals, `si_pid | si_uid << 32` for kill.
    pub union_word: u64,
}

pub fn parse_siginfo(desc: &[u8]) -> Option<SignalInfo> {
    Some(SignalInfo {
        signo: i32_at(desc, 0)?,
        errno: i32_at(desc, 4)?,
        code: i32_at(desc, 8)?,
        union_word: u64_at(desc, 16)?,
    })
}

/// `(type, value)` pairs from NT_AUXV, up to AT_NULL.
pub fn parse_auxv(desc: &[u8]) -> Vec<(u64, u64)> {
    desc.chunks_exact(16)
        .map_while(|pair| Some((u64_at(pair, 0)?, u64_at(pair, 8)?)))
        .take_while(|&(kind, _)| kind != 0)
        .collect()
}

/// One file mapping from NT_FILE: `[start, end)` maps `path` from byte `file_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub path: String,
}

/// NT_FILE: count, page size, `count` triples (start, end, offset in pages), then `count`
/// NUL-terminated paths.
pub fn parse_file_note(desc: &[u8]) -> Vec<FileMapping> {
    let (Some(count), Some(page_size)) = (u64_at(desc, 0), u64_at(desc, 8)) else {
        return Vec::new();
    };
    // Each entry needs 24 bytes of triple plus at least one byte of name.
    let fits = (desc.len() as u64).saturating_sub(16) / 25;
    let count = count.min(fits).min(MAX_FILE_ENTRIES) as usize;
    let mut names_at = 16 + count * 24;
    let mut mappings = Vec::with_capacity(count);
    for index in 0..count {
        let triple = 16 + index * 24;
        let (Some(start), Some(end), Some(pages)) = (
            u64_at(desc, triple),
            u64_at(desc, triple + 8),
            u64_at(desc, triple + 16),
        ) else {
            break;
        };
        let Some(raw) = desc.get(names_at..) else {
            break;
        };
        let raw = crate::bytes::up_to_nul(raw);
        // Advance by the raw length: a lossy conversion of a non-UTF-8 path is longer.
        names_at += raw.len() + 1;
        let path = String::from_utf8_lossy(raw).into_owned();
        mappings.push(FileMapping {
            start,
            end,
            file_offset: pages.saturating_mul(page_size),
            path,
        });
    }
    mappings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(name);
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn iterates_notes_and_stops_on_truncation() {
        let mut data = note(b"CORE", NT_PRSTATUS, &[1, 2, 3]);
        data.extend(note(b"LINUX", 0x401, &[9; 8]));
        let notes: Vec<_> = iter_notes(&data).collect();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].name, b"CORE");
        assert_eq!(notes[0].desc, &[1, 2, 3]);
        assert_eq!(notes[1].kind, 0x401);
        assert_eq!(iter_notes(&data[..data.len() - 1]).count(), 1);
    }

    #[test]
    fn file_note_with_absurd_count_is_bounded() {
        let mut desc = Vec::new();
        desc.extend_from_slice(&u64::MAX.to_le_bytes());
        desc.extend_from_slice(&4096u64.to_le_bytes());
        for value in [0x1000u64, 0x2000, 3] {
            desc.extend_from_slice(&value.to_le_bytes());
        }
        desc.extend_from_slice(b"/bin/x\0");
        let files = parse_file_note(&desc);
        assert_eq!(
            files,
            vec![FileMapping {
                start: 0x1000,
                end: 0x2000,
                file_offset: 3 * 4096,
                path: "/bin/x".into()
            }]
        );
    }
}
