//! The one reader of raw ELF64 little-endian headers, on goblin's types: the file header, the
//! program header table (with `PN_XNUM`), and how long a file's headers say it is. The core,
//! the binaries on disk and the images in a core's memory all go through it.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header;
pub use goblin::elf::header::Header;
pub use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE};
pub use goblin::elf::section_header::SectionHeader;

/// `e_phnum` saying the count is in the first section header's `sh_info` (more than 65534).
const PN_XNUM: u16 = 0xffff;
/// Size of one `Elf64_Phdr`.
const PROGRAM_HEADER_SIZE: usize = 56;
/// Size of one `Elf64_Shdr`.
const SECTION_HEADER_SIZE: usize = 64;
/// `e_shnum` of 0 with a section header table: the count is in the first header's `sh_size`.
const SHN_UNDEF: usize = 0;
/// `e_shstrndx` saying the index is in the first section header's `sh_link`.
const SHN_XINDEX: u16 = 0xffff;
/// At most this many section headers are read (real files have under a hundred).
const MAX_SECTIONS: usize = 1 << 16;

/// The size of an `Elf64_Sym` entry.
pub const SYM_SIZE: usize = 24;
/// `st_info`'s symbol types (its low four bits) that are functions.
pub const STT_FUNC: u8 = 2;
pub const STT_GNU_IFUNC: u8 = 10;

/// One `Elf64_Sym` entry of a symbol table read in place: `st_name` u32, `st_info` u8,
/// `st_other` u8, `st_shndx` u16, `st_value` u64, `st_size` u64.
#[derive(Debug, Clone, Copy)]
pub struct Sym {
    pub name: u32,
    pub info: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
}

impl Sym {
    /// The fields of a whole entry.
    pub fn parse(entry: &[u8; SYM_SIZE]) -> Sym {
        // cannot panic: constant ranges of a 24-byte array, checked by the compiler (a scan
        // over a libc's 10,000 symbols does no bounds checks).
        Sym {
            name: u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]),
            info: entry[4],
            shndx: u16::from_le_bytes([entry[6], entry[7]]),
            value: Sym::value_of(entry),
            size: u64::from_le_bytes(entry[16..24].try_into().unwrap_or_default()),
        }
    }

    /// `st_value` alone: what a scan for an address tests first.
    pub fn value_of(entry: &[u8; SYM_SIZE]) -> u64 {
        // cannot panic: a constant range of a 24-byte array.
        u64::from_le_bytes(entry[8..16].try_into().unwrap_or_default())
    }

    /// The entry at `offset` of `bytes`, if it is all there.
    pub fn at(bytes: &[u8], offset: usize) -> Option<Sym> {
        let entry = bytes.get(offset..offset.checked_add(SYM_SIZE)?)?;
        Some(Sym::parse(entry.try_into().ok()?))
    }

    /// `st_info`'s symbol type.
    pub fn kind(&self) -> u8 {
        self.info & 0xf
    }

    /// A defined function (or IFUNC resolver) at a non-zero address.
    pub fn is_defined_function(&self) -> bool {
        matches!(self.kind(), STT_FUNC | STT_GNU_IFUNC) && self.shndx != 0 && self.value != 0
    }
}

/// Why bytes are not a readable ELF64 little-endian file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotElf64 {
    #[error("no ELF magic at its start")]
    NoMagic,
    #[error("only 64-bit little-endian files are supported")]
    OtherClass,
    #[error("bad ELF header ({0})")]
    Malformed(String),
}

/// The ELF header at the start of `bytes`.
pub fn header(bytes: &[u8]) -> Result<Header, NotElf64> {
    // cannot panic: the length is checked (64 bytes) before any index.
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err(NotElf64::NoMagic);
    }
    if bytes[header::EI_CLASS] != header::ELFCLASS64
        || bytes[header::EI_DATA] != header::ELFDATA2LSB
    {
        return Err(NotElf64::OtherClass);
    }
    goblin::elf::Elf::parse_header(bytes).map_err(|e| NotElf64::Malformed(e.to_string()))
}

/// The program header table of the file `bytes`, or `None` if it is cut off or malformed.
pub fn program_headers(bytes: &[u8], header: &Header) -> Option<Vec<ProgramHeader>> {
    let mut count = usize::from(header.e_phnum);
    if header.e_phnum == PN_XNUM {
        // Elf64_Shdr.sh_info is at byte 44 of the first section header.
        count = crate::bytes::u32_at(
            bytes,
            usize::try_from(header.e_shoff).ok()?.checked_add(44)?,
        )? as usize;
    }
    if usize::from(header.e_phentsize) != PROGRAM_HEADER_SIZE {
        return None;
    }
    let start = usize::try_from(header.e_phoff).ok()?;
    let table = crate::bytes::slice(bytes, start, count.checked_mul(PROGRAM_HEADER_SIZE)?)?;
    program_header_table(table)
}

/// Program headers from a table already read (consecutive 56-byte entries).
pub fn program_header_table(table: &[u8]) -> Option<Vec<ProgramHeader>> {
    let ctx = Ctx::new(Container::Big, Endian::Little);
    ProgramHeader::parse(table, 0, table.len() / PROGRAM_HEADER_SIZE, ctx).ok()
}

