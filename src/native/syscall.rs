//! What a thread is blocked in, from the system call in its registers (`orig_rax`: the number
//! of the call the thread is in, -1 when it is not in one), x86_64 Linux numbering
//! (arch/x86/entry/syscalls/syscall_64.tbl).

use serde::{Deserialize, Serialize};

/// The kinds of waiting a user tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateKind {
    /// `futex`: waiting on a lock, a condition or a semaphore (Python's locks, the GIL, joins).
    Lock,
    /// `nanosleep`, `clock_nanosleep`.
    Sleep,
    /// `select`, `poll`, `epoll_wait` and their variants.
    Poll,
    /// `read`, `recvfrom`, `accept` and their variants.
    Read,
    /// `write`, `sendto` and their variants.
    Write,
    /// `wait4`, `waitid`: waiting for a child process.
    WaitChild,
    /// `pause`, `rt_sigsuspend`, `rt_sigtimedwait`: waiting for a signal.
    WaitSignal,
    /// In another system call.
    Syscall,
    /// Not in a system call: running (or stopped) in user space.
    Running,
}

/// A thread's state: its kind, the system call's name (null when running) and the words the
/// text output prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadState {
    pub kind: StateKind,
    pub syscall: Option<String>,
    pub description: String,
}

/// (number, name, kind) of the calls a blocked thread is usually in.
const CALLS: &[(i64, &str, StateKind)] = &[
    (0, "read", StateKind::Read),
    (1, "write", StateKind::Write),
    (7, "poll", StateKind::Poll),
    (17, "pread64", StateKind::Read),
    (18, "pwrite64", StateKind::Write),
    (19, "readv", StateKind::Read),
    (20, "writev", StateKind::Write),
    (23, "select", StateKind::Poll),
    (24, "sched_yield", StateKind::Syscall),
    (34, "pause", StateKind::WaitSignal),
    (35, "nanosleep", StateKind::Sleep),
    (42, "connect", StateKind::Syscall),
    (43, "accept", StateKind::Read),
    (44, "sendto", StateKind::Write),
    (45, "recvfrom", StateKind::Read),
    (46, "sendmsg", StateKind::Write),
    (47, "recvmsg", StateKind::Read),
    (61, "wait4", StateKind::WaitChild),
    (62, "kill", StateKind::Syscall),
    (72, "fcntl", StateKind::Syscall),
    (73, "flock", StateKind::Syscall),
    (128, "rt_sigtimedwait", StateKind::WaitSignal),
    (130, "rt_sigsuspend", StateKind::WaitSignal),
    (202, "futex", StateKind::Lock),
    (230, "clock_nanosleep", StateKind::Sleep),
    (232, "epoll_wait", StateKind::Poll),
    (234, "tgkill", StateKind::Syscall),
    (247, "waitid", StateKind::WaitChild),
    (270, "pselect6", StateKind::Poll),
    (271, "ppoll", StateKind::Poll),
    (281, "epoll_pwait", StateKind::Poll),
    (288, "accept4", StateKind::Read),
    (295, "preadv", StateKind::Read),
    (296, "pwritev", StateKind::Write),
    (299, "recvmmsg", StateKind::Read),
    (307, "sendmmsg", StateKind::Write),
    (426, "io_uring_enter", StateKind::Poll),
    (441, "epoll_pwait2", StateKind::Poll),
    (449, "futex_waitv", StateKind::Lock),
];

/// The state of a thread whose `orig_rax` is `number`.
pub fn state(number: i64) -> ThreadState {
    if number < 0 {
        return ThreadState {
            kind: StateKind::Running,
            syscall: None,
            description: "running".into(),
        };
    }
    let (name, kind) = CALLS.iter().find(|(n, _, _)| *n == number).map_or(
        (format!("syscall {number}"), StateKind::Syscall),
        |(_, name, kind)| (name.to_string(), *kind),
    );
    let words = match kind {
        StateKind::Lock => "waiting on a lock",
        StateKind::Sleep => "sleeping",
        StateKind::Poll => "waiting in",
        StateKind::Read => "reading",
        StateKind::Write => "writing",
        StateKind::WaitChild => "waiting for a child",
        StateKind::WaitSignal => "waiting for a signal",
        StateKind::Syscall | StateKind::Running => "in",
    };
    ThreadState {
        kind,
        description: match kind {
            StateKind::Poll | StateKind::Syscall => format!("{words} {name}"),
            _ => format!("{words} ({name})"),
        },
        syscall: Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_common_waits() {
        assert_eq!(state(-1).kind, StateKind::Running);
        assert_eq!(state(202).description, "waiting on a lock (futex)");
        assert_eq!(state(230).kind, StateKind::Sleep);
        assert_eq!(state(23).description, "waiting in select");
        assert_eq!(state(9999).description, "in syscall 9999");
    }
}
