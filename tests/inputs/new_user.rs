//! Messages and inputs that misled a new user (issue 8, section 4): each test
//! tries what a user would, on a real core, and checks pycore says what is
//! true (the expected values come from the process's recording or from the
//! filesystem, never from pycore's own output).

use super::*;
use support::scenario::core_of_parked;

/// A core of tests/scenarios/handling_exception.py under pyenv's 3.12, with
/// its recording.
fn handling_exception_core(dir: &TestDir) -> Option<(Recording, Core, Interpreter)> {
    let python = interpreter("3.12", Linkage::Shared)?;
    let (recording, core) = core_of_parked(
        &python,
        dir,
        &Run::new("handling_exception.py"),
        Take::GcoreOrKernel,
        &mut Progress::default(),
    )
    .unwrap_or_else(|e| panic!("core of handling_exception.py: {e}"));
    Some((recording, core, python))
}

/// `--format markdown` shows, in each thread's section, the exception it was
/// handling (type and message as the thread recorded them), as the text
/// format does; a thread handling none says nothing of the kind.
#[test]
fn markdown_shows_the_exception_being_handled() {
    let dir = TestDir::new("inputs-markdown-exception");
    let Some((recording, core, python)) = handling_exception_core(&dir) else {
        return;
    };
    let mut args = vec![
        OsString::from("analyze"),
        core.path.clone().into(),
        OsString::from("--format"),
        OsString::from("markdown"),
        OsString::from("--no-source"),
    ];
    args.extend(python.pycore_args());
    let ran = pycore(&dir, &args, None);
    assert!(
        matches!(ran.code, Some(0 | PARTIAL)),
        "{}: {}",
        ran.args,
        ran.stderr
    );
    let markdown = String::from_utf8(ran.stdout.clone()).unwrap();
    let messages: Vec<&str> = recording
        .threads
        .iter()
        .filter_map(|t| t.handling_exception.as_ref()?.as_ref()?.message.as_deref())
        .collect();
    let mut handling = 0;
    for thread in &recording.threads {
        let start = format!("<summary>Thread {}", thread.tid);
        let Some(at) = markdown.find(&start) else {
            continue;
        };
        let section = &markdown[at..];
        let section = &section[..section.find("</details>").unwrap_or(section.len())];
        match &thread.handling_exception {
            Some(Some(exception)) => {
                handling += 1;
                let message = exception.message.as_deref().unwrap_or("");
                assert!(
                    section.contains(&exception.type_name) && section.contains(message),
                    "{}: thread {} was handling {}: {message:?}, its section does not say so:\n{section}",
                    ran.args,
                    thread.tid,
                    exception.type_name
                );
            }
            _ => assert!(
                !messages.iter().any(|m| section.contains(m)),
                "{}: thread {} handled no exception, its section says it did:\n{section}",
                ran.args,
                thread.tid
            ),
        }
    }
    assert!(
        handling >= 3,
        "only {handling} handling threads found in:\n{markdown}"
    );
    println!("markdown: the {handling} threads' exceptions are shown");
    dir.remove();
}

/// `--format table` on a terminal of width 0 (a pseudo-terminal nobody sized,
/// made here by script(1) with no terminal on its input), and with
/// COLUMNS=0: every recorded thread name appears whole, on one line.
#[test]
fn table_on_a_terminal_of_width_zero_keeps_whole_cells() {
    let dir = TestDir::new("inputs-table-width");
    let Some((recording, core, python)) = handling_exception_core(&dir) else {
        return;
    };
    let names: Vec<&str> = recording
        .threads
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    assert!(
        names.iter().any(|n| n.len() > 8),
        "no long thread name: {names:?}"
    );
    let mut pycore_args = vec![
        OsString::from("analyze"),
        core.path.clone().into(),
        OsString::from("--format"),
        OsString::from("table"),
    ];
    pycore_args.extend(python.pycore_args());
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_pycore").to_string())
        .chain(pycore_args.iter().map(|a| a.to_string_lossy().into_owned()))
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let mut in_pty = Command::new("script");
    in_pty
        .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .env_remove("COLUMNS");
    let mut plain = pycore_command(&as_os_strs(&pycore_args));
    plain.env("COLUMNS", "0");
    for (what, mut command) in [
        ("in a 0x0 pseudo-terminal (script)", in_pty),
        ("with COLUMNS=0", plain),
    ] {
        let finished = run_with_timeout(&mut command, RUN_LIMIT, dir.path(), "table").unwrap();
        let out = finished.stdout_text();
        assert!(
            matches!(finished.code(), Some(0 | PARTIAL)),
            "table {what}: {}: {}{out}",
            finished.status,
            finished.stderr
        );
        for name in &names {
            assert!(
                out.lines().any(|line| line.contains(name)),
                "table {what}: thread name {name:?} is not whole on any line:\n{out}"
            );
        }
        println!("table {what}: all {} thread names whole", names.len());
    }
    dir.remove();
}

