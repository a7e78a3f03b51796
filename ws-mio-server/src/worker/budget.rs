//! The server's memory budget: what every connection holds is accounted in the workers'
//! `held_bytes` gauges; past `--memory-budget`, new connections are refused (in
//! [`Worker::accept`]) and each worker drops its own connections that hold more than their
//! fair share (the budget over the open connections), largest first, for its part of the
//! excess. A connection within its share is never dropped for this.

use super::{Key, Worker};
use crate::handler::Handler;
use crate::metrics::add;
use std::sync::atomic::Ordering;
use ws_proto::CloseCode;

impl<H: Handler> Worker<H> {
    /// Brings the gauge up to date with what `key` holds now.
    pub(super) fn account(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let held = conn.held();
        if held != conn.reported_held {
            let delta = held as i64 - conn.reported_held as i64;
            conn.reported_held = held;
            self.metrics.held_bytes.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Whether all connections together hold more than the budget.
    pub(super) fn over_budget(&self) -> bool {
        self.services.metrics.held_bytes() > self.config.memory_budget as i64
    }

    /// Past the budget, drops this worker's heaviest connections beyond their fair share
    /// until its part of the excess is gone.
    pub(super) fn enforce_budget(&mut self) {
        let total = self.services.metrics.held_bytes();
        let budget = self.config.memory_budget as i64;
        if total <= budget {
            return;
        }
        let own = self.metrics.held_bytes.load(Ordering::Relaxed);
        // This worker's part of the excess, by its part of what is held.
        let mut excess = (total - budget) as i128 * own.max(0) as i128 / total as i128;
        let open = self.services.metrics.connections_open().max(1);
        let fair_share = (budget / open) as usize;
        let mut heavy: Vec<(usize, Key)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.reported_held > fair_share)
            .map(|(key, c)| (c.reported_held, key))
            .collect();
        heavy.sort_unstable_by(|a, b| b.cmp(a));
        for (held, key) in heavy {
            if excess <= 0 {
                break;
            }
            add(&self.metrics.memory_sheds_total, 1);
            if let Some(conn) = self.conns.get(key) {
                tracing::warn!(client = %conn.client, held, "over the memory budget: dropped");
            }
            self.remove(key, CloseCode::ABNORMAL, false);
            excess -= held as i128;
        }
    }
}
