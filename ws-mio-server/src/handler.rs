//! The application's side of the server. A [`Handler`] decides each handshake
//! ([`Handler::on_open`], with no side effects), then for an accepted connection is called
//! when it opens, for each message and when it ends, with its own per-connection state
//! ([`Handler::Conn`]); it acts through a [`Context`]. Sends, closes and publishes are applied in
//! the order they were asked for, after the call returns, so data flows one way: socket,
//! engine, handler, fanout, write queues, socket. Room membership is the server's
//! ([`crate::rooms::RoomRegistry`]): a handler asks it, and keeps no copy of who is where.

pub use crate::apps::{Broadcast, Echo};
pub(crate) use crate::context::Command;
pub use crate::context::{Context, MessageRef, CREDENTIALS_EXPIRED};
use crate::history::{Answer, Position};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use ws_proto::handshake::server::{Request, Upgrade};
use ws_proto::{CloseCode, Message, StatusCode};

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