/// `--python` naming no readable file (a path that does not exist, a
/// directory, a file this user cannot read): exit 5, one line naming that
/// path and what is wrong with it, not the core's recorded executable.
#[test]
fn python_that_is_not_a_readable_file_is_named() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("inputs-python-missing");
    let (_, core, _) = checked_parked_core(&python, &dir);
    let missing = dir.join("no-such-dir/python");
    let unreadable = dir.join("unreadable-python");
    copy_into(&python.path, &unreadable);
    fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o000)).unwrap();
    let mut cases = vec![
        (missing.clone(), "does not exist"),
        (dir.path().to_path_buf(), "directory"),
    ];
    // root reads any file whatever its mode: the case cannot be made then.
    match fs::File::open(&unreadable) {
        Err(_) => cases.push((unreadable.clone(), "cannot be read")),
        Ok(_) => println!("skipped the unreadable --python: this user can read a mode 000 file"),
    }
    for (given, problem) in cases {
        let mut args = json_args(&core.path, &python.pycore_args());
        args.extend([OsString::from("--python"), given.clone().into()]);
        let ran = pycore(&dir, &args, None);
        assert_clean_failure(&ran, &[WRONG_BINARY]);
        let given_text = given.to_string_lossy();
        assert!(
            ran.stderr.contains(&*given_text) && ran.stderr.contains(problem),
            "{}: the error must name {given_text} and say it {problem}: {}",
            ran.args,
            ran.stderr.trim()
        );
        assert!(
            !ran.stderr.contains("not on this machine"),
            "{}: the core's executable is there; the error blames it: {}",
            ran.args,
            ran.stderr.trim()
        );
        println!("--python {given_text}: exit 5: {}", ran.stderr.trim());
    }
    dir.remove();
}

/// A copy of pyenv's 3.12 tree (bin/python3.12, lib/libpython3.12.so.1.0)
/// runs parked_threads.py and is deleted after its core is taken: the
/// recorded executable and libpython are gone. Two other copies of the same
/// build are passed as --python: one whose RUNPATH says `$ORIGIN/../libx` (its libpython is there),
/// one whose RUNPATH names a folder that does not exist (so only
/// `dirname(BIN)/../lib` leads to its libpython); the RUNPATHs are rewritten
/// in place, which leaves the build-id alone. Each analysis finds the
/// libpython next to the --python given and has the recorded stacks.
#[test]
fn libpython_found_where_the_python_given_links_it() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("inputs-python-runpath");
    let (exe_name, lib_name) = (file_name(&python.path), libpython_name(&python.path));
    let original_lib = libpython_path(&python.path);
    let tree = |name: &str| {
        let root = dir.join(name);
        let (exe, lib) = (
            root.join("bin").join(&exe_name),
            root.join("lib").join(&lib_name),
        );
        copy_into(&python.path, &exe);
        copy_into(&original_lib, &lib);
        (root, exe, lib)
    };
    let (ran_tree, ran_exe, _) = tree("ran");
    // Not ../lib, so that only the expanded $ORIGIN leads there.
    let (origin_tree, origin_exe, _) = tree("origin");
    fs::rename(origin_tree.join("lib"), origin_tree.join("libx")).unwrap();
    let origin_lib = origin_tree.join("libx").join(&lib_name);
    let (_, plain_exe, plain_lib) = tree("plain");
    rewrite_runpath(&origin_exe, "$ORIGIN/../libx");
    rewrite_runpath(&plain_exe, "/nonexistent-runpath");

    let (recording, core) = core_of_copied_python(&python, &ran_exe, &ran_tree.join("lib"), &dir);
    fs::remove_dir_all(&ran_tree).unwrap();

    for (exe, lib, what) in [
        (&origin_exe, &origin_lib, "RUNPATH $ORIGIN/../libx"),
        (
            &plain_exe,
            &plain_lib,
            "RUNPATH of a missing folder, ../lib",
        ),
    ] {
        let mut args: Vec<OsString> = python.pycore_args();
        args.extend([OsString::from("--python"), exe.clone().into()]);
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let analysis =
            analyze_with(&core.path, dir.path(), &args).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_judged(&recording, &core, &analysis, what);
        let doc = &analysis.report.doc;
        assert_eq!(
            doc["python"]["libpython"]["local_path"].as_str(),
            lib.to_str(),
            "{what}: python.libpython.local_path must be the copy next to --python {}",
            exe.display()
        );
        println!(
            "--python {} ({what}): libpython {}",
            exe.display(),
            lib.display()
        );
    }
    dir.remove();
}

