//! The chat's JSON messages (text frames), and the subprotocol that names their version. The
//! README documents each with an example.

use serde::{Deserialize, Serialize};

/// The chat protocol's version, as a WebSocket subprotocol (RFC 6455 section 1.9): a client
/// that offers it is answered with it, and so knows the server speaks this version.
pub const SUBPROTOCOL: &str = "chat.v1";

/// The subprotocol to answer a client that `offered` these (in its order), `bearer` being the
/// offer its token came after, if it came that way: [`SUBPROTOCOL`] when offered (spelled
/// exactly so: subprotocol names are compared as they are written); otherwise the `bearer`
/// offer, as spelled, since a browser fails a connection whose answer names none of the
/// subprotocols it offered; otherwise none.
///
/// A client that offers only subprotocols the chat does not know, or none, is still served
/// this version, as clients were before the protocol had one: RFC 6455 lets the server answer
/// no subprotocol and leaves it to the client to go on or close, and refusing them would cut
/// off every client written before the version was named. `bearer` is never preferred to the
/// version: it carries a token, not a protocol.
///
/// ```
/// use ws_chat::protocol::subprotocol;
/// let offers = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// assert_eq!(subprotocol(&offers(&["chat.v1", "bearer", "t"]), Some("bearer")), Some("chat.v1"));
/// assert_eq!(subprotocol(&offers(&["Bearer", "t"]), Some("Bearer")), Some("Bearer"));
/// assert_eq!(subprotocol(&offers(&["chat.v2"]), None), None);
/// ```
pub fn subprotocol<'a>(offered: &'a [String], bearer: Option<&'a str>) -> Option<&'a str> {
    match offered.iter().find(|p| *p == SUBPROTOCOL) {
        Some(version) => Some(version),
        None => bearer,
    }
}

/// What a client sends (written by [`crate::client`], read by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a room; coming back, with the position of the last message of it seen, to be
    /// sent what was missed.
    Join {
        /// The room.
        room: String,
        /// The epoch of the last message seen (with `offset`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// The offset of the last message seen (with `epoch`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: String,
    },
    /// Say something in a room this connection joined.
    Send {
        /// The room.
        room: String,
        /// The text.
        text: String,
        /// The client's id for the message, echoed in the ack.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Say something to one user.
    Direct {
        /// The user.
        to: String,
        /// The text.
        text: String,
        /// The client's id, echoed in the ack.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Tell a room this user is typing.
    Typing {
        /// The room.
        room: String,
    },
    /// Ask for a room's recent messages.
    History {
        /// The room.
        room: String,
        /// At most this many (default and maximum: the room's history size).
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Ask who is in a room.
    Who {
        /// The room.
        room: String,
    },
    /// This user has read a room up to an offset: kept (for its connections that join later,
    /// on any instance) and shown to the room's members.
    Read {
        /// The room.
        room: String,
        /// The offset of the last message read.
        offset: u64,
    },
    /// A new token for this connection, before its current one expires: checked as at the
    /// handshake, and for the same `sub`.
    Refresh {
        /// The token.
        token: String,
    },
}

/// A message as published to a room, before its position is known; delivered (and kept in
/// history) with `"offset"` and `"epoch"` added ([`with_position`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMessage {
    /// The server's id for it.
    pub id: u64,
    /// The room.
    pub room: String,
    /// The sender: the identity.
    pub from: String,
    /// The sender's display name, if its token had one: for showing, never for trusting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The text.
    pub text: String,
    /// Server time, milliseconds since the Unix epoch.
    pub ts: u64,
}

/// The stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, an unknown type, a missing field, a binary frame.
    InvalidMessage,
    /// No such user or room.
    NotFound,
    /// Not allowed: sending to a room not joined, for example.
    Forbidden,
    /// Too many messages too fast.
    RateLimited,
    /// A message over the size limit.
    TooLarge,
    /// A refreshed token that is invalid or expired.
    Unauthorized,
}

