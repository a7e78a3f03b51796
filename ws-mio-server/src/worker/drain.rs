//! Graceful shutdown, as for a rolling restart: stop accepting, start the closing handshake
//! with every open connection (1012 Service Restart, each with its own random reconnect delay
//! in the reason: [`crate::restart`]), drop the rest, and end once every connection is gone or
//! the drain timeout passes.

use super::Worker;
use crate::handler::Handler;
use crate::restart;
use ws_proto::CloseCode;

impl<H: Handler> Worker<H> {
    pub(super) fn begin_drain(&mut self) {
        if self.drain_deadline.is_some() {
            return;
        }
        self.drain_deadline = Some(self.now + self.config.drain_timeout);
        let keys: Vec<_> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            if self.conns.get(key).is_some_and(|c| c.is_open()) {
                let after = self.spread.delay(self.config.reconnect_jitter);
                self.close(key, CloseCode::SERVICE_RESTART, &restart::reason(after));
            } else {
                self.remove(key, CloseCode::SERVICE_RESTART, false);
            }
        }
    }

    /// Past the drain deadline, whatever is left is dropped.
    pub(super) fn check_drain(&mut self) {
        if self
            .drain_deadline
            .is_some_and(|deadline| self.now >= deadline)
        {
            let keys: Vec<_> = self.conns.iter().map(|(key, _)| key).collect();
            for key in keys {
                self.remove(key, CloseCode::SERVICE_RESTART, false);
            }
        }
    }

    /// Whether the worker is draining (no longer accepting).
    pub(crate) fn is_draining(&self) -> bool {
        self.drain_deadline.is_some()
    }
}
