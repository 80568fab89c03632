//! Greenlets (the `greenlet` package, which gevent runs on): every greenlet's Python stack, the
//! suspended ones included, which keep their frames in the greenlet object while another one
//! runs on their thread.
//!
//! Nothing is read unless `greenlet` (or `greenlet._greenlet`) is in `sys.modules`: a process
//! without it costs one dict look-up.
//!
//! **Finding them.** greenlet keeps no list of its greenlets, but every greenlet is tracked by
//! the garbage collector, so the collector's lists (`PyGC_Head` chains from each generation's
//! head: Include/internal/pycore_gc.h, 2.7/3.6 Modules/gcmodule.c) are walked, within a budget,
//! for objects whose type is `greenlet.greenlet` or a subclass (gevent's `Greenlet`). Free-
//! threaded builds keep no such lists: a warning says the greenlets cannot be found there.
//!
//! **Reading them.** A greenlet's switching state is a small block of words: the `PyGreenlet`
//! itself in greenlet 0.4/1.x (greenlet.h: `stack_start, stack_stop, stack_copy, stack_saved,
//! stack_prev, parent, run_info, top_frame, ...` after `PyObject_HEAD`), the C++ `Greenlet` that
//! `PyGreenlet.pimpl` points to in 2.x/3.x (TGreenlet.hpp: `exception_state, switch_args,
//! stack_state {_stack_start, stack_stop, ...}, python_state {_context, _top_frame, ...}`),
//! whose offsets move with greenlet's version, the compiler and the Python version. Rather
//! than a table per greenlet release, two members are found in the data itself, by facts that
//! hold in every release (TStackState.cpp `make_main`, greenlet.c `green_create_main`):
//! - `stack_stop` is the first word equal to `-1` (`(char*)-1`) in a *main* greenlet's block
//!   (every thread that uses greenlets has one), and in a started greenlet's block the word
//!   after its `stack_start`, both addresses on one C stack: of the first `-1` offsets of all
//!   blocks, the one most blocks bear out is taken (user greenlets may hold a `-1` further on,
//!   as gevent's do); `stack_start` is the word before it (0 once a greenlet is dead);
//! - `top_frame` (the suspended greenlet's innermost frame object, `NULL` while it runs) is the
//!   word after `stack_stop`, within a bounded window, that most often points to an object of
//!   type `frame`.
//!
//! The walk from a suspended greenlet's `top_frame` is the thread walk of [`FrameWalker`] (a
//! `PyFrameObject` chain ≤3.10, the `_PyInterpreterFrame` chain from `f_frame` 3.11+; greenlet
//! 3.0.2+ relinks 3.12+'s chain past the C-stack entry frames while a greenlet is suspended).
//!
//! **Which thread.** A suspended greenlet's `stack_start` is where it switched away on its
//! thread's C stack, and a started non-main greenlet's `stack_stop` is on the C stack of the
//! thread it was started on: the report joins the greenlet to the thread whose stack holds one
//! of them. A greenlet without saved frames that is started and not dead runs on its thread: its
//! frames are the thread's own.

use std::collections::HashMap;

use super::frames::{Frame, FrameWalker};
use super::names::module_attribute;
use super::objects::Objects;
use crate::memory::Memory;
use crate::warning::{Warning, WarningKind};

/// Objects visited on the collector's lists in all: no real heap has more tracked objects.
const MAX_GC_OBJECTS: usize = 50_000_000;
/// Greenlets read in all.
const MAX_GREENLETS: usize = 1_000_000;
/// Words of a greenlet's state block searched for `stack_stop` and `top_frame`.
const STATE_WORDS: usize = 64;
/// How far after `stack_stop` `top_frame` may be (words).
const TOP_FRAME_WINDOW: usize = 24;
/// A greenlet's saved stack spans less than this (its thread's stack is smaller).
const MAX_STACK_SPAN: u64 = 1 << 30;
/// Started greenlets whose words are searched for `top_frame`.
const TOP_FRAME_SAMPLE: usize = 10_000;
/// Base classes followed up from a type before it is taken for not a greenlet.
const MAX_BASES: usize = 64;
/// `stack_start` of a main greenlet that never switched away.
const MAIN_STACK_START: u64 = 1;
/// `stack_stop` of every main greenlet.
const MAIN_STACK_STOP: u64 = u64::MAX;