/// Overwrites `executable`'s DT_RUNPATH string with `new` (no longer than
/// it, padded with NULs): ld.so reads up to the first NUL.
fn rewrite_runpath(executable: &Path, new: &str) {
    let mut bytes = fs::read(executable).unwrap();
    let old = {
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        let runpath = elf.runpaths.first().expect("a RUNPATH").to_string();
        runpath
    };
    assert!(new.len() <= old.len(), "{new:?} is longer than {old:?}");
    let mut needle = old.clone().into_bytes();
    needle.push(0);
    let at: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "{old:?} is not once in {}",
        executable.display()
    );
    let mut replacement = new.as_bytes().to_vec();
    replacement.resize(needle.len(), 0);
    bytes[at[0]..at[0] + needle.len()].copy_from_slice(&replacement);
    fs::write(executable, bytes).unwrap();
    let elf_bytes = fs::read(executable).unwrap();
    let elf = goblin::elf::Elf::parse(&elf_bytes).unwrap();
    assert_eq!(elf.runpaths, vec![new], "{}", executable.display());
}

/// A core of Debian's static /usr/bin/python3.11 (no libpython mapped),
/// analysed with --python of pyenv's 3.11 launcher (it needs libpython:
/// DT_NEEDED): exit 5, with or without --allow-mismatch, one line naming
/// the launcher and the libpython it links, never "not a Python process".
#[test]
fn launcher_given_for_a_static_python_core() {
    let Some(static_python) = interpreter("3.11", Linkage::Static) else {
        return;
    };
    let Some(launcher) =
        interpreter("3.11", Linkage::Shared).or_else(|| interpreter("3.12", Linkage::Shared))
    else {
        return;
    };
    let dir = TestDir::new("inputs-static-launcher");
    let (_, core, _) = checked_parked_core(&static_python, &dir);
    let needed = libpython_name(&launcher.path);
    for allow in [false, true] {
        let mut args = json_args(&core.path, &[]);
        args.extend([OsString::from("--python"), launcher.path.clone().into()]);
        if allow {
            args.push(OsString::from("--allow-mismatch"));
        }
        let ran = pycore(&dir, &args, None);
        assert_clean_failure(&ran, &[WRONG_BINARY]);
        assert!(
            ran.stderr.contains(&*launcher.path.to_string_lossy()) && ran.stderr.contains(&needed),
            "{}: the error must name the launcher and {needed}: {}",
            ran.args,
            ran.stderr.trim()
        );
        println!("{}: exit 5: {}", ran.args, ran.stderr.trim());
    }
    dir.remove();
}

