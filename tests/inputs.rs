//! Real-world inputs: cores in the shapes users bring them (issue 5).
//!
//! - Compressed cores, made at test time by the real tools (gzip, zstd, xz,
//!   lz4: Debian's packages, which .ci/run installs), of a shared-libpython
//!   and of a static build: recognised by their magic bytes whatever their
//!   name, analysed exactly like the uncompressed core; broken ones fail
//!   cleanly; nothing is left in TMPDIR on success, on error, or when pycore
//!   is killed while decompressing.
//! - Finding the binaries without --python: a process started through a `#!`
//!   script naming a virtualenv's `bin/python` symlink; binaries that moved
//!   (the paths the core recorded no longer exist) found through --sysroot
//!   and --lib-path, a same-named file of another build skipped by build-id;
//!   --python of another build refused naming both build-ids, accepted with
//!   a warning under --allow-mismatch.
//! - Truncated cores, a kernel core and a gcore core cut at many lengths: a
//!   bounded run, a documented exit code, never a panic, and never a frame
//!   that the process did not have.
//! - Hostile, hand-made ELF cores: absurd program-header counts and offsets,
//!   notes past the end of the file or claiming gigabytes, NT_FILE with huge
//!   counts, tens of thousands of threads: exit 3, 4 or 5 with one line,
//!   quickly, under an address-space limit.
//!
//! - Messages and inputs that misled a new user (issue 8, tests/inputs/new_user.rs):
//!   a --python that is not a readable file, libpython found where --python
//!   links it, a launcher given for a static python's core, source lines
//!   from --sysroot, the core through a pipe or a FIFO, markdown's handled
//!   exceptions, the table on a terminal of width 0, binaries without a
//!   build-id checked by the pages the core holds.
//!
//! The real cores come from pyenv's 3.12 (shared libpython) and Debian's
//! static /usr/bin/python3.11 (rows of support::interpreters::WANTED). A test
//! whose interpreter is missing is skipped with the reason, or fails with
//! PYCORE_REQUIRE_ALL_PYTHONS=1. Every test prints what it checked.

use crate::support;

// Issue 8 §4: kept apart, sharing this file's helpers.
#[path = "inputs/new_user.rs"]
mod new_user;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::elf::{self, CoreLayout};
use support::facts::{CrashCause, Expect, SEGV_MAPERR};
use support::interpreters::{self, Candidate, Interpreter, Linkage};
use support::kernel::{check_core_pattern, SIGSEGV};
use support::matrix::Progress;
use support::process::{
    own_uid, pycore_command, run_pycore_with, run_with_timeout, ChildGuard, TestDir,
};
use support::scenario::{
    analyze_for, analyze_with, core_of_crash, core_of_parked_command, judge, python_run_command,
    record_path, scenario_path, Analysis, Core, Run, Take,
};
use support::stacks::{frame_diff, frame_matches, Recording, Report};

const PARTIAL: i32 = 1;
const NOT_A_CORE: i32 = 3;
const NOT_PYTHON: i32 = 4;
const WRONG_BINARY: i32 = 5;
const NO_STATE: i32 = 7;

/// No input here may keep pycore busier than this: the real cores are ~20 MB
/// (decompressed: ~0.3 s in the debug build), and pycore reads only what it
/// walks; the hand-made ones are at most 11 MB.
/// A run still going then is killed, and fails its test.
const RUN_LIMIT: Duration = Duration::from_secs(10);
/// gzip, zstd, xz and lz4 at their fastest levels take well under a second
/// for the ~18 MB cores here; this leaves room for a loaded machine.
const COMPRESS_TIMEOUT: Duration = Duration::from_secs(120);

// ---- compressed cores ----------------------------------------------------------

/// A compression tool, the Debian package that has it, and how it writes
/// the compressed core to standard output at its fastest level.
struct Compressor {
    tool: &'static str,
    package: &'static str,
    args: &'static [&'static str],
    /// The usual name of its files.
    file: &'static str,
}

const COMPRESSORS: &[Compressor] = &[
    Compressor {
        tool: "gzip",
        package: "gzip",
        args: &["-1", "-c"],
        file: "core.gz",
    },
    Compressor {
        tool: "zstd",
        package: "zstd",
        args: &["-1", "-q", "-c"],
        file: "core.zst",
    },
    Compressor {
        tool: "xz",
        package: "xz-utils",
        args: &["-0", "-c"],
        file: "core.xz",
    },
    Compressor {
        tool: "lz4",
        package: "lz4",
        args: &["-1", "-q", "-c"],
        file: "core.lz4",
    },
];

/// Copies under names that say nothing, or something false, about the
/// format: (copy of, new name). Detection is by magic bytes.
const MISNAMED: &[(&str, &str)] = &[
    ("core.zst", "core-without-extension"),
    ("core.xz", "core-really-xz.gz"),
];

/// A shared-libpython build's core in every compressed form, and under
/// misleading names.
#[test]
fn compressed_cores_shared_libpython() {
    compressed_cores("3.12", Linkage::Shared, MISNAMED);
}

/// A static build's core in every compressed form.
#[test]
fn compressed_cores_static() {
    compressed_cores("3.11", Linkage::Static, &[]);
}