/// One greenlet that is started and not dead.
#[derive(Debug, Clone)]
pub struct Greenlet {
    /// Address of the `PyGreenlet`.
    pub address: u64,
    /// The thread's main greenlet (the one the thread started in).
    pub main: bool,
    /// No frames saved: it is the one running on its thread (its frames are the thread's).
    pub running: bool,
    /// Addresses on the C stack of its thread (`stack_start`, `stack_stop`), most telling first.
    pub stack_addresses: Vec<u64>,
    /// A suspended greenlet's frames, innermost first (empty for a running one).
    pub frames: Vec<Frame>,
    pub warnings: Vec<Warning>,
}

/// What was found of greenlets in a process where `greenlet` is loaded.
#[derive(Debug, Clone, Default)]
pub struct GreenletState {
    /// `greenlet.__version__`, when readable.
    pub version: Option<String>,
    pub greenlets: Vec<Greenlet>,
    pub warnings: Vec<Warning>,
}

/// Where the collector's list heads are.
pub enum GcRoots {
    /// `PyInterpreterState.gc` (3.9+) or `_PyRuntimeState.gc` (3.7, 3.8): the address of the
    /// struct that holds the generations array and the permanent generation.
    Structs {
        generations: u64,
        permanent: Option<u64>,
    },
    /// 2.7, 3.6: `_PyGC_generation0`, the pointer to gcmodule.c's `generations[0].head`.
    Generation0(u64),
    /// Free-threaded builds: no lists.
    None,
    /// The build does not say where its lists are (2.7/3.6 without `_PyGC_generation0`).
    Unknown,
}

/// The greenlets of the interpreter at `interpreter`, or `None` when `greenlet` is not loaded.
pub fn greenlets<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
    roots: GcRoots,
    walker: &mut FrameWalker<'_, M>,
) -> Option<GreenletState> {
    ["greenlet", "greenlet._greenlet"]
        .into_iter()
        .find_map(|name| loaded_module(objects, interpreter, name))?;
    let mut state = GreenletState {
        version: module_attribute(objects, interpreter, "greenlet", "__version__")
            .ok()
            .flatten()
            .and_then(|v| objects.unicode(v).ok()),
        ..GreenletState::default()
    };
    let warn = |state: &mut GreenletState, message: String| {
        state
            .warnings
            .push(Warning::new(WarningKind::Greenlets, message));
    };
    let Some(greenlet_type) = ["greenlet._greenlet", "greenlet"]
        .into_iter()
        .find_map(|m| {
            module_attribute(objects, interpreter, m, "greenlet")
                .ok()
                .flatten()
        })
    else {
        warn(
            &mut state,
            "greenlet is loaded but its type greenlet.greenlet is not found".into(),
        );
        return Some(state);
    };
    let heads = match list_heads(objects, interpreter, roots) {
        Ok(heads) => heads,
        Err(message) => {
            warn(&mut state, message);
            return Some(state);
        }
    };
    let mut finder = Finder {
        objects,
        greenlet_type,
        is_greenlet: HashMap::new(),
        visited: 0,
    };
    let mut found = Vec::new();
    for head in heads {
        if let Err(message) = finder.collect(head, &mut found) {
            warn(&mut state, message);
        }
    }
    let blocks = state_blocks(objects, &found, state.version.as_deref());
    let words = |index: usize| {
        let (_, block, max_words) = blocks.get(index)?;
        read_words(objects.memory, *block, *max_words)
    };
    let Some(layout) = GreenletLayout::infer(objects, blocks.len(), words) else {
        if !blocks.is_empty() {
            warn(&mut state, format!(
                "{} greenlets found but their state is not recognised (no main greenlet's stack_stop of -1): their stacks are not shown",
                blocks.len()
            ));
        }
        return Some(state);
    };
    for (index, (address, _, _)) in blocks.iter().enumerate() {
        let Some(words) = words(index) else {
            continue;
        };
        let word = |i: usize| words.get(i).copied().unwrap_or(0);
        let (start, stop) = (word(layout.stack_stop - 1), word(layout.stack_stop));
        if start == 0 || stop == 0 {
            continue; // dead, or never started
        }
        let main = stop == MAIN_STACK_STOP;
        let top_frame = layout.top_frame.map_or(0, word);
        let suspended = top_frame != 0 && layout.is_frame(objects, top_frame);
        let mut stack_addresses = Vec::new();
        if suspended && start != MAIN_STACK_START {
            stack_addresses.push(start);
        }
        if !main {
            stack_addresses.push(stop);
        }
        if !suspended && main && start != MAIN_STACK_START {
            stack_addresses.push(start);
        }
        let (frames, warnings) = if suspended {
            let stack = walker.stack_from_frame_object(top_frame);
            (stack.frames, stack.warnings)
        } else {
            (Vec::new(), Vec::new())
        };
        state.greenlets.push(Greenlet {
            address: *address,
            main,
            running: !suspended,
            stack_addresses,
            frames,
            warnings,
        });
    }
    Some(state)
}

