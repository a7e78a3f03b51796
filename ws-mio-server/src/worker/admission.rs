//! Admission: whether a new TCP connection may stay, against the total and per-address
//! limits shared by every worker, and the handshake rate ([`super::handshake_rate`]).
//!
//! A connection holds a [`Reservation`] from its acceptance to its removal, and gives it back
//! exactly once, whatever phase it ended in: the reservation is owned by the connection and
//! released by value when the connection is removed. It counts against the total at once, and
//! against its client's address as soon as the client is known: at acceptance for a direct
//! client; for a connection from a trusted proxy, only once the proxy has said whose it is
//! (after the PROXY header, or the request head's `X-Forwarded-For`), so that the clients of a
//! load balancer are not all counted as the balancer.

use crate::config::{canonical, mask};
use crate::handler::HttpResponse;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use ws_proto::StatusCode;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server is at its total limit, or shutting down (503).
    Unavailable,
    /// The address is at its limit (429).
    TooManyFromAddress,
    /// The client made too many handshake attempts; a token is due after this long (429 with
    /// `Retry-After`).
    RateLimited(Duration),
}

impl Refusal {
    pub(crate) fn response(self) -> HttpResponse {
        match self {
            Refusal::Unavailable => HttpResponse::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "connection limit reached\n",
            ),
            Refusal::TooManyFromAddress => {
                HttpResponse::text(StatusCode::TOO_MANY_REQUESTS, "connection limit reached\n")
            }
            Refusal::RateLimited(wait) => {
                // Whole seconds, rounded up: coming back earlier would be refused again.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                HttpResponse::text(StatusCode::TOO_MANY_REQUESTS, "too many handshakes\n")
                    .header("Retry-After", &secs.max(1).to_string())
            }
        }
    }
}

/// One connection's place in the counts: in the total always, in its client's address's once
/// that is known. Not `Clone`: it is given back once, by value, to [`Admission::release`].
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The per-address key it counts against, once counted.
    address: Option<IpAddr>,
}

impl Reservation {
    /// Whether it counts against a client's address yet.
    pub(crate) fn has_address(&self) -> bool {
        self.address.is_some()
    }
}

