//! Structured traffic from `arbitrary`: what one side sends with the `send_*` API, the other
//! side receives unchanged (either direction, whole or streamed, in arbitrary reads), pings
//! come back as pongs, and the closing handshake completes; plus `FrameHeader`
//! encode-then-decode identity for arbitrary headers.

use crate::chunks;
use crate::connection::connection;
use crate::model::message_of;
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use core::time::Duration;
use ws_proto::close::{CloseFrame, MAX_REASON_LEN};
use ws_proto::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use ws_proto::{
    CloseCode, Config, Connection, ConnectionState, Event, MessageKind, Role, Utf8Bytes,
};

/// The traffic.
#[derive(Arbitrary, Debug)]
pub struct RoundtripInput {
    /// The client sends (else the server).
    pub from_client: bool,
    /// The receiver streams.
    pub streaming: bool,
    /// The client's masking-key seed.
    pub key_seed: u32,
    /// What is sent, in order.
    pub items: Vec<Item>,
    /// The receiver's read sizes, used in turn.
    pub reads: Vec<u8>,
    /// A closing handshake at the end: code and reason.
    pub close: Option<(u16, String)>,
    /// Headers for the codec identity.
    pub headers: Vec<HeaderFields>,
}

/// One thing sent.
#[derive(Arbitrary, Debug)]
pub enum Item {
    /// `send_text`.
    Text(String),
    /// `send_binary`.
    Binary(Vec<u8>),
    /// `send_fragment` pieces of a text (cut anywhere, even inside a code point) or of its
    /// bytes as binary, with an optional ping between fragments.
    Fragmented {
        /// The data.
        text: String,
        /// Send it as binary.
        binary: bool,
        /// Fragment sizes, used in turn.
        cuts: Vec<u8>,
        /// A ping between fragments.
        ping: Option<Vec<u8>>,
    },
    /// `send_ping`.
    Ping(Vec<u8>),
    /// `send_pong`.
    Pong(Vec<u8>),
}

/// The fields of a frame header.
#[derive(Arbitrary, Debug)]
pub struct HeaderFields {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload_len: u64,
}

/// Runs the roundtrip target on fuzzer bytes.
pub fn run(data: &[u8]) {
    if let Ok(input) = RoundtripInput::arbitrary_take_rest(Unstructured::new(data)) {
        run_input(&input);
    }
}

fn control_payload(p: &[u8]) -> &[u8] {
    &p[..p.len().min(MAX_CONTROL_PAYLOAD)]
}

fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// Feeds `wire` to `conn` in reads of the given sizes and returns its events, with streamed
/// chunks reassembled into messages.
pub(crate) fn deliver(conn: &mut Connection, wire: &[u8], reads: &[u8]) -> Vec<Event> {
    for piece in chunks::cut(wire, reads) {
        if let Err(e) = conn.receive(piece) {
            panic!("{:?} refused its peer's frames: {e:?}", conn.role());
        }
    }
    let mut events = Vec::new();
    let mut open: Option<(MessageKind, Vec<u8>)> = None;
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Chunk(c) => {
                let (_, data) = open.get_or_insert_with(|| (c.kind, Vec::new()));
                data.extend_from_slice(&c.data);
                if c.last {
                    let (kind, data) = open.take().unwrap();
                    events.push(Event::Message(message_of(kind, data)));
                }
            }
            other => events.push(other),
        }
    }
    assert!(open.is_none(), "a streamed message did not end");
    events
}

