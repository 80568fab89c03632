//! Function symbols of one module (`.symtab` of the file and of its debug file, else
//! `.dynsym`) as a sorted address table searched by binary search, and demangling.

use super::modules::ElfFile;
use crate::bytes::{u16_at, u32_at, u64_at};

const SYM_SIZE: usize = 24;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
/// At most this many symbols are kept per module.
const MAX_SYMBOLS: usize = 4 << 20;

#[derive(Debug, Clone, Copy)]
struct Symbol {
    addr: u64,
    size: u64,
    /// Which string table (0: the module's, 1: its debug file's) and where in it.
    file: u8,
    name: u32,
}

/// A module's function symbols, by link-time address.
#[derive(Debug, Default)]
pub struct SymbolTable {
    symbols: Vec<Symbol>,
    /// `[offset, len)` of the string table of each file's table, by `Symbol::file` (0 or 1,
    /// the index into `build`'s two files: indexing this with it cannot panic).
    strings: [(usize, usize); 2],
}

impl SymbolTable {
    pub(crate) fn build(image: &ElfFile, debug: Option<&ElfFile>) -> SymbolTable {
        let mut table = SymbolTable::default();
        // The debug file's `.symtab` is the module's whole symbol table (the module keeps a
        // copy of its dynamic part): read it alone when it is there, not both with every
        // function twice.
        let debug_has_symtab = debug.is_some_and(|d| d.section_range(".symtab").is_some());
        let files = [(!debug_has_symtab).then_some(image), debug];
        for (which, file) in files.iter().enumerate() {
            let Some(file) = file else { continue };
            // `.symtab` holds every function `.dynsym` has, and the static ones.
            let name = if file.section_range(".symtab").is_some() {
                ".symtab"
            } else {
                ".dynsym"
            };
            let strtab = if name == ".symtab" {
                ".strtab"
            } else {
                ".dynstr"
            };
            let (Some((offset, len)), Some(strings)) =
                (file.section_range(name), file.section_range(strtab))
            else {
                continue;
            };
            table.strings[which] = strings;
            let bytes = file.bytes();
            for index in 0..len / SYM_SIZE {
                if table.symbols.len() >= MAX_SYMBOLS {
                    break;
                }
                let entry = offset + index * SYM_SIZE;
                let (Some(name), Some(&info), Some(shndx), Some(addr), Some(size)) = (
                    u32_at(bytes, entry),
                    bytes.get(entry + 4),
                    u16_at(bytes, entry + 6),
                    u64_at(bytes, entry + 8),
                    u64_at(bytes, entry + 16),
                ) else {
                    break;
                };
                let kind = info & 0xf;
                if (kind != STT_FUNC && kind != STT_GNU_IFUNC) || shndx == 0 || addr == 0 {
                    continue;
                }
                table.symbols.push(Symbol {
                    addr,
                    size,
                    file: which as u8,
                    name,
                });
            }
        }
        // Aliases at one address in name order, as gdb sorts its minimal symbols: the search
        // takes the last one (`select` over `__select`), as gdb does.
        let names = [Some(image), debug].map(|f| f.map(ElfFile::bytes));
        let strings = table.strings;
        let name_of = |s: &Symbol| -> &[u8] {
            let (offset, len) = strings[usize::from(s.file)];
            names[usize::from(s.file)]
                .and_then(|bytes| bytes.get(offset..)?.get(..len)?.get(s.name as usize..))
                .map_or(&[][..], |n| {
                    std::ffi::CStr::from_bytes_until_nul(n).map_or(n, |c| c.to_bytes())
                })
        };
        table
            .symbols
            .sort_unstable_by(|a, b| a.addr.cmp(&b.addr).then_with(|| name_of(a).cmp(name_of(b))));
        table
            .symbols
            .dedup_by(|a, b| a.addr == b.addr && name_of(a) == name_of(b));
        table
    }

    /// The function containing link-time `address`: its raw name and start. A symbol with a
    /// size must contain the address; one without (hand-written assembly) is taken as gdb does.
    pub(crate) fn lookup<'f>(
        &self,
        address: u64,
        image: &'f ElfFile,
        debug: Option<&'f ElfFile>,
    ) -> Option<(&'f str, u64)> {
        let end = self.symbols.partition_point(|s| s.addr <= address);
        let best = self.symbols[..end].last()?;
        // Among aliases at this address, the preferred is last; a sized one must cover it.
        // gdb prefers a sized alias to a zero-sized one; a sized one must cover the address.
        let aliases = || {
            self.symbols[..end]
                .iter()
                .rev()
                .take_while(|s| s.addr == best.addr)
        };
        let symbol = aliases()
            .find(|s| s.size != 0)
            .or_else(|| aliases().next())
            .filter(|s| s.size == 0 || address < s.addr.saturating_add(s.size))?;
        let file = if symbol.file == 0 { image } else { debug? };
        let (offset, len) = self.strings[usize::from(symbol.file)];
        let strings = file.bytes().get(offset..)?.get(..len)?;
        let name = strings.get(symbol.name as usize..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        Some((std::str::from_utf8(name).ok()?, symbol.addr))
    }
}

/// A symbol as people read it: Rust (legacy and v0) and C++ names demangled, Rust's hash
/// dropped; anything else as it is.
pub fn demangle(name: &str) -> String {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        return format!("{rust:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(symbol) = cpp_demangle::Symbol::new(name) {
            if let Ok(text) = symbol.demangle() {
                return text;
            }
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn demangles_rust_and_cpp() {
        assert_eq!(
            demangle("_ZN4core9panicking5panic17h0123456789abcdefE"),
            "core::panicking::panic"
        );
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("strlen"), "strlen");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }
}
