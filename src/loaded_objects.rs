//! The mapped files of a core that names none: qemu-user writes no NT_FILE (and writes the pages
//! that start with an ELF header empty), and a kernel core may have lost its NT_FILE. Where the
//! executable and every loaded library sat is then found from what the core does hold:
//!
//! - the executable: AT_EXECFN (or the command line) names it, `--python`/`--sysroot` find the
//!   file, and AT_ENTRY/AT_PHDR give its load bias (checked against the file's own headers);
//! - the libraries: its dynamic section's DT_DEBUG entry points at the dynamic loader's
//!   `struct r_debug`, whose `r_map` heads the `struct link_map` list of every loaded object
//!   with its name and load bias (glibc elf/link.h); each is found under `--sysroot` (or at its
//!   own path) and its PT_LOAD segments say what it mapped where;
//! - the dynamic loader itself from AT_BASE when the list cannot be read.
//!
//! The result stands in for NT_FILE (`CoreFile::files`), so the binaries, the address space's
//! file-backed pages and the native modules work as with a kernel core; a warning says that
//! the list was recovered, from what, and which facts the core lacks.

use std::collections::HashSet;

use crate::binaries::Locator;
use crate::core::{Arch, CoreFile, FileMapping};
use crate::elf::{self, PT_LOAD};
use crate::memory::{read_c_string, AddressSpace, Memory};
use crate::warning::{Warning, WarningKind};

/// auxv entries (include/uapi/linux/auxvec.h).
const AT_PHDR: u64 = 3;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const AT_EXECFN: u64 = 31;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const DT_NULL: u64 = 0;
const DT_DEBUG: u64 = 21;
const PAGE: u64 = 4096;
/// More loaded objects than this is a corrupt list.
const MAX_OBJECTS: usize = 4096;
/// More dynamic entries than this is a corrupt section.
const MAX_DYNAMIC: u64 = 4096;
const MAX_PATH: usize = 4096;

/// What was recovered: the mappings (sorted by start) and what to tell the reader.
pub struct Recovered {
    pub files: Vec<FileMapping>,
    pub warnings: Vec<Warning>,
}

/// One ELF file's program headers, read from the local copy.
struct Headers {
    entry: u64,
    loads: Vec<(u64, u64, u64)>,
    phdr_vaddr: Option<u64>,
    dynamic: Option<(u64, u64)>,
    interp: Option<String>,
}

