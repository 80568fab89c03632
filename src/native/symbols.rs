//! Function symbols of one module (`.symtab` of the file and of its debug file, else
//! `.dynsym`), and demangling. The first few look-ups scan the table in place (naming one
//! crash site needs no sorted copy of libc's 7,000 functions); after that an address table
//! is sorted once and searched by binary search.

use std::cell::{Cell, OnceCell};

use super::modules::ElfFile;
use crate::elf::{Sym, SYM_SIZE};

/// At most this many function symbols are kept per module: the first `MAX_SYMBOLS / 2`
/// entries of each of its two tables are read, by the scan and the sorted table alike.
const MAX_SYMBOLS: usize = 4 << 20;
const MAX_ENTRIES: usize = MAX_SYMBOLS / 2;
/// Look-ups answered by a scan of the table before it is sorted (a sort costs ~15 scans; the
/// default mode names one crash site, the native modes ~10 frames per thread).
const SCANNED_LOOKUPS: u32 = 2;

#[derive(Debug, Clone, Copy)]
struct Symbol {
    addr: u64,
    size: u64,
    /// Which string table (0: the module's, 1: its debug file's) and where in it.
    file: u8,
    name: u32,
}

/// Where one file's symbol table lies in it.
#[derive(Debug, Clone, Copy, Default)]
struct Table {
    /// `[offset, len)` of the symbol entries.
    entries: (usize, usize),
    /// `[offset, len)` of their string table.
    strings: (usize, usize),
}

/// A module's function symbols, by link-time address.
#[derive(Debug, Default)]
pub struct SymbolTable {
    /// Each file's table by `Symbol::file` (0: the module, 1: its debug file; indexing this
    /// with it cannot panic).
    tables: [Option<Table>; 2],
    lookups: Cell<u32>,
    /// The last address looked up and its symbol: a thread's state and the crash site name
    /// the same program counter, and sleeping threads share one.
    last: Cell<Option<(u64, Option<Symbol>)>>,
    sorted: OnceCell<Vec<Symbol>>,
}

/// The module and its debug file, by `Symbol::file`.
type Files<'f> = [Option<&'f ElfFile>; 2];

impl SymbolTable {
    /// Where the tables are; nothing is read yet.
    pub(crate) fn build(image: &ElfFile, debug: Option<&ElfFile>) -> SymbolTable {
        // The debug file's `.symtab` is the module's whole symbol table (the module keeps a
        // copy of its dynamic part): read it alone when it is there, not both with every
        // function twice.
        let debug_has_symtab = debug.is_some_and(|d| d.section_range(".symtab").is_some());
        let files = [(!debug_has_symtab).then_some(image), debug];
        let tables = files.map(|file| {
            let file = file?;
            // `.symtab` holds every function `.dynsym` has, and the static ones.
            let (entries, strings) = if file.section_range(".symtab").is_some() {
                (".symtab", ".strtab")
            } else {
                (".dynsym", ".dynstr")
            };
            Some(Table {
                entries: file.section_range(entries)?,
                strings: file.section_range(strings)?,
            })
        });
        SymbolTable {
            tables,
            ..SymbolTable::default()
        }
    }

