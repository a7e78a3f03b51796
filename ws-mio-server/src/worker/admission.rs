//! Admission: whether a new TCP connection may stay, against the total and per-address
//! limits shared by every worker. A reservation is taken when a connection is accepted and
//! released exactly once, when it is removed, whatever phase it ended in.

use crate::handler::HttpResponse;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use ws_proto::StatusCode;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server is at its total limit, or shutting down (503).
    Unavailable,
    /// The address is at its limit (429).
    TooManyFromAddress,
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
        }
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

    /// Counts a connection from `ip` against the limits, or says why not.
    pub(crate) fn reserve(&self, ip: IpAddr, unavailable: bool) -> Result<(), Refusal> {
        if unavailable {
            return Err(Refusal::Unavailable);
        }
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Unavailable);
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let count = per_ip.entry(self.client(ip)).or_insert(0);
        if *count >= self.max_per_ip {
            drop(per_ip);
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::TooManyFromAddress);
        }
        *count += 1;
        Ok(())
    }

    /// Gives back a reservation taken by [`Self::reserve`].
    pub(crate) fn release(&self, ip: IpAddr) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        let client = self.client(ip);
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_ip.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&client);
            }
        }
    }

    /// What the per-address limit counts `ip` as: an IPv4 address (also when mapped into
    /// IPv6), or its IPv6 prefix, since one host can rotate through its whole /64.
    fn client(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u128::from(v6);
                    let mask = u128::MAX
                        .checked_shl(128 - self.ipv6_prefix as u32)
                        .unwrap_or(0);
                    IpAddr::V6((bits & mask).into())
                }
            },
        }
    }

    /// Connections counted now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Addresses with a connection counted now.
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_and_releases_give_back() {
        let admission = Admission::new(3, 2, 64);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        assert_eq!(admission.reserve(a, false), Ok(()));
        assert_eq!(admission.reserve(a, false), Ok(()));
        assert_eq!(
            admission.reserve(a, false),
            Err(Refusal::TooManyFromAddress)
        );
        assert_eq!(admission.reserve(b, false), Ok(()));
        assert_eq!(admission.reserve(b, false), Err(Refusal::Unavailable));
        assert_eq!(admission.reserve(b, true), Err(Refusal::Unavailable));
        admission.release(a);
        admission.release(a);
        admission.release(b);
        assert_eq!((admission.open(), admission.addresses()), (0, 0));
    }

    #[test]
    fn ipv6_addresses_count_per_prefix_and_mapped_ipv4_as_ipv4() {
        let admission = Admission::new(100, 2, 64);
        let host = |last: u16| -> IpAddr { [0x2001, 0xdb8, 0, 1, 0, 0, 0, last].into() };
        assert_eq!(admission.reserve(host(1), false), Ok(()));
        assert_eq!(admission.reserve(host(2), false), Ok(()));
        // A third address of the same /64 is the same client.
        assert_eq!(
            admission.reserve(host(3), false),
            Err(Refusal::TooManyFromAddress)
        );
        let other: IpAddr = [0x2001, 0xdb8, 0, 2, 0, 0, 0, 1].into();
        assert_eq!(admission.reserve(other, false), Ok(()));
        // ::ffff:192.0.2.1 is 192.0.2.1.
        let v4: IpAddr = [192, 0, 2, 1].into();
        let mapped: IpAddr = std::net::Ipv4Addr::new(192, 0, 2, 1)
            .to_ipv6_mapped()
            .into();
        assert_eq!(admission.reserve(v4, false), Ok(()));
        assert_eq!(admission.reserve(mapped, false), Ok(()));
        assert_eq!(
            admission.reserve(v4, false),
            Err(Refusal::TooManyFromAddress)
        );
        for ip in [host(1), host(2), other, v4, mapped] {
            admission.release(ip);
        }
        assert_eq!((admission.open(), admission.addresses()), (0, 0));
        // A prefix of 128 counts each address on its own.
        let exact = Admission::new(100, 1, 128);
        assert_eq!(exact.reserve(host(1), false), Ok(()));
        assert_eq!(exact.reserve(host(2), false), Ok(()));
    }
}
