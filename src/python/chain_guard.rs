//! Loop detection for a frame chain read from a core, whose `previous`/`f_back` pointers can
//! lead back to a frame already read.

use std::collections::HashSet;

use crate::bytes::AddressHash;

/// What a visit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    New,
    /// The chain came back to a frame it had reached before.
    Loop,
    /// More than the depth bound.
    TooDeep,
}

/// Counts a chain's frames and tells when it loops.
pub struct ChainGuard {
    mode: Mode,
    depth: usize,
    max_depth: usize,
    stopped: bool,
}

enum Mode {
    /// Brent's cycle detection (R. P. Brent, "An improved Monte Carlo factorization
    /// algorithm", BIT 20, 1980): a checkpoint moved to the current frame after 1, 2, 4, 8, …
    /// steps; coming back to it means a loop. Constant memory, where a set of every address
    /// cost a 100,000-frame walk a tenth of its time; but a loop is seen only within twice its
    /// length and tail's after it starts, some of its frames read twice by then.
    Brent {
        checkpoint: Option<u64>,
        power: usize,
        steps: usize,
    },
    /// Every address kept: a loop is seen at the first frame read again.
    Exact(HashSet<u64, AddressHash>),
}

impl ChainGuard {
    /// The constant-memory guard; a walk it stops ([`ChainGuard::wants_exact`]) is done again
    /// with [`ChainGuard::exact`], so that each frame of a loop is reported once (a loop found
    /// late can also run past the depth bound first).
    pub fn brent(max_depth: usize) -> Self {
        Self::with(
            Mode::Brent {
                checkpoint: None,
                power: 1,
                steps: 0,
            },
            max_depth,
        )
    }

    pub fn exact(max_depth: usize) -> Self {
        Self::with(Mode::Exact(HashSet::default()), max_depth)
    }

    fn with(mode: Mode, max_depth: usize) -> Self {
        Self {
            mode,
            depth: 0,
            max_depth,
            stopped: false,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self.mode, Mode::Exact(_))
    }

    /// A walk budget ran out: a [`ChainGuard::brent`] walk is done again too (a loop it had
    /// not seen yet may have spent it).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether a [`ChainGuard::brent`] walk ended at a loop, the depth bound or a budget.
    pub fn wants_exact(&self) -> bool {
        self.stopped && !self.is_exact()
    }

    pub fn visit(&mut self, frame: u64) -> Visit {
        let again = match &mut self.mode {
            Mode::Brent {
                checkpoint,
                power,
                steps,
            } => {
                let again = *checkpoint == Some(frame);
                *steps += 1;
                if *steps == *power {
                    *checkpoint = Some(frame);
                    *power = power.saturating_mul(2);
                    *steps = 0;
                }
                again
            }
            Mode::Exact(seen) => !seen.insert(frame),
        };
        if again {
            self.stopped = true;
            return Visit::Loop;
        }
        self.depth += 1;
        if self.depth > self.max_depth {
            self.stopped = true;
            return Visit::TooDeep;
        }
        Visit::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walk `next` from `first` until the guard stops it: the frames visited and why.
    fn walk(mut guard: ChainGuard, first: u64, next: impl Fn(u64) -> u64) -> (Vec<u64>, Visit) {
        let mut visited = Vec::new();
        let mut frame = first;
        loop {
            match guard.visit(frame) {
                Visit::New => visited.push(frame),
                stop => return (visited, stop),
            }
            frame = next(frame);
        }
    }

    #[test]
    fn loops_are_found_by_both_and_exactly_by_one() {
        // A tail of 5 frames into a loop of 7: 0 → 1 → … → 11 → 5.
        let next = |frame: u64| if frame == 11 { 5 } else { frame + 1 };
        let (exact, stop) = walk(ChainGuard::exact(1000), 0, next);
        assert_eq!((exact, stop), ((0..12).collect(), Visit::Loop));
        let (brent, stop) = walk(ChainGuard::brent(1000), 0, next);
        assert_eq!(stop, Visit::Loop);
        assert!(brent.len() >= 12 && brent.len() <= 2 * 12 + 7, "{brent:?}");
        assert_eq!(&brent[..12], &(0..12).collect::<Vec<_>>()[..]);
        // A frame pointing at itself.
        let (brent, stop) = walk(ChainGuard::brent(1000), 3, |frame| frame);
        assert_eq!((brent, stop), (vec![3], Visit::Loop));
    }

    #[test]
    fn long_chains_stop_at_the_depth_bound() {
        for guard in [ChainGuard::brent(100), ChainGuard::exact(100)] {
            let (visited, stop) = walk(guard, 1, |frame| frame + 1);
            assert_eq!((visited.len(), stop), (100, Visit::TooDeep));
        }
    }
}
