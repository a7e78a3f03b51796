//! A room message as it crosses Redis: one line of header, then the message's bytes as they
//! are, so a message is copied, never re-encoded, on its way.
//!
//! ```text
//! ws2 <instance: 16 hex digits> <t|b> <epoch> <offset>\n<payload>
//! ```
//!
//! `ws2` is the format's version; the instance is the publisher's; `t` or `b` is text or
//! binary. A recorded message ([`ws_mio_server::Context::publish_recorded`]) has its position
//! in the room's history: the epoch and offset the publish script gave it, building the
//! envelope from the header's first part ([`header_prefix`]); every instance delivers it when
//! Redis sends it, its publisher's too, so each delivers a room's messages in the order of their
//! offsets. Any other room message has `-` and `0` there: its publisher delivered it to its own
//! members at once, and skips it when Redis sends it back. A presence change (`p`, with `-`
//! and `0`) has `+USER` or `-USER` for payload: the user's first connection in the room on the
//! publishing instance joined, or its last left ([`crate::presence`]). An order to close a
//! room's members (`k`, with `-` and `0`: a user's room, a disconnect of the user) has
//! `CODE REASON` for payload; a read mark (`m`) has `OFFSET USER`.

use bytes::Bytes;
use std::fmt;
use ws_mio_server::history::{Epoch, Position, MAX_EPOCH_LEN};
use ws_proto::{Message, MessageKind};

/// The format's version, first in every header.
const VERSION: &str = "ws2";
/// The longest header: version, instance, kind, an epoch, a 20-digit offset, spaces and the
/// newline.
const MAX_HEADER: usize = 3 + 1 + 16 + 1 + 1 + 1 + MAX_EPOCH_LEN + 1 + 20 + 1;

/// An instance of the server, as envelopes name their publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub u64);

impl InstanceId {
    /// A new random id: 64 bits from the standard library's per-process random hash keys
    /// (there is no need for more: two instances of one cluster clash once in 2^64 starts).
    pub fn random() -> InstanceId {
        use std::hash::BuildHasher;
        let keys = std::collections::hash_map::RandomState::new();
        InstanceId(keys.hash_one((std::process::id(), std::time::SystemTime::now())))
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A message taken out of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The instance that published it.
    pub instance: InstanceId,
    /// Its position in the room's history, when it was recorded.
    pub position: Option<Position>,
    /// What it carries.
    pub kind: Kind,
    /// The message.
    pub message: Message,
}

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A room message.
    Message,
    /// A presence change: `+USER` or `-USER` in the message.
    Presence,
    /// An order to close the room's members: `CODE REASON` in the message.
    Close,
    /// A user's read mark: `OFFSET USER` in the message.
    Mark,
}

/// Why bytes from Redis are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// No newline ends a header of at most its longest length.
    NoHeader,
    /// The header is not `ws2 INSTANCE KIND EPOCH OFFSET`.
    BadHeader,
    /// A text message that is not UTF-8.
    NotUtf8,
    /// The payload is longer than this instance accepts.
    TooLarge,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnvelopeError::NoHeader => "no header line",
            EnvelopeError::BadHeader => "the header is not `ws2 INSTANCE KIND EPOCH OFFSET`",
            EnvelopeError::NotUtf8 => "a text message that is not UTF-8",
            EnvelopeError::TooLarge => "larger than the largest message accepted",
        })
    }
}

impl std::error::Error for EnvelopeError {}

/// The header up to the epoch, which the publish script appends with the offset, the newline
/// and the payload.
///
/// ```
/// use ws_redis::envelope::{header_prefix, Envelope, InstanceId};
/// use ws_proto::{Message, MessageKind};
/// let mut bytes = header_prefix(InstanceId(0xab), MessageKind::Text);
/// assert_eq!(bytes, b"ws2 00000000000000ab t ");
/// bytes.extend_from_slice(b"e1 7\nhello");
/// let envelope = Envelope::decode(&bytes, 1024).unwrap();
/// assert_eq!(envelope.position.unwrap().offset, 7);
/// assert_eq!(envelope.message, Message::Text("hello".into()));
/// ```
pub fn header_prefix(instance: InstanceId, kind: MessageKind) -> Vec<u8> {
    let kind = match kind {
        MessageKind::Text => 't',
        MessageKind::Binary => 'b',
    };
    format!("{VERSION} {instance} {kind} ").into_bytes()
}

