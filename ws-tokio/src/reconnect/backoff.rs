//! Exponential backoff with jitter and a cap: how long to wait before the next attempt.

use std::time::Duration;

/// How the delay between connection attempts grows. The n-th retry after a loss waits
/// `min(max, initial * multiplier^(n-1))`, less a random part of up to `jitter` of it, so
/// that clients dropped together do not come back together.
///
/// ```
/// use std::time::Duration;
/// use ws_tokio::reconnect::Backoff;
///
/// let backoff = Backoff { jitter: 0.0, ..Backoff::default() };
/// let delays: Vec<_> = backoff.delays(1).take(8).collect();
/// let ms = |n| Duration::from_millis(n);
/// assert_eq!(delays, [ms(500), ms(1000), ms(2000), ms(4000), ms(8000), ms(16000), ms(30000), ms(30000)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay. Default 500 ms.
    pub initial: Duration,
    /// The cap. Default 30 s.
    pub max: Duration,
    /// The growth from one delay to the next (at least 1). Default 2.
    pub multiplier: f64,
    /// The fraction of each delay that is random, 0 (none) to 1 (anywhere from 0 to the
    /// delay). Default 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delays of successive retries, with jitter drawn from a generator seeded with
    /// `seed` (any value; the client seeds it from the OS).
    pub fn delays(&self, seed: u64) -> impl Iterator<Item = Duration> {
        let mut schedule = Schedule::new(*self, seed);
        std::iter::repeat_with(move || schedule.next_delay())
    }
}

/// The retry count and random state of one client.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    backoff: Backoff,
    retries: u32,
    rng: u64,
}

impl Schedule {
    pub(crate) fn new(backoff: Backoff, seed: u64) -> Schedule {
        Schedule {
            backoff,
            retries: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; each call counts one more retry.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let b = &self.backoff;
        let growth = b.multiplier.max(1.0).powi(self.retries.min(64) as i32);
        let full = b.max.min(b.initial.mul_f64(growth.min(1e9)));
        self.retries = self.retries.saturating_add(1);
        let jitter = b.jitter.clamp(0.0, 1.0);
        full.mul_f64(1.0 - jitter * self.random_unit())
    }

    /// After a connection that worked: the next loss starts from the first delay again.
    pub(crate) fn reset(&mut self) {
        self.retries = 0;
    }

    /// A number in [0, 1) (xorshift64*: jitter needs spread, not secrecy).
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed from the operating system's random source.
pub(crate) fn os_seed() -> u64 {
    use ws_proto::mask::{MaskKeySource, OsRandomKeys};
    let mut keys = OsRandomKeys::new();
    let (a, b) = (keys.next_key(), keys.next_key());
    u64::from_le_bytes([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_fraction_and_spreads() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.5,
        };
        let delays: Vec<Duration> = backoff.delays(42).take(1000).collect();
        for d in &delays {
            assert!(
                *d > Duration::from_millis(500) && *d <= Duration::from_secs(1),
                "{d:?}"
            );
        }
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(750))
            .count();
        assert!((300..700).contains(&low), "{low} of 1000 in the lower half");
    }

    #[test]
    fn reset_starts_over_and_huge_counts_stay_capped() {
        let backoff = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        let mut schedule = Schedule::new(backoff, 7);
        for _ in 0..200 {
            assert!(schedule.next_delay() <= backoff.max);
        }
        assert_eq!(schedule.next_delay(), backoff.max);
        schedule.reset();
        assert_eq!(schedule.next_delay(), backoff.initial);
    }

    #[test]
    fn a_multiplier_below_one_does_not_shrink_the_delay() {
        let backoff = Backoff {
            multiplier: 0.1,
            jitter: 0.0,
            ..Backoff::default()
        };
        assert!(backoff.delays(3).take(5).all(|d| d == backoff.initial));
    }
}
