//! The heartbeat: a ping some time after the last answer, a deadline for its pong, and the
//! round-trip time it measures. Pure bookkeeping on the instants it is given; the stream
//! arms the timer and sends the ping.

use std::time::Duration;
use tokio::time::Instant;

/// What the heartbeat wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Nothing until [`Heartbeat::deadline`].
    Wait,
    /// Send a ping with this payload.
    Ping([u8; 8]),
    /// The last ping went unanswered past the pong timeout.
    TimedOut,
}

#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Option<Duration>,
    pong_timeout: Duration,
    next_ping: Option<Instant>,
    /// The ping awaiting its pong: its number (the payload) and when it was sent.
    outstanding: Option<(u64, Instant)>,
    sent: u64,
    rtt: Option<Duration>,
}

impl Heartbeat {
    pub(crate) fn new(interval: Option<Duration>, pong_timeout: Duration, now: Instant) -> Self {
        Heartbeat {
            interval,
            pong_timeout,
            next_ping: interval.map(|i| now + i),
            outstanding: None,
            sent: 0,
            rtt: None,
        }
    }

    /// When [`Self::poll`] has something to do next, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.outstanding {
            Some((_, sent)) => Some(sent + self.pong_timeout),
            None => self.next_ping,
        }
    }

    pub(crate) fn poll(&mut self, now: Instant) -> Beat {
        if let Some((_, sent)) = self.outstanding {
            return if now >= sent + self.pong_timeout {
                Beat::TimedOut
            } else {
                Beat::Wait
            };
        }
        match self.next_ping {
            Some(due) if now >= due => {
                self.sent += 1;
                self.outstanding = Some((self.sent, now));
                self.next_ping = None;
                Beat::Ping(self.sent.to_be_bytes())
            }
            _ => Beat::Wait,
        }
    }

    /// A pong arrived: if it answers the outstanding ping, the round trip is measured and the
    /// next ping is scheduled. Other pongs (unsolicited, or answers to the application's own
    /// pings) are not the heartbeat's.
    pub(crate) fn on_pong(&mut self, payload: &[u8], now: Instant) {
        let Some((number, sent)) = self.outstanding else {
            return;
        };
        if payload != number.to_be_bytes() {
            return;
        }
        self.rtt = Some(now.saturating_duration_since(sent));
        self.outstanding = None;
        self.next_ping = self.interval.map(|i| now + i);
    }

    /// The round-trip time the latest answered ping measured.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn pings_after_the_interval_and_measures_the_answer() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(Some(10 * SEC), 5 * SEC, start);
        assert_eq!(beat.deadline(), Some(start + 10 * SEC));
        assert_eq!(beat.poll(start + 9 * SEC), Beat::Wait);
        let Beat::Ping(payload) = beat.poll(start + 10 * SEC) else {
            panic!("no ping at the interval")
        };
        // Waiting for the pong: the deadline is the pong timeout, no second ping.
        assert_eq!(beat.deadline(), Some(start + 15 * SEC));
        assert_eq!(beat.poll(start + 12 * SEC), Beat::Wait);
        beat.on_pong(&payload, start + 10 * SEC + Duration::from_millis(30));
        assert_eq!(beat.rtt(), Some(Duration::from_millis(30)));
        assert_eq!(
            beat.deadline(),
            Some(start + 20 * SEC + Duration::from_millis(30))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_ping_times_out_and_foreign_pongs_do_not_answer_it() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(Some(SEC), 2 * SEC, start);
        assert!(matches!(beat.poll(start + SEC), Beat::Ping(_)));
        beat.on_pong(b"someone else's", start + SEC);
        beat.on_pong(&[0; 8], start + SEC);
        assert_eq!(beat.rtt(), None);
        assert_eq!(
            beat.poll(start + 3 * SEC - Duration::from_nanos(1)),
            Beat::Wait
        );
        assert_eq!(beat.poll(start + 3 * SEC), Beat::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_interval_it_never_wakes() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(None, SEC, start);
        assert_eq!(beat.deadline(), None);
        assert_eq!(beat.poll(start + 1000 * SEC), Beat::Wait);
    }
}
