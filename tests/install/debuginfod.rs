//! Binaries from a debuginfod server: pyenv's 3.12 (python3.12 and libpython3.12.so) is copied
//! to `DIR/app`, a core of parked_threads.py run from there is taken, then the copies are moved
//! into a folder that Debian's `debuginfod -F` serves on this machine and nothing else holds:
//! the core's recorded paths no longer exist, so only the server can provide them.
//!
//! - With `$DEBUGINFOD_URLS` naming the server and `$DEBUGINFOD_CACHE_PATH` a fresh cache,
//!   pycore fetches both by the build-ids the core recorded into the elfutils layout
//!   (`CACHE/ID/executable`) and gives the recorded stacks; `local_path` names the cached files.
//! - Run again with the server stopped: the same report, from the cache alone.
//! - `--offline`: nothing is asked; exit 5, the binary is missing.
//! - A server without the files: exit 5, and the error says what the server answered.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::elf;
use crate::support::facts::Expect;
use crate::support::interpreters::{self, Candidate, Interpreter, Linkage};
use crate::support::matrix::Progress;
use crate::support::process::{own_uid, run_pycore_with, ChildGuard, TestDir, PYCORE_TIMEOUT};
use crate::support::scenario::{
    core_of_parked_command, judge, record_path, scenario_path, Analysis, Take,
};
use crate::support::stacks::{Recording, Report};

/// debuginfod scans a folder of two files in well under a second; a loaded machine is slower.
const INDEX_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn binaries_fetched_by_build_id_from_a_local_debuginfod() {
    let Some(server_binary) = find_on_path("debuginfod") else {
        skip("debuginfod is not installed (Debian's debuginfod package; .ci/run installs it)");
        return;
    };
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("debuginfod");
    let exe_name = python.path.file_name().unwrap().to_owned();
    let lib = libpython_of(&python.path);
    let app = dir.join("app");
    let (app_exe, app_lib) = (
        app.join("bin").join(&exe_name),
        app.join("lib").join(lib.file_name().unwrap()),
    );
    copy_into(&python.path, &app_exe);
    copy_into(&lib, &app_lib);
    let (recording, core) = core_of_copied_python(&python, &app_exe, &app.join("lib"), &dir);

    // The copies move into the served folder; the recorded paths are gone.
    let served = dir.join("served");
    fs::rename(&app, &served).unwrap();
    let exe_id = elf::build_id(&served.join("bin").join(&exe_name)).unwrap();
    let lib_id = elf::build_id(&served.join("lib").join(lib.file_name().unwrap())).unwrap();

    let port = free_port();
    let mut server_command = Command::new(server_binary);
    server_command
        .arg("-F")
        .arg(format!("-p{port}"))
        .arg("-d")
        .arg(dir.join("debuginfod.sqlite"))
        .args(["-t0", "-g0", "--disable-source-scan"])
        .arg(&served);
    let server = ChildGuard::spawn(&mut server_command, dir.path(), "debuginfod")
        .expect("debuginfod starts");
    let url = format!("http://127.0.0.1:{port}");
    for id in [&exe_id, &lib_id] {
        wait_until_served(&url, id)
            .unwrap_or_else(|e| panic!("debuginfod never served {id}: {e}\n{}", server_log(&dir)));
    }

    let cache = dir.join("client-cache");
    let env_for = |url: &str| -> Vec<(&'static str, OsString)> {
        vec![
            ("DEBUGINFOD_URLS", url.into()),
            ("DEBUGINFOD_CACHE_PATH", cache.clone().into_os_string()),
        ]
    };
    let expect = Expect::for_parked(&core, &recording, own_uid().unwrap()).unwrap();
    let check = |analysis: &Analysis, what: &str| {
        let verdict = judge(&recording, analysis, &expect);
        assert!(
            verdict.passed(),
            "{what}: the report differs from the recording:\n{}",
            verdict.problems.join("\n")
        );
        let doc = &analysis.report.doc;
        for (key, id) in [("executable", &exe_id), ("libpython", &lib_id)] {
            let local = cache.join(id).join("executable");
            assert_eq!(
                doc["python"][key]["local_path"].as_str(),
                local.to_str(),
                "{what}: python.{key}.local_path is the cached file"
            );
        }
    };

    let analysis = analyze(&core.path, &dir, &env_for(&url), &[], "fetched");
    check(&analysis, "fetched from debuginfod");
    println!(
        "fetched {exe_id} and {lib_id} from {url} into {}: the recorded stacks",
        cache.display()
    );

    drop(server);
    let analysis = analyze(&core.path, &dir, &env_for(&url), &[], "cached");
    check(&analysis, "from the cache, server stopped");
    println!("server stopped: the same report from the cache");

    // --offline asks nothing, even with the files cached: they are not this machine's.
    let offline = run(&core.path, &dir, &env_for(&url), &["--offline"], "offline");
    assert_eq!(offline.0, Some(5), "--offline: {}", offline.1);
    println!("--offline: exit 5: {}", offline.1.trim());

    // A server that does not have them (the port is closed now): exit 5 saying so.
    let empty_cache = dir.join("empty-cache");
    let env = vec![
        ("DEBUGINFOD_URLS", OsString::from(&url)),
        ("DEBUGINFOD_CACHE_PATH", empty_cache.into_os_string()),
    ];
    let failed = run(&core.path, &dir, &env, &[], "unreachable");
    assert_eq!(failed.0, Some(5), "{}", failed.1);
    assert!(
        failed.1.contains("debuginfod"),
        "the error names debuginfod: {}",
        failed.1
    );
    println!("server unreachable: exit 5: {}", failed.1.trim());
    dir.remove();
}

