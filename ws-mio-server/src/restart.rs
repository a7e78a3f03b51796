//! The close reason of a graceful shutdown: code 1012 (Service Restart), with a hint of when to
//! come back. Each connection is told its own random delay within the reconnect jitter
//! (`--reconnect-jitter`), so that clients of a restarting server spread their reconnects over
//! the window instead of returning all at once.
//!
//! The reason is machine-readable: `restart`, then optionally `; reconnect-after=<N>ms` with
//! `N` a decimal count of milliseconds. At most 47 bytes, within the 123 a close reason may
//! hold.
//!
//! ```
//! use std::time::Duration;
//! use ws_mio_server::restart;
//! let reason = restart::reason(Some(Duration::from_millis(3712)));
//! assert_eq!(reason, "restart; reconnect-after=3712ms");
//! assert_eq!(restart::reconnect_after(&reason), Some(Duration::from_millis(3712)));
//! assert_eq!(restart::reconnect_after("restart"), None);
//! ```

use std::time::Duration;

/// The reason without a hint, and the start of every reason.
pub const RESTART: &str = "restart";

/// The name of the hint's field.
const FIELD: &str = "reconnect-after=";

/// The close reason telling a client to reconnect after `after` (none: no hint).
pub fn reason(after: Option<Duration>) -> String {
    match after {
        Some(after) => format!("{RESTART}; {FIELD}{}ms", after.as_millis()),
        None => RESTART.to_string(),
    }
}

/// The delay a close reason asks for, if it is a restart reason with a hint. Anything else
/// (another reason, a malformed or out-of-range number) is `None`: the client uses its own
/// backoff.
pub fn reconnect_after(reason: &str) -> Option<Duration> {
    let rest = reason.strip_prefix(RESTART)?.strip_prefix("; ")?;
    let digits = rest.strip_prefix(FIELD)?.strip_suffix("ms")?;
    // u64 parsing accepts a leading '+'; the format has digits only.
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Duration::from_millis)
}

/// A small fast random source for spreading the hints (splitmix64): not for secrets, only so
/// that connections do not all draw the same delay. Each worker has its own, seeded once.
#[derive(Debug, Clone)]
pub(crate) struct Spread(u64);

impl Spread {
    pub(crate) fn new(seed: u64) -> Spread {
        Spread(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A delay in `[0, window)` in whole milliseconds; `None` for a zero window (no hint).
    pub(crate) fn delay(&mut self, window: Duration) -> Option<Duration> {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        (ms > 0).then(|| Duration::from_millis(self.next() % ms))
    }
}

/// A seed that differs between processes (std's hash keys come from the OS's random source).
pub(crate) fn process_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_round_trips_and_fits_a_close_frame() {
        for ms in [0, 1, 3712, 9999, u64::MAX] {
            let after = Duration::from_millis(ms);
            let text = reason(Some(after));
            assert!(text.len() <= 47, "{text}");
            assert!(text.len() <= ws_proto::close::MAX_REASON_LEN, "{text}");
            assert_eq!(reconnect_after(&text), Some(after));
        }
        assert_eq!(reason(None), "restart");
    }

    #[test]
    fn malformed_hints_are_no_hint() {
        for bad in [
            "",
            "restart",
            "restart;",
            "server shutting down",
            "restart; reconnect-after=ms",
            "restart; reconnect-after=+5ms",
            "restart; reconnect-after=-5ms",
            "restart; reconnect-after=5",
            "restart; reconnect-after=5s",
            "restart; reconnect-after= 5ms",
            "restart; reconnect-after=99999999999999999999ms",
            "restartx; reconnect-after=5ms",
        ] {
            assert_eq!(reconnect_after(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn delays_stay_in_the_window_and_a_zero_window_gives_none() {
        let mut spread = Spread::new(7);
        let window = Duration::from_secs(10);
        for _ in 0..10_000 {
            assert!(spread.delay(window).unwrap() < window);
        }
        assert_eq!(spread.delay(Duration::ZERO), None);
        assert_eq!(spread.delay(Duration::from_micros(999)), None);
    }
}