/// Runs the roundtrip target on a structured input.
pub fn run_input(input: &RoundtripInput) {
    for h in &input.headers {
        header_identity(h);
    }
    let (send_role, recv_role) = if input.from_client {
        (Role::Client, Role::Server)
    } else {
        (Role::Server, Role::Client)
    };
    let mut sender = connection(send_role, Config::default(), input.key_seed);
    let recv_config = Config {
        streaming: input.streaming,
        ..Config::default()
    };
    let mut receiver = connection(recv_role, recv_config, 0);

    let mut expected = Vec::new();
    let mut pings = Vec::new();
    for item in &input.items {
        match item {
            Item::Text(s) => {
                sender.send_text(s).unwrap();
                expected.push(Event::Message(message_of(
                    MessageKind::Text,
                    s.clone().into(),
                )));
            }
            Item::Binary(b) => {
                sender.send_binary(b).unwrap();
                expected.push(Event::Message(message_of(MessageKind::Binary, b.clone())));
            }
            Item::Ping(p) => {
                sender.send_ping(control_payload(p)).unwrap();
                pings.push(Bytes::copy_from_slice(control_payload(p)));
                expected.push(Event::Ping(pings.last().unwrap().clone()));
            }
            Item::Pong(p) => {
                sender.send_pong(control_payload(p)).unwrap();
                expected.push(Event::Pong(Bytes::copy_from_slice(control_payload(p))));
            }
            Item::Fragmented {
                text,
                binary,
                cuts,
                ping,
            } => {
                let kind = if *binary {
                    MessageKind::Binary
                } else {
                    MessageKind::Text
                };
                let mut pieces = chunks::cut(text.as_bytes(), cuts);
                if pieces.is_empty() {
                    pieces.push(&[]);
                }
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = i + 1 == pieces.len();
                    sender.send_fragment(kind, piece, fin).unwrap();
                    if let (false, Some(p)) = (fin, ping) {
                        sender.send_ping(control_payload(p)).unwrap();
                        pings.push(Bytes::copy_from_slice(control_payload(p)));
                        expected.push(Event::Ping(pings.last().unwrap().clone()));
                    }
                }
                expected.push(Event::Message(message_of(kind, text.as_bytes().to_vec())));
            }
        }
    }
    let wire = drain(&mut sender);
    assert_eq!(deliver(&mut receiver, &wire, &input.reads), expected);

    // The receiver's pongs answer the pings, in order.
    let pongs = drain(&mut receiver);
    let answered = deliver(&mut sender, &pongs, &[]);
    let want: Vec<Event> = pings.into_iter().map(Event::Pong).collect();
    assert_eq!(answered, want, "pongs");

    let Some((code, reason)) = &input.close else {
        return;
    };
    let result = sender.close(Duration::ZERO, CloseCode(*code), reason);
    if !CloseCode(*code).is_valid_on_wire() || reason.len() > MAX_REASON_LEN {
        assert!(result.is_err());
        assert_eq!(sender.poll_timeout(), None, "a refused close arms nothing");
        return;
    }
    result.unwrap();
    assert_eq!(sender.state(), ConnectionState::Closing);
    assert_eq!(
        sender.poll_timeout(),
        Some(Config::default().close_timeout),
        "close arms its timer at once"
    );
    let close = drain(&mut sender);
    let frame = CloseFrame {
        code: CloseCode(*code),
        reason: Utf8Bytes::from(reason.clone()),
    };
    assert_eq!(
        deliver(&mut receiver, &close, &input.reads),
        [Event::Close(Some(frame))]
    );
    assert_eq!(receiver.state(), ConnectionState::Closed);
    let reply = drain(&mut receiver);
    let echo = CloseFrame {
        code: CloseCode(*code),
        reason: Utf8Bytes::default(),
    };
    assert_eq!(
        deliver(&mut sender, &reply, &[]),
        [Event::Close(Some(echo))]
    );
    assert_eq!(sender.state(), ConnectionState::Closed);
    assert!(drain(&mut sender).is_empty(), "no second close frame");
    let (server, client) = if send_role == Role::Server {
        (&mut sender, &mut receiver)
    } else {
        (&mut receiver, &mut sender)
    };
    // Section 7.1.1: the server closes TCP first; the client waits, then gives up.
    assert!(server.should_close_transport());
    assert!(!client.should_close_transport());
    client.handle_time(Duration::from_secs(1));
    client.handle_time(Duration::from_secs(1) + Config::default().close_timeout);
    assert!(client.should_close_transport());
}

fn header_identity(h: &HeaderFields) {
    let opcodes = [
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ];
    let header = FrameHeader {
        fin: h.fin,
        rsv: h.rsv & 0x70,
        opcode: opcodes[h.opcode as usize % opcodes.len()],
        mask: h.mask,
        payload_len: h.payload_len & (u64::MAX >> 1),
    };
    let mut buf = [0u8; MAX_HEADER_LEN + 3];
    let n = header.encode(&mut buf);
    assert_eq!(n, header.encoded_len());
    assert_eq!(
        FrameHeader::decode(&buf[..n]),
        Ok(Some((header, n))),
        "{header:?}"
    );
    assert_eq!(
        FrameHeader::decode(&buf),
        Ok(Some((header, n))),
        "with bytes after it"
    );
    for cut in 0..n {
        assert_eq!(FrameHeader::decode(&buf[..cut]), Ok(None));
    }
}
