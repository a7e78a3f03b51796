//! The connection state machine, driven through the public API. Test names give the rule of
//! RFC 6455 they check.

mod common;

use common::{arb_client_stream, binary, client_frame, events, push_len, text, transmitted};

use bytes::Bytes;
use core::time::Duration;
use proptest::prelude::*;
use ws_proto::frame::{FrameHeader, OpCode, RSV1};
use ws_proto::mask::apply_mask;
use ws_proto::{
    CloseCode, CloseFrame, Config, Connection, ConnectionState, Event, Message, MessageKind,
    ProtocolViolation, UsageError,
};

/// A frame as a server sends it (unmasked).
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | opcode];
    push_len(&mut out, payload.len(), false);
    out.extend_from_slice(payload);
    out
}

/// The close frame a server sends with this code.
fn server_close(code: CloseCode) -> Vec<u8> {
    server_frame(true, 0x8, &code.0.to_be_bytes())
}

fn fails_with(input: &[u8], violation: ProtocolViolation) {
    let mut server = Connection::server(Config::default());
    assert_eq!(server.receive(input), Err(violation));
    assert_eq!(
        transmitted(&mut server),
        server_close(violation.close_code())
    );
    assert!(server.should_close_transport());
    assert_eq!(server.state(), ConnectionState::Closed);
}

#[test]
fn rfc6455_5_7_masked_hello_from_a_client() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ])
        .unwrap();
    assert_eq!(events(&mut server), vec![text("Hello")]);
}

