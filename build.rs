//! Link-time layout of the `pycore` binary.
//!
//! A run on a small core is mostly the process's start and its page faults, and a third of
//! those faults were in pycore's own text: the ~550 functions a common analysis runs were
//! spread over 51 of the binary's 64 KiB fault-around windows. `tools/symbol-order.txt`
//! (written by `tools/symbol-order.sh` from what callgrind saw those functions run) lists them,
//! and the linker places them side by side (`--symbol-ordering-file`), so the same run faults
//! in a few windows (docs/performance.md, "Fourth round").
//!
//! Only where the linker is LLD, which reads that option: release builds for
//! x86_64-unknown-linux-gnu with Rust 1.90 or later (rust-lld is that target's default linker
//! since) and no linker chosen by the user. `PYCORE_NO_SYMBOL_ORDER=1` turns it off. Names the
//! binary no longer has (the list is older than the code or the compiler) are skipped by the
//! linker: the binary is the same, its layout only less compact.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const ORDER_FILE: &str = "tools/symbol-order.txt";
/// The first stable Rust that links x86_64-unknown-linux-gnu with rust-lld by default.
const LLD_DEFAULT_SINCE: (u32, u32) = (1, 90);

fn main() {
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-env-changed=PYCORE_NO_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let Ok(manifest_dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = PathBuf::from(manifest_dir).join(ORDER_FILE);
    if order.is_file() && links_with_lld() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether this build's binaries are linked by rust-lld (see the module's comment).
fn links_with_lld() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if env::var_os("PYCORE_NO_SYMBOL_ORDER").is_some_and(|v| !v.is_empty() && v != "0") {
        return false;
    }
    if var("TARGET") != "x86_64-unknown-linux-gnu" || var("PROFILE") != "release" {
        return false;
    }
    // `-C linker=…`, `-C linker-features=-lld`, `-C link-self-contained=-linker`: the user's
    // own linker, which may not know the option.
    if var("CARGO_ENCODED_RUSTFLAGS").contains("linker")
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        return false;
    }
    rustc_version().is_some_and(|version| version >= LLD_DEFAULT_SINCE)
}

/// `rustc -V`'s major and minor version: "rustc 1.95.0 (59807616e 2026-04-14)".
fn rustc_version() -> Option<(u32, u32)> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(rustc).arg("-V").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut numbers = text.split_whitespace().nth(1)?.split('.');
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}
