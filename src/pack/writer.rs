//! Write a packed core: an ELF64 core file (ET_CORE) with one PT_NOTE segment (the original
//! notes, then pycore's) and one PT_LOAD segment per kept memory range, at its run-time address.
//! Layout: ELF header, program headers, notes, segment bytes.

use std::io::Write;
use std::path::Path;

use super::facts::PackedFacts;
use super::recording::merged;
use crate::core::{notes, Arch, CoreFile};
use crate::error::{Error, Result};
use crate::memory::{AddressSpace, Memory};

const ELF_HEADER_SIZE: u64 = 64;
const PROGRAM_HEADER_SIZE: u64 = 56;
/// Program headers stay below `PN_XNUM` (0xffff) so the count fits `e_phnum`.
const MAX_SEGMENTS: usize = 60_000;
/// Ranges closer than this may be joined into one segment when there are too many.
const MAX_JOINED_GAP: u64 = 4096;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_R: u32 = 4;

/// Where and how to write.
pub(crate) struct Output<'a> {
    pub path: &'a Path,
    pub compress: bool,
    pub redact_command: bool,
}

/// What was written.
pub(crate) struct Written {
    pub file_size: u64,
    pub segments: usize,
    pub memory_bytes: u64,
}

/// Write the packed core of `core` keeping `ranges` of `memory`.
pub(crate) fn write(
    core: &CoreFile,
    memory: &AddressSpace<'_>,
    ranges: Vec<(u64, u64)>,
    facts: &PackedFacts,
    output: &Output<'_>,
) -> Result<Written> {
    let unsupported = |what: String| Error::PackUnsupported { what };
    let segments = segments(core, memory, ranges).map_err(unsupported)?;
    let notes = notes(core, facts, output.redact_command).map_err(unsupported)?;
    let image = image(core.arch, &notes, &segments);
    let failed = |source: std::io::Error| Error::PackWrite {
        path: output.path.to_path_buf(),
        source,
    };
    let dir = output
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    if output.compress {
        let mut encoder = zstd::Encoder::new(file.as_file_mut(), 19).map_err(failed)?;
        encoder.write_all(&image).map_err(failed)?;
        encoder.finish().map_err(failed)?;
    } else {
        file.write_all(&image).map_err(failed)?;
    }
    let file = file.persist(output.path).map_err(|e| failed(e.error))?;
    Ok(Written {
        file_size: file.metadata().map_err(failed)?.len(),
        segments: segments.len(),
        memory_bytes: segments.iter().map(|(_, _, b)| b.len() as u64).sum(),
    })
}

/// The kept memory: `(address, p_flags, bytes)` per segment, sorted, non-overlapping. `Err`
/// names why the ranges cannot be written as few enough segments.
fn segments(
    core: &CoreFile,
    memory: &AddressSpace<'_>,
    ranges: Vec<(u64, u64)>,
) -> std::result::Result<Vec<(u64, u32, Vec<u8>)>, String> {
    let exact = merged(ranges, 0);
    // Few enough program headers: the smallest gaps between ranges are closed (the bytes
    // between come along), never one wider than MAX_JOINED_GAP.
    let gap = widest_gap_to_close(&exact)?;
    let joined = if gap == 0 {
        exact.clone()
    } else {
        merged(exact.clone(), gap)
    };
    let flags = |addr: u64| core.segment_containing(addr).map_or(PF_R, |s| s.flags);
    let mut out = Vec::with_capacity(joined.len());
    let mut parts = exact.iter().peekable();
    for &(start, end) in &joined {
        // Bounded: the exact ranges were read whole by the analysis (each at most
        // memory::MAX_READ), and a join adds at most MAX_JOINED_GAP per gap.
        let mut bytes = vec![0u8; usize::try_from(end - start).map_err(|e| e.to_string())?];
        if memory.read(start, &mut bytes).is_ok() {
            out.push((start, flags(start), bytes));
            while parts.next_if(|&&(s, _)| s < end).is_some() {}
            continue;
        }
        // The joined range crosses memory that is not there: its exact ranges, each of which
        // the analysis read whole.
        while let Some(&(s, e)) = parts.next_if(|&&(s, _)| s < end) {
            let mut bytes = vec![0u8; usize::try_from(e - s).map_err(|e| e.to_string())?];
            if memory.read(s, &mut bytes).is_ok() {
                out.push((s, flags(s), bytes));
            }
        }
    }
    if out.len() > MAX_SEGMENTS {
        return Err(format!(
            "the analysis read {} separate memory ranges, more than the {MAX_SEGMENTS} program headers a core can list",
            out.len()
        ));
    }
    Ok(out)
}

/// The widest gap that must be closed for `ranges` (sorted, disjoint) to fit in
/// [`MAX_SEGMENTS`]: 0 when they fit as they are.
fn widest_gap_to_close(ranges: &[(u64, u64)]) -> std::result::Result<u64, String> {
    let excess = ranges.len().saturating_sub(MAX_SEGMENTS);
    if excess == 0 {
        return Ok(0);
    }
    // cannot panic: `windows(2)` gives pairs; merged ranges do not overlap (saturating anyway).
    let mut gaps: Vec<u64> = ranges
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].1))
        .collect();
    gaps.sort_unstable();
    let widest = gaps.get(excess - 1).copied().unwrap_or(0);
    if widest > MAX_JOINED_GAP {
        return Err(format!(
            "the analysis read {} separate memory ranges too far apart to join into {MAX_SEGMENTS} segments",
            ranges.len()
        ));
    }
    Ok(widest)
}

