//! When the core keeps no build-id for a binary (patchelf'd or Nix-style builds put the note
//! past the first page, which is all the kernel dumps of a clean file mapping), the bytes it
//! does hold of that file can still be compared with the local file: the first page (ELF and
//! program headers) and any read-only pages the dumper kept. Writable pages and the RELRO
//! region are skipped: the process wrote them (data, relocations), so they differ by design.

use crate::binary::ElfImage;
use crate::core::CoreFile;

const PAGE: u64 = 4096;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
/// At most this many bytes are compared per file: enough for headers and a good sample of code.
const MAX_COMPARED: u64 = 64 << 20;

/// What the comparison of held pages found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeldPages {
    /// Bytes compared, all equal unless `mismatch` is set.
    pub compared: u64,
    /// The file's first page (ELF and program headers) was among them.
    pub first_page: bool,
    /// Bytes of executable (code) mappings among them.
    pub code: u64,
    /// The file offset of the first byte that differs.
    pub mismatch: Option<u64>,
}

/// Compare what `core` holds of the file it mapped as `core_path` with `image`'s bytes.
pub fn compare(core: &CoreFile, core_path: &str, image: &ElfImage) -> HeldPages {
    let file = image.bytes();
    let relro = image.relro.map(|(start, end)| {
        (
            start & !(PAGE - 1),
            end.saturating_add(PAGE - 1) & !(PAGE - 1),
        )
    });
    let mut held = HeldPages::default();
    for mapping in core.files.iter().filter(|f| f.path == core_path) {
        for segment in core.segments.iter().filter(|s| s.flags & PF_W == 0) {
            let start = segment.vaddr.max(mapping.start);
            let end = segment
                .vaddr
                .saturating_add(segment.file_size)
                .min(mapping.end);
            if start >= end {
                continue;
            }
            let offset = mapping.file_offset.saturating_add(start - mapping.start);
            let len = (end - start).min(MAX_COMPARED.saturating_sub(held.compared));
            if len == 0 {
                return held;
            }
            let in_segment = (start - segment.vaddr) as usize;
            let bytes = core.segment_bytes(segment);
            let Some(in_core) = bytes.get(in_segment..in_segment.saturating_add(len as usize))
            else {
                continue;
            };
            // A file offset from NT_FILE can be anything: past u64 there is no such page.
            if offset.checked_add(len).is_none() {
                continue;
            }
            for (i, page) in in_core.chunks(PAGE as usize).enumerate() {
                let at = offset + (i as u64) * PAGE;
                if relro.is_some_and(|(lo, hi)| lo <= at && at < hi) {
                    continue;
                }
                let on_disk = file.get(at as usize..).unwrap_or_default();
                let on_disk = &on_disk[..on_disk.len().min(page.len())];
                if let Some(i) = page.iter().zip(on_disk).position(|(a, b)| a != b) {
                    held.mismatch = Some(at + i as u64);
                    return held;
                }
                if on_disk.len() < page.len() {
                    // The process had bytes past the end of this file: not the same file.
                    held.mismatch = Some(at + on_disk.len() as u64);
                    return held;
                }
                held.compared += page.len() as u64;
                held.first_page |= at == 0;
                if segment.flags & PF_X != 0 {
                    held.code += page.len() as u64;
                }
            }
        }
    }
    held
}

impl HeldPages {
    /// What was verified and what could not be, for a warning: "its first page (ELF and program
    /// headers) matches FILE, but the code could not be compared".
    pub fn describe(&self, core_path: &str, local: &str) -> String {
        let (what, verb) = match (self.first_page, self.compared) {
            (_, 0) => {
                return format!(
                    "the core keeps no build-id for {core_path} and none of its read-only pages: cannot check that {local} is the same build"
                )
            }
            (true, n) if n <= PAGE => (
                "its first page (ELF and program headers)".to_string(),
                "matches",
            ),
            (true, n) => (
                format!(
                    "its first page (ELF and program headers) and {} KiB more of its read-only pages",
                    (n - PAGE) / 1024
                ),
                "match",
            ),
            (false, n) => (format!("{} KiB of its read-only pages", n / 1024), "match"),
        };
        let code = if self.code > 0 {
            format!(
                "only {} KiB of its code were held, the rest",
                self.code / 1024
            )
        } else {
            "the code".to_string()
        };
        format!(
            "the core keeps no build-id for {core_path}; {what} {verb} {local}, but {code} could not be compared"
        )
    }
}
