//! `pycore pack` on real cores, and the packed cores committed under testdata/packed/.
//!
//! The live matrix takes a core of tests/scenarios/locals.py (threads parked in functions that
//! recorded their own frames and variables) on every interpreter row, packs it with `--locals`,
//! and checks that the packed core:
//! - is small (under 1 MiB);
//! - gives the same report as the original in every format (only the core's path and the
//!   packed marks differ), with `--locals`, and with `--native`/`--native-all` (it is packed with
//!   `--native-all`);
//! - opens no file but itself (strace: every `open` after the packed core's);
//! - matches what the process recorded (stacks, process facts, variables).
//!
//! With PYCORE_REFRESH_TESTDATA=1 the row's packed core and the process's recordings are copied
//! to testdata/packed/LABEL-LINKAGE/, which `committed_packed_cores_match_their_recordings`
//! checks on any machine, with no interpreter installed.

use crate::locals::locals_problems;
use crate::support;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::facts::Expect;
use support::interpreters::Interpreter;
use support::matrix::{check_wanted_rows, Progress};
use support::process::{own_uid, run_pycore, TestDir};
use support::scenario::{analyze_with, core_of_parked, judge, outcome, record_path, Run, Take};
use support::stacks::{compare_with, Recording, Report, Verdict};

/// A packed core of a parked scenario must stay under this size.
const MAX_PACKED_BYTES: u64 = 1 << 20;

#[test]
fn packed_cores_give_the_same_report_and_open_nothing_else() {
    let title = "pycore pack of cores of tests/scenarios/locals.py";
    check_wanted_rows(title, |python, progress| {
        let dir = TestDir::new(&format!("pack-{}-{}", python.label(), python.linkage));
        let result = pack_and_check(python, &dir, progress);
        outcome(result, dir)
    });
}

fn pack_and_check(
    python: &Interpreter,
    dir: &TestDir,
    progress: &mut Progress,
) -> Result<Verdict, String> {
    let run = Run::new("locals.py");
    let (recording, core) = core_of_parked(python, dir, &run, Take::GcoreOrKernel, progress)?;
    let packed = dir.join("packed.core.zst");
    let mut args: Vec<OsString> = vec!["pack".into(), core.path.clone().into()];
    args.extend(python.pycore_args());
    args.extend([
        "--locals".into(),
        "--native-all".into(),
        "-o".into(),
        packed.clone().into(),
    ]);
    let args_ref: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let finished = run_pycore(&args_ref, dir.path(), "pycore-pack")?;
    if !matches!(finished.code(), Some(0 | 1)) {
        return Err(format!(
            "pycore pack: {}: {}",
            finished.status, finished.stderr
        ));
    }
    let size = std::fs::metadata(&packed)
        .map_err(|e| format!("{}: {e}", packed.display()))?
        .len();
    let mut problems = Vec::new();
    if size >= MAX_PACKED_BYTES {
        problems.push(format!(
            "the packed core has {size} bytes (at most {MAX_PACKED_BYTES})"
        ));
    }
    for format in ["json", "text", "table", "markdown"] {
        let mut original_args: Vec<OsString> = python.pycore_args();
        original_args.push("--locals".into());
        let original = output(&core.path, format, &original_args, dir)?;
        let from_packed = output(&packed, format, &["--locals".into()], dir)?;
        if let Some(difference) = difference(format, &original, &from_packed, &core.path, &packed) {
            problems.push(format!(
                "--format {format}: the packed core's report differs: {difference}"
            ));
        }
    }
    problems.extend(files_opened_besides(&packed, dir)?);
    // The packed core against the process's own record, as the original is checked.
    let analysis = analyze_with(&packed, dir.path(), &[OsStr::new("--locals")])?;
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
    let mut verdict = judge(&recording, &analysis, &expect);
    let expected_locals = read_locals_recording(&locals_recording_path(dir))?;
    verdict
        .problems
        .extend(locals_problems(&expected_locals, &analysis.report.doc));
    verdict.problems.extend(problems);
    verdict.notes.push(format!("packed: {size} bytes"));
    verdict.notes.extend(core.notes);
    if verdict.passed() && std::env::var_os("PYCORE_REFRESH_TESTDATA").is_some() {
        refresh_testdata(python, dir, &packed)?;
    }
    Ok(verdict)
}

/// pycore's output for `core` in `format` (exit code 0 or 1 required).
fn output(core: &Path, format: &str, extra: &[OsString], dir: &TestDir) -> Result<String, String> {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("analyze"),
        core.as_os_str(),
        OsStr::new("--format"),
        OsStr::new(format),
        OsStr::new("--color"),
        OsStr::new("never"),
    ];
    args.extend(extra.iter().map(|a| a.as_os_str()));
    let finished = run_pycore(&args, dir.path(), "pycore")?;
    match finished.code() {
        Some(0 | 1) => Ok(finished.stdout_text()),
        _ => Err(format!(
            "pycore analyze {} --format {format}: {}: {}",
            core.display(),
            finished.status,
            finished.stderr
        )),
    }
}