/// The core through a pipe: `cat core | pycore analyze -`, `zstd -dc
/// core.zst | pycore analyze -` (here: the bytes written to pycore's
/// standard input, plain and zstd-compressed), `pycore analyze /dev/stdin`
/// on a pipe, and a FIFO's path: each gives exactly the report of the core
/// file (but for core.path: `<stdin>` for `-`, the path given otherwise),
/// and leaves nothing in TMPDIR.
#[test]
fn core_from_a_pipe_or_a_fifo() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("inputs-pipe");
    let (_, core, expected) = checked_parked_core(&python, &dir);
    let zstd = COMPRESSORS.iter().find(|c| c.tool == "zstd").unwrap();
    let compressed = compress(zstd, &core.path, &dir);
    let tmpdir = dir.join("tmpdir");
    fs::create_dir(&tmpdir).unwrap();
    let extra = python.pycore_args();

    for (what, input, core_arg, path) in [
        ("plain core on stdin, `-`", &core.path, "-", "<stdin>"),
        ("zstd core on stdin, `-`", &compressed, "-", "<stdin>"),
        (
            "plain core on stdin, /dev/stdin",
            &core.path,
            "/dev/stdin",
            "/dev/stdin",
        ),
    ] {
        let args = json_args(Path::new(core_arg), &extra);
        let (code, stdout, stderr) = pycore_fed(&dir, &args, &tmpdir, Feed::Stdin(input));
        let doc = fed_report(code, &stdout, &stderr, what);
        assert_same_report(&expected, &doc, what);
        assert_eq!(
            doc["core"]["path"].as_str(),
            Some(path),
            "{what}: core.path"
        );
        assert_left_nothing_after(&tmpdir, what);
        println!("{what}: same report, core.path {path}");
    }
    let fifo = dir.join("core.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    for (what, input) in [
        ("plain core through a FIFO", &core.path),
        ("zstd core through a FIFO", &compressed),
    ] {
        let args = json_args(&fifo, &extra);
        let (code, stdout, stderr) = pycore_fed(&dir, &args, &tmpdir, Feed::Fifo(&fifo, input));
        let doc = fed_report(code, &stdout, &stderr, what);
        assert_same_report(&expected, &doc, what);
        assert_eq!(
            doc["core"]["path"].as_str(),
            fifo.to_str(),
            "{what}: core.path"
        );
        assert_left_nothing_after(&tmpdir, what);
        println!("{what}: same report");
    }
    dir.remove();
}

/// How [`pycore_fed`] gives pycore the core's bytes.
enum Feed<'a> {
    /// Written to its standard input (a pipe).
    Stdin(&'a Path),
    /// Written into the FIFO (whose path is in the arguments).
    Fifo(&'a Path, &'a Path),
}

/// Runs pycore while a thread writes a file's bytes into its standard input
/// or a FIFO; killed after RUN_LIMIT. Returns (exit code, stdout, stderr).
fn pycore_fed(
    dir: &TestDir,
    args: &[OsString],
    tmpdir: &Path,
    feed: Feed,
) -> (Option<i32>, Vec<u8>, String) {
    use std::io::Write as _;
    use std::process::Stdio;
    let (out, err) = (dir.join("fed.stdout"), dir.join("fed.stderr"));
    let mut command = pycore_command(&as_os_strs(args));
    command
        .env("TMPDIR", tmpdir)
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .stdin(match feed {
            Feed::Stdin(_) => Stdio::piped(),
            Feed::Fifo(..) => Stdio::null(),
        });
    let mut child = command.spawn().unwrap();
    let stdin = child.stdin.take();
    let (fifo, source) = match feed {
        Feed::Stdin(source) => (None, source.to_path_buf()),
        Feed::Fifo(fifo, source) => (Some(fifo.to_path_buf()), source.to_path_buf()),
    };
    let fifo_for_writer = fifo.clone();
    let writer = thread::spawn(move || {
        let mut sink: Box<dyn std::io::Write> = match (stdin, fifo_for_writer) {
            (Some(stdin), _) => Box::new(stdin),
            // Opening a FIFO for writing waits for its reader: pycore (or the unblocking below).
            (None, Some(fifo)) => Box::new(fs::OpenOptions::new().write(true).open(fifo).unwrap()),
            (None, None) => unreachable!(),
        };
        // pycore stops reading once it has what the headers describe.
        let _ = sink.write_all(&fs::read(source).unwrap());
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}: still running after {RUN_LIMIT:?}", describe_args(args));
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let (Some(fifo), false) = (&fifo, writer.is_finished()) {
        // pycore exited without opening the FIFO: a reader that gives up at once frees the writer.
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        let _ = fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open(fifo);
    }
    writer.join().unwrap();
    (
        status.code(),
        fs::read(&out).unwrap(),
        fs::read_to_string(&err).unwrap(),
    )
}

fn fed_report(code: Option<i32>, stdout: &[u8], stderr: &str, what: &str) -> Value {
    assert!(
        matches!(code, Some(0 | PARTIAL)),
        "{what}: exit {code:?}; stderr: {stderr}"
    );
    serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("{what}: stdout is not JSON: {e}"))
}

