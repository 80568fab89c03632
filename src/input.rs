//! Opening inputs: a path becomes read-only bytes, mapped, never read whole.
//!
//! Compressed files are recognised by their magic bytes, never by name: zstd (systemd-coredump's
//! `.zst`), gzip, xz and lz4 frames (older systemd's `.lz4`). They are stream-decompressed once
//! into an anonymous temporary file (unlinked at creation, in `$TMPDIR`), which is then mapped:
//! a large core is never held in memory twice, and nothing is left behind on any exit path.
//! A progress bar goes to standard error when decompressing takes more than a moment and
//! standard error is a terminal.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memmap2::Mmap;

use crate::error::{Error, Result};

/// A file's bytes: mapped read-only, or owned (for callers that already hold them in memory).
pub struct MappedFile {
    data: Data,
}

enum Data {
    Mapped(Mmap),
    Owned(Vec<u8>),
    Empty,
}

impl MappedFile {
    /// A placeholder with no bytes.
    pub fn empty() -> MappedFile {
        MappedFile { data: Data::Empty }
    }

    /// Bytes already in memory (tests, fuzzing).
    pub fn from_vec(bytes: Vec<u8>) -> MappedFile {
        MappedFile {
            data: Data::Owned(bytes),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Mapped(map) => map,
            Data::Owned(bytes) => bytes,
            Data::Empty => &[],
        }
    }
}

/// The compression formats recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Gzip,
    Xz,
    Lz4,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
        }
    }
}

/// Which compression `magic` (a file's first six bytes, or fewer) announces.
pub fn sniff(magic: &[u8]) -> Option<Compression> {
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compression::Xz)
    } else if magic.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        Some(Compression::Lz4)
    } else {
        None
    }
}

/// Most memory the xz decoder may use.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

/// The core path that means standard input.
pub const STDIN: &str = "-";
/// How a core read from standard input is named in reports and messages.
pub const STDIN_NAME: &str = "<stdin>";

/// The name `path` goes by in reports and messages: [`STDIN_NAME`] for `-`.
pub fn display_path(path: &Path) -> &Path {
    if path == Path::new(STDIN) {
        Path::new(STDIN_NAME)
    } else {
        path
    }
}

/// How long data is, from its first bytes; `None` while more bytes are needed to tell.
pub type LengthOf = fn(&[u8]) -> Option<u64>;

/// Map `path`, transparently decompressing it when its first bytes say it is compressed.
/// `-` is standard input; it and any other input that cannot be mapped or seeked (a pipe, a
/// FIFO, `/dev/stdin`) is streamed into an unlinked temporary file first, with the same bounds
/// as decompression.
/// `length_of` tells, from the first bytes of the (decompressed) data, how long the whole is
/// (`None` while it needs more bytes): nothing past that is written, so a small stream cannot
/// fill `$TMPDIR` with more than its headers describe (for cores and ELF files:
/// [`crate::elf::described_len`]; headers that describe terabytes are a known limit).
/// Files mapped by [`open_shared`], by path, with what identified them when they were mapped.
type SharedFiles = HashMap<PathBuf, ((u64, u64, i64, i64, u64), Arc<MappedFile>)>;
static SHARED: Mutex<Option<SharedFiles>> = Mutex::new(None);
/// At most this many files are kept mapped for sharing (a batch maps a few binaries per core).
const MAX_SHARED: usize = 1024;