#[test]
fn rfc6455_5_7_unmasked_hello_and_fragments_from_a_server() {
    let mut client = Connection::client(Config::default());
    client
        .receive(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        .unwrap();
    client.receive(&[0x01, 0x03, 0x48, 0x65, 0x6c]).unwrap();
    client.receive(&[0x80, 0x02, 0x6c, 0x6f]).unwrap();
    assert_eq!(events(&mut client), vec![text("Hello"), text("Hello")]);
}

#[test]
fn rfc6455_5_7_256_byte_and_64_kib_binary_messages() {
    let mut client = Connection::client(Config::default());
    let small = vec![7u8; 256];
    let big = vec![9u8; 65536];
    let mut wire = vec![0x82, 0x7e, 0x01, 0x00];
    wire.extend_from_slice(&small);
    wire.extend_from_slice(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    wire.extend_from_slice(&big);
    client.receive(&wire).unwrap();
    assert_eq!(events(&mut client), vec![binary(&small), binary(&big)]);
}

#[test]
fn rfc6455_5_5_2_ping_is_answered_with_a_pong_with_the_same_payload() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&client_frame(true, 0, 0x9, b"Hello"))
        .unwrap();
    assert_eq!(
        events(&mut server),
        vec![Event::Ping(Bytes::from_static(b"Hello"))]
    );
    // RFC 6455 section 5.7: the unmasked pong "Hello".
    assert_eq!(
        transmitted(&mut server),
        [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

/// A server that has `queued` bytes of a message waiting for a peer that does not read.
fn server_with_backlog(limit: usize, queued: usize) -> Connection {
    let mut server = Connection::server(Config {
        coalesce_pongs_above: limit,
        ..Config::default()
    });
    if queued > 0 {
        server.send_binary(&vec![0u8; queued]).unwrap();
    }
    server
}

#[test]
fn rfc6455_5_5_3_pongs_coalesce_into_the_latest_while_the_peer_does_not_read() {
    let mut server = server_with_backlog(100, 200);
    let before = server.pending_transmit_len();
    for i in 0..1000u32 {
        server
            .receive(&client_frame(true, 0, 0x9, &i.to_be_bytes()))
            .unwrap();
    }
    // Every ping is reported; none of their pongs grew the queue.
    assert_eq!(events(&mut server).len(), 1000);
    assert_eq!(server.pending_transmit_len(), before);
    // Once the peer takes the backlog, the latest ping alone is answered.
    let out = transmitted(&mut server);
    assert_eq!(
        out[before..],
        server_frame(true, 0xa, &999u32.to_be_bytes())
    );
    assert!(!server.has_pending_transmit());
}

#[test]
fn rfc6455_5_5_2_within_the_limit_every_ping_gets_its_own_pong() {
    // Autobahn 2.10 and 2.11: ten pings in a row, ten pongs in order.
    let mut server = server_with_backlog(64 << 10, 0);
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10u8 {
        wire.extend_from_slice(&client_frame(true, 0, 0x9, &[i]));
        expected.extend_from_slice(&server_frame(true, 0xa, &[i]));
    }
    server.receive(&wire).unwrap();
    assert_eq!(transmitted(&mut server), expected);
}

#[test]
fn a_held_pong_goes_out_partly_written_backlogs_and_before_the_close_frame() {
    // Released as soon as a partial write brings the queue back within the limit.
    let mut server = server_with_backlog(100, 300);
    server.receive(&client_frame(true, 0, 0x9, b"a")).unwrap();
    let queued = server.pending_transmit_len();
    server.advance_transmit(queued - 100);
    assert_eq!(
        server.pending_transmit_len(),
        100 + 3,
        "the pong joined the queue"
    );
    // A pong still held when this side closes goes out just before the close frame.
    let mut server = server_with_backlog(100, 300);
    server.receive(&client_frame(true, 0, 0x9, b"b")).unwrap();
    server.close(Duration::ZERO, CloseCode::NORMAL, "").unwrap();
    let out = transmitted(&mut server);
    let tail = [
        server_frame(true, 0xa, b"b"),
        server_close(CloseCode::NORMAL),
    ]
    .concat();
    assert!(out.ends_with(&tail), "{:02x?}", &out[out.len() - 8..]);
}

#[test]
fn auto_pong_can_be_turned_off() {
    let mut server = Connection::server(Config {
        auto_pong: false,
        ..Config::default()
    });
    server.receive(&client_frame(true, 0, 0x9, b"x")).unwrap();
    assert_eq!(
        events(&mut server),
        vec![Event::Ping(Bytes::from_static(b"x"))]
    );
    assert!(!server.has_pending_transmit());
}

#[test]
fn rfc6455_5_5_3_unsolicited_pongs_are_reported_not_errors() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&client_frame(true, 0, 0xa, b"beat"))
        .unwrap();
    assert_eq!(
        events(&mut server),
        vec![Event::Pong(Bytes::from_static(b"beat"))]
    );
    assert!(!server.has_pending_transmit());
}

#[test]
fn rfc6455_5_4_control_frames_interleave_with_fragments() {
    let mut server = Connection::server(Config::default());
    let mut wire = client_frame(false, 0, 0x1, b"frag");
    wire.extend(client_frame(true, 0, 0x9, b"p"));
    wire.extend(client_frame(false, 0, 0x0, b"men"));
    wire.extend(client_frame(true, 0, 0xa, b""));
    wire.extend(client_frame(true, 0, 0x0, b"ted"));
    server.receive(&wire).unwrap();
    assert_eq!(
        events(&mut server),
        vec![
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong(Bytes::new()),
            text("fragmented"),
        ]
    );
}

#[test]
fn rfc6455_5_4_continuation_without_a_message_is_an_error() {
    fails_with(
        &client_frame(true, 0, 0x0, b"x"),
        ProtocolViolation::UnexpectedContinuation,
    );
}

#[test]
fn rfc6455_5_4_new_data_frame_inside_a_message_is_an_error() {
    let mut wire = client_frame(false, 0, 0x1, b"a");
    wire.extend(client_frame(true, 0, 0x2, b"b"));
    fails_with(&wire, ProtocolViolation::ExpectedContinuation);
}

#[test]
fn rfc6455_5_1_server_fails_on_unmasked_frame() {
    fails_with(
        &server_frame(true, 0x1, b"hi"),
        ProtocolViolation::UnmaskedClientFrame,
    );
}

#[test]
fn rfc6455_5_1_client_fails_on_masked_frame() {
    let mut client = Connection::client(Config::default());
    assert_eq!(
        client.receive(&client_frame(true, 0, 0x1, b"hi")),
        Err(ProtocolViolation::MaskedServerFrame)
    );
    // The client's close frame is masked: decode it and check the code.
    let out = transmitted(&mut client);
    let (h, n) = FrameHeader::decode(&out).unwrap().unwrap();
    let mut payload = out[n..].to_vec();
    apply_mask(&mut payload, h.mask.unwrap(), 0);
    assert_eq!(
        (h.opcode, payload),
        (OpCode::Close, 1002u16.to_be_bytes().to_vec())
    );
    assert!(
        client.should_close_transport(),
        "a failed client closes at once (7.1.7)"
    );
}

#[test]
fn rfc6455_5_2_reserved_bits_without_extension_fail() {
    fails_with(
        &client_frame(true, RSV1, 0x1, b"x"),
        ProtocolViolation::ReservedBitsSet(RSV1),
    );
}

#[test]
fn rfc6455_5_2_reserved_opcode_fails() {
    fails_with(
        &client_frame(true, 0, 0x3, b""),
        ProtocolViolation::ReservedOpcode(3),
    );
    fails_with(
        &client_frame(true, 0, 0xb, b""),
        ProtocolViolation::ReservedOpcode(0xb),
    );
}

#[test]
fn rfc6455_5_5_control_frame_over_125_bytes_fails() {
    fails_with(
        &client_frame(true, 0, 0x9, &[0; 126]),
        ProtocolViolation::ControlFrameTooLong,
    );
}

#[test]
fn rfc6455_5_5_fragmented_control_frame_fails() {
    fails_with(
        &client_frame(false, 0, 0x9, b"x"),
        ProtocolViolation::FragmentedControlFrame,
    );
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_with_1007() {
    fails_with(
        &client_frame(true, 0, 0x1, &[0xce, 0xba, 0xff]),
        ProtocolViolation::InvalidUtf8,
    );
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_inside_a_frame_before_it_completes() {
    // Autobahn 6.4.3: the bad bytes arrive while the frame is still incomplete.
    let mut server = Connection::server(Config::default());
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(&[0xf4, 0x90, 0x80, 0x80]);
    payload.extend_from_slice(b"edited");
    let wire = client_frame(true, 0, 0x1, &payload);
    let bad_at = wire.len() - b"edited".len() - 2; // just after F4 90
    assert!(server.receive(&wire[..bad_at - 1]).is_ok());
    assert_eq!(
        server.receive(&wire[bad_at - 1..bad_at]),
        Err(ProtocolViolation::InvalidUtf8)
    );
}

#[test]
fn rfc6455_8_1_code_point_split_across_fragments_is_valid() {
    let mut server = Connection::server(Config::default());
    let euro = "€".as_bytes();
    let mut wire = client_frame(false, 0, 0x1, &euro[..1]);
    wire.extend(client_frame(false, 0, 0x0, &euro[1..2]));
    wire.extend(client_frame(true, 0, 0x0, &euro[2..]));
    server.receive(&wire).unwrap();
    assert_eq!(events(&mut server), vec![text("€")]);
}

#[test]
fn rfc6455_8_1_message_ending_inside_a_code_point_fails() {
    let mut wire = client_frame(false, 0, 0x1, b"ok");
    wire.extend(client_frame(true, 0, 0x0, &[0xe2, 0x82]));
    fails_with(&wire, ProtocolViolation::InvalidUtf8);
}

#[test]
fn rfc6455_10_4_frame_over_the_limit_fails_with_1009_from_the_header_alone() {
    let config = Config {
        max_frame_size: 1000,
        ..Config::default()
    };
    let mut server = Connection::server(config);
    // Only the header of a frame claiming 2^62 bytes: nothing is allocated for it.
    let header = [0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(
        server.receive(&header),
        Err(ProtocolViolation::FrameTooLarge(1 << 62))
    );
    assert_eq!(
        transmitted(&mut server),
        server_close(CloseCode::MESSAGE_TOO_BIG)
    );
    assert!(server.memory_usage() < 1024);
}

#[test]
fn rfc6455_10_4_message_over_the_limit_fails_with_1009_from_running_sum() {
    let config = Config {
        max_message_size: 10,
        ..Config::default()
    };
    let mut server = Connection::server(config);
    let mut wire = client_frame(false, 0, 0x2, &[1; 6]);
    server.receive(&wire).unwrap();
    wire = client_frame(true, 0, 0x0, &[1; 5]);
    // Refused at the header: the payload is not needed.
    assert_eq!(
        server.receive(&wire[..6]),
        Err(ProtocolViolation::MessageTooLarge)
    );
    assert_eq!(
        transmitted(&mut server),
        server_close(CloseCode::MESSAGE_TOO_BIG)
    );
}

#[test]
fn message_at_exactly_the_limit_is_accepted() {
    let config = Config {
        max_message_size: 10,
        max_frame_size: 10,
        ..Config::default()
    };
    let mut server = Connection::server(config);
    server
        .receive(&client_frame(true, 0, 0x2, &[1; 10]))
        .unwrap();
    assert_eq!(events(&mut server), vec![binary(&[1; 10])]);
}

#[test]
fn rfc6455_5_5_1_close_is_echoed_and_the_server_closes_tcp_first() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&client_frame(true, 0, 0x8, b"\x03\xe8bye"))
        .unwrap();
    assert_eq!(
        events(&mut server),
        vec![Event::Close(Some(
            CloseFrame::new(CloseCode::NORMAL, "bye").unwrap()
        ))]
    );
    assert!(
        !server.should_close_transport(),
        "the reply is not flushed yet"
    );
    assert_eq!(transmitted(&mut server), server_close(CloseCode::NORMAL));
    assert!(server.should_close_transport());
    assert_eq!(server.send_text("late"), Err(UsageError::Closing));
}

#[test]
fn rfc6455_7_1_7_messages_before_a_violation_can_still_be_answered() {
    // Autobahn 3.2: a message, then a frame with RSV bits, in one read. The echo of the
    // message leaves before the close frame.
    let mut server = Connection::server(Config::default());
    let mut wire = client_frame(true, 0, 0x1, b"hi");
    wire.extend(client_frame(true, 0x20, 0x1, b"bad"));
    assert_eq!(
        server.receive(&wire),
        Err(ProtocolViolation::ReservedBitsSet(0x20))
    );
    assert!(
        !server.should_close_transport(),
        "events are still to be taken"
    );
    let Some(Event::Message(message)) = server.poll_event() else {
        panic!()
    };
    server.send(&message).unwrap();
    assert_eq!(server.poll_event(), None);
    assert_eq!(
        server.send(&message),
        Err(UsageError::Closing),
        "the close is queued now"
    );
    let expected = [
        server_frame(true, 0x1, b"hi"),
        server_close(CloseCode::PROTOCOL_ERROR),
    ]
    .concat();
    assert_eq!(transmitted(&mut server), expected);
    assert!(server.should_close_transport());
}

#[test]
fn rfc6455_5_5_1_reply_to_a_message_before_the_close_goes_first() {
    // Autobahn 7.1.1: a message followed by a close frame in one read.
    let mut server = Connection::server(Config::default());
    let mut wire = client_frame(true, 0, 0x1, b"hi");
    wire.extend(client_frame(true, 0, 0x8, b"\x03\xe8"));
    wire.extend(client_frame(true, 0, 0x9, b"ignored"));
    server.receive(&wire).unwrap();
    let mut replies = 0;
    while let Some(event) = server.poll_event() {
        if let Event::Message(m) = event {
            server.send(&m).unwrap();
            replies += 1;
        }
    }
    assert_eq!(replies, 1);
    let expected = [
        server_frame(true, 0x1, b"hi"),
        server_close(CloseCode::NORMAL),
    ]
    .concat();
    assert_eq!(transmitted(&mut server), expected);
    assert!(server.should_close_transport());
}

#[test]
fn rfc6455_5_5_1_empty_close_is_echoed_empty() {
    let mut server = Connection::server(Config::default());
    server.receive(&client_frame(true, 0, 0x8, b"")).unwrap();
    assert_eq!(events(&mut server), vec![Event::Close(None)]);
    assert_eq!(transmitted(&mut server), [0x88, 0x00]);
}

#[test]
fn rfc6455_5_5_1_bytes_after_the_close_frame_are_ignored() {
    let mut server = Connection::server(Config::default());
    let mut wire = client_frame(true, 0, 0x8, b"\x03\xe8");
    wire.extend(client_frame(true, 0, 0x1, b"after"));
    wire.extend([0xff, 0xff]); // garbage, not even a valid header
    assert_eq!(server.receive(&wire), Ok(()));
    assert_eq!(events(&mut server).len(), 1);
}

#[test]
fn rfc6455_5_5_1_one_byte_close_payload_fails() {
    fails_with(
        &client_frame(true, 0, 0x8, b"\x03"),
        ProtocolViolation::CloseFrameTooShort,
    );
}

#[test]
fn rfc6455_7_4_invalid_close_code_fails() {
    fails_with(
        &client_frame(true, 0, 0x8, &1005u16.to_be_bytes()),
        ProtocolViolation::InvalidCloseCode(1005),
    );
    fails_with(
        &client_frame(true, 0, 0x8, &999u16.to_be_bytes()),
        ProtocolViolation::InvalidCloseCode(999),
    );
}

#[test]
fn rfc6455_5_5_1_close_reason_must_be_utf8() {
    fails_with(
        &client_frame(true, 0, 0x8, b"\x03\xe8\xff"),
        ProtocolViolation::InvalidCloseReason,
    );
}

#[test]
fn rfc6455_7_1_2_locally_started_close_waits_for_the_peer_then_times_out() {
    let mut server = Connection::server(Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    });
    server
        .close(Duration::from_secs(10), CloseCode::GOING_AWAY, "shutdown")
        .unwrap();
    assert_eq!(server.state(), ConnectionState::Closing);
    let out = transmitted(&mut server);
    assert_eq!(&out[..4], &[0x88, 10, 0x03, 0xe9]);
    assert_eq!(server.send_binary(b"x"), Err(UsageError::Closing));
    assert_eq!(server.send_ping(b"x"), Err(UsageError::Closing));
    server.handle_time(Duration::from_secs(11));
    assert_eq!(server.poll_timeout(), Some(Duration::from_secs(12)));
    // Data still arrives while closing.
    server
        .receive(&client_frame(true, 0, 0x1, b"late"))
        .unwrap();
    assert_eq!(events(&mut server), vec![text("late")]);
    assert!(!server.should_close_transport());
    server.handle_time(Duration::from_secs(12));
    assert!(server.should_close_transport(), "close timeout");
}

#[test]
fn rfc6455_7_1_2_a_locally_started_close_arms_its_timeout_at_once() {
    // The peer may never answer, and the caller may sleep until poll_timeout says: the wait
    // for the peer's close frame is bounded from the moment the close is sent, before any
    // handle_time.
    let config = Config {
        close_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    for mut conn in [
        Connection::server(config.clone()),
        Connection::client(config.clone()),
    ] {
        assert_eq!(conn.poll_timeout(), None);
        conn.close(Duration::from_secs(7), CloseCode::NORMAL, "")
            .unwrap();
        assert_eq!(conn.poll_timeout(), Some(Duration::from_secs(10)));
        // A later handle_time or close keeps that deadline rather than arming one of its own.
        conn.handle_time(Duration::from_secs(8));
        conn.close(Duration::from_secs(9), CloseCode::GOING_AWAY, "")
            .unwrap();
        assert_eq!(conn.poll_timeout(), Some(Duration::from_secs(10)));
        assert!(!conn.should_close_transport());
        conn.handle_time(Duration::from_secs(10));
        assert!(conn.should_close_transport(), "{:?}", conn.role());
        assert_eq!(conn.poll_timeout(), None);
    }
}

#[test]
fn rfc6455_7_1_7_close_after_a_failure_arms_the_timer_the_failure_close_lacked() {
    // The engine's own close frame is timed from the next handle_time; a close called before
    // that sends nothing more but starts the wait at its own time.
    let mut server = Connection::server(Config::default());
    assert!(server.receive(&[0x83, 0x80, 0, 0, 0, 0]).is_err()); // reserved opcode
    assert!(!server.can_send());
    assert_eq!(server.poll_timeout(), None);
    server
        .close(Duration::from_secs(1), CloseCode::NORMAL, "")
        .unwrap();
    assert_eq!(server.poll_timeout(), Some(Duration::from_secs(6)));
    assert_eq!(transmitted(&mut server), [0x88, 0x02, 0x03, 0xea]);
}

#[test]
fn rfc6455_7_1_2_peer_reply_completes_a_locally_started_close_without_a_second_frame() {
    let mut server = Connection::server(Config::default());
    server.close(Duration::ZERO, CloseCode::NORMAL, "").unwrap();
    transmitted(&mut server);
    server
        .receive(&client_frame(true, 0, 0x8, b"\x03\xe8"))
        .unwrap();
    assert_eq!(server.state(), ConnectionState::Closed);
    assert!(!server.has_pending_transmit(), "no second close frame");
    assert!(server.should_close_transport());
}

#[test]
fn rfc6455_7_1_1_client_waits_for_the_server_to_close_tcp_then_times_out() {
    let mut client = Connection::client(Config {
        close_timeout: Duration::from_secs(1),
        ..Config::default()
    });
    client.receive(&server_close(CloseCode::NORMAL)).unwrap();
    transmitted(&mut client);
    assert!(
        !client.should_close_transport(),
        "the server closes TCP first"
    );
    client.handle_time(Duration::from_secs(5));
    client.handle_time(Duration::from_secs(6));
    assert!(client.should_close_transport());
    // When the server does close, EOF ends it at once.
    let mut client = Connection::client(Config::default());
    client.receive(&server_close(CloseCode::NORMAL)).unwrap();
    client.receive_eof();
    assert!(client.should_close_transport());
}

#[test]
fn close_with_a_code_that_may_not_be_sent_is_refused() {
    let mut server = Connection::server(Config::default());
    assert_eq!(
        server.close(Duration::ZERO, CloseCode::NO_STATUS, ""),
        Err(UsageError::InvalidCloseCode(1005))
    );
    assert_eq!(
        server.close(Duration::ZERO, CloseCode::NORMAL, &"x".repeat(124)),
        Err(UsageError::CloseReasonTooLong(124))
    );
    assert!(!server.has_pending_transmit());
    assert_eq!(
        server.poll_timeout(),
        None,
        "nothing sent, nothing to wait for"
    );
}

#[test]
fn control_frames_are_kept_until_taken_even_past_partial_writes() {
    let mut server = Connection::server(Config::default());
    server.send_binary(&[5; 100]).unwrap();
    server
        .receive(&client_frame(true, 0, 0x9, b"ping"))
        .unwrap();
    let expected: Vec<u8> = [
        server_frame(true, 0x2, &[5; 100]),
        server_frame(true, 0xa, b"ping"),
    ]
    .concat();
    server
        .send_encoded(&ws_proto::EncodedFrame::new(MessageKind::Binary, &[6; 30]))
        .unwrap();
    let expected = [expected, server_frame(true, 0x2, &[6; 30])].concat();
    // The socket takes 7 bytes at a time.
    let mut written = Vec::new();
    while server.has_pending_transmit() {
        assert_eq!(
            server.pending_transmit_len(),
            expected.len() - written.len()
        );
        let mut slices = [&[][..]; 4];
        let n = server.transmit_slices(&mut slices);
        let flat: Vec<u8> = slices[..n].concat();
        let take = flat.len().min(7);
        written.extend_from_slice(&flat[..take]);
        server.advance_transmit(take);
    }
    assert_eq!(written, expected);
}

#[test]
fn rfc6455_5_3_client_masks_with_a_fresh_key_per_frame() {
    let mut client = Connection::client(Config::default());
    client.send_text("Hello").unwrap();
    client.send_text("Hello").unwrap();
    let out = transmitted(&mut client);
    let (h1, n1) = FrameHeader::decode(&out).unwrap().unwrap();
    let (h2, _) = FrameHeader::decode(&out[n1 + 5..]).unwrap().unwrap();
    assert!(h1.mask.is_some() && h2.mask.is_some());
    assert_ne!(h1.mask, h2.mask);
    let mut server = Connection::server(Config::default());
    server.receive(&out).unwrap();
    assert_eq!(events(&mut server), vec![text("Hello"), text("Hello")]);
}

#[test]
fn rfc6455_5_4_sending_fragments_with_control_frames_between() {
    let mut client = Connection::client(Config::default());
    client
        .send_fragment(MessageKind::Text, "κό".as_bytes(), false)
        .unwrap();
    client.send_ping(b"p").unwrap();
    assert_eq!(client.send_text("x"), Err(UsageError::MessageInProgress));
    assert_eq!(
        client.send_fragment(MessageKind::Binary, b"x", true),
        Err(UsageError::FragmentKindMismatch)
    );
    // A code point split between fragments is fine.
    let sigma = "σ".as_bytes();
    client
        .send_fragment(MessageKind::Text, &sigma[..1], false)
        .unwrap();
    client
        .send_fragment(MessageKind::Text, &sigma[1..], true)
        .unwrap();
    let mut server = Connection::server(Config::default());
    server.receive(&transmitted(&mut client)).unwrap();
    assert_eq!(
        events(&mut server),
        vec![Event::Ping(Bytes::from_static(b"p")), text("κόσ")]
    );
    assert_eq!(
        client.send_fragment(MessageKind::Text, &[0xff], true),
        Err(UsageError::InvalidUtf8)
    );
}

#[test]
fn send_rejects_oversized_control_payloads() {
    let mut server = Connection::server(Config::default());
    assert_eq!(
        server.send_ping(&[0; 126]),
        Err(UsageError::ControlPayloadTooLong(126))
    );
}

#[test]
fn streaming_mode_delivers_chunks_with_whole_code_points() {
    let mut server = Connection::server(Config {
        streaming: true,
        ..Config::default()
    });
    let payload = "aé€".as_bytes(); // 61 c3 a9 e2 82 ac
    let wire = client_frame(true, 0, 0x1, payload);
    let header = wire.len() - payload.len();
    // Cut inside é and inside €.
    server.receive(&wire[..header + 2]).unwrap();
    server.receive(&wire[header + 2..header + 5]).unwrap();
    server.receive(&wire[header + 5..]).unwrap();
    let chunks: Vec<_> = events(&mut server)
        .into_iter()
        .map(|e| match e {
            Event::Chunk(c) => (String::from_utf8(c.data.to_vec()).unwrap(), c.first, c.last),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        chunks,
        vec![
            ("a".into(), true, false),
            ("é".into(), false, false),
            ("€".into(), false, true)
        ]
    );
}

/// A frame whose payload ends a few bytes past a read (a 64 KiB frame read 64 KiB at a time)
/// is completed in the buffer its first piece went into: room for the rest is taken when the
/// bytes already received vouch for it, so the last bytes cost no copy into a larger buffer.
#[test]
fn a_frame_ending_just_past_a_read_is_completed_where_it_began() {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    let wire = client_frame(true, 0, 0x2, &payload);
    let mut server = Connection::server(Config::default());
    server.receive(&wire[..65536]).unwrap();
    assert_eq!(server.memory_usage(), 65536, "room for exactly the frame");
    server.receive(&wire[65536..]).unwrap();
    assert_eq!(events(&mut server), vec![binary(&payload)]);
}

/// Growth that follows the bytes received must not overshoot near the end of a frame: a
/// 1 MiB frame read 64 KiB at a time reaches the middle 28 bytes short of vouching for the
/// rest (its header took them from the first read), and growing by doubling then left a 2 MiB
/// buffer and a copy of the whole message for its last bytes. A rest within a little of what
/// arrived is reserved whole, so the buffer never holds more than the frame.
#[test]
fn a_large_frame_read_in_pieces_never_holds_more_than_its_size() {
    let payload: Vec<u8> = (0..1u32 << 20).map(|i| (i * 13) as u8).collect();
    let wire = client_frame(true, 0, 0x2, &payload);
    let mut server = Connection::server(Config::default());
    let mut delivered = Vec::new();
    for piece in wire.chunks(64 << 10) {
        server.receive(piece).unwrap();
        delivered.extend(events(&mut server));
        if delivered.is_empty() {
            assert!(
                server.memory_usage() <= payload.len(),
                "memory {} for a frame of {}",
                server.memory_usage(),
                payload.len()
            );
        }
    }
    assert_eq!(delivered, vec![binary(&payload)]);
}

/// The allowance is exact: after a first piece of 16 KiB, a frame whose rest exceeds it by
/// 8 KiB gets room for all of it at once, and one byte more gets room for twice the piece only.
#[test]
fn the_rest_of_a_frame_is_reserved_whole_only_within_8_kib_of_what_arrived() {
    let piece = 16 << 10;
    for (len, whole) in [
        (2 * piece + (8 << 10), true),
        (2 * piece + (8 << 10) + 1, false),
    ] {
        let payload = vec![b'a'; len];
        let wire = client_frame(true, 0, 0x2, &payload);
        let header_len = wire.len() - len;
        let mut server = Connection::server(Config::default());
        server.receive(&wire[..header_len + piece]).unwrap();
        let memory = server.memory_usage();
        if whole {
            assert!(memory >= len, "memory {memory} for a frame of {len}");
        } else {
            assert!(memory <= 2 * piece, "memory {memory} after {piece} bytes");
        }
        server.receive(&wire[header_len + piece..]).unwrap();
        assert_eq!(events(&mut server), vec![binary(&payload)]);
    }
}

/// The other side of that rule: a declared length alone reserves nothing. A frame that
/// declares 16 MiB and sends 1,000 bytes leaves the buffer at about twice what arrived.
#[test]
fn a_declared_length_alone_reserves_no_memory() {
    let mut server = Connection::server(Config {
        max_message_size: 64 << 20,
        max_frame_size: 64 << 20,
        ..Config::default()
    });
    let mut header = vec![0x82, 0xff];
    header.extend_from_slice(&(16u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    server.receive(&header).unwrap();
    server.receive(&[0u8; 1000]).unwrap();
    assert!(
        server.memory_usage() <= 2 * 1000,
        "memory {}",
        server.memory_usage()
    );
    for _ in 0..64 {
        server.receive(&[0u8; 1000]).unwrap();
    }
    let received = 65 * 1000;
    assert!(
        server.memory_usage() <= 2 * received,
        "memory {} after {received} bytes",
        server.memory_usage()
    );
}

#[test]
fn streaming_mode_never_buffers_a_whole_large_message() {
    let mut server = Connection::server(Config {
        streaming: true,
        max_message_size: u64::MAX >> 1,
        max_frame_size: u64::MAX >> 1,
        ..Config::default()
    });
    let total: u64 = 1 << 30;
    let mut header = vec![0x82, 0xff];
    header.extend_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]); // a zero mask key: the payload passes unchanged
    server.receive(&header).unwrap();
    let piece = vec![0u8; 1 << 20];
    let mut received = 0u64;
    for _ in 0..1024 {
        server.receive(&piece).unwrap();
        for event in events(&mut server) {
            let Event::Chunk(chunk) = event else { panic!() };
            received += chunk.data.len() as u64;
        }
        assert!(
            server.memory_usage() <= 2 << 20,
            "memory {}",
            server.memory_usage()
        );
    }
    assert_eq!(received, total);
}

#[test]
fn streaming_mode_reports_an_empty_message() {
    let mut server = Connection::server(Config {
        streaming: true,
        ..Config::default()
    });
    server.receive(&client_frame(true, 0, 0x2, b"")).unwrap();
    assert_eq!(
        events(&mut server),
        vec![Event::Chunk(ws_proto::MessageChunk {
            kind: MessageKind::Binary,
            data: Bytes::new(),
            first: true,
            last: true
        })]
    );
}

#[test]
fn encoded_frames_keep_their_place_among_other_frames() {
    let mut server = Connection::server(Config::default());
    let shared = ws_proto::EncodedFrame::new(MessageKind::Text, b"room");
    server.send_text("a").unwrap();
    server.send_encoded(&shared).unwrap();
    server.send_text("b").unwrap();
    let mut client = Connection::client(Config::default());
    client.receive(&transmitted(&mut server)).unwrap();
    assert_eq!(
        events(&mut client),
        vec![text("a"), text("room"), text("b")]
    );
    let mut client = Connection::client(Config::default());
    assert_eq!(client.send_encoded(&shared), Err(UsageError::NotServer));
}

#[test]
fn large_messages_a_server_sends_share_their_bytes_and_keep_their_place() {
    use ws_proto::connection::SHARE_PAYLOAD_FROM;
    let big: Bytes = (0..SHARE_PAYLOAD_FROM * 2).map(|i| i as u8).collect();
    let message = Message::Binary(big.clone());
    let mut server = Connection::server(Config::default());
    server.send_text("before").unwrap();
    server.send(&message).unwrap();
    server.send_text("after").unwrap();
    // The chunks handed to the transport include the message's own allocation, not a copy.
    let chunks: Vec<Bytes> = std::iter::from_fn(|| server.poll_transmit()).collect();
    assert!(chunks.iter().any(|c| c.as_ptr() == big.as_ptr()));
    // On the wire: the same frames a copying send writes (section 5.2's shortest length).
    let wire: Vec<u8> = chunks.concat();
    let mut copying = Connection::server(Config::default());
    copying.send_text("before").unwrap();
    copying.send_binary(&big).unwrap();
    copying.send_text("after").unwrap();
    assert_eq!(wire, transmitted(&mut copying));
    let mut client = Connection::client(Config::default());
    client.receive(&wire).unwrap();
    assert_eq!(
        events(&mut client),
        vec![
            text("before"),
            Event::Message(message.clone()),
            text("after")
        ]
    );
    // A client masks, so it copies; the rules on what may be sent still apply.
    let mut client = Connection::client(Config::default());
    client.send(&message).unwrap();
    let masked = transmitted(&mut client);
    assert!(!masked.windows(64).any(|w| w == &big[..64]));
    server.close(Duration::ZERO, CloseCode::NORMAL, "").unwrap();
    assert_eq!(server.send(&message), Err(UsageError::Closing));
}

#[test]
fn eof_before_close_handshake_closes_abnormally() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&client_frame(false, 0, 0x1, b"partial"))
        .unwrap();
    server.receive_eof();
    assert_eq!(server.state(), ConnectionState::Closed);
    assert!(server.should_close_transport());
    assert!(events(&mut server).is_empty());
}

#[test]
fn idle_connection_gives_its_buffers_back() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&client_frame(true, 0, 0x2, &[1; 5000]))
        .unwrap();
    server.send_binary(&[2; 5000]).unwrap();
    drop(events(&mut server));
    drop(transmitted(&mut server));
    server.shrink_buffers();
    assert_eq!(server.memory_usage(), 0);
    assert!(
        std::mem::size_of::<Connection>() < 512,
        "{}",
        std::mem::size_of::<Connection>()
    );
}

