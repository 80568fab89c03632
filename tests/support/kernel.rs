//! Cores written by the kernel: a scenario runs with core dumps enabled in an
//! empty working directory, and dies of a signal (its own crash, or SIGQUIT
//! sent by the harness, whose default action is to dump core: Python installs
//! no handler for it).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use super::process::{wait_for, ChildGuard};

/// Exit code of the shell wrapper when it cannot lift RLIMIT_CORE.
pub const CANNOT_ENABLE_CORES: i32 = 97;
/// Writing a core of a process whose threads already parked: a ~25 MB core
/// (~100 MB for a free-threaded build) takes well under a second.
pub const CORE_DUMP_TIMEOUT: Duration = Duration::from_secs(60);

pub const SIGQUIT: i32 = 3;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGSEGV: i32 = 11;

/// The tests find the core in the dying process's working directory, which
/// needs a plain relative file name in core_pattern (this machine: "core").
pub fn check_core_pattern() -> Result<(), String> {
    let path = "/proc/sys/kernel/core_pattern";
    let pattern = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let pattern = pattern.trim();
    if pattern.starts_with('|') {
        return Err(format!(
            "{path} pipes cores to a program ({pattern:?}), not to a file"
        ));
    }
    if pattern.is_empty() || pattern.contains('/') || pattern.contains('%') {
        return Err(format!(
            "{path} is {pattern:?}; these tests handle only a plain file name like \"core\""
        ));
    }
    Ok(())
}

/// `bash -c 'ulimit -c unlimited; exec COMMAND'`: std has no setrlimit, and
/// the limit must be raised in the child only. `strict`: exit with
/// [`CANNOT_ENABLE_CORES`] if the limit cannot be raised (a scenario meant
/// to crash); otherwise run the command anyway (a scenario that may need a
/// kernel core only as a fallback). The `exec` keeps the pid: the child's pid
/// is the scenario's.
pub fn with_unlimited_core_size(inner: &Command, strict: bool) -> Command {
    let otherwise = if strict {
        format!("exit {CANNOT_ENABLE_CORES}")
    } else {
        "true".to_string()
    };
    let mut outer = Command::new("bash");
    outer
        .args([
            "-c",
            &format!("ulimit -c unlimited 2>/dev/null || {otherwise}; exec \"$@\""),
            "bash",
        ])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    if let Some(dir) = inner.get_current_dir() {
        outer.current_dir(dir);
    }
    outer
}

/// Waits for `child` to die of `signal` with a core dump.
pub fn wait_for_core_dump(child: &mut ChildGuard, signal: i32) -> Result<ExitStatus, String> {
    use std::os::unix::process::ExitStatusExt;
    let status = wait_for(
        &format!("the scenario to die of signal {signal} and dump core"),
        CORE_DUMP_TIMEOUT,
        || Ok(child.exited()),
    )?;
    if status.signal() != Some(signal) || !status.core_dumped() {
        return Err(format!(
            "expected death by signal {signal} with a core dump, got {status}{}; stderr:\n{}",
            if status.signal() == Some(signal) {
                " (is RLIMIT_CORE 0? `ulimit -c unlimited` failed)"
            } else {
                ""
            },
            child.stderr_tail()
        ));
    }
    Ok(status)
}

/// The core: the process wrote nothing else into its fresh working directory.
pub fn only_file_in(dir: &Path) -> Result<PathBuf, String> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [core] => Ok(core.clone()),
        _ => Err(format!(
            "expected exactly the core file in {}, found {entries:?}",
            dir.display()
        )),
    }
}
