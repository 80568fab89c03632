//! The ELF modules a process had mapped (NT_FILE): the executable, libpython, libc, libffi,
//! extension `.so` files. Each is found on this machine like the python binaries are
//! (`--sysroot`, `--lib-path`, the recorded path), checked against the build-id the core kept in
//! its first page, and opened lazily, the first time an address falls in it. Files are mapped,
//! never read whole; compressed debug sections are inflated (bounded) when first read.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use goblin::elf::program_header::PT_LOAD;
use goblin::elf::section_header::{SHF_COMPRESSED, SHT_NOBITS};

use super::section_cache::{Inflated, SectionCache};
use super::symbols::SymbolTable;
use crate::binaries::Locator;
use crate::binary;
use crate::core::CoreFile;
use crate::input::{self, MappedFile};
use crate::memory::AddressSpace;

/// At most this many distinct files are considered modules.
const MAX_MODULES: usize = 4096;

/// One section of a file: its name's and bytes' places in the file, link-time address, and
/// (compressed debug sections) its bytes once inflated.
struct Section {
    /// `[offset, len)` of the name (in `.shstrtab`, without its NUL).
    name: (usize, usize),
    addr: u64,
    offset: usize,
    size: usize,
    compressed: bool,
    /// A compressed debug section, inflated on its first read (`None`: it does not inflate).
    inflated: OnceCell<Option<Inflated>>,
}

/// One opened ELF file (the module or its detached debug file) and its sections.
pub(crate) struct ElfFile {
    pub path: PathBuf,
    file: Arc<MappedFile>,
    /// In file order.
    sections: Vec<Section>,
    /// `sections`' indices by name (equal names in file order): a name is found by binary
    /// search, without a `String` and a hash per section of every file opened. The unwinder
    /// asks for four sections at each step.
    by_name: Vec<usize>,
    cache: SectionCache,
    pub build_id: Option<Vec<u8>>,
    /// Link-time address and file offset of each PT_LOAD.
    loads: Vec<(u64, u64)>,
}

