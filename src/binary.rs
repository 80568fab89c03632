//! ELF images on disk (the python executable, libpython): symbols, build-id, load bias.
//!
//! Symbols are looked up through `.gnu.hash` over `.dynsym` (present even in stripped builds),
//! falling back to a scan of `.symtab` when the build keeps one. The file is mapped, never read
//! whole, and never executed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use goblin::elf::program_header::ProgramHeader;
use goblin::elf::program_header::{PT_LOAD, PT_NOTE};
use goblin::elf::section_header::{SHT_DYNSYM, SHT_GNU_HASH, SHT_SYMTAB};

use crate::bytes::{slice, u32_at, u64_at};
use crate::elf::{Sym, STT_FUNC, SYM_SIZE};
use crate::error::{Error, Result};
use crate::input::{self, MappedFile};
use crate::memory::Memory;

const NT_GNU_BUILD_ID: u32 = 3;
/// At most this many DT_NEEDED and run-path entries are kept.
const MAX_RUN_PATHS: usize = 64;

/// A symbol table: the section offsets of its entries and of its string table.
#[derive(Debug, Clone, Copy)]
struct SymbolTable {
    offset: usize,
    count: usize,
    strings: usize,
    strings_len: usize,
}

/// What the dynamic section (PT_DYNAMIC) names: DT_NEEDED, DT_RPATH and DT_RUNPATH strings.
#[derive(Default)]
struct Dynamic {
    needed: Vec<String>,
    rpaths: Vec<String>,
    runpaths: Vec<String>,
}

impl Dynamic {
    /// Read in place from the file: the entries (`Elf64_Dyn`: tag, value) up to DT_NULL, their
    /// strings from DT_STRTAB (a link-time address, mapped to a file offset by the PT_LOADs).
    fn read(bytes: &[u8], program_headers: &[ProgramHeader]) -> Dynamic {
        const DT_NULL: u64 = 0;
        const DT_NEEDED: u64 = 1;
        const DT_STRTAB: u64 = 5;
        const DT_STRSZ: u64 = 10;
        const DT_RPATH: u64 = 15;
        const DT_RUNPATH: u64 = 29;
        const PT_DYNAMIC: u32 = 2;
        /// Real files have a few dozen entries.
        const MAX_ENTRIES: usize = 4096;
        let mut dynamic = Dynamic::default();
        let Some(table) = program_headers
            .iter()
            .find(|ph| ph.p_type == PT_DYNAMIC)
            .and_then(|ph| slice(bytes, ph.p_offset as usize, ph.p_filesz as usize))
        else {
            return dynamic;
        };
        let entries: Vec<(u64, u64)> = table
            .chunks_exact(16)
            .take(MAX_ENTRIES)
            .map(|e| (u64_at(e, 0).unwrap_or(DT_NULL), u64_at(e, 8).unwrap_or(0)))
            .take_while(|&(tag, _)| tag != DT_NULL)
            .collect();
        let value = |wanted: u64| entries.iter().find(|(t, _)| *t == wanted).map(|&(_, v)| v);
        let strings = value(DT_STRTAB).and_then(|vaddr| {
            let offset = program_headers.iter().find_map(|ph| {
                (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz)
                    .then(|| ph.p_offset.checked_add(vaddr - ph.p_vaddr))
                    .flatten()
            })?;
            let size = value(DT_STRSZ).unwrap_or(0);
            slice(
                bytes,
                usize::try_from(offset).ok()?,
                usize::try_from(size).ok()?,
            )
        });
        let Some(strings) = strings else {
            return dynamic;
        };
        let string = |at: u64| -> Option<String> {
            let tail = strings.get(usize::try_from(at).ok()?..)?;
            Some(String::from_utf8_lossy(crate::bytes::until_nul(tail)?).into_owned())
        };
        for &(tag, at) in &entries {
            let list = match tag {
                DT_NEEDED => &mut dynamic.needed,
                DT_RPATH => &mut dynamic.rpaths,
                DT_RUNPATH => &mut dynamic.runpaths,
                _ => continue,
            };
            if list.len() < MAX_RUN_PATHS {
                list.extend(string(at));
            }
        }
        dynamic
    }
}

