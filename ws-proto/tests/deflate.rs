//! permessage-deflate (RFC 7692): the RFC's examples, negotiation, limits, round trips.
#![cfg(feature = "deflate")]

mod common;

use common::{events, text, transmitted};

use bytes::Bytes;
use proptest::prelude::*;
use ws_proto::deflate::{compress_shared, DeflateConfig, DeflateParams, PerMessageDeflate};
use ws_proto::frame::RSV1;
use ws_proto::handshake::ExtensionOffer;
use ws_proto::{
    CloseCode, Config, Connection, Event, Message, MessageKind, ProtocolViolation, Role, UsageError,
};

fn client_with(params: DeflateParams, config: Config) -> Connection {
    Connection::client(config).with_extension(Box::new(PerMessageDeflate::new(
        Role::Client,
        params,
        &DeflateConfig::default(),
    )))
}

fn server_with(params: DeflateParams, config: Config) -> Connection {
    Connection::server(config).with_extension(Box::new(PerMessageDeflate::new(
        Role::Server,
        params,
        &DeflateConfig::default(),
    )))
}

fn takeover() -> DeflateParams {
    DeflateParams::default()
}

fn offers(value: &str) -> Vec<ExtensionOffer> {
    ExtensionOffer::parse_list(value).unwrap()
}

