//! Recorded room messages and reads of rooms' histories ([`crate::history`]), as a worker
//! carries them out. A recorded message is numbered by the broker when it records, otherwise
//! here in the server's own history, and reaches every worker's members (this worker's too)
//! through the inboxes, so each member gets a room's messages in the order of their offsets.
//! A connection joining with history is told the answer (the handler's
//! [`Handler::on_history`]), sent what it missed, and only then added to the room's fanout,
//! marked with the answer's position so the live messages already queued before it (which the
//! page had) are not sent to it twice.

use super::{Key, Worker};
use crate::handler::Handler;
use crate::history::{Answer, Read};
use crate::metrics::add;
use std::sync::Arc;
use ws_proto::Message;

impl<H: Handler> Worker<H> {
    /// Numbers, keeps and delivers a recorded message (unless its key was recorded lately).
    pub(super) fn record(&mut self, room: Arc<str>, payload: Message, once: Option<Arc<str>>) {
        let services = &self.services;
        if services.broker.records() {
            return services.broker.record(&room, &payload, once.as_deref());
        }
        let rooms = &services.rooms;
        let delivery = &services.delivery;
        services.history.record(
            (&room, once.as_deref()),
            self.now,
            |r| rooms.member_count(r) == 0,
            |position| delivery.deliver_recorded(&room, position, &payload),
        );
    }

    /// Reads a room's history for a connection: the broker answers later when it records,
    /// the server's own history at once.
    pub(super) fn read(&mut self, read: Read) {
        let services = &self.services;
        if services.broker.records() {
            if let Some(answer) = services.broker.read(read) {
                self.answered(answer);
            }
            return;
        }
        let rooms = &services.rooms;
        // A joining connection is in the registry already: its room counts as empty when it
        // is the only member, so a history that expired while nobody was there starts afresh.
        let alone = usize::from(read.join);
        let is_empty = |r: &str| {
            let members = rooms.member_count(r);
            members == 0 || (r == &*read.room && members <= alone)
        };
        let page = services
            .history
            .read(&read.room, read.want.clone(), self.now, is_empty);
        let mark = match (&read.user, read.join) {
            (Some(user), true) => services.history.mark_of(&read.room, user),
            _ => None,
        };
        self.answered(Answer { read, page, mark });
    }

    /// The answer to a connection's read: to the handler, then, for a join, the messages it
    /// missed and the room's live messages from then on.
    pub(super) fn answered(&mut self, answer: Answer) {
        let Some(key) = self.local_key(answer.read.conn) else {
            return;
        };
        let room = &answer.read.room;
        let joining = answer.read.join;
        // A connection that left the room (or left and joined again, with a read of its own
        // still to come) is not joining with this answer.
        if joining && (!self.in_room(key, room) || self.fanout.contains(room, key)) {
            return;
        }
        self.call_handler(key, |handler, ctx, app| {
            handler.on_history(ctx, app, &answer)
        });
        if !joining || !self.in_room(key, room) {
            return;
        }
        if let Some(ws) = self.conns.get_mut(key).and_then(|c| c.ws()) {
            for message in &answer.page.messages {
                if ws.send(message).is_ok() {
                    add(&self.metrics.messages_out_total, 1);
                }
            }
        }
        self.mark_dirty(key);
        self.fanout
            .join_after(room.clone(), key, answer.page.position.clone());
    }

    /// Keeps a user's read mark in a room.
    pub(super) fn mark(&mut self, room: Arc<str>, user: Arc<str>, offset: u64) {
        match self.services.broker.records() {
            true => self.services.broker.mark(&room, &user, offset),
            false => self.services.history.mark(&room, &user, offset),
        }
    }

    fn in_room(&self, key: Key, room: &str) -> bool {
        self.conns
            .get(key)
            .is_some_and(|c| c.rooms.iter().any(|r| &**r == room))
    }
}