/// Source lines from the sysroot: parked_threads.py (and the modules it imports)
/// run from a copy in `DIR/app`; after the core is taken the copy is moved
/// to `SYSROOT/DIR/app`, and a different file (each line marked "# HOST")
/// is put at the recorded path, standing for the host's file of another
/// version. Without --sysroot the frames of parked_threads.py show the
/// host's lines; with --sysroot SYSROOT they show the sysroot's, exactly the
/// lines of that file at the recorded line numbers.
#[test]
fn sysroot_serves_source_lines_before_the_host() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let dir = TestDir::new("inputs-sysroot-source");
    let app = dir.join("app");
    for name in [
        "parked_threads.py",
        "recording.py",
        "données.py",
        "données_py2.py",
    ] {
        copy_into(&scenario_path(name), &app.join(name));
    }
    let script = app.join("parked_threads.py");
    let mut command = Command::new(&python.path);
    command
        .args(["-E", "-s", "-B"])
        .arg(&script)
        .arg(record_path(&dir))
        .env("MALLOC_ARENA_MAX", "1")
        .env("LC_ALL", "C.UTF-8")
        .envs(python.scenario_env());
    let (recording, core) = core_of_parked_command(
        &small_stacks(&command),
        &dir,
        Take::GcoreOrKernel,
        &mut Progress::default(),
    )
    .unwrap_or_else(|e| panic!("core of {}: {e}", script.display()));

    let sysroot = dir.join("sysroot");
    let moved = sysroot.join(app.strip_prefix("/").unwrap());
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&app, &moved).unwrap();
    let in_sysroot: Vec<String> = fs::read_to_string(moved.join("parked_threads.py"))
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let host: String = in_sysroot
        .iter()
        .map(|l| format!("{l}  # HOST\n"))
        .collect();
    fs::create_dir_all(&app).unwrap();
    fs::write(&script, host).unwrap();

    let script_text = script.to_str().unwrap();
    let recorded_lines: Vec<u64> = recording
        .threads
        .iter()
        .flat_map(|t| &t.frames)
        .filter(|f| f.file == script_text)
        .filter_map(|f| f.line)
        .collect();
    assert!(
        !recorded_lines.is_empty(),
        "no frame of {script_text} recorded"
    );

    for with_sysroot in [false, true] {
        let mut args: Vec<OsString> = python.pycore_args();
        if with_sysroot {
            args.extend([OsString::from("--sysroot"), sysroot.clone().into()]);
        }
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let what = if with_sysroot {
            "--sysroot"
        } else {
            "no --sysroot"
        };
        let analysis =
            analyze_with(&core.path, dir.path(), &args).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_judged(&recording, &core, &analysis, what);
        let doc = &analysis.report.doc;
        let mut checked = 0;
        for frame in doc["threads"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["frames"].as_array().unwrap())
            .filter(|f| f["file"].as_str() == Some(script_text))
        {
            let line = frame["line"].as_u64().unwrap();
            let sysroot_line = &in_sysroot[line as usize - 1];
            let expected = if with_sysroot {
                sysroot_line.clone()
            } else {
                format!("{sysroot_line}  # HOST")
            };
            assert_eq!(
                frame["source"].as_str(),
                Some(expected.as_str()),
                "{what}: the source of {script_text} line {line}"
            );
            checked += 1;
        }
        assert!(
            checked > 0,
            "{what}: no frame of {script_text} in the report"
        );
        println!("{what}: {checked} frames of {script_text} show the expected lines");
    }
    dir.remove();
}

