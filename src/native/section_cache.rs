//! Compressed debug sections (`SHF_COMPRESSED`), inflated, and kept between runs.
//!
//! Debian's detached debug files compress their DWARF: glibc's `.debug_info`, `.debug_abbrev`
//! and `.debug_line` are 8 MB inflated, and inflating them is most of a `--native-all` run. So an
//! inflated section is written once to the cache folder (`Locator::cache_dir`), named by the
//! file's build-id, the section, the length and CRC-32 of its compressed bytes and its inflated size, and
//! mapped read-only by later runs, as gdb's index cache and debuginfod's client cache do. The
//! cache is an optimisation only: a file that cannot be read or written is inflated in memory.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

/// Sections inflate to at most this size (a larger claim is not believed).
const MAX_INFLATED: u64 = 1 << 30;

/// An inflated section: in memory, or mapped from the cache.
pub(crate) enum Inflated {
    Owned(Vec<u8>),
    Mapped(Mmap),
}

impl Inflated {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Inflated::Owned(bytes) => bytes,
            Inflated::Mapped(map) => map,
        }
    }
}

/// The cache folder (`None`: no cache, every section inflates in memory).
#[derive(Debug, Clone, Default)]
pub(crate) struct SectionCache {
    pub(crate) dir: Option<PathBuf>,
}

impl SectionCache {
    /// `raw` is the section as stored (`Elf64_Chdr`, then the data) in the file with `build_id`.
    pub(crate) fn inflate(
        &self,
        build_id: Option<&[u8]>,
        name: &str,
        raw: &[u8],
    ) -> Option<Inflated> {
        let size = crate::bytes::u64_at(raw, 8)?;
        if size > MAX_INFLATED {
            return None;
        }
        let path = self.path(build_id, name, raw, size);
        if let Some(map) = path.as_deref().and_then(|p| mapped(p, size)) {
            return Some(Inflated::Mapped(map));
        }
        let bytes = inflate(raw, size)?;
        if let Some(path) = path.filter(|_| bytes.len() as u64 == size) {
            // Best effort: a cache that cannot be written costs the next run time, not data.
            let _ = store(&path, &bytes);
        }
        Some(Inflated::Owned(bytes))
    }

    fn path(&self, build_id: Option<&[u8]>, name: &str, raw: &[u8], size: u64) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let build_id = build_id.filter(|id| !id.is_empty() && id.len() <= 64)?;
        let hex = crate::bytes::hex(build_id);
        let section: String = name
            .trim_start_matches('.')
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // The build-id names the file's contents; the compressed bytes' length and CRC-32 of
        // their ends tell apart re-compressed copies of it without reading them all.
        let mut crc = flate2::Crc::new();
        crc.update(raw.get(..4096).unwrap_or(raw));
        crc.update(raw.get(raw.len().saturating_sub(4096)..).unwrap_or(raw));
        Some(dir.join("inflated").join(hex).join(format!(
            "{section}-{:08x}-{}-{size}",
            crc.sum(),
            raw.len()
        )))
    }
}

/// The cached section at `path` if it is there whole.
fn mapped(path: &Path, size: u64) -> Option<Mmap> {
    // Only a regular file (opening a FIFO planted there would block).
    if !fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    let file = fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() != size || size == 0 {
        return None;
    }
    // SAFETY: cache files are written whole under a temporary name and renamed into place, and
    // never changed after; the map is read-only. (Another program truncating a cache file
    // while pycore maps it would stop pycore with SIGBUS, as for any mapped input file.)
    unsafe { Mmap::map(&file) }.ok()
}

/// Write `bytes` at `path` atomically (a temporary file in the same folder, renamed).
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or(std::io::ErrorKind::InvalidInput)?;
    fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A `SHF_COMPRESSED` section: `Elf64_Chdr` (type 1 zlib, 2 zstd; size), then the data.
fn inflate(raw: &[u8], size: u64) -> Option<Vec<u8>> {
    let kind = crate::bytes::u32_at(raw, 0)?;
    let data = raw.get(24..)?;
    match kind {
        1 => inflate_zlib(data, usize::try_from(size).ok()?),
        2 => {
            // The header's size is a claim: reserve what the data can plausibly give, grow
            // past it only as it really inflates.
            let reserve = size.min((data.len() as u64).saturating_mul(8));
            let mut out = Vec::with_capacity(usize::try_from(reserve).ok()?);
            zstd::stream::read::Decoder::new(data)
                .ok()?
                .take(size)
                .read_to_end(&mut out)
                .ok()?;
            Some(out)
        }
        _ => None,
    }
}

/// zlib data inflated straight into the output's spare capacity (no zero-filling first), at
/// most `size` bytes; the buffer grows only as the data really inflates.
fn inflate_zlib(data: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut inflater = flate2::Decompress::new(true);
    let mut grow = size.min(data.len().saturating_mul(8)).max(1 << 16);
    // Every round inflates into fresh room or stops; the bound is a backstop.
    for _ in 0..1 << 20 {
        if out.len() >= size {
            break;
        }
        if out.len() == out.capacity() {
            out.reserve_exact(grow.min(size - out.len()));
            grow = grow.saturating_mul(2);
        }
        let (before_in, before_out) = (inflater.total_in(), out.len());
        let input = data.get(usize::try_from(before_in).ok()?..)?;
        let status = inflater
            .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
            .ok()?;
        if status == flate2::Status::StreamEnd {
            break;
        }
        if out.len() == before_out && inflater.total_in() == before_in {
            // Neither input taken nor output given: the data is cut short.
            return None;
        }
    }
    out.truncate(size);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressed(data: &[u8]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&1u32.to_le_bytes()); // ELFCOMPRESS_ZLIB
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&(data.len() as u64).to_le_bytes());
        raw.extend_from_slice(&1u64.to_le_bytes());
        let mut encoder = flate2::write::ZlibEncoder::new(raw, flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn sections_inflate_once_then_come_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SectionCache {
            dir: Some(dir.path().to_path_buf()),
        };
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let raw = compressed(&data);
        let first = cache
            .inflate(Some(&[0xab, 0xcd]), ".debug_info", &raw)
            .unwrap();
        assert!(matches!(first, Inflated::Owned(_)));
        assert_eq!(first.bytes(), &data[..]);
        let second = cache
            .inflate(Some(&[0xab, 0xcd]), ".debug_info", &raw)
            .unwrap();
        assert!(matches!(second, Inflated::Mapped(_)));
        assert_eq!(second.bytes(), &data[..]);
        // Other compressed bytes under the same build-id are another entry.
        let other = compressed(&data[..1000]);
        let third = cache
            .inflate(Some(&[0xab, 0xcd]), ".debug_info", &other)
            .unwrap();
        assert!(matches!(third, Inflated::Owned(_)));
        assert_eq!(third.bytes(), &data[..1000]);
    }

    #[test]
    fn cut_or_lying_sections_do_not_inflate() {
        let cache = SectionCache::default();
        let data = vec![7u8; 100_000];
        let raw = compressed(&data);
        assert!(cache
            .inflate(None, ".debug_info", &raw[..raw.len() / 2])
            .is_none());
        // A header claiming more than the data gives: what the data gives.
        let mut lying = raw.clone();
        lying[8..16].copy_from_slice(&(1u64 << 29).to_le_bytes());
        let got = cache.inflate(None, ".debug_info", &lying).unwrap();
        assert_eq!(got.bytes().len(), data.len());
        // A claim past the bound is not believed.
        lying[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(cache.inflate(None, ".debug_info", &lying).is_none());
    }
}
