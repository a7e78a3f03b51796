//! Giving freed memory back to the system after a burst.
//!
//! A burst (a flood of large messages, a room of slow consumers, attackers who leave) grows
//! the workers' heaps; once it is over the memory is free but held by the allocator (glibc,
//! with the binaries' thresholds, keeps up to 64 MiB of it per arena, since trimming on every
//! free halved the 64 KiB echo rate). Given an [`Allocator`] (the binaries give glibc's), the
//! first worker checks, at most once a second and only after activity, how much the allocator
//! holds free, and has it give that back when the worker has gone idle, or when what it holds
//! free grew past [`HELD_FREE_LIMIT`] even under load. Under steady load that costs one
//! statistics call a second, and a trim at most one refault of what it gave back.

use std::sync::Arc;
use std::time::Duration;

/// The allocator's side of giving memory back, implemented by a program for its allocator
/// (the library itself calls no allocator-specific function).
///
/// ```
/// use ws_mio_server::memory::Allocator;
/// /// An allocator that never gives memory back.
/// struct Keeps;
/// impl Allocator for Keeps {
///     fn held_free(&self) -> usize { 0 }
///     fn trim(&self) {}
/// }
/// # let _ = Keeps;
/// ```
pub trait Allocator: Send + Sync + 'static {
    /// Bytes the allocator holds free (including any it has given back but still counts).
    fn held_free(&self) -> usize;
    /// Gives free memory back to the system.
    fn trim(&self);
}

/// How often, at most, the allocator is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Free memory held by the allocator past which it is trimmed even while the worker is busy.
pub const HELD_FREE_LIMIT: usize = 64 << 20;
/// Free memory held by the allocator past which a worker that went idle after a burst has it
/// trimmed.
pub const IDLE_HELD_FREE_LIMIT: usize = 1 << 20;

/// When to check the allocator (after activity, once a second) and whether to trim.
pub(crate) struct MemoryReturn {
    allocator: Arc<dyn Allocator>,
    /// Time of the last check (or of the start).
    last_check: Duration,
    /// Sockets were busy since the last check.
    active: bool,
    /// What the allocator held free right after the last trim. Memory a trim gave back still
    /// counts as free in its statistics, so growth is measured from here.
    free_after_trim: usize,
}

impl MemoryReturn {
    pub(crate) fn new(allocator: Arc<dyn Allocator>) -> MemoryReturn {
        MemoryReturn {
            allocator,
            last_check: Duration::ZERO,
            active: false,
            free_after_trim: 0,
        }
    }

    /// The worker handled socket events.
    pub(crate) fn note_activity(&mut self) {
        self.active = true;
    }

    /// When the worker must wake for the next check, if one is pending.
    pub(crate) fn next_check(&self) -> Option<Duration> {
        self.active.then_some(self.last_check + CHECK_INTERVAL)
    }

    /// Whether a check is due at `now`.
    pub(crate) fn due(&self, now: Duration) -> bool {
        self.active && now >= self.last_check + CHECK_INTERVAL
    }

    /// The check at `now`, with the allocator holding `free` bytes free; `idle` says the
    /// worker woke with nothing to do. Returns whether to trim now.
    pub(crate) fn check(&mut self, now: Duration, idle: bool, free: usize) -> bool {
        self.last_check = now;
        // Still busy: check again next interval.
        self.active = !idle;
        if idle {
            // Once per burst (activity, then an idle check): what is free, whether or not an
            // earlier trim already gave some of it back, since memory given back, used again
            // and freed again looks the same to the allocator's statistics.
            free > IDLE_HELD_FREE_LIMIT
        } else {
            free.saturating_sub(self.free_after_trim) > HELD_FREE_LIMIT
        }
    }

    /// A trim was made; the allocator now holds `free` bytes free.
    pub(crate) fn trimmed(&mut self, free: usize) {
        self.free_after_trim = free;
    }

    /// Checks if due, and trims if the check says so. Returns whether it trimmed.
    pub(crate) fn run(&mut self, now: Duration, idle: bool) -> bool {
        if !self.due(now) || !self.check(now, idle, self.allocator.held_free()) {
            return false;
        }
        self.allocator.trim();
        self.trimmed(self.allocator.held_free());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    struct Counting(std::sync::atomic::AtomicUsize);
    impl Allocator for Counting {
        fn held_free(&self) -> usize {
            0
        }
        fn trim(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn memory_return() -> MemoryReturn {
        MemoryReturn::new(Arc::new(Counting(Default::default())))
    }

    #[test]
    fn checks_only_after_activity_and_once_an_interval() {
        let mut memory = memory_return();
        assert_eq!(memory.next_check(), None, "nothing happened yet");
        assert!(!memory.due(Duration::from_secs(5)));
        memory.note_activity();
        assert_eq!(memory.next_check(), Some(CHECK_INTERVAL));
        assert!(memory.due(Duration::from_millis(1500)));
        assert!(!memory.check(Duration::from_millis(1500), false, 0));
        // Busy: the next check is an interval later.
        assert_eq!(memory.next_check(), Some(Duration::from_millis(2500)));
        assert!(!memory.due(Duration::from_millis(2000)));
        memory.check(Duration::from_millis(2600), true, 0);
        // Idle at that check: no more checks until there is activity again.
        assert_eq!(memory.next_check(), None);
    }

    #[test]
    fn trims_when_idle_past_a_little_and_when_busy_past_a_lot() {
        let mut memory = memory_return();
        let second = |n| Duration::from_secs(n);
        memory.note_activity();
        assert!(
            !memory.check(second(1), false, 32 * MIB),
            "busy, under the limit"
        );
        assert!(
            memory.check(second(2), false, 65 * MIB),
            "busy, over the limit"
        );
        memory.trimmed(65 * MIB);
        // Busy: what was given back still counts as free, so only growth past it counts.
        memory.note_activity();
        assert!(
            !memory.check(second(3), false, 100 * MIB),
            "busy, 35 MiB more"
        );
        assert!(
            memory.check(second(4), false, 130 * MIB),
            "busy, 65 MiB more"
        );
        // Idle after a burst: any free memory past a little, given back before or not.
        memory.note_activity();
        assert!(memory.check(second(5), true, 65 * MIB));
        assert!(
            !memory.due(second(7)),
            "no more checks until the next burst"
        );
        memory.note_activity();
        assert!(!memory.check(second(8), true, MIB / 2), "idle, little free");
    }
}
