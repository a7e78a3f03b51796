//! Frames to the handler, and the handler's commands carried out. Events are taken one at a
//! time and what the handler asks is applied before the next, so replies keep the order of
//! what they answer; the engine holds back its own close frame until its events are drained,
//! so replies to messages that came before a close still go out.
//!
//! Once a connection's queue reaches twice the high-water mark within a read
//! ([`Worker::input_stop`]), the rest of the read is kept as it came (`Driver::unread`, one
//! read at most) and reading pauses; it is taken when the peer has taken enough of its queue.
//! Kept undecoded, it costs its bytes and no more: decoded, 64 KiB of empty frames would be
//! ten thousand events. The same happens, without the pause, when the connection's turn
//! budget ([`super::TURN_BUDGET`]) is spent: input is charged as it is taken, with what it
//! inflated to, and a connection that inflates is given its input in small pieces, so that
//! one piece cannot cost much more than the budget.

use super::driver::{Ending, Phase};
use super::remote::{Remote, RoomMessage};
use super::{Key, Worker};
use crate::broker::UserClaim;
use crate::handler::{Command, Context, Handler, MessageRef};
use crate::metrics::add;
use ws_proto::{CloseCode, Connection, Event, InPlaceEvent, ProtocolViolation};

/// Bytes given to the engine at once for a handler of owned messages: at most this many
/// bytes' events wait in the engine when the queue reaches the high-water mark.
const OWNED_PIECE: usize = 4 << 10;

/// Bytes given to the engine at once on a connection that inflates its input: deflate
/// inflates at most about 1032 to 1, so a piece costs at most about 264 KiB of inflating
/// before the turn's budget is checked again, however the input was made. Large compressed
/// messages pay for the pieces: a 256 KiB text (30 KiB compressed) took 15-30% longer to
/// receive in 256-byte pieces than whole; a bomb's turn costs a quarter of what 1 KiB pieces
/// allowed, and a bystander's round trip under ten bombers fell to about a third.
const INFLATING_PIECE: usize = 256;

/// How much of `data` to give `ws` at most before charging it: a piece of `otherwise`, or
/// of [`INFLATING_PIECE`] when an extension may multiply what it costs.
fn piece_len(ws: &Connection, data: usize, otherwise: usize) -> usize {
    if ws.extension_name().is_some() {
        data.min(INFLATING_PIECE)
    } else {
        data.min(otherwise)
    }
}

