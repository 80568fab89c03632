//! Link-time layout of the static `pycore` binary (`tools/build-static.sh glibc`).
//!
//! A run on a small core is mostly the process's start and its page faults, and a third of
//! those faults were in pycore's own text: the ~550 functions a default run executes were
//! spread over 51 of the binary's 64 KiB fault-around windows. `tools/symbol-order.txt`
//! (written by `tools/symbol-order.sh` from what callgrind saw run, in every mode) lists them,
//! and the linker places them side by side (`--symbol-ordering-file`), so the same run takes
//! 14–20 faults in pycore's text (docs/performance.md, "Fourth round").
//!
//! Opt-in (`PYCORE_SYMBOL_ORDER=1`, which `tools/build-static.sh` sets), because the list
//! only fits that build: symbol names carry a hash of the build's profile and of its
//! `--target` (a build without `--target` hashes differently), and only LLD reads the option.
//! It is applied to release builds for x86_64-unknown-linux-gnu whose linker is rust-lld (the
//! default since Rust 1.90, where the toolchain ships it) and not one the user chose; otherwise
//! the build goes on without it, with a warning. Names the binary no longer has (the list is
//! older than the code or the compiler) are skipped by the linker: the binary is the same,
//! its layout only less compact.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const ORDER_FILE: &str = "tools/symbol-order.txt";
const OPT_IN: &str = "PYCORE_SYMBOL_ORDER";
/// The first stable Rust that links x86_64-unknown-linux-gnu with rust-lld by default.
const LLD_DEFAULT_SINCE: (u32, u32) = (1, 90);

fn main() {
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-env-changed={OPT_IN}");
    if env::var(OPT_IN).unwrap_or_default() != "1" {
        return;
    }
    let Ok(manifest_dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = PathBuf::from(manifest_dir).join(ORDER_FILE);
    match why_not_lld() {
        None if order.is_file() => {
            // `-Xlinker`, not `-Wl,`: a comma in the checkout's path would split the latter.
            for arg in [
                "-Xlinker".to_string(),
                format!("--symbol-ordering-file={}", order.display()),
                "-Xlinker".to_string(),
                "--no-warn-symbol-ordering".to_string(),
            ] {
                println!("cargo:rustc-link-arg-bins={arg}");
            }
        }
        None => println!("cargo:warning={ORDER_FILE} is missing: linked without it"),
        Some(why) => println!("cargo:warning={OPT_IN}=1 ignored: {why}"),
    }
}

/// Why this build's binaries may not be linked by rust-lld, if they may not.
fn why_not_lld() -> Option<String> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let target = var("TARGET");
    if target != "x86_64-unknown-linux-gnu" {
        return Some(format!("target {target}, not x86_64-unknown-linux-gnu"));
    }
    if var("PROFILE") != "release" {
        return Some("not a release build".into());
    }
    // `-C linker=…`, `-C linker-features=-lld`, `-C link-self-contained=-linker`,
    // `-C link-arg=-fuse-ld=…`, a linker from .cargo/config.toml or the environment: the
    // user's own linker, which may not know the option.
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    if rustflags.contains("linker") || rustflags.contains("fuse-ld") {
        return Some("RUSTFLAGS choose the linker".into());
    }
    if env::var_os("RUSTC_LINKER").is_some()
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        return Some("a linker is configured".into());
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    match rustc_version(&rustc) {
        Some(version) if version >= LLD_DEFAULT_SINCE => {}
        _ => return Some("rustc is older than 1.90 (its default linker is not rust-lld)".into()),
    }
    // A toolchain built without its own LLD (some distributions') links with the system's.
    let Some(sysroot) = run(&rustc, &["--print", "sysroot"]) else {
        return Some("rustc does not tell its sysroot".into());
    };
    let lld =
        Path::new(sysroot.trim()).join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld");
    if !lld.is_file() {
        return Some(format!("{} is missing", lld.display()));
    }
    None
}

/// `rustc -V`'s major and minor version: "rustc 1.95.0 (59807616e 2026-04-14)".
fn rustc_version(rustc: &str) -> Option<(u32, u32)> {
    let text = run(rustc, &["-V"])?;
    let mut numbers = text.split_whitespace().nth(1)?.split('.');
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    String::from_utf8(output.stdout).ok()
}