/// Compresses a core of parked_threads.py with each tool (and copies under
/// `misnamed` names): each must give exactly the uncompressed core's report
/// (all of it but core.path, which names the file given). Broken files end
/// in exit 3 with one line. Every run has TMPDIR set to a fresh empty
/// folder, which must still be empty after it (pycore decompresses into an
/// unlinked temporary file there); a run with an unusable TMPDIR fails
/// cleanly, naming it, and one killed mid-decompression leaves nothing.
fn compressed_cores(label: &str, linkage: Linkage, misnamed: &[(&str, &str)]) {
    let Some(python) = interpreter(label, linkage) else {
        return;
    };
    let dir = TestDir::new(&format!("inputs-compressed-{label}-{linkage}"));
    let (_, core, expected) = checked_parked_core(&python, &dir);
    let extra = python.pycore_args();
    let tmpdir = dir.join("tmpdir");
    fs::create_dir(&tmpdir).unwrap();
    let size = fs::metadata(&core.path).unwrap().len();
    println!(
        "core of {} ({}): {} ({:.1} MB)",
        python.path.display(),
        core.kind.describe(),
        core.path.display(),
        size as f64 / 1e6
    );

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for compressor in COMPRESSORS {
        let start = Instant::now();
        let file = compress(compressor, &core.path, &dir);
        println!(
            "  {:5} {:>8.2} MB in {:.2} s",
            compressor.tool,
            fs::metadata(&file).unwrap().len() as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
        files.push((format!("{} by {}", compressor.file, compressor.tool), file));
    }
    for (original, name) in misnamed {
        let copy = dir.join(name);
        fs::copy(dir.join(original), &copy).unwrap();
        files.push((format!("{name} (a copy of {original})"), copy));
    }

    for (what, file) in &files {
        let ran = pycore(&dir, &json_args(file, &extra), Some(&tmpdir));
        assert_left_nothing(&tmpdir, &ran);
        let doc = ran.report();
        assert_same_report(&expected, &doc, what);
        println!("  {what}: same report ({:.2} s)", ran.elapsed.as_secs_f64());
    }

    // Broken compressed files: exit 3, one line, nothing left behind.
    let cut_zst = dir.join("cut.zst");
    let zst = fs::read(dir.join("core.zst")).unwrap();
    fs::write(&cut_zst, &zst[..zst.len() / 2]).unwrap();
    let flipped_gz = dir.join("flipped.gz");
    let mut gz = fs::read(dir.join("core.gz")).unwrap();
    let middle = gz.len() / 2;
    for byte in &mut gz[middle..middle + 4] {
        *byte ^= 0x55;
    }
    fs::write(&flipped_gz, &gz).unwrap();
    for (what, file) in [
        ("a .zst cut in half", &cut_zst),
        ("a .gz with four bytes flipped (checksum)", &flipped_gz),
    ] {
        let ran = pycore(&dir, &json_args(file, &extra), Some(&tmpdir));
        assert_left_nothing(&tmpdir, &ran);
        assert_clean_failure(&ran, &[NOT_A_CORE]);
        println!("  {what}: exit 3: {}", ran.stderr.trim());
    }

    // Killed while decompressing (xz is the slowest): the temporary file
    // was unlinked at creation, so nothing remains.
    let mut command = pycore_command(&as_os_strs(&json_args(&dir.join("core.xz"), &extra)));
    command.env("TMPDIR", &tmpdir);
    let mut child = ChildGuard::spawn(&mut command, dir.path(), "pycore-killed").unwrap();
    thread::sleep(Duration::from_millis(100));
    let was_running = child.exited().is_none();
    drop(child); // SIGKILL, then reaped
    assert_left_nothing_after(
        &tmpdir,
        "pycore killed (SIGKILL) while decompressing core.xz",
    );
    println!(
        "  killed with SIGKILL 0.1 s into decompressing core.xz ({}): TMPDIR empty",
        if was_running {
            "it was still running"
        } else {
            "it had already finished: the kill proved nothing this time"
        }
    );
    // The temporary file goes to TMPDIR: one that does not exist is an error
    // that names it (not the core, which is there and readable).
    let missing = dir.join("no-such-tmpdir");
    let ran = pycore(
        &dir,
        &json_args(&dir.join("core.zst"), &extra),
        Some(&missing),
    );
    assert_clean_failure(&ran, &[NOT_A_CORE]);
    assert!(
        ran.stderr.contains(&*missing.to_string_lossy()),
        "{}: with TMPDIR={} (missing), the error should name that folder, not only the \
         core: {:?}",
        ran.args,
        missing.display(),
        ran.stderr.trim()
    );
    println!("  TMPDIR missing: exit 3: {}", ran.stderr.trim());

    dir.remove();
}

fn compress(compressor: &Compressor, core: &Path, dir: &TestDir) -> PathBuf {
    let mut command = Command::new(compressor.tool);
    command.args(compressor.args).arg(core);
    let label = format!("compress-{}", compressor.tool);
    let finished = run_with_timeout(&mut command, COMPRESS_TIMEOUT, dir.path(), &label)
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n(is {} installed? apt-get install {}, as .ci/run does)",
                compressor.tool, compressor.package
            )
        });
    assert!(
        finished.status.success(),
        "{} failed ({}): {}",
        compressor.tool,
        finished.status,
        finished.stderr
    );
    let file = dir.join(compressor.file);
    fs::rename(dir.join(&format!("{label}.stdout")), &file).unwrap();
    file
}

