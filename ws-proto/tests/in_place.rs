//! Receiving in place (`Connection::receive_in_place`): the same events, rules and replies as
//! `Connection::receive`, with whole single-frame messages borrowed from the read buffer. Test
//! names give the rule of RFC 6455 they check.

mod common;

use common::{arb_client_stream, binary, client_frame, events, text, transmitted};

use proptest::prelude::*;
use ws_proto::{
    CloseCode, CloseFrame, Config, Connection, ConnectionState, Event, InPlaceEvent,
    ProtocolViolation,
};

/// Every event of one read taken in place, as owned events, and the violation if one stopped it.
fn read_in_place(
    conn: &mut Connection,
    data: &mut [u8],
) -> (Vec<Event>, Option<ProtocolViolation>) {
    let mut out = Vec::new();
    let mut input = conn.receive_in_place(data);
    loop {
        match input.next_event() {
            Ok(Some(InPlaceEvent::Text(t))) => out.push(text(t)),
            Ok(Some(InPlaceEvent::Binary(b))) => out.push(binary(b)),
            Ok(Some(InPlaceEvent::Other(event))) => out.push(event),
            Ok(None) => return (out, None),
            Err(violation) => {
                assert_eq!(input.next_event(), Ok(None), "nothing after a violation");
                return (out, Some(violation));
            }
        }
    }
}

/// What a server makes of `wire` cut at `cuts`: events, violations and bytes to send, taking
/// each read in place or with `receive`.
fn run(
    wire: &[u8],
    cuts: &[usize],
    in_place: bool,
) -> (Vec<Event>, Vec<ProtocolViolation>, Vec<u8>) {
    let mut server = Connection::server(Config::default());
    let (mut all, mut violations) = (Vec::new(), Vec::new());
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        if in_place {
            let mut read = wire[start..cut].to_vec();
            let (events, violation) = read_in_place(&mut server, &mut read);
            all.extend(events);
            violations.extend(violation);
        } else {
            violations.extend(server.receive(&wire[start..cut]).err());
            all.extend(events(&mut server));
        }
        start = cut;
    }
    (all, violations, transmitted(&mut server))
}

fn sorted_cuts(cuts: &[prop::sample::Index], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.sort_unstable();
    points
}

proptest! {
    #[test]
    fn in_place_gives_the_events_and_replies_of_receive_for_any_chunking(
        wire in arb_client_stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let points = sorted_cuts(&cuts, wire.len());
        prop_assert_eq!(run(&wire, &points, true), run(&wire, &points, false));
    }

    #[test]
    fn in_place_refuses_what_receive_refuses(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let points = sorted_cuts(&cuts, bytes.len());
        prop_assert_eq!(run(&bytes, &points, true), run(&bytes, &points, false));
    }
}

#[test]
fn whole_messages_are_borrowed_from_the_read_buffer_not_copied() {
    let mut server = Connection::server(Config::default());
    let mut read = [
        client_frame(true, 0, 0x1, "κόσμε".as_bytes()),
        client_frame(true, 0, 0x2, &[7; 3000]),
    ]
    .concat();
    let range = read.as_ptr_range();
    let mut input = server.receive_in_place(&mut read);
    let Ok(Some(InPlaceEvent::Text(t))) = input.next_event() else {
        panic!("a text message")
    };
    assert_eq!(t, "κόσμε");
    assert!(range.contains(&t.as_ptr()));
    let Ok(Some(InPlaceEvent::Binary(b))) = input.next_event() else {
        panic!("a binary message")
    };
    assert_eq!(b, &[7; 3000][..]);
    assert!(range.contains(&b.as_ptr()));
    assert_eq!(input.next_event(), Ok(None));
    drop(input);
    assert_eq!(server.memory_usage(), 0, "no message buffer was needed");
}

#[test]
fn a_message_cut_off_by_the_end_of_a_read_is_completed_by_the_next() {
    let mut server = Connection::server(Config::default());
    let wire = [
        client_frame(true, 0, 0x2, b"first"),
        client_frame(true, 0, 0x1, b"second"),
    ]
    .concat();
    let (head, tail) = wire.split_at(wire.len() - 3);
    let (events, violation) = read_in_place(&mut server, &mut head.to_vec());
    assert_eq!(events, [binary(b"first")]);
    assert_eq!(violation, None);
    let (events, violation) = read_in_place(&mut server, &mut tail.to_vec());
    assert_eq!((events, violation), (vec![text("second")], None));
}

#[test]
fn rfc6455_8_1_invalid_utf8_in_a_whole_text_frame_fails_with_1007() {
    let mut server = Connection::server(Config::default());
    let mut read = [
        client_frame(true, 0, 0x1, b"ok"),
        client_frame(true, 0, 0x1, b"\xce\xba\xe0\x80\x41"),
        client_frame(true, 0, 0x1, b"after"),
    ]
    .concat();
    let (events, violation) = read_in_place(&mut server, &mut read);
    assert_eq!(events, [text("ok")]);
    assert_eq!(violation, Some(ProtocolViolation::InvalidUtf8));
    assert_eq!(server.state(), ConnectionState::Closed);
    assert_eq!(transmitted(&mut server), b"\x88\x02\x03\xef");
    assert!(server.should_close_transport());
}

