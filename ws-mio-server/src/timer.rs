//! A hashed timer wheel, one per worker. Each tick looks only at the entries of one slot, so
//! timers cost nothing per connection per tick. Entries are never removed early: a connection
//! keeps the tick of its one live entry, and entries that no longer match are skipped when they
//! fire (lazy cancellation). Time is a `Duration` since the server started.

use std::time::Duration;

/// One scheduled wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The connection's slot.
    pub key: usize,
    /// The connection's generation, to skip entries of a closed connection whose slot was
    /// reused.
    pub generation: u32,
    /// The tick it was scheduled for, to skip entries superseded by an earlier one.
    pub tick: u64,
}

/// The wheel.
#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<Expired>>,
    resolution: Duration,
    /// The last tick processed.
    current: u64,
    len: usize,
}

impl TimerWheel {
    /// A wheel of `slots` slots of `resolution` each.
    pub fn new(resolution: Duration, slots: usize) -> TimerWheel {
        TimerWheel {
            slots: vec![Vec::new(); slots.max(1)],
            resolution,
            current: 0,
            len: 0,
        }
    }

    /// The tick at which a deadline fires: the first tick at or after it.
    pub fn tick_for(&self, at: Duration) -> u64 {
        let res = self.resolution.as_nanos().max(1);
        let tick = at.as_nanos().div_ceil(res) as u64;
        tick.max(self.current + 1)
    }

    /// Schedules a wake-up for `key` at `at` (rounded up to the resolution); returns its tick.
    pub fn schedule(&mut self, at: Duration, key: usize, generation: u32) -> u64 {
        let tick = self.tick_for(at);
        let slot = (tick % self.slots.len() as u64) as usize;
        self.slots[slot].push(Expired {
            key,
            generation,
            tick,
        });
        self.len += 1;
        tick
    }

    /// Moves time to `now` and appends the entries due by then to `expired`.
    pub fn advance(&mut self, now: Duration, expired: &mut Vec<Expired>) {
        let target = (now.as_nanos() / self.resolution.as_nanos().max(1)) as u64;
        if target <= self.current {
            return;
        }
        let n = self.slots.len() as u64;
        let mut take = |bucket: &mut Vec<Expired>, due: u64, len: &mut usize| {
            let before = bucket.len();
            bucket.retain(|e| {
                let fire = e.tick <= due;
                if fire {
                    expired.push(*e);
                }
                !fire
            });
            *len -= before - bucket.len();
        };
        if target - self.current >= n {
            // A pause of a whole turn or more: every slot is due up to `target`.
            for bucket in &mut self.slots {
                take(bucket, target, &mut self.len);
            }
        } else {
            for tick in self.current + 1..=target {
                take(&mut self.slots[(tick % n) as usize], tick, &mut self.len);
            }
        }
        self.current = target;
    }

    /// When the next tick that may hold an entry is due, if any entry is scheduled.
    pub fn next_wakeup(&self) -> Option<Duration> {
        (self.len > 0).then(|| self.tick_time(self.current + 1))
    }

    /// The time at which `tick` begins, in full: a tick count past `u32::MAX` (497 days of
    /// 10 ms ticks) must not wrap, or the loop would wake at once forever.
    fn tick_time(&self, tick: u64) -> Duration {
        let nanos = self.resolution.as_nanos() * tick as u128;
        let secs = (nanos / 1_000_000_000).min(u64::MAX as u128) as u64;
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }

    /// Entries scheduled (live or stale).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_next_wakeup_does_not_wrap_after_2_pow_32_ticks() {
        let mut wheel = TimerWheel::new(ms(10), 64);
        // 500 days: past 2^32 ticks of 10 ms.
        let now = Duration::from_secs(500 * 86_400);
        wheel.advance(now, &mut Vec::new());
        wheel.schedule(now + ms(25), 1, 0);
        let next = wheel.next_wakeup().unwrap();
        assert!(next > now && next <= now + ms(10), "{next:?} at {now:?}");
    }

    #[test]
    fn fires_at_or_after_the_deadline_never_before() {
        let mut wheel = TimerWheel::new(ms(10), 8);
        wheel.schedule(ms(25), 1, 0);
        wheel.schedule(ms(500), 2, 0); // several rounds ahead
        let mut out = Vec::new();
        wheel.advance(ms(29), &mut out);
        assert!(out.is_empty());
        wheel.advance(ms(30), &mut out);
        assert_eq!(out.iter().map(|e| e.key).collect::<Vec<_>>(), vec![1]);
        out.clear();
        wheel.advance(ms(499), &mut out);
        assert!(out.is_empty(), "{out:?}");
        wheel.advance(ms(500), &mut out);
        assert_eq!(out.iter().map(|e| e.key).collect::<Vec<_>>(), vec![2]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_long_pause_fires_everything_due_in_one_advance() {
        let mut wheel = TimerWheel::new(ms(10), 4);
        for i in 0..20u64 {
            wheel.schedule(ms(10 * i + 5), i as usize, 0);
        }
        wheel.schedule(ms(10_000), 99, 0);
        let mut out = Vec::new();
        wheel.advance(ms(1000), &mut out);
        let mut keys: Vec<usize> = out.iter().map(|e| e.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..20).collect::<Vec<_>>());
        assert_eq!(wheel.len(), 1);
    }

    proptest! {
        #[test]
        fn every_entry_fires_once_not_early_and_within_one_tick(
            deadlines in proptest::collection::vec(0u64..5000, 1..50),
            steps in proptest::collection::vec(1u64..400, 1..60),
        ) {
            let res = 10;
            let mut wheel = TimerWheel::new(ms(res), 16);
            for (i, &d) in deadlines.iter().enumerate() {
                wheel.schedule(ms(d), i, 0);
            }
            let mut fired = vec![None; deadlines.len()];
            let mut now = 0;
            for step in steps.iter().chain(std::iter::repeat_n(&400, 20)) {
                now += step;
                let mut out = Vec::new();
                wheel.advance(ms(now), &mut out);
                for e in out {
                    prop_assert!(fired[e.key].is_none(), "fired twice");
                    fired[e.key] = Some(now);
                }
            }
            for (i, &d) in deadlines.iter().enumerate() {
                let at = fired[i].expect("fired");
                prop_assert!(at >= d, "early: deadline {} fired at {}", d, at);
            }
        }
    }
}
