//! Child processes with deadlines, per-test directories and gcore.
//!
//! Everything a child prints goes to files in the test's directory rather than
//! pipes: nothing can deadlock on a full pipe, and the files stay behind with
//! the core when a test fails.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// gcore stops the process, reads all of its memory and writes ~25 MB: seconds at
/// most, unless the machine is badly overloaded.
pub const GCORE_TIMEOUT: Duration = Duration::from_secs(120);
pub const PYCORE_TIMEOUT: Duration = Duration::from_secs(120);

/// A fresh directory under the system temp dir. It is removed only by
/// [`TestDir::remove`], which tests call once they passed: a failing test keeps
/// its cores and logs for inspection.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "pycore-test-{}-{}-{}-{}",
            sanitize(label),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn remove(self) {
        // Best effort: a leftover temp dir must not fail a passing test.
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A spawned child that is killed and reaped when dropped, so that a failing or
/// panicking test leaves no scenario process parked for ten minutes.
pub struct ChildGuard {
    child: Child,
    stderr_path: PathBuf,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stdout/stderr going to
    /// `<dir>/<label>.stdout` and `<dir>/<label>.stderr`.
    pub fn spawn(command: &mut Command, dir: &Path, label: &str) -> Result<ChildGuard, String> {
        let stderr_path = redirect_output(command, dir, label)?;
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", describe(command)))?;
        Ok(ChildGuard { child, stderr_path })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines the child wrote to stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        tail_of_file(&self.stderr_path, 15)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child that ran to completion.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `command` to completion, killing it after `timeout`.
pub fn run_with_timeout(
    command: &mut Command,
    timeout: Duration,
    dir: &Path,
    label: &str,
) -> Result<Finished, String> {
    let what = describe(command);
    let mut child = ChildGuard::spawn(command, dir, label)?;
    let status = wait_for(&format!("{what} to finish"), timeout, || Ok(child.exited()))?;
    let stdout = fs::read(dir.join(format!("{label}.stdout")))
        .map_err(|e| format!("reading stdout of {what}: {e}"))?;
    let stderr =
        fs::read(&child.stderr_path).map_err(|e| format!("reading stderr of {what}: {e}"))?;
    Ok(Finished {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

fn redirect_output(command: &mut Command, dir: &Path, label: &str) -> Result<PathBuf, String> {
    let create = |suffix: &str| -> Result<(File, PathBuf), String> {
        let path = dir.join(format!("{label}.{suffix}"));
        let file = File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok((file, path))
    };
    let (stdout, _) = create("stdout")?;
    let (stderr, stderr_path) = create("stderr")?;
    command.stdout(stdout).stderr(stderr);
    Ok(stderr_path)
}

/// Polls `poll` until it yields a value, fails, or `timeout` passes.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut poll: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = poll()? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {} s waiting for {what}",
                timeout.as_secs()
            ));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// The kernel thread ids of a live process.
pub fn task_ids(pid: u32) -> Result<BTreeSet<u64>, String> {
    let dir = format!("/proc/{pid}/task");
    let entries = fs::read_dir(&dir).map_err(|e| format!("reading {dir}: {e}"))?;
    let mut tids = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {dir}: {e}"))?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.insert(tid);
        }
    }
    Ok(tids)
}

/// A core gdb's gcore wrote, and the memory it could not read.
pub struct Gcore {
    pub core: PathBuf,
    /// `[start, end)` of every "Memory read failed for corefile section"
    /// warning on gcore's stderr, except the vsyscall page (which no process
    /// can read): gcore wrote these ranges as zeros.
    pub unreadable: Vec<(u64, u64)>,
}

/// The fixed address of the legacy vsyscall page on x86_64: gdb always fails
/// to read it, harmlessly.
pub const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// Takes a core of the live process `pid` with gdb's gcore.
pub fn gcore(pid: u32, dir: &Path) -> Result<Gcore, String> {
    let prefix = dir.join("core");
    let finished = run_with_timeout(
        Command::new("gcore")
            .arg("-o")
            .arg(&prefix)
            .arg(pid.to_string()),
        GCORE_TIMEOUT,
        dir,
        "gcore",
    )
    .map_err(|e| format!("gcore: {e}"))?;
    // gcore appends ".PID" to the -o prefix.
    let core = dir.join(format!("core.{pid}"));
    let size = fs::metadata(&core).map(|m| m.len()).unwrap_or(0);
    if !finished.status.success() || size == 0 {
        return Err(format!(
            "gcore of pid {pid} failed ({}, core size {size}); its stderr ends with:\n{}",
            finished.status,
            last_lines(&finished.stderr, 10)
        ));
    }
    let unreadable = unreadable_sections(&finished.stderr)
        .into_iter()
        .filter(|(start, _)| *start != VSYSCALL_PAGE)
        .collect();
    Ok(Gcore { core, unreadable })
}

/// The ranges of gdb's "warning: Memory read failed for corefile section,
/// 1048576 bytes at 0x7f89fc625000." lines.
pub fn unreadable_sections(gdb_stderr: &str) -> Vec<(u64, u64)> {
    const MARK: &str = "Memory read failed for corefile section, ";
    gdb_stderr
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(MARK)? + MARK.len()..];
            let (bytes, rest) = rest.split_once(" bytes at 0x")?;
            let bytes: u64 = bytes.trim().parse().ok()?;
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            let start = u64::from_str_radix(&hex, 16).ok()?;
            Some((start, start.saturating_add(bytes)))
        })
        .collect()
}

