//! DWARF names, lines and inlined calls, read one compilation unit at a time.
//!
//! addr2line's `Context::from_dwarf` visits every unit of a module before its first answer
//! (parsing each unit's abbreviations, root entry and line program header): 4,000 units for
//! glibc's debug file, most of a `--native-all` run. A stack needs a handful of units, so the
//! unit holding an address is found with `.debug_aranges` and a context is built over that unit
//! alone (its bytes of `.debug_info`, every other section whole). Units whose entries may point
//! into other units (`DW_FORM_ref_addr`, `DW_TAG_imported_unit`, supplementary files: LTO and
//! dwz output) and addresses `.debug_aranges` does not cover are answered by a context over the
//! whole module, as before, so every answer is the one the whole module gives.

use std::cell::OnceCell;

use gimli::{EndianSlice, LittleEndian, SectionId};

use super::modules::Loaded;

pub(crate) type Context<'m> = addr2line::Context<EndianSlice<'m, LittleEndian>>;

/// At most this many address ranges are taken from `.debug_aranges` (glibc has ~12,000).
const MAX_RANGES: usize = 1 << 20;

/// One module's DWARF: its address ranges by unit, and the contexts built so far.
pub(crate) struct ModuleDwarf<'m> {
    loaded: &'m Loaded,
    /// `(begin, end, unit)`: link-time `[begin, end)` is in `units[unit]`; sorted by `begin`.
    ranges: Vec<(u64, u64, usize)>,
    /// Each unit's `.debug_info` offset and its context (`None`: it needs the whole module).
    units: Vec<(usize, OnceCell<Option<Context<'m>>>)>,
    whole: OnceCell<Option<Context<'m>>>,
}

impl<'m> ModuleDwarf<'m> {
    /// `None` when the module has no `.debug_info`.
    pub(crate) fn new(loaded: &'m Loaded) -> Option<Self> {
        if !loaded.has_debug_section(".debug_info") {
            return None;
        }
        let mut ranges = Vec::new();
        let mut offsets: Vec<usize> = Vec::new();
        if let Some((aranges, _)) = loaded.debug_section(".debug_aranges") {
            let mut headers = gimli::DebugAranges::new(aranges, LittleEndian).headers();
            'headers: while let Ok(Some(header)) = headers.next() {
                let offset = header.debug_info_offset().0;
                let unit = match offsets.last() {
                    Some(&last) if last == offset => offsets.len() - 1,
                    _ => {
                        offsets.push(offset);
                        offsets.len() - 1
                    }
                };
                let mut entries = header.entries();
                while let Ok(Some(entry)) = entries.next() {
                    if ranges.len() >= MAX_RANGES {
                        break 'headers;
                    }
                    let range = entry.range();
                    if range.begin < range.end {
                        ranges.push((range.begin, range.end, unit));
                    }
                }
            }
        }
        ranges.sort_unstable();
        Some(ModuleDwarf {
            loaded,
            ranges,
            units: offsets.into_iter().map(|o| (o, OnceCell::new())).collect(),
            whole: OnceCell::new(),
        })
    }

    /// The context that answers for link-time address `svma`.
    pub(crate) fn context_for(&self, svma: u64) -> Option<&Context<'m>> {
        let unit = self.unit_at(svma).and_then(|unit| {
            let (offset, cell) = self.units.get(unit)?;
            cell.get_or_init(|| self.unit_context(*offset)).as_ref()
        });
        unit.or_else(|| self.whole.get_or_init(|| self.context(|_| None)).as_ref())
    }

    fn unit_at(&self, svma: u64) -> Option<usize> {
        // Ranges can overlap (a unit's and an inlined copy's): the last one starting at or
        // before the address that still covers it.
        let after = self.ranges.partition_point(|&(begin, _, _)| begin <= svma);
        // cannot panic: `partition_point` is at most the length.
        self.ranges[..after]
            .iter()
            .rev()
            .take(64)
            .find(|&&(_, end, _)| svma < end)
            .map(|&(_, _, unit)| unit)
    }

    /// A context over the unit at `.debug_info` offset `offset` alone, or `None` when the unit
    /// refers outside itself.
    fn unit_context(&self, offset: usize) -> Option<Context<'m>> {
        let (info, _) = self.loaded.debug_section(".debug_info")?;
        let header = gimli::DebugInfo::new(info, LittleEndian)
            .header_from_offset(gimli::DebugInfoOffset(offset))
            .ok()?;
        let end = offset.checked_add(header.length_including_self())?;
        let unit_bytes = info.get(offset..end)?;
        let (abbrev, _) = self.loaded.debug_section(".debug_abbrev")?;
        let abbrev_offset = header.debug_abbrev_offset().0;
        if !self_contained(abbrev.get(abbrev_offset..)?)? {
            return None;
        }
        self.context(|id| (id == SectionId::DebugInfo).then_some(unit_bytes))
    }

    /// addr2line over the module's sections, `.debug_info` replaced by `info(id)` where given
    /// (a single unit: then `.debug_aranges`, which names offsets in the whole section, is left
    /// out and the unit's own ranges are used).
    fn context(&self, info: impl Fn(SectionId) -> Option<&'m [u8]>) -> Option<Context<'m>> {
        let single = info(SectionId::DebugInfo).is_some();
        let dwarf = gimli::Dwarf::load(|id| {
            // Names, lines and inlined calls need no location lists, macros or type units:
            // those sections are left unread (and, compressed, uninflated).
            let unused = matches!(
                id,
                SectionId::DebugLoc
                    | SectionId::DebugLocLists
                    | SectionId::DebugMacinfo
                    | SectionId::DebugMacro
                    | SectionId::DebugTypes
            ) || (single && id == SectionId::DebugAranges);
            let data = if unused {
                &[][..]
            } else {
                info(id)
                    .or_else(|| self.loaded.debug_section(id.name()).map(|(d, _)| d))
                    .unwrap_or(&[])
            };
            Ok::<_, gimli::Error>(EndianSlice::new(data, LittleEndian))
        })
        .ok()?;
        addr2line::Context::from_dwarf(dwarf).ok()
    }
}

