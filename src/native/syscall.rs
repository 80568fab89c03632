//! What a thread is blocked in, from the system call its registers show. Each machine is data
//! ([`Convention`]): where the call's number is and the table of numbers, one per machine.
//!
//! - x86_64: `orig_rax` holds the number of the call the thread is in, -1 when it is not in one
//!   (arch/x86/entry/syscalls/syscall_64.tbl).
//! - aarch64: `user_pt_regs` has no `orig_x8`: a thread in a call has the number in x8 and its pc
//!   just after the `svc #0` that entered it, or on it when the kernel rewound the pc to restart
//!   the call (arch/arm64/kernel/signal.c `do_signal`: -ERESTARTSYS and its kind, which is how a
//!   thread stopped for the dump or killed with the process left its call). Numbers from
//!   include/uapi/asm-generic/unistd.h.
use serde::{Deserialize, Serialize};

use crate::core::regs::RegisterSet;
use crate::core::Arch;

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

/// (number, name, kind) of the calls a blocked thread is usually in, x86_64 numbering.
const X86_64_CALLS: &[(i64, &str, StateKind)] = &[
    (0, "read", StateKind::Read),
    (1, "write", StateKind::Write),
    (7, "poll", StateKind::Poll),
    (14, "rt_sigprocmask", StateKind::Syscall),
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

/// The same calls in asm-generic numbering (aarch64 has no `poll`, `select`, `pause`, `epoll_wait`:
/// libc uses `ppoll`, `pselect6`, `rt_sigsuspend` and `epoll_pwait`).
const AARCH64_CALLS: &[(i64, &str, StateKind)] = &[
    (22, "epoll_pwait", StateKind::Poll),
    (25, "fcntl", StateKind::Syscall),
    (32, "flock", StateKind::Syscall),
    (63, "read", StateKind::Read),
    (64, "write", StateKind::Write),
    (65, "readv", StateKind::Read),
    (66, "writev", StateKind::Write),
    (67, "pread64", StateKind::Read),
    (68, "pwrite64", StateKind::Write),
    (69, "preadv", StateKind::Read),
    (70, "pwritev", StateKind::Write),
    (72, "pselect6", StateKind::Poll),
    (73, "ppoll", StateKind::Poll),
    (95, "waitid", StateKind::WaitChild),
    (98, "futex", StateKind::Lock),
    (101, "nanosleep", StateKind::Sleep),
    (115, "clock_nanosleep", StateKind::Sleep),
    (124, "sched_yield", StateKind::Syscall),
    (129, "kill", StateKind::Syscall),
    (131, "tgkill", StateKind::Syscall),
    (133, "rt_sigsuspend", StateKind::WaitSignal),
    (135, "rt_sigprocmask", StateKind::Syscall),
    (137, "rt_sigtimedwait", StateKind::WaitSignal),
    (202, "accept", StateKind::Read),
    (203, "connect", StateKind::Syscall),
    (206, "sendto", StateKind::Write),
    (207, "recvfrom", StateKind::Read),
    (211, "sendmsg", StateKind::Write),
    (212, "recvmsg", StateKind::Read),
    (242, "accept4", StateKind::Read),
    (243, "recvmmsg", StateKind::Read),
    (260, "wait4", StateKind::WaitChild),
    (269, "sendmmsg", StateKind::Write),
    (426, "io_uring_enter", StateKind::Poll),
    (441, "epoll_pwait2", StateKind::Poll),
    (449, "futex_waitv", StateKind::Lock),
];

/// Where a machine keeps the number of the system call a thread is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// A register that holds the number, negative when the thread is in no call (`orig_rax`).
    Register(usize),
    /// A register that holds the number while the thread is in a call, which it is when the
    /// instruction word just before its pc, or at it (a rewound restart), is the trap.
    AfterTrap {
        number: usize,
        trap: u32,
        width: u64,
    },
}

/// One machine's system-call convention.
#[derive(Debug)]
pub struct Convention {
    pub arch: Arch,
    pub number: Where,
    pub calls: &'static [(i64, &'static str, StateKind)],
}

/// `user_pt_regs` word of x8 (aarch64's system-call number register).
const AARCH64_X8: usize = 8;
/// `svc #0` (A64 encoding 0xd4000001).
const AARCH64_SVC_0: u32 = 0xd400_0001;

pub const CONVENTIONS: [Convention; 2] = [
    Convention {
        arch: Arch::X86_64,
        number: Where::Register(crate::core::regs::x86_64::ORIG_RAX),
        calls: X86_64_CALLS,
    },
    Convention {
        arch: Arch::Aarch64,
        number: Where::AfterTrap {
            number: AARCH64_X8,
            trap: AARCH64_SVC_0,
            width: 4,
        },
        calls: AARCH64_CALLS,
    },
];