/// The section header table of the file `bytes` and the names of its sections (from
/// `.shstrtab`), without parsing anything else (no symbols, relocations or dynamic entries:
/// readers look those up in place). `None` if the table is cut off or malformed; a section
/// whose name cannot be read is named "".
pub fn sections<'b>(bytes: &'b [u8], header: &Header) -> Option<Vec<(&'b str, SectionHeader)>> {
    if header.e_shoff == 0 {
        return Some(Vec::new());
    }
    if usize::from(header.e_shentsize) != SECTION_HEADER_SIZE {
        return None;
    }
    let start = usize::try_from(header.e_shoff).ok()?;
    let first = crate::bytes::slice(bytes, start, SECTION_HEADER_SIZE)?;
    let mut count = usize::from(header.e_shnum);
    if count == SHN_UNDEF {
        // Elf64_Shdr.sh_size is at byte 32.
        count = usize::try_from(crate::bytes::u64_at(first, 32)?).ok()?;
    }
    let count = count.min(MAX_SECTIONS);
    if count == 0 {
        return Some(Vec::new());
    }
    let table = crate::bytes::slice(bytes, start, count * SECTION_HEADER_SIZE)?;
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let headers = SectionHeader::parse_from(table, 0, count, ctx).ok()?;
    let names_index = if header.e_shstrndx == SHN_XINDEX {
        // Elf64_Shdr.sh_link is at byte 40.
        crate::bytes::u32_at(first, 40)? as usize
    } else {
        usize::from(header.e_shstrndx)
    };
    let names = headers.get(names_index).and_then(|sh| {
        crate::bytes::slice(
            bytes,
            usize::try_from(sh.sh_offset).ok()?,
            usize::try_from(sh.sh_size).ok()?,
        )
    });
    Some(
        headers
            .into_iter()
            .map(|sh| {
                let name = names
                    .and_then(|names| names.get(sh.sh_name..))
                    .and_then(|tail| std::str::from_utf8(crate::bytes::until_nul(tail)?).ok())
                    .unwrap_or("");
                (name, sh)
            })
            .collect(),
    )
}

/// Where, from the start of a file whose first bytes are `head`, its program header table is and
/// how many entries it has (for readers of an image in memory); `None` unless `head` holds an
/// ELF64 header with ordinary program headers.
pub fn program_header_table_place(head: &[u8]) -> Option<(u64, usize)> {
    let header = header(head).ok()?;
    (usize::from(header.e_phentsize) == PROGRAM_HEADER_SIZE && header.e_phnum != PN_XNUM).then(
        || {
            (
                header.e_phoff,
                usize::from(header.e_phnum) * PROGRAM_HEADER_SIZE,
            )
        },
    )
}

/// The length of a file whose first bytes are `head`: the end of the last byte its headers
/// describe (segments, section headers). The length of `head` itself for anything that is not
/// an ELF64 file (nothing more is needed to refuse it), no limit with `PN_XNUM`, and `None`
/// while `head` is too short to tell.
pub fn described_len(head: &[u8]) -> Option<u64> {
    let header = match header(head) {
        Ok(header) => header,
        Err(NotElf64::NoMagic | NotElf64::OtherClass) if head.len() >= 64 => {
            return Some(head.len() as u64)
        }
        Err(_) => return None,
    };
    if usize::from(header.e_phentsize) != PROGRAM_HEADER_SIZE {
        return Some(head.len() as u64);
    }
    if header.e_phnum == PN_XNUM {
        return Some(u64::MAX);
    }
    let table_len = usize::from(header.e_phnum) * PROGRAM_HEADER_SIZE;
    let table = crate::bytes::slice(head, usize::try_from(header.e_phoff).ok()?, table_len)?;
    let segments_end = program_header_table(table)?
        .iter()
        .map(|ph| ph.p_offset.saturating_add(ph.p_filesz))
        .max()
        .unwrap_or(0);
    // Executables and libraries keep their section headers after the last segment.
    let sections_end = header
        .e_shoff
        .saturating_add(u64::from(header.e_shnum) * u64::from(header.e_shentsize));
    Some(
        segments_end
            .max(header.e_phoff.saturating_add(table_len as u64))
            .max(sections_end),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 core header with `segments` program headers of (offset, file size).
    fn core_header(segments: &[(u64, u64)]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[6] = 1;
        bytes[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
        bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[52..54].copy_from_slice(&64u16.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for (offset, size) in segments {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&PT_LOAD.to_le_bytes());
            ph[8..16].copy_from_slice(&offset.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            bytes.extend(ph);
        }
        bytes
    }

    #[test]
    fn headers_and_described_length() {
        let bytes = core_header(&[(0x1000, 0x2000), (0x3000, 0x10)]);
        let header = header(&bytes).unwrap();
        assert_eq!(program_headers(&bytes, &header).unwrap().len(), 2);
        assert_eq!(described_len(&bytes), Some(0x3010));
        assert_eq!(described_len(&bytes[..100]), None);
        assert_eq!(program_header_table_place(&bytes), Some((64, 112)));
    }

    #[test]
    fn not_elf64_says_why() {
        assert_eq!(header(b"text"), Err(NotElf64::NoMagic));
        let mut bytes = core_header(&[]);
        bytes[4] = 1;
        assert_eq!(header(&bytes), Err(NotElf64::OtherClass));
        assert_eq!(described_len(&[b'x'; 100]), Some(100));
        // A table that runs past the end of the bytes is no table.
        let mut cut = core_header(&[(0, 1)]);
        cut.truncate(100);
        let header = super::header(&cut).unwrap();
        assert!(program_headers(&cut, &header).is_none());
    }
}
