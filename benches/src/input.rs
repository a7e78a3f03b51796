//! The byte streams the codec benchmarks feed to every implementation: what a server reads from
//! its clients (masked frames, as RFC 6455 section 5.3 requires of clients).

use ws_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use ws_proto::mask::apply_mask;

/// Text or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text (validated by the receiver).
    Text,
    /// Bytes.
    Binary,
}

impl Kind {
    /// "text" or "binary".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Binary => "binary",
        }
    }
}

/// A payload of exactly `size` bytes. Text is mostly ASCII with some two-byte characters, as
/// chat text is, so validators leave their all-ASCII fast path now and then.
pub fn payload(kind: Kind, size: usize) -> Vec<u8> {
    match kind {
        Kind::Binary => (0..size).map(|i| (i * 31 + 7) as u8).collect(),
        Kind::Text => repeated_text(
            "The quick brown fox jumps over the lazy dog; Grüße, café, naïve. ",
            size,
        ),
    }
}

/// Exactly `size` bytes of UTF-8: `pattern` repeated, cut where a character starts and padded
/// with ASCII 'x'.
pub fn repeated_text(pattern: &str, size: usize) -> Vec<u8> {
    let mut text = pattern.repeat(size / pattern.len().max(1) + 1);
    let mut cut = size.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.extend(std::iter::repeat_n('x', size - cut));
    text.into_bytes()
}

/// A different masking key for each frame, as a client's random keys would be.
fn key(n: u64) -> [u8; 4] {
    let x = n
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29);
    (x as u32).to_ne_bytes()
}

/// Appends one masked frame.
fn push_frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: Some(mask),
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    out.extend_from_slice(&head[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
}

/// `count` masked client messages of `size` bytes, each split into `fragments` frames of
/// (nearly) equal length (1: unfragmented).
pub fn client_messages(kind: Kind, size: usize, count: usize, fragments: usize) -> Vec<u8> {
    let body = payload(kind, size);
    let fragments = fragments.clamp(1, size.max(1));
    let per_frame = size.div_ceil(fragments).max(1);
    let mut out = Vec::with_capacity(count * (size + fragments * MAX_HEADER_LEN));
    let first = match kind {
        Kind::Text => OpCode::Text,
        Kind::Binary => OpCode::Binary,
    };
    let mut n = 0u64;
    for _ in 0..count {
        let pieces: Vec<&[u8]> = if size == 0 {
            vec![&body[..]]
        } else {
            body.chunks(per_frame).collect()
        };
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            let opcode = if i == 0 { first } else { OpCode::Continuation };
            push_frame(&mut out, i == last, opcode, piece, key(n));
            n += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ws_proto::{Config, Connection, Event, Message};

    #[test]
    fn payloads_have_the_exact_size_and_text_is_utf8() {
        for size in [0, 1, 16, 125, 1024, 65536] {
            assert_eq!(payload(Kind::Binary, size).len(), size);
            let text = payload(Kind::Text, size);
            assert_eq!(text.len(), size);
            assert!(std::str::from_utf8(&text).is_ok());
        }
        // Cut inside two-byte characters at every other length, then padded.
        for size in 0..200 {
            let text = repeated_text("Съешь же ещё", size);
            assert_eq!(text.len(), size);
            let text = std::str::from_utf8(&text).unwrap();
            assert!(text.trim_end_matches('x').len() + 1 >= size, "{text:?}");
        }
    }

    #[test]
    fn the_engine_reads_back_what_was_built() {
        for (kind, fragments) in [(Kind::Text, 1), (Kind::Text, 7), (Kind::Binary, 3)] {
            let wire = client_messages(kind, 1000, 5, fragments);
            let mut server = Connection::server(Config::default());
            server.receive(&wire).unwrap();
            let mut n = 0;
            while let Some(event) = server.poll_event() {
                let Event::Message(m) = event else { panic!() };
                assert_eq!(m.as_bytes(), &payload(kind, 1000)[..]);
                assert_eq!(matches!(m, Message::Text(_)), kind == Kind::Text);
                n += 1;
            }
            assert_eq!(n, 5);
        }
    }
}