/// A whole envelope for a presence change of `user` in a room on `instance`.
pub fn presence(instance: InstanceId, user: &str, present: bool) -> Vec<u8> {
    let sign = if present { '+' } else { '-' };
    format!("{VERSION} {instance} p - 0\n{sign}{user}").into_bytes()
}

/// A whole envelope for an order to close a room's members: `order` is `CODE REASON`.
pub fn close(instance: InstanceId, order: &str) -> Vec<u8> {
    format!("{VERSION} {instance} k - 0\n{order}").into_bytes()
}

/// A whole envelope for `user`'s read mark at `offset`.
pub fn mark(instance: InstanceId, user: &str, offset: u64) -> Vec<u8> {
    format!("{VERSION} {instance} m - 0\n{offset} {user}").into_bytes()
}

/// A whole envelope for a message that is not recorded.
pub fn unrecorded(instance: InstanceId, message: &Message) -> Vec<u8> {
    let mut bytes = header_prefix(instance, message.kind());
    bytes.extend_from_slice(b"- 0\n");
    bytes.extend_from_slice(message.as_bytes());
    bytes
}

impl Envelope {
    /// Takes a message out of `bytes`, refusing a payload longer than `max_payload`.
    pub fn decode(bytes: &[u8], max_payload: usize) -> Result<Envelope, EnvelopeError> {
        let end = bytes
            .iter()
            .take(MAX_HEADER)
            .position(|&b| b == b'\n')
            .ok_or(EnvelopeError::NoHeader)?;
        let header = std::str::from_utf8(&bytes[..end]).map_err(|_| EnvelopeError::BadHeader)?;
        let payload = &bytes[end + 1..];
        let mut fields = header.split(' ');
        let (Some(VERSION), Some(instance), Some(kind), Some(epoch), Some(offset), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(EnvelopeError::BadHeader);
        };
        // One spelling for each value: lowercase hex, decimal without leading zeros.
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let instance = (instance.len() == 16 && instance.bytes().all(lower_hex))
            .then(|| u64::from_str_radix(instance, 16).ok())
            .flatten()
            .ok_or(EnvelopeError::BadHeader)?;
        let canonical = offset.bytes().all(|b| b.is_ascii_digit())
            && (offset == "0" || !offset.starts_with('0'));
        let offset = canonical
            .then(|| offset.parse::<u64>().ok())
            .flatten()
            .ok_or(EnvelopeError::BadHeader)?;
        let position = match epoch {
            "-" if offset == 0 => None,
            _ => Some(Position {
                epoch: Epoch::parse(epoch).ok_or(EnvelopeError::BadHeader)?,
                offset,
            }),
        };
        if payload.len() > max_payload {
            return Err(EnvelopeError::TooLarge);
        }
        let payload = Bytes::copy_from_slice(payload);
        let text = |p: Bytes| {
            p.try_into()
                .map(Message::Text)
                .map_err(|_| EnvelopeError::NotUtf8)
        };
        let (message, kind) = match kind {
            "t" => (text(payload)?, Kind::Message),
            "b" => (Message::Binary(payload), Kind::Message),
            "p" if position.is_none() => (text(payload)?, Kind::Presence),
            "k" if position.is_none() => (text(payload)?, Kind::Close),
            "m" if position.is_none() => (text(payload)?, Kind::Mark),
            _ => return Err(EnvelopeError::BadHeader),
        };
        Ok(Envelope {
            instance: InstanceId(instance),
            position,
            kind,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(instance: InstanceId, kind: MessageKind, offset: u64, payload: &[u8]) -> Vec<u8> {
        let mut bytes = header_prefix(instance, kind);
        bytes.extend_from_slice(format!("e1 {offset}\n").as_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn encode(e: &Envelope) -> Vec<u8> {
        let control = match e.kind {
            Kind::Message => None,
            Kind::Presence => Some('p'),
            Kind::Close => Some('k'),
            Kind::Mark => Some('m'),
        };
        if let Some(kind) = control {
            let mut bytes = format!("{VERSION} {} {kind} - 0\n", e.instance).into_bytes();
            bytes.extend_from_slice(e.message.as_bytes());
            return bytes;
        }
        let mut bytes = header_prefix(e.instance, e.message.kind());
        match &e.position {
            Some(p) => bytes.extend_from_slice(format!("{} {}\n", p.epoch, p.offset).as_bytes()),
            None => bytes.extend_from_slice(b"- 0\n"),
        }
        bytes.extend_from_slice(e.message.as_bytes());
        bytes
    }

    #[test]
    fn what_the_script_builds_decodes_to_the_message() {
        let id = InstanceId(u64::MAX);
        let text = envelope(id, MessageKind::Text, u64::MAX, "hé\n".as_bytes());
        let decoded = Envelope::decode(&text, 16).unwrap();
        assert_eq!(decoded.instance, id);
        assert_eq!(decoded.position.unwrap().offset, u64::MAX);
        assert_eq!(decoded.message, Message::Text("hé\n".into()));
        let binary = envelope(InstanceId(1), MessageKind::Binary, 1, &[0xff, b'\n', 0]);
        let decoded = Envelope::decode(&binary, 3).unwrap();
        assert_eq!(
            decoded.message,
            Message::Binary(Bytes::from_static(&[0xff, b'\n', 0]))
        );
        let empty = envelope(InstanceId(1), MessageKind::Text, 2, b"");
        assert_eq!(
            Envelope::decode(&empty, 0).unwrap().message,
            Message::Text("".into())
        );
        let change = Envelope::decode(&presence(id, "ann", false), 8).unwrap();
        assert!(change.kind == Kind::Presence && change.position.is_none());
        assert_eq!(change.message, Message::Text("-ann".into()));
        let kick = Envelope::decode(&close(id, "4000 kicked"), 16).unwrap();
        assert_eq!(kick.kind, Kind::Close);
        let read = Envelope::decode(&mark(id, "ann", 7), 16).unwrap();
        assert_eq!(
            (read.kind, read.message),
            (Kind::Mark, Message::Text("7 ann".into()))
        );
        assert_eq!(kick.message, Message::Text("4000 kicked".into()));
        let plain = unrecorded(id, &Message::Text("hi".into()));
        let decoded = Envelope::decode(&plain, 2).unwrap();
        assert_eq!(
            (decoded.position, decoded.message),
            (None, Message::Text("hi".into()))
        );
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let id = InstanceId(7);
        let cases: [(&[u8], EnvelopeError); 14] = [
            (b"ws2 000000000000000A t e 1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t e 01\nx", EnvelopeError::BadHeader),
            (b"", EnvelopeError::NoHeader),
            (b"ws2 0000000000000007 t e 1", EnvelopeError::NoHeader),
            (b"ws1 0000000000000007 t e 1\nx", EnvelopeError::BadHeader),
            (b"ws2 7 t e 1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 x e 1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t e +1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t e 1 2\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t e-1 1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t - 1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t 1\nx", EnvelopeError::BadHeader),
            (b"ws2 0000000000000007 t e 1\n\xff", EnvelopeError::NotUtf8),
            (b"ws2 0000000000000007 b e 1\nxyz", EnvelopeError::TooLarge),
        ];
        for (bytes, error) in cases {
            let max = 2;
            assert_eq!(
                Envelope::decode(bytes, max),
                Err(error),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long_header = [&b"ws2 0000000000000007 t e "[..], &[b'1'; 80], b"\nx"].concat();
        assert_eq!(
            Envelope::decode(&long_header, 9),
            Err(EnvelopeError::NoHeader)
        );
        assert!(Envelope::decode(&envelope(id, MessageKind::Text, 0, b"ok"), 2).is_ok());
    }

    proptest! {
        /// Whatever Redis hands over, decoding answers without panicking, and what it accepts
        /// encodes back to the same bytes.
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(e) = Envelope::decode(&bytes, 64) {
                prop_assert_eq!(encode(&e), bytes);
            }
        }
    }
}
