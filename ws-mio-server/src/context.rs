//! What a handler can do through its [`Context`]: send, close, join and leave rooms, publish
//! (recorded or not), address users, read rooms' histories, and ask who is where; and the
//! commands a call leaves, which the worker carries out in order after it returns.

use crate::handler::{ConnId, LeftRoom};
use crate::history::{Position, Read, Want};
use crate::rooms::{Join, RoomRegistry};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use ws_proto::{CloseCode, Connection, Message};

/// An action asked for by the handler.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Send(ConnId, Message),
    Close(ConnId, CloseCode, String),
    /// The connection joined a room (the registry knows already; the worker's fanout index
    /// follows).
    Join(ConnId, Arc<str>),
    Leave(ConnId, Arc<str>),
    Publish(Arc<str>, Message),
    /// A message to number and keep in the room's history, then deliver; with a key, only
    /// if no message of the room had that key recently.
    Record(Arc<str>, Message, Option<Arc<str>>),
    /// Close every member of a room (a user's) on every worker and instance.
    CloseRoom(Arc<str>, CloseCode, String),
    /// A user's read mark in a room.
    Mark(Arc<str>, Arc<str>, u64),
    /// The connection claims one of its user's connections across instances.
    Claim(ConnId, usize, (CloseCode, String)),
    /// The connection reads a room's history (joining the room with it, when the read says
    /// so: the registry knows already; the fanout index follows once the answer is sent).
    Read(Read),
    /// The connection's credentials expire after this long from now; `None`: never.
    Expire(ConnId, Option<Duration>),
}

impl Command {
    /// The connection the command acts on, if one.
    pub(crate) fn target(&self) -> Option<ConnId> {
        match self {
            Command::Send(id, _)
            | Command::Close(id, _, _)
            | Command::Join(id, _)
            | Command::Leave(id, _)
            | Command::Expire(id, _)
            | Command::Claim(id, _, _) => Some(*id),
            Command::Read(read) => Some(read.conn),
            Command::Publish(..)
            | Command::Record(..)
            | Command::CloseRoom(..)
            | Command::Mark(..) => None,
        }
    }
}

/// A whole message borrowed from the read buffer; see [`crate::Handler::on_message_ref`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A text message (valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl MessageRef<'_> {
    /// An owned copy.
    pub fn to_message(&self) -> Message {
        match *self {
            MessageRef::Text(text) => Message::Text(text.to_owned().into()),
            MessageRef::Binary(data) => Message::Binary(Bytes::copy_from_slice(data)),
        }
    }
}

/// What a handler can do: send, close, join and leave rooms, publish, and ask who is where.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) id: ConnId,
    /// The worker's time, since the server started.
    pub(crate) now: Duration,
    pub(crate) user: Option<&'a Arc<str>>,
    pub(crate) rooms: &'a RoomRegistry,
    /// Rooms the connection is in, with this call's joins and leaves.
    pub(crate) joined: usize,
    pub(crate) commands: &'a mut Vec<Command>,
    /// The connection `id` itself, while a borrowed message is handled: replies go straight
    /// into its output queue.
    pub(crate) direct: Option<&'a mut Connection>,
    /// Messages sent through `direct`.
    pub(crate) sent_directly: u64,
    pub(crate) spans_instances: bool,
}

impl<'a> Context<'a> {
    /// A context for a call about `id`; with `direct`, replies to it go straight into its
    /// output queue.
    pub(crate) fn new(
        (id, now): (ConnId, Duration),
        user: Option<&'a Arc<str>>,
        (rooms, joined): (&'a RoomRegistry, usize),
        commands: &'a mut Vec<Command>,
        direct: Option<&'a mut Connection>,
    ) -> Context<'a> {
        Context {
            id,
            now,
            user,
            rooms,
            joined,
            commands,
            direct,
            sent_directly: 0,
            spans_instances: rooms.spans_instances(),
        }
    }
}

