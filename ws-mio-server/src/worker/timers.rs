//! Heartbeats and deadlines on the worker's timer wheel: each connection has at most one live
//! entry, for the earliest of its deadlines (handshake or answer, next ping, pong, idle, the
//! slow-consumer grace, credentials' expiry, the engine's close timeout); what a fired entry
//! means is the driver's decision.

use super::driver::TimerAction;
use super::{Key, Worker};
use crate::handler::{Handler, HttpResponse, CREDENTIALS_EXPIRED};
use crate::metrics::add;
use ws_proto::{CloseCode, StatusCode};

impl<H: Handler> Worker<H> {
    /// Schedules the connection's next timer if it is earlier than the one it has.
    pub(super) fn arm_timer(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(due) = conn.next_deadline(&self.config) else {
            return;
        };
        let tick = self.timers.tick_for(due);
        if conn.timer_tick.is_none_or(|t| tick < t) {
            conn.timer_tick = Some(self.timers.schedule(due, key, conn.generation));
        }
    }

    pub(super) fn fire_timers(&mut self) {
        let mut expired = std::mem::take(&mut self.expired);
        self.timers.advance(self.now, &mut expired);
        for entry in expired.drain(..) {
            let Some(conn) = self.conns.get_mut(entry.key) else {
                continue;
            };
            if conn.generation != entry.generation || conn.timer_tick != Some(entry.tick) {
                continue; // superseded, or for a closed connection
            }
            conn.timer_tick = None;
            self.timer_fired(entry.key);
        }
        self.expired = expired;
    }

    fn timer_fired(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.on_timer(self.now, &self.config) {
            TimerAction::Rearm => self.mark_dirty(key),
            TimerAction::HandshakeTimeout => {
                add(&self.metrics.handshake_timeouts_total, 1);
                let answer =
                    HttpResponse::text(StatusCode::REQUEST_TIMEOUT, "handshake timeout\n").encode();
                self.answer(key, answer);
                return;
            }
            TimerAction::AnswerTimeout => {
                return self.remove(key, CloseCode::ABNORMAL, false);
            }
            TimerAction::PongTimeout => {
                add(&self.metrics.heartbeat_timeouts_total, 1);
                return self.remove(key, CloseCode::ABNORMAL, false);
            }
            TimerAction::Idle => {
                add(&self.metrics.idle_timeouts_total, 1);
                return self.close(key, CloseCode::GOING_AWAY, "idle timeout");
            }
            TimerAction::CredentialsExpired => {
                add(&self.metrics.credential_expiries_total, 1);
                let (code, reason) = CREDENTIALS_EXPIRED;
                return self.close(key, code, reason);
            }
            TimerAction::SlowConsumer => {
                add(&self.metrics.backpressure_closes_total, 1);
                return self.close(key, CloseCode::POLICY_VIOLATION, "slow consumer");
            }
        }
        self.arm_timer(key);
    }
}
