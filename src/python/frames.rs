//! Walking one thread's Python frames, innermost first.
//!
//! Two frame families, chosen by which fields the layout has (no version `match` here):
//! - `PyFrameObject` chains through `f_back` from `tstate->frame` (≤3.10,
//!   Include/cpython/frameobject.h);
//! - `_PyInterpreterFrame` chains through `previous` from `tstate->cframe->current_frame`
//!   (3.11, 3.12) or `tstate->current_frame` (3.13+) (Include/internal/pycore_frame.h).
//!
//! Chains from a crashed process can be corrupt: every walk stops on a cycle, on a depth bound,
//! and on unreadable memory, and says why in a warning.

use std::collections::HashMap;

use crate::bytes::AddressHash;
use std::sync::Arc;

use super::chain_guard::{ChainGuard, Visit};
use super::field::{Field, Ptr};
use super::linetable;
use super::locals::{Family, Local, LocalsReader};
use super::objects::{ObjectError, ObjectResult, Objects};
use crate::memory::Memory;
use crate::warning::{Warning, WarningKind};

/// No real stack is deeper: CPython's recursion limit is 1000 by default, and programs that
/// raise it rarely go past 100,000. A deeper chain is cut with a warning.
pub const MAX_DEPTH: usize = 1_000_000;
/// Frames read in all, over all threads: a corrupt core can make many threads share one long
/// chain, and the work must not multiply.
pub const MAX_TOTAL_FRAMES: usize = 1_000_000;
/// Bytes of names, file names and line tables decoded in all.
const MAX_DECODED_BYTES: usize = 256 << 20;

/// `_PyInterpreterFrame.owner` values from this one up are not Python code: 3.12/3.13's
/// `FRAME_OWNED_BY_CSTACK` (3), 3.14's `FRAME_OWNED_BY_INTERPRETER` (3) and `..._CSTACK` (4)
/// (Include/internal/pycore_frame.h, pycore_interpframe_structs.h).
pub(super) const FIRST_NON_PYTHON_OWNER: u8 = 3;

/// One Python frame: the report's own frame type, built here with its Python half (function,
/// file, line and columns, `entry`, variables) so that a stack is not copied into the report;
/// the report adds the source line, the interpreter's id and, with `--native`, native frames.
pub type Frame = crate::frame::FrameReport;

/// What a code object contributes to every frame that runs it.
#[derive(Debug)]
pub struct CodeInfo {
    name: Arc<str>,
    qualname: Option<Arc<str>>,
    file: Arc<str>,
    first_line: u32,
    /// Shared by every code object that points at the same bytes object; `None` when the
    /// decoding budget ran out (the line is then unknown).
    line_table: Option<Arc<[u8]>>,
}

/// A walk's result: the frames read, and why it stopped early, if it did.
#[derive(Debug, Default)]
pub struct Stack {
    pub frames: Vec<Frame>,
    pub warnings: Vec<Warning>,
    /// An address inside the C stack frame of the innermost interpreter loop running these
    /// frames, when the version keeps one in the chain: 3.11/3.12's `tstate->cframe` (a
    /// `_PyCFrame` local of `_PyEval_EvalFrameDefault`), 3.12+'s C-stack entry frames. It
    /// orders the thread states that one OS thread holds in several interpreters (the lower,
    /// the more recent).
    pub c_stack_hint: Option<u64>,
}

/// Consecutive Python frames at the same place (a recursion: file, line, function) are shown
/// this many times, then counted, as Python's tracebacks do (`[Previous line repeated 996 more
/// times]`, Lib/traceback.py `_RECURSIVE_CUTOFF`); JSON keeps every frame.
pub const REPEAT_CUTOFF: usize = 3;

/// Which frames' variables a walk reads (`--locals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalsScope {
    None,
    EveryFrame,
    /// Not those of the frames the text folds away (a recursion's repeats past the
    /// [`REPEAT_CUTOFF`]th): what the text shows, at the cost of what it shows.
    UnfoldedFrames,
}