/// An ELF shared object or executable, mapped from disk.
pub struct ElfImage {
    pub path: PathBuf,
    file: Arc<MappedFile>,
    pub build_id: Option<Vec<u8>>,
    /// Virtual address of the PT_LOAD at file offset 0 (0 for shared objects and PIE).
    pub base_vaddr: u64,
    dynsym: Option<SymbolTable>,
    gnu_hash: Option<usize>,
    symtab: Option<SymbolTable>,
    /// `.symtab` by name hash (FNV-1a of the name, then the entry's index), sorted: built on the
    /// first look-up `.dynsym` cannot answer, so that misses do not each scan the table.
    symtab_index: std::cell::OnceCell<Vec<(u64, u32)>>,
    /// Detached debug symbols of this build (`.build-id/xx/yyyy.debug`), when found.
    debug_file: Option<Box<ElfImage>>,
    /// The libraries it needs (DT_NEEDED), by name.
    pub needed: Vec<String>,
    /// Where it asks the dynamic linker to look for them: DT_RUNPATH, else DT_RPATH entries,
    /// unexpanded (`$ORIGIN/../lib`).
    pub run_paths: Vec<String>,
    /// File offsets `[start, end)` of PT_GNU_RELRO: read-only at run time, but written by
    /// relocation first, so a core's copy differs from the file's.
    pub relro: Option<(u64, u64)>,
}

