//! The application's side of the server. A [`Handler`] decides each handshake
//! ([`Handler::on_open`], with no side effects), then for an accepted connection is called
//! when it opens, for each message and when it ends, with its own per-connection state
//! ([`Handler::Conn`]); it acts through a [`Context`]. Sends, closes and publishes are applied in
//! the order they were asked for, after the call returns, so data flows one way: socket,
//! engine, handler, fanout, write queues, socket. Room membership is the server's
//! ([`crate::rooms::RoomRegistry`]): a handler asks it, and keeps no copy of who is where.

use crate::history::{Answer, Position, Read, Want};
use crate::rooms::{Join, RoomRegistry};
use bytes::Bytes;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use ws_proto::handshake::server::{Request, Upgrade};
use ws_proto::{CloseCode, Connection, Message, StatusCode};

/// A connection, unique within the server for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) worker: u16,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// The worker whose event loop owns the connection.
    pub fn worker(&self) -> usize {
        self.worker as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.worker, self.slot, self.generation)
    }
}

/// A handshake request, for [`Handler::on_open`].
#[derive(Debug)]
pub struct OpenRequest<'a> {
    /// The HTTP request: path, query, headers, Origin.
    pub request: &'a Request,
    /// What the client offered: subprotocols and extensions.
    pub upgrade: &'a Upgrade,
    /// The TCP peer's address: the client's, or a trusted proxy's.
    pub peer: SocketAddr,
    /// The client's address: the peer's, or when the peer is a trusted proxy
    /// (`--trusted-proxies`) the client it forwards for (from the PROXY header or
    /// `X-Forwarded-For`). What the per-IP limit and the handshake rate count.
    pub client: IpAddr,
}

/// The answer to a handshake: accept with the connection's state, or refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenDecision<C> {
    /// Accept.
    Accept(Accept<C>),
    /// Refuse with an HTTP status, headers and body.
    Reject(HttpResponse),
}

/// An accepted handshake: the connection's state and what the response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept<C> {
    /// The handler's state for this connection, handed to every later call about it.
    pub conn: C,
    /// Who the connection belongs to, as room presence reports it ([`Context::room_users`]);
    /// `None` counts the connection as its own user.
    pub user: Option<Arc<str>>,
    /// The subprotocol chosen; it must be one the client offered.
    pub protocol: Option<String>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl<C> OpenDecision<C> {
    /// Accept with `conn` as the connection's state, no user, no subprotocol.
    ///
    /// ```
    /// use ws_mio_server::OpenDecision;
    /// let decision = OpenDecision::accept(0u32).user("alice").protocol("chat");
    /// assert!(matches!(decision, OpenDecision::Accept(a) if a.user.as_deref() == Some("alice")));
    /// ```
    pub fn accept(conn: C) -> OpenDecision<C> {
        OpenDecision::Accept(Accept {
            conn,
            user: None,
            protocol: None,
            headers: Vec::new(),
        })
    }

    /// Refuse with `status` and a plain-text `body`.
    pub fn reject(status: StatusCode, body: &str) -> OpenDecision<C> {
        OpenDecision::Reject(HttpResponse::text(status, body))
    }

    /// Names the connection's user (an accepted decision; a refusal is unchanged).
    pub fn user(mut self, user: &str) -> OpenDecision<C> {
        if let OpenDecision::Accept(accept) = &mut self {
            accept.user = Some(Arc::from(user));
        }
        self
    }

    /// Chooses a subprotocol the client offered (an accepted decision).
    pub fn protocol(mut self, protocol: &str) -> OpenDecision<C> {
        if let OpenDecision::Accept(accept) = &mut self {
            accept.protocol = Some(protocol.to_string());
        }
        self
    }

    /// Adds a response header (an accepted decision).
    pub fn header(mut self, name: &str, value: &str) -> OpenDecision<C> {
        if let OpenDecision::Accept(accept) = &mut self {
            accept.headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

/// A plain HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// Headers (Content-Length and Connection are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A `text/plain` response.
    pub fn text(status: StatusCode, body: &str) -> HttpResponse {
        HttpResponse::with_type(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    /// A response with a content type.
    pub fn with_type(status: StatusCode, content_type: &str, body: Vec<u8>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body,
        }
    }

    /// 426 Upgrade Required, with `Upgrade: websocket` and `Sec-WebSocket-Version: 13`: the
    /// answer to a plain request for a WebSocket path (RFC 6455 section 4.4).
    pub fn upgrade_required() -> HttpResponse {
        let mut response = HttpResponse::text(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: upgrade to websocket\n",
        );
        for (name, value) in ws_proto::UPGRADE_REQUIRED_HEADERS {
            response = response.header(name, value);
        }
        response
    }

    /// The response with one more header.
    ///
    /// ```
    /// use ws_mio_server::HttpResponse;
    /// use ws_proto::StatusCode;
    /// let r = HttpResponse::text(StatusCode::OK, "hi\n").header("Cache-Control", "no-store");
    /// assert!(r.headers.contains(&("Cache-Control".into(), "no-store".into())));
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The response's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        ws_proto::handshake::http_response(self.status, &headers, &self.body)
    }
}

/// Why a connection ended, for [`Handler::on_close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's, ours, 1005 for a close frame without one, 1006 when the
    /// transport ended without a closing handshake (heartbeat timeout, vanished peer).
    pub code: CloseCode,
    /// Whether the closing handshake completed.
    pub clean: bool,
    /// The rooms the connection was in, which it has left already.
    pub left: Vec<LeftRoom>,
}

/// A room a connection left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftRoom {
    /// The room.
    pub room: Arc<str>,
    /// It was its user's last connection in the room.
    pub last_of_user: bool,
}

