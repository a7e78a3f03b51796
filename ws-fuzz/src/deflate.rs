//! permessage-deflate (RFC 7692): negotiation between arbitrary configurations and on arbitrary
//! offers, messages round-tripping through the codec both ways, shared compressed frames, and
//! a deflate-enabled server fed arbitrary (possibly compressed, possibly corrupt) frames.
//!
//! Invariants: no panic; a client and a server with any valid configurations agree on the same
//! parameters; a response the server writes parses back; every message arrives unchanged in
//! either direction, whole or fragmented, with or without context takeover; on hostile input
//! messages stay within the size limit (no decompression bomb), text stays UTF-8, and memory
//! stays bounded.

use crate::chunks;
use crate::connection::TestKeys;
use crate::model::message_of;
use crate::roundtrip::deliver;
use arbitrary::{Arbitrary, Unstructured};
use ws_proto::deflate::{compress_shared, DeflateConfig, DeflateParams, PerMessageDeflate, NAME};
use ws_proto::frame::{FrameHeader, RSV1};
use ws_proto::handshake::ExtensionOffer;
use ws_proto::mask::apply_mask;
use ws_proto::{Config, Connection, Event, Message, MessageKind, Role, UsageError};

/// One side's configuration, reduced to valid values.
#[derive(Arbitrary, Debug)]
pub struct ConfigFields {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_bits: u8,
    client_bits: u8,
    level: u8,
    min_size: u8,
}

impl ConfigFields {
    fn config(&self) -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: 9 + self.server_bits % 7,
            client_max_window_bits: 9 + self.client_bits % 7,
            level: (self.level % 10) as u32,
            min_size: self.min_size as usize,
        }
    }
}

/// A message to send.
#[derive(Arbitrary, Debug)]
pub enum Item {
    /// `send_text`.
    Text(String),
    /// `send_binary`.
    Binary(Vec<u8>),
    /// A compressible run: `send_binary` of `len` copies of a byte.
    Run(u8, u16),
    /// Fragments, which bypass the extension.
    Fragmented(Vec<u8>, u8),
}

/// A frame for the hostile-input server.
#[derive(Arbitrary, Debug)]
pub struct RawFrame {
    b0: u8,
    /// Compress the payload first (as a valid permessage-deflate body).
    compress: bool,
    /// Bytes dropped from the end of the (compressed) payload.
    truncate: u8,
    payload: Vec<u8>,
}

/// The whole input.
#[derive(Arbitrary, Debug)]
pub struct DeflateInput {
    client: ConfigFields,
    server: ConfigFields,
    /// Both ends stream what they receive.
    streaming: bool,
    /// A `Sec-WebSocket-Extensions` value to negotiate on.
    offer: String,
    /// Messages: `true` sends from the client.
    items: Vec<(bool, Item)>,
    reads: Vec<u8>,
    /// A room message compressed once (`compress_shared`).
    shared: Option<(bool, Vec<u8>)>,
    /// Frames and then raw bytes for a deflate-enabled server with a small message limit.
    raw_frames: Vec<RawFrame>,
    raw: Vec<u8>,
}

/// Runs the deflate target on fuzzer bytes.
pub fn run(data: &[u8]) {
    if let Ok(input) = DeflateInput::arbitrary_take_rest(Unstructured::new(data)) {
        run_input(&input);
    }
}

fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// Runs the deflate target on a structured input.
pub fn run_input(input: &DeflateInput) {
    let server_config = input.server.config();
    let client_config = input.client.config();
    negotiate_any(&server_config, &input.offer);

    // A client and a server agree on the same parameters.
    let offer = client_config.offer();
    let offers = ExtensionOffer::parse_list(&offer).expect("our offer parses");
    let (params, response) = server_config
        .negotiate(&offers)
        .unwrap_or_else(|| panic!("{server_config:?} declined {offer:?}"));
    let response_offer = single_offer(&response);
    let client_params = client_config
        .accept_response(&response_offer)
        .unwrap_or_else(|| panic!("{client_config:?} refused {response:?} to {offer:?}"));
    assert_eq!(
        client_params, params,
        "the two sides disagree: {offer:?} -> {response:?}"
    );

    let config = Config {
        streaming: input.streaming,
        ..Config::default()
    };
    let mut server = Connection::server(config.clone()).with_extension(Box::new(
        PerMessageDeflate::new(Role::Server, params, &server_config),
    ));
    let mut client = Connection::client_with_keys(config, Box::new(TestKeys(5))).with_extension(
        Box::new(PerMessageDeflate::new(Role::Client, params, &client_config)),
    );
    for (from_client, item) in &input.items {
        let (sender, receiver) = if *from_client {
            (&mut client, &mut server)
        } else {
            (&mut server, &mut client)
        };
        let expected = match item {
            Item::Text(s) => {
                sender.send_text(s).unwrap();
                message_of(MessageKind::Text, s.clone().into_bytes())
            }
            Item::Binary(b) => {
                sender.send_binary(b).unwrap();
                message_of(MessageKind::Binary, b.clone())
            }
            Item::Run(byte, len) => {
                let data = vec![*byte; *len as usize];
                sender.send_binary(&data).unwrap();
                message_of(MessageKind::Binary, data)
            }
            Item::Fragmented(data, cut) => {
                let at = (*cut as usize).min(data.len());
                sender
                    .send_fragment(MessageKind::Binary, &data[..at], false)
                    .unwrap();
                sender
                    .send_fragment(MessageKind::Binary, &data[at..], true)
                    .unwrap();
                message_of(MessageKind::Binary, data.clone())
            }
        };
        let wire = drain(sender);
        assert_eq!(
            deliver(receiver, &wire, &input.reads),
            [Event::Message(expected)]
        );
    }

    if let Some((text, payload)) = &input.shared {
        let (kind, payload) = if *text {
            let s = String::from_utf8_lossy(payload).into_owned();
            (MessageKind::Text, s.into_bytes())
        } else {
            (MessageKind::Binary, payload.clone())
        };
        let bits = server.shared_deflate_window_bits().unwrap_or(15);
        let frame = compress_shared(kind, &payload, bits, server_config.level);
        match server.shared_deflate_window_bits() {
            Some(_) => {
                server.send_encoded(&frame).unwrap();
                let wire = drain(&mut server);
                let got = deliver(&mut client, &wire, &input.reads);
                assert_eq!(got, [Event::Message(message_of(kind, payload))]);
            }
            None => assert_eq!(
                server.send_encoded(&frame),
                Err(UsageError::ExtensionMismatch)
            ),
        }
    }

    hostile(params, &server_config, input);
}

