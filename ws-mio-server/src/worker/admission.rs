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
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Admission {
    pub(crate) fn new(max_connections: usize, max_per_ip: usize) -> Admission {
        Admission {
            max_connections,
            max_per_ip,
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
        let count = per_ip.entry(ip).or_insert(0);
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
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
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
        let admission = Admission::new(3, 2);
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
}