impl Context<'_> {
    /// The connection the call is about.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The time since the server started: monotonic, the same clock on every worker (pretend
    /// time under [`crate::testing::TestServer`]). For deadlines of the application's own.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Its user, as [`crate::OpenDecision::user`] named it.
    pub fn user(&self) -> Option<&str> {
        self.user.map(|u| &**u)
    }

    /// Sends a message to this connection.
    pub fn reply(&mut self, message: Message) {
        self.commands.push(Command::Send(self.id, message));
    }

    /// Sends a borrowed message to this connection: from [`crate::Handler::on_message_ref`], straight
    /// into its output queue (one copy, no allocation); elsewhere, or after an action that is
    /// still queued, as an owned copy in its turn.
    pub fn reply_ref(&mut self, message: MessageRef<'_>) {
        match &mut self.direct {
            Some(conn) if self.commands.is_empty() => {
                let sent = match message {
                    MessageRef::Text(text) => conn.send_text(text),
                    MessageRef::Binary(data) => conn.send_binary(data),
                };
                // Refused only once the connection is closing, as a queued send would be.
                if sent.is_ok() {
                    self.sent_directly += 1;
                }
            }
            _ => self.reply(message.to_message()),
        }
    }

    /// Sends a message to any connection (on any worker).
    pub fn send(&mut self, to: ConnId, message: Message) {
        self.commands.push(Command::Send(to, message));
    }

    /// Starts the closing handshake with a connection.
    pub fn close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        self.commands
            .push(Command::Close(conn, code, reason.to_string()));
    }

    /// Adds this connection to a room. Membership holds at once for every question asked of
    /// the server; messages published to the room after this call reach the connection.
    pub fn join(&mut self, room: &str) -> Join {
        let (outcome, room) = self.rooms.join(room, self.id, self.user, self.joined);
        if let Some(room) = room {
            self.joined += 1;
            self.commands.push(Command::Join(self.id, room));
        }
        outcome
    }

    /// Removes this connection from a room; `None` if it was not in it, otherwise whether it
    /// was its user's last connection there.
    pub fn leave(&mut self, room: &str) -> Option<LeftRoom> {
        let left = self.rooms.leave(room, self.id, self.user)?;
        self.joined = self.joined.saturating_sub(1);
        self.commands
            .push(Command::Leave(self.id, left.room.clone()));
        Some(left)
    }

    /// Whether this connection is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.rooms.contains(room, self.id)
    }

    /// The users in `room`, each once, sorted (a connection without a user counts as its own,
    /// shown by its id).
    pub fn room_users(&self, room: &str) -> Option<Vec<Arc<str>>> {
        self.rooms.users(room)
    }

    /// How many connections are in `room` on every worker; 0 when nobody is.
    pub fn room_size(&self, room: &str) -> usize {
        self.rooms.member_count(room)
    }

    /// Sets when this connection's credentials (a token, say) expire: `after` this long from
    /// now the server closes it with [`CREDENTIALS_EXPIRED`] unless this is called again first
    /// with a later time (a refresh) or with `None` (they never expire). Connections have no
    /// such deadline until one is set; set the first in [`crate::Handler::on_connect`]. A deadline
    /// too far to represent counts as none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_mio_server::{Context, Handler, OpenDecision, OpenRequest};
    /// use ws_proto::Message;
    ///
    /// /// Connections last a minute, and another minute from each `renew`.
    /// struct Leases;
    /// impl Handler for Leases {
    ///     type Conn = ();
    ///     fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
    ///         OpenDecision::accept(())
    ///     }
    ///     fn on_connect(&self, ctx: &mut Context<'_>, _: &mut ()) {
    ///         ctx.expire_after(Some(Duration::from_secs(60)));
    ///     }
    ///     fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
    ///         if message.as_bytes() == b"renew" {
    ///             ctx.expire_after(Some(Duration::from_secs(60)));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn expire_after(&mut self, after: Option<Duration>) {
        self.commands.push(Command::Expire(self.id, after));
    }

    /// Sends a message to every member of a room on every worker, encoded once.
    pub fn publish(&mut self, room: &str, message: Message) {
        self.commands
            .push(Command::Publish(Arc::from(room), message));
    }

    /// Sends a message to every connection of `user` ([`crate::OpenDecision::user`]), on every
    /// worker and, through a broker that spans instances, on every instance: encoded once, as
    /// a room message is.
    pub fn send_to_user(&mut self, user: &str, message: Message) {
        self.commands
            .push(Command::Publish(crate::users::user_room(user), message));
    }

    /// Starts the closing handshake with every connection of `user`, everywhere (a kick).
    pub fn disconnect_user(&mut self, user: &str, code: CloseCode, reason: &str) {
        let room = crate::users::user_room(user);
        self.commands
            .push(Command::CloseRoom(room, code, reason.to_string()));
    }

    /// Limits this connection's user to `limit` connections across every instance (a broker
    /// that spans instances counts them; this instance alone leaves the count to the
    /// application): when the user has more, this connection is closed with `code` and
    /// `reason`, a moment after it opened. Call it from [`crate::Handler::on_connect`]. The
    /// connection is counted until it ends.
    pub fn limit_user_connections(&mut self, limit: usize, code: CloseCode, reason: &str) {
        if self.user.is_some() {
            let refusal = (code, reason.to_string());
            self.commands.push(Command::Claim(self.id, limit, refusal));
        }
    }

    /// Whether the server's broker joins it to other instances: then a user or a room may
    /// have connections this instance does not see.
    pub fn spans_instances(&self) -> bool {
        self.spans_instances
    }

    /// Publishes a message that the room's history records ([`crate::history`]): numbered
    /// in the room, rendered once by [`crate::Handler::render`] with its position, delivered to
    /// every member in the order of the offsets (on every instance, through a broker that
    /// records), and kept for members that come back. A little slower than
    /// [`Self::publish`]: even this worker's members get it through its inbox, in order.
    pub fn publish_recorded(&mut self, room: &str, payload: Message) {
        self.commands
            .push(Command::Record(Arc::from(room), payload, None));
    }

    /// [`Self::publish_recorded`], at most once per `key` within a window: a client's retry
    /// of a message (after a reconnect, to any instance) carrying the same key is dropped.
    /// The window is two minutes ([`crate::history::ONCE_WINDOW`]; the room's last
    /// [`crate::history::RECENT_KEYS`] keys at most on one instance), and the broker's across
    /// instances (two minutes for Redis).
    pub fn publish_recorded_once(&mut self, room: &str, payload: Message, key: &str) {
        let key = Some(Arc::from(key));
        self.commands
            .push(Command::Record(Arc::from(room), payload, key));
    }

    /// Joins a room as [`Self::join`] does, with its history: `since`, the position of the
    /// last message of the room the client saw, asks for every message after it; `None`
    /// asks only for the room's position. The answer comes to [`crate::Handler::on_history`]; then
    /// the connection is sent the messages it missed, then the live ones, none twice.
    ///
    /// ```
    /// use ws_mio_server::history::{Answer, Outcome, Position};
    /// use ws_mio_server::{Context, Handler, OpenDecision, OpenRequest};
    /// use ws_proto::Message;
    ///
    /// /// One room; each message sent to it is numbered, and a client that comes back with
    /// /// `?since=EPOCH:OFFSET` in its URL gets what it missed.
    /// struct Numbered;
    /// impl Handler for Numbered {
    ///     type Conn = Option<Position>;
    ///     fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<Option<Position>> {
    ///         OpenDecision::accept(None) // (the URL's `since`, parsed)
    ///     }
    ///     fn on_connect(&self, ctx: &mut Context<'_>, since: &mut Option<Position>) {
    ///         ctx.join_with_history("room", since.take());
    ///     }
    ///     fn on_message(&self, ctx: &mut Context<'_>, _: &mut Option<Position>, m: Message) {
    ///         ctx.publish_recorded("room", m);
    ///     }
    ///     fn render(&self, _: &str, at: Option<&Position>, m: &Message) -> Message {
    ///         let offset = at.map_or(0, |p| p.offset);
    ///         let text = format!("{offset} {}", String::from_utf8_lossy(m.as_bytes()));
    ///         Message::Text(text.into())
    ///     }
    ///     fn on_history(&self, ctx: &mut Context<'_>, _: &mut Option<Position>, a: &Answer) {
    ///         let recovered = a.page.outcome == Outcome::Recovered;
    ///         ctx.reply(Message::Text(format!("recovered: {recovered}").into()));
    ///     }
    /// }
    /// ```
    pub fn join_with_history(&mut self, room: &str, since: Option<Position>) -> Join {
        let (outcome, name) = self.rooms.join(room, self.id, self.user, self.joined);
        if let Some(room) = name {
            self.joined += 1;
            let want = match since {
                Some(since) => Want::Since(since),
                None => Want::Position,
            };
            self.commands.push(Command::Read(Read {
                room,
                want,
                conn: self.id,
                user: self.user.cloned(),
                join: true,
            }));
        }
        outcome
    }

    /// Reads the last `last` messages of a room's history (member or not); the answer comes
    /// to [`crate::Handler::on_history`].
    pub fn read_history(&mut self, room: &str, last: usize) {
        self.commands.push(Command::Read(Read {
            room: Arc::from(room),
            want: Want::Last(last),
            conn: self.id,
            user: None,
            join: false,
        }));
    }

    /// Marks `room` read by this connection's user up to `offset` (of the room's current
    /// epoch): kept with the room's history (on every instance, through a broker that
    /// records), and given back to the user's connections as they join the room
    /// ([`crate::history::Answer::mark`]). A connection without a user marks nothing.
    pub fn mark_read(&mut self, room: &str, offset: u64) {
        if let Some(user) = self.user {
            self.commands
                .push(Command::Mark(Arc::from(room), user.clone(), offset));
        }
    }
}

/// The close code and reason of a connection whose credentials expired
/// ([`Context::expire_after`]): 1008 Policy Violation, as for other refusals to go on serving a
/// client; the reason tells it apart.
pub const CREDENTIALS_EXPIRED: (CloseCode, &str) =
    (CloseCode::POLICY_VIOLATION, "credentials expired");