/// Binaries without a build-id: pyenv's 3.12 python3.12 and its libpython
/// copied with `objcopy --remove-section .note.gnu.build-id` run
/// parked_threads.py. pycore cannot compare build-ids, so it compares the
/// pages the core holds of each file: a warning for each, naming the core's
/// path and the local file, says what matched (the first page: ELF and
/// program headers) and what could not be compared; the stacks are the
/// recorded ones. Another version's files, stripped the same way and under
/// the same names, differ in those pages: as --python, exit 5 naming the
/// file and the core's path (exit 1 with a warning under --allow-mismatch);
/// as the only libpython there is (the process's copy moved away), exit 5.
#[test]
fn binaries_without_build_id_are_checked_by_their_held_pages() {
    let Some(python) = interpreter("3.12", Linkage::Shared) else {
        return;
    };
    let Some(other) = other_shared_build(&python) else {
        return;
    };
    let dir = TestDir::new("inputs-no-build-id");
    let (exe_name, lib_name) = (file_name(&python.path), libpython_name(&python.path));
    let strip = |from: &Path, to: &Path| {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let status = Command::new("objcopy")
            .args(["--remove-section", ".note.gnu.build-id"])
            .arg(from)
            .arg(to)
            .status()
            .unwrap_or_else(|e| panic!("objcopy (binutils): {e}"));
        assert!(status.success(), "objcopy {}", from.display());
        assert!(
            elf::build_id(to).is_err(),
            "{} still has a build-id",
            to.display()
        );
    };
    let app = dir.join("app");
    let (app_exe, app_lib) = (
        app.join("bin").join(&exe_name),
        app.join("lib").join(&lib_name),
    );
    strip(&python.path, &app_exe);
    strip(&libpython_path(&python.path), &app_lib);
    let decoy = dir.join("decoy");
    let (decoy_exe, decoy_lib) = (
        decoy.join("bin").join(&exe_name),
        decoy.join("lib").join(&lib_name),
    );
    strip(&other.path, &decoy_exe);
    strip(&libpython_path(&other.path), &decoy_lib);

    let (recording, core) = core_of_copied_python(&python, &app_exe, &app.join("lib"), &dir);

    let analysis = analyze_for(&python, &core.path, dir.path()).unwrap();
    assert_judged(&recording, &core, &analysis, "binaries without build-id");
    for file in [&app_exe, &app_lib] {
        let file = file.to_str().unwrap();
        let warning = analysis
            .report
            .warnings
            .iter()
            .find(|w| w.contains(file) && w.contains("build-id"))
            .unwrap_or_else(|| {
                panic!(
                    "no warning about {file}'s missing build-id: {:?}",
                    analysis.report.warnings
                )
            });
        assert!(
            warning.contains("first page") && warning.contains("could not be compared"),
            "the warning about {file} must say what was compared and what not: {warning}"
        );
        println!("no build-id: {warning}");
    }

    let extra = python.pycore_args();
    let mut args = json_args(&core.path, &extra);
    args.extend([OsString::from("--python"), decoy_exe.clone().into()]);
    let ran = pycore(&dir, &args, None);
    assert_clean_failure(&ran, &[WRONG_BINARY]);
    for name in [decoy_exe.to_str().unwrap(), app_exe.to_str().unwrap()] {
        assert!(
            ran.stderr.contains(name) && ran.stderr.contains("offset"),
            "{}: the error must name {name} and the differing offset: {}",
            ran.args,
            ran.stderr.trim()
        );
    }
    println!(
        "--python OTHER (no build-id): exit 5: {}",
        ran.stderr.trim()
    );
    args.push(OsString::from("--allow-mismatch"));
    let ran = pycore(&dir, &args, None);
    assert_eq!(ran.code, Some(PARTIAL), "{}: {}", ran.args, ran.stderr);
    let doc = ran.report();
    let warned = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| crate::support::stacks::warning_message(w).ok())
        .any(|w| w.contains(decoy_exe.to_str().unwrap()) && w.contains("offset"));
    assert!(
        warned,
        "{}: no warning names the other file: {}",
        ran.args, doc["warnings"]
    );

    // The process's libpython moved away: the other one is all --lib-path offers.
    let moved = dir.join("moved");
    fs::rename(&app, &moved).unwrap();
    let mut args = json_args(&core.path, &extra);
    args.extend([
        OsString::from("--python"),
        moved.join("bin").join(&exe_name).into(),
        OsString::from("--lib-path"),
        decoy.join("lib").into(),
    ]);
    fs::remove_dir_all(moved.join("lib")).unwrap();
    let ran = pycore(&dir, &args, None);
    assert_clean_failure(&ran, &[WRONG_BINARY]);
    assert!(
        ran.stderr.contains(decoy_lib.to_str().unwrap())
            && ran.stderr.contains(app_lib.to_str().unwrap()),
        "{}: the error must name {} and {}: {}",
        ran.args,
        decoy_lib.display(),
        app_lib.display(),
        ran.stderr.trim()
    );
    println!(
        "--lib-path OTHER alone (no build-id): exit 5: {}",
        ran.stderr.trim()
    );
    dir.remove();
}