/// The two reports must be equal but for core.path (the file analysed).
fn assert_same_report(expected: &Value, got: &Value, what: &str) {
    let strip = |doc: &Value| {
        let mut doc = doc.clone();
        if let Some(core) = doc.get_mut("core").and_then(Value::as_object_mut) {
            core.remove("path");
        }
        doc
    };
    let (expected, got) = (strip(expected), strip(got));
    if expected == got {
        return;
    }
    let mut differences = String::new();
    let keys = expected
        .as_object()
        .into_iter()
        .chain(got.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>();
    for key in keys {
        if expected.get(&key) != got.get(&key) {
            let show = |v: Option<&Value>| {
                let text = v.map_or("(absent)".to_string(), Value::to_string);
                text.chars().take(1500).collect::<String>()
            };
            let _ = writeln!(
                differences,
                "{key}:\n  uncompressed: {}\n  {what}: {}",
                show(expected.get(&key)),
                show(got.get(&key))
            );
        }
    }
    panic!("{what}: the report differs from the uncompressed core's:\n{differences}");
}

fn assert_left_nothing(tmpdir: &Path, ran: &Ran) {
    assert_left_nothing_after(tmpdir, &ran.args);
}

fn assert_left_nothing_after(tmpdir: &Path, what: &str) {
    let left: Vec<PathBuf> = fs::read_dir(tmpdir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(
        left.is_empty(),
        "{what}: left {left:?} in TMPDIR {}",
        tmpdir.display()
    );
}

// ---- finding the binaries ------------------------------------------------------

/// The process was started as `SCRIPT RECORD`, a script whose `#!` line names
/// a virtualenv's `bin/python` (a symlink to pyenv's python3.12): pycore finds
/// the interpreter with no --python; core.invoked_as is the script (what was
/// executed: AT_EXECFN), core.executable and python.executable.path the real
/// binary, and the stacks (which now run through runpy) are the recorded ones.
#[test]
fn started_through_a_shebang_script_of_a_virtualenv() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("inputs-venv");
    let venv = dir.join("venv");
    let mut make_venv = Command::new(&python.path);
    make_venv
        .args(["-E", "-s", "-m", "venv", "--without-pip"])
        .arg(&venv);
    let made = run_with_timeout(&mut make_venv, COMPRESS_TIMEOUT, dir.path(), "venv").unwrap();
    assert!(made.status.success(), "python -m venv: {}", made.stderr);
    let venv_python = venv.join("bin/python");
    let real = fs::canonicalize(&venv_python).unwrap();
    assert!(
        fs::symlink_metadata(&venv_python)
            .unwrap()
            .file_type()
            .is_symlink(),
        "{} is not a symlink",
        venv_python.display()
    );

    // `#!INTERPRETER ARG`: Linux passes one argument, "-EsB" (-E -s -B).
    let script = dir.join("run-parked-threads");
    let scenario = scenario_path("parked_threads.py");
    fs::write(
        &script,
        format!(
            "#!{} -EsB\n\
             import os, runpy, sys\n\
             scenario = {:?}\n\
             sys.path.insert(0, os.path.dirname(scenario))\n\
             sys.argv[0] = scenario\n\
             runpy.run_path(scenario, run_name='__main__')\n",
            venv_python.display(),
            scenario.to_str().unwrap()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(&script);
    command
        .arg(record_path(&dir))
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8");
    let (recording, core) = core_of_parked_command(
        &small_stacks(&command),
        &dir,
        Take::GcoreOrKernel,
        &mut Progress::default(),
    )
    .unwrap_or_else(|e| panic!("core of {}: {e}", script.display()));

    let analysis = analyze_for(&python, &core.path, dir.path()).unwrap();
    assert_judged(&recording, &core, &analysis, "the venv script's core");
    let doc = &analysis.report.doc;
    let real = real.to_str().unwrap();
    for (pointer, expected) in [
        ("/core/invoked_as", script.to_str().unwrap()),
        ("/core/executable", real),
        ("/python/executable/path", real),
        ("/python/executable/local_path", real),
    ] {
        assert_eq!(
            doc.pointer(pointer).and_then(Value::as_str),
            Some(expected),
            "{pointer} of the core of {} (started through {} → {real})",
            script.display(),
            venv_python.display()
        );
    }
    println!(
        "started as {} (#!{}): invoked_as and executable right, stacks as recorded",
        script.display(),
        venv_python.display()
    );
    dir.remove();
}

/// The interpreter and its libpython are copied to `DIR/app`, a core of
/// parked_threads.py run from there is taken, and `DIR/app` is moved into a
/// sysroot: the paths the core recorded no longer exist, so nothing but the
/// copies can serve. Without options: exit 5 saying what to pass.
/// `--sysroot SYSROOT` (copies at SYSROOT/<recorded path>) and
/// `--lib-path DIR` (same-named copies) find them: local_path names the copy
/// and the stacks are the recorded ones. A --lib-path folder before it
/// holding another version's files under the same names is skipped by
/// build-id, silently; alone, it is a mismatch naming both build-ids.
#[test]
fn moved_binaries_found_through_sysroot_and_lib_path() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let Some(other) = other_shared_build(&python) else {
        return;
    };
    let dir = TestDir::new("inputs-moved");
    let (exe_name, lib_name) = (file_name(&python.path), libpython_name(&python.path));
    let original_lib = libpython_path(&python.path);
    let app = dir.join("app");
    let (app_exe, app_lib) = (
        app.join("bin").join(&exe_name),
        app.join("lib").join(&lib_name),
    );
    copy_into(&python.path, &app_exe);
    copy_into(&original_lib, &app_lib);

    // The copy loads the copied libpython (the executable's RUNPATH yields
    // to LD_LIBRARY_PATH) and the stdlib of the original prefix (PYTHONHOME,
    // which -E would ignore: no -E here).
    let (recording, core) = core_of_copied_python(&python, &app_exe, &app.join("lib"), &dir);

    // Move the binaries away: SYSROOT/<absolute path of DIR/app>.
    let sysroot = dir.join("sysroot");
    let moved_app = sysroot.join(app.strip_prefix("/").unwrap());
    fs::create_dir_all(moved_app.parent().unwrap()).unwrap();
    fs::rename(&app, &moved_app).unwrap();
    let (sysroot_exe, sysroot_lib) = (
        moved_app.join("bin").join(&exe_name),
        moved_app.join("lib").join(&lib_name),
    );
    let lib_dir = dir.join("lib-path");
    copy_into(&sysroot_exe, &lib_dir.join(&exe_name));
    copy_into(&sysroot_lib, &lib_dir.join(&lib_name));
    // Another version's files under the same names: a different build.
    let decoy = dir.join("decoy");
    copy_into(&other.path, &decoy.join(&exe_name));
    copy_into(&libpython_path(&other.path), &decoy.join(&lib_name));
    let core_exe_id = elf::build_id(&sysroot_exe).unwrap();
    let decoy_exe_id = elf::build_id(&decoy.join(&exe_name)).unwrap();

    let extra = python.pycore_args();
    let os = |s: &str| OsString::from(s);
    // Nothing at the recorded paths: exit 5, one line saying what to pass.
    let ran = pycore(&dir, &json_args(&core.path, &extra), None);
    assert_clean_failure(&ran, &[WRONG_BINARY]);
    assert!(
        ran.stderr.contains("--sysroot") || ran.stderr.contains("--lib-path"),
        "{}: the error should say what to pass: {}",
        ran.args,
        ran.stderr.trim()
    );
    println!(
        "binaries moved away, no options: exit 5: {}",
        ran.stderr.trim()
    );

    let found = |options: Vec<OsString>, exe: &Path, lib: &Path, what: &str| {
        let mut args = extra.clone();
        args.extend(options);
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let analysis =
            analyze_with(&core.path, dir.path(), &args).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_judged(&recording, &core, &analysis, what);
        let doc = &analysis.report.doc;
        for (key, recorded, local) in [("executable", &app_exe, exe), ("libpython", &app_lib, lib)]
        {
            let binary = &doc["python"][key];
            assert_eq!(
                binary["path"].as_str(),
                recorded.to_str(),
                "{what}: python.{key}.path must be the path the core recorded"
            );
            assert_eq!(
                binary["local_path"].as_str(),
                local.to_str(),
                "{what}: python.{key}.local_path must be the copy"
            );
        }
        for warning in &analysis.report.warnings {
            assert!(
                !warning.contains(&*decoy.to_string_lossy()),
                "{what}: a warning about the skipped other build: {warning}"
            );
        }
        println!(
            "{what}: local paths {} and {}",
            exe.display(),
            lib.display()
        );
    };
    found(
        vec![os("--sysroot"), sysroot.clone().into()],
        &sysroot_exe,
        &sysroot_lib,
        "--sysroot SYSROOT",
    );
    found(
        vec![os("--lib-path"), lib_dir.clone().into()],
        &lib_dir.join(&exe_name),
        &lib_dir.join(&lib_name),
        "--lib-path DIR",
    );
    found(
        vec![
            os("--lib-path"),
            decoy.clone().into(),
            os("--lib-path"),
            lib_dir.clone().into(),
        ],
        &lib_dir.join(&exe_name),
        &lib_dir.join(&lib_name),
        "--lib-path OTHER-BUILD --lib-path DIR",
    );

    // Only the other build: a mismatch naming both build-ids.
    let mut args = json_args(&core.path, &extra);
    args.extend([os("--lib-path"), decoy.clone().into()]);
    let ran = pycore(&dir, &args, None);
    assert_clean_failure(&ran, &[WRONG_BINARY]);
    assert_names_both(&ran.stderr, &core_exe_id, &decoy_exe_id, &ran.args);
    println!(
        "--lib-path OTHER-BUILD alone: exit 5: {}",
        ran.stderr.trim()
    );
    dir.remove();
}

/// `--python` naming another build (another version's executable): exit 5,
/// one line naming the build-id the core recorded and the file's. With
/// --allow-mismatch the analysis goes on: exit 1 and a warning naming both
/// (the stacks are still right here: the interpreter is in libpython, which
/// matches).
#[test]
fn python_of_another_build_is_refused_unless_allowed() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let Some(other) = other_shared_build(&python) else {
        return;
    };
    let dir = TestDir::new("inputs-mismatch");
    let (recording, core, _) = checked_parked_core(&python, &dir);
    let core_id = elf::build_id(&python.path).unwrap();
    let other_id = elf::build_id(&other.path).unwrap();
    let extra = python.pycore_args();

    let mut args = json_args(&core.path, &extra);
    args.extend([OsString::from("--python"), other.path.clone().into()]);
    let ran = pycore(&dir, &args, None);
    assert_clean_failure(&ran, &[WRONG_BINARY]);
    assert_names_both(&ran.stderr, &core_id, &other_id, &ran.args);
    println!(
        "--python {}: exit 5: {}",
        other.path.display(),
        ran.stderr.trim()
    );

    args.push(OsString::from("--allow-mismatch"));
    let ran = pycore(&dir, &args, None);
    assert_eq!(
        ran.code,
        Some(PARTIAL),
        "{}: expected exit 1 (a warning), got {}; stderr: {}",
        ran.args,
        ran.status,
        ran.stderr
    );
    let doc = ran.report();
    let report = Report::parse(&ran.stdout).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains(&core_id) && w.contains(&other_id)),
        "{}: no warning names both build-ids {core_id} and {other_id}: {:?}",
        ran.args,
        report.warnings
    );
    let analysis = Analysis {
        exit_code: PARTIAL,
        report,
    };
    assert_judged(
        &recording,
        &core,
        &analysis,
        "--python OTHER --allow-mismatch",
    );
    println!(
        "--python {} --allow-mismatch: exit 1, warnings: {}",
        other.path.display(),
        doc["warnings"]
    );
    dir.remove();
}