/// `sys.modules[name]`, if it is there.
fn loaded_module<M: Memory>(objects: &Objects<'_, M>, interpreter: u64, name: &str) -> Option<u64> {
    super::names::loaded_module(objects, interpreter, name)
        .ok()
        .flatten()
}

/// The `PyGC_Head` list heads to walk.
fn list_heads<M: Memory>(
    objects: &Objects<'_, M>,
    interpreter: u64,
    roots: GcRoots,
) -> Result<Vec<u64>, String> {
    let gc = &objects.layout.gc;
    let stride = u64::from(gc.generation_size);
    // NUM_GENERATIONS is 3 in every version.
    let generations = |first: u64| (0..3u64).map(move |i| first.wrapping_add(i * stride));
    match roots {
        GcRoots::Structs {
            generations: first,
            permanent,
        } => Ok(generations(first).chain(permanent).collect()),
        GcRoots::Generation0(symbol) => {
            let first = objects
                .pointer(symbol)
                .map_err(|e| format!("_PyGC_generation0 is unreadable: {e}"))?;
            Ok(generations(first).collect())
        }
        GcRoots::None => Err(format!(
            "free-threaded builds keep no lists of tracked objects: the greenlets of interpreter {interpreter:#x} cannot be found (only the running ones, as threads, are shown)"
        )),
        GcRoots::Unknown => Err(
            "the garbage collector's lists are not found (no _PyGC_generation0): suspended greenlets cannot be shown".to_string()
        ),
    }
}

/// Walks the collector's lists for greenlets.
struct Finder<'a, 'm, M: Memory> {
    objects: &'a Objects<'m, M>,
    greenlet_type: u64,
    /// Type object → whether it is `greenlet.greenlet` or a subclass.
    is_greenlet: HashMap<u64, bool>,
    /// Objects visited so far, over all lists.
    visited: usize,
}

impl<M: Memory> Finder<'_, '_, M> {
    /// Append the greenlets on the list whose head is at `head`.
    fn collect(&mut self, head: u64, found: &mut Vec<u64>) -> Result<(), String> {
        let gc = &self.objects.layout.gc;
        let header = u64::from(gc.head_size);
        // The low bits of `_gc_next` are flags during a collection (3.8+); headers are aligned.
        let next = |node: u64| {
            self.objects
                .read(node, gc.next)
                .map(|n| n & !0x7)
                .map_err(|e| format!("the collector's list at {head:#x} is cut at {node:#x}: {e}"))
        };
        let mut node = next(head)?;
        // Brent's cycle detection: a loop that does not pass the head is found after about
        // twice its length, not after the whole budget.
        let (mut checkpoint, mut steps, mut power) = (head, 0usize, 1usize);
        while node != head {
            if node == checkpoint {
                return Err(format!(
                    "the collector's list at {head:#x} loops back to {node:#x}: greenlets past it are not shown"
                ));
            }
            steps += 1;
            if steps == power {
                (checkpoint, steps, power) = (node, 0, power.saturating_mul(2));
            }
            if node == 0 {
                return Err(format!(
                    "the collector's list at {head:#x} ends in a null pointer"
                ));
            }
            self.visited += 1;
            if self.visited > MAX_GC_OBJECTS {
                return Err(format!("more than {MAX_GC_OBJECTS} objects on the collector's lists (a loop, or a corrupt core): greenlets past them are not shown"));
            }
            let object = node.wrapping_add(header);
            if let Ok(object_type) = self.objects.type_of(object) {
                if self.greenlet(object_type) {
                    if found.len() >= MAX_GREENLETS {
                        return Err(format!(
                            "more than {MAX_GREENLETS} greenlets: the others are not shown"
                        ));
                    }
                    found.push(object);
                }
            }
            node = next(node)?;
        }
        Ok(())
    }

