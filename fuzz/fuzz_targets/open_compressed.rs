//! The input is a file as a user would pass it: written to disk, opened by `input::open`
//! (which sniffs zstd/gzip/xz/lz4 magic and stream-decompresses into an unlinked temporary
//! file), then analysed like the `analyze` target.
#![no_main]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process (libFuzzer runs inputs one at a time per process).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("pycore-fuzz-input-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch input");
    let opened = pycore::open_core(path);
    // The mapping (if the input was not compressed) stays valid after the unlink.
    let _ = std::fs::remove_file(path);
    if let Ok(file) = opened {
        common::analyze(file.bytes());
    }
});
