//! What a Linux signal and its `si_code` mean, in words
//! (include/uapi/asm-generic/signal.h, include/uapi/asm-generic/siginfo.h).

use serde::{Deserialize, Serialize};

use super::notes::SignalInfo;

/// A decoded `siginfo_t`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalDescription {
    pub number: i32,
    /// `SIGSEGV`, or `signal 42` for numbers without a name (real-time signals).
    pub name: String,
    pub code: i32,
    /// `SEGV_MAPERR`, `SI_USER`, ... when the code is known.
    pub code_name: Option<String>,
    /// "address not mapped to object", "sent by kill() from pid 12, uid 0", ...
    pub description: String,
    /// The faulting address, for fault signals raised by the kernel.
    pub fault_address: Option<String>,
    /// Who sent it, for signals sent by a process.
    pub sender_pid: Option<i32>,
    pub sender_uid: Option<u32>,
}

const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

const SIGQUIT: i32 = 3;
const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
const SIGABRT: i32 = 6;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;
pub const SIGSTOP: i32 = 19;
const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;
const SIGSYS: i32 = 31;

/// Whether a process stopped with `signal` has crashed: the signals whose default action is to
/// dump core (signal(7)), less SIGTRAP. The kernel writes a core only for these; a debugger that
/// intercepted one (gdb's "Program received signal SIGSEGV") stopped a process that it would
/// otherwise have killed. SIGTRAP is left out because under a debugger it is the debugger's own
/// breakpoint, single step or watchpoint (a kernel core of SIGTRAP is still a crash: the kernel
/// writes cores of fatal signals only). SIGINT, SIGTERM, SIGHUP, SIGSTOP, ... stop a process
/// under gdb without a crash (an interrupt, a request to quit); SIGKILL can be neither caught by
/// a debugger nor dumped by the kernel.
pub fn is_crash_signal(signal: i32) -> bool {
    matches!(
        signal,
        SIGQUIT | SIGILL | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS
    )
}

/// `SIGSEGV` for 11; `signal N` otherwise.
pub fn signal_name(number: i32) -> String {
    usize::try_from(number)
        .ok()
        .and_then(|n| NAMES.get(n))
        .filter(|name| !name.is_empty())
        .map_or_else(|| format!("signal {number}"), |name| name.to_string())
}

/// (name, words) of a kernel-generated code of a fault signal.
fn fault_code(signal: i32, code: i32) -> Option<(&'static str, &'static str)> {
    Some(match (signal, code) {
        (SIGSEGV, 1) => ("SEGV_MAPERR", "address not mapped to object"),
        (SIGSEGV, 2) => ("SEGV_ACCERR", "invalid permissions for mapped object"),
        (SIGSEGV, 3) => ("SEGV_BNDERR", "failed address bound checks"),
        (SIGSEGV, 4) => ("SEGV_PKUERR", "failed protection key checks"),
        // aarch64 memory tagging (MTE) and shadow stacks (include/uapi/asm-generic/siginfo.h).
        (SIGSEGV, 8) => (
            "SEGV_MTEAERR",
            "asynchronous memory tag check fault (aarch64 MTE)",
        ),
        (SIGSEGV, 9) => (
            "SEGV_MTESERR",
            "synchronous memory tag check fault (aarch64 MTE)",
        ),
        (SIGSEGV, 10) => ("SEGV_CPERR", "control protection fault (shadow stack)"),
        (SIGBUS, 1) => ("BUS_ADRALN", "invalid address alignment"),
        (SIGBUS, 2) => ("BUS_ADRERR", "nonexistent physical address"),
        (SIGBUS, 3) => (
            "BUS_OBJERR",
            "object-specific hardware error (e.g. a mapped file was truncated)",
        ),
        (SIGBUS, 4) => (
            "BUS_MCEERR_AR",
            "hardware memory error consumed on a machine check",
        ),
        (SIGBUS, 5) => (
            "BUS_MCEERR_AO",
            "hardware memory error detected, action optional",
        ),
        (SIGFPE, 1) => ("FPE_INTDIV", "integer divide by zero"),
        (SIGFPE, 2) => ("FPE_INTOVF", "integer overflow"),
        (SIGFPE, 3) => ("FPE_FLTDIV", "floating-point divide by zero"),
        (SIGFPE, 4) => ("FPE_FLTOVF", "floating-point overflow"),
        (SIGFPE, 5) => ("FPE_FLTUND", "floating-point underflow"),
        (SIGFPE, 6) => ("FPE_FLTRES", "floating-point inexact result"),
        (SIGFPE, 7) => ("FPE_FLTINV", "floating-point invalid operation"),
        (SIGFPE, 8) => ("FPE_FLTSUB", "subscript out of range"),
        (SIGILL, 1) => ("ILL_ILLOPC", "illegal opcode"),
        (SIGILL, 2) => ("ILL_ILLOPN", "illegal operand"),
        (SIGILL, 3) => ("ILL_ILLADR", "illegal addressing mode"),
        (SIGILL, 4) => ("ILL_ILLTRP", "illegal trap"),
        (SIGILL, 5) => ("ILL_PRVOPC", "privileged opcode"),
        (SIGILL, 6) => ("ILL_PRVREG", "privileged register"),
        (SIGILL, 7) => ("ILL_COPROC", "coprocessor error"),
        (SIGILL, 8) => ("ILL_BADSTK", "internal stack error"),
        (SIGTRAP, 1) => ("TRAP_BRKPT", "process breakpoint"),
        (SIGTRAP, 2) => ("TRAP_TRACE", "process trace trap"),
        (SIGTRAP, 3) => ("TRAP_BRANCH", "process taken branch trap"),
        (SIGTRAP, 4) => ("TRAP_HWBKPT", "hardware breakpoint or watchpoint"),
        _ => return None,
    })
}

