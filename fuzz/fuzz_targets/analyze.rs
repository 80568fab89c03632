//! The input is an (uncompressed) ELF core: the whole analysis and rendering path.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::analyze(data);
});
