//! Unwinding one thread's native stack from its NT_PRSTATUS registers (x86_64, aarch64).
//!
//! Each step finds the frame's FDE (`.eh_frame_hdr` binary search, else a `.eh_frame` scan,
//! else `.debug_frame` of the module or its debug file), evaluates the row for the address
//! (DWARF expressions included, as glibc's `__restore_rt` signal frames use) and falls back to
//! the frame pointer chain where a function has no CFI. Every step is bounded: a depth limit,
//! a cycle check on (pc, sp), a stack that must grow, and addresses that must be mapped.

use std::collections::HashSet;

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, EhFrameHdr, EndianSlice, EvaluationResult,
    LittleEndian, Location, RegisterRule, UnwindContext, UnwindSection, UnwindTableRow, Value,
};

use super::modules::{Loaded, Modules};
use crate::core::regs::RegisterSet;
use crate::core::{Arch, CoreFile};
use crate::memory::Memory;

/// No real native stack is deeper (gdb's default backtrace limit is unlimited, but a 1000-deep
/// Python recursion is about 3000 native frames on 3.10).
pub const MAX_FRAMES: usize = 8192;
/// Steps of one DWARF expression.
const MAX_EXPRESSION_STEPS: usize = 64;
/// A frame pointer further than this above the stack pointer is not one.
const MAX_FRAME_SIZE: u64 = 16 << 20;

/// DWARF registers kept per frame: x86_64 0..=16 (16: the return address, rip), aarch64
/// 0..=31 (x0..x30, sp) and 32, the pc.
const REGS: usize = 33;
type Regs = [Option<u64>; REGS];
type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// What the unwinder needs to know of a machine's registers and calls (the psABI's DWARF
/// register numbers). Its register numbers are the constants of the two `Machine`s below, each
/// under `REGS`: `regs[machine.sp]` and the like cannot panic.
struct Machine {
    arch: Arch,
    sp: usize,
    /// The frame pointer (rbp, x29); its chain is the fallback where a function has no CFI.
    fp: usize,
    /// The CFI's return-address column (x86_64 16, aarch64 30: the link register).
    ra: usize,
    /// Where the frame's pc is kept: the return-address column on x86_64, 32 on aarch64.
    pc: usize,
    /// Registers a callee may clobber: unknown in the caller unless CFI says.
    caller_saved: &'static [usize],
    /// The return address is the link register's value at a function's entry (aarch64): a row
    /// with no rule for it leaves it where it was.
    link_register: bool,
    /// The bits of a code address (aarch64 pointer authentication signs return addresses in the
    /// bits above the 48-bit virtual address: `paciasp`; they are stripped).
    address_mask: u64,
}

const X86_64: Machine = Machine {
    arch: Arch::X86_64,
    sp: 7,
    fp: 6,
    ra: 16,
    pc: 16,
    caller_saved: &[0, 1, 2, 4, 5, 8, 9, 10, 11],
    link_register: false,
    address_mask: u64::MAX,
};

/// AAPCS64: x0..x18 and the link register x30 are not preserved across calls.
const _: () = assert!(X86_64.fits() && AARCH64.fits());

const AARCH64: Machine = Machine {
    arch: Arch::Aarch64,
    sp: 31,
    fp: 29,
    ra: 30,
    pc: 32,
    caller_saved: &[
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30,
    ],
    link_register: true,
    address_mask: (1 << 48) - 1,
};

impl Machine {
    /// Whether every register number the machine names indexes a [`Regs`]: checked at compile
    /// time below, so `regs[machine.pc]` and the like cannot panic (numbers from CFI are
    /// checked against `REGS` where they are read).
    const fn fits(&self) -> bool {
        let mut ok = self.sp < REGS && self.fp < REGS && self.ra < REGS && self.pc < REGS;
        let mut i = 0;
        while i < self.caller_saved.len() {
            ok = ok && self.caller_saved[i] < REGS;
            i += 1;
        }
        ok
    }