fn assert_names_both(stderr: &str, core_id: &str, file_id: &str, what: &str) {
    assert!(
        stderr.contains(core_id) && stderr.contains(file_id),
        "{what}: the error must name the core's build-id {core_id} and the file's {file_id}: {}",
        stderr.trim()
    );
}

/// The newest other version's build with a shared libpython (pyenv's): a
/// different build under the same kind of names.
fn other_shared_build(python: &Interpreter) -> Option<Interpreter> {
    let other = found()
        .iter()
        .filter_map(|f| f.as_ref().ok())
        .filter(|i| {
            i.is_supported()
                && i.linkage == Linkage::Shared
                && i.build == python.build
                && i.version.major_minor() != python.version.major_minor()
        })
        .max_by_key(|i| i.version)
        .cloned();
    if other.is_none() {
        skip(&format!(
            "no other shared-libpython build than {} to play the wrong binary",
            python.path.display()
        ));
    }
    other
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The libpython an executable needs (DT_NEEDED), by name.
fn libpython_name(executable: &Path) -> String {
    let bytes = fs::read(executable).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    elf.libraries
        .iter()
        .find(|l| l.starts_with("libpython"))
        .unwrap_or_else(|| panic!("{} needs no libpython", executable.display()))
        .to_string()
}

/// pyenv's layout: PREFIX/bin/pythonX.Y needs PREFIX/lib/libpythonX.Y.so.1.0.
fn libpython_path(executable: &Path) -> PathBuf {
    let prefix = executable.parent().and_then(Path::parent).unwrap();
    let path = prefix.join("lib").join(libpython_name(executable));
    assert!(path.is_file(), "no {}", path.display());
    path
}

fn copy_into(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}

// ---- truncated cores -----------------------------------------------------------

/// A kernel core of a crash (crash_segv.py under pyenv's 3.12; the kernel
/// writes the notes first, then memory by address) cut at many lengths.
#[test]
fn truncated_kernel_core() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    if let Err(reason) = check_core_pattern() {
        skip(&format!("no kernel cores here: {reason}"));
        return;
    }
    let dir = TestDir::new("inputs-truncated-kernel");
    let (recording, core) = core_of_crash(
        &python,
        &dir,
        &Run::new("crash_segv.py"),
        SIGSEGV,
        &mut Progress::default(),
    )
    .unwrap_or_else(|e| panic!("crash_segv.py: {e}"))
    .unwrap_or_else(|| panic!("cannot raise RLIMIT_CORE (ulimit -c unlimited failed)"));
    let expect = Expect::crash(&recording, &core, SEGV_MAPERR, CrashCause::Fault).unwrap();
    let analysis = analyze_for(&python, &core.path, dir.path()).unwrap();
    let verdict = judge(&recording, &analysis, &expect);
    assert!(
        verdict.passed(),
        "the whole kernel core is analysed wrong, cuts of it cannot be checked:\n{}",
        verdict.problems.join("\n")
    );
    check_cuts(&python, &recording, &core, &dir);
    dir.remove();
}

/// A gcore core (parked_threads.py under pyenv's 3.12; gcore writes memory
/// first and the notes last, then section headers) cut at many lengths.
#[test]
fn truncated_gcore_core() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("inputs-truncated-gcore");
    let (recording, core, _) = checked_parked_core(&python, &dir);
    check_cuts(&python, &recording, &core, &dir);
    dir.remove();
}

/// Cuts `core` at 25%, 50% and 90% of its data, just before, inside and just
/// after its notes, one byte before the end of its data, and at the start of
/// up to 24 of its memory segments, and runs pycore on each. Every run must
/// end within RUN_LIMIT with exit 0, 1, 3 or 7 (never a panic: 101, 70, a
/// signal), one line on stderr when it fails, and:
///
/// - notes cut before the last thread, mapped-file, auxv or process note
///   ends: exit 3, naming the truncation (the threads or the binaries are
///   lost; only the notes after those, such as gcore's closing target
///   description, may be lost with an analysis going on);
/// - an analysis (the file ends before its data: something is lost) exits 1
///   with a warning saying the core is truncated, lists every thread of the
///   process, and reports for each thread only frames the process had.
///
/// That last check: pycore walks a thread's frames from the innermost one
/// outwards; a frame whose memory was cut off ends the walk. So an honest
/// report gives each thread exactly its recorded frames, or the innermost
/// ones of them (a prefix of the innermost-first list) with a warning on that
/// thread saying why the rest is missing. Any other frame, or one out of
/// place, would be something pycore made up from missing memory (such as
/// stale file contents standing in for dumped pages), and fails the test.
fn check_cuts(python: &Interpreter, recording: &Recording, core: &Core, dir: &TestDir) {
    let layout = elf::core_layout(&core.path).unwrap();
    let data_end = layout.data_end;
    let &[(notes_start, notes_end)] = layout.notes.as_slice() else {
        panic!(
            "{}: expected one PT_NOTE, got {:?}",
            core.path.display(),
            layout.notes
        );
    };
    let mut cuts: Vec<(u64, String)> = vec![
        (data_end / 4, "25% of the data".to_string()),
        (data_end / 2, "50% of the data".to_string()),
        (data_end / 10 * 9, "90% of the data".to_string()),
        (notes_start, "just before the notes".to_string()),
        (
            (notes_start + notes_end) / 2,
            "inside the notes".to_string(),
        ),
        (notes_end, "just after the notes".to_string()),
        (
            data_end - 1,
            "one byte before the end of the data".to_string(),
        ),
    ];
    let starts = &layout.segment_starts;
    let step = starts.len().div_ceil(24).max(1);
    cuts.extend(
        starts
            .iter()
            .step_by(step)
            .map(|&offset| (offset, format!("at the segment at {offset:#x}"))),
    );
    cuts.retain(|(cut, _)| (1..data_end).contains(cut));
    cuts.sort_by_key(|(cut, _)| std::cmp::Reverse(*cut));
    cuts.dedup_by_key(|(cut, _)| *cut);

    // One copy, cut shorter and shorter.
    let cut_path = dir.join("cut-core");
    fs::copy(&core.path, &cut_path).unwrap();
    let file = fs::OpenOptions::new().write(true).open(&cut_path).unwrap();
    let extra = python.pycore_args();
    let mut table = String::new();
    let mut problems = Vec::new();
    for (cut, name) in &cuts {
        file.set_len(*cut).unwrap();
        let ran = pycore(dir, &json_args(&cut_path, &extra), None);
        let (summary, found) = judge_cut(&ran, *cut, &layout, recording);
        let _ = writeln!(
            table,
            "  {:>10} {:40} exit {:<4} {:5.2} s  {}",
            cut,
            name,
            ran.code.map_or("-".to_string(), |c| c.to_string()),
            ran.elapsed.as_secs_f64(),
            summary
        );
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("cut {name} ({cut} bytes): {p}")),
        );
    }
    println!(
        "{} ({}, {} bytes of data, notes at {notes_start}..{notes_end}) cut at {} lengths:\n{table}",
        core.path.display(),
        core.kind.describe(),
        data_end,
        cuts.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems on the cut cores (the cuts are listed above; core kept in {}):\n{}",
        problems.len(),
        dir.path().display(),
        problems.join("\n")
    );
}