/// The mapped files of `core`, which records none, found from its auxv, the local binaries
/// and the dynamic loader's list in memory; `None` when the core has an NT_FILE or nothing
/// can be found (the caller then reports the core as it is).
pub fn recover(core: &CoreFile, locator: &Locator) -> Option<Recovered> {
    if !core.files.is_empty() || core.auxv.is_empty() {
        return None;
    }
    let memory = AddressSpace::new(core);
    let mut warnings = Vec::new();
    let exec_path = read_c_string_opt(&memory, core.auxv_value(AT_EXECFN))
        .filter(|p| !p.is_empty())
        .or_else(|| {
            let args = &core.process.as_ref()?.args;
            args.split_whitespace().next().map(str::to_string)
        })?;
    let entry = core.auxv_value(AT_ENTRY)?;
    let mut skipped = Vec::new();
    let (exec, bias) = locator
        .candidates(&exec_path, true)
        .into_iter()
        .filter(|c| c.is_file())
        .find_map(|candidate| {
            let headers = read_headers(&candidate, core.arch);
            let fits = headers.as_ref().and_then(|h| executable_bias(h, core, entry));
            if fits.is_none() {
                skipped.push(candidate.display().to_string());
            }
            Some((headers?, fits?))
        })
        .or_else(|| {
            warnings.push(Warning::new(
                WarningKind::MappedFilesRecovered,
                format!(
                    "the core records no mapped files (no NT_FILE) and the executable it ran ({exec_path}) was not found{}: give --python or --sysroot",
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} is not it: other machine type, or its entry point and program headers are not where the auxv says)", skipped.join(", "))
                    }
                ),
            ));
            None
        })
        .map_or((None, 0), |(h, b)| (Some(h), b));
    let Some(exec) = exec else {
        return Some(Recovered {
            files: Vec::new(),
            warnings,
        });
    };
    let mut files = mappings(&exec_path, &exec, bias);
    let mut objects = 1usize;
    let mut missing = Vec::new();
    let mut from = "AT_ENTRY/AT_PHDR".to_string();
    let r_debug = exec
        .dynamic
        .and_then(|(addr, size)| dynamic_entry(&memory, addr.wrapping_add(bias), size, DT_DEBUG));
    let mut listed = false;
    if let Some(r_debug) = r_debug.filter(|&a| a != 0) {
        let listed_objects = link_map(&memory, r_debug);
        listed = !listed_objects.is_empty();
        from = format!("{from} and the dynamic loader's r_debug list at {r_debug:#x}");
        for (name, l_addr) in listed_objects {
            match find_object(&name, core.arch, locator) {
                Some(headers) => {
                    files.extend(mappings(&name, &headers, l_addr));
                    objects += 1;
                }
                None => missing.push(name),
            }
        }
    }
    if !listed {
        // A static executable, or a list the core did not keep: the loader from AT_BASE.
        if let (Some(base), Some(interp)) = (core.auxv_value(AT_BASE), &exec.interp) {
            if base != 0 {
                from = format!("{from} and AT_BASE");
                match find_object(interp, core.arch, locator) {
                    Some(headers) => {
                        files.extend(mappings(interp, &headers, base));
                        objects += 1;
                    }
                    None => missing.push(interp.clone()),
                }
            }
        }
    }
    files.sort_by_key(|f| f.start);
    let mut message = format!(
        "the core records no mapped files (no NT_FILE note; qemu-user writes none); {objects} loaded objects were found from {from}"
    );
    if !missing.is_empty() {
        message.push_str(&format!(
            "; not found on this machine (their memory is unknown): {}",
            missing.join(", ")
        ));
    }
    warnings.push(Warning::new(WarningKind::MappedFilesRecovered, message));
    warnings.extend(missing_facts(core));
    Some(Recovered { files, warnings })
}

/// What else the core lacks that a kernel core holds, in words (`None` when nothing).
fn missing_facts(core: &CoreFile) -> Option<Warning> {
    let mut lacks = Vec::new();
    if core.signal.is_none() && core.threads.iter().any(|t| t.signal != 0) {
        lacks.push("NT_SIGINFO (the signal's si_code and fault address are unknown)");
    }
    if core.arch == Arch::Aarch64
        && core
            .threads
            .iter()
            .all(|t| t.registers.thread_pointer.is_none())
    {
        lacks.push("NT_ARM_TLS (no thread pointers; Python thread states are joined to threads by native_thread_id, or by the TID glibc keeps in struct pthread)");
    }
    (!lacks.is_empty()).then(|| {
        Warning::new(
            WarningKind::CoreFactsMissing,
            format!("the core lacks {}", lacks.join(", and ")),
        )
    })
}

fn read_c_string_opt(memory: &impl Memory, addr: Option<u64>) -> Option<String> {
    read_c_string(memory, addr?, MAX_PATH)
}

/// The executable's load bias, if `headers` is the file the auxv describes.
fn executable_bias(headers: &Headers, core: &CoreFile, entry: u64) -> Option<u64> {
    let bias = entry.wrapping_sub(headers.entry);
    if let (Some(phdr), Some(vaddr)) = (core.auxv_value(AT_PHDR), headers.phdr_vaddr) {
        if phdr.wrapping_sub(vaddr) != bias {
            return None;
        }
    }
    // The entry point lies in an executable segment of the file.
    headers
        .loads
        .iter()
        .any(|&(vaddr, _, memsz)| vaddr <= headers.entry && headers.entry - vaddr < memsz)
        .then_some(bias)
}