#[test]
fn rfc7692_7_2_3_1_compressed_hello_whole_and_fragmented() {
    let mut client = client_with(takeover(), Config::default());
    client
        .receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    client
        .receive(&[
            0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
        ])
        .unwrap();
    assert_eq!(events(&mut client), vec![text("Hello"), text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_2_sharing_the_lz77_window() {
    let mut client = client_with(takeover(), Config::default());
    client
        .receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    client
        .receive(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00])
        .unwrap();
    assert_eq!(events(&mut client), vec![text("Hello"), text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_3_stored_block() {
    let mut client = client_with(takeover(), Config::default());
    client
        .receive(&[
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ])
        .unwrap();
    assert_eq!(events(&mut client), vec![text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_4_final_block_then_a_new_stream() {
    let mut client = client_with(takeover(), Config::default());
    client
        .receive(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00])
        .unwrap();
    client
        .receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    assert_eq!(events(&mut client), vec![text("Hello"), text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_5_two_deflate_blocks_in_one_message() {
    let mut client = client_with(takeover(), Config::default());
    let payload = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    let mut frame = vec![0xc1, payload.len() as u8];
    frame.extend_from_slice(&payload);
    client.receive(&frame).unwrap();
    assert_eq!(events(&mut client), vec![text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_6_empty_message_is_one_zero_octet_and_an_empty_payload_is_tolerated() {
    // Sent: an empty message compresses to `00`, with or without context before it.
    let always = DeflateConfig {
        min_size: 0,
        ..DeflateConfig::default()
    };
    let mut client = Connection::client(Config::default()).with_extension(Box::new(
        PerMessageDeflate::new(Role::Client, takeover(), &always),
    ));
    for message in ["", "Hello", "", ""] {
        client.send_text(message).unwrap();
        let wire = transmitted(&mut client);
        assert_eq!(wire[0], 0xc1, "compressed, RSV1 set");
        if message.is_empty() {
            // Masked, one octet of payload, which unmasks to 00.
            assert_eq!((wire[1], wire.len()), (0x81, 7));
            assert_eq!(wire[6] ^ wire[2], 0x00);
        }
    }
    // Received: `00`, and also an empty payload, which some senders produce, are the empty
    // message, and the shared window stays in step for the message after them.
    let mut client = client_with(takeover(), Config::default());
    client
        .receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    client.receive(&[0xc1, 0x01, 0x00]).unwrap();
    client.receive(&[0xc1, 0x00]).unwrap();
    client
        .receive(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00])
        .unwrap();
    assert_eq!(
        events(&mut client),
        vec![text("Hello"), text(""), text(""), text("Hello")]
    );
}

#[test]
fn rfc7692_6_1_rsv1_is_only_for_the_first_frame_of_a_data_message() {
    let mut client = client_with(takeover(), Config::default());
    // RSV1 on a continuation frame.
    let r = client.receive(&[
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ]);
    assert_eq!(r, Err(ProtocolViolation::ReservedBitsSet(RSV1)));
    // RSV1 on a control frame.
    let mut client = client_with(takeover(), Config::default());
    assert_eq!(
        client.receive(&[0xc9, 0x00]),
        Err(ProtocolViolation::ReservedBitsSet(RSV1))
    );
}

#[test]
fn corrupt_compressed_data_fails_with_1007() {
    let mut client = client_with(takeover(), Config::default());
    let r = client.receive(&[0xc1, 0x03, 0xff, 0xff, 0xff]);
    assert!(
        matches!(r, Err(ProtocolViolation::Extension(e)) if e.close_code == CloseCode::INVALID_PAYLOAD),
        "{r:?}"
    );
}

#[test]
fn rfc7692_8_decompression_bomb_stops_at_the_limit_with_1009() {
    // 64 MiB of zeros compresses to about 64 KiB; the limit is 1 MiB.
    let zeros = vec![0u8; 64 << 20];
    let frame = compress_shared(MessageKind::Binary, &zeros, 15, 9);
    assert!(
        frame.as_bytes().len() < 100 << 10,
        "{}",
        frame.as_bytes().len()
    );
    let mut client = client_with(
        takeover(),
        Config {
            max_message_size: 1 << 20,
            ..Config::default()
        },
    );
    let r = client.receive(frame.as_bytes());
    assert_eq!(r, Err(ProtocolViolation::MessageTooLarge));
    assert_eq!(r.unwrap_err().close_code(), CloseCode::MESSAGE_TOO_BIG);
    // Inflating stopped at the limit: the connection holds about the limit, not 64 MiB.
    assert!(client.memory_usage() < 3 << 20, "{}", client.memory_usage());
}

#[test]
fn rfc7692_8_decoded_total_counts_what_inflating_produced_as_it_goes() {
    // What a receiver inflates is the work a small input can cost (section 8): counted per
    // piece, so a caller sharing its time sees a bomb's cost before the message ends.
    let zeros = vec![0u8; 4 << 20];
    let frame = compress_shared(MessageKind::Binary, &zeros, 15, 9);
    let bytes = frame.as_bytes();
    let mut client = client_with(takeover(), Config::default());
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    client.receive(first).unwrap();
    let halfway = client.decoded_total();
    assert!(halfway > 1 << 20 && halfway < 4 << 20, "{halfway}");
    client.receive(rest).unwrap();
    assert_eq!(client.decoded_total(), 4 << 20);
    // An uncompressed message adds nothing: its input is its whole cost.
    client.receive(&[0x82, 0x03, 1, 2, 3]).unwrap();
    assert_eq!(client.decoded_total(), 4 << 20);
}

#[test]
fn invalid_utf8_inside_compressed_text_fails_with_1007() {
    let frame = compress_shared(
        MessageKind::Text,
        &[b'a'; 100]
            .iter()
            .copied()
            .chain([0xff])
            .collect::<Vec<_>>(),
        15,
        6,
    );
    let mut client = client_with(takeover(), Config::default());
    assert_eq!(
        client.receive(frame.as_bytes()),
        Err(ProtocolViolation::InvalidUtf8)
    );
}

#[test]
fn rfc7692_7_1_server_negotiation() {
    let config = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        ..DeflateConfig::default()
    };
    // The plain offer: defaults.
    let (params, response) = config.negotiate(&offers("permessage-deflate")).unwrap();
    assert_eq!(
        (params, response.as_str()),
        (DeflateParams::default(), "permessage-deflate")
    );
    // Every parameter, with values.
    let (params, response) = config
        .negotiate(&offers("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"))
        .unwrap();
    assert_eq!(
        params,
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
        }
    );
    assert_eq!(response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12");
    // client_max_window_bits without a value: the client accepts a limit; ours is 15.
    let (params, response) = config
        .negotiate(&offers("permessage-deflate; client_max_window_bits"))
        .unwrap();
    assert_eq!(
        (params.client_max_window_bits, response.as_str()),
        (15, "permessage-deflate")
    );
    // The server's own limits.
    let small = DeflateConfig {
        server_max_window_bits: 11,
        client_max_window_bits: 10,
        ..config
    };
    let (params, response) = small
        .negotiate(&offers("permessage-deflate; client_max_window_bits"))
        .unwrap();
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (11, 10)
    );
    assert_eq!(
        response,
        "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10"
    );
}

#[test]
fn rfc7692_7_1_server_declines_bad_offers_and_takes_the_next() {
    let config = DeflateConfig::default();
    for bad in [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=07",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; unknown_param",
        // A window of 8 bits for our compressor is more than zlib can honour.
        "permessage-deflate; server_max_window_bits=8",
        "x-other",
    ] {
        assert_eq!(config.negotiate(&offers(bad)), None, "{bad}");
    }
    let (params, _) = config
        .negotiate(&offers(
            "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9",
        ))
        .unwrap();
    assert_eq!(params.server_max_window_bits, 9);
}

#[test]
fn rfc7692_7_1_client_checks_the_response() {
    let config = DeflateConfig::default();
    assert_eq!(config.offer(), "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits");
    let ok = config
        .accept_response(
            &offers("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")[0],
        )
        .unwrap();
    assert_eq!(
        (ok.client_max_window_bits, ok.server_max_window_bits),
        (10, 15)
    );
    for bad in [
        // We asked for server_no_context_takeover.
        "permessage-deflate",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=8",
        "permessage-deflate; server_no_context_takeover; x=1",
    ] {
        assert_eq!(config.accept_response(&offers(bad)[0]), None, "{bad}");
    }
    let limited = DeflateConfig {
        server_max_window_bits: 10,
        ..config
    };
    assert!(limited.offer().contains("server_max_window_bits=10"));
    assert_eq!(
        limited.accept_response(
            &offers("permessage-deflate; server_no_context_takeover; server_max_window_bits=12")[0]
        ),
        None
    );
}

#[test]
fn small_messages_stay_uncompressed_and_large_ones_shrink() {
    let mut server = server_with(takeover(), Config::default());
    server.send_text("tiny").unwrap();
    let out = transmitted(&mut server);
    assert_eq!(out[0], 0x81, "below the threshold: RSV1 clear");
    let big = "compressible ".repeat(100);
    server.send_text(&big).unwrap();
    let out = transmitted(&mut server);
    assert_eq!(out[0], 0xc1, "RSV1 set");
    assert!(out.len() < big.len() / 5);
    let mut client = client_with(takeover(), Config::default());
    client.receive(&out).unwrap();
    assert_eq!(events(&mut client), vec![text(&big)]);
}

#[test]
fn shared_frames_go_only_to_connections_that_take_them() {
    let frame = compress_shared(
        MessageKind::Text,
        "hello hello hello hello hello hello".as_bytes(),
        15,
        6,
    );
    let no_takeover = DeflateParams {
        server_no_context_takeover: true,
        ..takeover()
    };
    let mut ok = server_with(no_takeover, Config::default());
    assert!(ok.send_encoded(&frame).is_ok());
    let mut with_context = server_with(takeover(), Config::default());
    assert_eq!(
        with_context.send_encoded(&frame),
        Err(UsageError::ExtensionMismatch)
    );
    let mut plain = Connection::server(Config::default());
    assert_eq!(
        plain.send_encoded(&frame),
        Err(UsageError::ExtensionMismatch)
    );
    assert!(plain
        .send_encoded(&ws_proto::EncodedFrame::new(MessageKind::Text, b"x"))
        .is_ok());
}

#[test]
fn no_context_takeover_frees_the_codec_between_messages() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..takeover()
    };
    let mut server = server_with(params, Config::default());
    let mut client = client_with(params, Config::default());
    let text_msg = "abcdefgh".repeat(50);
    client.send_text(&text_msg).unwrap();
    server.receive(&transmitted(&mut client)).unwrap();
    server.send_text(&text_msg).unwrap();
    assert_eq!(events(&mut server), vec![text(&text_msg)]);
    let _ = transmitted(&mut server);
    server.shrink_buffers();
    assert_eq!(server.memory_usage(), 0);
}

proptest! {
    #[test]
    fn round_trips_for_every_window_and_takeover(
        server_bits in 9u8..=15,
        client_bits in 9u8..=15,
        server_reset in any::<bool>(),
        client_reset in any::<bool>(),
        messages in proptest::collection::vec(
            prop_oneof![
                "[a-e ]{0,400}".prop_map(|s| Message::Text(Bytes::from(s).try_into().unwrap())),
                proptest::collection::vec(0u8..4, 0..3000).prop_map(|v| Message::Binary(v.into())),
            ],
            1..8,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let params = DeflateParams {
            server_no_context_takeover: server_reset,
            client_no_context_takeover: client_reset,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        let mut client = client_with(params, Config::default());
        let mut server = server_with(params, Config::default());
        for m in &messages {
            client.send(m).unwrap();
            server.send(m).unwrap();
        }
        let expected: Vec<Event> = messages.iter().cloned().map(Event::Message).collect();
        // Client to server, fed in pieces.
        let wire = transmitted(&mut client);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut start = 0;
        for &p in points.iter().chain(std::iter::once(&wire.len())) {
            server.receive(&wire[start..p]).unwrap();
            start = p;
        }
        prop_assert_eq!(events(&mut server), expected.clone());
        client.receive(&transmitted(&mut server)).unwrap();
        prop_assert_eq!(events(&mut client), expected);
    }
}