    fn of(arch: Arch) -> &'static Machine {
        match arch {
            Arch::X86_64 => &X86_64,
            Arch::Aarch64 => &AARCH64,
        }
    }

    /// The registers of `registers` this unwinder tracks.
    fn registers(&self, registers: &RegisterSet) -> Regs {
        let mut regs: Regs = [None; REGS];
        let count = match self.arch {
            Arch::X86_64 => 17,
            Arch::Aarch64 => 33,
        };
        for (number, slot) in regs.iter_mut().enumerate().take(count) {
            *slot = registers.dwarf(number as u16);
        }
        regs
    }

    /// A caller's frame: the callee's registers with the clobbered ones unknown.
    fn caller_of(&self, regs: &Regs) -> Regs {
        let mut next = *regs;
        for register in self.caller_saved {
            next[*register] = None;
        }
        next
    }

    /// aarch64 CFI uses `DW_CFA_AARCH64_negate_ra_state` (return-address signing), which
    /// shares its opcode with SPARC's `DW_CFA_GNU_window_save`: the section must say which.
    fn vendor(&self) -> gimli::Vendor {
        match self.arch {
            Arch::X86_64 => gimli::Vendor::Default,
            Arch::Aarch64 => gimli::Vendor::AArch64,
        }
    }

    fn code_address(&self, value: u64) -> u64 {
        value & self.address_mask
    }
}

/// One frame as the unwinder found it.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct RawFrame {
    /// The pc (innermost frame, or a frame a signal interrupted), else the return address.
    pub address: u64,
    /// The address that lies inside the frame's function: `address - 1` for return addresses.
    pub lookup: u64,
    /// The module mapped at `lookup`.
    pub module: Option<usize>,
    /// This frame is a signal trampoline (`__restore_rt`): its caller was interrupted.
    pub signal_frame: bool,
}

/// A thread's frames, innermost first, and why the walk stopped early, if it did.
#[derive(Debug, Default)]
pub struct Unwound {
    pub frames: Vec<RawFrame>,
    pub warnings: Vec<String>,
}

/// What one step found.
#[allow(clippy::large_enum_variant)] // one per step, on the stack, never stored
enum Step {
    Caller {
        regs: Regs,
        signal_frame: bool,
        /// The callee made no frame (a call into unmapped code): the stack may stay the same.
        leaf: bool,
    },
    /// The CFI says the stack ends here (undefined return address: `_start`, `clone3`).
    End,
}

/// Unwind the thread whose registers are `registers`, at most `limit` frames.
pub fn unwind(
    core: &CoreFile,
    modules: &Modules<'_>,
    memory: &impl Memory,
    registers: &RegisterSet,
    limit: usize,
) -> Unwound {
    let mut out = Unwound::default();
    let machine = Machine::of(registers.arch);
    let mut regs = machine.registers(registers);
    let mut context = Box::new(UnwindContext::new());
    let mut seen = HashSet::new();
    let mut is_return = false;
    let limit = limit.min(MAX_FRAMES);
    loop {
        if out.frames.len() >= limit {
            if limit == MAX_FRAMES {
                out.warnings
                    .push(format!("native stack cut after {MAX_FRAMES} frames"));
            }
            break;
        }
        let (Some(pc), Some(sp)) = (regs[machine.pc], regs[machine.sp]) else {
            break;
        };
        let first = out.frames.is_empty();
        if pc == 0 && !first {
            break;
        }
        if !seen.insert((pc, sp)) {
            out.warnings.push(format!(
                "native stack loops (pc {pc:#x}, sp {sp:#x} seen before): stopped"
            ));
            break;
        }
        let lookup = if is_return { pc.wrapping_sub(1) } else { pc };
        let module = modules.index_at(lookup);
        if module.is_none() && !first && !executable(core, lookup) {
            out.warnings.push(format!(
                "return address {pc:#x} is in no mapped code: native stack stopped there"
            ));
            break;
        }
        out.frames.push(RawFrame {
            address: pc,
            lookup,
            module,
            signal_frame: false,
        });
        let loaded = module.and_then(|m| modules.loaded(m).ok());
        let cfi = loaded
            .and_then(|l| cfi_step(machine, l, lookup, !is_return, &regs, memory, &mut context));
        let step = match cfi {
            Some(Ok(step)) => Ok(step),
            Some(Err(error)) => Err(error),
            None if first && module.is_none() => call_into_nowhere(machine, &regs, memory),
            None => frame_pointer_step(machine, &regs, memory),
        };
        match step {
            Ok(Step::Caller {
                regs: next,
                signal_frame,
                leaf,
            }) => {
                let next_sp = next[machine.sp].unwrap_or(0);
                // A call through a wild pointer leaves the stack as it was on aarch64 (`blr`),
                // and so does any function that allocates no stack there (the return address
                // is in the link register): the (pc, sp) loop check stops what repeats.
                let grows = next_sp > sp || (next_sp == sp && (leaf || machine.link_register));
                if !signal_frame && !grows {
                    out.warnings.push(format!(
                        "native stack does not grow at {pc:#x} (sp {sp:#x} to {next_sp:#x}): stopped"
                    ));
                    break;
                }
                if let Some(last) = out.frames.last_mut() {
                    last.signal_frame = signal_frame;
                }
                is_return = !signal_frame;
                regs = next;
            }
            Ok(Step::End) => break,
            Err(error) => {
                out.warnings
                    .push(format!("native stack stopped at {pc:#x}: {error}"));
                break;
            }
        }
    }
    out
}

