//! The client behind a trusted proxy (`--trusted-proxies`): its PROXY protocol header, if the
//! server expects one (`--proxy-protocol`), then its request's `X-Forwarded-For`. Once the
//! client is known it is counted as a direct client is at acceptance: against the handshake
//! rate and the per-IP limit, refused with 429 past either. A header that cannot be read ends
//! the connection: a bad PROXY header with no answer (the proxy does not expect one), a bad
//! `X-Forwarded-For` with 400.

use super::admission::Refusal;
use super::driver::Phase;
use super::{Key, Listener, Worker};
use crate::config::any_contains;
use crate::forwarded;
use crate::handler::{Handler, HttpResponse};
use crate::metrics::add;
use crate::proxy_protocol;
use std::net::IpAddr;
use ws_proto::handshake::server::Request;
use ws_proto::{CloseCode, StatusCode};

/// Where a connection's input goes after the PROXY header step.
pub(super) enum AfterHeader {
    /// To the request head: from this offset of the input on.
    Request(usize),
    /// Nowhere: the header is incomplete, or the connection was refused or ended.
    Stop,
}

impl<H: Handler> Worker<H> {
    /// The first step of a public connection's input: a trusted proxy's PROXY header, read and
    /// taken off; an untrusted peer's refused (with `--proxy-protocol`, a peer that is not
    /// trusted cannot say who it speaks for).
    pub(super) fn receive_proxy_header(&mut self, key: Key, data: &[u8]) -> AfterHeader {
        let proxy_protocol = self.config.proxy_protocol;
        let Some(conn) = self.conns.get_mut(key) else {
            return AfterHeader::Stop;
        };
        let first = !std::mem::replace(&mut conn.started, true);
        let public = conn.origin == Listener::Public;
        let Phase::Proxy(reader, _) = &mut conn.phase else {
            if proxy_protocol && public && first && proxy_protocol::looks_like_proxy(data) {
                self.refuse_header(key, &"a PROXY header from a peer that is not trusted");
                return AfterHeader::Stop;
            }
            return AfterHeader::Request(0);
        };
        let (header, used) = match reader.receive(data) {
            Ok(Some(done)) => done,
            Ok(None) => return AfterHeader::Stop,
            Err(e) => {
                self.refuse_header(key, &e);
                return AfterHeader::Stop;
            }
        };
        let Phase::Proxy(_, handshake) = std::mem::replace(&mut conn.phase, Phase::Answering)
        else {
            unreachable!("matched above")
        };
        conn.phase = Phase::Handshake(handshake);
        // LOCAL and UNKNOWN headers: the connection is the proxy's own.
        let hop = header.source.map_or(conn.client, |source| source.ip());
        conn.client = hop;
        if any_contains(&self.config.trusted_proxies, hop) {
            // Another proxy in the chain: its X-Forwarded-For will tell.
            return AfterHeader::Request(used);
        }
        match self.admit_client(key, hop) {
            Ok(()) => AfterHeader::Request(used),
            Err(()) => AfterHeader::Stop,
        }
    }

    /// For a connection whose client is not known yet, the client its trusted hop forwards
    /// for, from the request's `X-Forwarded-For`, counted. False when the connection was
    /// answered instead (400 for a malformed header, 429 past a limit).
    pub(super) fn resolve_forwarded(&mut self, key: Key, request: &Request) -> bool {
        let Some(conn) = self.conns.get(key) else {
            return false;
        };
        if conn.client_known {
            return true;
        }
        let values = request.header_values("x-forwarded-for");
        match forwarded::client(values, conn.client, &self.config.trusted_proxies) {
            Ok(client) => self.admit_client(key, client).is_ok(),
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "refused");
                add(&self.metrics.handshakes_rejected_total, 1);
                let answer = HttpResponse::text(StatusCode::BAD_REQUEST, "bad X-Forwarded-For\n");
                self.answer(key, answer.encode());
                false
            }
        }
    }

    /// Counts the connection against its client, now known: the handshake rate, then the
    /// per-IP limit; past either it is answered with the refusal.
    fn admit_client(&mut self, key: Key, client: IpAddr) -> Result<(), ()> {
        let now = self.now;
        let services = &self.services;
        let Some(conn) = self.conns.get_mut(key) else {
            return Err(());
        };
        conn.client = client;
        conn.client_known = true;
        let prefix = services.admission.client(client);
        let admitted = services
            .handshakes
            .attempt(prefix, now)
            .map_err(Refusal::RateLimited)
            .and_then(|()| match conn.reservation.as_mut() {
                Some(reservation) => services.admission.reserve_address(reservation, client),
                None => Ok(()),
            });
        if let Err(refusal) = admitted {
            tracing::debug!(%client, ?refusal, "refused");
            self.count_refusal(refusal);
            self.answer(key, refusal.response().encode());
            return Err(());
        }
        Ok(())
    }

    /// Ends a connection whose PROXY header is refused, with no answer.
    fn refuse_header(&mut self, key: Key, error: &dyn std::fmt::Display) {
        if let Some(conn) = self.conns.get(key) {
            tracing::debug!(peer = %conn.peer, %error, "PROXY header refused");
        }
        add(&self.metrics.handshakes_rejected_total, 1);
        self.remove(key, CloseCode::ABNORMAL, false);
    }
}
