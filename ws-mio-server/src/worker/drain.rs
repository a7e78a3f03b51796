//! Graceful shutdown: stop accepting, start the closing handshake with every open connection
//! (1001), drop the rest, and end once every connection is gone or the drain timeout passes.

use super::Worker;
use crate::handler::Handler;
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
                self.close(key, CloseCode::GOING_AWAY, "server shutting down");
            } else {
                self.remove(key, CloseCode::GOING_AWAY, false);
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
                self.remove(key, CloseCode::GOING_AWAY, false);
            }
        }
    }

    /// Whether the worker is draining (no longer accepting).
    pub(crate) fn is_draining(&self) -> bool {
        self.drain_deadline.is_some()
    }
}
