//! Many cores at once (`pycore analyze CORE… | DIR`) and crash signatures.
//!
//! - A directory of the committed packed cores: one JSON document per line, in file-name order,
//!   each equal to that core's own analysis; the summary table names every core; the exit code
//!   is the highest of the cores'.
//! - Real crashes: two kernel cores of the same segfault and one of an abort, per interpreter
//!   row; the two segfaults share a signature, the abort has another, and each signature is the
//!   documented recipe (docs/json-schema.md, `crash.signature`) applied to what the crashed
//!   thread recorded of its own frames.

use crate::support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use support::interpreters::{self, Candidate};
use support::matrix::{assert_all_passed, assert_some_passed, print_matrix, run_matrix, Outcome};
use support::process::{run_pycore, TestDir};
use support::scenario::{core_of_crash, Run};
use support::stacks::Recording;

fn packed_cores() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/packed");
    let mut cores: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| Some(e.ok()?.path().join("core.zst")))
        .filter(|p| p.is_file())
        .collect();
    cores.sort();
    cores
}

#[test]
fn a_directory_of_cores_gives_one_json_line_per_core() {
    let dir = TestDir::new("batch-directory");
    let cores_dir = dir.join("cores");
    std::fs::create_dir(&cores_dir).unwrap();
    let mut names = Vec::new();
    for core in packed_cores() {
        let label = core
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let name = format!("{label}.core.zst");
        std::fs::copy(&core, cores_dir.join(&name)).unwrap();
        names.push(name);
    }
    // Something that is not a core: its line is an error document, its code the batch's.
    std::fs::write(cores_dir.join("zz-not-a-core.txt"), "hello\n").unwrap();
    names.push("zz-not-a-core.txt".into());
    names.sort();
    assert!(names.len() > 10, "too few packed cores: {names:?}");

    let finished = run_pycore(
        &[
            OsStr::new("analyze"),
            cores_dir.as_os_str(),
            OsStr::new("--json"),
        ],
        dir.path(),
        "pycore-batch",
    )
    .unwrap();
    assert_eq!(
        finished.code(),
        Some(3),
        "exit code: the not-a-core's 3 is the highest"
    );
    let lines: Vec<Value> = finished
        .stdout_text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON document"))
        .collect();
    assert_eq!(lines.len(), names.len(), "one line per file");
    for (line, name) in lines.iter().zip(&names) {
        let path = cores_dir.join(name);
        assert_eq!(line["core"]["path"], path.display().to_string().as_str());
        if name.ends_with(".txt") {
            assert_eq!(line["error"]["kind"], "not-a-core", "{line}");
            continue;
        }
        let alone = run_pycore(
            &[
                OsStr::new("analyze"),
                path.as_os_str(),
                OsStr::new("--json"),
            ],
            dir.path(),
            "pycore",
        )
        .unwrap();
        let alone: Value = serde_json::from_str(&alone.stdout_text()).unwrap();
        assert_eq!(
            line, &alone,
            "{name}: the batch's line differs from its own analysis"
        );
    }

    let table = run_pycore(
        &[OsStr::new("analyze"), cores_dir.as_os_str()],
        dir.path(),
        "pycore",
    )
    .unwrap()
    .stdout_text();
    for name in &names {
        assert!(
            table.contains(name.as_str()),
            "the summary table lacks {name}:\n{table}"
        );
    }
    assert!(table.contains(&format!("{} cores", names.len())), "{table}");
    dir.remove();
}