/// Whether the core maps `address` as code (an executable segment: JIT code, the vdso).
fn executable(core: &CoreFile, address: u64) -> bool {
    const PF_X: u32 = 1;
    core.segments
        .iter()
        .any(|s| s.flags & PF_X != 0 && s.vaddr <= address && address < s.end())
}

/// The CFI step, or `None` when the module has no CFI for the address.
fn cfi_step(
    machine: &Machine,
    loaded: &Loaded,
    lookup: u64,
    live_link_register: bool,
    regs: &Regs,
    memory: &impl Memory,
    context: &mut UnwindContext<usize>,
) -> Option<Result<Step, String>> {
    let svma = lookup.wrapping_sub(loaded.bias);
    if let Some((eh, eh_addr)) = loaded.image.section(".eh_frame") {
        let mut eh_frame = EhFrame::new(eh, LittleEndian);
        eh_frame.set_address_size(8);
        eh_frame.set_vendor(machine.vendor());
        let mut bases = BaseAddresses::default().set_eh_frame(eh_addr);
        if let Some((_, text)) = loaded.image.section(".text") {
            bases = bases.set_text(text);
        }
        if let Some((_, got)) = loaded.image.section(".got") {
            bases = bases.set_got(got);
        }
        let hdr = loaded.image.section(".eh_frame_hdr");
        let fde = match hdr {
            Some((hdr, hdr_addr)) => {
                bases = bases.set_eh_frame_hdr(hdr_addr);
                EhFrameHdr::new(hdr, LittleEndian)
                    .parse(&bases, 8)
                    .ok()
                    .and_then(|parsed| {
                        parsed
                            .table()?
                            .fde_for_address(&eh_frame, &bases, svma, EhFrame::cie_from_offset)
                            .ok()
                    })
            }
            None => eh_frame
                .fde_for_address(&bases, svma, EhFrame::cie_from_offset)
                .ok(),
        };
        if let Some(fde) = fde {
            let signal_frame = fde.is_signal_trampoline();
            return Some(
                fde.unwind_info_for_address(&eh_frame, &bases, context, svma)
                    .map_err(|e| format!("bad CFI: {e}"))
                    .and_then(|row| {
                        apply_row(machine, &eh_frame, row, regs, memory, live_link_register)
                    })
                    .map(|regs| step(machine, regs, signal_frame)),
            );
        }
    }
    let (debug, _) = loaded.debug_section(".debug_frame")?;
    let mut debug_frame = DebugFrame::new(debug, LittleEndian);
    debug_frame.set_address_size(8);
    debug_frame.set_vendor(machine.vendor());
    let bases = BaseAddresses::default();
    let fde = debug_frame
        .fde_for_address(&bases, svma, DebugFrame::cie_from_offset)
        .ok()?;
    let signal_frame = fde.is_signal_trampoline();
    Some(
        fde.unwind_info_for_address(&debug_frame, &bases, context, svma)
            .map_err(|e| format!("bad CFI: {e}"))
            .and_then(|row| apply_row(machine, &debug_frame, row, regs, memory, live_link_register))
            .map(|regs| step(machine, regs, signal_frame)),
    )
}