fn single_offer(value: &str) -> ExtensionOffer {
    let mut offers = ExtensionOffer::parse_list(value).expect("the response parses");
    assert_eq!(offers.len(), 1, "{value:?}");
    let offer = offers.remove(0);
    assert_eq!(offer.name, NAME);
    offer
}

/// Negotiation on an arbitrary header value: no panic, and an agreement is one a client
/// offering exactly that could accept.
fn negotiate_any(config: &DeflateConfig, value: &str) {
    let Some(offers) = ExtensionOffer::parse_list(value) else {
        return;
    };
    let Some((params, response)) = config.negotiate(&offers) else {
        return;
    };
    let response = single_offer(&response);
    assert!(
        (9..=15).contains(&params.server_max_window_bits),
        "{params:?}"
    );
    assert!(
        (8..=15).contains(&params.client_max_window_bits),
        "{params:?}"
    );
    // The response never grants what the server's configuration rules out.
    if config.server_no_context_takeover {
        assert!(params.server_no_context_takeover);
    }
    assert!(params.server_max_window_bits <= config.server_max_window_bits);
    let named = |n: &str| response.params.iter().any(|(k, _)| k == n);
    assert_eq!(
        named("server_no_context_takeover"),
        params.server_no_context_takeover
    );
    assert_eq!(
        named("client_no_context_takeover"),
        params.client_no_context_takeover
    );
}

/// A deflate-enabled server with a small message limit, fed hostile frames.
fn hostile(params: DeflateParams, config: &DeflateConfig, input: &DeflateInput) {
    const LIMIT: u64 = 4096;
    let mut server = Connection::server(Config {
        max_message_size: LIMIT,
        ..Config::default()
    })
    .with_extension(Box::new(PerMessageDeflate::new(
        Role::Server,
        params,
        config,
    )));
    let mut wire = Vec::new();
    for f in &input.raw_frames {
        let mut payload = f.payload.clone();
        if f.compress {
            let frame = compress_shared(MessageKind::Binary, &payload, 15, 6);
            let bytes = frame.as_bytes();
            let (_, n) = FrameHeader::decode(bytes).unwrap().unwrap();
            payload = bytes[n..].to_vec();
        }
        payload.truncate(payload.len().saturating_sub(f.truncate as usize));
        let key = [f.b0, 0x5a, f.truncate, 0xa5];
        let header = FrameHeader {
            fin: f.b0 & 0x80 != 0,
            rsv: f.b0 & 0x70 | if f.compress { RSV1 } else { 0 },
            opcode: ws_proto::frame::OpCode::from_u8(f.b0 & 0x0f)
                .unwrap_or(ws_proto::frame::OpCode::Binary),
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut head = [0u8; ws_proto::frame::MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        wire.extend_from_slice(&head[..n]);
        apply_mask(&mut payload, key, 0);
        wire.extend_from_slice(&payload);
    }
    wire.extend_from_slice(&input.raw);
    let mut fed = 0;
    for piece in chunks::cut(&wire, &input.reads) {
        let _ = server.receive(piece);
        fed += piece.len();
        while let Some(event) = server.poll_event() {
            if let Event::Message(m) = &event {
                assert!(
                    m.as_bytes().len() as u64 <= LIMIT,
                    "an inflated message over the limit"
                );
                if let Message::Text(t) = m {
                    assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                }
            }
        }
        // A 2^15 window compressor and inflater, plus the buffers.
        let bound = (1 << 20) + 8 * fed;
        assert!(
            server.memory_usage() <= bound,
            "memory {}",
            server.memory_usage()
        );
        drain(&mut server);
    }
}