/// The local copy of the object the loader named `name`: under the sysroot, in the lib paths,
/// at its own path; of the core's machine type.
fn find_object(name: &str, arch: Arch, locator: &Locator) -> Option<Headers> {
    locator
        .candidates(name, false)
        .into_iter()
        .filter(|c| c.is_file())
        .find_map(|c| read_headers(&c, arch))
}

fn read_headers(path: &std::path::Path, arch: Arch) -> Option<Headers> {
    let file = crate::input::open_shared(path, elf::described_len).ok()?;
    let bytes = file.bytes();
    let header = elf::header(bytes).ok()?;
    let machine = match arch {
        Arch::X86_64 => goblin::elf::header::EM_X86_64,
        Arch::Aarch64 => goblin::elf::header::EM_AARCH64,
    };
    if header.e_machine != machine {
        return None;
    }
    let program_headers = elf::program_headers(bytes, &header)?;
    let mut headers = Headers {
        entry: header.e_entry,
        loads: Vec::new(),
        phdr_vaddr: None,
        dynamic: None,
        interp: None,
    };
    for ph in &program_headers {
        match ph.p_type {
            PT_LOAD => headers
                .loads
                .push((ph.p_vaddr, ph.p_offset, ph.p_memsz.min(ph.p_filesz))),
            PT_PHDR => headers.phdr_vaddr = Some(ph.p_vaddr),
            PT_DYNAMIC => headers.dynamic = Some((ph.p_vaddr, ph.p_memsz)),
            PT_INTERP => {
                let start = usize::try_from(ph.p_offset).ok()?;
                let len = usize::try_from(ph.p_filesz).ok()?;
                headers.interp = crate::bytes::slice(bytes, start, len)
                    .and_then(|b| b.split(|&c| c == 0).next())
                    .map(|b| String::from_utf8_lossy(b).into_owned());
            }
            _ => {}
        }
    }
    Some(headers)
}