/// The convention of `arch`.
pub fn convention(arch: Arch) -> Option<&'static Convention> {
    CONVENTIONS.iter().find(|c| c.arch == arch)
}

/// The number of the system call `registers` show the thread in (negative: in none), `None` when
/// they cannot tell (a register or the instruction words missing). `word` reads the 32-bit
/// little-endian instruction word at an address.
pub fn number_in(registers: &RegisterSet, mut word: impl FnMut(u64) -> Option<u32>) -> Option<i64> {
    let convention = convention(registers.arch)?;
    match convention.number {
        Where::Register(index) => registers.word(index).map(|v| v as i64),
        Where::AfterTrap {
            number,
            trap,
            width,
        } => {
            let pc = registers.pc()?;
            let before = pc.checked_sub(width).and_then(&mut word);
            let here = word(pc);
            if before.is_none() && here.is_none() {
                return None;
            }
            if before == Some(trap) || here == Some(trap) {
                registers.word(number).map(|v| v as i64)
            } else {
                Some(-1)
            }
        }
    }
}

/// The state of a thread of machine `arch` in system call `number` (negative: in none).
pub fn state(arch: Arch, number: i64) -> ThreadState {
    if number < 0 {
        return ThreadState {
            kind: StateKind::Running,
            syscall: None,
            description: "running".into(),
        };
    }
    let calls = convention(arch).map_or(&[][..], |c| c.calls);
    let (name, kind) = calls.iter().find(|(n, _, _)| *n == number).map_or(
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
    use crate::memory::{Memory, Unreadable};

    #[test]
    fn names_common_waits() {
        let x86 = |n| state(Arch::X86_64, n);
        assert_eq!(x86(-1).kind, StateKind::Running);
        assert_eq!(x86(202).description, "waiting on a lock (futex)");
        assert_eq!(x86(230).kind, StateKind::Sleep);
        assert_eq!(x86(23).description, "waiting in select");
        assert_eq!(x86(9999).description, "in syscall 9999");
        let arm = |n| state(Arch::Aarch64, n);
        assert_eq!(arm(98).description, "waiting on a lock (futex)");
        assert_eq!(arm(115).kind, StateKind::Sleep);
        assert_eq!(arm(101).kind, StateKind::Sleep);
        assert_eq!(arm(73).description, "waiting in ppoll");
        assert_eq!(arm(72).kind, StateKind::Poll);
        assert_eq!(arm(22).kind, StateKind::Poll);
        assert_eq!(arm(63).kind, StateKind::Read);
        assert_eq!(arm(202).kind, StateKind::Read); // accept, not futex
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for convention in &CONVENTIONS {
            assert!(convention.calls.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    /// Four instruction words at 0x1000.
    struct Text([u32; 4]);

    impl Memory for Text {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
            let fail = Unreadable {
                addr,
                len: buf.len(),
                cut_off: false,
            };
            let bytes: Vec<u8> = self.0.iter().flat_map(|w| w.to_le_bytes()).collect();
            let start = usize::try_from(addr.checked_sub(0x1000).ok_or(fail)?).map_err(|_| fail)?;
            let end = start.checked_add(buf.len()).ok_or(fail)?;
            buf.copy_from_slice(bytes.get(start..end).ok_or(fail)?);
            Ok(())
        }
    }

    fn read(text: &Text) -> impl FnMut(u64) -> Option<u32> + '_ {
        |addr| text.read_u32(addr).ok()
    }

    fn aarch64_regs(x8: u64, pc: u64) -> RegisterSet {
        let mut words = [0u64; 34];
        words[8] = x8;
        words[32] = pc;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        RegisterSet::from_words(Arch::Aarch64, &bytes)
    }

    #[test]
    fn aarch64_call_is_x8_after_svc() {
        let nop = 0xd503_201f;
        let text = Text([nop, AARCH64_SVC_0, nop, nop]);
        // Just after the svc: in the call.
        assert_eq!(number_in(&aarch64_regs(98, 0x1008), read(&text)), Some(98));
        // On the svc (the kernel rewound the pc to restart the call).
        assert_eq!(number_in(&aarch64_regs(98, 0x1004), read(&text)), Some(98));
        // Elsewhere: running, whatever x8 holds.
        assert_eq!(number_in(&aarch64_regs(98, 0x100c), read(&text)), Some(-1));
        // No text to look at: unknown.
        assert_eq!(number_in(&aarch64_regs(98, 0x9000), read(&text)), None);
        let short = RegisterSet::from_words(Arch::Aarch64, &[0u8; 8 * 9]);
        assert_eq!(number_in(&short, read(&text)), None);
    }
}
