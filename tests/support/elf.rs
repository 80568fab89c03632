//! What the tests need to know of ELF binaries on their own, without asking
//! pycore: build-ids and whether function symbols are at hand.

use std::path::{Path, PathBuf};

use goblin::elf::Elf;

/// NT_GNU_BUILD_ID, in a "GNU" note.
const NT_GNU_BUILD_ID: u32 = 3;

/// The build-id of the ELF file at `path`, as lowercase hex.
pub fn build_id(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let elf = Elf::parse(&bytes).map_err(|e| format!("{}: not ELF: {e}", path.display()))?;
    build_id_of(&elf, &bytes).ok_or_else(|| format!("{} has no build-id note", path.display()))
}

fn build_id_of(elf: &Elf, bytes: &[u8]) -> Option<String> {
    let notes = elf.iter_note_headers(bytes)?;
    notes
        .filter_map(Result::ok)
        .find(|note| note.n_type == NT_GNU_BUILD_ID && note.name == "GNU")
        .map(|note| note.desc.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the symbols of a binary's functions (such as the garbage
/// collector's, which are not exported) come from, if anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionSymbols {
    /// The binary's own `.symtab` (not stripped: pyenv's builds).
    Symtab,
    /// Detached debug symbols found by build-id: `ROOT/.build-id/ab/cdef….debug`.
    Detached(PathBuf),
    /// Stripped, and no debug file for its build-id under any root: why.
    None(String),
}

/// How `binary`'s function symbols can be had, looking for detached debug
/// symbols under `debug_roots` (and /usr/lib/debug, which pycore always
/// searches) the way pycore is documented to: by build-id.
pub fn function_symbols(binary: &Path, debug_roots: &[PathBuf]) -> Result<FunctionSymbols, String> {
    let bytes = std::fs::read(binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;
    let elf = Elf::parse(&bytes).map_err(|e| format!("{}: not ELF: {e}", binary.display()))?;
    if elf.syms.len() > 1 {
        return Ok(FunctionSymbols::Symtab);
    }
    let Some(id) = build_id_of(&elf, &bytes) else {
        return Ok(FunctionSymbols::None(format!(
            "{} is stripped and has no build-id",
            binary.display()
        )));
    };
    let mut roots = debug_roots.to_vec();
    roots.push(PathBuf::from("/usr/lib/debug"));
    for root in &roots {
        let file = root
            .join(".build-id")
            .join(&id[..2])
            .join(format!("{}.debug", &id[2..]));
        if file.is_file() {
            return Ok(FunctionSymbols::Detached(file));
        }
    }
    Ok(FunctionSymbols::None(format!(
        "{} is stripped and no debug symbols for its build-id {id} are at hand (looked in {})",
        binary.display(),
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Where things are in an ELF core file, from its program headers and notes
/// (64-bit little-endian cores only, as the tests make).
#[derive(Clone, Debug)]
pub struct CoreLayout {
    /// `[start, end)` file offsets of each PT_NOTE segment.
    pub notes: Vec<(u64, u64)>,
    /// File offsets where PT_LOAD segments with dumped bytes start.
    pub segment_starts: Vec<u64>,
    /// The end of the last byte any program header describes: a file cut
    /// anywhere before it loses data (past it are only section headers).
    pub data_end: u64,
    /// The end of the last note pycore needs to know the process: thread
    /// registers (NT_PRSTATUS), process and signal info (NT_PRPSINFO,
    /// NT_SIGINFO), auxv (NT_AUXV) and mapped files (NT_FILE). Notes after
    /// it (gcore ends with a target description) can be lost without losing
    /// any of that.
    pub essential_notes_end: u64,
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_PRSTATUS: u32 = 1;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;

pub fn core_layout(core: &Path) -> Result<CoreLayout, String> {
    let bytes = std::fs::read(core).map_err(|e| format!("reading {}: {e}", core.display()))?;
    let bad = |what: &str| format!("{}: {what}", core.display());
    let u16_at = |at: usize| -> Option<u64> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?).into())
    };
    let u32_at = |at: usize| -> Option<u64> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?).into())
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    if bytes.get(..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) {
        return Err(bad("not a 64-bit ELF file"));
    }
    let phoff = u64_at(32).ok_or_else(|| bad("no ELF header"))? as usize;
    let phentsize = u16_at(54).ok_or_else(|| bad("no ELF header"))? as usize;
    let phnum = u16_at(56).ok_or_else(|| bad("no ELF header"))? as usize;
    let mut layout = CoreLayout {
        notes: Vec::new(),
        segment_starts: Vec::new(),
        data_end: 0,
        essential_notes_end: 0,
    };
    for index in 0..phnum {
        let at = phoff + index * phentsize;
        let header = (|| Some((u32_at(at)?, u64_at(at + 8)?, u64_at(at + 32)?)))();
        let (p_type, offset, filesz) = header.ok_or_else(|| bad("program headers cut off"))?;
        let (p_type, end) = (p_type as u32, offset + filesz);
        layout.data_end = layout.data_end.max(end);
        if p_type == PT_LOAD && filesz > 0 {
            layout.segment_starts.push(offset);
        }
        if p_type == PT_NOTE {
            layout.notes.push((offset, end));
            let mut at = offset as usize;
            while at + 12 <= end as usize {
                let note = (|| Some((u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?)))();
                let (namesz, descsz, kind) = note.ok_or_else(|| bad("notes cut off"))?;
                let pad4 = |n: u64| (n + 3) & !3;
                let next = at + 12 + pad4(namesz) as usize + pad4(descsz) as usize;
                if [NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_SIGINFO, NT_FILE].contains(&(kind as u32))
                {
                    layout.essential_notes_end = layout.essential_notes_end.max(next as u64);
                }
                at = next;
            }
        }
    }
    layout.segment_starts.sort_unstable();
    layout.segment_starts.dedup();
    Ok(layout)
}