    /// Whether a type is `greenlet.greenlet` or derives from it (gevent's `Greenlet`).
    fn greenlet(&mut self, type_object: u64) -> bool {
        if let Some(known) = self.is_greenlet.get(&type_object) {
            return *known;
        }
        let mut current = type_object;
        let mut answer = false;
        for _ in 0..MAX_BASES {
            if current == self.greenlet_type {
                answer = true;
                break;
            }
            match self
                .objects
                .read(current, self.objects.layout.type_object.tp_base)
            {
                Ok(base) if base != 0 => current = base,
                _ => break,
            }
        }
        self.is_greenlet.insert(type_object, answer);
        answer
    }
}

/// Each greenlet, its state block and how many words of it may be read: the object itself
/// (greenlet 0.4/1.x), up to the end of the object (`tp_basicsize`: greenlets are allocated side
/// by side, and the next one's `-1` or frame pointer must not be taken for this one's), or the
/// C++ `Greenlet` at `pimpl`, the third word after `PyObject_HEAD` (2.x/3.x, greenlet.h).
fn state_blocks<M: Memory>(
    objects: &Objects<'_, M>,
    greenlets: &[u64],
    version: Option<&str>,
) -> Vec<(u64, u64, usize)> {
    let c_struct = version
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major < 2);
    let header = u64::from(objects.layout.object.ob_type.offset()) + 8;
    let object_words = |greenlet: u64| -> Option<usize> {
        let type_object = objects.type_of(greenlet).ok()?;
        let size = objects
            .read(type_object, objects.layout.type_object.tp_basicsize)
            .ok()?;
        let words = u64::try_from(size).ok()?.checked_sub(header)? / 8;
        Some(usize::try_from(words).ok()?.clamp(8, STATE_WORDS))
    };
    greenlets
        .iter()
        .filter_map(|&greenlet| {
            if c_struct {
                let words = object_words(greenlet).unwrap_or(STATE_WORDS);
                Some((greenlet, greenlet.wrapping_add(header), words))
            } else {
                let block = objects.pointer(greenlet.wrapping_add(header + 16)).ok()?;
                Some((greenlet, block, STATE_WORDS))
            }
        })
        .collect()
}

/// Up to `max_words` words from `addr` (fewer where memory ends).
fn read_words(memory: &impl Memory, addr: u64, max_words: usize) -> Option<Vec<u64>> {
    if addr == 0 {
        return None;
    }
    let mut words = max_words.min(STATE_WORDS);
    while words >= 8 {
        if let Ok(bytes) = memory.read_vec(addr, words * 8) {
            return Some(
                bytes
                    .chunks_exact(8)
                    .filter_map(|c| crate::bytes::u64_at(c, 0))
                    .collect(),
            );
        }
        words /= 2;
    }
    None
}

/// Where `stack_stop` and `top_frame` are in the state blocks of this process's greenlets (word
/// indexes), inferred from the blocks (see the module's comment).
struct GreenletLayout {
    stack_stop: usize,
    top_frame: Option<usize>,
    frame_type: Option<u64>,
}

