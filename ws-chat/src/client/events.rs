//! What a chat client hands the application: the server's messages, typed, with the
//! recovery's findings (a room recovered, a gap) and the connection's changes.

use super::rooms::Gap;
use crate::protocol::ErrorCode;
use serde::Deserialize;
use ws_mio_server::history::{Epoch, Position};
use ws_tokio::reconnect::ClientEvent;

/// An event of a [`super::ChatClient`], in the order the server sent it (connection events
/// come in between, as they happen).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ChatEvent {
    /// The connection changed: connected, lost, reconnecting, stopped.
    Connection(ClientEvent),
    /// Who the connection is (the first message of every connection).
    Welcome {
        /// The user name.
        user: String,
        /// Whether the server took it for an unauthenticated guest.
        guest: bool,
        /// The display name, if the token had one.
        name: Option<String>,
    },
    /// A room was entered for the first time: messages after `position` come live (those
    /// before through [`super::ChatClient::history`]). `None`: the history is out of reach,
    /// and messages come without positions until it is back.
    Joined {
        /// The room.
        room: String,
        /// The room's position now.
        position: Option<Position>,
        /// The offset up to which this user has read the room, if it marked any.
        read: Option<u64>,
    },
    /// A room was entered again after a reconnection, and every message missed follows
    /// (those delivered already are not delivered again).
    Recovered {
        /// The room.
        room: String,
        /// How many messages the server sends back (some may be dropped as delivered).
        missed: usize,
    },
    /// Messages of a room that will not be delivered: see [`Gap`].
    Gap(Gap),
    /// A room message, delivered once.
    Message(ChatMessage),
    /// A direct message.
    Direct(DirectMessage),
    /// A sent message was accepted.
    Ack {
        /// The client's id of the message ([`super::ChatClient::say`]'s).
        id: Option<String>,
        /// The server's id for it.
        msg_id: u64,
        /// Server time in ms since the Unix epoch.
        ts: u64,
    },
    /// Someone entered or left a room.
    Presence {
        /// The room.
        room: String,
        /// The user.
        user: String,
        /// Their display name, if any.
        name: Option<String>,
        /// True when they entered, false when they left.
        joined: bool,
    },
    /// Someone is typing in a room.
    Typing {
        /// The room.
        room: String,
        /// The user.
        user: String,
        /// Their display name, if any.
        name: Option<String>,
    },
    /// Who is in a room ([`super::ChatClient::who`]'s answer).
    Members {
        /// The room.
        room: String,
        /// The users, sorted.
        users: Vec<String>,
    },
    /// A room's recent messages, oldest first ([`super::ChatClient::history`]'s answer):
    /// given as they are, the room's record is not moved by them.
    History {
        /// The room.
        room: String,
        /// The messages.
        messages: Vec<ChatMessage>,
    },
    /// A member has read a room up to an offset.
    Read {
        /// The room.
        room: String,
        /// The user.
        user: String,
        /// The offset.
        offset: u64,
    },
    /// A request failed; the connection goes on.
    Error {
        /// The stable code.
        code: ErrorCode,
        /// For people.
        message: String,
        /// The client's id of the message that failed, if it had one.
        id: Option<String>,
    },
    /// A message this client does not know (a later version's, say), as it came.
    Unrecognized(String),
}

/// A room message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WireMessage")]
pub struct ChatMessage {
    /// The server's id (an instance's own: it starts again when the instance restarts).
    pub id: u64,
    /// The room.
    pub room: String,
    /// The sender.
    pub from: String,
    /// The sender's display name, if any: for showing, never for trusting.
    #[serde(default)]
    pub name: Option<String>,
    /// The text.
    pub text: String,
    /// Server time in ms since the Unix epoch.
    pub ts: u64,
    /// Its place in the room's history; `None` when the history was out of reach.
    pub position: Option<Position>,
}

/// A room message as written: its position in two fields.
#[derive(Deserialize)]
struct WireMessage {
    id: u64,
    room: String,
    from: String,
    #[serde(default)]
    name: Option<String>,
    text: String,
    ts: u64,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default)]
    offset: Option<u64>,
}

impl From<WireMessage> for ChatMessage {
    fn from(m: WireMessage) -> ChatMessage {
        ChatMessage {
            position: position_of(m.epoch.as_deref(), m.offset),
            id: m.id,
            room: m.room,
            from: m.from,
            name: m.name,
            text: m.text,
            ts: m.ts,
        }
    }
}

/// A direct message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DirectMessage {
    /// The server's id.
    pub id: u64,
    /// The sender.
    pub from: String,
    /// The sender's display name, if any.
    #[serde(default)]
    pub name: Option<String>,
    /// The recipient.
    pub to: String,
    /// The text.
    pub text: String,
    /// Server time in ms since the Unix epoch.
    pub ts: u64,
}

/// A position from an `epoch` and an `offset`, when both are there and valid.
pub(crate) fn position_of(epoch: Option<&str>, offset: Option<u64>) -> Option<Position> {
    Some(Position {
        epoch: Epoch::parse(epoch?)?,
        offset: offset?,
    })
}

/// What the server sends, as the client reads it: unknown fields are ignored, so a later
/// version's additions do not break it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Incoming {
    Welcome {
        user: String,
        guest: bool,
        #[serde(default)]
        name: Option<String>,
    },
    Message(ChatMessage),
    Joined {
        room: String,
        #[serde(default)]
        epoch: Option<String>,
        #[serde(default)]
        offset: Option<u64>,
        #[serde(default)]
        recovered: Option<bool>,
        missed: usize,
        #[serde(default)]
        read: Option<u64>,
    },
    Read {
        room: String,
        user: String,
        offset: u64,
    },
    Direct(DirectMessage),
    Ack {
        #[serde(default)]
        id: Option<String>,
        msg_id: u64,
        ts: u64,
    },
    Presence {
        room: String,
        user: String,
        #[serde(default)]
        name: Option<String>,
        event: String,
    },
    Typing {
        room: String,
        user: String,
        #[serde(default)]
        name: Option<String>,
    },
    History {
        room: String,
        messages: Vec<ChatMessage>,
    },
    Members {
        room: String,
        users: Vec<String>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default)]
        id: Option<String>,
    },
}

impl Incoming {
    /// The server's text as a message the client knows, if it is one.
    pub(crate) fn parse(text: &str) -> Option<Incoming> {
        serde_json::from_str(text).ok()
    }
}
