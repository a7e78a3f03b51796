//! A token bucket: `rate` tokens a second up to `burst`; each message takes one.

use std::time::Duration;

/// One user's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(burst: f64, now: Duration) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if there is one, refilling for the time since the last call.
    pub fn take(&mut self, rate: f64, burst: f64, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Duration::ZERO;
        let mut b = TokenBucket::new(3.0, t0);
        assert!((0..3).all(|_| b.take(2.0, 3.0, t0)));
        assert!(!b.take(2.0, 3.0, t0));
        // Half a second at 2/s gives one token back.
        assert!(b.take(2.0, 3.0, Duration::from_millis(500)));
        assert!(!b.take(2.0, 3.0, Duration::from_millis(500)));
        // A long pause refills only up to the burst.
        let later = Duration::from_secs(100);
        assert!((0..3).all(|_| b.take(2.0, 3.0, later)));
        assert!(!b.take(2.0, 3.0, later));
    }
}