/// Frame walker with a cache of decoded code objects shared by all threads of a core.
pub struct FrameWalker<'a, M: Memory> {
    objects: &'a Objects<'a, M>,
    codes: HashMap<u64, Arc<CodeInfo>, AddressHash>,
    /// Line tables by the address of their bytes object.
    line_tables: HashMap<u64, Arc<[u8]>, AddressHash>,
    code_type: Option<u64>,
    /// Frames read so far, over all threads.
    total_frames: usize,
    /// Bytes decoded so far (strings and line tables).
    decoded_bytes: usize,
    /// Reads each frame's variables, when asked to.
    locals: Option<LocalsReader<'a, M>>,
    /// Skip the variables of the frames the text folds.
    skip_folded_locals: bool,
    /// Places decoded: (code object's info, position) → (line, columns), a few by a hash of
    /// both. A recursion repeats one place, and threads running the same code share theirs;
    /// a line table is decoded once per place unless another place took its slot. The memo holds the infos, so no other info
    /// can take one's address while it is compared against.
    places: [Option<PlaceMemo>; PLACE_SLOTS],
}

/// One remembered place: (info, position, line, columns).
type PlaceMemo = (
    Arc<CodeInfo>,
    FramePosition,
    Option<u32>,
    linetable::Position,
);

/// How many places are remembered at once.
const PLACE_SLOTS: usize = 64;

/// The memo slot of `position` in the code object of `code`.
fn place_slot(code: &Arc<CodeInfo>, position: FramePosition) -> usize {
    let at = match position {
        FramePosition::Lasti(lasti) => lasti as u64,
        FramePosition::CodeUnit(index) => index,
        FramePosition::NotStarted => u64::MAX,
    };
    let key = (Arc::as_ptr(code) as u64 >> 4) ^ at.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The product's top bits mix all of the key's.
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % PLACE_SLOTS
}

/// Whether `frame`, read after `before`, is a repeat the text folds: the [`REPEAT_CUTOFF`]
/// frames before it are at its place. A walk's frames are consecutive in the report, so these
/// are frames `render::fold_repeats` folds (it also requires one interpreter, which one walk
/// has, and no native frames between, which the caller rules out).
fn folded_repeat(before: &[Frame], frame: &Frame) -> bool {
    before.len() >= REPEAT_CUTOFF
        && before
            .iter()
            .rev()
            .take(REPEAT_CUTOFF)
            .all(|other| other.same_place(frame))
}

impl<'a, M: Memory> FrameWalker<'a, M> {
    pub fn new(objects: &'a Objects<'a, M>, locals: LocalsScope) -> Self {
        FrameWalker {
            locals: (locals != LocalsScope::None).then(|| LocalsReader::new(objects)),
            skip_folded_locals: locals == LocalsScope::UnfoldedFrames,
            objects,
            codes: HashMap::default(),
            line_tables: HashMap::default(),
            code_type: None,
            total_frames: 0,
            decoded_bytes: 0,
            places: std::array::from_fn(|_| None),
        }
    }

    /// The frames of the thread whose `PyThreadState` is at `tstate`.
    pub fn stack(&mut self, tstate: u64) -> Stack {
        let layout = self.objects.layout;
        self.guarded_walk(|walker, guard, stack| match layout.tstate.frame {
            Some(frame_field) => {
                let first = walker.objects.read(tstate, frame_field)?;
                walker.walk_frame_objects(first, guard, stack)
            }
            None => {
                let first = walker.first_interpreter_frame(tstate, stack)?;
                walker.walk_interpreter_frames(first, guard, stack)
            }
        })
    }

    /// Run `walk` with the constant-memory loop check, and again with the exact one when it
    /// stopped the walk (so that each frame of a looping chain is reported once); a walk's
    /// error becomes the stack's warning.
    fn guarded_walk(
        &mut self,
        walk: impl Fn(&mut Self, &mut ChainGuard, &mut Stack) -> ObjectResult<()>,
    ) -> Stack {
        let budgets = self.budgets_used();
        let mut stack = Stack::default();
        let mut guard = ChainGuard::brent(MAX_DEPTH);
        let mut result = walk(self, &mut guard, &mut stack);
        if guard.wants_exact() {
            // The first pass read a loop's frames up to three times: what it spent is given
            // back, so that the exact pass stops where the old one-pass walk did.
            self.restore_budgets(budgets);
            stack = Stack::default();
            guard = ChainGuard::exact(MAX_DEPTH);
            result = walk(self, &mut guard, &mut stack);
        }
        if let Err(error) = result {
            stack.warnings.push(Warning::new(
                WarningKind::StackCut,
                format!(
                    "stack cut short after {} frames: {error}",
                    stack.frames.len()
                ),
            ));
        }
        stack
    }

