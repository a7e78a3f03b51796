//! Edge cases from the fuzz targets in `ws-fuzz`, replayed through the plain ws-proto API so
//! they run with every `cargo test`. Each test names the property it pins down.

use ws_proto::frame::FrameHeader;
use ws_proto::handshake::server::ServerHandshake;
use ws_proto::handshake::HandshakeLimits;
use ws_proto::mask::apply_mask;
use ws_proto::utf8::Utf8Validator;
use ws_proto::{
    Config, Connection, EncodedFrame, Event, HandshakeError, MessageKind, ProtocolViolation,
};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&KEY);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], KEY, 0);
    out
}

fn transmitted(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn streamed_text_ending_inside_a_code_point_fails_after_only_whole_code_points() {
    let mut server = Connection::server(Config {
        streaming: true,
        ..Config::default()
    });
    server.receive(&client_frame(0x01, b"a\xe2")).unwrap();
    server.receive(&client_frame(0x00, b"\x82")).unwrap();
    let Some(Event::Chunk(chunk)) = server.poll_event() else {
        panic!("the complete code point is streamed")
    };
    assert_eq!(
        (&chunk.data[..], chunk.first, chunk.last),
        (&b"a"[..], true, false)
    );
    assert_eq!(server.poll_event(), None, "E2 82 is held back");
    // The final fragment is empty: the message ends inside the euro sign.
    assert_eq!(
        server.receive(&client_frame(0x80, b"")),
        Err(ProtocolViolation::InvalidUtf8)
    );
    assert_eq!(server.poll_event(), None);
    assert_eq!(transmitted(&mut server), [0x88, 0x02, 0x03, 0xef]);
}

#[test]
fn a_header_violation_is_reported_by_the_read_that_completes_the_header() {
    // A server refuses an unmasked frame once the second byte arrives.
    let mut server = Connection::server(Config::default());
    assert_eq!(server.receive(&[0x81]), Ok(()));
    assert_eq!(
        server.receive(&[0x05]),
        Err(ProtocolViolation::UnmaskedClientFrame)
    );
    // A client refuses a masked frame only once its key is complete.
    let wire = client_frame(0x81, b"Hello");
    let mut client = Connection::client(Config::default());
    for (i, byte) in wire[..6].iter().enumerate() {
        let result = client.receive(&[*byte]);
        if i < 5 {
            assert_eq!(result, Ok(()), "byte {i}");
        } else {
            assert_eq!(result, Err(ProtocolViolation::MaskedServerFrame));
        }
    }
}

#[test]
fn invalid_utf8_fails_in_the_read_that_holds_the_first_bad_byte() {
    // "κ" then E0 80: the prefix stops being valid at the 80, in the third read.
    let mut server = Connection::server(Config::default());
    let wire = client_frame(0x81, b"\xce\xba\xe0\x80\x41");
    assert_eq!(server.receive(&wire[..8]), Ok(()));
    assert_eq!(server.receive(&wire[8..9]), Ok(()));
    assert_eq!(
        server.receive(&wire[9..10]),
        Err(ProtocolViolation::InvalidUtf8)
    );
}

#[test]
fn utf8_validator_fails_exactly_on_the_piece_with_the_first_invalid_byte() {
    for (text, bad) in [
        (&b"\xe0\x80"[..], 1),    // overlong: E0 needs A0..BF next
        (b"\xf4\x90\x80\x80", 1), // above U+10FFFF
        (b"\xed\xa0\x80", 1),     // surrogate
        (b"ab\x80", 2),           // lone continuation
        (b"\xc1\xbf", 0),         // C1 never starts anything
        (b"\xe2\x82\x41", 2),     // cut short by ASCII
    ] {
        let mut v = Utf8Validator::new();
        for (i, byte) in text.iter().enumerate() {
            let result = v.feed(&[*byte]);
            assert_eq!(result.is_err(), i == bad, "{text:02x?} byte {i}");
            if result.is_err() {
                break;
            }
        }
    }
}

#[test]
fn partial_writes_through_encoded_frames_keep_the_pending_count() {
    let mut server = Connection::server(Config::default());
    server.send_text("one").unwrap();
    let shared = EncodedFrame::new(MessageKind::Binary, &[7; 10]);
    server.send_encoded(&shared).unwrap();
    server.send_fragment(MessageKind::Text, b"t", true).unwrap();
    let expected = [
        &b"\x81\x03one"[..],
        &shared.as_bytes()[..],
        &b"\x81\x01t"[..],
    ]
    .concat();
    let mut written = Vec::new();
    while server.has_pending_transmit() {
        let pending = server.pending_transmit_len();
        assert_eq!(pending, expected.len() - written.len());
        let mut slices = [&[][..]; 2];
        let n = server.transmit_slices(&mut slices);
        let flat = slices[..n].concat();
        let take = flat.len().min(3);
        written.extend_from_slice(&flat[..take]);
        server.advance_transmit(take);
        assert_eq!(server.pending_transmit_len(), pending - take);
    }
    assert_eq!(written, expected);
}

#[test]
fn an_idle_connection_holds_no_memory_after_shrink_buffers() {
    let mut server = Connection::server(Config::default());
    server.receive(&client_frame(0x89, b"ping")).unwrap();
    server.receive(&client_frame(0x82, &[1; 100])).unwrap();
    while server.poll_event().is_some() {}
    transmitted(&mut server);
    server.shrink_buffers();
    assert_eq!(server.memory_usage(), 0);
}

#[test]
fn the_head_limit_is_exact_for_any_chunking() {
    let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let exact = HandshakeLimits {
        max_head_bytes: head.len(),
        max_headers: 8,
    };
    let short = HandshakeLimits {
        max_head_bytes: head.len() - 1,
        ..exact
    };
    for split in 0..=head.len() {
        let mut hs = ServerHandshake::new(exact);
        let first = hs.receive(&head[..split]).unwrap();
        let used = match first {
            Some((_, used)) => used,
            None => split + hs.receive(&head[split..]).unwrap().unwrap().1,
        };
        assert_eq!(used, head.len(), "split {split}");
        let mut hs = ServerHandshake::new(short);
        let result = hs
            .receive(&head[..split])
            .and_then(|r| match r {
                None => hs.receive(&head[split..]),
                done => Ok(done),
            })
            .map(|r| r.map(|(_, used)| used));
        assert_eq!(result, Err(HandshakeError::HeadTooLarge), "split {split}");
    }
}

#[test]
fn a_64_bit_length_form_for_a_short_payload_decodes_and_reencodes_shorter() {
    let wire = [0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5];
    let (header, len) = FrameHeader::decode(&wire).unwrap().unwrap();
    assert_eq!((header.payload_len, len), (5, 10));
    let mut buf = [0u8; 14];
    assert_eq!(header.encode(&mut buf), 2);
    assert_eq!(&buf[..2], &[0x82, 0x05]);
}

/// RFC 7692 section 7.2.1: a compressed payload always ends with the header bits of an empty
/// stored block, so even an empty message is at least `00`. With context takeover, zlib emits
/// nothing for a sync flush that follows another with no input between; an empty payload then
/// makes the receiver read the appended `00 00 ff ff` as the start of a stored block, and every
/// later message in that direction arrives corrupted (found by the `deflate` fuzz target).
#[test]
fn deflate_empty_message_with_context_takeover_keeps_the_stream_in_sync() {
    use ws_proto::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate};
    use ws_proto::{Message, Role};
    let config = DeflateConfig {
        min_size: 0,
        ..DeflateConfig::default()
    };
    // Context takeover both ways.
    let params = DeflateParams::default();
    let mut client = Connection::client(Config::default()).with_extension(Box::new(
        PerMessageDeflate::new(Role::Client, params, &config),
    ));
    let mut server = Connection::server(Config::default()).with_extension(Box::new(
        PerMessageDeflate::new(Role::Server, params, &config),
    ));
    for payload in [&b"hello hello hello"[..], b"", b"", b"abc"] {
        client.send_binary(payload).unwrap();
        let wire = transmitted(&mut client);
        let (header, n) = FrameHeader::decode(&wire).unwrap().unwrap();
        assert!(
            header.payload_len > 0,
            "an empty compressed payload for {payload:?}"
        );
        assert_eq!(server.receive(&wire), Ok(()));
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::Binary(payload.to_vec().into()))),
            "payload {:02x?} sent as {:02x?}",
            payload,
            &wire[n..]
        );
    }
}
