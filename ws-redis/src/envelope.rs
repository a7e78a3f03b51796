//! A room message as it crosses Redis: one line of header, then the message's bytes as they
//! are, so a message is copied, never re-encoded, on its way.
//!
//! ```text
//! ws1 <instance: 16 hex digits> <t|b> <offset>\n<payload>
//! ```
//!
//! `ws1` is the format's version; the instance is the publisher's (an instance skips its own
//! messages when Redis sends them back, having delivered them locally already); `t` or `b` is
//! text or binary; the offset is the room's counter after this message, given by the publish
//! script, which builds the envelope from the header's first part ([`header_prefix`]).

use bytes::Bytes;
use std::fmt;
use ws_proto::{Message, MessageKind};

/// The format's version, first in every header.
const VERSION: &str = "ws1";
/// The longest header: version, instance, kind, a 20-digit offset, spaces and the newline.
const MAX_HEADER: usize = 3 + 1 + 16 + 1 + 1 + 1 + 20 + 1;

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
    /// The room's offset after it.
    pub offset: u64,
    /// The message.
    pub message: Message,
}

/// Why bytes from Redis are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// No newline ends a header of at most its longest length.
    NoHeader,
    /// The header is not `ws1 INSTANCE KIND OFFSET`.
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
            EnvelopeError::BadHeader => "the header is not `ws1 INSTANCE KIND OFFSET`",
            EnvelopeError::NotUtf8 => "a text message that is not UTF-8",
            EnvelopeError::TooLarge => "larger than the largest message accepted",
        })
    }
}

impl std::error::Error for EnvelopeError {}

/// The header up to the offset, which the publish script appends with the newline and the
/// payload.
///
/// ```
/// use ws_redis::envelope::{header_prefix, Envelope, InstanceId};
/// use ws_proto::{Message, MessageKind};
/// let mut bytes = header_prefix(InstanceId(0xab), MessageKind::Text);
/// assert_eq!(bytes, b"ws1 00000000000000ab t ");
/// bytes.extend_from_slice(b"7\nhello");
/// let envelope = Envelope::decode(&bytes, 1024).unwrap();
/// assert_eq!((envelope.offset, envelope.message), (7, Message::Text("hello".into())));
/// ```
pub fn header_prefix(instance: InstanceId, kind: MessageKind) -> Vec<u8> {
    let kind = match kind {
        MessageKind::Text => 't',
        MessageKind::Binary => 'b',
    };
    format!("{VERSION} {instance} {kind} ").into_bytes()
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
        let (Some(VERSION), Some(instance), Some(kind), Some(offset), None) = (
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
        if payload.len() > max_payload {
            return Err(EnvelopeError::TooLarge);
        }
        let payload = Bytes::copy_from_slice(payload);
        let message = match kind {
            "t" => Message::Text(payload.try_into().map_err(|_| EnvelopeError::NotUtf8)?),
            "b" => Message::Binary(payload),
            _ => return Err(EnvelopeError::BadHeader),
        };
        Ok(Envelope {
            instance: InstanceId(instance),
            offset,
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
        bytes.extend_from_slice(format!("{offset}\n").as_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn what_the_script_builds_decodes_to_the_message() {
        let id = InstanceId(u64::MAX);
        let text = envelope(id, MessageKind::Text, u64::MAX, "hé\n".as_bytes());
        let decoded = Envelope::decode(&text, 16).unwrap();
        assert_eq!(decoded.instance, id);
        assert_eq!(decoded.offset, u64::MAX);
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
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let id = InstanceId(7);
        let cases: [(&[u8], EnvelopeError); 11] = [
            (b"ws1 000000000000000A t 1\nx", EnvelopeError::BadHeader),
            (b"ws1 0000000000000007 t 01\nx", EnvelopeError::BadHeader),
            (b"", EnvelopeError::NoHeader),
            (b"ws1 0000000000000007 t 1", EnvelopeError::NoHeader),
            (b"ws2 0000000000000007 t 1\nx", EnvelopeError::BadHeader),
            (b"ws1 7 t 1\nx", EnvelopeError::BadHeader),
            (b"ws1 0000000000000007 x 1\nx", EnvelopeError::BadHeader),
            (b"ws1 0000000000000007 t +1\nx", EnvelopeError::BadHeader),
            (b"ws1 0000000000000007 t 1 2\nx", EnvelopeError::BadHeader),
            (b"ws1 0000000000000007 t 1\n\xff", EnvelopeError::NotUtf8),
            (b"ws1 0000000000000007 b 1\nxyz", EnvelopeError::TooLarge),
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
        let long_header = [&b"ws1 0000000000000007 t "[..], &[b'1'; 40], b"\nx"].concat();
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
                let again = envelope(e.instance, e.message.kind(), e.offset, e.message.as_bytes());
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
