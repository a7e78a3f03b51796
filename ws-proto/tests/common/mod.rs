//! Helpers shared by the integration tests.

#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
use ws_proto::mask::apply_mask;
use ws_proto::{Connection, Event, Message};

/// Every event waiting.
pub fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Every byte waiting to be sent.
pub fn transmitted(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// A whole text message event.
pub fn text(s: &str) -> Event {
    Event::Message(Message::Text(
        Bytes::copy_from_slice(s.as_bytes()).try_into().unwrap(),
    ))
}

/// A whole binary message event.
pub fn binary(b: &[u8]) -> Event {
    Event::Message(Message::Binary(Bytes::copy_from_slice(b)))
}

/// The masking key of every client frame built here.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame as a client sends it (masked), with any header bits.
pub fn client_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | rsv | opcode];
    push_len(&mut out, payload.len(), true);
    out.extend_from_slice(&KEY);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], KEY, 0);
    out
}

/// Appends a frame's payload length (and mask bit) to its first byte.
pub fn push_len(out: &mut Vec<u8>, len: usize, masked: bool) {
    let m = if masked { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A stream of client frames of every kind, as bytes, for the chunking property.
pub fn arb_client_stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop_oneof![
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(fin, p)| (fin, 0x2u8, p)),
        "\\PC{0,40}".prop_map(|s| (true, 0x1u8, s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..125).prop_map(|p| (true, 0x9u8, p)),
        proptest::collection::vec(any::<u8>(), 0..125).prop_map(|p| (true, 0xau8, p)),
    ];
    proptest::collection::vec(frame, 0..12).prop_map(|frames| {
        let mut wire = Vec::new();
        let mut in_message = false;
        for (fin, opcode, payload) in frames {
            let opcode = match (opcode, in_message) {
                (0x1 | 0x2, true) => 0x0,
                (op, _) => op,
            };
            if opcode < 0x8 {
                in_message = !fin;
            }
            wire.extend(client_frame(fin, 0, opcode, &payload));
        }
        wire
    })
}