    /// The frames from the frame object at `frame` outwards, as a suspended greenlet keeps
    /// them: ≤3.10 the `PyFrameObject` chain itself, 3.11+ the `_PyInterpreterFrame` the
    /// object stands for (`f_frame`) and its `previous` chain.
    pub fn stack_from_frame_object(&mut self, frame: u64) -> Stack {
        let layout = self.objects.layout;
        self.guarded_walk(|walker, guard, stack| match layout.frame.f_frame {
            Some(f_frame) => {
                let first = walker.objects.read(frame, f_frame)?;
                walker.walk_interpreter_frames(first, guard, stack)
            }
            None => walker.walk_frame_objects(frame, guard, stack),
        })
    }

    fn first_interpreter_frame(&self, tstate: u64, stack: &mut Stack) -> ObjectResult<u64> {
        let layout = self.objects.layout;
        match (
            layout.tstate.current_frame,
            layout.tstate.cframe,
            layout.cframe.current_frame,
        ) {
            (Some(current), _, _) => self.objects.read(tstate, current),
            (None, Some(cframe), Some(current)) => {
                let cframe = self.objects.read(tstate, cframe)?;
                if cframe == 0 {
                    return Ok(0);
                }
                stack.c_stack_hint = Some(cframe);
                self.objects.read(cframe, current)
            }
            _ => Err(ObjectError::Invalid(
                "layout names no way to the current frame".into(),
            )),
        }
    }

    /// ≤3.10: `PyFrameObject` via `f_back`.
    fn walk_frame_objects(
        &mut self,
        first: u64,
        guard: &mut ChainGuard,
        stack: &mut Stack,
    ) -> ObjectResult<()> {
        let layout = self.objects.layout;
        let (Some(back), Some(code), Some(lasti)) = (
            layout.frame.f_back,
            layout.frame.f_code,
            layout.frame.f_lasti,
        ) else {
            return Err(ObjectError::Invalid(
                "layout lacks PyFrameObject fields".into(),
            ));
        };
        let mut frame = first;
        while frame != 0 {
            if !self.enter(frame, guard, stack) {
                break;
            }
            let code_addr = self.objects.read(frame, code)?;
            let lasti = self.objects.read(frame, lasti)?;
            let code = self.code_or_placeholder(code_addr, stack);
            let mut python_frame = self.frame_at(&code, FramePosition::Lasti(lasti));
            python_frame.entry = true;
            python_frame.locals =
                self.read_locals(Family::FrameObject, frame, code_addr, &python_frame, stack);
            stack.frames.push(python_frame);
            frame = self.objects.read(frame, back)?;
        }
        Ok(())
    }

    /// 3.11+: `_PyInterpreterFrame` via `previous`, skipping C-stack shim frames.
    fn walk_interpreter_frames(
        &mut self,
        first: u64,
        guard: &mut ChainGuard,
        stack: &mut Stack,
    ) -> ObjectResult<()> {
        let layout = self.objects.layout;
        let (Some(code), Some(previous), Some(instr), Some(owner), Some(adaptive)) = (
            layout.iframe.executable,
            layout.iframe.previous,
            layout.iframe.instr_ptr,
            layout.iframe.owner,
            layout.code.co_code_adaptive,
        ) else {
            return Err(ObjectError::Invalid(
                "layout lacks _PyInterpreterFrame fields".into(),
            ));
        };
        // 3.11 marks a loop's first frame with `is_entry`; 3.12+ put a C-stack shim frame
        // after it instead (Include/internal/pycore_frame.h).
        let is_entry_field = layout.iframe.is_entry;
        let mut frame = first;
        let run_start = |stack: &mut Stack| {
            if let Some(last) = stack.frames.last_mut() {
                last.entry = true;
            }
        };
        while frame != 0 {
            if !self.enter(frame, guard, stack) {
                break;
            }
            let owner_value = self.objects.read(frame, owner)?;
            // 3.14+ tags the low bits of `f_executable` (a `_PyStackRef`); pointers are
            // 8-aligned, so masking is harmless before 3.14.
            let code_addr = self.objects.read(frame, code)? & !0x7;
            if code_addr == 0 {
                // No live frame lacks an executable: this is zeroed memory, as when gdb's gcore
                // fails to read a thread's C stack (glibc 2.41+ guard regions), where entry frames
                // live. The older frames are lost with it.
                stack.warnings.push(Warning::new(WarningKind::FrameZeroed, format!(
                    "the frame at {frame:#x} reads as zeros (memory the core lost; gcore cannot read thread stacks with glibc guard regions): older frames of this thread are missing"
                )));
                break;
            }
            if owner_value >= FIRST_NON_PYTHON_OWNER {
                run_start(stack);
            }
            if owner_value >= FIRST_NON_PYTHON_OWNER && stack.c_stack_hint.is_none() {
                // The innermost loop's entry frame lives on its C stack (3.14's base frame,
                // in the thread state, does not: the report checks the address).
                stack.c_stack_hint = Some(frame);
            }
            if owner_value < FIRST_NON_PYTHON_OWNER && self.is_code(code_addr)? {
                let instr_ptr = self.objects.read(frame, instr)?;
                let code_info = self.code_or_placeholder(code_addr, stack);
                let start = code_addr.wrapping_add(u64::from(adaptive));
                let position = if instr_ptr < start {
                    FramePosition::NotStarted
                } else {
                    FramePosition::CodeUnit((instr_ptr - start) / 2)
                };
                let mut python_frame = self.frame_at(&code_info, position);
                if let Some(field) = is_entry_field {
                    python_frame.entry = self.objects.read(frame, field)? != 0;
                }
                python_frame.locals = self.read_locals(
                    Family::InterpreterFrame,
                    frame,
                    code_addr,
                    &python_frame,
                    stack,
                );
                stack.frames.push(python_frame);
            }
            frame = self.objects.read(frame, previous)?;
        }
        run_start(stack);
        Ok(())
    }