/// Whether an abbreviation table (`.debug_abbrev` from the unit's offset) lets the unit's
/// entries refer only inside the unit: no `DW_FORM_ref_addr` or supplementary-file forms, no
/// imported units. `None` if the table does not parse.
fn self_contained(table: &[u8]) -> Option<bool> {
    const DW_TAG_IMPORTED_UNIT: u64 = 0x3d;
    const DW_FORM_REF_ADDR: u64 = 0x10;
    const DW_FORM_REF_SUP4: u64 = 0x1c;
    const DW_FORM_REF_SUP8: u64 = 0x24;
    const DW_FORM_IMPLICIT_CONST: u64 = 0x21;
    const DW_FORM_GNU_REF_ALT: u64 = 0x1f20;
    // The form is in the entry itself: it may be a cross-unit reference.
    const DW_FORM_INDIRECT: u64 = 0x16;
    let mut reader = EndianSlice::new(table, LittleEndian);
    use gimli::Reader;
    // Bounded by the table's bytes: every step consumes at least one.
    loop {
        let code = reader.read_uleb128().ok()?;
        if code == 0 {
            return Some(true);
        }
        let tag = reader.read_uleb128().ok()?;
        if tag == DW_TAG_IMPORTED_UNIT {
            return Some(false);
        }
        reader.read_u8().ok()?; // DW_CHILDREN_*
        loop {
            let name = reader.read_uleb128().ok()?;
            let form = reader.read_uleb128().ok()?;
            if name == 0 && form == 0 {
                break;
            }
            match form {
                DW_FORM_REF_ADDR | DW_FORM_REF_SUP4 | DW_FORM_REF_SUP8 | DW_FORM_GNU_REF_ALT
                | DW_FORM_INDIRECT => return Some(false),
                DW_FORM_IMPLICIT_CONST => {
                    reader.read_sleb128().ok()?;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::self_contained;

    #[test]
    fn abbreviation_tables_with_cross_unit_references_are_told() {
        // code 1: DW_TAG_compile_unit, children, DW_AT_name/DW_FORM_strp, end; table end.
        assert_eq!(
            self_contained(&[1, 0x11, 1, 0x03, 0x0e, 0, 0, 0]),
            Some(true)
        );
        // code 1: DW_TAG_subprogram, DW_AT_abstract_origin/DW_FORM_ref_addr.
        assert_eq!(
            self_contained(&[1, 0x2e, 0, 0x31, 0x10, 0, 0, 0]),
            Some(false)
        );
        // An implicit constant's value is skipped, not read as the next attribute.
        assert_eq!(
            self_contained(&[1, 0x34, 0, 0x3a, 0x21, 0x10, 0, 0, 0]),
            Some(true)
        );
        // DW_TAG_imported_unit.
        assert_eq!(self_contained(&[1, 0x3d, 0, 0, 0, 0]), Some(false));
        // Cut short.
        assert_eq!(self_contained(&[1, 0x11]), None);
    }
}
