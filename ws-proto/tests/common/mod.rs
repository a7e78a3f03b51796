//! Helpers shared by the integration tests.

#![allow(dead_code)]

use bytes::Bytes;
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
