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
//! Memory freed in bursts is then given back by the server's first worker after the burst
//! (`ws_mio_server::memory`), through [`Glibc`]: `mallinfo2` says how much the allocator holds
//! free, `malloc_trim` gives it back.
//!
//! Safety: `mallopt` only sets allocator parameters, but glibc marks it MT-Unsafe, so it is
//! called once, first thing in `main`, while the process has a single thread. `mallinfo2`
//! and `malloc_trim` are MT-Safe (they lock each arena in turn). Other C libraries have no
//! such knobs and are left alone.

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

/// glibc's allocator, for the server's memory checks.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub struct Glibc;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
impl ws_mio_server::memory::Allocator for Glibc {
    fn held_free(&self) -> usize {
        // SAFETY: see the module's documentation; it only reads the allocator's statistics.
        unsafe { libc::mallinfo2() }.fordblks
    }

    fn trim(&self) {
        // SAFETY: see the module's documentation; it only gives free memory back.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// The server's hooks for this allocator: glibc's memory return, or none.
pub fn hooks() -> ws_mio_server::Hooks {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let allocator: Option<std::sync::Arc<dyn ws_mio_server::memory::Allocator>> =
        Some(std::sync::Arc::new(Glibc));
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let allocator = None;
    ws_mio_server::Hooks {
        allocator,
        ..ws_mio_server::Hooks::default()
    }
}

#[cfg(test)]
mod tests {
    // The binary's only test, so no other test thread runs beside the MT-Unsafe mallopt.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_both_thresholds_and_gives_back_freed_memory_when_asked() {
        use ws_mio_server::memory::Allocator;
        // mallopt returns 0 for a value out of its range (M_MMAP_THRESHOLD above 32 MiB, say).
        assert!(super::apply());
        // 32 MiB in heap blocks, each pinned in place by a small live block after it, then
        // freed: under the trim threshold, the allocator holds it until asked.
        let mut keep = Vec::new();
        let mut big = Vec::new();
        for _ in 0..512 {
            big.push(vec![1u8; 64 << 10]);
            keep.push(vec![2u8; 16]);
        }
        let rss = || {
            let status = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: usize = status.split_whitespace().nth(1).unwrap().parse().unwrap();
            pages * 4096
        };
        drop(big);
        assert!(super::Glibc.held_free() >= 32 << 20);
        let before = rss();
        super::Glibc.trim();
        let after = rss();
        assert!(after + (8 << 20) < before, "RSS {before} -> {after}");
        drop(keep);
    }
}