    /// One frame on its own, as the layout's family has it: a `PyFrameObject` (≤3.10) or a
    /// `_PyInterpreterFrame` (3.11+), such as a suspended coroutine's. Counted against the same
    /// budgets as the threads' walks; problems with its code object go to `warnings`.
    pub fn one_frame(&mut self, frame: u64, warnings: &mut Vec<Warning>) -> ObjectResult<Frame> {
        let layout = self.objects.layout;
        let mut stack = Stack::default();
        // One frame: the exact guard, whose stops carry their warning.
        if !self.enter(frame, &mut ChainGuard::exact(MAX_DEPTH), &mut stack) {
            warnings.append(&mut stack.warnings);
            return Err(ObjectError::Invalid("the frame budget is spent".into()));
        }
        let python_frame =
            if let (Some(code), Some(lasti)) = (layout.frame.f_code, layout.frame.f_lasti) {
                let code_addr = self.objects.read(frame, code)?;
                let lasti = self.objects.read(frame, lasti)?;
                let code = self.code_or_placeholder(code_addr, &mut stack);
                self.frame_at(&code, FramePosition::Lasti(lasti))
            } else {
                let (Some(code), Some(instr), Some(adaptive)) = (
                    layout.iframe.executable,
                    layout.iframe.instr_ptr,
                    layout.code.co_code_adaptive,
                ) else {
                    return Err(ObjectError::Invalid("layout lacks frame fields".into()));
                };
                // 3.14+ tags the low bits of `f_executable` (see walk_interpreter_frames).
                let code_addr = self.objects.read(frame, code)? & !0x7;
                if !self.is_code(code_addr)? {
                    return Err(ObjectError::Invalid(format!(
                        "the frame at {frame:#x} runs no code object"
                    )));
                }
                let instr_ptr = self.objects.read(frame, instr)?;
                let code_info = self.code_or_placeholder(code_addr, &mut stack);
                let start = code_addr.wrapping_add(u64::from(adaptive));
                let position = if instr_ptr < start {
                    FramePosition::NotStarted
                } else {
                    FramePosition::CodeUnit((instr_ptr - start) / 2)
                };
                self.frame_at(&code_info, position)
            };
        warnings.append(&mut stack.warnings);
        Ok(python_frame)
    }

    /// The variables of `read`, the frame at `frame`, when asked for; empty (with a warning)
    /// when unreadable.
    fn read_locals(
        &mut self,
        family: Family,
        frame: u64,
        code: u64,
        read: &Frame,
        stack: &mut Stack,
    ) -> Option<Vec<Local>> {
        let reader = self.locals.as_mut()?;
        if self.skip_folded_locals && folded_repeat(&stack.frames, read) {
            return None;
        }
        match reader.locals(family, frame, code) {
            Ok(locals) => Some(locals),
            Err(error) => {
                stack.warnings.push(Warning::new(
                    WarningKind::LocalsUnreadable,
                    format!("the variables of the frame at {frame:#x} are unreadable: {error}"),
                ));
                Some(Vec::new())
            }
        }
    }

