//! [`WireSafeAllocator`]: the `spindle` binary's global allocator, which keeps a hostile array
//! length from aborting the process.
//!
//! The Kafka codec (`kafka-protocol`) sizes each array with `Vec::with_capacity(n)` from the
//! count on the wire before reading the elements. A client that sends a count of two billion
//! (four garbage bytes after a valid header are enough) makes it ask for hundreds of gigabytes.
//! The system allocator refuses anything larger than memory plus swap, and Rust answers a
//! refused allocation by aborting the process: one bad frame would take the node down.
//!
//! So allocations of [`HUGE_BYTES`] or more are served by `mmap(MAP_NORESERVE)`, which reserves
//! address space only; memory is committed page by page as it is touched. The codec then finds
//! the frame too short, returns an error, and the untouched mapping is unmapped again: the
//! connection closes and nothing else notices. Legitimate allocations this large are rare (a
//! frame is at most `max_frame_bytes`) and work the same way, committed as they are written.
//! Everything smaller goes to the system allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are address-space reservations.
pub const HUGE_BYTES: usize = 1 << 30;

/// Page size assumed for the alignment of reservations (mmap aligns to pages).
const PAGE_BYTES: usize = 4096;

/// The system allocator, with huge allocations reserved lazily (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct WireSafeAllocator;

fn is_reservation(layout: &Layout) -> bool {
    layout.size() >= HUGE_BYTES && layout.align() <= PAGE_BYTES
}

// SAFETY: every pointer handed out is either the system allocator's (and returned to it) or a
// fresh private anonymous mapping of at least `layout.size()` bytes, page aligned (which covers
// `layout.align()`), unmapped with the same size; `is_reservation` depends only on the layout,
// so `dealloc` always picks the path `alloc` took.
unsafe impl GlobalAlloc for WireSafeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_reservation(&layout) {
            reserve(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_reservation(&layout) {
            // Anonymous mappings are zero-filled.
            reserve(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_reservation(&layout) {
            // SAFETY: `ptr` came from `reserve(layout.size())`.
            let unmapped = unsafe { libc::munmap(ptr.cast(), layout.size()) };
            assert_eq!(unmapped, 0, "munmap of a reservation failed");
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_reservation(&layout) && !is_reservation(&new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_layout` is valid (above).
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

/// A private anonymous mapping of `size` bytes without swap reservation; null on failure.
fn reserve(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

/// Largest allocation the system allocator serves from its heaps rather than from a mapping of
/// its own (glibc's ceiling for the setting on 64-bit).
const MMAP_THRESHOLD_BYTES: i32 = 32 << 20;

/// Free memory a heap keeps before giving any back to the kernel.
const TRIM_THRESHOLD_BYTES: i32 = 256 << 20;

/// Keeps freed memory in the system allocator's heaps for reuse.
///
/// A Fetch answer allocates a few buffers of up to tens of MiB (batches read from a segment, the
/// joined records, the encoded answer) and frees them once written. With glibc's defaults each
/// of those became a fresh mapping or a heap grown and trimmed back, so every answer paid for
/// faulting in and zeroing its pages: a third of the server's CPU while consumers read from
/// disk. With the heaps keeping up to 256 MiB free, reading old data took
/// 0.7–1.0 CPU-seconds per GB instead of 2.3 (docs/BENCHMARKS.md). Returns false if glibc
/// refused a setting.
pub fn keep_freed_memory_for_reuse() -> bool {
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_the_heap_settings() {
        // glibc refuses an mmap threshold above 32 MiB on 64-bit: the settings must be in range.
        assert!(keep_freed_memory_for_reuse());
    }

    #[test]
    fn a_hostile_capacity_is_reserved_not_refused() {
        let alloc = WireSafeAllocator;
        // 512 GiB: far beyond this machine's memory and swap.
        let layout = Layout::from_size_align(512 << 30, 8).unwrap();
        // SAFETY: a valid non-zero layout; the block is written once and freed with it.
        unsafe {
            let ptr = alloc.alloc(layout);
            assert!(!ptr.is_null());
            ptr.write(1);
            alloc.dealloc(ptr, layout);
        }
    }

    #[test]
    fn small_blocks_grow_into_reservations_and_back() {
        let alloc = WireSafeAllocator;
        let small = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: valid layouts; each pointer is used only while it is live.
        unsafe {
            let ptr = alloc.alloc(small);
            ptr.write_bytes(7, 64);
            let big = alloc.realloc(ptr, small, HUGE_BYTES);
            assert_eq!(*big.add(63), 7);
            let back = alloc.realloc(big, Layout::from_size_align(HUGE_BYTES, 8).unwrap(), 32);
            assert_eq!(*back.add(31), 7);
            alloc.dealloc(back, Layout::from_size_align(32, 8).unwrap());
        }
    }
}
