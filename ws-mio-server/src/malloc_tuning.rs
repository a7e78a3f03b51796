//! Part of the binary, not of the library: glibc's allocator tuned for a server that hands
//! received messages on without copying them.
//!
//! A received message is one allocation (ws-proto's `Bytes`) that lives until its echo or fanout
//! copies have been written, so large messages free memory in bursts at the top of a worker's
//! heap. With glibc's defaults each burst trims the heap (`madvise(MADV_DONTNEED)`) and the next
//! message faults the same pages back in: on 64 KiB echo, page faults and trimming took about a
//! fifth of the server's time (perf) and the rate fell to 16k-27k messages/s in most runs
//! (one in four reached 41k) against 37k-46k with these settings (same machine, alternating
//! runs). Fixed thresholds stop that: memory freed at the
//! top is kept up to [`TRIM_THRESHOLD`] per arena, and blocks under [`MMAP_THRESHOLD`] come from
//! the heap instead of a fresh `mmap` each. Idle memory per connection stays under 1 KiB
//! (about 820 B at 10,000 connections, against 710 B untuned).
//!
//! Safety: `mallopt` only sets allocator parameters, but glibc marks it MT-Unsafe, so it is
//! called once, first thing in `main`, while the process has a single thread. Other C
//! libraries have no such knobs and are left alone.

/// Freed memory at the top of a heap that the allocator keeps rather than returns.
pub const TRIM_THRESHOLD: i32 = 64 << 20;
/// Allocations from this size up are mapped on their own (glibc's largest allowed value).
pub const MMAP_THRESHOLD: i32 = 32 << 20;

/// Applies the thresholds. Returns whether the allocator accepted them (always false where the
/// C library is not glibc).
pub fn apply() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: see the module's documentation; both parameters are in glibc's valid range.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                && libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    // The binary's only test, so no other test thread runs beside this MT-Unsafe call.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_both_thresholds() {
        // mallopt returns 0 for a value out of its range (M_MMAP_THRESHOLD above 32 MiB, say).
        assert!(super::apply());
    }
}
