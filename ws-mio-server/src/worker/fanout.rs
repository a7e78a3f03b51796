//! Rooms on this worker: the index of local members, and delivery. A published message is
//! encoded once for all workers, crosses to each other worker once, and is compressed at most
//! once per distinct compression window among a worker's members; every member's queue then
//! holds the same shared bytes.

use super::remote::{Remote, RoomMessage};
use super::{Key, Worker};
use crate::config::SlowConsumerPolicy;
use crate::handler::Handler;
use crate::history::Position;
use crate::metrics::add;
use std::collections::HashMap;
use std::sync::Arc;
use ws_proto::deflate::compress_shared;
use ws_proto::{CloseCode, EncodedFrame};

/// This worker's members of each room.
#[derive(Debug, Default)]
pub(super) struct RoomIndex {
    rooms: HashMap<Arc<str>, Members>,
}

#[derive(Debug, Default)]
struct Members {
    keys: Vec<Key>,
    /// Members that joined with a page of history ending at this position, while recorded
    /// messages up to it may still be in the inbox: those are not sent to them again. A
    /// member leaves this list at the first recorded message past its position.
    catching_up: Vec<(Key, Position)>,
}

impl RoomIndex {
    pub(super) fn join(&mut self, room: Arc<str>, key: Key) {
        self.rooms.entry(room).or_default().keys.push(key);
    }

    /// Adds a member that has had the room's recorded messages up to `seen`.
    pub(super) fn join_after(&mut self, room: Arc<str>, key: Key, seen: Option<Position>) {
        let members = self.rooms.entry(room).or_default();
        members.keys.push(key);
        if let Some(seen) = seen {
            members.catching_up.push((key, seen));
        }
    }

    pub(super) fn leave(&mut self, room: &str, key: Key) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.keys.retain(|&m| m != key);
            members.catching_up.retain(|&(m, _)| m != key);
            if members.keys.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// The members of `room` here, copied (for an action that changes them).
    pub(super) fn members_of(&self, room: &str) -> Vec<Key> {
        self.rooms.get(room).map_or(Vec::new(), |m| m.keys.clone())
    }

    pub(super) fn contains(&self, room: &str, key: Key) -> bool {
        self.rooms.get(room).is_some_and(|m| m.keys.contains(&key))
    }

    /// The members of `room` that should get a message at `position`: all, except members
    /// still catching up that had it already.
    fn members(&mut self, room: &str, position: Option<&Position>) -> (&[Key], Vec<Key>) {
        let Some(members) = self.rooms.get_mut(room) else {
            return (&[], Vec::new());
        };
        let mut had_it = Vec::new();
        if let Some(at) = position.filter(|_| !members.catching_up.is_empty()) {
            members.catching_up.retain(|(key, seen)| {
                let had = seen.epoch == at.epoch && at.offset <= seen.offset;
                if had {
                    had_it.push(*key);
                }
                had
            });
        }
        (&members.keys, had_it)
    }
}

impl<H: Handler> Worker<H> {
    /// Sends a room message to its members on every worker, and to the broker (a message from
    /// another instance comes in through [`Self::deliver`] instead, so it goes back to none).
    pub(super) fn publish(&mut self, room: Arc<str>, message: RoomMessage) {
        for worker in 0..self.services.workers {
            if worker != self.index as usize {
                let remote = Remote::Publish(room.clone(), message.clone());
                self.outbound.push_back((worker, remote));
            }
        }
        self.deliver(&room, &message);
        self.services.broker.publish(&room, &message.message);
    }

    /// Starts the closing handshake with every member of `room` here.
    pub(super) fn close_room(&mut self, room: &str, code: CloseCode, reason: &str) {
        for key in self.fanout.members_of(room) {
            self.close(key, code, reason);
        }
    }

    /// Queues a room message to this worker's members: the same bytes to each member with the
    /// same compression window, compressed at most once per window. Members past the
    /// high-water mark get the slow-consumer policy instead.
    pub(super) fn deliver(&mut self, room: &str, message: &RoomMessage) {
        let payload = message.message.as_bytes();
        let level = self
            .deflate
            .filter(|d| payload.len() >= d.min_size)
            .map(|d| d.level);
        let mut compressed: [Option<EncodedFrame>; 16] = Default::default();
        let high_water = self.config.high_water_mark;
        let mut slow = Vec::new();
        let (members, had_it) = self.fanout.members(room, message.position.as_ref());
        for &key in members {
            if had_it.contains(&key) {
                continue;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let queued = conn.queued();
            // A member that is closing gets nothing more and is not counted again.
            let Some(ws) = conn.ws().filter(|ws| ws.can_send()) else {
                continue;
            };
            if queued >= high_water {
                slow.push(key);
                continue;
            }
            let frame = match (ws.shared_deflate_window_bits(), level) {
                (Some(bits), Some(level)) => {
                    compressed[bits as usize & 15].get_or_insert_with(|| {
                        compress_shared(message.message.kind(), payload, bits, level)
                    })
                }
                _ => &message.plain,
            };
            if ws.send_encoded(frame).is_ok() {
                add(&self.metrics.fanout_deliveries_total, 1);
                add(&self.metrics.messages_out_total, 1);
                if !conn.dirty {
                    conn.dirty = true;
                    self.dirty.push(key);
                }
            }
        }
        for key in slow {
            match self.config.slow_consumer {
                SlowConsumerPolicy::Drop => add(&self.metrics.backpressure_drops_total, 1),
                SlowConsumerPolicy::Close => {
                    add(&self.metrics.backpressure_closes_total, 1);
                    self.close(key, CloseCode::POLICY_VIOLATION, "too slow");
                }
            }
        }
    }
}