/// The application.
pub trait Handler: Send + Sync + 'static {
    /// The application's state for one connection: created by [`Self::on_open`], handed to
    /// every call about the connection, and back to [`Self::on_close`] at its end.
    type Conn: Send + 'static;

    /// A client asks to upgrade: accept (with the connection's state) or refuse. Nothing is
    /// reserved here, so a refusal, or a handshake that fails after this answer, leaves
    /// nothing behind; reserve in [`Self::on_connect`], release in [`Self::on_close`].
    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<Self::Conn>;

    /// The connection `ctx.id()` is open (its 101 response is queued): join rooms, greet.
    fn on_connect(&self, ctx: &mut Context<'_>, conn: &mut Self::Conn) {
        let _ = (ctx, conn);
    }

    /// A message arrived on `ctx.id()`.
    fn on_message(&self, ctx: &mut Context<'_>, conn: &mut Self::Conn, message: Message);

    /// Whether this handler takes messages borrowed from the worker's read buffer through
    /// [`Self::on_message_ref`]. Default false: every message comes to [`Self::on_message`]
    /// as an owned [`Message`].
    fn borrows_messages(&self) -> bool {
        false
    }

    /// A message that arrived whole in one read, borrowed from the worker's read buffer
    /// (called only when [`Self::borrows_messages`] is true; other messages still come to
    /// [`Self::on_message`]). Looking at it, or replying with [`Context::reply_ref`], costs no
    /// copy beyond the reply's own. The default copies it and calls [`Self::on_message`].
    fn on_message_ref(
        &self,
        ctx: &mut Context<'_>,
        conn: &mut Self::Conn,
        message: MessageRef<'_>,
    ) {
        self.on_message(ctx, conn, message.to_message());
    }

    /// The connection `ctx.id()` ended; it has left its rooms already (`info.left`).
    fn on_close(&self, ctx: &mut Context<'_>, conn: Self::Conn, info: CloseInfo) {
        let _ = (ctx, conn, info);
    }

    /// Renders a recorded message ([`Context::publish_recorded`]) for its room's members once
    /// its place in the room's history is known (`None`: it has none, the history being out
    /// of reach): called once per message per instance, whichever worker or thread delivers
    /// it, and what it returns is what every member gets and what the history keeps. The
    /// default sends the payload as it is.
    fn render(&self, room: &str, position: Option<&Position>, payload: &Message) -> Message {
        let _ = (room, position);
        payload.clone()
    }

    /// The message the admin API publishes to `room` for `text`
    /// (`POST /api/rooms/ROOM/publish?text=...`), recorded as
    /// [`Context::publish_recorded`] records; `None` refuses it (403). The default sends the
    /// text as it is.
    fn admin_message(&self, room: &str, text: &str) -> Option<Message> {
        let _ = room;
        Some(Message::Text(text.to_string().into()))
    }

    /// The message that tells a room's members `user` joined it (`joined`) or left it, for a
    /// broker to send when it learns of a change it must announce itself: a user gone with an
    /// instance that died. The default announces nothing.
    fn render_presence(&self, room: &str, user: &str, joined: bool) -> Option<Message> {
        let _ = (room, user, joined);
        None
    }

    /// A read of a room's history that connection `ctx.id()` asked for has its answer
    /// ([`Context::join_with_history`], [`Context::read_history`]). When it came with a join
    /// (`answer.read.join`), the page's messages are sent to the connection after what this
    /// call sends, and the live ones after them; a connection that left the room meanwhile
    /// gets no call. The default does nothing.
    fn on_history(&self, ctx: &mut Context<'_>, conn: &mut Self::Conn, answer: &Answer) {
        let _ = (ctx, conn, answer);
    }

    /// A plain HTTP request (no upgrade) arrived on the public listener. The server answers
    /// nothing there itself: `/metrics`, `/healthz` and `/readyz` are on the admin listener.
    fn on_http(&self, request: &Request) -> HttpResponse {
        let _ = request;
        HttpResponse::text(StatusCode::NOT_FOUND, "not found\n")
    }
}

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
            | Command::Expire(id, _) => Some(*id),
            Command::Read(read) => Some(read.conn),
            Command::Publish(..)
            | Command::Record(..)
            | Command::CloseRoom(..)
            | Command::Mark(..) => None,
        }
    }
}

