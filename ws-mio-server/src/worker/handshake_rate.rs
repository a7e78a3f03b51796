//! The handshake rate limit: a token bucket per client (an IPv4 address or an IPv6 prefix, as
//! the per-IP limit counts them), shared by every worker, on the workers' time. Each
//! handshake attempt takes a token; a client without one is refused with 429 and told, in
//! `Retry-After`, when its next token is due.
//!
//! The table is capped. When it is full, a new client takes the place of the stalest entry
//! (the one touched longest ago):
//!
//! - nobody is locked out: a newcomer always gets an entry, with a full bucket;
//! - an entry untouched for `burst / rate` seconds has refilled to full, so dropping it loses
//!   nothing; only a table of clients all active within that time loses state at all;
//! - evading the limit by eviction is dear: to have its own entry dropped, an attacker must
//!   first make a table's worth of handshakes from other clients (each of which it pays for
//!   in its own buckets), and gains one burst for it. The other choices are worse: refusing
//!   newcomers to a full table locks everyone else out, and sharing one bucket among the
//!   overflow lets an attacker starve that bucket.

use crate::config::Config;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Clients tracked at once: 65,536 entries are about 6 MB at most, and an attacker needs as
/// many distinct clients to flush an entry out.
pub(crate) const MAX_CLIENTS: usize = 1 << 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Duration,
    /// Its place in the staleness order.
    touched: u64,
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    /// Clients by last touch, oldest first.
    order: BTreeMap<u64, IpAddr>,
    next_touch: u64,
}

/// The shared table; see the module documentation.
#[derive(Debug)]
pub(crate) struct HandshakeRate {
    /// Tokens a second; zero turns the limit off.
    rate: f64,
    burst: f64,
    max_clients: usize,
    table: Mutex<Table>,
}

impl HandshakeRate {
    pub(crate) fn new(config: &Config) -> HandshakeRate {
        HandshakeRate::with_capacity(config.handshake_rate, config.handshake_burst, MAX_CLIENTS)
    }

    pub(crate) fn with_capacity(rate: f64, burst: f64, max_clients: usize) -> HandshakeRate {
        HandshakeRate {
            rate,
            burst: burst.max(1.0),
            max_clients: max_clients.max(1),
            table: Mutex::default(),
        }
    }

    /// One handshake attempt by `client` (already reduced to its prefix) at `now`: allowed, or
    /// refused with the wait until a token is due.
    pub(crate) fn attempt(&self, client: IpAddr, now: Duration) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let table = &mut *table;
        let touch = table.next_touch;
        table.next_touch += 1;
        let bucket = match table.buckets.get_mut(&client) {
            Some(bucket) => {
                table.order.remove(&bucket.touched);
                // Workers' clocks may differ by a little: time never runs backwards here.
                let elapsed = now.saturating_sub(bucket.at);
                bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
                bucket.at = bucket.at.max(now);
                bucket
            }
            None => {
                if table.buckets.len() >= self.max_clients {
                    if let Some((_, stalest)) = table.order.pop_first() {
                        table.buckets.remove(&stalest);
                    }
                }
                table.buckets.entry(client).or_insert(Bucket {
                    tokens: self.burst,
                    at: now,
                    touched: touch,
                })
            }
        };
        bucket.touched = touch;
        table.order.insert(touch, client);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Clients in the table now.
    pub(crate) fn clients(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A refusal telling a wait of `expected`, to the microsecond (the arithmetic is in floats).
    fn refused_for(result: Result<(), Duration>, expected: Duration) -> bool {
        result.is_err_and(|wait| (wait.as_secs_f64() - expected.as_secs_f64()).abs() < 1e-6)
    }

    #[test]
    fn a_burst_then_the_rate_and_the_wait_told() {
        let rate = HandshakeRate::with_capacity(10.0, 5.0, 100);
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(rate.attempt(a, ms(0)), Ok(()));
        }
        assert!(refused_for(rate.attempt(a, ms(0)), ms(100)));
        // Half a token later: half the wait.
        assert!(refused_for(rate.attempt(a, ms(50)), ms(50)));
        assert_eq!(rate.attempt(a, ms(100)), Ok(()));
        assert!(rate.attempt(a, ms(100)).is_err());
        // A long pause refills to the burst, no more.
        let later = ms(60_000);
        for _ in 0..5 {
            assert_eq!(rate.attempt(a, later), Ok(()));
        }
        assert!(rate.attempt(a, later).is_err());
        // Others are not touched by it.
        assert_eq!(rate.attempt(ip("192.0.2.2"), later), Ok(()));
    }

    #[test]
    fn a_full_table_evicts_the_stalest_and_keeps_the_active() {
        let rate = HandshakeRate::with_capacity(1.0, 2.0, 3);
        let attacker = ip("192.0.2.66");
        assert_eq!(rate.attempt(attacker, ms(0)), Ok(()));
        assert_eq!(rate.attempt(attacker, ms(0)), Ok(()));
        // Two others fill the table; then the attacker tries again (refused, but touched).
        rate.attempt(ip("198.51.100.1"), ms(10)).unwrap();
        rate.attempt(ip("198.51.100.2"), ms(20)).unwrap();
        assert!(rate.attempt(attacker, ms(30)).is_err());
        assert_eq!(rate.clients(), 3);
        // A newcomer to the full table gets in, in the place of the stalest (198.51.100.1)...
        assert_eq!(rate.attempt(ip("198.51.100.3"), ms(40)), Ok(()));
        assert_eq!(rate.clients(), 3);
        // ...and the attacker, touched more recently, keeps its empty bucket.
        assert!(rate.attempt(attacker, ms(50)).is_err());
    }

    #[test]
    fn zero_rate_is_no_limit_and_keeps_no_table() {
        let rate = HandshakeRate::with_capacity(0.0, 1.0, 10);
        for i in 0..100 {
            assert_eq!(rate.attempt(ip("192.0.2.1"), ms(i)), Ok(()));
        }
        assert_eq!(rate.clients(), 0);
    }

    #[test]
    fn the_table_never_passes_its_cap() {
        let rate = HandshakeRate::with_capacity(1.0, 1.0, 50);
        for i in 0..1000u32 {
            let client = IpAddr::from(std::net::Ipv4Addr::from(i));
            assert_eq!(rate.attempt(client, ms(u64::from(i))), Ok(()));
            assert!(rate.clients() <= 50);
        }
        let table = rate.table.lock().unwrap();
        assert_eq!(table.order.len(), table.buckets.len());
    }
}