fn run(
    core: &Path,
    dir: &TestDir,
    env: &[(&str, OsString)],
    extra: &[&str],
    label: &str,
) -> (Option<i32>, String, Vec<u8>) {
    let mut args = vec![
        OsStr::new("analyze"),
        core.as_os_str(),
        OsStr::new("--json"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let finished = run_pycore_with(&args, &env, PYCORE_TIMEOUT, dir.path(), label)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    (finished.code(), finished.stderr.clone(), finished.stdout)
}

fn analyze(
    core: &Path,
    dir: &TestDir,
    env: &[(&str, OsString)],
    extra: &[&str],
    label: &str,
) -> Analysis {
    let (code, stderr, stdout) = run(core, dir, env, extra, label);
    let exit_code = match code {
        Some(code @ (0 | 1)) => code,
        other => panic!("{label}: pycore exited with {other:?}: {stderr}"),
    };
    let report = Report::parse(&stdout).unwrap_or_else(|e| panic!("{label}: {e}"));
    Analysis { exit_code, report }
}

/// Polls `URL/buildid/ID/executable` until the server has indexed the file.
fn wait_until_served(url: &str, build_id: &str) -> Result<(), String> {
    let address = url.trim_start_matches("http://");
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < INDEX_TIMEOUT {
        match http_status(address, &format!("/buildid/{build_id}/executable")) {
            Ok(200) => return Ok(()),
            Ok(code) => last = format!("HTTP {code}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("after {INDEX_TIMEOUT:?}, last answer: {last}"))
}

/// The status of `GET PATH` (debuginfod answers GET only), read from the status line.
fn http_status(address: &str, path: &str) -> Result<u32, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = [0u8; 64];
    let mut got = 0;
    while got < 16 {
        match stream.read(&mut answer[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let answer = String::from_utf8_lossy(&answer[..got]);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {answer:?}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn server_log(dir: &TestDir) -> String {
    let log = fs::read_to_string(dir.join("debuginfod.stderr")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// pyenv's layout: PREFIX/bin/pythonX.Y needs PREFIX/lib/libpythonX.Y.so.1.0.
fn libpython_of(executable: &Path) -> PathBuf {
    let bytes = fs::read(executable).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let name = elf
        .libraries
        .iter()
        .find(|l| l.starts_with("libpython"))
        .unwrap_or_else(|| panic!("{} needs no libpython", executable.display()));
    let prefix = executable.parent().and_then(Path::parent).unwrap();
    prefix.join("lib").join(name)
}

fn copy_into(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}

/// A core of parked_threads.py run by the copied executable with the copied libpython (the
/// executable's RUNPATH yields to LD_LIBRARY_PATH) and the original prefix's stdlib.
fn core_of_copied_python(
    python: &Interpreter,
    exe: &Path,
    lib_dir: &Path,
    dir: &TestDir,
) -> (Recording, crate::support::scenario::Core) {
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
    core_of_parked_command(&command, dir, Take::GcoreOrKernel, &mut Progress::default())
        .unwrap_or_else(|e| panic!("core of {}: {e}", exe.display()))
}

/// The interpreter filling the wanted row, or None after printing why it is missing (a
/// failure with PYCORE_REQUIRE_ALL_PYTHONS=1).
fn interpreter(label: &str, linkage: Linkage) -> Option<Interpreter> {
    static FOUND: OnceLock<Vec<interpreters::Found>> = OnceLock::new();
    let found = FOUND.get_or_init(interpreters::discover);
    let wanted = interpreters::WANTED
        .iter()
        .find(|w| w.label() == label && w.linkage == linkage)
        .unwrap_or_else(|| panic!("{label} {linkage} is not a wanted row"));
    match interpreters::rows_for(found, std::slice::from_ref(wanted), false).pop() {
        Some(Candidate::Found { interpreter, .. }) => Some(interpreter),
        _ => {
            skip(&wanted.why_missing());
            None
        }
    }
}

fn skip(reason: &str) {
    assert!(
        !interpreters::require_all(),
        "{reason} ({}=1 requires it)",
        interpreters::REQUIRE_ALL_ENV
    );
    println!("skipped: {reason}");
}