/// One line for the table, and the problems of one run on a cut core.
fn judge_cut(
    ran: &Ran,
    cut: u64,
    layout: &CoreLayout,
    recording: &Recording,
) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let essentials_cut = cut < layout.essential_notes_end;
    match ran.code {
        Some(0 | PARTIAL | NOT_A_CORE | NO_STATE) => {}
        _ => problems.push(format!(
            "{}: {} (allowed: 0, 1, 3, 7); stderr: {}",
            ran.args,
            ran.status,
            ran.stderr.trim()
        )),
    }
    // With the notes cut before the end of the thread, process and mapped-file notes, pycore
    // may refuse the core (exit 3 naming the truncation), analyse the threads whose notes
    // survived (exit 1, a truncation warning, a subset of the threads), or fail to reach the
    // interpreter state because its memory is cut off too (exit 7 saying so). It must never
    // present such a core as whole or blame something else.
    let stderr = ran.stderr.to_lowercase();
    let names_cut = stderr.contains("truncat") || stderr.contains("cut off");
    if essentials_cut && matches!(ran.code, Some(NOT_A_CORE | NO_STATE)) && !names_cut {
        problems.push(format!(
            "the notes are cut before the end of the threads, mapped files and process notes \
             (at {}): the error must name the truncation, got {}: {}",
            layout.essential_notes_end,
            ran.status,
            ran.stderr.trim()
        ));
    }
    let summary = match ran.code {
        Some(0 | PARTIAL) => match Report::parse(&ran.stdout) {
            Ok(report) => {
                judge_partial_report(ran, &report, recording, essentials_cut, &mut problems)
            }
            Err(e) => {
                problems.push(format!("{}: {e}", ran.args));
                "unreadable report".to_string()
            }
        },
        _ => {
            problems.extend(failure_problems(ran));
            ran.stderr.trim().chars().take(140).collect()
        }
    };
    (summary, problems)
}

