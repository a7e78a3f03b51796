//! A reference receiver: what RFC 6455 says a connection without extensions makes of a byte
//! stream, written independently of `ws_proto::Connection` (which it checks).
//!
//! It reads the whole stream at once and reports each event with the offset of the byte that
//! completed it, and the first violation with the offset of the byte that reveals it, so a
//! caller that fed the stream in pieces knows which `receive` call had to report what.

use crate::utf8::{first_invalid_byte, pending_len};
use bytes::Bytes;
use ws_proto::close::CloseFrame;
use ws_proto::{
    CloseCode, Config, Event, Message, MessageKind, ProtocolViolation, Role, Utf8Bytes,
};

/// What the reference receiver made of a stream.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Events, each with the offset of the last byte of the frame that produced it.
    pub events: Vec<(Event, usize)>,
    /// The first violation and the offset of the byte that reveals it.
    pub violation: Option<(ProtocolViolation, usize)>,
    /// The peer's close frame arrived (reading stopped after it).
    pub close_received: bool,
    /// The message still being received when the stream ended or reading stopped: its kind and
    /// the payload bytes that passed validation (with a violation, only whole code points).
    pub partial: Option<(MessageKind, Vec<u8>)>,
}

/// Codes a close frame may carry (RFC 6455 section 7.4 and the IANA registry).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Runs the reference receiver for `role` over `input`.
pub fn receive(role: Role, config: &Config, input: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let mut message: Option<(MessageKind, Vec<u8>)> = None;
    let mut pos = 0;
    let fail = |out: &mut Outcome, v, at| out.violation = Some((v, at));
    loop {
        let rest = &input[pos..];
        if rest.len() < 2 {
            break;
        }
        let (b0, b1) = (rest[0], rest[1]);
        let fin = b0 & 0x80 != 0;
        let kind = b0 & 0x0f;
        if !matches!(kind, 0x0..=0x2 | 0x8..=0xa) {
            fail(&mut out, ProtocolViolation::ReservedOpcode(kind), pos + 1);
            break;
        }
        let control = kind >= 0x8;
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if rest.len() < 2 + ext {
            break;
        }
        let len = match ext {
            0 => (b1 & 0x7f) as u64,
            _ => rest[2..2 + ext]
                .iter()
                .fold(0u64, |a, &b| a << 8 | b as u64),
        };
        if ext == 8 && len >> 63 == 1 {
            fail(&mut out, ProtocolViolation::LengthHighBitSet, pos + 9);
            break;
        }
        let masked = b1 & 0x80 != 0;
        let head = 2 + ext + if masked { 4 } else { 0 };
        if rest.len() < head {
            break;
        }
        let head_end = pos + head - 1;
        let key = masked.then(|| {
            [
                rest[head - 4],
                rest[head - 3],
                rest[head - 2],
                rest[head - 1],
            ]
        });
        let violation = if role == Role::Server && !masked {
            Some(ProtocolViolation::UnmaskedClientFrame)
        } else if role == Role::Client && masked {
            Some(ProtocolViolation::MaskedServerFrame)
        } else if b0 & 0x70 != 0 {
            Some(ProtocolViolation::ReservedBitsSet(b0 & 0x70))
        } else if control && len > 125 {
            Some(ProtocolViolation::ControlFrameTooLong)
        } else if control && !fin {
            Some(ProtocolViolation::FragmentedControlFrame)
        } else if len > config.max_frame_size {
            Some(ProtocolViolation::FrameTooLarge(len))
        } else if kind == 0 && message.is_none() {
            Some(ProtocolViolation::UnexpectedContinuation)
        } else if (kind == 1 || kind == 2) && message.is_some() {
            Some(ProtocolViolation::ExpectedContinuation)
        } else {
            None
        };
        if let Some(v) = violation {
            fail(&mut out, v, head_end);
            break;
        }
        if kind == 1 || kind == 2 {
            let k = if kind == 1 {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            message = Some((k, Vec::new()));
        }
        if let (false, Some((_, data))) = (control, &message) {
            if data.len() as u64 + len > config.max_message_size {
                fail(&mut out, ProtocolViolation::MessageTooLarge, head_end);
                break;
            }
        }
        let start = pos + head;
        let available = (input.len() - start).min(len as usize);
        let mut payload = input[start..start + available].to_vec();
        if let Some(key) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        if !control {
            let (k, data) = message.as_mut().expect("checked above");
            let before = data.len();
            // Only an unfinished code point at the end of the valid part matters for the rest.
            let from = before - pending_len(data);
            data.extend_from_slice(&payload);
            if *k == MessageKind::Text {
                if let Some(bad) = first_invalid_byte(&data[from..]) {
                    fail(
                        &mut out,
                        ProtocolViolation::InvalidUtf8,
                        start + from + bad - before,
                    );
                    data.truncate(from + bad);
                    break;
                }
            }
        }
        if (available as u64) < len {
            break;
        }
        let frame_end = if len == 0 {
            head_end
        } else {
            start + len as usize - 1
        };
        pos = start + len as usize;
        let event = match kind {
            0x9 => Event::Ping(Bytes::from(payload)),
            0xa => Event::Pong(Bytes::from(payload)),
            0x8 => {
                let frame = match payload.len() {
                    0 => None,
                    1 => {
                        fail(&mut out, ProtocolViolation::CloseFrameTooShort, frame_end);
                        break;
                    }
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        if !valid_close_code(code) {
                            fail(
                                &mut out,
                                ProtocolViolation::InvalidCloseCode(code),
                                frame_end,
                            );
                            break;
                        }
                        let Ok(reason) = String::from_utf8(payload[2..].to_vec()) else {
                            fail(&mut out, ProtocolViolation::InvalidCloseReason, frame_end);
                            break;
                        };
                        Some(CloseFrame {
                            code: CloseCode(code),
                            reason: Utf8Bytes::from(reason),
                        })
                    }
                };
                out.events.push((Event::Close(frame), frame_end));
                out.close_received = true;
                // A message cut off by the close frame is dropped; streamed chunks of it are
                // checked against what had arrived.
                out.partial = message.take();
                return out;
            }
            _ if !fin => continue,
            _ => {
                let (k, data) = message.as_ref().expect("a data frame belongs to a message");
                if *k == MessageKind::Text && pending_len(data) > 0 {
                    fail(&mut out, ProtocolViolation::InvalidUtf8, frame_end);
                    break;
                }
                let (k, data) = message.take().unwrap();
                Event::Message(message_of(k, data))
            }
        };
        out.events.push((event, frame_end));
    }
    if out.violation.is_none() {
        out.partial = message;
    } else if let Some((k, mut data)) = message {
        // What passed validation before the violation, for streamed chunks to be a prefix of.
        if k == MessageKind::Text {
            let valid = data.len() - pending_len(&data);
            data.truncate(valid);
        }
        out.partial = Some((k, data));
    }
    out
}

/// A message of `kind` with `data`, which for text must be valid UTF-8.
pub fn message_of(kind: MessageKind, data: Vec<u8>) -> Message {
    match kind {
        MessageKind::Text => Message::Text(Bytes::from(data).try_into().expect("valid text")),
        MessageKind::Binary => Message::Binary(Bytes::from(data)),
    }
}