/// [`open`] for files read again and again (the binaries of many cores in one `pycore analyze
/// DIR`): one mapping per file, shared, as long as the file on disk is the same (device, inode,
/// modification time, size). The core files themselves are opened with [`open`].
pub fn open_shared(path: &Path, length_of: LengthOf) -> Result<Arc<MappedFile>> {
    use std::os::unix::fs::MetadataExt;
    let identity = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
    let Some(identity) = identity else {
        return open(path, length_of).map(Arc::new);
    };
    let lock = || {
        SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some((known, file)) = lock().as_ref().and_then(|shared| shared.get(path)) {
        if *known == identity {
            return Ok(Arc::clone(file));
        }
    }
    let file = Arc::new(open(path, length_of)?);
    let mut shared = lock();
    let shared = shared.get_or_insert_with(HashMap::new);
    if shared.len() < MAX_SHARED {
        shared.insert(path.to_path_buf(), (identity, Arc::clone(&file)));
    }
    Ok(file)
}

pub fn open(path: &Path, length_of: LengthOf) -> Result<MappedFile> {
    let open_err = |source: io::Error| Error::Open {
        path: display_path(path).to_path_buf(),
        source,
    };
    let file = if path == Path::new(STDIN) {
        // `< core` makes standard input the file itself: map it like any other.
        match File::open("/dev/stdin") {
            Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => file,
            _ => return stream(io::stdin().lock(), None, length_of).map_err(open_err),
        }
    } else {
        File::open(path).map_err(open_err)?
    };
    let metadata = file.metadata().map_err(open_err)?;
    if !metadata.is_file() {
        return stream(file, None, length_of).map_err(open_err);
    }
    // Mapped first, its first bytes sniffed in place: a plain core or binary costs one
    // `fstat` and one `mmap`, no read and seek back.
    let mapped = match map_file_of_len(&file, metadata.len()) {
        Ok(mapped) => mapped,
        // A file system that cannot map (FUSE with direct I/O, some network ones) can still
        // stream a compressed core.
        Err(map_error) => {
            return match stream(file, Some(metadata.len()), length_of) {
                Ok(copied) => Ok(copied),
                Err(_) => Err(open_err(map_error)),
            }
        }
    };
    let bytes = mapped.bytes();
    let head = bytes.get(..6).unwrap_or(bytes);
    match sniff(head) {
        // Nothing was read from `file`: it is still at its start.
        Some(compression) => {
            drop(mapped);
            let decompressed =
                decompress(file, Some(metadata.len()), compression, length_of).map_err(open_err)?;
            map_file(&decompressed).map_err(open_err)
        }
        None => Ok(mapped),
    }
}

/// A non-seekable input: its first bytes say whether to decompress it; either way it is copied
/// into a temporary file, which is mapped.
fn stream(mut input: impl Read, total: Option<u64>, length_of: LengthOf) -> io::Result<MappedFile> {
    let mut magic = [0u8; 6];
    let got = read_prefix(&mut input, &mut magic)?;
    // cannot panic: as above, `got` ≤ `magic.len()`.
    let input = io::Cursor::new(magic[..got].to_vec()).chain(input);
    let file = match sniff(&magic[..got]) {
        Some(compression) => decompress(input, total, compression, length_of)?,
        None => {
            let mut file_out = temporary_file()?;
            let mut out = CappedWriter::new(&mut file_out, length_of);
            finish_copy(io::copy(
                &mut Progress::new(input, total, "reading"),
                &mut out,
            ))?;
            file_out.seek(SeekFrom::Start(0))?;
            file_out
        }
    };
    map_file(&file)
}

fn read_prefix(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        // cannot panic: `got < buf.len()` (the loop's condition).
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn map_file(file: &File) -> io::Result<MappedFile> {
    map_file_of_len(file, file.metadata()?.len())
}

/// `file`, `len` bytes long, mapped.
pub(crate) fn map_file_of_len(file: &File, len: u64) -> io::Result<MappedFile> {
    if len == 0 {
        return Ok(MappedFile::empty());
    }
    let len = usize::try_from(len).map_err(|_| io::Error::other("the file is too large to map"))?;
    // SAFETY: the mapping is read-only and private to this process; if another process
    // truncates the file meanwhile we may get SIGBUS, as every mmap-based reader would.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
    Ok(MappedFile {
        data: Data::Mapped(map),
    })
}

/// An anonymous temporary file (unlinked at creation) in `$TMPDIR`.
fn temporary_file() -> io::Result<File> {
    tempfile::tempfile().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create a temporary file in {} to decompress or copy into (set TMPDIR to a writable folder with room for the core): {e}",
                std::env::temp_dir().display()
            ),
        )
    })
}

/// The end of a copy into a [`CappedWriter`]: its stop at the end the headers describe is no
/// error.
fn finish_copy(copied: io::Result<u64>) -> io::Result<()> {
    match copied {
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<CapReached>()) => Ok(()),
        other => other.map(drop),
    }
}

/// The stop of a [`CappedWriter`] (its own type, so that no real write error is taken for it).
#[derive(Debug, thiserror::Error)]
#[error("decompressed data goes on past the end the core's headers describe")]
struct CapReached;

/// Stream-decompress into an anonymous temporary file (unlinked at creation).
fn decompress(
    input: impl Read,
    total: Option<u64>,
    compression: Compression,
    length_of: LengthOf,
) -> io::Result<File> {
    let failed = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("{} decompression failed: {e}", compression.name()),
        )
    };
    let input = Progress::new(input, total, compression.name());
    let mut file_out = temporary_file()?;
    let mut out = CappedWriter::new(&mut file_out, length_of);
    let copied = match compression {
        Compression::Zstd => zstd::stream::read::Decoder::new(input)
            .and_then(|mut decoder| io::copy(&mut decoder, &mut out)),
        Compression::Gzip => io::copy(&mut flate2::read::MultiGzDecoder::new(input), &mut out),
        Compression::Xz => {
            // liblzma would allocate whatever dictionary a block header claims (up to 4 GiB):
            // cap it. `xz -9` needs 64 MiB, so real cores still open.
            let stream =
                xz2::stream::Stream::new_stream_decoder(XZ_MEMORY_LIMIT, xz2::stream::CONCATENATED)
                    .map_err(io::Error::other)?;
            io::copy(
                &mut xz2::read::XzDecoder::new_stream(input, stream),
                &mut out,
            )
        }
        Compression::Lz4 => io::copy(&mut lz4_flex::frame::FrameDecoder::new(input), &mut out),
    };
    finish_copy(copied).map_err(failed)?;
    file_out.seek(SeekFrom::Start(0))?;
    Ok(file_out)
}

