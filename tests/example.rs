//! The committed example (testdata/example, made by tools/make_example.sh): a zstd-compressed
//! gcore core of tests/scenarios/parked_threads.py under Debian's static, stripped python3.11,
//! with that binary and the stacks the process recorded about itself before it was dumped.
//! This is the README's first command; it must work on a machine without that Python.

use crate::support;

use std::ffi::OsStr;
use std::path::PathBuf;

use support::facts::Expect;
use support::process::{run_pycore, TestDir};
use support::scenario::{analyze_with, judge};
use support::stacks::Recording;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/example")
        .join(name)
}

#[test]
fn example_core_matches_what_its_process_recorded() {
    let dir = TestDir::new("example");
    let recording = Recording::load(&example("recorded.json")).expect("recorded.json");
    let python = example("python3.11.zst");
    let analysis = analyze_with(
        &example("core.zst"),
        dir.path(),
        &[OsStr::new("--python"), python.as_os_str()],
    )
    .expect("pycore analyses the example");
    // A gcore snapshot; its recording predates the process facts but the pid.
    let verdict = judge(&recording, &analysis, &Expect::snapshot());
    for note in &verdict.notes {
        println!("note: {note}");
    }
    assert!(
        verdict.passed(),
        "the example's stacks differ from the recording:\n{}",
        verdict.problems.join("\n")
    );
    dir.remove();
}

#[test]
fn example_text_output_names_every_thread() {
    let dir = TestDir::new("example-text");
    let recording = Recording::load(&example("recorded.json")).expect("recorded.json");
    let python = example("python3.11.zst");
    let core = example("core.zst");
    let args = [
        OsStr::new("analyze"),
        core.as_os_str(),
        OsStr::new("--python"),
        python.as_os_str(),
    ];
    let finished = run_pycore(&args, dir.path(), "pycore").expect("pycore runs");
    assert_eq!(finished.code(), Some(0), "stderr: {}", finished.stderr);
    let text = finished.stdout_text();
    assert!(text.contains("most recent call first"), "{text}");
    for thread in &recording.threads {
        let header = format!("Thread {}", thread.tid);
        assert!(text.contains(&header), "no {header:?} in:\n{text}");
        let name = thread
            .name
            .as_deref()
            .expect("every thread of the example is named");
        let name = format!("\"{name}\"");
        assert!(text.contains(&name), "no name {name} in:\n{text}");
        for frame in &thread.frames {
            let line = match frame.line {
                Some(line) => format!("File \"{}\", line {line}", frame.file),
                None => format!("File \"{}\"", frame.file),
            };
            assert!(text.contains(&line), "no {line:?} in:\n{text}");
        }
    }
    dir.remove();
}

/// A core kept in systemd-coredump's store is named `core.COMM.UID.BOOTID.PID.USEC.zst`:
/// `core.systemd` reads it back (the dump's time is recorded nowhere else), and the text says
/// when it was dumped.
#[test]
fn systemd_store_names_are_read() {
    let dir = TestDir::new("example-systemd");
    let name = "core.python3\\x2e11.0.8e8c1dfd1c5a4e6fa2b5c0a3d4e5f601.15071.1764490502123456.zst";
    let core = dir.join(name);
    std::fs::copy(example("core.zst"), &core).expect("copy the example");
    let python = example("python3.11.zst");
    let analysis = analyze_with(
        &core,
        dir.path(),
        &[OsStr::new("--python"), python.as_os_str()],
    )
    .expect("pycore analyses the renamed example");
    let systemd = &analysis.report.doc["core"]["systemd"];
    assert_eq!(systemd["comm"], "python3.11", "{systemd}");
    assert_eq!(systemd["uid"], 0);
    assert_eq!(systemd["pid"], 15071);
    assert_eq!(systemd["boot_id"], "8e8c1dfd1c5a4e6fa2b5c0a3d4e5f601");
    // `date -u -d @1764490502 +%FT%TZ`
    assert_eq!(systemd["time"], "2025-11-30T08:15:02Z");
    let plain = analyze_with(
        &example("core.zst"),
        dir.path(),
        &[OsStr::new("--python"), python.as_os_str()],
    )
    .expect("pycore analyses the example");
    assert!(plain.report.doc["core"]["systemd"].is_null());
    dir.remove();
}
