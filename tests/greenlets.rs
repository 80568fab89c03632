//! Greenlets on real cores: tests/scenarios/greenlets.py, run with greenlet installed from PyPI
//! for each interpreter row (the newest wheel pip picks for it, cached in
//! ~/.cache/pycore-greenlet/ROW; a row with no wheel is skipped with pip's reason), parks
//! three suspended greenlets in nested functions on the main thread, whose main greenlet runs,
//! and on a worker thread a running greenlet with the worker's main greenlet suspended. The
//! process records each suspended greenlet's `gr_frame` chain, thread and `id()`, and each
//! thread's running greenlet; pycore's `greenlets` must list exactly those, on gcore's cores
//! and on the kernel's, and the threads' stacks must match as in `cores`. Two more matrices:
//! greenlet 1.x (its state in the `PyGreenlet` itself), and gevent (three gevent greenlets
//! parked in `gevent.sleep()` and the hub, beside the plain ones).

use crate::support;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::facts::Expect;
use support::interpreters::Interpreter;
use support::matrix::{check_wanted_rows, Outcome, Progress};
use support::process::{own_uid, run_with_timeout, TestDir};
use support::scenario::{
    analyze_with, core_of_parked_command, judge, outcome, python_run_command, record_path, Run,
    Take,
};
use support::stacks::Verdict;

const PIP_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn greenlets_match_what_the_process_recorded() {
    matrix(
        "greenlets on cores of tests/scenarios/greenlets.py",
        Take::GcoreOrKernel,
    );
}

#[test]
fn greenlets_match_on_kernel_cores() {
    matrix(
        "greenlets on kernel cores of tests/scenarios/greenlets.py",
        Take::Quit,
    );
}

/// greenlet 1.x keeps its state in the `PyGreenlet` itself (a C struct), not behind `pimpl`.
#[test]
fn greenlet_1_matches_on_cores() {
    matrix_of(
        "greenlet 1.x on cores of tests/scenarios/greenlets.py",
        Take::GcoreOrKernel,
        Greenlet::One,
    );
}

/// gevent's greenlets (subclasses of greenlet.greenlet, in Cython) and its hub, beside plain
/// greenlets.
#[test]
fn gevent_greenlets_match_on_cores() {
    matrix_of(
        "gevent on cores of tests/scenarios/greenlets.py",
        Take::GcoreOrKernel,
        Greenlet::Gevent,
    );
}

/// Which greenlet release pip installs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Greenlet {
    /// The newest with a wheel for the row.
    Newest,
    /// The newest 1.x.
    One,
    /// The newest gevent with a wheel for the row, and its greenlet.
    Gevent,
}

fn matrix(title: &str, take: Take) {
    matrix_of(title, take, Greenlet::Newest);
}

fn matrix_of(title: &str, take: Take, release: Greenlet) {
    check_wanted_rows(title, |python, progress| {
        check_row(python, progress, take, release)
    });
}

fn check_row(
    python: &Interpreter,
    progress: &mut Progress,
    take: Take,
    release: Greenlet,
) -> Outcome {
    let pip_dir = TestDir::new(&format!(
        "greenlet-pip-{}-{}",
        python.label(),
        python.linkage
    ));
    let installed = install_greenlet(python, pip_dir.path(), release);
    pip_dir.remove();
    let site = match installed {
        Ok(site) => site,
        Err(reason) => return Outcome::Skipped { reason },
    };
    if release == Greenlet::Gevent {
        if let Err(reason) = gevent_runs(python, &site) {
            return Outcome::Skipped { reason };
        }
    }
    let how = if take == Take::Quit {
        "kernel"
    } else {
        "gcore"
    };
    let dir = TestDir::new(&format!(
        "greenlets-{how}-{}-{}{}",
        python.label(),
        python.linkage,
        match release {
            Greenlet::Newest => "",
            Greenlet::One => "-1",
            Greenlet::Gevent => "-gevent",
        }
    ));
    let result = core_and_judge(python, &site, &dir, progress, take, release);
    outcome(result, dir)
}

