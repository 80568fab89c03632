//! A global allocator for the `pycore` binary (a library user may install it too): the C
//! library's for ordinary blocks (dlmalloc's with musl, whose own allocator maps and unmaps
//! pages for small sizes: a static musl pycore was no faster than glibc's with it, and 16 %
//! faster on a one-frame core with dlmalloc); large ones get their own mapping, with
//! transparent huge pages asked for.
//!
//! A 100,000-frame stack is one array of ~18 MB. Faulted in 4 KiB at a time it costs ~4,500
//! page faults, a fifth of the run; on a mapping advised `MADV_HUGEPAGE` the kernel backs it
//! with 2 MiB pages where the system allows (`/sys/kernel/mm/transparent_hugepage/enabled`:
//! `madvise` or `always`). glibc's `glibc.malloc.hugetlb=1` tunable does the same, but only
//! from the environment at start-up. Large blocks grow in place or move by `mremap`, as glibc
//! grows its own mapped blocks. The advice never changes what memory holds; where the kernel
//! refuses it, the block is an ordinary mapping.

#[cfg(not(target_env = "musl"))]
use std::alloc::System;
use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

#[cfg(target_env = "musl")]
use small_blocks::SmallBlocks as System;

/// musl's small blocks: one dlmalloc heap behind a spin lock. (dlmalloc's own global wrapper
/// takes a pthread mutex per call: 10 % of a ten-thread analysis's instructions on musl; the
/// lock is uncontended but for a batch's few worker threads.)
#[cfg(target_env = "musl")]
mod small_blocks {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub struct SmallBlocks;

    struct Heap {
        busy: AtomicBool,
        heap: UnsafeCell<dlmalloc::Dlmalloc>,
    }

    // SAFETY: `heap` is only reached through `with`, which holds `busy`.
    unsafe impl Sync for Heap {}

    static HEAP: Heap = Heap {
        busy: AtomicBool::new(false),
        heap: UnsafeCell::new(dlmalloc::Dlmalloc::new()),
    };

    /// Run `f` on the heap, alone.
    fn with<R>(f: impl FnOnce(&mut dlmalloc::Dlmalloc) -> R) -> R {
        let mut spins = 0u32;
        while HEAP
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins % 64 == 0 {
                // The holder may have been preempted: let it run.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: `busy` is held, so no other thread reaches the heap until it is released.
        let result = f(unsafe { &mut *HEAP.heap.get() });
        HEAP.busy.store(false, Ordering::Release);
        result
    }

    // SAFETY: each call is dlmalloc's own, with the layout Rust passes, under the lock.
    unsafe impl GlobalAlloc for SmallBlocks {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            with(|heap| unsafe { heap.malloc(layout.size(), layout.align()) })
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            with(|heap| unsafe { heap.calloc(layout.size(), layout.align()) })
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            with(|heap| unsafe { heap.free(ptr, layout.size(), layout.align()) })
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            with(|heap| unsafe { heap.realloc(ptr, layout.size(), layout.align(), new_size) })
        }
    }
}

/// Blocks of at least this size are mapped here (glibc maps blocks of this size itself, from
/// 128 KiB up; a huge page needs 2 MiB).
const LARGE: usize = 2 << 20;
const PAGE: usize = 4096;

pub struct HugePageAlloc;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

/// `size` rounded up to whole huge pages (`None` on overflow).
fn mapped_len(size: usize) -> Option<usize> {
    size.checked_next_multiple_of(LARGE)
}

/// A fresh mapping of `size` bytes (zeroed), advised for huge pages; null on failure.
fn map_large(size: usize) -> *mut u8 {
    let Some(len) = mapped_len(size) else {
        return ptr::null_mut();
    };
    // SAFETY: a new private anonymous mapping; nothing else refers to it.
    unsafe {
        let at = libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if at == libc::MAP_FAILED {
            return ptr::null_mut();
        }
        // Only a hint: an error (no THP in this kernel) leaves an ordinary mapping.
        libc::madvise(at, len, libc::MADV_HUGEPAGE);
        at.cast()
    }
}

