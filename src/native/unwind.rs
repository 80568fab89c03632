//! Unwinding one thread's native stack from its NT_PRSTATUS registers (x86_64).
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

const RSP: usize = 7;
const RBP: usize = 6;
const RA: usize = 16;
/// Registers a callee may clobber: unknown in the caller unless CFI says.
const CALLER_SAVED: [usize; 9] = [0, 1, 2, 4, 5, 8, 9, 10, 11];

type Regs = [Option<u64>; 17];
type Slice<'a> = EndianSlice<'a, LittleEndian>;

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
    if registers.arch != Arch::X86_64 {
        if let Some(pc) = registers.dwarf(32) {
            out.frames.push(RawFrame {
                address: pc,
                lookup: pc,
                module: modules.index_at(pc),
                signal_frame: false,
            });
        }
        out.warnings
            .push("native unwinding supports x86_64 cores only: innermost frame shown".into());
        return out;
    }
    let mut regs: Regs = [None; 17];
    for (number, slot) in regs.iter_mut().enumerate() {
        *slot = registers.dwarf(number as u16);
    }
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
        let (Some(pc), Some(sp)) = (regs[RA], regs[RSP]) else {
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
        let cfi = loaded.and_then(|l| cfi_step(l, lookup, &regs, memory, &mut context));
        let step = match cfi {
            Some(Ok(step)) => Ok(step),
            Some(Err(error)) => Err(error),
            None if first && module.is_none() => call_into_nowhere(&regs, memory),
            None => frame_pointer_step(&regs, memory),
        };
        match step {
            Ok(Step::Caller {
                regs: next,
                signal_frame,
            }) => {
                let next_sp = next[RSP].unwrap_or(0);
                if !signal_frame && next_sp <= sp {
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
    loaded: &Loaded,
    lookup: u64,
    regs: &Regs,
    memory: &impl Memory,
    context: &mut UnwindContext<usize>,
) -> Option<Result<Step, String>> {
    let svma = lookup.wrapping_sub(loaded.bias);
    let bias = loaded.bias;
    if let Some((eh, eh_addr)) = loaded.image.section(".eh_frame") {
        let mut eh_frame = EhFrame::new(eh, LittleEndian);
        eh_frame.set_address_size(8);
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
                    .and_then(|row| apply_row(&eh_frame, row, regs, memory, bias))
                    .map(|regs| step(regs, signal_frame)),
            );
        }
    }
    let (debug, _) = loaded.debug_section(".debug_frame")?;
    let mut debug_frame = DebugFrame::new(debug, LittleEndian);
    debug_frame.set_address_size(8);
    let bases = BaseAddresses::default();
    let fde = debug_frame
        .fde_for_address(&bases, svma, DebugFrame::cie_from_offset)
        .ok()?;
    let signal_frame = fde.is_signal_trampoline();
    Some(
        fde.unwind_info_for_address(&debug_frame, &bases, context, svma)
            .map_err(|e| format!("bad CFI: {e}"))
            .and_then(|row| apply_row(&debug_frame, row, regs, memory, bias))
            .map(|regs| step(regs, signal_frame)),
    )
}

fn step(regs: Regs, signal_frame: bool) -> Step {
    match regs[RA] {
        Some(_) => Step::Caller { regs, signal_frame },
        None => Step::End,
    }
}

/// The caller's registers by one CFI row.
fn apply_row<'a, S: UnwindSection<Slice<'a>>>(
    section: &S,
    row: &UnwindTableRow<usize>,
    regs: &Regs,
    memory: &impl Memory,
    _bias: u64,
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
    let mut next = *regs;
    for register in CALLER_SAVED {
        next[register] = None;
    }
    next[RSP] = Some(cfa);
    next[RA] = None;
    let read = |address: u64| {
        memory
            .read_u64(address)
            .map_err(|e| format!("saved register unreadable: {e}"))
    };
    for (register, rule) in row.registers() {
        let number = usize::from(register.0);
        if number > RA {
            continue;
        }
        next[number] = match rule {
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
    }
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

/// No CFI: the caller by the frame pointer chain (`push rbp; mov rbp, rsp`).
fn frame_pointer_step(regs: &Regs, memory: &impl Memory) -> Result<Step, String> {
    let (Some(rbp), Some(sp)) = (regs[RBP], regs[RSP]) else {
        return Err("no CFI and no frame pointer".into());
    };
    if rbp < sp || rbp - sp > MAX_FRAME_SIZE || rbp % 8 != 0 {
        return Err(format!(
            "no CFI for this code and rbp {rbp:#x} is no frame pointer"
        ));
    }
    let saved = memory
        .read_u64(rbp)
        .map_err(|e| format!("frame pointer chain unreadable: {e}"))?;
    let ra = memory
        .read_u64(rbp.wrapping_add(8))
        .map_err(|e| format!("frame pointer chain unreadable: {e}"))?;
    let mut next = *regs;
    for register in CALLER_SAVED {
        next[register] = None;
    }
    next[RBP] = Some(saved);
    next[RSP] = Some(rbp.wrapping_add(16));
    next[RA] = Some(ra);
    Ok(Step::Caller {
        regs: next,
        signal_frame: false,
    })
}

/// The innermost pc is in no mapped code (a call through a null or wild pointer): the return
/// address is the word the call pushed, at the stack pointer.
fn call_into_nowhere(regs: &Regs, memory: &impl Memory) -> Result<Step, String> {
    let sp = regs[RSP].ok_or("no stack pointer")?;
    let ra = memory
        .read_u64(sp)
        .map_err(|e| format!("stack unreadable: {e}"))?;
    let mut next = *regs;
    for register in CALLER_SAVED {
        next[register] = None;
    }
    next[RSP] = Some(sp.wrapping_add(8));
    next[RA] = Some(ra);
    Ok(Step::Caller {
        regs: next,
        signal_frame: false,
    })
}