impl ElfImage {
    pub fn open(path: &Path) -> Result<ElfImage> {
        let file = input::open_shared(path, crate::elf::described_len)?;
        let bad = |reason: String| Error::BadBinary {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = file.bytes();
        // Only the headers, the dynamic entries and the tables look-ups need: never the
        // relocations or whole string tables (goblin's full parse of libpython reads them all).
        let header = crate::elf::header(bytes).map_err(|e| bad(e.to_string()))?;
        let program_headers = crate::elf::program_headers(bytes, &header)
            .ok_or_else(|| bad("its program headers are cut off or malformed".into()))?;
        let section_headers: Vec<_> = crate::elf::sections(bytes, &header)
            .ok_or_else(|| bad("its section headers are cut off or malformed".into()))?
            .into_iter()
            .map(|(_, sh)| sh)
            .collect();
        let base_vaddr = program_headers
            .iter()
            .find(|ph| ph.p_type == PT_LOAD && ph.p_offset == 0)
            .map(|ph| ph.p_vaddr)
            .unwrap_or(0);
        let build_id = build_id_of_file(bytes);
        let table = |index: usize| -> Option<SymbolTable> {
            let section = section_headers.get(index)?;
            let strings = section_headers.get(section.sh_link as usize)?;
            Some(SymbolTable {
                offset: section.sh_offset as usize,
                // Never more entries than the file holds: sizes come from the file.
                count: (section.sh_size as usize)
                    .min(bytes.len().saturating_sub(section.sh_offset as usize))
                    / SYM_SIZE,
                strings: strings.sh_offset as usize,
                strings_len: strings.sh_size as usize,
            })
        };
        let find = |kind: u32| section_headers.iter().position(|s| s.sh_type == kind);
        let dynsym = find(SHT_DYNSYM).and_then(table);
        let symtab = find(SHT_SYMTAB).and_then(table);
        let gnu_hash = section_headers
            .iter()
            .find(|s| s.sh_type == SHT_GNU_HASH)
            .map(|s| s.sh_offset as usize);
        let dynamic = Dynamic::read(bytes, &program_headers);
        // ld.so ignores DT_RPATH when DT_RUNPATH is present. Bounded: a hostile file may list
        // many entries, and only the first few ever matter.
        let paths = if dynamic.runpaths.is_empty() {
            &dynamic.rpaths
        } else {
            &dynamic.runpaths
        };
        let run_paths = paths
            .iter()
            .flat_map(|p| p.split(':'))
            .filter(|p| !p.is_empty())
            .take(MAX_RUN_PATHS)
            .map(str::to_string)
            .collect();
        let needed = dynamic.needed;
        const PT_GNU_RELRO: u32 = 0x6474_e552;
        let relro = program_headers
            .iter()
            .find(|ph| ph.p_type == PT_GNU_RELRO)
            .map(|ph| (ph.p_offset, ph.p_offset.saturating_add(ph.p_memsz)));
        Ok(ElfImage {
            path: path.to_path_buf(),
            relro,
            needed,
            run_paths,
            build_id,
            base_vaddr,
            dynsym,
            gnu_hash,
            symtab,
            symtab_index: std::cell::OnceCell::new(),
            file,
            debug_file: None,
        })
    }

    /// Link-time `[start, end)` of every function symbol named one of `names`, including the
    /// compiler's clones and split parts (`gc_collect_main.lto_priv.0`, `foo.isra.0`, `foo.cold`).
    /// One scan of each symbol table; for rare questions, not for hot paths.
    pub fn function_ranges(&self, names: &[&str]) -> Vec<(u64, u64)> {
        let bytes = self.file.bytes();
        let mut ranges = Vec::new();
        for table in [self.dynsym, self.symtab].into_iter().flatten() {
            let Some(strings) = slice(bytes, table.strings, table.strings_len) else {
                continue;
            };
            for index in 0..table.count {
                let Some(entry) = table.offset.checked_add(index * SYM_SIZE) else {
                    break;
                };
                let Some(sym) = Sym::at(bytes, entry) else {
                    break;
                };
                let (value, size) = (sym.value, sym.size);
                if sym.kind() != STT_FUNC || size == 0 {
                    continue;
                }
                let Some(name) = strings.get(sym.name as usize..) else {
                    continue;
                };
                let name = crate::bytes::up_to_nul(name);
                let base = name.split(|&b| b == b'.').next().unwrap_or(name);
                if names.iter().any(|n| n.as_bytes() == base) {
                    ranges.push((value, value.saturating_add(size)));
                }
            }
        }
        if let Some(debug) = &self.debug_file {
            ranges.extend(debug.function_ranges(names));
        }
        ranges.sort_unstable();
        ranges.dedup();
        ranges
    }

    /// Look for this build's detached debug symbols under each of `debug_dirs`
    /// (`DIR/.build-id/ab/cdef….debug`, as gdb does) and use their `.symtab` for symbols that
    /// the stripped binary lacks. Returns the file used.
    pub fn attach_debug_file(&mut self, debug_dirs: &[PathBuf]) -> Option<PathBuf> {
        let relative = build_id_debug_path(self.build_id.as_deref()?)?;
        for dir in debug_dirs {
            let path = dir.join(&relative);
            if !path.is_file() {
                continue;
            }
            if let Ok(debug) = ElfImage::open(&path) {
                if debug.build_id == self.build_id && debug.symtab.is_some() {
                    self.debug_file = Some(Box::new(debug));
                    return Some(path);
                }
            }
        }
        None
    }

    /// The mapped file, to back the core's missing pages.
    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    pub fn mapped(&self) -> Arc<MappedFile> {
        Arc::clone(&self.file)
    }

    /// Link-time address (`st_value`) of a defined symbol; add the load bias for the runtime one.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbol_and_size(name).map(|(value, _)| value)
    }

    /// Link-time address and size (`st_size`) of a defined symbol.
    pub fn symbol_and_size(&self, name: &str) -> Option<(u64, u64)> {
        self.dynamic_symbol_and_size(name)
            .or_else(|| self.symtab.and_then(|t| self.indexed(t, name)))
            .or_else(|| self.debug_file.as_ref()?.symbol_and_size(name))
    }