impl ElfFile {
    pub(super) fn open(path: &Path, cache: &SectionCache) -> Result<ElfFile, String> {
        let file =
            input::open_shared(path, crate::elf::described_len).map_err(|e| e.to_string())?;
        let bytes = file.bytes();
        // Only the headers: symbols are read in place (`symbols.rs`), relocations never.
        let header = crate::elf::header(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let malformed = |what: &str| format!("{}: malformed {what}", path.display());
        let program_headers = crate::elf::program_headers(bytes, &header)
            .ok_or_else(|| malformed("program headers"))?;
        let section_headers =
            crate::elf::sections(bytes, &header).ok_or_else(|| malformed("section headers"))?;
        let build_id = binary::build_id_of_file(bytes).or_else(|| {
            // Detached debug files keep the note as a section only.
            let (_, sh) = section_headers
                .iter()
                .find(|(name, _)| *name == ".note.gnu.build-id")?;
            let notes = bytes
                .get(sh.sh_offset as usize..)?
                .get(..sh.sh_size as usize)?;
            binary::build_id_in_notes(notes)
        });
        let loads = program_headers
            .iter()
            .filter(|ph| ph.p_type == PT_LOAD)
            .map(|ph| (ph.p_vaddr, ph.p_offset))
            .collect();
        let sections = section_headers
            .iter()
            .filter(|(name, sh)| sh.sh_type != SHT_NOBITS && !name.is_empty())
            .filter_map(|(name, sh)| {
                let offset = usize::try_from(sh.sh_offset).ok()?;
                let size = usize::try_from(sh.sh_size).ok()?;
                if offset.checked_add(size).is_none_or(|end| end > bytes.len()) {
                    return None;
                }
                // The name is a slice of `bytes` (`elf::sections` reads it in place).
                let name_offset = (name.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
                Some(Section {
                    name: (name_offset, name.len()),
                    addr: sh.sh_addr,
                    offset,
                    size,
                    compressed: sh.sh_flags & u64::from(SHF_COMPRESSED) != 0,
                    inflated: OnceCell::new(),
                })
            })
            .collect::<Vec<Section>>();
        let mut by_name: Vec<usize> = (0..sections.len()).collect();
        // Stable: equal names stay in file order.
        by_name.sort_by_key(|&index| sections.get(index).map(|s| section_name(bytes, s)));
        Ok(ElfFile {
            path: path.to_path_buf(),
            file,
            sections,
            by_name,
            cache: cache.clone(),
            build_id,
            loads,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// The section called `name`; of several, the last in the file.
    fn find(&self, name: &str) -> Option<&Section> {
        let bytes = self.file.bytes();
        let name_of = |index: usize| self.sections.get(index).map(|s| section_name(bytes, s));
        let after = self
            .by_name
            .partition_point(|&index| name_of(index) <= Some(name.as_bytes()));
        let index = *self.by_name.get(after.checked_sub(1)?)?;
        (name_of(index)? == name.as_bytes()).then(|| self.sections.get(index))?
    }

    /// Whether the file has a section called `name` (nothing is inflated to tell).
    fn has_section(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// A section's bytes (inflated if it was compressed) and link-time address.
    pub fn section(&self, name: &str) -> Option<(&[u8], u64)> {
        let section = self.find(name)?;
        let raw = self
            .file
            .bytes()
            .get(section.offset..)?
            .get(..section.size)?;
        if !section.compressed {
            return Some((raw, section.addr));
        }
        if !name.starts_with(".debug_") {
            return None;
        }
        let data = section
            .inflated
            .get_or_init(|| self.cache.inflate(self.build_id.as_deref(), name, raw));
        Some((data.as_ref()?.bytes(), section.addr))
    }

    /// `[file offset, len)` of a section, for symbol tables read straight from the file.
    pub fn section_range(&self, name: &str) -> Option<(usize, usize)> {
        let section = self.find(name).filter(|s| !s.compressed)?;
        Some((section.offset, section.size))
    }

    /// The `.gnu_debuglink` file name.
    fn debuglink(&self) -> Option<String> {
        let (bytes, _) = self.section(".gnu_debuglink")?;
        let name = std::str::from_utf8(crate::bytes::until_nul(bytes)?).ok()?;
        (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
    }
}

/// A section's name, from the file's bytes (empty if it is not there).
fn section_name<'b>(bytes: &'b [u8], section: &Section) -> &'b [u8] {
    crate::bytes::slice(bytes, section.name.0, section.name.1).unwrap_or_default()
}

/// A module found on this machine and checked.
pub struct Loaded {
    pub(crate) image: ElfFile,
    /// Its detached debug file (by build-id or `.gnu_debuglink`), if found.
    pub(crate) debug: Option<ElfFile>,
    /// Run-time address minus link-time address.
    pub bias: u64,
    pub(crate) symbols: SymbolTable,
}

impl Loaded {
    /// Whether the debug file or the module has a section (nothing is inflated to tell).
    pub fn has_debug_section(&self, name: &str) -> bool {
        self.debug.as_ref().is_some_and(|d| d.has_section(name)) || self.image.has_section(name)
    }

    /// A DWARF or `.debug_frame` section: from the debug file first, then the module.
    pub fn debug_section(&self, name: &str) -> Option<(&[u8], u64)> {
        self.debug
            .as_ref()
            .and_then(|d| d.section(name))
            .or_else(|| self.image.section(name))
    }
}

/// One file the process mapped.
pub struct Module {
    /// The path NT_FILE recorded.
    pub core_path: String,
    /// Its mappings: `[start, end)` at file offset.
    mappings: Vec<(u64, u64, u64)>,
    loaded: OnceCell<Result<Loaded, String>>,
}

/// Every mapped file, opened on demand.
pub struct Modules<'c> {
    memory: &'c AddressSpace<'c>,
    locator: Locator,
    cache: SectionCache,
    executable: Option<String>,
    pub modules: Vec<Module>,
    /// For each `core.files` entry (sorted by start), its module.
    of_mapping: Vec<usize>,
    files: &'c [crate::core::FileMapping],
}

impl<'c> Modules<'c> {
    pub fn new(
        core: &'c CoreFile,
        memory: &'c AddressSpace<'c>,
        locator: Locator,
        executable: Option<String>,
    ) -> Modules<'c> {
        let mut by_path: HashMap<&str, usize> = HashMap::new();
        let mut modules: Vec<Module> = Vec::new();
        let mut of_mapping = Vec::with_capacity(core.files.len());
        for mapping in &core.files {
            let index = match by_path.get(mapping.path.as_str()) {
                Some(&index) => index,
                None if modules.len() < MAX_MODULES => {
                    modules.push(Module {
                        core_path: mapping.path.clone(),
                        mappings: Vec::new(),
                        loaded: OnceCell::new(),
                    });
                    by_path.insert(&mapping.path, modules.len() - 1);
                    modules.len() - 1
                }
                None => usize::MAX,
            };
            if let Some(module) = modules.get_mut(index) {
                module
                    .mappings
                    .push((mapping.start, mapping.end, mapping.file_offset));
            }
            of_mapping.push(index);
        }
        Modules {
            memory,
            cache: SectionCache {
                dir: locator.cache_dir(),
            },
            locator,
            executable,
            modules,
            of_mapping,
            files: &core.files,
        }
    }

    /// The module mapped at `address`, if a file is mapped there.
    pub fn index_at(&self, address: u64) -> Option<usize> {
        let index = *self.of_mapping.get(self.mapping_at(address)?)?;
        (index < self.modules.len()).then_some(index)
    }

    /// The `core.files` entry whose range holds `address`.
    fn mapping_at(&self, address: u64) -> Option<usize> {
        let i = self
            .files
            .partition_point(|f| f.start <= address)
            .checked_sub(1)?;
        (address < self.files.get(i)?.end).then_some(i)
    }

    /// The little-endian word at `address` in the local file of the module mapped there (the
    /// text a core left out, or wrote empty as qemu-user does), if that file is loaded.
    pub fn read_u32(&self, address: u64) -> Option<u32> {
        let i = self.mapping_at(address)?;
        let mapping = self.files.get(i)?;
        if address.checked_add(4)? > mapping.end {
            return None;
        }
        let loaded = self.loaded(*self.of_mapping.get(i)?).ok()?;
        let offset = mapping.file_offset.checked_add(address - mapping.start)?;
        let at = usize::try_from(offset).ok()?;
        let bytes = loaded.image.bytes().get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    /// The module's checked local file, opened on first use; `Err` says why it is missing.
    pub fn loaded(&self, index: usize) -> Result<&Loaded, &str> {
        let Some(module) = self.modules.get(index) else {
            return Err("no such module");
        };
        module
            .loaded
            .get_or_init(|| self.load(module))
            .as_ref()
            .map_err(String::as_str)
    }

    fn load(&self, module: &Module) -> Result<Loaded, String> {
        let core_path = module.core_path.as_str();
        let is_executable = self.executable.as_deref() == Some(core_path);
        let core_id = binary::recorded_build_id(self.memory, core_path);
        let mut problems = Vec::new();
        let mut chosen = None;
        for candidate in self.locator.candidates(core_path, is_executable) {
            if !candidate.is_file() {
                continue;
            }
            let image = match ElfFile::open(&candidate, &self.cache) {
                Ok(image) => image,
                Err(error) => {
                    problems.push(error);
                    continue;
                }
            };
            if core_id.is_some() && image.build_id != core_id {
                problems.push(format!(
                    "{} has build-id {}, the core's {}",
                    candidate.display(),
                    crate::bytes::hex(image.build_id.as_deref().unwrap_or_default()),
                    crate::bytes::hex(core_id.as_deref().unwrap_or_default())
                ));
                continue;
            }
            chosen = Some(image);
            break;
        }
        let Some(image) = chosen else {
            return Err(if problems.is_empty() {
                format!("{core_path} is not on this machine")
            } else {
                problems.join("; ")
            });
        };
        let bias = module
            .mappings
            .iter()
            .find_map(|&(start, _, offset)| {
                let (vaddr, file_offset) =
                    image.loads.iter().find(|(_, o)| o & !0xfff == offset)?;
                Some(start.wrapping_sub(vaddr.wrapping_sub(file_offset - offset) & !0xfff))
            })
            .ok_or_else(|| {
                format!(
                    "{core_path}: no mapping matches a PT_LOAD of {}",
                    image.path.display()
                )
            })?;
        let debug = self.debug_file(&image);
        let symbols = SymbolTable::build(&image, debug.as_ref());
        Ok(Loaded {
            image,
            debug,
            bias,
            symbols,
        })
    }

    /// The detached debug file: `.build-id/ab/cdef.debug` under the debug roots, else
    /// `.gnu_debuglink` next to the file, in its `.debug/`, or under the debug roots.
    fn debug_file(&self, image: &ElfFile) -> Option<ElfFile> {
        let roots = self.locator.debug_roots();
        let mut candidates = Vec::new();
        if let Some(relative) = image
            .build_id
            .as_deref()
            .and_then(binary::build_id_debug_path)
        {
            candidates.extend(roots.iter().map(|root| root.join(&relative)));
        }
        if let Some(link) = image.debuglink() {
            let dir = image
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            candidates.push(dir.join(&link));
            candidates.push(dir.join(".debug").join(&link));
            for root in &roots {
                candidates.push(root.join(dir.strip_prefix("/").unwrap_or(&dir)).join(&link));
            }
        }
        candidates
            .into_iter()
            .filter(|c| c.is_file() && c.as_path() != image.path.as_path())
            .filter_map(|c| ElfFile::open(&c, &self.cache).ok())
            .find(|d| image.build_id.is_none() || d.build_id == image.build_id)
    }
}
