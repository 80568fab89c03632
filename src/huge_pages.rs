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
            // Wait reading the flag, not writing it (the cache line stays shared), and now and
            // then let the holder run: it may have been preempted.
            while HEAP.busy.load(Ordering::Relaxed) {
                spins = spins.wrapping_add(1);
                if spins % 64 == 0 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
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

/// `len` bytes of fresh memory (zeroed) at a multiple of [`LARGE`], or null: a mapping of
/// `len + LARGE` bytes with its unaligned head and tail unmapped (the kernel aligns large
/// anonymous mappings by itself only since Linux 6.7, and never those `mremap` moves).
fn map_aligned(len: usize) -> *mut u8 {
    let Some(reserved) = len.checked_add(LARGE) else {
        return ptr::null_mut();
    };
    // SAFETY: a new private anonymous mapping; the parts unmapped are its own, outside the
    // `len` bytes kept.
    unsafe {
        let at = libc::mmap(
            ptr::null_mut(),
            reserved,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if at == libc::MAP_FAILED {
            return ptr::null_mut();
        }
        let start = at as usize;
        let aligned = start.next_multiple_of(LARGE);
        let head = aligned - start;
        if head > 0 {
            libc::munmap(at, head);
        }
        let tail = reserved - head - len;
        if tail > 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
        aligned as *mut u8
    }
}

/// Ask for huge pages on the `len` bytes at `at` (a mapping of [`map_aligned`]), unless
/// `PYCORE_HUGE_PAGES=0`: where transparent huge pages are `madvise`d, a fault may compact
/// memory to find one, which a host short of free 2 MiB blocks may rather not do.
fn advise(at: *mut u8, len: usize) {
    if !huge_pages_wanted() {
        return;
    }
    // SAFETY: advice on a mapping this allocator owns; it never changes what memory holds.
    // Only a hint: an error (no THP in this kernel) leaves an ordinary mapping.
    unsafe { libc::madvise(at.cast(), len, libc::MADV_HUGEPAGE) };
}

/// Whether the environment leaves huge pages on (read once, without allocating: this runs
/// inside the allocator).
fn huge_pages_wanted() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static WANTED: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 yes, 2 no
    match WANTED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // SAFETY: a NUL-terminated name; the value is only compared, not kept.
            let off = unsafe {
                let value = libc::getenv(c"PYCORE_HUGE_PAGES".as_ptr());
                !value.is_null() && std::ffi::CStr::from_ptr(value).to_bytes() == b"0"
            };
            WANTED.store(if off { 2 } else { 1 }, Ordering::Relaxed);
            !off
        }
    }
}

/// A fresh large block of `size` bytes (zeroed); null on failure.
fn map_large(size: usize) -> *mut u8 {
    let Some(len) = mapped_len(size) else {
        return ptr::null_mut();
    };
    let at = map_aligned(len);
    if !at.is_null() {
        advise(at, len);
    }
    at
}

/// The large block at `ptr` (`old_len` mapped bytes) resized to `new_len`: in place when the
/// addresses after it are free, else moved whole into a fresh aligned mapping (`mremap` moves
/// the pages, not their bytes, and keeps the advice); null, with the block untouched, on
/// failure.
///
/// # Safety
/// `ptr` must be a mapping of `old_len` bytes made by [`map_large`].
unsafe fn remap_large(ptr: *mut u8, old_len: usize, new_len: usize) -> *mut u8 {
    if new_len == old_len {
        return ptr;
    }
    // SAFETY: `ptr` maps `old_len` bytes (the caller's word); `mremap` leaves it as it was when
    // it fails, and with MREMAP_FIXED replaces only the fresh mapping at `target`.
    unsafe {
        let in_place = libc::mremap(ptr.cast(), old_len, new_len, 0);
        if in_place != libc::MAP_FAILED {
            return in_place.cast();
        }
        let target = map_aligned(new_len);
        if target.is_null() {
            return ptr::null_mut();
        }
        let moved = libc::mremap(
            ptr.cast(),
            old_len,
            new_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            target.cast::<libc::c_void>(),
        );
        if moved == libc::MAP_FAILED {
            libc::munmap(target.cast(), new_len);
            return ptr::null_mut();
        }
        moved.cast()
    }
}

// SAFETY: ordinary blocks are forwarded to `System` unchanged. A large block is a mapping of
// its own at a multiple of 2 MiB (enough for its layout, checked by `is_large`), unmapped with
// the length it was mapped with (from the layout's size, which Rust passes back unchanged).
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
            (true, true) => match (mapped_len(layout.size()), mapped_len(new_size)) {
                // SAFETY: a large layout's block is a mapping of its mapped length.
                (Some(old_len), Some(new_len)) => unsafe { remap_large(ptr, old_len, new_len) },
                _ => ptr::null_mut(),
            },
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
            let aligned = alloc.alloc(large);
            assert_eq!(
                aligned as usize % LARGE,
                0,
                "a large block is 2 MiB-aligned"
            );
            let grown = alloc.realloc(aligned, large, 40 * LARGE);
            assert_eq!(grown as usize % LARGE, 0, "and stays so when it grows");
            alloc.dealloc(grown, Layout::from_size_align(40 * LARGE, PAGE).unwrap());

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