/// The memory mappings (`[start, end)`) of a live process that hold one of
/// its threads' stack pointers: the thread stacks. A thread's stack pointer
/// comes from /proc/PID/task/TID/syscall, which has one only for a thread
/// blocked in a system call (a thread running Python code has none there, and
/// its stack is not found).
pub fn thread_stack_mappings(pid: u32) -> Result<Vec<(u64, u64)>, String> {
    let maps_path = format!("/proc/{pid}/maps");
    let maps = fs::read_to_string(&maps_path).map_err(|e| format!("reading {maps_path}: {e}"))?;
    let mappings: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect();
    let mut stacks = Vec::new();
    for tid in task_ids(pid)? {
        // "NR arg1 … arg6 SP PC" while in a system call; "running" otherwise.
        let Ok(syscall) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")) else {
            continue;
        };
        let fields: Vec<&str> = syscall.split_whitespace().collect();
        let Some(sp) = fields
            .len()
            .checked_sub(2)
            .and_then(|i| fields[i].strip_prefix("0x"))
            .and_then(|sp| u64::from_str_radix(sp, 16).ok())
        else {
            continue;
        };
        if let Some(mapping) = mappings
            .iter()
            .find(|(start, end)| (*start..*end).contains(&sp))
        {
            if !stacks.contains(mapping) {
                stacks.push(*mapping);
            }
        }
    }
    Ok(stacks)
}

/// The scheduler state letter of each thread of a live process ('S' sleeping
/// in the kernel, 'R' running, …), from /proc/PID/task/TID/stat.
pub fn thread_states(pid: u32) -> Result<Vec<(u64, char)>, String> {
    let mut states = Vec::new();
    for tid in task_ids(pid)? {
        let path = format!("/proc/{pid}/task/{tid}/stat");
        let stat = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        // "TID (COMM) STATE …"; COMM may hold spaces and parentheses.
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
            .ok_or_else(|| format!("{path}: no state in {stat:?}"))?;
        states.push((tid, state));
    }
    Ok(states)
}

/// Sends `signal` ("QUIT") to `pid` with kill(1), and returns the pid of the
/// kill process: the sender the kernel records in the signal's information.
pub fn send_signal(signal: &str, pid: u32, dir: &Path) -> Result<u32, String> {
    let mut command = Command::new("kill");
    command.args(["-s", signal, &pid.to_string()]);
    let what = describe(&command);
    let mut child = ChildGuard::spawn(&mut command, dir, "kill")?;
    let sender = child.pid();
    let status = wait_for(&format!("{what} to finish"), KILL_TIMEOUT, || {
        Ok(child.exited())
    })?;
    if !status.success() {
        return Err(format!(
            "{what}: {status}; stderr:\n{}",
            child.stderr_tail()
        ));
    }
    Ok(sender)
}

const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The kernel thread id of the calling thread, from /proc/thread-self
/// ("PID/task/TID").
pub fn current_tid() -> Result<u64, String> {
    let link = fs::read_link("/proc/thread-self").map_err(|e| format!("/proc/thread-self: {e}"))?;
    link.file_name()
        .and_then(|name| name.to_str())
        .and_then(|tid| tid.parse().ok())
        .ok_or_else(|| format!("/proc/thread-self links to {}", link.display()))
}

/// The real user id of this process (what the kernel records as the sender's
/// uid of a signal it sends), from /proc/self/status.
pub fn own_uid() -> Result<u64, String> {
    let status =
        fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| "/proc/self/status has no Uid line".to_string())
}

/// Runs the pycore binary under test. RUST_BACKTRACE is set so that a panic,
/// should one happen, shows up loudly in the test's stderr checks and logs.
pub fn run_pycore(args: &[&std::ffi::OsStr], dir: &Path, label: &str) -> Result<Finished, String> {
    run_pycore_with(args, &[], PYCORE_TIMEOUT, dir, label)
}

/// [`run_pycore`] with more environment variables (such as TMPDIR), killed
/// after `timeout`.
pub fn run_pycore_with(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
    timeout: Duration,
    dir: &Path,
    label: &str,
) -> Result<Finished, String> {
    let mut command = pycore_command(args);
    command.envs(env.iter().copied());
    run_with_timeout(&mut command, timeout, dir, label)
}

/// `pycore ARGS` with RUST_BACKTRACE=1 (see [`run_pycore`]), not yet started.
pub fn pycore_command(args: &[&std::ffi::OsStr]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pycore"));
    // Hermetic: no debuginfod server from the user's environment (Debian's login shells set
    // DEBUGINFOD_URLS) answers for a binary a test moved away; tests that want one set it.
    command
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("DEBUGINFOD_URLS");
    command
}

pub fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

pub fn tail_of_file(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), lines),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

pub fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}