    /// The raw entries of table `which`, the first [`MAX_ENTRIES`] (a table cut short by the
    /// file's end gives the entries that are there).
    fn entries<'f>(&self, which: u8, files: Files<'f>) -> Option<&'f [u8]> {
        let which = usize::from(which);
        let table = (*self.tables.get(which)?)?;
        let bytes = (*files.get(which)?)?.bytes();
        let (offset, len) = table.entries;
        let rest = bytes.get(offset..)?;
        rest.get(..len.min(rest.len()).min(MAX_ENTRIES * SYM_SIZE))
    }

    /// Every function symbol of the tables, in file order.
    fn symbols<'s>(&'s self, files: Files<'s>) -> impl Iterator<Item = Symbol> + 's {
        (0u8..2)
            .filter_map(move |which| {
                let entries = self.entries(which, files)?;
                Some(fixed_entries(entries).map(move |entry| (which, entry)))
            })
            .flatten()
            .filter_map(|(file, entry)| function_symbol(file, entry))
    }

    /// A symbol's name, without its NUL (empty when it points outside its string table or has
    /// no NUL there).
    fn name_of<'f>(&self, symbol: &Symbol, files: Files<'f>) -> &'f [u8] {
        let file = usize::from(symbol.file);
        let (Some(Some(table)), Some(Some(image))) = (self.tables.get(file), files.get(file))
        else {
            return &[];
        };
        let (offset, len) = table.strings;
        image
            .bytes()
            .get(offset..)
            .and_then(|b| b.get(..len)?.get(symbol.name as usize..))
            .and_then(crate::bytes::until_nul)
            .unwrap_or_default()
    }

    /// The function containing link-time `address`: its raw name and start. A symbol with a
    /// size must contain the address; one without (hand-written assembly) is taken as gdb does.
    pub(crate) fn lookup<'f>(
        &self,
        address: u64,
        image: &'f ElfFile,
        debug: Option<&'f ElfFile>,
    ) -> Option<(&'f str, u64)> {
        let files = [Some(image), debug];
        let symbol = match self.last.get() {
            Some((last, symbol)) if last == address => symbol,
            _ => {
                let count = self.lookups.get().saturating_add(1);
                self.lookups.set(count);
                let symbol = if count <= SCANNED_LOOKUPS && self.sorted.get().is_none() {
                    self.scan(address, files)
                } else {
                    self.search(address, files)
                };
                self.last.set(Some((address, symbol)));
                symbol
            }
        }
        .filter(|s| s.size == 0 || address < s.addr.saturating_add(s.size))?;
        let name = std::str::from_utf8(self.name_of(&symbol, files)).ok()?;
        (!name.is_empty()).then_some((name, symbol.addr))
    }

    /// The symbol `lookup` takes, from one pass over the tables: among the aliases at the
    /// greatest start ≤ `address`, the last sized one in name order, else the last one (as
    /// gdb orders its minimal symbols: `select` over `__select`).
    fn scan(&self, address: u64, files: Files<'_>) -> Option<Symbol> {
        let mut start = None;
        let (mut any, mut sized): (Option<Symbol>, Option<Symbol>) = (None, None);
        // Of equal names (one symbol twice with other sizes) the later in file order, as the
        // stable sort of `search` leaves it last.
        let later = |kept: Option<Symbol>, s: Symbol| match kept {
            Some(k) if self.name_of(&k, files) > self.name_of(&s, files) => Some(k),
            _ => Some(s),
        };
        // A plain loop (naming one crash site reads all of libc's 10,000 debug symbols this
        // way), over the entries the sorted table keeps. Most entries start past the address
        // or before the best start so far: that is tested first.
        for which in 0u8..2 {
            let Some(entries) = self.entries(which, files) else {
                continue;
            };
            for entry in fixed_entries(entries) {
                let value = Sym::value_of(entry);
                if value > address || start.is_some_and(|a| value < a) {
                    continue;
                }
                let Some(symbol) = function_symbol(which, entry) else {
                    continue;
                };
                if start != Some(symbol.addr) {
                    start = Some(symbol.addr);
                    (any, sized) = (None, None);
                }
                any = later(any, symbol);
                if symbol.size != 0 {
                    sized = later(sized, symbol);
                }
            }
        }
        sized.or(any)
    }

    /// `scan`'s answer from the sorted table (sorted on first use).
    fn search(&self, address: u64, files: Files<'_>) -> Option<Symbol> {
        let symbols = self.sorted.get_or_init(|| {
            let mut symbols: Vec<Symbol> = self.symbols(files).collect();
            // Aliases at one address in name order (stable: equal names stay in file order);
            // the search takes the last one.
            symbols.sort_by(|a, b| {
                a.addr
                    .cmp(&b.addr)
                    .then_with(|| self.name_of(a, files).cmp(self.name_of(b, files)))
            });
            symbols
        });
        let end = symbols.partition_point(|s| s.addr <= address);
        // cannot panic: `partition_point` is at most the length.
        let best = symbols[..end].last()?;
        // A sized alias is preferred to a zero-sized one, as gdb does.
        let aliases = || {
            symbols[..end]
                .iter()
                .rev()
                .take_while(|s| s.addr == best.addr)
        };
        aliases()
            .find(|s| s.size != 0)
            .or_else(|| aliases().next())
            .copied()
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

/// A table's whole `Elf64_Sym` entries, as fixed-size arrays.
fn fixed_entries(entries: &[u8]) -> impl Iterator<Item = &[u8; SYM_SIZE]> {
    entries
        .chunks_exact(SYM_SIZE)
        .filter_map(|entry| entry.try_into().ok())
}

/// The function symbol an `Elf64_Sym` entry of table `file` defines, if it defines one.
fn function_symbol(file: u8, entry: &[u8; SYM_SIZE]) -> Option<Symbol> {
    let sym = Sym::parse(entry);
    sym.is_defined_function().then_some(Symbol {
        addr: sym.value,
        size: sym.size,
        file,
        name: sym.name,
    })
}

#[cfg(test)]
mod tests {
    use super::{demangle, SymbolTable};
    use crate::native::modules::ElfFile;
    use crate::native::section_cache::SectionCache;

    /// The first look-ups (a scan) and the later ones (the sorted table) name every address
    /// of this machine's libc alike, with and without its debug file.
    #[test]
    fn scanned_and_sorted_lookups_agree() {
        let cache = SectionCache::default();
        let Ok(libc) = ElfFile::open("/lib/x86_64-linux-gnu/libc.so.6".as_ref(), &cache) else {
            eprintln!("---- SKIPPED in scanned_and_sorted_lookups_agree: no x86_64 libc.so.6");
            return;
        };
        let debug = libc
            .build_id
            .as_deref()
            .and_then(crate::binary::build_id_debug_path)
            .and_then(|p| {
                ElfFile::open(&std::path::Path::new("/usr/lib/debug").join(p), &cache).ok()
            });
        for debug in [None, debug.as_ref()] {
            let scanned = SymbolTable::build(&libc, debug);
            let sorted = SymbolTable::build(&libc, debug);
            sorted.lookups.set(u32::MAX);
            let mut named = 0;
            for address in (0..0x20_0000u64).step_by(3001) {
                let a = scanned.lookup(address, &libc, debug);
                scanned.lookups.set(0);
                assert_eq!(a, sorted.lookup(address, &libc, debug), "at {address:#x}");
                named += usize::from(a.is_some());
            }
            assert!(named > 100, "only {named} addresses named");
        }
    }

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