/// Where greenlet is installed for this row: ~/.cache/pycore-greenlet/LABEL-LINKAGE, filled by
/// the row's own pip, or, for an interpreter without pip, by the pip of the python3 on PATH
/// asked for the row's wheel tags. `Err`: why no wheel installs (the row is skipped).
fn install_greenlet(
    python: &Interpreter,
    dir: &std::path::Path,
    release: Greenlet,
) -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").ok_or("no HOME")?;
    let (requirement, suffix) = match release {
        Greenlet::Newest => ("greenlet", ""),
        Greenlet::One => ("greenlet<2", "-greenlet1"),
        Greenlet::Gevent => ("gevent", "-gevent"),
    };
    let site = PathBuf::from(home)
        .join(".cache/pycore-greenlet")
        .join(format!("{}-{}{suffix}", python.label(), python.linkage));
    if site.join("greenlet").is_dir() {
        return Ok(site);
    }
    let own_pip = run_with_timeout(
        Command::new(&python.path).args(["-m", "pip", "--version"]),
        PIP_TIMEOUT,
        dir,
        "pip-version",
    )
    .is_ok_and(|out| out.status.success());
    let mut command;
    if own_pip {
        command = Command::new(&python.path);
        command.args(["-m", "pip", "install"]);
    } else {
        let abi = run_with_timeout(
            Command::new(&python.path).args([
                "-c",
                "import sys; print('cp%d%d%s' % (sys.version_info[0], sys.version_info[1], getattr(sys, 'abiflags', '')))",
            ]),
            PIP_TIMEOUT,
            dir,
            "abi",
        )
        .map_err(|e| format!("probing the ABI: {e}"))?;
        let abi = String::from_utf8_lossy(&abi.stdout).trim().to_string();
        let version = format!("{}.{}", python.version.major, python.version.minor);
        command = Command::new("python3");
        command.args(["-m", "pip", "install", "--python-version"]);
        command
            .arg(&version)
            .args(["--implementation", "cp", "--abi"]);
        command
            .arg(&abi)
            .args(["--platform", "manylinux2014_x86_64"]);
    }
    command.args([
        "--disable-pip-version-check",
        "--quiet",
        "--no-warn-script-location",
        "--only-binary=:all:",
        "--target",
    ]);
    // Installed aside, then renamed: the two matrices may install for one row at once.
    let staging = dir.join("site");
    command.arg(&staging).arg(requirement);
    command.env("PIP_ROOT_USER_ACTION", "ignore");
    let out = run_with_timeout(&mut command, PIP_TIMEOUT, dir, "pip")
        .map_err(|e| format!("pip install greenlet: {e}"))?;
    if !out.status.success() || !staging.join("greenlet").is_dir() {
        let reason = out
            .stderr
            .lines()
            .rev()
            .find(|l| l.contains("ERROR"))
            .unwrap_or("no greenlet wheel installs")
            .to_string();
        return Err(format!("no greenlet wheel for this row: {reason}"));
    }
    if let Some(parent) = site.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    if std::fs::rename(&staging, &site).is_err() && !site.join("greenlet").is_dir() {
        return Err(format!("cannot move greenlet into {}", site.display()));
    }
    Ok(site)
}

/// Whether the installed gevent works on this row at all (gevent's last wheels for 2.7 fail
/// on their own: "Cannot construct a bare watcher").
fn gevent_runs(python: &Interpreter, site: &std::path::Path) -> Result<(), String> {
    let dir = TestDir::new(&format!(
        "gevent-probe-{}-{}",
        python.label(),
        python.linkage
    ));
    let probe = format!(
        "import sys; sys.path.insert(0, {:?}); import gevent; gevent.sleep(0.001)",
        site.to_string_lossy()
    );
    let out = run_with_timeout(
        Command::new(&python.path).args(["-E", "-s", "-c", &probe]),
        PIP_TIMEOUT,
        dir.path(),
        "probe",
    );
    dir.remove();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "gevent itself fails on this row: {}",
            out.stderr.lines().last().unwrap_or("?")
        )),
        Err(e) => Err(format!("gevent probe: {e}")),
    }
}