impl<H: Handler> Worker<H> {
    /// Bytes of an open connection.
    pub(super) fn receive_frames(&mut self, key: Key, data: &mut [u8]) {
        let result = if self.handler.borrows_messages() {
            self.receive_in_place(key, data)
        } else {
            self.receive_owned(key, data)
        };
        if let Err(violation) = result {
            add(&self.metrics.protocol_errors_total, 1);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.ending.code = Some(violation.close_code());
                tracing::debug!(client = %conn.client, %violation, "protocol violation");
            }
        }
        self.process(key);
    }

    /// Takes one read's events to a handler that takes owned messages, a piece at a time, so
    /// that at most one piece's events wait in the engine when the queue reaches the mark.
    fn receive_owned(&mut self, key: Key, mut data: &mut [u8]) -> Result<(), ProtocolViolation> {
        let high_water = self.input_stop();
        while !data.is_empty() {
            let Some(conn) = self.conns.get_mut(key) else {
                break;
            };
            if conn.queued() >= high_water {
                conn.keep_unread(data);
                break;
            }
            if self.turn_left == 0 {
                conn.keep_for_next_turn(data);
                break;
            }
            let Some(ws) = conn.ws() else { break };
            let (piece, rest) = data.split_at_mut(piece_len(ws, data.len(), OWNED_PIECE));
            let decoded = ws.decoded_total();
            let received = ws.receive(piece);
            let cost = piece.len() as u64 + u64::from(ws.decoded_total().wrapping_sub(decoded));
            self.charge(cost);
            received?;
            data = rest;
            if !data.is_empty() {
                self.process(key);
            }
        }
        Ok(())
    }

    /// Charges input's cost to the turn of the connection being read.
    fn charge(&mut self, cost: u64) {
        let cost = usize::try_from(cost).unwrap_or(usize::MAX);
        self.turn_left = self.turn_left.saturating_sub(cost);
    }

    /// The queued bytes at which a connection's input stops being taken within a read: twice
    /// the high-water mark. Reading pauses after any read that leaves the queue at the mark;
    /// within a read, a connection working near the mark (sixteen 64 KiB echoes in flight
    /// against a 1 MiB mark) keeps its reads whole, while one whose requests multiply in their
    /// answers (a 5-byte request for 100 KiB of history) is stopped at twice the mark.
    fn input_stop(&self) -> usize {
        self.config.high_water_mark.saturating_mul(2)
    }

    /// Input kept while the queue was at the mark or for this turn, taken now.
    pub(super) fn receive_unread(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut unread = std::mem::take(&mut conn.unread);
        if !unread.is_empty() {
            self.receive_frames(key, &mut unread);
        }
    }

    /// Takes one read's events to a handler that borrows messages: each message that arrived
    /// whole goes to it borrowed from the read buffer (its replies straight into the
    /// connection's output queue), every other event as [`Self::process`] takes it.
    fn receive_in_place(&mut self, key: Key, mut data: &mut [u8]) -> Result<(), ProtocolViolation> {
        let Some(id) = self.id(key) else {
            return Ok(());
        };
        let high_water = self.input_stop();
        let mut result = Ok(());
        while !data.is_empty() && result.is_ok() {
            let Some(conn) = self.conns.get_mut(key) else {
                break;
            };
            if self.turn_left == 0 {
                conn.keep_for_next_turn(data);
                break;
            }
            let (Phase::Open(ws), Some(app)) = (&mut conn.phase, conn.app.as_mut()) else {
                break;
            };
            let piece = piece_len(ws, data.len(), data.len());
            let decoded = ws.decoded_total();
            let mut input = ws.receive_in_place(&mut data[..piece]);
            let mut over = false;
            loop {
                // Past the input stop the rest of the read is kept undecoded (one read at
                // most) and reading pauses until the peer takes its replies.
                if conn.raw_out.len() + input.connection().pending_transmit_len() >= high_water {
                    over = true;
                    break;
                }
                let message = match input.next_event() {
                    Ok(Some(InPlaceEvent::Text(text))) => Ok(MessageRef::Text(text)),
                    Ok(Some(InPlaceEvent::Binary(data))) => Ok(MessageRef::Binary(data)),
                    Ok(Some(InPlaceEvent::Other(Event::Message(message)))) => Err(message),
                    Ok(Some(InPlaceEvent::Other(other))) => {
                        note_event(other, &mut conn.pong_deadline, &mut conn.ending);
                        continue;
                    }
                    Ok(None) => break,
                    Err(violation) => {
                        result = Err(violation);
                        break;
                    }
                };
                add(&self.metrics.messages_in_total, 1);
                let mut ctx = Context::new(
                    (id, self.now),
                    conn.user.as_ref(),
                    (&self.services.rooms, conn.rooms.len()),
                    &mut self.commands,
                    Some(input.connection()),
                );
                match message {
                    Ok(borrowed) => self.handler.on_message_ref(&mut ctx, app, borrowed),
                    Err(owned) => self.handler.on_message(&mut ctx, app, owned),
                }
                add(&self.metrics.messages_out_total, ctx.sent_directly);
                if !self.commands.is_empty() {
                    break;
                }
            }
            let inflated = u64::from(input.connection().decoded_total().wrapping_sub(decoded));
            let taken = piece - input.into_rest().len();
            data = &mut std::mem::take(&mut data)[taken..];
            self.charge(taken as u64 + inflated);
            if over {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.keep_unread(data);
                }
                return result;
            }
            // Applying commands needs the whole worker: stop reading, apply, read on (and the
            // check above comes first, for replies the commands queued).
            self.apply_commands();
        }
        result
    }

    /// Takes the engine's events to the handler one at a time, applying what it asks for
    /// before taking the next.
    pub(super) fn process(&mut self, key: Key) {
        if self.conns.get(key).is_none() {
            return;
        }
        let now = self.now;
        if let Some(ws) = self.conns.get_mut(key).and_then(|c| c.ws()) {
            ws.handle_time(now);
        }
        let high_water = self.input_stop();
        while let Some(conn) = self.conns.get_mut(key) {
            // Past the input stop the events already decoded (one piece's at most) wait in
            // the engine, and reading pauses, until the peer takes its replies
            // ([`Worker::written`] resumes).
            if conn.queued() >= high_water {
                conn.read_paused = true;
                break;
            }
            let Some(event) = conn.ws().and_then(|ws| ws.poll_event()) else {
                break;
            };
            match event {
                Event::Message(message) => {
                    add(&self.metrics.messages_in_total, 1);
                    self.call_handler(key, |handler, ctx, app| {
                        handler.on_message(ctx, app, message)
                    });
                }
                other => {
                    let conn = self.conns.get_mut(key).expect("polled above");
                    note_event(other, &mut conn.pong_deadline, &mut conn.ending);
                }
            }
        }
        self.mark_dirty(key);
        self.arm_timer(key);
    }

    /// One handler call about a connection that has its state, and what it asked carried out.
    pub(super) fn call_handler(
        &mut self,
        key: Key,
        call: impl FnOnce(&H, &mut Context<'_>, &mut H::Conn),
    ) {
        self.ask_handler(key, |handler, ctx, app| {
            if let Some(app) = app {
                call(handler, ctx, app);
            }
        });
        self.apply_commands();
    }

    /// One handler call about connection `key`, given its state's slot, with a [`Context`]
    /// over the worker's command list; the caller carries the commands out (every handler
    /// call but a borrowed message's, which replies straight into the connection's queue,
    /// comes through here).
    pub(super) fn ask_handler(
        &mut self,
        key: Key,
        call: impl FnOnce(&H, &mut Context<'_>, &mut Option<H::Conn>),
    ) {
        let Some(id) = self.id(key) else { return };
        let conn = self.conns.get_mut(key).expect("id found it");
        let mut ctx = Context::new(
            (id, self.now),
            conn.user.as_ref(),
            (&self.services.rooms, conn.rooms.len()),
            &mut self.commands,
            None,
        );
        call(&self.handler, &mut ctx, &mut conn.app);
    }

    /// Carries out the handler's commands in order: those about a connection of another worker
    /// go to that worker. A command may lead to another handler call (a connection dropped
    /// while a room's message is delivered), whose commands are carried out in turn.
    pub(super) fn apply_commands(&mut self) {
        let mut commands = std::mem::take(&mut self.commands);
        for command in commands.drain(..) {
            match command.target() {
                Some(id) if id.worker != self.index => self
                    .outbound
                    .push_back((id.worker(), Remote::Command(command))),
                _ => self.apply_local(command),
            }
        }
        // Back, empty, for its allocation.
        self.commands = commands;
    }

    pub(super) fn apply_local(&mut self, command: Command) {
        let key = command.target().and_then(|id| self.local_key(id));
        match (command, key) {
            (Command::Send(_, message), Some(key)) => {
                if let Some(ws) = self.conns.get_mut(key).and_then(|c| c.ws()) {
                    if ws.send(&message).is_ok() {
                        add(&self.metrics.messages_out_total, 1);
                        self.mark_dirty(key);
                    }
                }
            }
            (Command::Close(_, code, reason), Some(key)) => self.close(key, code, &reason),
            (Command::Join(_, room), Some(key)) => {
                let conn = self.conns.get_mut(key).expect("live");
                conn.rooms.push(room.clone());
                self.fanout.join(room, key);
            }
            (Command::Leave(_, room), Some(key)) => {
                let conn = self.conns.get_mut(key).expect("live");
                conn.rooms.retain(|r| r != &room);
                self.fanout.leave(&room, key);
                if self.services.rooms.member_count(&room) == 0 {
                    self.services.history.emptied(&room, self.now);
                }
            }
            (Command::Publish(room, message), _) => self.publish(room, RoomMessage::new(message)),
            (Command::Record(room, payload, once), _) => self.record(room, payload, once),
            (Command::Mark(room, user, offset), _) => self.mark(room, user, offset),
            (Command::Claim(id, limit, refusal), Some(key)) => {
                let conn = self.conns.get_mut(key).expect("live");
                let Some(user) = conn.user.clone() else {
                    return;
                };
                if !self.services.broker.spans_instances() || conn.claimed {
                    return;
                }
                conn.claimed = true;
                let counted = self.services.users.connections(&user);
                let claim = UserClaim {
                    user,
                    counted,
                    limit,
                    refusal,
                    conn: id,
                };
                self.services.broker.claim(claim);
            }
            (Command::CloseRoom(room, code, reason), _) => {
                for worker in 0..self.services.workers {
                    if worker != self.index as usize {
                        let remote = Remote::CloseRoom(room.clone(), code, reason.clone());
                        self.outbound.push_back((worker, remote));
                    }
                }
                self.services.broker.close_room(&room, code, &reason);
                self.close_room(&room, code, &reason);
            }
            (Command::Read(read), Some(key)) => {
                if read.join {
                    let conn = self.conns.get_mut(key).expect("live");
                    conn.rooms.push(read.room.clone());
                }
                self.read(read);
            }
            (Command::Expire(_, after), Some(key)) => {
                let now = self.now;
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.expires_at = after.and_then(|after| now.checked_add(after));
                }
                // An earlier deadline needs an earlier entry; a later one is found when the
                // current entry fires.
                self.arm_timer(key);
            }
            // The connection is gone: nothing to do.
            (_, None) => {}
        }
    }

    /// Starts the closing handshake from this side.
    pub(super) fn close(&mut self, key: Key, code: CloseCode, reason: &str) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(ws) = conn.ws() else { return };
        if ws.close(self.now, code, reason).is_ok() && conn.ending.code.is_none() {
            conn.ending.code = Some(code);
        }
        self.mark_dirty(key);
        self.arm_timer(key);
    }
}

/// What an event other than a message changes on its connection: a pong ends the wait for one;
/// the peer's close frame gives the close code (1005 when it carried none).
fn note_event(event: Event, pong_deadline: &mut Option<std::time::Duration>, ending: &mut Ending) {
    match event {
        Event::Pong(_) => *pong_deadline = None,
        Event::Close(frame) => {
            ending.code = Some(frame.map_or(CloseCode::NO_STATUS, |f| f.code));
            ending.peer_closed = true;
        }
        Event::Message(_) | Event::Ping(_) | Event::Chunk(_) => {}
    }
}
