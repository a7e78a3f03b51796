//! How long to wait before connecting to Redis again: doubling from a minimum up to a maximum
//! after each failure, back to the minimum after a success, with "equal jitter" (half the
//! delay fixed, half random) so that instances cut off together do not all come back in the
//! same instant. Pure: the randomness is an argument, so the rule is tested on chosen values.

use std::time::Duration;

/// Reconnection delays.
///
/// ```
/// use std::time::Duration;
/// use ws_redis::backoff::Backoff;
/// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// // With the random part at its least, the fixed half: 50 ms, 100 ms, 200 ms...
/// assert_eq!(backoff.next_delay(0), Duration::from_millis(50));
/// assert_eq!(backoff.next_delay(0), Duration::from_millis(100));
/// backoff.reset();
/// assert_eq!(backoff.next_delay(0), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays from about `min` up to `max` (a `max` under `min` counts as `min`).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay after one more failure: the doubled delay `d` (at most the maximum) becomes
    /// `d/2 + random % (d/2 + 1)`, a value in `[d/2, d]`.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let doubled = self
            .min
            .checked_mul(1 << self.failures.min(31))
            .map_or(self.max, |d| d.min(self.max));
        self.failures = self.failures.saturating_add(1);
        let half = doubled / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half.saturating_add(Duration::from_nanos(random % spread.saturating_add(1)))
    }

    /// A connection succeeded: the next failure waits the least again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A small random number generator for jitter (xorshift64*), seeded from the standard
/// library's per-process random hash keys: no cryptographic need, no dependency.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Jitter {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0u8);
        // Never zero: xorshift would stay at zero.
        Jitter(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_double_up_to_the_maximum_and_stay_within_half_and_whole() {
        let mut low = Backoff::new(ms(100), ms(1000));
        let mut high = low.clone();
        let lows: Vec<Duration> = (0..6).map(|_| low.next_delay(0)).collect();
        let highs: Vec<Duration> = (0..6).map(|_| high.next_delay(u64::MAX)).collect();
        assert_eq!(lows, [50, 100, 200, 400, 500, 500].map(ms));
        // u64::MAX % (half + 1 ns) is somewhere in the random half: at most the whole delay.
        for (i, (low, high)) in lows.iter().zip(&highs).enumerate() {
            assert!(high >= low && *high <= *low * 2, "{i}: {high:?}");
        }
        let mut exact = Backoff::new(ms(100), ms(1000));
        let half_plus_one = ms(50).as_nanos() as u64 + 1;
        assert_eq!(exact.next_delay(half_plus_one - 1), ms(100), "the top");
    }

    #[test]
    fn many_failures_neither_overflow_nor_pass_the_maximum() {
        let mut backoff = Backoff::new(ms(100), Duration::from_secs(5));
        for _ in 0..1000 {
            assert!(backoff.next_delay(u64::MAX) <= Duration::from_secs(5));
        }
        let mut huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert!(huge.next_delay(7) >= Duration::MAX / 2);
        assert!(huge.next_delay(7) >= Duration::MAX / 2);
    }

    #[test]
    fn a_maximum_under_the_minimum_is_the_minimum() {
        let mut backoff = Backoff::new(ms(100), ms(10));
        assert_eq!(backoff.next_delay(0), ms(50));
        assert_eq!(backoff.next_delay(0), ms(50));
    }

    #[test]
    fn jitter_varies() {
        let mut jitter = Jitter::new();
        let values: std::collections::HashSet<u64> = (0..100).map(|_| jitter.next()).collect();
        assert_eq!(values.len(), 100);
    }
}