fn core_and_judge(
    python: &Interpreter,
    site: &std::path::Path,
    dir: &TestDir,
    progress: &mut Progress,
    take: Take,
    release: Greenlet,
) -> Result<Verdict, String> {
    let site_arg = site.to_string_lossy().into_owned();
    let with_gevent = [site_arg.as_str(), "gevent"];
    let without = [site_arg.as_str()];
    let args: &[&str] = if release == Greenlet::Gevent {
        &with_gevent
    } else {
        &without
    };
    let run = Run {
        args,
        ..Run::new("greenlets.py")
    };
    let command = python_run_command(python, &run, &record_path(dir));
    let (recording, core) = core_of_parked_command(&command, dir, take, progress)?;
    let mut truth_path = record_path(dir).into_os_string();
    truth_path.push(".greenlets.json");
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(&truth_path).map_err(|e| format!("{truth_path:?}: {e}"))?,
    )
    .map_err(|e| format!("greenlet recording: {e}"))?;
    let expect = Expect::for_parked(&core, &recording, own_uid()?)?;
    let extra: Vec<OsString> = python.pycore_args();
    let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|a| a.as_os_str()).collect();
    let analysis = analyze_with(&core.path, dir.path(), &extra)?;
    let mut verdict = judge(&recording, &analysis, &expect);
    if python.build.is_free_threaded() {
        // No lists of tracked objects: pycore says so and shows no suspended greenlet.
        let warned = analysis.report.doc["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["kind"] == "greenlets"));
        if !warned {
            verdict
                .problems
                .push("no warning that free-threaded builds hide greenlets".into());
        }
        verdict.caveat = Some("free-threaded: greenlets cannot be found (warned)".into());
    } else {
        verdict
            .problems
            .extend(greenlet_problems(&truth, &analysis.report.doc));
    }
    verdict.notes.push(format!(
        "greenlet {}",
        truth["greenlet_version"].as_str().unwrap_or("?")
    ));
    verdict.notes.extend(core.notes);
    Ok(verdict)
}

/// The recorded greenlets against pycore's `greenlets`.
fn greenlet_problems(truth: &Value, report: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let reported = report["greenlets"].as_array().unwrap_or(&empty);
    let by_address = |address: &Value| reported.iter().find(|g| g["address"] == *address);
    let suspended = truth["suspended"].as_array().unwrap_or(&empty);
    let running = truth["running"].as_array().unwrap_or(&empty);
    for want in suspended {
        let address = &want["address"];
        let Some(got) = by_address(address) else {
            problems.push(format!("suspended greenlet {address} not reported"));
            continue;
        };
        if got["running"] != false {
            problems.push(format!("greenlet {address} reported running"));
        }
        if got["thread"] != want["thread"] {
            problems.push(format!(
                "greenlet {address}: thread {} instead of {}",
                got["thread"], want["thread"]
            ));
        }
        let frames = |v: &Value| -> Vec<(String, String, i64)> {
            v.as_array()
                .unwrap_or(&Vec::new())
                .iter()
                .map(|f| {
                    (
                        f["function"].as_str().unwrap_or("").to_string(),
                        f["file"].as_str().unwrap_or("").to_string(),
                        f["line"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        };
        let (want_frames, got_frames) = (frames(&want["frames"]), frames(&got["frames"]));
        if want_frames != got_frames {
            problems.push(format!(
                "greenlet {address}: frames {got_frames:?} instead of {want_frames:?}"
            ));
        }
    }
    for want in running {
        let thread = &want["thread"];
        let entries: Vec<&Value> = reported
            .iter()
            .filter(|g| g["thread"] == *thread && g["running"] == true)
            .collect();
        let [entry] = entries.as_slice() else {
            problems.push(format!(
                "thread {thread}: {} running greenlets reported instead of one",
                entries.len()
            ));
            continue;
        };
        if entry["address"] != want["address"] {
            problems.push(format!(
                "thread {thread}: running greenlet {} instead of {}",
                entry["address"], want["address"]
            ));
        }
        let thread_frames = report["threads"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .find(|t| t["tid"] == *thread)
            .map(|t| t["frames"].clone());
        if thread_frames.as_ref() != Some(&entry["frames"]) {
            problems.push(format!(
                "thread {thread}: the running greenlet's frames are not the thread's"
            ));
        }
    }
    let expected = suspended.len() + running.len();
    if reported.len() != expected {
        problems.push(format!(
            "{} greenlets reported, {expected} recorded",
            reported.len()
        ));
    }
    problems
}