#[test]
fn the_same_crash_has_the_same_signature() {
    let title = "crash signatures of kernel cores (crash_segv.py twice, crash_abort.py)";
    let found = interpreters::discover();
    // A few rows are enough: the recipe does not depend on the version.
    let candidates: Vec<_> = interpreters::rows_for(&found, interpreters::WANTED, false)
        .into_iter()
        .filter(|c| {
            let label = match c {
                Candidate::Found { interpreter, .. } => interpreter.label(),
                Candidate::Missing(wanted) => wanted.label(),
                Candidate::Broken { .. } => return false,
            };
            ["2.7", "3.11", "3.12", "3.14"].contains(&label.as_str())
        })
        .collect();
    let start = Instant::now();
    let rows = run_matrix(title, &candidates, |python, progress| {
        let dir = TestDir::new(&format!("batch-sig-{}-{}", python.label(), python.linkage));
        let mut cores = Vec::new();
        for (i, (scenario, signal)) in [
            ("crash_segv.py", 11),
            ("crash_segv.py", 11),
            ("crash_abort.py", 6),
        ]
        .into_iter()
        .enumerate()
        {
            let sub = TestDir::new(&format!("batch-sig-{}-{i}", python.label()));
            match core_of_crash(python, &sub, &Run::new(scenario), signal, progress) {
                Ok(Some((recording, core))) => {
                    let kept = dir.join(&format!("{i}.core"));
                    if let Err(e) = std::fs::rename(&core.path, &kept) {
                        return Outcome::fail("cannot keep the core", e.to_string());
                    }
                    cores.push((kept, recording, signal));
                    sub.remove();
                }
                Ok(None) => {
                    return Outcome::Skipped {
                        reason: "cannot raise RLIMIT_CORE (ulimit -c unlimited failed)".into(),
                    }
                }
                Err(reason) => return Outcome::fail("no core", reason),
            }
        }
        // --native-all with a fresh shared cache folder: the parallel analyses inflate and
        // cache debug sections at the same time.
        let cache = dir.join("cache");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("analyze"),
            OsStr::new("--json"),
            OsStr::new("--native-all"),
            OsStr::new("--cache-dir"),
            cache.as_os_str(),
        ];
        args.extend(cores.iter().map(|(p, _, _)| p.as_os_str()));
        let finished = match run_pycore(&args, dir.path(), "pycore-batch") {
            Ok(f) => f,
            Err(reason) => return Outcome::fail("pycore failed", reason),
        };
        let signatures: Vec<Option<String>> = finished
            .stdout_text()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).ok()?["crash"]["signature"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        let expected: Vec<Option<String>> = cores
            .iter()
            .map(|(_, recording, signal)| expected_signature(recording, *signal))
            .collect();
        let mut problems = Vec::new();
        if signatures != expected {
            problems.push(format!(
                "signatures {signatures:?}, the recipe on the recordings gives {expected:?}"
            ));
        }
        if signatures.first() != signatures.get(1) || signatures.first() == signatures.get(2) {
            problems.push(format!(
                "the two segfaults must share a signature the abort has not: {signatures:?}"
            ));
        }
        if problems.is_empty() {
            dir.remove();
            Outcome::Pass {
                notes: vec![format!("{signatures:?}")],
                caveat: None,
            }
        } else {
            Outcome::fail("wrong signatures", problems.join("\n"))
        }
    });
    print_matrix(title, &rows, start.elapsed());
    assert_all_passed(title, &rows);
    assert_some_passed(title, &rows);
}

/// docs/json-schema.md's recipe, on what the crashed thread recorded.
fn expected_signature(recording: &Recording, signal: i32) -> Option<String> {
    let tid = recording.crash?.tid;
    let thread = recording.thread(tid)?;
    let name = match signal {
        11 => "SIGSEGV",
        6 => "SIGABRT",
        _ => return None,
    };
    let mut text = format!("{name}\n");
    for frame in thread.frames.iter().take(5) {
        text.push_str(&format!("{}:{}\n", normalised(&frame.file), frame.function));
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Some(format!("sig1-{hash:016x}"))
}

fn normalised(path: &str) -> String {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some((_, rest)) = path.rsplit_once(marker) {
            return rest.to_string();
        }
    }
    if let Some((_, rest)) = path.rsplit_once("/lib/python") {
        if let Some((_, inner)) = rest.split_once('/') {
            return inner.to_string();
        }
    }
    path.rsplit('/').next().unwrap_or(path).to_string()
}