// SAFETY: ordinary blocks are forwarded to `System` unchanged. A large block is a mapping of
// its own, made page-aligned (enough for its layout, checked by `is_large`), unmapped with the
// length it was mapped with (the layout's size, which Rust passes back unchanged).
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            return map_large(layout.size());
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            // Fresh anonymous memory is zeroed.
            return map_large(layout.size());
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            if let Some(len) = mapped_len(layout.size()) {
                // SAFETY: `ptr` is a mapping of `len` bytes made by `map_large`.
                unsafe { libc::munmap(ptr.cast(), len) };
            }
            return;
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `layout.align()` forms a valid layout with `new_size`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(&layout), is_large(&new_layout)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                let (Some(old_len), Some(new_len)) =
                    (mapped_len(layout.size()), mapped_len(new_size))
                else {
                    return ptr::null_mut();
                };
                // SAFETY: `ptr` is a mapping of `old_len` bytes made by `map_large`; `mremap`
                // keeps its contents and its advice, and leaves it untouched on failure.
                let moved =
                    unsafe { libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
                if moved == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    moved.cast()
                }
            }
            // Across the threshold: a new block of the other kind, and a copy.
            _ => unsafe {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block's contents survive every move between the two kinds and every size change, and
    /// fresh large blocks are zeroed.
    #[test]
    fn blocks_keep_their_contents_across_kinds_and_sizes() {
        let alloc = HugePageAlloc;
        let fill = |ptr: *mut u8, len: usize| {
            for i in (0..len).step_by(4093) {
                // SAFETY: `i < len`, within the block.
                unsafe { *ptr.add(i) = (i % 251) as u8 };
            }
        };
        let check = |ptr: *mut u8, len: usize| {
            for i in (0..len).step_by(4093) {
                // SAFETY: `i < len`, within the block.
                assert_eq!(unsafe { *ptr.add(i) }, (i % 251) as u8, "byte {i} of {len}");
            }
        };
        // Small, across into large, larger (mremap), across back into small.
        let sizes = [100_000, LARGE + 1, 3 * LARGE + 12_345, 9 * LARGE, 50_000];
        let mut layout = Layout::from_size_align(sizes[0], 8).unwrap();
        // SAFETY: a non-zero size; each step passes the block and the layout it was made with.
        unsafe {
            let mut ptr = alloc.alloc(layout);
            assert!(!ptr.is_null());
            fill(ptr, layout.size());
            for &size in &sizes[1..] {
                ptr = alloc.realloc(ptr, layout, size);
                assert!(!ptr.is_null(), "realloc to {size}");
                check(ptr, layout.size().min(size));
                layout = Layout::from_size_align(size, 8).unwrap();
                fill(ptr, size);
            }
            alloc.dealloc(ptr, layout);

            let large = Layout::from_size_align(2 * LARGE, PAGE).unwrap();
            let zeroed = alloc.alloc_zeroed(large);
            assert!(!zeroed.is_null());
            assert_eq!(zeroed as usize % PAGE, 0, "a large block is page-aligned");
            assert!((0..large.size()).step_by(4099).all(|i| *zeroed.add(i) == 0));
            alloc.dealloc(zeroed, large);
        }
    }

    #[test]
    fn only_page_aligned_layouts_of_two_mib_and_more_are_mapped_here() {
        let layout = |size, align| Layout::from_size_align(size, align).unwrap();
        assert!(!is_large(&layout(LARGE - 1, 8)));
        assert!(is_large(&layout(LARGE, 8)));
        assert!(is_large(&layout(LARGE, PAGE)));
        assert!(!is_large(&layout(LARGE, 2 * PAGE)));
        assert_eq!(mapped_len(LARGE + 1), Some(2 * LARGE));
        assert_eq!(mapped_len(usize::MAX), None);
    }
}