fn step(machine: &Machine, regs: Regs, signal_frame: bool) -> Step {
    match regs[machine.pc] {
        Some(_) => Step::Caller {
            regs,
            signal_frame,
            leaf: false,
        },
        None => Step::End,
    }
}

/// The caller's registers by one CFI row (`live_link_register`: see below).
fn apply_row<'a, S: UnwindSection<Slice<'a>>>(
    machine: &Machine,
    section: &S,
    row: &UnwindTableRow<usize>,
    regs: &Regs,
    memory: &impl Memory,
    live_link_register: bool,
) -> Result<Regs, String> {
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => regs
            .get(usize::from(register.0))
            .copied()
            .flatten()
            .ok_or_else(|| format!("the CFA's register {} is unknown", register.0))?
            .wrapping_add(*offset as u64),
        CfaRule::Expression(expression) => {
            let expression = expression.get(section).map_err(|e| e.to_string())?;
            evaluate(expression, regs, memory, None)?
        }
    };
    let mut next = machine.caller_of(regs);
    next[machine.sp] = Some(cfa);
    // The return address: its column's rule, else (aarch64) the link register as it was, in
    // the innermost frame or one a signal interrupted (`live_link_register`). A caller further
    // out has saved the link register before calling, so a row without a rule for it is an
    // outermost function (`_start`, `thread_start`: glibc marks x30 undefined only in some
    // releases): the stack ends there.
    let mut return_address = if machine.link_register && live_link_register {
        regs[machine.ra]
    } else {
        None
    };
    let read = |address: u64| {
        memory
            .read_u64(address)
            .map_err(|e| format!("saved register unreadable: {e}"))
    };
    for (register, rule) in row.registers() {
        let number = usize::from(register.0);
        if number >= REGS || (number == machine.pc && machine.pc != machine.ra) {
            continue;
        }
        let value = match rule {
            RegisterRule::Undefined => None,
            RegisterRule::SameValue => regs[number],
            RegisterRule::Offset(offset) => Some(read(cfa.wrapping_add(*offset as u64))?),
            RegisterRule::ValOffset(offset) => Some(cfa.wrapping_add(*offset as u64)),
            RegisterRule::Register(other) => regs.get(usize::from(other.0)).copied().flatten(),
            RegisterRule::Expression(expression) => {
                let expression = expression.get(section).map_err(|e| e.to_string())?;
                Some(read(evaluate(expression, regs, memory, Some(cfa))?)?)
            }
            RegisterRule::ValExpression(expression) => {
                let expression = expression.get(section).map_err(|e| e.to_string())?;
                Some(evaluate(expression, regs, memory, Some(cfa))?)
            }
            RegisterRule::Constant(value) => Some(*value),
            _ => None,
        };
        next[number] = value;
        if number == machine.ra {
            return_address = value;
        }
    }
    next[machine.pc] = return_address.map(|ra| machine.code_address(ra));
    Ok(next)
}