impl GreenletLayout {
    /// From the words of `count` state blocks, which `words` reads (each read when needed: a
    /// process may have a million greenlets).
    fn infer<M: Memory>(
        objects: &Objects<'_, M>,
        count: usize,
        words: impl Fn(usize) -> Option<Vec<u64>>,
    ) -> Option<Self> {
        // Candidates: the first -1 word of each block (past word 0). Other members may be -1
        // in user greenlets (gevent's have one further on), so each candidate is scored by the
        // blocks that bear it out: a started user greenlet's pair (its switch point just
        // below its start mark on one stack: two non-zero ascending words less than a stack
        // apart) counts twice, a main greenlet's (-1 after a non-zero start) once; zeros (dead
        // or unstarted greenlets) count nothing. The best score wins, the lowest index on ties.
        let mut candidates: Vec<usize> = (0..count)
            .filter_map(&words)
            .filter_map(|words| {
                words
                    .iter()
                    .skip(1)
                    .position(|w| *w == MAIN_STACK_STOP)
                    .map(|i| i + 1)
            })
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.truncate(STATE_WORDS);
        let evidence = |words: &[u64], index: usize| {
            let (Some(&start), Some(&stop)) = (words.get(index - 1), words.get(index)) else {
                return 0;
            };
            match (start, stop) {
                (0, _) | (_, 0) => 0,
                (_, MAIN_STACK_STOP) => 1,
                (start, stop) if start < stop && stop - start < MAX_STACK_SPAN => 2,
                _ => 0,
            }
        };
        let mut scores = vec![0usize; candidates.len()];
        for words in (0..count).filter_map(&words).take(TOP_FRAME_SAMPLE) {
            for (score, index) in scores.iter_mut().zip(&candidates) {
                *score += evidence(&words, *index);
            }
        }
        let best = scores.iter().copied().max()?;
        let stack_stop = *candidates
            .iter()
            .zip(&scores)
            .find(|(_, score)| **score == best)?
            .0;
        let mut layout = GreenletLayout {
            stack_stop,
            top_frame: None,
            frame_type: None,
        };
        let mut types: HashMap<u64, bool> = HashMap::new();
        let mut candidates = Vec::new();
        let mut sampled = 0;
        for words in (0..count).filter_map(&words) {
            if words.get(stack_stop - 1).is_none_or(|w| *w == 0) {
                continue; // dead: no frames
            }
            sampled += 1;
            if sampled > TOP_FRAME_SAMPLE {
                break;
            }
            let window = stack_stop + 1..(stack_stop + 1 + TOP_FRAME_WINDOW).min(words.len());
            for index in window {
                let word = words.get(index).copied().unwrap_or(0);
                if word == 0 || word % 8 != 0 {
                    continue;
                }
                let Ok(object_type) = objects.type_of(word) else {
                    continue;
                };
                let frame = *types.entry(object_type).or_insert_with(|| {
                    objects
                        .type_object_name(object_type)
                        .is_ok_and(|name| name == "frame")
                });
                if frame {
                    layout.frame_type = Some(object_type);
                    candidates.push(index);
                }
            }
        }
        layout.top_frame = most_common(candidates.into_iter());
        Some(layout)
    }

    /// Whether `object` is a frame object.
    fn is_frame<M: Memory>(&self, objects: &Objects<'_, M>, object: u64) -> bool {
        object % 8 == 0
            && self.frame_type.is_some()
            && objects.type_of(object).ok() == self.frame_type
    }
}

