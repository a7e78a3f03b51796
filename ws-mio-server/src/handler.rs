//! The application's side of the server: a [`Handler`] is called for each handshake, message,
//! close and plain HTTP request, and acts through a [`Context`]. Actions are applied in the
//! order they were asked for, after the call returns, so data flows one way: socket, engine,
//! handler, fanout, write queues, socket.

use crate::metrics::Metrics;
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use ws_proto::handshake::server::{Request, Upgrade};
use ws_proto::{CloseCode, Connection, Message};

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
    /// The peer's address.
    pub peer: SocketAddr,
}

/// The answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenDecision {
    /// Accept, optionally choosing one of the offered subprotocols and adding headers.
    Accept {
        /// The subprotocol chosen; it must be one the client offered.
        protocol: Option<String>,
        /// Extra response headers.
        headers: Vec<(String, String)>,
    },
    /// Refuse with an HTTP status, headers and body.
    Reject(HttpResponse),
}

impl OpenDecision {
    /// Accept with no subprotocol.
    pub fn accept() -> OpenDecision {
        OpenDecision::Accept {
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Accept choosing `protocol`.
    pub fn accept_protocol(protocol: &str) -> OpenDecision {
        OpenDecision::Accept {
            protocol: Some(protocol.to_string()),
            headers: Vec::new(),
        }
    }

    /// Refuse with `status` and a plain-text `body`.
    pub fn reject(status: u16, body: &str) -> OpenDecision {
        OpenDecision::Reject(HttpResponse::text(status, body))
    }
}

/// A plain HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers (Content-Length and Connection are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A `text/plain` response.
    pub fn text(status: u16, body: &str) -> HttpResponse {
        HttpResponse::with_type(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    /// A response with a content type.
    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        ws_proto::handshake::http_response(ws_proto::StatusCode(self.status), &headers, &self.body)
    }
}

/// Why a connection ended, for [`Handler::on_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's, ours, 1005 for a close frame without one, 1006 when the
    /// transport ended without a closing handshake (heartbeat timeout, vanished peer).
    pub code: CloseCode,
    /// Whether the closing handshake completed.
    pub clean: bool,
}

/// The application.
pub trait Handler: Send + Sync + 'static {
    /// A client asks to upgrade. Actions taken through `ctx` (joining rooms, a welcome
    /// message) apply only if the connection is accepted.
    fn on_open(&self, ctx: &mut Context<'_>, request: &OpenRequest<'_>) -> OpenDecision {
        let _ = (ctx, request);
        OpenDecision::accept()
    }

    /// A message arrived on `ctx.id()`.
    fn on_message(&self, ctx: &mut Context<'_>, message: Message);

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
    fn on_message_ref(&self, ctx: &mut Context<'_>, message: MessageRef<'_>) {
        self.on_message(ctx, message.to_message());
    }

    /// The connection `ctx.id()` ended; it has left its rooms already.
    fn on_close(&self, ctx: &mut Context<'_>, info: CloseInfo) {
        let _ = (ctx, info);
    }

    /// A plain HTTP request (no upgrade) arrived on the WebSocket port.
    fn on_http(&self, request: &Request, metrics: &Metrics) -> HttpResponse {
        let _ = (request, metrics);
        HttpResponse::text(404, "not found\n")
    }
}

/// An action asked for by the handler.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Send(ConnId, Message),
    Close(ConnId, CloseCode, String),
    Join(ConnId, Arc<str>),
    Leave(ConnId, Arc<str>),
    Publish(Arc<str>, Message),
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

/// What a handler can do: send, close, join and leave rooms, publish.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) id: ConnId,
    pub(crate) commands: &'a mut Vec<Command>,
    /// The connection `id` itself, while a borrowed message is handled: replies go straight
    /// into its output queue.
    pub(crate) direct: Option<&'a mut Connection>,
    /// Messages sent through `direct`.
    pub(crate) sent_directly: u64,
}

impl<'a> Context<'a> {
    pub(crate) fn new(id: ConnId, commands: &'a mut Vec<Command>) -> Context<'a> {
        Context {
            id,
            commands,
            direct: None,
            sent_directly: 0,
        }
    }

    /// A context whose replies to `id` go straight into `conn`.
    pub(crate) fn direct(
        id: ConnId,
        commands: &'a mut Vec<Command>,
        conn: &'a mut Connection,
    ) -> Context<'a> {
        Context {
            direct: Some(conn),
            ..Context::new(id, commands)
        }
    }
}

impl Context<'_> {
    /// The connection the call is about.
    pub fn id(&self) -> ConnId {
        self.id
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

    /// Adds a connection to a room.
    pub fn join(&mut self, conn: ConnId, room: &str) {
        self.commands.push(Command::Join(conn, Arc::from(room)));
    }

    /// Removes a connection from a room.
    pub fn leave(&mut self, conn: ConnId, room: &str) {
        self.commands.push(Command::Leave(conn, Arc::from(room)));
    }

    /// Sends a message to every member of a room on every worker, encoded once.
    pub fn publish(&mut self, room: &str, message: Message) {
        self.commands
            .push(Command::Publish(Arc::from(room), message));
    }
}

/// Echo every message back: the application of `--mode echo`, which the Autobahn run and the
/// benchmarks test.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.reply(message);
    }

    fn borrows_messages(&self) -> bool {
        true
    }

    fn on_message_ref(&self, ctx: &mut Context<'_>, message: MessageRef<'_>) {
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
    fn on_open(&self, ctx: &mut Context<'_>, _: &OpenRequest<'_>) -> OpenDecision {
        ctx.join(ctx.id(), Self::ROOM);
        OpenDecision::accept()
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        ctx.publish(Self::ROOM, message);
    }
}