fn run_in_pieces(wire: &[u8], cuts: &[usize], streaming: bool) -> (Vec<Event>, Vec<u8>) {
    let mut server = Connection::server(Config {
        streaming,
        ..Config::default()
    });
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        assert_eq!(server.receive(&wire[start..cut]), Ok(()));
        start = cut;
    }
    (events(&mut server), transmitted(&mut server))
}

/// Joins streaming chunks back into messages so chunked runs compare with whole runs.
fn join_chunks(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for event in events {
        match event {
            Event::Chunk(c) => {
                pending.extend_from_slice(&c.data);
                if c.last {
                    let data = Bytes::from(std::mem::take(&mut pending));
                    out.push(Event::Message(match c.kind {
                        MessageKind::Text => Message::Text(data.try_into().unwrap()),
                        MessageKind::Binary => Message::Binary(data),
                    }));
                }
            }
            other => out.push(other),
        }
    }
    out
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_events(
        wire in arb_client_stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let whole = run_in_pieces(&wire, &[], false);
        prop_assert_eq!(&run_in_pieces(&wire, &points, false), &whole);
        let (streamed, out) = run_in_pieces(&wire, &points, true);
        prop_assert_eq!((join_chunks(streamed), out), whole);
    }

    #[test]
    fn sent_messages_are_received_intact(
        messages in proptest::collection::vec(
            prop_oneof![
                "\\PC{0,200}".prop_map(|s| Message::Text(Bytes::from(s).try_into().unwrap())),
                proptest::collection::vec(any::<u8>(), 0..70_000).prop_map(|v| Message::Binary(v.into())),
            ],
            0..6,
        ),
    ) {
        let mut client = Connection::client(Config::default());
        for m in &messages {
            client.send(m).unwrap();
        }
        let mut server = Connection::server(Config::default());
        server.receive(&transmitted(&mut client)).unwrap();
        let expected: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        prop_assert_eq!(events(&mut server), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        for server_role in [true, false] {
            let mut conn = if server_role {
                Connection::server(Config::default())
            } else {
                Connection::client(Config::default())
            };
            let mut start = 0;
            for &cut in points.iter().chain(std::iter::once(&bytes.len())) {
                let _ = conn.receive(&bytes[start..cut]);
                start = cut;
            }
            prop_assert!(conn.memory_usage() < 3 * bytes.len() + 4096);
            let _ = events(&mut conn);
            let _ = transmitted(&mut conn);
        }
    }
}
