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
