//! Opening inputs: a path becomes read-only mapped bytes.
//!
//! Compressed files (zstd, sniffed by magic bytes, never by name) are decompressed once into an
//! unlinked temporary file which is then mapped, so a large core is never held in memory twice
//! and nothing is left behind in the temporary directory on any exit path.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A file's bytes, mapped read-only. Empty files are represented without a mapping.
pub struct MappedFile {
    map: Option<Mmap>,
}

impl MappedFile {
    /// A placeholder with no bytes.
    pub fn empty() -> MappedFile {
        MappedFile { map: None }
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Map `path`, transparently decompressing it when its first bytes say it is compressed.
pub fn open(path: &Path) -> Result<MappedFile> {
    let open_err = |source: io::Error| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(open_err)?;
    let mut magic = [0u8; 4];
    let got = read_prefix(&mut file, &mut magic).map_err(open_err)?;
    file.seek(SeekFrom::Start(0)).map_err(open_err)?;
    let file = if got == 4 && magic == ZSTD_MAGIC {
        decompress_zstd(file).map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: io::Error::new(e.kind(), format!("zstd decompression failed: {e}")),
        })?
    } else {
        file
    };
    map_file(&file).map_err(open_err)
}

fn read_prefix(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn map_file(file: &File) -> io::Result<MappedFile> {
    if file.metadata()?.len() == 0 {
        return Ok(MappedFile { map: None });
    }
    // SAFETY: the mapping is read-only and private to this process; if another process
    // truncates the file meanwhile we may get SIGBUS, as every mmap-based reader would.
    let map = unsafe { Mmap::map(file)? };
    Ok(MappedFile { map: Some(map) })
}

/// Stream-decompress into an anonymous temporary file (unlinked at creation).
fn decompress_zstd(file: File) -> io::Result<File> {
    let mut out = tempfile::tempfile()?;
    let mut decoder = zstd::stream::read::Decoder::new(file)?;
    io::copy(&mut decoder, &mut out)?;
    out.seek(SeekFrom::Start(0))?;
    Ok(out)
}