/// Once `length_of` can tell the whole length from the first bytes, nothing past it is written.
/// Input whose length it cannot tell within [`PROBE_BYTES`] stops there (the parser then says
/// what is wrong with it).
struct CappedWriter<'a> {
    out: &'a mut File,
    length_of: LengthOf,
    head: Vec<u8>,
    written: u64,
    limit: Option<u64>,
    /// Bytes decoded past the limit and dropped.
    drained: u64,
}

/// How much is decompressed before the limit must be known.
const PROBE_BYTES: usize = 1 << 20;
/// How much is decoded (and dropped) past the limit before decompression stops.
const DRAIN_BYTES: u64 = 16 << 20;

impl<'a> CappedWriter<'a> {
    fn new(out: &'a mut File, length_of: LengthOf) -> Self {
        CappedWriter {
            out,
            length_of,
            head: Vec::new(),
            written: 0,
            limit: None,
            drained: 0,
        }
    }
}

impl io::Write for CappedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.limit.is_none() && self.head.len() < PROBE_BYTES {
            // cannot panic: `head.len() < PROBE_BYTES` (the `if`), and `min` bounds the slice.
            self.head
                .extend_from_slice(&buf[..buf.len().min(PROBE_BYTES - self.head.len())]);
            self.limit = (self.length_of)(&self.head);
            if self.limit.is_none() && self.head.len() >= PROBE_BYTES {
                self.limit = Some(PROBE_BYTES as u64);
            }
        }
        let allowed = match self.limit {
            Some(limit) => limit.saturating_sub(self.written).min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        // cannot panic: `allowed` is at most `buf.len()`.
        self.out.write_all(&buf[..allowed])?;
        self.written += allowed as u64;
        // Past the end: decode a little further, writing nothing, so that a stream corrupted
        // near its end still meets its checksum (gzip's CRC, zstd's and xz's checks); stop
        // only data that goes on and on (a decompression bomb).
        self.drained += (buf.len() - allowed) as u64;
        if self.drained > DRAIN_BYTES {
            return Err(io::Error::other(CapReached));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A reader that shows a progress bar (of compressed bytes read) once reading has taken longer
/// than [`Progress::DELAY`]; indicatif draws nothing when standard error is not a terminal.
struct Progress<R> {
    inner: R,
    total: Option<u64>,
    read: u64,
    label: &'static str,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
}

impl<R> Progress<R> {
    const DELAY: Duration = Duration::from_millis(700);

    fn new(inner: R, total: Option<u64>, label: &'static str) -> Self {
        Progress {
            inner,
            total,
            read: 0,
            label,
            started: Instant::now(),
            bar: None,
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.bar.is_none() && self.started.elapsed() > Self::DELAY {
            let bar = indicatif::ProgressBar::with_draw_target(
                self.total,
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(if self.total.is_some() {
                "decompressing ({msg}) {bar:30} {bytes}/{total_bytes} {eta}"
            } else {
                "{msg}: {bytes} {binary_bytes_per_sec}"
            }) {
                bar.set_style(style);
            }
            bar.set_message(self.label);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.read);
            if n == 0 {
                bar.finish_and_clear();
            }
        }
        Ok(n)
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_not_names() {
        assert_eq!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]),
            Some(Compression::Zstd)
        );
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Some(Compression::Gzip));
        assert_eq!(sniff(b"\xfd7zXZ\0"), Some(Compression::Xz));
        assert_eq!(sniff(&[0x04, 0x22, 0x4d, 0x18]), Some(Compression::Lz4));
        assert_eq!(sniff(b"\x7fELF"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn every_format_round_trips() {
        use std::io::Write;
        let mut payload = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        payload.truncate(256 << 10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&payload).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&payload).unwrap();
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(&payload).unwrap();
        let encoded = [
            zstd::encode_all(&payload[..], 1).unwrap(),
            gz.finish().unwrap(),
            xz.finish().unwrap(),
            lz4.finish().unwrap(),
        ];
        for bytes in encoded {
            let dir = std::env::temp_dir().join(format!("pycore-input-{}", std::process::id()));
            std::fs::write(&dir, &bytes).unwrap();
            let whole = open(&dir, |_| Some(u64::MAX)).unwrap();
            // What `length_of` says the data is long is where writing stops.
            let capped = open(&dir, |head| (head.len() >= 64).then_some(1000)).unwrap();
            std::fs::remove_file(&dir).unwrap();
            assert_eq!(whole.bytes(), &payload[..]);
            assert_eq!(capped.bytes(), &payload[..1000]);
        }
    }
}