/// A whole message borrowed from the read buffer; see [`Handler::on_message_ref`].
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

    /// Its user, as [`OpenDecision::user`] named it.
    pub fn user(&self) -> Option<&str> {
        self.user.map(|u| &**u)
    }

    /// Sends a message to this connection.
    pub fn reply(&mut self, message: Message) {
        self.commands.push(Command::Send(self.id, message));
    }

    /// Sends a borrowed message to this connection: from [`Handler::on_message_ref`], straight
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
    /// such deadline until one is set; set the first in [`Handler::on_connect`]. A deadline
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

    /// Sends a message to every connection of `user` ([`OpenDecision::user`]), on every
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

    /// Whether the server's broker joins it to other instances: then a user or a room may
    /// have connections this instance does not see.
    pub fn spans_instances(&self) -> bool {
        self.spans_instances
    }

    /// Publishes a message that the room's history records ([`crate::history`]): numbered
    /// in the room, rendered once by [`Handler::render`] with its position, delivered to
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
    /// asks only for the room's position. The answer comes to [`Handler::on_history`]; then
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
    /// to [`Handler::on_history`].
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
    /// ([`Answer::mark`]). A connection without a user marks nothing.
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

/// Echo every message back: the application of `--mode echo`, which the Autobahn run and the
/// benchmarks test.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        ctx.reply(message);
    }

    fn borrows_messages(&self) -> bool {
        true
    }

    /// Every path is a WebSocket endpoint: a plain request gets 426.
    fn on_http(&self, _: &Request) -> HttpResponse {
        HttpResponse::upgrade_required()
    }

    fn on_message_ref(&self, ctx: &mut Context<'_>, _: &mut (), message: MessageRef<'_>) {
        ctx.reply_ref(message);
    }
}

/// Publish every message to every open connection, the sender included, through one room: the
/// application of `--mode broadcast`, the plain fanout the benchmarks compare with other
/// servers (the chat adds its JSON protocol, history and presence on top of the same path).
#[derive(Debug, Default, Clone, Copy)]
pub struct Broadcast;

impl Broadcast {
    /// The room every connection joins.
    pub const ROOM: &'static str = "broadcast";
}

impl Handler for Broadcast {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_connect(&self, ctx: &mut Context<'_>, _: &mut ()) {
        ctx.join(Self::ROOM);
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        ctx.publish(Self::ROOM, message);
    }

    /// Every path is a WebSocket endpoint: a plain request gets 426.
    fn on_http(&self, _: &Request) -> HttpResponse {
        HttpResponse::upgrade_required()
    }
}