/// Decode a `siginfo_t` as the kernel wrote it into NT_SIGINFO.
pub fn describe(info: &SignalInfo) -> SignalDescription {
    let signal = info.signo;
    let name = signal_name(signal);
    let pid = info.union_word as u32 as i32;
    let uid = (info.union_word >> 32) as u32;
    let mut description = SignalDescription {
        number: signal,
        name,
        code: info.code,
        code_name: None,
        description: String::new(),
        fault_address: None,
        sender_pid: None,
        sender_uid: None,
    };
    let is_fault = matches!(signal, SIGSEGV | SIGBUS | SIGFPE | SIGILL | SIGTRAP);
    let (code_name, words) = match info.code {
        // si_code <= 0: sent by a process; SI_KERNEL: sent by the kernel without a fault.
        0 => (
            "SI_USER",
            format!("sent by kill() from pid {pid}, uid {uid}"),
        ),
        -6 => (
            "SI_TKILL",
            format!("sent by tkill()/tgkill() from pid {pid}, uid {uid}"),
        ),
        -1 => (
            "SI_QUEUE",
            format!("sent by sigqueue() from pid {pid}, uid {uid}"),
        ),
        -2 => ("SI_TIMER", "sent by a POSIX timer expiring".to_string()),
        -3 => (
            "SI_MESGQ",
            "sent by a message queue state change".to_string(),
        ),
        -4 => (
            "SI_ASYNCIO",
            "sent by asynchronous I/O completion".to_string(),
        ),
        -5 => ("SI_SIGIO", "sent for queued SIGIO".to_string()),
        0x80 => ("SI_KERNEL", "sent by the kernel".to_string()),
        code if code > 0 && is_fault => match fault_code(signal, code) {
            Some((code_name, words)) => {
                description.fault_address = Some(format!("{:#x}", info.union_word));
                (code_name, words.to_string())
            }
            None => ("", format!("si_code {code}")),
        },
        code => ("", format!("si_code {code}")),
    };
    if matches!(info.code, 0 | -1 | -6) {
        description.sender_pid = Some(pid);
        description.sender_uid = Some(uid);
    }
    description.code_name = (!code_name.is_empty()).then(|| code_name.to_string());
    description.description = words;
    description
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A siginfo of the given signal, code and first union word (for the tests of the layers
    /// that judge signals).
    pub(crate) fn info(signo: i32, code: i32, union_word: u64) -> SignalInfo {
        SignalInfo {
            signo,
            errno: 0,
            code,
            union_word,
        }
    }

    #[test]
    fn segfault_has_an_address() {
        let d = describe(&info(11, 1, 0x10));
        assert_eq!(d.name, "SIGSEGV");
        assert_eq!(d.code_name.as_deref(), Some("SEGV_MAPERR"));
        assert_eq!(d.description, "address not mapped to object");
        assert_eq!(d.fault_address.as_deref(), Some("0x10"));
        assert_eq!(d.sender_pid, None);
    }

    #[test]
    fn aarch64_tag_check_faults_are_named() {
        let d = describe(&info(11, 9, 0x0f00_0000_1234_5678));
        assert_eq!(d.code_name.as_deref(), Some("SEGV_MTESERR"));
        assert_eq!(d.fault_address.as_deref(), Some("0xf00000012345678"));
        let d = describe(&info(11, 8, 0));
        assert_eq!(d.code_name.as_deref(), Some("SEGV_MTEAERR"));
    }

    #[test]
    fn kill_names_the_sender() {
        let d = describe(&info(3, 0, (1000u64 << 32) | 4242));
        assert_eq!(d.name, "SIGQUIT");
        assert_eq!(d.code_name.as_deref(), Some("SI_USER"));
        assert_eq!(d.sender_pid, Some(4242));
        assert_eq!(d.sender_uid, Some(1000));
        assert_eq!(d.fault_address, None);
        assert_eq!(d.description, "sent by kill() from pid 4242, uid 1000");
    }

    #[test]
    fn crash_signals_are_the_core_dumping_ones_less_sigtrap() {
        for crash in [3, 4, 6, 7, 8, 11, 24, 25, 31] {
            assert!(is_crash_signal(crash), "{}", signal_name(crash));
        }
        for other in [0, 1, 2, 5, 9, 10, 13, 14, 15, 17, 19, 20, 34] {
            assert!(!is_crash_signal(other), "{}", signal_name(other));
        }
    }

    #[test]
    fn abort_is_a_tkill_and_unknowns_stay_numeric() {
        assert_eq!(
            describe(&info(6, -6, 7)).code_name.as_deref(),
            Some("SI_TKILL")
        );
        assert_eq!(signal_name(40), "signal 40");
        assert_eq!(signal_name(-1), "signal -1");
        assert_eq!(describe(&info(11, 99, 0)).fault_address, None);
    }
}