    /// A symbol of Python's C API (`PyAPI_FUNC`/`PyAPI_DATA`): a file that exports the API
    /// (`Py_Initialize` in its dynamic table) exports every such symbol it defines, so a miss
    /// there is final and `.symtab` is not indexed for it. Other files: [`Self::symbol`].
    pub fn api_symbol(&self, name: &str) -> Option<u64> {
        if self.dynamic_symbol_and_size("Py_Initialize").is_some() {
            self.dynamic_symbol_and_size(name).map(|(value, _)| value)
        } else {
            self.symbol(name)
        }
    }

    /// A defined symbol of the dynamic table.
    fn dynamic_symbol_and_size(&self, name: &str) -> Option<(u64, u64)> {
        match (self.dynsym, self.gnu_hash) {
            (Some(table), Some(_)) => self.gnu_hash_lookup(table, name),
            // No hash table (rare): scan the dynamic symbols.
            (Some(table), None) => self.scan(table, name),
            (None, _) => None,
        }
    }

    /// `name` in `.symtab` through its hash index.
    fn indexed(&self, table: SymbolTable, name: &str) -> Option<(u64, u64)> {
        let index = self.symtab_index.get_or_init(|| {
            let bytes = self.file.bytes();
            let strings = slice(bytes, table.strings, table.strings_len).unwrap_or_default();
            let mut index: Vec<(u64, u32)> = (0..table.count.min(u32::MAX as usize))
                .filter_map(|i| {
                    let entry = table.offset.checked_add(i.checked_mul(SYM_SIZE)?)?;
                    let name = strings.get(Sym::at(bytes, entry)?.name as usize..)?;
                    let name = crate::bytes::until_nul(name)?;
                    Some((crate::bytes::fnv1a(name), i as u32))
                })
                .collect();
            index.sort_unstable();
            index
        });
        let hash = crate::bytes::fnv1a(name.as_bytes());
        let first = index.partition_point(|&(h, _)| h < hash);
        // cannot panic: `partition_point` is at most the length.
        index[first..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .find_map(|&(_, i)| self.symbol_named(table, i as usize, name))
    }

    /// Value of symbol `index` if its name is `name` and it is defined.
    fn symbol_named(&self, table: SymbolTable, index: usize, name: &str) -> Option<(u64, u64)> {
        let bytes = self.file.bytes();
        let entry = table.offset.checked_add(index.checked_mul(SYM_SIZE)?)?;
        let sym = Sym::at(bytes, entry)?;
        let name_offset = sym.name as usize;
        if sym.shndx == 0 || name_offset >= table.strings_len {
            return None;
        }
        let strings = slice(bytes, table.strings, table.strings_len)?;
        let candidate = strings.get(name_offset..)?;
        let matches = candidate.starts_with(name.as_bytes())
            && candidate.get(name.len()).is_some_and(|&b| b == 0);
        matches.then_some((sym.value, sym.size))
    }

    /// The GNU hash table look-up (as ld.so does it: bucket, then the chain until its end bit).
    fn gnu_hash_lookup(&self, table: SymbolTable, name: &str) -> Option<(u64, u64)> {
        let bytes = self.file.bytes();
        let at = self.gnu_hash?;
        let nbuckets = u32_at(bytes, at)? as usize;
        let symoffset = u32_at(bytes, at.checked_add(4)?)? as usize;
        let bloom_size = u32_at(bytes, at.checked_add(8)?)? as usize;
        if nbuckets == 0 {
            return None;
        }
        let buckets = at
            .checked_add(16)?
            .checked_add(bloom_size.checked_mul(8)?)?;
        let chains = buckets.checked_add(nbuckets.checked_mul(4)?)?;
        let hash = gnu_hash(name.as_bytes());
        let first = u32_at(bytes, buckets.checked_add((hash as usize % nbuckets) * 4)?)? as usize;
        if first < symoffset {
            return None;
        }
        // A chain can't be longer than the symbol table; the bound guards against a loop.
        for index in first..first.saturating_add(table.count) {
            let chain_hash = u32_at(bytes, chains.checked_add((index - symoffset) * 4)?)?;
            if (chain_hash | 1) == (hash | 1) {
                if let Some(value) = self.symbol_named(table, index, name) {
                    return Some(value);
                }
            }
            if chain_hash & 1 == 1 {
                return None;
            }
        }
        None
    }

    fn scan(&self, table: SymbolTable, name: &str) -> Option<(u64, u64)> {
        (0..table.count).find_map(|index| self.symbol_named(table, index, name))
    }
}

fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

/// The NT_GNU_BUILD_ID descriptor in a run of ELF notes.
pub fn build_id_in_notes(notes: &[u8]) -> Option<Vec<u8>> {
    crate::core::notes::iter_notes(notes)
        .find(|n| n.name == b"GNU" && n.kind == NT_GNU_BUILD_ID)
        .map(|n| n.desc.to_vec())
}

/// The build-id of the ELF image whose header is mapped at `start` in `memory` (cores keep each
/// image's first page under the default `coredump_filter`).
/// The build-id in an ELF file's PT_NOTE segments.
pub fn build_id_of_file(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = crate::elf::header(bytes).ok()?;
    crate::elf::program_headers(bytes, &header)?
        .iter()
        .filter(|ph| ph.p_type == PT_NOTE)
        .find_map(|ph| {
            let notes = slice(bytes, ph.p_offset as usize, ph.p_filesz as usize)?;
            build_id_in_notes(notes)
        })
}

/// The build-id the core itself kept for the file it recorded at `core_path` (in the first page
/// of its mapping), if it kept one.
pub fn recorded_build_id(
    memory: &crate::memory::AddressSpace<'_>,
    core_path: &str,
) -> Option<Vec<u8>> {
    build_id_in_memory(&memory.core_only(), memory.header_mapping(core_path)?)
}

pub fn build_id_in_memory(memory: &impl Memory, start: u64) -> Option<Vec<u8>> {
    let mut header = [0u8; 64];
    memory.read(start, &mut header).ok()?;
    let (table_offset, table_len) = crate::elf::program_header_table_place(&header)?;
    // Images have a few program headers; more means the page is not what it claims.
    if table_len > 512 * 56 {
        return None;
    }
    let table = memory
        .read_vec(start.wrapping_add(table_offset), table_len)
        .ok()?;
    let headers = crate::elf::program_header_table(&table)?;
    // Load bias: where the segment at file offset 0 landed, minus its link-time address.
    let base = headers
        .iter()
        .find(|ph| ph.p_type == PT_LOAD && ph.p_offset == 0)?
        .p_vaddr;
    let bias = start.wrapping_sub(base);
    headers
        .iter()
        .filter(|ph| ph.p_type == PT_NOTE)
        .find_map(|ph| {
            let size = ph.p_filesz.min(4096) as usize;
            let notes = memory.read_vec(bias.wrapping_add(ph.p_vaddr), size).ok()?;
            build_id_in_notes(&notes)
        })
}

/// Where a debug file sits under a debug root, by build-id (`.build-id/ab/cdef….debug`, as gdb
/// looks for it); `None` for a build-id too short to split.
pub fn build_id_debug_path(build_id: &[u8]) -> Option<String> {
    let id = crate::bytes::hex(build_id);
    let (dir, file) = id.split_at_checked(2)?;
    (!file.is_empty()).then(|| format!(".build-id/{dir}/{file}.debug"))
}

/// The file's own name as the core recorded it, for messages.
pub fn display_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_hash_matches_known_values() {
        // Values from the GNU hash specification examples.
        assert_eq!(gnu_hash(b""), 0x0000_1505);
        assert_eq!(gnu_hash(b"printf"), 0x156b_2bb8);
        assert_eq!(gnu_hash(b"exit"), 0x7c96_7e3f);
    }
}