/// The most frequent value (the smallest among equals).
fn most_common(values: impl Iterator<Item = usize>) -> Option<usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(value, count)| (*count, std::cmp::Reverse(*value)))
        .map(|(value, _)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::fake::FakeMemory;
    use crate::python::layouts;
    use crate::python::Shape;

    const HEAD: u64 = 0x1000;
    const GREENLET_TYPE: u64 = 0x9000;
    const SUBCLASS: u64 = 0x9400;
    const OTHER_TYPE: u64 = 0x9800;

    fn layout() -> &'static crate::python::Layout {
        layouts::lookup(3, 12, Shape::Release).expect("3.12 table")
    }

    /// A `PyGC_Head` at `node` whose next is `next`, followed by an object of type `ty`.
    fn tracked(memory: &mut FakeMemory, node: u64, next: u64, ty: u64) {
        let layout = layout();
        let mut bytes = vec![0u8; 64];
        let at = layout.gc.next.offset() as usize;
        bytes[at..at + 8].copy_from_slice(&next.to_le_bytes());
        let object = layout.gc.head_size as usize + layout.object.ob_type.offset() as usize;
        bytes[object..object + 8].copy_from_slice(&ty.to_le_bytes());
        memory.add(node, bytes);
    }

    fn types(memory: &mut FakeMemory, subclass_base: u64) {
        let base = layout().type_object.tp_base.offset() as usize;
        for (ty, parent) in [
            (GREENLET_TYPE, 0),
            (SUBCLASS, subclass_base),
            (OTHER_TYPE, 0),
        ] {
            let mut bytes = vec![0u8; 512];
            bytes[base..base + 8].copy_from_slice(&parent.to_le_bytes());
            memory.add(ty, bytes);
        }
    }

    fn collect(memory: &FakeMemory) -> (Vec<u64>, Result<(), String>) {
        let objects = Objects::new(memory, layout());
        let mut finder = Finder {
            objects: &objects,
            greenlet_type: GREENLET_TYPE,
            is_greenlet: HashMap::new(),
            visited: 0,
        };
        let mut found = Vec::new();
        let result = finder.collect(HEAD, &mut found);
        (found, result)
    }

    #[test]
    fn greenlets_and_subclasses_are_found_on_a_list() {
        let mut memory = FakeMemory::default();
        types(&mut memory, GREENLET_TYPE);
        tracked(&mut memory, HEAD, 0x2000, 0);
        tracked(&mut memory, 0x2000, 0x3000, GREENLET_TYPE);
        tracked(&mut memory, 0x3000, 0x4000, OTHER_TYPE);
        tracked(&mut memory, 0x4000, HEAD, SUBCLASS);
        let (found, result) = collect(&memory);
        let header = u64::from(layout().gc.head_size);
        assert_eq!(result, Ok(()));
        assert_eq!(found, vec![0x2000 + header, 0x4000 + header]);
    }

    #[test]
    fn a_loop_that_misses_the_head_stops_the_walk() {
        let mut memory = FakeMemory::default();
        types(&mut memory, GREENLET_TYPE);
        tracked(&mut memory, HEAD, 0x2000, 0);
        tracked(&mut memory, 0x2000, 0x3000, GREENLET_TYPE);
        tracked(&mut memory, 0x3000, 0x4000, OTHER_TYPE);
        tracked(&mut memory, 0x4000, 0x2000, OTHER_TYPE);
        let (found, result) = collect(&memory);
        assert!(result.unwrap_err().contains("loops"));
        assert!(!found.is_empty());
    }

    #[test]
    fn null_and_unreadable_links_end_the_walk_with_an_error() {
        let mut memory = FakeMemory::default();
        types(&mut memory, GREENLET_TYPE);
        tracked(&mut memory, HEAD, 0x2000, 0);
        tracked(&mut memory, 0x2000, 0, GREENLET_TYPE);
        assert!(collect(&memory).1.unwrap_err().contains("null"));
        tracked(&mut memory, 0x2000, 0xdead_0000, GREENLET_TYPE);
        assert!(collect(&memory).1.unwrap_err().contains("cut"));
    }

    #[test]
    fn a_cycle_of_base_classes_is_not_a_greenlet_and_ends() {
        let mut memory = FakeMemory::default();
        // SUBCLASS's base is itself: never reaches the greenlet type.
        types(&mut memory, SUBCLASS);
        tracked(&mut memory, HEAD, 0x2000, 0);
        tracked(&mut memory, 0x2000, HEAD, SUBCLASS);
        assert_eq!(collect(&memory), (Vec::new(), Ok(())));
    }

    #[test]
    fn the_state_is_inferred_from_main_greenlets_and_frame_pointers() {
        const FRAME: u64 = 0x5000;
        const FRAME_TYPE: u64 = 0x6000;
        const NAME: u64 = 0x7000;
        let layout = layout();
        let mut memory = FakeMemory::default();
        let mut frame = vec![0u8; 64];
        let ob_type = layout.object.ob_type.offset() as usize;
        frame[ob_type..ob_type + 8].copy_from_slice(&FRAME_TYPE.to_le_bytes());
        memory.add(FRAME, frame);
        let mut frame_type = vec![0u8; 512];
        let tp_name = layout.type_object.tp_name.offset() as usize;
        frame_type[tp_name..tp_name + 8].copy_from_slice(&NAME.to_le_bytes());
        memory.add(FRAME_TYPE, frame_type);
        memory.add(NAME, b"frame\0".to_vec());
        let objects = Objects::new(&memory, layout);
        // stack_stop at word 7; top_frame at word 11 of suspended greenlets.
        let mut main = vec![0u64; 16];
        (main[6], main[7]) = (MAIN_STACK_START, MAIN_STACK_STOP);
        let mut suspended = vec![0u64; 16];
        (suspended[6], suspended[7], suspended[11]) = (0x7ff0_0000, 0x7ff1_0000, FRAME);
        // Garbage: an odd pointer, a pointer to nowhere, a dead greenlet with a frame.
        let mut odd = suspended.clone();
        (odd[9], odd[10]) = (FRAME + 1, 0xdead_beef_0000);
        let mut dead = vec![0u64; 16];
        dead[12] = FRAME;
        let blocks = [main, suspended, odd, dead];
        let blocks = &blocks;
        let words = |from: usize| move |i: usize| blocks.get(from + i).cloned();
        let inferred = GreenletLayout::infer(&objects, 4, words(0)).expect("a layout");
        assert_eq!(inferred.stack_stop, 7);
        assert_eq!(inferred.top_frame, Some(11));
        assert!(inferred.is_frame(&objects, FRAME));
        assert!(!inferred.is_frame(&objects, FRAME + 8));
        // Without a main greenlet nothing is guessed.
        assert!(GreenletLayout::infer(&objects, 3, words(1)).is_none());
    }
}