/// The file-backed mappings an object's PT_LOAD segments make at load bias `bias`.
fn mappings(path: &str, headers: &Headers, bias: u64) -> Vec<FileMapping> {
    headers
        .loads
        .iter()
        .filter(|&&(_, _, filesz)| filesz > 0)
        .filter_map(|&(vaddr, offset, filesz)| {
            let at = bias.wrapping_add(vaddr);
            // Pages: the segment's address and file offset agree modulo the page size.
            let start = at & !(PAGE - 1);
            let end = at.checked_add(filesz)?.checked_add(PAGE - 1)? & !(PAGE - 1);
            Some(FileMapping {
                start,
                end,
                file_offset: offset & !(PAGE - 1),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The value of the first dynamic entry of tag `tag` in the section at `addr` of `size` bytes.
fn dynamic_entry(memory: &impl Memory, addr: u64, size: u64, tag: u64) -> Option<u64> {
    for index in 0..(size / 16).min(MAX_DYNAMIC) {
        let at = addr.checked_add(index * 16)?;
        let d_tag = memory.read_u64(at).ok()?;
        if d_tag == DT_NULL {
            return None;
        }
        if d_tag == tag {
            return memory.read_u64(at.checked_add(8)?).ok();
        }
    }
    None
}

/// `(l_name, l_addr)` of every named object in the loader's list (not the executable, whose
/// name is empty, nor the vDSO, which is no file): `struct r_debug { int r_version; struct
/// link_map *r_map; ... }`, `struct link_map { l_addr; l_name; l_ld; l_next; l_prev }`.
fn link_map(memory: &impl Memory, r_debug: u64) -> Vec<(String, u64)> {
    let mut objects = Vec::new();
    let mut seen = HashSet::new();
    let Some(mut entry) = r_debug.checked_add(8).and_then(|a| memory.read_u64(a).ok()) else {
        return objects;
    };
    while entry != 0 && seen.insert(entry) && seen.len() <= MAX_OBJECTS {
        let word = |offset: u64| memory.read_u64(entry.checked_add(offset)?).ok();
        let (Some(l_addr), Some(l_name), Some(l_next)) = (word(0), word(8), word(24)) else {
            break;
        };
        if let Some(name) = read_c_string(memory, l_name, MAX_PATH) {
            if name.starts_with('/') {
                objects.push((name, l_addr));
            }
        }
        entry = l_next;
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::fake::FakeMemory;

    fn words(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// `struct link_map` at `at`: l_addr, l_name, l_ld, l_next, l_prev.
    fn entry(memory: &mut FakeMemory, at: u64, l_addr: u64, name_at: u64, next: u64) {
        memory.add(at, words(&[l_addr, name_at, 0, next, 0]));
    }

    #[test]
    fn the_loaders_list_names_every_object_once_and_stops_at_a_loop() {
        let mut memory = FakeMemory::default();
        let r_debug = 0x1000;
        memory.add(r_debug, words(&[1, 0x2000]));
        memory.add(0x9000, b"\0".to_vec());
        memory.add(0x9100, b"/lib/aarch64-linux-gnu/libc.so.6\0".to_vec());
        memory.add(0x9200, b"linux-vdso.so.1\0".to_vec());
        memory.add(0x9300, b"/lib/ld-linux-aarch64.so.1\0".to_vec());
        // The executable (empty name), libc, the vDSO (no file), the loader, then back to libc.
        entry(&mut memory, 0x2000, 0, 0x9000, 0x2100);
        entry(&mut memory, 0x2100, 0x55_0000_0000, 0x9100, 0x2200);
        entry(&mut memory, 0x2200, 0x55_1000_0000, 0x9200, 0x2300);
        entry(&mut memory, 0x2300, 0x55_2000_0000, 0x9300, 0x2100);
        assert_eq!(
            link_map(&memory, r_debug),
            vec![
                (
                    "/lib/aarch64-linux-gnu/libc.so.6".to_string(),
                    0x55_0000_0000
                ),
                ("/lib/ld-linux-aarch64.so.1".to_string(), 0x55_2000_0000),
            ]
        );
        // An unreadable r_debug gives nothing.
        assert!(link_map(&memory, 0x7000).is_empty());
    }

    #[test]
    fn dynamic_entries_stop_at_dt_null_and_the_section_end() {
        let mut memory = FakeMemory::default();
        memory.add(0x3000, words(&[1, 5, DT_DEBUG, 0x1000, DT_NULL, 0]));
        assert_eq!(dynamic_entry(&memory, 0x3000, 48, DT_DEBUG), Some(0x1000));
        assert_eq!(dynamic_entry(&memory, 0x3000, 16, DT_DEBUG), None);
        memory.add(0x4000, words(&[DT_NULL, 0, DT_DEBUG, 0x1000]));
        assert_eq!(dynamic_entry(&memory, 0x4000, 32, DT_DEBUG), None);
    }

    #[test]
    fn segments_become_page_aligned_file_mappings() {
        let headers = Headers {
            entry: 0,
            loads: vec![
                (0, 0, 0x1234),
                (0x11_d00, 0x1d00, 0x300),
                (0x20_000, 0x2000, 0),
            ],
            phdr_vaddr: None,
            dynamic: None,
            interp: None,
        };
        let mappings = mappings("/lib/x.so", &headers, 0x55_0000_0000);
        assert_eq!(
            mappings
                .iter()
                .map(|m| (m.start, m.end, m.file_offset))
                .collect::<Vec<_>>(),
            vec![
                (0x55_0000_0000, 0x55_0000_2000, 0),
                (0x55_0001_1000, 0x55_0001_2000, 0x1000),
            ]
        );
    }
}