/// A CFI DWARF expression's value (`initial`: the CFA, pushed first for register rules).
fn evaluate(
    expression: gimli::Expression<Slice<'_>>,
    regs: &Regs,
    memory: &impl Memory,
    initial: Option<u64>,
) -> Result<u64, String> {
    let encoding = gimli::Encoding {
        address_size: 8,
        format: gimli::Format::Dwarf32,
        version: 4,
    };
    let mut evaluation = expression.evaluation(encoding);
    // A hostile expression can branch back to itself: bound the operations, not only the
    // resumptions below.
    evaluation.set_max_iterations(10_000);
    if let Some(value) = initial {
        evaluation.set_initial_value(value);
    }
    let fail = |e: gimli::Error| format!("CFI expression: {e}");
    let mut result = evaluation.evaluate().map_err(fail)?;
    for _ in 0..MAX_EXPRESSION_STEPS {
        result = match result {
            EvaluationResult::Complete => {
                let pieces = evaluation.result();
                return match pieces.first().map(|p| &p.location) {
                    Some(Location::Address { address }) => Ok(*address),
                    _ => Err("CFI expression has no address result".into()),
                };
            }
            EvaluationResult::RequiresMemory { address, size, .. } => {
                let mut buf = [0u8; 8];
                let size = usize::from(size).min(8);
                memory
                    .read(address, &mut buf[..size])
                    .map_err(|e| format!("CFI expression reads {e}"))?;
                evaluation
                    .resume_with_memory(Value::Generic(u64::from_le_bytes(buf)))
                    .map_err(fail)?
            }
            EvaluationResult::RequiresRegister { register, .. } => {
                let value = regs
                    .get(usize::from(register.0))
                    .copied()
                    .flatten()
                    .ok_or_else(|| {
                        format!("CFI expression needs unknown register {}", register.0)
                    })?;
                evaluation
                    .resume_with_register(Value::Generic(value))
                    .map_err(fail)?
            }
            _ => return Err("CFI expression needs what a core does not have".into()),
        };
    }
    Err("CFI expression too long".into())
}

/// No CFI: the caller by the frame pointer chain (x86_64 `push rbp; mov rbp, rsp`; aarch64
/// `stp x29, x30, [sp, #-N]!; mov x29, sp`: the saved frame pointer and the return address sit
/// at the frame pointer, in that order, on both).
fn frame_pointer_step(
    machine: &Machine,
    regs: &Regs,
    memory: &impl Memory,
) -> Result<Step, String> {
    let (Some(fp), Some(sp)) = (regs[machine.fp], regs[machine.sp]) else {
        return Err("no CFI and no frame pointer".into());
    };
    if fp < sp || fp - sp > MAX_FRAME_SIZE || fp % 8 != 0 {
        return Err(format!(
            "no CFI for this code and {fp:#x} is no frame pointer"
        ));
    }
    let saved = memory
        .read_u64(fp)
        .map_err(|e| format!("frame pointer chain unreadable: {e}"))?;
    let ra = memory
        .read_u64(fp.wrapping_add(8))
        .map_err(|e| format!("frame pointer chain unreadable: {e}"))?;
    let mut next = machine.caller_of(regs);
    next[machine.fp] = Some(saved);
    next[machine.sp] = Some(fp.wrapping_add(16));
    next[machine.pc] = Some(machine.code_address(ra));
    Ok(Step::Caller {
        regs: next,
        signal_frame: false,
        leaf: false,
    })
}

/// The innermost pc is in no mapped code (a call through a null or wild pointer): the return
/// address is the word the call pushed, at the stack pointer (x86_64), or the link register
/// the call set (aarch64, whose stack the call leaves as it was).
fn call_into_nowhere(machine: &Machine, regs: &Regs, memory: &impl Memory) -> Result<Step, String> {
    let sp = regs[machine.sp].ok_or("no stack pointer")?;
    let mut next = machine.caller_of(regs);
    if machine.link_register {
        let ra = regs[machine.ra].ok_or("no link register")?;
        next[machine.pc] = Some(machine.code_address(ra));
    } else {
        let ra = memory
            .read_u64(sp)
            .map_err(|e| format!("stack unreadable: {e}"))?;
        next[machine.sp] = Some(sp.wrapping_add(8));
        next[machine.pc] = Some(ra);
    }
    Ok(Step::Caller {
        regs: next,
        signal_frame: false,
        leaf: true,
    })
}