#[test]
fn rfc6455_5_1_an_unmasked_client_frame_fails_with_1002() {
    let mut server = Connection::server(Config::default());
    let mut read = b"\x82\x03abc".to_vec();
    let (events, violation) = read_in_place(&mut server, &mut read);
    assert!(events.is_empty());
    assert_eq!(violation, Some(ProtocolViolation::UnmaskedClientFrame));
    assert_eq!(transmitted(&mut server), b"\x88\x02\x03\xea");
}

#[test]
fn rfc6455_5_5_1_input_after_the_peers_close_frame_is_discarded() {
    let mut server = Connection::server(Config::default());
    let mut read = [
        client_frame(true, 0, 0x2, b"before"),
        client_frame(true, 0, 0x8, &[0x03, 0xe8]),
        client_frame(true, 0, 0x2, b"after"),
    ]
    .concat();
    let (events, violation) = read_in_place(&mut server, &mut read);
    assert_eq!(
        events,
        [
            binary(b"before"),
            Event::Close(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: Default::default(),
            })),
        ]
    );
    assert_eq!(violation, None);
    assert_eq!(transmitted(&mut server), b"\x88\x02\x03\xe8");
}

#[test]
fn rfc6455_5_5_2_replies_sent_while_reading_keep_their_place_around_pongs() {
    let mut server = Connection::server(Config::default());
    let mut read = [
        client_frame(true, 0, 0x1, b"one"),
        client_frame(true, 0, 0x9, b"ping"),
        client_frame(true, 0, 0x1, b"two"),
    ]
    .concat();
    let mut input = server.receive_in_place(&mut read);
    while let Some(event) = input.next_event().unwrap() {
        match event {
            InPlaceEvent::Text(t) => input.connection().send_text(t).unwrap(),
            InPlaceEvent::Other(Event::Ping(p)) => assert_eq!(&p[..], b"ping"),
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(input);
    assert_eq!(
        transmitted(&mut server),
        b"\x81\x03one\x8a\x04ping\x81\x03two"
    );
}

#[test]
fn a_reader_dropped_early_leaves_the_rest_as_owned_events() {
    let mut server = Connection::server(Config::default());
    let mut read = [
        client_frame(true, 0, 0x1, b"taken"),
        client_frame(true, 0, 0x1, b"left"),
        client_frame(false, 0, 0x2, b"frag"),
        client_frame(true, 0, 0x0, b"ment"),
    ]
    .concat();
    let mut input = server.receive_in_place(&mut read);
    assert_eq!(input.next_event(), Ok(Some(InPlaceEvent::Text("taken"))));
    drop(input);
    assert_eq!(events(&mut server), [text("left"), binary(b"fragment")]);
}

#[test]
fn events_queued_before_the_read_come_first() {
    let mut server = Connection::server(Config::default());
    server
        .receive(&client_frame(true, 0, 0x1, b"earlier"))
        .unwrap();
    let mut read = client_frame(true, 0, 0x1, b"later");
    let (events, _) = read_in_place(&mut server, &mut read);
    assert_eq!(events, [text("earlier"), text("later")]);
}

#[test]
fn limits_hold_in_place_a_too_large_frame_or_message_fails_with_1009() {
    let frame_limit = Config {
        max_frame_size: 10,
        ..Config::default()
    };
    let message_limit = Config {
        max_message_size: 10,
        ..Config::default()
    };
    for (config, expected) in [
        (frame_limit, ProtocolViolation::FrameTooLarge(11)),
        (message_limit, ProtocolViolation::MessageTooLarge),
    ] {
        let mut server = Connection::server(config);
        let mut read = [
            client_frame(true, 0, 0x2, &[0; 10]),
            client_frame(true, 0, 0x2, &[0; 11]),
        ]
        .concat();
        let (events, violation) = read_in_place(&mut server, &mut read);
        assert_eq!(
            events,
            [binary(&[0; 10])],
            "a message at the limit is taken"
        );
        assert_eq!(violation, Some(expected));
        assert_eq!(transmitted(&mut server), b"\x88\x02\x03\xf1");
    }
}

#[test]
fn into_rest_gives_back_what_was_not_taken_to_be_read_later() {
    let mut server = Connection::server(Config::default());
    let mut read = [
        client_frame(true, 0, 0x1, b"one"),
        client_frame(true, 0, 0x1, b"two"),
    ]
    .concat();
    let mut input = server.receive_in_place(&mut read);
    assert_eq!(input.next_event(), Ok(Some(InPlaceEvent::Text("one"))));
    let rest = input.into_rest();
    assert!(events(&mut server).is_empty(), "the rest was not read");
    server.send_text("between").unwrap();
    let mut input = server.receive_in_place(rest);
    assert_eq!(input.next_event(), Ok(Some(InPlaceEvent::Text("two"))));
    assert_eq!(input.next_event(), Ok(None));
}