/// Connection counts, shared by all workers and touched only when connections open and close.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    /// IPv6 addresses count per prefix of this many bits (a host usually has a whole /64).
    ipv6_prefix: u8,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Admission {
    pub(crate) fn new(max_connections: usize, max_per_ip: usize, ipv6_prefix: u8) -> Admission {
        Admission {
            max_connections,
            max_per_ip,
            ipv6_prefix: ipv6_prefix.min(128),
            open: AtomicUsize::new(0),
            per_ip: Mutex::default(),
        }
    }

    /// Counts a new connection against the total, or says why not.
    pub(crate) fn reserve(&self, unavailable: bool) -> Result<Reservation, Refusal> {
        if unavailable {
            return Err(Refusal::Unavailable);
        }
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Unavailable);
        }
        Ok(Reservation { address: None })
    }

    /// Counts `reservation`'s connection against its client `ip` too, or says why not (it
    /// still holds its place in the total, to give back with it). A reservation counts
    /// against one address at most; a second call changes nothing.
    pub(crate) fn reserve_address(
        &self,
        reservation: &mut Reservation,
        ip: IpAddr,
    ) -> Result<(), Refusal> {
        if reservation.address.is_some() {
            return Ok(());
        }
        let client = self.client(ip);
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let count = per_ip.entry(client).or_insert(0);
        if *count >= self.max_per_ip {
            if *count == 0 {
                per_ip.remove(&client);
            }
            return Err(Refusal::TooManyFromAddress);
        }
        *count += 1;
        reservation.address = Some(client);
        Ok(())
    }

    /// Gives back a reservation: its place in the total and its address's count, if it has
    /// one.
    pub(crate) fn release(&self, reservation: Reservation) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        let Some(client) = reservation.address else {
            return;
        };
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_ip.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&client);
            }
        }
    }

    /// What the per-address limit and the handshake rate count `ip` as: an IPv4 address (also
    /// when mapped into IPv6), or its IPv6 prefix, since one host can rotate through its whole
    /// /64.
    pub(crate) fn client(&self, ip: IpAddr) -> IpAddr {
        match canonical(ip) {
            ip @ IpAddr::V4(_) => ip,
            ip @ IpAddr::V6(_) => mask(ip, self.ipv6_prefix),
        }
    }

    /// Connections counted now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Addresses with a connection counted now.
    pub(crate) fn addresses(&self) -> usize {
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Admission {
        /// Both counts at once, as a direct client's connection takes them.
        fn reserve_for(&self, ip: IpAddr) -> Result<Reservation, Refusal> {
            let mut reservation = self.reserve(false)?;
            match self.reserve_address(&mut reservation, ip) {
                Ok(()) => Ok(reservation),
                Err(refusal) => {
                    self.release(reservation);
                    Err(refusal)
                }
            }
        }
    }

    fn refusal(result: Result<Reservation, Refusal>) -> Option<Refusal> {
        result.err()
    }

    #[test]
    fn limits_refuse_and_releases_give_back() {
        let admission = Admission::new(3, 2, 64);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let a1 = admission.reserve_for(a).unwrap();
        let a2 = admission.reserve_for(a).unwrap();
        assert_eq!(
            refusal(admission.reserve_for(a)),
            Some(Refusal::TooManyFromAddress)
        );
        let b1 = admission.reserve_for(b).unwrap();
        assert_eq!(
            refusal(admission.reserve_for(b)),
            Some(Refusal::Unavailable)
        );
        assert_eq!(refusal(admission.reserve(true)), Some(Refusal::Unavailable));
        for r in [a1, a2, b1] {
            admission.release(r);
        }
        assert_eq!((admission.open(), admission.addresses()), (0, 0));
    }

    /// Rule: a connection from a trusted proxy counts against the total at once and against
    /// its client only once the client is known; released either way, exactly once.
    #[test]
    fn the_address_is_counted_once_known_and_released_with_the_total() {
        let admission = Admission::new(10, 1, 64);
        let client: IpAddr = [203, 0, 113, 7].into();
        let mut pending = admission.reserve(false).unwrap();
        assert!(!pending.has_address());
        assert_eq!((admission.open(), admission.addresses()), (1, 0));
        // Ended before the client was known: only the total is given back.
        admission.release(pending);
        assert_eq!((admission.open(), admission.addresses()), (0, 0));
        let mut first = admission.reserve(false).unwrap();
        admission.reserve_address(&mut first, client).unwrap();
        // A second call for the same reservation counts nothing more.
        admission.reserve_address(&mut first, client).unwrap();
        assert_eq!((admission.open(), admission.addresses()), (1, 1));
        pending = admission.reserve(false).unwrap();
        assert_eq!(
            admission.reserve_address(&mut pending, client),
            Err(Refusal::TooManyFromAddress)
        );
        assert!(!pending.has_address());
        admission.release(pending);
        admission.release(first);
        assert_eq!((admission.open(), admission.addresses()), (0, 0));
    }

    #[test]
    fn ipv6_addresses_count_per_prefix_and_mapped_ipv4_as_ipv4() {
        let admission = Admission::new(100, 2, 64);
        let host = |last: u16| -> IpAddr { [0x2001, 0xdb8, 0, 1, 0, 0, 0, last].into() };
        let mut held = vec![
            admission.reserve_for(host(1)).unwrap(),
            admission.reserve_for(host(2)).unwrap(),
        ];
        // A third address of the same /64 is the same client.
        assert_eq!(
            refusal(admission.reserve_for(host(3))),
            Some(Refusal::TooManyFromAddress)
        );
        let other: IpAddr = [0x2001, 0xdb8, 0, 2, 0, 0, 0, 1].into();
        held.push(admission.reserve_for(other).unwrap());
        // ::ffff:192.0.2.1 is 192.0.2.1.
        let v4: IpAddr = [192, 0, 2, 1].into();
        let mapped: IpAddr = std::net::Ipv4Addr::new(192, 0, 2, 1)
            .to_ipv6_mapped()
            .into();
        held.push(admission.reserve_for(v4).unwrap());
        held.push(admission.reserve_for(mapped).unwrap());
        assert_eq!(
            refusal(admission.reserve_for(v4)),
            Some(Refusal::TooManyFromAddress)
        );
        for r in held {
            admission.release(r);
        }
        assert_eq!((admission.open(), admission.addresses()), (0, 0));
        // A prefix of 128 counts each address on its own.
        let exact = Admission::new(100, 1, 128);
        assert!(exact.reserve_for(host(1)).is_ok());
        assert!(exact.reserve_for(host(2)).is_ok());
    }

    #[test]
    fn a_rate_refusal_tells_whole_seconds_rounded_up() {
        let retry = |wait| {
            let response = Refusal::RateLimited(wait).response();
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            let (_, value) = response
                .headers
                .iter()
                .find(|(name, _)| name == "Retry-After")
                .cloned()
                .unwrap();
            value
        };
        assert_eq!(retry(Duration::from_millis(50)), "1");
        assert_eq!(retry(Duration::from_millis(1000)), "1");
        assert_eq!(retry(Duration::from_millis(1001)), "2");
        assert_eq!(retry(Duration::ZERO), "1");
    }
}