fn judge_partial_report(
    ran: &Ran,
    report: &Report,
    recording: &Recording,
    notes_cut: bool,
    problems: &mut Vec<String>,
) -> String {
    if ran.code != Some(PARTIAL) {
        problems.push("exit 0, but the core lost data: exit 1 (partial) is due".to_string());
    }
    if !report.warnings.iter().any(|w| w.contains("truncated")) {
        problems.push(format!(
            "no warning says the core is truncated: {:?}",
            report.warnings
        ));
    }
    let reported: std::collections::BTreeSet<u64> = report.threads.iter().map(|t| t.tid).collect();
    // Cut notes lose the threads written after the cut, never invent one.
    let threads_ok = if notes_cut {
        !reported.is_empty() && reported.is_subset(&recording.tids())
    } else {
        reported == recording.tids()
    };
    if !threads_ok {
        problems.push(format!(
            "threads {reported:?}, but the process had {:?} (notes cut: {notes_cut})",
            recording.tids()
        ));
    }
    let thread_warnings = |tid: u64| -> Vec<String> {
        report.doc["threads"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tid"].as_u64() == Some(tid))
            .and_then(|t| t["warnings"].as_array())
            .map(|w| {
                w.iter()
                    .filter_map(|w| support::stacks::warning_message(w).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut shown = Vec::new();
    for thread in &report.threads {
        let Some(recorded) = recording.thread(thread.tid) else {
            continue;
        };
        let (expected, got) = (&recorded.frames, &thread.frames);
        let prefix = got.len() <= expected.len()
            && expected.iter().zip(got).all(|(e, g)| frame_matches(e, g));
        if !prefix {
            problems.push(format!(
                "thread {}: frames that are not the process's innermost frames:\n{}",
                thread.tid,
                frame_diff(expected, got)
            ));
        } else if got.len() < expected.len() && thread_warnings(thread.tid).is_empty() {
            problems.push(format!(
                "thread {}: {} of its {} frames, without a warning on the thread saying why",
                thread.tid,
                got.len(),
                expected.len()
            ));
        }
        shown.push(if got.len() == expected.len() {
            "all".to_string()
        } else {
            format!("{}/{}", got.len(), expected.len())
        });
    }
    format!("frames per thread: {}", shown.join(" "))
}

/// judge_partial_report on hand-written reports of a cut core: the recorded
/// frames, or the innermost of them with a warning on the thread, pass;
/// anything else is one problem each.
#[test]
fn cut_judgement_accepts_only_innermost_frames() {
    use std::os::unix::process::ExitStatusExt;
    let frame = |function: &str, line: u64| {
        format!(
            r#"{{"function": "{function}", "qualname": null, "file": "/s/a.py", "line": {line}}}"#
        )
    };
    let (inner, outer, made_up) = (frame("inner", 3), frame("outer", 9), frame("other", 1));
    let recording = Recording::parse(&format!(
        r#"{{"python_version": "3.12.1", "threads": [
            {{"tid": 1, "name": "MainThread", "frames": [{inner}, {outer}]}},
            {{"tid": 2, "name": "worker", "frames": [{inner}]}}]}}"#
    ))
    .unwrap();
    let truncated = r#"[{"kind": "core-truncated", "message": "the core is truncated: …"}]"#;
    let problems = |code: i32, frames: &[&String], warnings: &str, process: &str, both: bool| {
        let frames: Vec<&str> = frames.iter().map(|f| f.as_str()).collect();
        let mut threads = vec![format!(
            r#"{{"tid": 1, "name": "MainThread", "python": true, "frames": [{}], "warnings": {warnings}}}"#,
            frames.join(", ")
        )];
        if both {
            threads.push(format!(
                r#"{{"tid": 2, "name": "worker", "python": true, "frames": [{inner}], "warnings": []}}"#
            ));
        }
        let stdout = format!(
            r#"{{"schema_version": 2, "threads": [{}], "warnings": {process}}}"#,
            threads.join(", ")
        );
        let ran = Ran {
            args: "pycore analyze cut".to_string(),
            code: Some(code),
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.clone().into_bytes(),
            stderr: String::new(),
            elapsed: Duration::ZERO,
        };
        let report = Report::parse(stdout.as_bytes()).unwrap();
        let mut found = Vec::new();
        judge_partial_report(&ran, &report, &recording, false, &mut found);
        found
    };
    let why = r#"[{"kind": "stack-cut", "message": "frame 1 is unreadable"}]"#;
    assert_eq!(
        problems(1, &[&inner, &outer], "[]", truncated, true),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(1, &[&inner], why, truncated, true),
        Vec::<String>::new()
    );
    assert_eq!(problems(1, &[], why, truncated, true), Vec::<String>::new());
    for (what, found) in [
        (
            "cut short without a warning",
            problems(1, &[&inner], "[]", truncated, true),
        ),
        (
            "an outer frame alone",
            problems(1, &[&outer], why, truncated, true),
        ),
        (
            "a made-up frame",
            problems(1, &[&made_up, &outer], why, truncated, true),
        ),
        (
            "a frame too many",
            problems(1, &[&inner, &outer, &made_up], why, truncated, true),
        ),
        (
            "exit 0",
            problems(0, &[&inner, &outer], "[]", truncated, true),
        ),
        (
            "no truncation warning",
            problems(1, &[&inner, &outer], "[]", "[]", true),
        ),
        (
            "a thread missing",
            problems(1, &[&inner, &outer], "[]", truncated, false),
        ),
    ] {
        assert_eq!(found.len(), 1, "{what}: {found:#?}");
    }
}

// ---- hostile hand-made cores ---------------------------------------------------

/// Small hand-made x86_64 ELF cores whose headers and notes lie: each must
/// end within RUN_LIMIT in exit 3, 4 or 5 with one line on stderr, under a
/// 1 GiB address-space limit (an allocation sized by a count read from the
/// file would fail it and abort).
#[test]
fn hostile_handmade_cores() {
    let dir = TestDir::new("inputs-hostile");
    let mut table = String::new();
    let mut problems = Vec::new();
    for (name, bytes) in hostile_cores() {
        let path = dir.join(&format!(
            "{}.core",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        ));
        fs::write(&path, &bytes).unwrap();
        let ran = pycore_limited(&dir, &[OsString::from("analyze"), path.into()]);
        let _ = writeln!(
            table,
            "  {:62} {:>9} B  exit {:<4} {:5.2} s  {}",
            name,
            bytes.len(),
            ran.code.map_or("-".to_string(), |c| c.to_string()),
            ran.elapsed.as_secs_f64(),
            ran.stderr
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(120)
                .collect::<String>()
        );
        match ran.code {
            Some(NOT_A_CORE | NOT_PYTHON | WRONG_BINARY) => problems.extend(
                failure_problems(&ran)
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            ),
            _ => problems.push(format!(
                "{name}: {} (allowed: exit 3, 4, 5); stderr: {}",
                ran.status,
                ran.stderr.trim()
            )),
        }
    }
    println!("hand-made cores:\n{table}");
    assert!(
        problems.is_empty(),
        "files kept in {}:\n{}",
        dir.path().display(),
        problems.join("\n")
    );
    dir.remove();
}

/// (what it is, its bytes).
fn hostile_cores() -> Vec<(String, Vec<u8>)> {
    const PN_XNUM: u16 = 0xffff;
    let thread = || note(b"CORE", NT_PRSTATUS, &prstatus(4242));
    let true_binary = "/bin/true";
    // What an NT_FILE of a process running /bin/true (an ELF that is not
    // Python) could say, with auxv pointing into it.
    let process = |files: Vec<u8>| -> Vec<u8> {
        let mut notes = thread();
        notes.extend(note(
            b"CORE",
            NT_AUXV,
            &auxv(&[(AT_PHDR, 0x40_0040), (0, 0)]),
        ));
        notes.extend(note(b"CORE", NT_FILE, &files));
        notes
    };
    let true_mapped = file_note(4096, &[(0x40_0000, 0x40_1000, 0, true_binary)]);
    let mut cores = Vec::new();

    // Program headers.
    let mut xnum = elf_header(64 + 64, PN_XNUM, 56, 64, 1);
    xnum.extend(section_header_with_info(u32::MAX));
    cores.push((
        "PN_XNUM: 4294967295 program headers (section 0's sh_info)".to_string(),
        xnum,
    ));
    cores.push((
        "PN_XNUM with its section header past the end".to_string(),
        elf_header(64, PN_XNUM, 56, 1 << 40, 1),
    ));
    let mut many = elf_header(64, 0xfffe, 56, 0, 0);
    many.extend(phdr(PT_NOTE, 64, 0, 0, 0));
    cores.push(("65534 program headers in a 120-byte file".to_string(), many));
    cores.push((
        "program headers at offset 2^64 - 8".to_string(),
        elf_header(u64::MAX - 7, 4, 56, 0, 0),
    ));
    cores.push((
        "e_phentsize 0 with 65534 program headers".to_string(),
        elf_header(64, 0xfffe, 0, 0, 0),
    ));
    cores.push((
        "e_phentsize 65535".to_string(),
        elf_header(64, 2, 0xffff, 0, 0),
    ));
    // 100 000 real program headers (PN_XNUM), every PT_LOAD claiming 1 TiB
    // at address 0 and at file offset 0, then the notes of /bin/true.
    {
        let count = 100_000u32;
        let notes = process(true_mapped.clone());
        let table_end = 64 + 64 + 56 * u64::from(count);
        let mut bytes = elf_header(128, PN_XNUM, 56, 64, 1);
        bytes.extend(section_header_with_info(count));
        bytes.extend(phdr(PT_NOTE, table_end, 0, notes.len() as u64, 0));
        for _ in 1..count {
            bytes.extend(phdr(PT_LOAD, 0, 0, 1 << 40, 1 << 40));
        }
        bytes.extend(notes);
        cores.push((
            "100000 program headers, PT_LOADs of 1 TiB overlapping".to_string(),
            bytes,
        ));
    }

    // Notes.
    cores.push((
        "PT_NOTE at offset 2^40, past the end".to_string(),
        core_with(vec![(PT_NOTE, Placed::At(1 << 40, 4096))], Vec::new()),
    ));
    cores.push((
        "PT_NOTE whose end overflows 2^64".to_string(),
        core_with(vec![(PT_NOTE, Placed::At(u64::MAX - 16, 64))], Vec::new()),
    ));
    cores.push((
        "PT_NOTE of 2^63 bytes starting in the file".to_string(),
        core_with(vec![(PT_NOTE, Placed::Grown(1 << 63))], thread()),
    ));
    let mut lying = raw_note(5, 0xffff_fff0, NT_PRSTATUS, b"CORE\0\0\0\0");
    lying.extend(prstatus(1));
    cores.push((
        "a note claiming a 4 GiB descriptor".to_string(),
        core_with(vec![(PT_NOTE, Placed::Here)], lying),
    ));
    cores.push((
        "a note claiming a 4 GiB name".to_string(),
        core_with(
            vec![(PT_NOTE, Placed::Here)],
            raw_note(0xffff_fff0, 336, NT_PRSTATUS, &[0; 344]),
        ),
    ));
    cores.push((
        "a 1-byte NT_PRSTATUS".to_string(),
        core_with(
            vec![(PT_NOTE, Placed::Here)],
            note(b"CORE", NT_PRSTATUS, &[1]),
        ),
    ));

    // NT_FILE.
    let mut huge = Vec::new();
    put_u64(&mut huge, 1 << 60);
    put_u64(&mut huge, 4096);
    for value in [0x40_0000u64, 0x40_1000, 0] {
        put_u64(&mut huge, value);
    }
    huge.extend(b"/bin/true\0");
    cores.push((
        "NT_FILE counting 2^60 files (holding one)".to_string(),
        core_with(vec![(PT_NOTE, Placed::Here)], process(huge)),
    ));
    let mut pages = Vec::new();
    put_u64(&mut pages, 1 << 28);
    put_u64(&mut pages, 1 << 63);
    for _ in 0..1000 {
        for value in [u64::MAX - 4096, 4096, u64::MAX] {
            put_u64(&mut pages, value);
        }
    }
    cores.push((
        "NT_FILE: 2^28 files, pages of 2^63 bytes, ends before starts, no names".to_string(),
        core_with(vec![(PT_NOTE, Placed::Here)], process(pages)),
    ));
    cores.push((
        "NT_FILE naming a python that does not exist".to_string(),
        core_with(
            vec![(PT_NOTE, Placed::Here)],
            process(file_note(
                4096,
                &[(0x40_0000, 0x40_1000, 0, "/no/such/dir/bin/python3.12")],
            )),
        ),
    ));

    // Threads and memory.
    {
        let mut notes = Vec::new();
        for tid in 0..30_000 {
            notes.extend(note(b"CORE", NT_PRSTATUS, &prstatus(tid)));
        }
        notes.extend(process(true_mapped.clone()));
        cores.push((
            "30000 threads of /bin/true".to_string(),
            core_with(vec![(PT_NOTE, Placed::Here)], notes),
        ));
    }
    cores.push((
        "PT_LOADs wrapping past 2^64, /bin/true".to_string(),
        core_with(
            vec![
                (PT_NOTE, Placed::Here),
                (PT_LOAD, Placed::Load(u64::MAX - 0xfff, 0x10_0000)),
                (PT_LOAD, Placed::Load(0x40_0000, u64::MAX)),
            ],
            process(true_mapped.clone()),
        ),
    ));
    let mut big_endian = core_with(vec![(PT_NOTE, Placed::Here)], thread());
    big_endian[5] = 2;
    cores.push(("a big-endian core".to_string(), big_endian));
    let mut class32 = core_with(vec![(PT_NOTE, Placed::Here)], thread());
    class32[4] = 1;
    cores.push(("a 32-bit core".to_string(), class32));
    cores
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_PRSTATUS: u32 = 1;
const NT_AUXV: u32 = 6;
const NT_FILE: u32 = 0x4649_4c45;
const AT_PHDR: u64 = 3;

/// Where a program header's bytes are.
enum Placed {
    /// The notes (`body`) right after the program headers.
    Here,
    /// The notes' offset, with this size claimed.
    Grown(u64),
    /// Offset and size, whatever the file holds.
    At(u64, u64),
    /// A PT_LOAD at this address of this size, with no bytes in the file.
    Load(u64, u64),
}

/// An x86_64 core: ELF header, the program headers, then `body`.
fn core_with(headers: Vec<(u32, Placed)>, body: Vec<u8>) -> Vec<u8> {
    let body_at = 64 + 56 * headers.len() as u64;
    let mut bytes = elf_header(64, headers.len() as u16, 56, 0, 0);
    for (kind, placed) in headers {
        bytes.extend(match placed {
            Placed::Here => phdr(kind, body_at, 0, body.len() as u64, 0),
            Placed::Grown(size) => phdr(kind, body_at, 0, size, 0),
            Placed::At(offset, size) => phdr(kind, offset, 0, size, 0),
            Placed::Load(vaddr, size) => phdr(kind, body_at, vaddr, 0, size),
        });
    }
    bytes.extend(body);
    bytes
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend(value.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend(value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend(value.to_le_bytes());
}

/// Elf64_Ehdr of a little-endian x86_64 ET_CORE.
fn elf_header(phoff: u64, phnum: u16, phentsize: u16, shoff: u64, shnum: u16) -> Vec<u8> {
    let mut h = b"\x7fELF\x02\x01\x01".to_vec();
    h.resize(16, 0);
    put_u16(&mut h, 4); // ET_CORE
    put_u16(&mut h, 62); // EM_X86_64
    put_u32(&mut h, 1);
    put_u64(&mut h, 0); // e_entry
    put_u64(&mut h, phoff);
    put_u64(&mut h, shoff);
    put_u32(&mut h, 0); // e_flags
    put_u16(&mut h, 64); // e_ehsize
    put_u16(&mut h, phentsize);
    put_u16(&mut h, phnum);
    put_u16(&mut h, 64); // e_shentsize
    put_u16(&mut h, shnum);
    put_u16(&mut h, 0); // e_shstrndx
    h
}

/// Elf64_Shdr 0, whose sh_info holds the program header count under PN_XNUM.
fn section_header_with_info(info: u32) -> Vec<u8> {
    let mut s = vec![0u8; 44];
    put_u32(&mut s, info);
    s.resize(64, 0);
    s
}

/// Elf64_Phdr.
fn phdr(kind: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Vec<u8> {
    let mut p = Vec::new();
    put_u32(&mut p, kind);
    put_u32(&mut p, 4); // PF_R
    put_u64(&mut p, offset);
    put_u64(&mut p, vaddr);
    put_u64(&mut p, 0);
    put_u64(&mut p, filesz);
    put_u64(&mut p, memsz);
    put_u64(&mut p, 1);
    p
}

/// An ELF note: name (NUL added) and descriptor, each padded to 4 bytes.
fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    put_u32(&mut n, name.len() as u32 + 1);
    put_u32(&mut n, desc.len() as u32);
    put_u32(&mut n, kind);
    n.extend(name);
    n.push(0);
    n.resize(n.len().next_multiple_of(4), 0);
    n.extend(desc);
    n.resize(n.len().next_multiple_of(4), 0);
    n
}

/// A note header with sizes that need not match what follows.
fn raw_note(namesz: u32, descsz: u32, kind: u32, rest: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    put_u32(&mut n, namesz);
    put_u32(&mut n, descsz);
    put_u32(&mut n, kind);
    n.extend(rest);
    n
}

/// x86_64 `struct elf_prstatus` (336 bytes) of thread `tid`.
fn prstatus(tid: u32) -> Vec<u8> {
    let mut p = vec![0u8; 336];
    p[32..36].copy_from_slice(&tid.to_le_bytes()); // pr_pid
    p
}

fn auxv(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut a = Vec::new();
    for (key, value) in entries {
        put_u64(&mut a, *key);
        put_u64(&mut a, *value);
    }
    a
}

/// NT_FILE: count, page size, (start, end, page offset) each, then the names.
fn file_note(page_size: u64, files: &[(u64, u64, u64, &str)]) -> Vec<u8> {
    let mut f = Vec::new();
    put_u64(&mut f, files.len() as u64);
    put_u64(&mut f, page_size);
    for (start, end, pages, _) in files {
        put_u64(&mut f, *start);
        put_u64(&mut f, *end);
        put_u64(&mut f, *pages);
    }
    for (.., name) in files {
        f.extend(name.as_bytes());
        f.push(0);
    }
    f
}

/// A core of parked_threads.py run by a copy of `python`'s executable (`exe`) with the
/// libpython in `lib_dir` (LD_LIBRARY_PATH wins over its RUNPATH) and the stdlib of the
/// original prefix (PYTHONHOME, which -E would ignore: no -E here).
fn core_of_copied_python(
    python: &Interpreter,
    exe: &Path,
    lib_dir: &Path,
    dir: &TestDir,
) -> (Recording, Core) {
    let prefix = python.path.parent().and_then(Path::parent).unwrap();
    let mut command = Command::new(exe);
    command
        .args(["-s", "-B"])
        .arg(scenario_path("parked_threads.py"))
        .arg(record_path(dir))
        .env("LD_LIBRARY_PATH", lib_dir)
        .env("PYTHONHOME", prefix)
        .env_remove("PYTHONPATH")
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8");
    core_of_parked_command(
        &small_stacks(&command),
        dir,
        Take::GcoreOrKernel,
        &mut Progress::default(),
    )
    .unwrap_or_else(|e| panic!("core of {}: {e}", exe.display()))
}

// ---- running pycore --------------------------------------------------------------

/// One finished pycore run.
struct Ran {
    /// `pycore ARGS`, for messages.
    args: String,
    code: Option<i32>,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

impl Ran {
    /// The JSON report of a run that analysed the core (exit 0 or 1).
    fn report(&self) -> Value {
        assert!(
            matches!(self.code, Some(0 | PARTIAL)),
            "{}: {}; stderr: {}",
            self.args,
            self.status,
            self.stderr
        );
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON: {e}", self.args))
    }
}

fn json_args(core: &Path, extra: &[OsString]) -> Vec<OsString> {
    let mut args = vec![
        OsString::from("analyze"),
        core.as_os_str().to_owned(),
        OsString::from("--json"),
    ];
    args.extend_from_slice(extra);
    args
}

fn as_os_strs(args: &[OsString]) -> Vec<&OsStr> {
    args.iter().map(OsString::as_os_str).collect()
}

fn describe_args(args: &[OsString]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("pycore {}", words.join(" "))
}

/// Runs pycore (with TMPDIR if given), failing the test if it runs longer
/// than RUN_LIMIT.
fn pycore(dir: &TestDir, args: &[OsString], tmpdir: Option<&Path>) -> Ran {
    let env: Vec<(&str, &OsStr)> = tmpdir
        .map(|t| ("TMPDIR", t.as_os_str()))
        .into_iter()
        .collect();
    let start = Instant::now();
    let finished = run_pycore_with(&as_os_strs(args), &env, RUN_LIMIT, dir.path(), "pycore")
        .unwrap_or_else(|e| panic!("{}: {e}", describe_args(args)));
    Ran {
        args: describe_args(args),
        code: finished.code(),
        status: finished.status,
        stdout: finished.stdout,
        stderr: finished.stderr,
        elapsed: start.elapsed(),
    }
}

/// [`pycore`] under a 1 GiB address-space limit (`ulimit -v`), without
/// TMPDIR: an allocation sized by a count read from the file fails there
/// and aborts pycore (a signal, which the caller reports).
fn pycore_limited(dir: &TestDir, args: &[OsString]) -> Ran {
    const LIMIT_KIB: u64 = 1 << 20;
    let inner = pycore_command(&as_os_strs(args));
    let mut command = Command::new("bash");
    command
        .args([
            "-c",
            &format!("ulimit -v {LIMIT_KIB} && exec \"$@\""),
            "bash",
        ])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let start = Instant::now();
    let described = describe_args(args);
    match run_with_timeout(&mut command, RUN_LIMIT, dir.path(), "pycore") {
        Ok(finished) => Ran {
            args: described,
            code: finished.code(),
            status: finished.status,
            stdout: finished.stdout,
            stderr: finished.stderr,
            elapsed: start.elapsed(),
        },
        Err(e) => panic!("{described}: {e}"),
    }
}

/// What is wrong with a failed run: stderr must be one line starting with
/// "pycore:", with no panic and no backtrace.
fn failure_problems(ran: &Ran) -> Vec<String> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = ran.stderr.lines().collect();
    if lines.len() != 1 || !lines[0].starts_with("pycore:") {
        problems.push(format!(
            "{}: expected one line starting with \"pycore:\" on stderr, got {} lines:\n{}",
            ran.args,
            lines.len(),
            ran.stderr
        ));
    }
    let lower = ran.stderr.to_lowercase();
    for word in ["panicked", "backtrace"] {
        if lower.contains(word) {
            problems.push(format!("{}: {word:?} on stderr", ran.args));
        }
    }
    if ran.args.contains(" --json") {
        problems.extend(failed_json_problems(ran));
    }
    problems
}

/// With --json, a failed analysis still prints one document: `error` with the exit code, and,
/// once the core's notes were read (every failure but "not a core" and "unreadable"), what the
/// core says: the process and its threads.
fn failed_json_problems(ran: &Ran) -> Vec<String> {
    let doc: Value = match serde_json::from_slice(&ran.stdout) {
        Ok(doc) => doc,
        Err(e) => {
            return vec![format!(
                "{}: failed, and stdout is not one JSON document: {e}",
                ran.args
            )]
        }
    };
    let mut problems = Vec::new();
    let code = ran.code.map(i64::from);
    if doc["error"]["code"].as_i64() != code || !doc["error"]["message"].is_string() {
        problems.push(format!(
            "{}: exit {code:?}, but the JSON's error is {}",
            ran.args, doc["error"]
        ));
    }
    let core_read = !matches!(
        doc["error"]["kind"].as_str(),
        Some("not-a-core" | "unreadable")
    );
    let has_threads = doc["threads"].as_array().is_some_and(|t| !t.is_empty());
    if core_read && (doc["core"].is_null() || doc["crash"].is_null() || !has_threads) {
        problems.push(format!(
            "{}: the core was read ({}), but the JSON lacks its process, crash or threads",
            ran.args, doc["error"]["kind"]
        ));
    }
    problems
}

fn assert_clean_failure(ran: &Ran, codes: &[i32]) {
    let mut problems = failure_problems(ran);
    if !ran.code.is_some_and(|c| codes.contains(&c)) {
        problems.push(format!(
            "{}: {}, expected exit {codes:?}; stderr: {}",
            ran.args, ran.status, ran.stderr
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- interpreters and cores -------------------------------------------------------

/// The interpreter filling the wanted row `label` `linkage`, or None after
/// printing why it is missing (a failure with PYCORE_REQUIRE_ALL_PYTHONS=1).
fn interpreter(label: &str, linkage: Linkage) -> Option<Interpreter> {
    let wanted = interpreters::WANTED
        .iter()
        .find(|w| w.label() == label && w.linkage == linkage)
        .unwrap_or_else(|| panic!("{label} {linkage} is not a wanted row"));
    match interpreters::rows_for(found(), std::slice::from_ref(wanted), false).pop() {
        Some(Candidate::Found { interpreter, .. }) => Some(interpreter),
        _ => {
            skip(&wanted.why_missing());
            None
        }
    }
}

/// The interpreters on this machine, probed once per test process.
fn found() -> &'static [interpreters::Found] {
    static FOUND: OnceLock<Vec<interpreters::Found>> = OnceLock::new();
    FOUND.get_or_init(interpreters::discover)
}

fn skip(reason: &str) {
    assert!(
        !interpreters::require_all(),
        "{reason} ({}=1 requires it)",
        interpreters::REQUIRE_ALL_ENV
    );
    println!("skipped: {reason}");
}

/// A core of parked_threads.py under `python` (gcore's, or the kernel's
/// where gcore cannot read thread stacks), the recording, and pycore's
/// report of it, checked against the recording first: the later checks
/// compare with an analysis known to be right.
fn checked_parked_core(python: &Interpreter, dir: &TestDir) -> (Recording, Core, Value) {
    let command = python_run_command(python, &Run::new("parked_threads.py"), &record_path(dir));
    let (recording, core) = core_of_parked_command(
        &small_stacks(&command),
        dir,
        Take::GcoreOrKernel,
        &mut Progress::default(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "core of parked_threads.py under {}: {e}",
            python.path.display()
        )
    });
    let analysis = analyze_for(python, &core.path, dir.path()).unwrap();
    assert_judged(&recording, &core, &analysis, "the uncompressed core");
    let doc = analysis.report.doc.clone();
    (recording, core, doc)
}

/// `command` with 1 MiB thread stacks instead of 8 MiB: glibc sizes them by
/// RLIMIT_STACK, and gcore and the kernel dump them whole, so this makes the
/// scenarios' cores ~18 MB instead of ~75, quicker to compress and to cut.
fn small_stacks(command: &Command) -> Command {
    let mut outer = Command::new("bash");
    outer
        .args(["-c", "ulimit -s 1024 && exec \"$@\"", "bash"])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    outer
}

/// The stacks and facts of `analysis` are what the process recorded.
fn assert_judged(recording: &Recording, core: &Core, analysis: &Analysis, what: &str) {
    let expect = Expect::for_parked(core, recording, own_uid().unwrap()).unwrap();
    let verdict = judge(recording, analysis, &expect);
    assert!(
        verdict.passed(),
        "{what}: pycore's report differs from what the process recorded:\n{}\nnotes:\n{}",
        verdict.problems.join("\n"),
        verdict.notes.join("\n")
    );
}