/// The PT_NOTE segment: every note of the core as it was (the command line blanked when asked),
/// then pycore's.
fn notes(
    core: &CoreFile,
    facts: &PackedFacts,
    redact_command: bool,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut had_file_note = false;
    for &(start, end) in &core.note_ranges {
        let Some(segment) = core.bytes().get(start..end) else {
            continue;
        };
        for note in notes::iter_notes(segment) {
            had_file_note |= note.name == b"CORE" && note.kind == notes::NT_FILE;
            if note.name == b"PYCORE" {
                continue;
            }
            let mut desc = note.desc.to_vec();
            if redact_command && note.name == b"CORE" && note.kind == notes::NT_PRPSINFO {
                if let Some(args) =
                    desc.get_mut(notes::PSARGS_OFFSET..notes::PSARGS_OFFSET + notes::PSARGS_LEN)
                {
                    args.fill(0);
                }
            }
            encode_note(&mut out, note.name, note.kind, &desc);
        }
    }
    // A core without NT_FILE (qemu-user's) whose mapped files were recovered from memory: the
    // packed core keeps the recovered list as its NT_FILE, so that it names its modules alone.
    if !had_file_note && !core.files.is_empty() {
        encode_note(&mut out, b"CORE", notes::NT_FILE, &file_note(&core.files));
    }
    // Each note read back from the core fits its u32 sizes; the segment must too.
    if out.len() > u32::MAX as usize / 2 {
        return Err(format!("its notes take {} bytes", out.len()));
    }
    let facts = serde_json::to_vec(facts).map_err(|e| e.to_string())?;
    if facts.len() > notes::MAX_PACKED_NOTE {
        return Err(format!(
            "this core: what its analysis needs from outside its memory takes {} bytes, more than the {} a packed core may hold",
            facts.len(),
            notes::MAX_PACKED_NOTE
        ));
    }
    encode_note(
        &mut out,
        notes::PACKED_OWNER,
        notes::NT_PYCORE_PACKED,
        &facts,
    );
    Ok(out)
}

/// An NT_FILE descriptor (fs/binfmt_elf.c fill_files_note): count, page size, then (start,
/// end, offset in pages) per mapping, then the NUL-terminated paths.
fn file_note(files: &[crate::core::FileMapping]) -> Vec<u8> {
    const PAGE: u64 = 4096;
    let mut desc = Vec::new();
    desc.extend_from_slice(&(files.len() as u64).to_le_bytes());
    desc.extend_from_slice(&PAGE.to_le_bytes());
    for file in files {
        for word in [file.start, file.end, file.file_offset / PAGE] {
            desc.extend_from_slice(&word.to_le_bytes());
        }
    }
    for file in files {
        desc.extend_from_slice(file.path.as_bytes());
        desc.push(0);
    }
    desc
}

/// One note: namesz, descsz, type, the name with its NUL, the descriptor, each 4-aligned.
fn encode_note(out: &mut Vec<u8>, name: &[u8], kind: u32, desc: &[u8]) {
    let pad = |out: &mut Vec<u8>| out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(&((name.len() + 1) as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    pad(out);
    out.extend_from_slice(desc);
    pad(out);
}

/// The whole file.
fn image(arch: Arch, notes: &[u8], segments: &[(u64, u32, Vec<u8>)]) -> Vec<u8> {
    let phnum = 1 + segments.len() as u64;
    let notes_offset = ELF_HEADER_SIZE + phnum * PROGRAM_HEADER_SIZE;
    let data_offset = notes_offset + notes.len() as u64;
    let total = data_offset + segments.iter().map(|(_, _, b)| b.len() as u64).sum::<u64>();
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    // Elf64_Ehdr
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    let machine: u16 = match arch {
        Arch::X86_64 => 62,
        Arch::Aarch64 => 183,
    };
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&ELF_HEADER_SIZE.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(ELF_HEADER_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(PROGRAM_HEADER_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(phnum as u16).to_le_bytes());
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    let mut header = |kind: u32, flags: u32, offset: u64, vaddr: u64, size: u64, align: u64| {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        for value in [offset, vaddr, 0, size, size, align] {
            out.extend_from_slice(&value.to_le_bytes());
        }
    };
    header(PT_NOTE, 0, notes_offset, 0, notes.len() as u64, 4);
    let mut offset = data_offset;
    for (vaddr, flags, bytes) in segments {
        header(PT_LOAD, *flags, offset, *vaddr, bytes.len() as u64, 1);
        offset += bytes.len() as u64;
    }
    out.extend_from_slice(notes);
    for (_, _, bytes) in segments {
        out.extend_from_slice(bytes);
    }
    out
}