    /// The budgets spent so far: frames, decoded bytes, variables.
    fn budgets_used(&self) -> (usize, usize, usize) {
        let locals = self.locals.as_ref().map_or(0, LocalsReader::read_so_far);
        (self.total_frames, self.decoded_bytes, locals)
    }

    fn restore_budgets(&mut self, (frames, decoded, locals): (usize, usize, usize)) {
        self.total_frames = frames;
        self.decoded_bytes = decoded;
        if let Some(reader) = self.locals.as_mut() {
            reader.set_read_so_far(locals);
        }
    }

    /// Record a visit; false (with a warning) on a loop or past the depth bound. The
    /// constant-memory guard's stops have no warning: the walk is done again with the exact one.
    fn enter(&mut self, frame: u64, guard: &mut ChainGuard, stack: &mut Stack) -> bool {
        self.total_frames += 1;
        let spent = if self.decoded_bytes > MAX_DECODED_BYTES * 4 {
            Some(format!(
                "the frames' names add up to more than {} MiB: the core is corrupt; stopped",
                (MAX_DECODED_BYTES * 4) >> 20
            ))
        } else if self.total_frames > MAX_TOTAL_FRAMES {
            Some(format!(
                "more than {MAX_TOTAL_FRAMES} frames in all threads: the core is corrupt; stopped"
            ))
        } else {
            None
        };
        if let Some(message) = spent {
            // A loop the constant-memory guard had not seen yet may have spent the budget:
            // the exact pass tells.
            if guard.is_exact() {
                stack
                    .warnings
                    .push(Warning::new(WarningKind::FrameBudget, message));
            } else {
                guard.stop();
            }
            return false;
        }
        match guard.visit(frame) {
            Visit::New => true,
            _ if !guard.is_exact() => false,
            Visit::Loop => {
                stack.warnings.push(Warning::new(
                    WarningKind::FrameChainLoop,
                    format!("frame chain loops back to {frame:#x}; stopped there"),
                ));
                false
            }
            Visit::TooDeep => {
                stack.warnings.push(Warning::new(
                    WarningKind::StackTooDeep,
                    format!("stack deeper than {MAX_DEPTH} frames; cut there"),
                ));
                false
            }
        }
    }

    /// Whether `object` is a code object (3.13+ frames may run other executables).
    fn is_code(&mut self, object: u64) -> ObjectResult<bool> {
        if self.codes.contains_key(&object) {
            return Ok(true);
        }
        let type_object = self.objects.type_of(object)?;
        if Some(type_object) == self.code_type {
            return Ok(true);
        }
        if self.objects.type_name(object)? == "code" {
            self.code_type = Some(type_object);
            return Ok(true);
        }
        Ok(false)
    }

    fn code(&mut self, code: u64) -> ObjectResult<Arc<CodeInfo>> {
        if let Some(info) = self.codes.get(&code) {
            return Ok(Arc::clone(info));
        }
        if self.decoded_bytes > MAX_DECODED_BYTES {
            return Err(ObjectError::Invalid(format!(
                "more than {MAX_DECODED_BYTES} bytes of names and line tables decoded: the core is corrupt"
            )));
        }
        let info = Arc::new(self.read_code(code)?);
        self.decoded_bytes +=
            info.name.len() + info.file.len() + info.qualname.as_ref().map_or(0, |q| q.len());
        self.codes.insert(code, Arc::clone(&info));
        Ok(info)
    }

    /// The code object's details, or a placeholder (with a warning) when they are unreadable:
    /// one damaged code object must not cost the frames around it.
    fn code_or_placeholder(&mut self, code: u64, stack: &mut Stack) -> Arc<CodeInfo> {
        self.code(code).unwrap_or_else(|error| {
            stack.warnings.push(Warning::new(
                WarningKind::CodeObjectUnreadable,
                format!("code object at {code:#x} is unreadable: {error}"),
            ));
            Arc::new(CodeInfo {
                name: format!("<unreadable code object {code:#x}>").into(),
                qualname: None,
                file: "<unknown>".into(),
                first_line: 0,
                line_table: None,
            })
        })
    }