/// How the packed core's report differs from the original's beyond the core's path and the
/// packed marks, if it does.
fn difference(
    format: &str,
    original: &str,
    packed: &str,
    original_path: &Path,
    packed_path: &Path,
) -> Option<String> {
    if format == "json" {
        let parse = |text: &str| serde_json::from_str::<Value>(text).ok();
        let (Some(mut a), Some(mut b)) = (parse(original), parse(packed)) else {
            return Some("not JSON".into());
        };
        if b["packed"] != Value::Bool(true) || a["packed"] != Value::Bool(false) {
            return Some(format!(
                "\"packed\" is {} for the packed core and {} for the original",
                b["packed"], a["packed"]
            ));
        }
        if b["packed_from"]["path"] != original_path.display().to_string().as_str() {
            return Some(format!("packed_from.path is {}", b["packed_from"]["path"]));
        }
        for doc in [&mut a, &mut b] {
            if let Some(object) = doc.as_object_mut() {
                object.remove("packed");
                object.remove("packed_from");
            }
            doc["core"]["path"] = Value::Null;
        }
        return (a != b).then(|| first_difference(&pretty(&a), &pretty(&b)));
    }
    let original = original.replace(
        &original_path.display().to_string(),
        &packed_path.display().to_string(),
    );
    let packed: String = packed
        .lines()
        .filter(|line| !line.contains("Packed core: written by pycore"))
        .map(|line| format!("{line}\n"))
        .collect();
    (original != packed).then(|| first_difference(&original, &packed))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn first_difference(a: &str, b: &str) -> String {
    let (mut a_lines, mut b_lines) = (a.lines(), b.lines());
    for number in 1.. {
        match (a_lines.next(), b_lines.next()) {
            (None, None) => break,
            (x, y) if x == y => continue,
            (x, y) => {
                return format!(
                    "line {number}: original {:?}, packed {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                )
            }
        }
    }
    "they differ in line endings".into()
}

/// Files the analysis of `packed` opens after the packed core itself (strace), other than the
/// folder of the temporary file its decompression streams into.
fn files_opened_besides(packed: &Path, dir: &TestDir) -> Result<Vec<String>, String> {
    let trace = dir.join("strace.txt");
    let status = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_pycore"))
        .args(["analyze", "--json", "--locals", "--native-all"])
        .arg(packed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("strace (apt install strace): {e}"))?;
    if !matches!(status.code(), Some(0 | 1)) {
        return Err(format!("pycore analyze under strace: {status}"));
    }
    let text = std::fs::read_to_string(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let packed_name = packed.display().to_string();
    let mut after = false;
    let mut problems = Vec::new();
    for line in text.lines() {
        let Some(path) = line.split('"').nth(1) else {
            continue;
        };
        if path == packed_name {
            after = true;
            continue;
        }
        if after && !line.contains("O_TMPFILE") {
            problems.push(format!("the packed core's analysis opened {path}: {line}"));
        }
    }
    if !after {
        problems.push("strace saw no open of the packed core".into());
    }
    Ok(problems)
}

fn locals_recording_path(dir: &TestDir) -> PathBuf {
    let mut path = record_path(dir).into_os_string();
    path.push(".locals.json");
    PathBuf::from(path)
}

fn read_locals_recording(path: &Path) -> Result<BTreeMap<String, Vec<Vec<String>>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn testdata_packed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/packed")
}

fn refresh_testdata(python: &Interpreter, dir: &TestDir, packed: &Path) -> Result<(), String> {
    let target = testdata_packed().join(format!("{}-{}", python.label(), python.linkage));
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let copies = [
        (packed.to_path_buf(), "core.zst"),
        (record_path(dir), "record.json"),
        (locals_recording_path(dir), "locals.json"),
    ];
    for (from, name) in copies {
        std::fs::copy(&from, target.join(name))
            .map_err(|e| format!("{} -> {}: {e}", from.display(), target.display()))?;
    }
    Ok(())
}

/// Every committed packed core: its analysis (no binaries, no interpreter) must match what its
/// process recorded — stacks and variables.
#[test]
fn committed_packed_cores_match_their_recordings() {
    let root = testdata_packed();
    let mut rows: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.join("core.zst").is_file())
        .collect();
    rows.sort();
    assert!(
        !rows.is_empty(),
        "no packed cores under {} (PYCORE_REFRESH_TESTDATA=1 makes them)",
        root.display()
    );
    let mut failures = Vec::new();
    println!("committed packed cores ({}):", rows.len());
    for row in &rows {
        let name = row.file_name().unwrap_or_default().to_string_lossy();
        match check_committed(row) {
            Ok(()) => println!("  {name}: pass"),
            Err(problem) => {
                println!("  {name}: FAIL: {problem}");
                failures.push(format!("{name}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_committed(row: &Path) -> Result<(), String> {
    let recording = Recording::load(&row.join("record.json"))?;
    let expected_locals = read_locals_recording(&row.join("locals.json"))?;
    let dir = TestDir::new("packed-committed");
    let core = row.join("core.zst");
    let args = [
        OsStr::new("analyze"),
        core.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--locals"),
    ];
    let finished = run_pycore(&args, dir.path(), "pycore")?;
    if !matches!(finished.code(), Some(0 | 1)) {
        return Err(format!(
            "pycore analyze: {}: {}",
            finished.status, finished.stderr
        ));
    }
    let report = Report::parse(&finished.stdout)?;
    let mut problems = compare_with(&recording, &report, Expect::snapshot().require).problems;
    problems.extend(locals_problems(&expected_locals, &report.doc));
    if report.doc["packed"] != Value::Bool(true) {
        problems.push("the report does not say \"packed\": true".into());
    }
    dir.remove();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
