//! The full general-purpose register file of one thread, as NT_PRSTATUS keeps it
//! (`struct user_regs_struct` on x86_64, `struct user_pt_regs` on aarch64).
//!
//! The unwinder needs more than pc/sp (the frame pointer and the callee-saved registers CFI
//! restores), and the system call a thread was blocked in is read from them (native/syscall.rs).

use super::notes::Arch;

/// x86_64 `user_regs_struct` has 27 words; aarch64 `user_pt_regs` 34.
const MAX_WORDS: usize = 34;

/// Every general register of one thread, in the kernel's order for its architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterSet {
    pub arch: Arch,
    words: [u64; MAX_WORDS],
    /// How many of `words` the note held.
    count: usize,
}

impl Default for RegisterSet {
    fn default() -> Self {
        RegisterSet {
            arch: Arch::X86_64,
            words: [0; MAX_WORDS],
            count: 0,
        }
    }
}

/// x86_64 `user_regs_struct` word indexes (arch/x86/include/asm/user_64.h).
pub mod x86_64 {
    pub const R15: usize = 0;
    pub const R14: usize = 1;
    pub const R13: usize = 2;
    pub const R12: usize = 3;
    pub const RBP: usize = 4;
    pub const RBX: usize = 5;
    pub const R11: usize = 6;
    pub const R10: usize = 7;
    pub const R9: usize = 8;
    pub const R8: usize = 9;
    pub const RAX: usize = 10;
    pub const RCX: usize = 11;
    pub const RDX: usize = 12;
    pub const RSI: usize = 13;
    pub const RDI: usize = 14;
    pub const ORIG_RAX: usize = 15;
    pub const RIP: usize = 16;
    pub const RSP: usize = 19;

    /// `user_regs_struct` index of DWARF register 0..=16 (System V psABI numbering: rax, rdx,
    /// rcx, rbx, rsi, rdi, rbp, rsp, r8..r15, return address = rip).
    pub const DWARF: [usize; 17] = [
        RAX, RDX, RCX, RBX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15, RIP,
    ];
}

impl RegisterSet {
    /// The registers in `words` (little-endian u64s, as many as the note holds).
    pub fn from_words(arch: Arch, bytes: &[u8]) -> RegisterSet {
        let mut set = RegisterSet {
            arch,
            ..RegisterSet::default()
        };
        for (slot, chunk) in set.words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *slot = u64::from_le_bytes(word);
            set.count += 1;
        }
        set
    }

    /// Word `index` of the kernel's structure, if the note held it.
    pub fn word(&self, index: usize) -> Option<u64> {
        self.words
            .get(index)
            .copied()
            .filter(|_| index < self.count)
    }

    /// DWARF register `number` (x86_64 0..=16, aarch64 0..=31 with 32 as the pc).
    pub fn dwarf(&self, number: u16) -> Option<u64> {
        let number = usize::from(number);
        match self.arch {
            Arch::X86_64 => self.word(*x86_64::DWARF.get(number)?),
            // user_pt_regs: x0..x30, sp (31), pc (32): the same numbers as DWARF's.
            Arch::Aarch64 => self.word(number).filter(|_| number <= 32),
        }
    }

    /// The program counter (x86_64 `rip`, aarch64 `pc`).
    pub fn pc(&self) -> Option<u64> {
        match self.arch {
            Arch::X86_64 => self.word(x86_64::RIP),
            Arch::Aarch64 => self.word(32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_dwarf_numbers_to_user_regs() {
        let bytes: Vec<u8> = (0..27u64).flat_map(|i| (i * 10).to_le_bytes()).collect();
        let set = RegisterSet::from_words(Arch::X86_64, &bytes);
        assert_eq!(set.count, 27);
        assert_eq!(set.dwarf(7), Some(190)); // rsp
        assert_eq!(set.dwarf(6), Some(40)); // rbp
        assert_eq!(set.dwarf(16), Some(160)); // rip
        assert_eq!(set.dwarf(17), None);
        assert_eq!(set.pc(), Some(160));
        assert_eq!(set.word(x86_64::ORIG_RAX), Some(150));
        let short = RegisterSet::from_words(Arch::X86_64, &bytes[..8 * 5]);
        assert_eq!(short.dwarf(7), None);
    }
}
