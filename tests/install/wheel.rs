//! `pip wheel .` (maturin, pyproject.toml) builds a wheel whose `pycore` runs from a fresh
//! virtualenv: installed without an index, it analyses the committed example and names every
//! thread its process recorded. One release build (minutes; nextest gives this test a longer
//! slow-timeout in .config/nextest.toml). Skipped, with the reason printed, when pip cannot get
//! maturin from PyPI (no network) or there is no python3 with pip and venv.
//!
//! Also printed, and checked against the wheel's platform tag: the newest glibc symbol version
//! the binary needs (`objdump -T`), which is what the manylinux tag must promise.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::process::{run_with_timeout, TestDir};
use crate::support::stacks::Recording;

/// A release build of pycore on a loaded two-CPU machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(command: &mut Command, timeout: Duration, dir: &TestDir, label: &str) -> (i32, String) {
    let finished = run_with_timeout(command, timeout, dir.path(), label)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let output = format!("{}{}", finished.stdout_text(), finished.stderr);
    (finished.code().unwrap_or(-1), output)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Why pip could not build: no maturin from PyPI is a skip, anything else a failure.
fn cannot_get_maturin(log: &str) -> bool {
    log.contains("No matching distribution found for maturin")
        || (log.contains("maturin")
            && (log.contains("NewConnectionError")
                || log.contains("Temporary failure in name resolution")
                || log.contains("Network is unreachable")))
}

#[test]
fn wheel_installs_into_a_fresh_venv_and_analyses_the_example() {
    let dir = TestDir::new("wheel");
    let python = "python3";
    let (code, output) = run(
        Command::new(python).args(["-m", "pip", "--version"]),
        STEP_TIMEOUT,
        &dir,
        "pip-version",
    );
    if code != 0 {
        println!("skipped: no python3 with pip on PATH: {output}");
        dir.remove();
        return;
    }

    // The build: pip's isolated build environment gets maturin from PyPI; maturin runs
    // `cargo build --release` in this checkout's target directory.
    let wheels = dir.join("wheels");
    let mut build = Command::new("nice");
    build
        .args(["-n", "10", python, "-m", "pip", "wheel", "--no-deps", "-w"])
        .arg(&wheels)
        .arg(repo())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    let (code, log) = run(&mut build, BUILD_TIMEOUT, &dir, "pip-wheel");
    if code != 0 && cannot_get_maturin(&log) {
        println!(
            "skipped: pip cannot get maturin from PyPI:\n{}",
            last_lines(&log, 5)
        );
        dir.remove();
        return;
    }
    assert_eq!(code, 0, "pip wheel failed:\n{}", last_lines(&log, 40));
    let wheel: Vec<PathBuf> = fs::read_dir(&wheels)
        .expect("the wheel directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension() == Some(OsStr::new("whl")))
        .collect();
    let [wheel] = wheel.as_slice() else {
        panic!("expected one wheel in {}: {wheel:?}", wheels.display());
    };
    let wheel_name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    println!(
        "built {wheel_name} ({} bytes)",
        fs::metadata(wheel).unwrap().len()
    );
    assert!(
        wheel_name.starts_with("pycore_dump-"),
        "the distribution is pycore-dump: {wheel_name}"
    );

    // A fresh virtualenv, the wheel installed from the file alone.
    let venv = dir.join("venv");
    let (code, output) = run(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        STEP_TIMEOUT,
        &dir,
        "venv",
    );
    if code != 0 {
        println!("skipped: python3 -m venv fails here: {output}");
        dir.remove();
        return;
    }
    let (code, output) = run(
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--no-index", "--no-deps"])
            .arg(wheel)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        STEP_TIMEOUT,
        &dir,
        "pip-install",
    );
    assert_eq!(code, 0, "pip install of the wheel:\n{output}");
    let pycore = venv.join("bin/pycore");
    assert!(pycore.is_file(), "the wheel installs bin/pycore");

    // Its pycore, from a directory that is not the checkout, on the committed example.
    let example = repo().join("testdata/example");
    let mut analyze = Command::new(&pycore);
    analyze
        .arg("analyze")
        .arg(example.join("core.zst"))
        .arg("--python")
        .arg(example.join("python3.11.zst"))
        .current_dir(dir.path());
    let finished = run_with_timeout(&mut analyze, STEP_TIMEOUT, dir.path(), "pycore")
        .expect("the wheel's pycore runs");
    assert_eq!(finished.code(), Some(0), "stderr: {}", finished.stderr);
    let text = finished.stdout_text();
    let recording =
        Recording::load(&example.join("recorded.json")).expect("the example's recording");
    for thread in &recording.threads {
        let name = thread.name.as_deref().expect("every thread is named");
        let header = format!("Thread {} \"{name}\"", thread.tid);
        assert!(text.contains(&header), "no {header:?} in:\n{text}");
    }
    println!(
        "the wheel's pycore named all {} threads of the example",
        recording.threads.len()
    );

    // What it needs of glibc, against what the wheel's tag promises.
    match newest_glibc(&pycore, &dir) {
        Some(needed) => {
            println!("{} needs glibc {}.{}", pycore.display(), needed.0, needed.1);
            if let Some(promised) = manylinux_glibc(&wheel_name) {
                println!(
                    "the wheel's tag promises glibc {}.{}",
                    promised.0, promised.1
                );
                assert!(
                    needed <= promised,
                    "{wheel_name} is tagged for glibc {promised:?} but needs {needed:?}"
                );
            } else {
                println!("the wheel has no manylinux tag (a plain linux wheel)");
            }
        }
        None => println!("objdump could not list the binary's glibc versions"),
    }
    dir.remove();
}

/// The newest `GLIBC_X.Y` symbol version `binary` imports, from `objdump -T`.
fn newest_glibc(binary: &Path, dir: &TestDir) -> Option<(u32, u32)> {
    let finished = run_with_timeout(
        Command::new("objdump").arg("-T").arg(binary),
        STEP_TIMEOUT,
        dir.path(),
        "objdump",
    )
    .ok()?;
    finished
        .stdout_text()
        .split_whitespace()
        .filter_map(|word| {
            let version = word.trim_start_matches('(').trim_end_matches(')');
            let version = version.strip_prefix("GLIBC_")?;
            let (major, minor) = version.split_once('.')?;
            let minor = minor.split('.').next()?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
        .max()
}

/// `manylinux_2_34` in a wheel's file name, or the legacy aliases.
fn manylinux_glibc(wheel: &str) -> Option<(u32, u32)> {
    if wheel.contains("manylinux2014") {
        return Some((2, 17));
    }
    if wheel.contains("manylinux2010") {
        return Some((2, 12));
    }
    let rest = wheel.split("manylinux_").nth(1)?;
    let mut parts = rest.split('_');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