/// What the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// Who the connection is.
    Welcome {
        /// The user name.
        user: &'a str,
        /// Whether the user is an unauthenticated guest.
        guest: bool,
        /// The display name, if the token had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
    /// A room message (as published; see [`with_position`]).
    Message(&'a RoomMessage),
    /// A room was joined: where its history stands, and whether what was missed follows.
    Joined {
        /// The room.
        room: &'a str,
        /// The room's epoch, when it has a history now.
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
        /// The offset of its last message (0: none yet), when it has a history now.
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        /// For a join with a position: whether every message missed follows (true), or the
        /// history no longer reaches back, or could not be read (false).
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        /// How many missed messages follow.
        missed: usize,
        /// The offset up to which this user has read the room, if it marked any.
        #[serde(skip_serializing_if = "Option::is_none")]
        read: Option<u64>,
    },
    /// A member has read a room up to an offset (at most one a second per connection and
    /// room; the latest is what a later one carries).
    Read {
        /// The room.
        room: &'a str,
        /// The user.
        user: &'a str,
        /// The offset of the last message it read.
        offset: u64,
    },
    /// A direct message.
    Direct {
        /// The server's id.
        id: u64,
        /// The sender.
        from: &'a str,
        /// The sender's display name, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        /// The recipient.
        to: &'a str,
        /// The text.
        text: &'a str,
        /// Server time in ms.
        ts: u64,
    },
    /// A sent message was accepted.
    Ack {
        /// The client's id, when the message had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        /// The server's id for it.
        msg_id: u64,
        /// Server time in ms.
        ts: u64,
    },
    /// Someone entered or left a room.
    Presence {
        /// The room.
        room: &'a str,
        /// The user.
        user: &'a str,
        /// The user's display name, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        /// `joined` or `left`.
        event: &'a str,
    },
    /// Someone is typing.
    Typing {
        /// The room.
        room: &'a str,
        /// The user.
        user: &'a str,
        /// The user's display name, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
    /// A room's recent messages, oldest first, each as it was delivered.
    History {
        /// The room.
        room: &'a str,
        /// The messages.
        messages: Vec<&'a serde_json::value::RawValue>,
    },
    /// Who is in a room.
    Members {
        /// The room.
        room: &'a str,
        /// The users, sorted.
        users: Vec<&'a str>,
    },
    /// A refreshed token was accepted: the connection lasts until its `exp` (plus the leeway).
    Refreshed {
        /// The token's `exp`, seconds since the Unix epoch.
        exp: u64,
    },
    /// A request failed.
    Error {
        /// The stable code.
        code: ErrorCode,
        /// For people.
        message: &'a str,
        /// The client's id of the message that failed, if it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
}

impl ServerMessage<'_> {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A room message's JSON object (`{...}`, as [`ServerMessage::Message`] writes it) with its
/// position in the room's history added as its last fields, `"offset"` and `"epoch"`: one copy,
/// no parsing, since the object is the chat's own and an epoch is letters and digits. Without
/// a position (the history out of reach) it stays as it is.
///
/// ```
/// use ws_chat::protocol::with_position;
/// use ws_mio_server::history::{Epoch, Position};
/// let at = Position { epoch: Epoch::parse("e1").unwrap(), offset: 7 };
/// assert_eq!(with_position(r#"{"type":"message"}"#, Some(&at)),
///            r#"{"type":"message","offset":7,"epoch":"e1"}"#);
/// ```
pub fn with_position(object: &str, position: Option<&ws_mio_server::history::Position>) -> String {
    let (Some(position), Some(body)) = (position, object.strip_suffix('}')) else {
        return object.to_string();
    };
    let mut out = String::with_capacity(object.len() + 48);
    out.push_str(body);
    if body.len() > 1 {
        out.push(',');
    }
    out.push_str("\"offset\":");
    out.push_str(&position.offset.to_string());
    out.push_str(",\"epoch\":\"");
    out.push_str(position.epoch.as_str());
    out.push_str("\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_unknown_ones_fail() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"send","room":"lobby","text":"hi","id":"c1"}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::Send {
                room: "lobby".into(),
                text: "hi".into(),
                id: Some("c1".into())
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"join"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"join","room":"a","extra":1}"#)
                .is_err()
        );
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"join","room":"a","epoch":"e","offset":3}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Join {
                room: "a".into(),
                epoch: Some("e".into()),
                offset: Some(3)
            }
        );
        let m: ClientMessage = serde_json::from_str(r#"{"type":"refresh","token":"t"}"#).unwrap();
        assert_eq!(m, ClientMessage::Refresh { token: "t".into() });
    }

    #[test]
    fn server_messages_serialize_with_their_type() {
        let m = RoomMessage {
            id: 1,
            room: "r".into(),
            from: "a".into(),
            name: None,
            text: "t".into(),
            ts: 5,
        };
        assert_eq!(
            ServerMessage::Message(&m).to_json(),
            r#"{"type":"message","id":1,"room":"r","from":"a","text":"t","ts":5}"#
        );
        let named = RoomMessage {
            name: Some("Ann".into()),
            ..m
        };
        assert_eq!(
            ServerMessage::Message(&named).to_json(),
            r#"{"type":"message","id":1,"room":"r","from":"a","name":"Ann","text":"t","ts":5}"#
        );
        let e = ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down",
            id: None,
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#
        );
    }
}