    fn read_code(&mut self, code: u64) -> ObjectResult<CodeInfo> {
        let objects = self.objects;
        let layout = objects.layout;
        let field = |field: Field<Ptr>| objects.read(code, field);
        let name = objects.unicode(field(layout.code.co_name)?)?.into();
        let file = objects.unicode(field(layout.code.co_filename)?)?.into();
        let qualname = match layout.code.co_qualname {
            Some(offset) => Some(objects.unicode(field(offset)?)?.into()),
            None => None,
        };
        let first_line = objects.read(code, layout.code.co_firstlineno)?.max(0) as u32;
        let table_field = layout.code.co_linetable.or(layout.code.co_lnotab);
        let line_table = match table_field {
            Some(offset) => self.line_table(field(offset)?)?,
            None => Some(Arc::from(Vec::new())),
        };
        Ok(CodeInfo {
            name,
            qualname,
            file,
            first_line,
            line_table,
        })
    }

    /// The bytes of a line table, decoded once per bytes object and within the budget.
    fn line_table(&mut self, bytes_object: u64) -> ObjectResult<Option<Arc<[u8]>>> {
        if let Some(table) = self.line_tables.get(&bytes_object) {
            return Ok(Some(Arc::clone(table)));
        }
        if self.decoded_bytes > MAX_DECODED_BYTES {
            return Ok(None);
        }
        let table: Arc<[u8]> = Arc::from(self.objects.bytes(bytes_object)?);
        self.decoded_bytes += table.len();
        self.line_tables.insert(bytes_object, Arc::clone(&table));
        Ok(Some(table))
    }

    fn frame_at(&mut self, code: &Arc<CodeInfo>, position: FramePosition) -> Frame {
        // Each frame shares its code object's names, but every format prints them once per
        // frame: count them against the same budget, so that many frames of one huge-named
        // code object cannot multiply the output.
        self.decoded_bytes +=
            code.name.len() + code.file.len() + code.qualname.as_ref().map_or(0, |q| q.len());
        let slot = place_slot(code, position);
        let (line, exact) = match self.places.get(slot) {
            Some(Some((info, at, line, exact))) if Arc::ptr_eq(info, code) && *at == position => {
                (*line, *exact)
            }
            _ => {
                let (line, exact) = self.place(code, position);
                if let Some(memo) = self.places.get_mut(slot) {
                    *memo = Some((Arc::clone(code), position, line, exact));
                }
                (line, exact)
            }
        };
        Frame {
            function: code.name.clone(),
            qualname: code.qualname.clone(),
            file: code.file.clone(),
            line,
            first_line: code.first_line,
            end_line: exact.end_line,
            column: exact.column,
            end_column: exact.end_column,
            ..Frame::default()
        }
    }

    /// The line and, 3.11+, the columns of `position` in `code`.
    fn place(
        &self,
        code: &CodeInfo,
        position: FramePosition,
    ) -> (Option<u32>, linetable::Position) {
        let layout = self.objects.layout;
        let table = code.line_table.as_deref();
        let mut exact = linetable::Position::default();
        let line = match (position, table) {
            (FramePosition::NotStarted, _) => Some(code.first_line),
            (FramePosition::Lasti(lasti), _) if lasti < 0 => Some(code.first_line),
            // The table could not be decoded within the budget: the line is unknown.
            (_, None) => None,
            (FramePosition::Lasti(lasti), Some(table)) => {
                if layout.code.co_linetable.is_some() {
                    // 3.10: f_lasti counts code units; the table counts bytes.
                    linetable::linetable_310_line(table, code.first_line, lasti as u64 * 2)
                } else {
                    let signed = layout.lnotab_signed;
                    Some(linetable::lnotab_line(
                        table,
                        code.first_line,
                        lasti as u64,
                        signed,
                    ))
                }
            }
            (FramePosition::CodeUnit(index), Some(table)) => {
                exact = linetable::location_table_position(table, code.first_line, index)
                    .unwrap_or_default();
                exact.line
            }
        };
        (line, exact)
    }
}

/// Where in its code a frame is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FramePosition {
    /// ≤3.10 `f_lasti` (bytes ≤3.9, code units 3.10; -1 before the first instruction).
    Lasti(i32),
    /// 3.11+: index of the current code unit.
    CodeUnit(u64),
    /// 3.11+: the frame has not executed its first instruction.
    NotStarted,
}
