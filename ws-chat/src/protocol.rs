//! The chat's JSON messages (text frames). The README documents each with an example.

use serde::{Deserialize, Serialize};

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a room.
    Join {
        /// The room.
        room: String,
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
        id: Option<String>,
    },
    /// Say something to one user.
    Direct {
        /// The user.
        to: String,
        /// The text.
        text: String,
        /// The client's id, echoed in the ack.
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
        limit: Option<usize>,
    },
    /// Ask who is in a room.
    Who {
        /// The room.
        room: String,
    },
    /// A new token for this connection, before its current one expires: checked as at the
    /// handshake, and for the same `sub`.
    Refresh {
        /// The token.
        token: String,
    },
}

/// A message as stored in history and delivered to a room.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// A room message.
    Message(&'a RoomMessage),
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
    /// A room's recent messages, oldest first.
    History {
        /// The room.
        room: &'a str,
        /// The messages.
        messages: Vec<&'a RoomMessage>,
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
