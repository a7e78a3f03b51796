//! The recovery's logic without a network: the server's own JSON (as its serializers write
//! it) read through the rooms' table, connection after connection.

use super::reader::Reader;
use super::rooms::Rooms;
use super::*;
use crate::protocol::{with_position, ErrorCode, RoomMessage, ServerMessage};
use std::sync::Arc;

fn at(epoch: &str, offset: u64) -> Position {
    Position {
        epoch: Epoch::parse(epoch).unwrap(),
        offset,
    }
}

/// A room message as the server delivers it.
fn message(room: &str, text: &str, position: Option<Position>) -> String {
    let m = RoomMessage {
        id: 7,
        room: room.into(),
        from: "ann".into(),
        name: None,
        text: text.into(),
        ts: 1,
    };
    with_position(&ServerMessage::Message(&m).to_json(), position.as_ref())
}

fn joined(room: &str, now: Option<&Position>, recovered: Option<bool>, missed: usize) -> String {
    ServerMessage::Joined {
        room,
        epoch: now.map(|p| p.epoch.as_str()),
        offset: now.map(|p| p.offset),
        recovered,
        missed,
        read: None,
    }
    .to_json()
}

/// A client's reading side, in `rooms`.
struct Client {
    rooms: Arc<Rooms>,
    reader: Reader,
}

impl Client {
    fn new(rooms: &[&str]) -> Client {
        let table = Arc::new(Rooms::new(8));
        for room in rooms {
            assert!(table.add(room).unwrap());
        }
        Client {
            reader: Reader::new(table.clone()),
            rooms: table,
        }
    }

    /// Everything the texts give, pending events included, in order.
    fn read(&mut self, texts: &[String]) -> Vec<ChatEvent> {
        let mut events = Vec::new();
        for text in texts {
            events.extend(self.reader.read(text));
            events.extend(self.reader.pending());
        }
        events
    }

    /// The texts of the room messages delivered.
    fn texts(&mut self, texts: &[String]) -> Vec<String> {
        let events = self.read(texts);
        let mut out = Vec::new();
        for event in events {
            match event {
                ChatEvent::Message(m) => out.push(m.text),
                other => panic!("not a message: {other:?}"),
            }
        }
        out
    }

    /// The joins a new connection sends, as the server reads them.
    fn joins(&self) -> Vec<ClientMessage> {
        let mut joins: Vec<ClientMessage> = self
            .rooms
            .joins()
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        joins.sort_by_key(|j| format!("{j:?}"));
        joins
    }
}

fn join(room: &str, since: Option<Position>) -> ClientMessage {
    ClientMessage::Join {
        room: room.into(),
        epoch: since.as_ref().map(|p| p.epoch.as_str().to_string()),
        offset: since.map(|p| p.offset),
    }
}

#[test]
fn a_reconnection_joins_from_the_last_delivered_and_drops_what_comes_again() {
    let mut client = Client::new(&["a", "b"]);
    assert_eq!(client.joins(), [join("a", None), join("b", None)]);
    let events = client.read(&[joined("a", Some(&at("e1", 2)), None, 0)]);
    assert!(
        matches!(&events[..], [ChatEvent::Joined { room, position: Some(p), .. }]
            if room == "a" && *p == at("e1", 2)),
        "{events:?}"
    );
    let live: Vec<String> = (3..=5)
        .map(|n| message("a", &format!("a{n}"), Some(at("e1", n))))
        .collect();
    assert_eq!(client.texts(&live), ["a3", "a4", "a5"]);
    assert_eq!(client.rooms.position("a"), Some(at("e1", 5)));

    // A new connection: "a" from offset 5; "b" never answered, so without a position.
    assert_eq!(
        client.joins(),
        [join("a", Some(at("e1", 5))), join("b", None)]
    );
    // The server replays from an older position (the hook read the table while 4 and 5
    // still waited in the inbox): those come again and are dropped.
    let events = client.read(&[joined("a", Some(&at("e1", 6)), Some(true), 3)]);
    assert!(
        matches!(&events[..], [ChatEvent::Recovered { room, missed: 3 }] if room == "a"),
        "{events:?}"
    );
    let replay: Vec<String> = (4..=7)
        .map(|n| message("a", &format!("a{n}"), Some(at("e1", n))))
        .collect();
    assert_eq!(client.texts(&replay), ["a6", "a7"]);
    assert_eq!(client.reader.duplicates(), 2);
    // The same message twice, live: once.
    let again = message("a", "a7", Some(at("e1", 7)));
    assert_eq!(client.texts(&[again]), Vec::<String>::new());
    assert_eq!(client.reader.duplicates(), 3);
}

#[test]
fn a_lost_history_is_a_gap_and_the_record_goes_on_from_the_rooms_new_position() {
    let mut client = Client::new(&["a"]);
    client.read(&[joined("a", Some(&at("e1", 0)), None, 0)]);
    client.texts(&[message("a", "1", Some(at("e1", 1)))]);
    // The server restarted without its history: a new epoch.
    let events = client.read(&[joined("a", Some(&at("e2", 0)), Some(false), 0)]);
    let expected = Gap {
        room: "a".into(),
        reason: GapReason::Lost,
        last: Some(at("e1", 1)),
        now: Some(at("e2", 0)),
    };
    assert!(
        matches!(&events[..], [ChatEvent::Gap(g)] if *g == expected),
        "{events:?}"
    );
    // Its first message is no duplicate of the old epoch's first, and no further gap.
    assert_eq!(client.texts(&[message("a", "x", Some(at("e2", 1)))]), ["x"]);
    assert_eq!(client.joins(), [join("a", Some(at("e2", 1)))]);

    // Trimmed in the same epoch: a gap too, from the position given.
    let events = client.read(&[joined("a", Some(&at("e2", 90)), Some(false), 0)]);
    assert!(
        matches!(&events[..], [ChatEvent::Gap(Gap { reason: GapReason::Lost, now: Some(n), .. })]
            if *n == at("e2", 90)),
        "{events:?}"
    );
    assert_eq!(
        client.texts(&[message("a", "y", Some(at("e2", 91)))]),
        ["y"]
    );
}

#[test]
fn a_new_epoch_or_a_skipped_offset_while_connected_is_reported_before_its_message() {
    let mut client = Client::new(&["a"]);
    client.read(&[joined("a", Some(&at("e1", 0)), None, 0)]);
    client.texts(&[message("a", "1", Some(at("e1", 1)))]);
    let events = client.read(&[message("a", "new", Some(at("e2", 1)))]);
    match &events[..] {
        [ChatEvent::Gap(gap), ChatEvent::Message(m)] => {
            assert_eq!(gap.reason, GapReason::NewEpoch);
            assert_eq!(
                (gap.last.clone(), gap.now.clone()),
                (Some(at("e1", 1)), Some(at("e2", 1)))
            );
            assert_eq!(m.text, "new");
        }
        other => panic!("{other:?}"),
    }
    let events = client.read(&[message("a", "far", Some(at("e2", 4)))]);
    match &events[..] {
        [ChatEvent::Gap(gap), ChatEvent::Message(m)] => {
            assert_eq!(gap.reason, GapReason::Skipped);
            assert_eq!(m.position, Some(at("e2", 4)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.rooms.position("a"), Some(at("e2", 4)));
    // The largest offset a server could send, twice: a gap, then a duplicate; nothing wraps.
    let last = message("a", "max", Some(at("e2", u64::MAX)));
    assert_eq!(client.read(std::slice::from_ref(&last)).len(), 2);
    assert!(client.read(&[last]).is_empty());
    assert_eq!(client.reader.duplicates(), 1);
}

#[test]
fn an_unreadable_history_is_a_gap_and_the_next_numbered_message_starts_the_record() {
    let mut client = Client::new(&["a"]);
    client.read(&[joined("a", Some(&at("e1", 0)), None, 0)]);
    client.texts(&[message("a", "1", Some(at("e1", 1)))]);
    let events = client.read(&[joined("a", None, Some(false), 0)]);
    assert!(
        matches!(
            &events[..],
            [ChatEvent::Gap(Gap {
                reason: GapReason::Unavailable,
                now: None,
                ..
            })]
        ),
        "{events:?}"
    );
    // Unnumbered messages (the history out of reach) are all delivered; then numbering.
    let texts = [
        message("a", "u", None),
        message("a", "u", None),
        message("a", "n", Some(at("e1", 9))),
        message("a", "n+1", Some(at("e1", 10))),
    ];
    assert_eq!(client.texts(&texts), ["u", "u", "n", "n+1"]);
    assert_eq!(client.joins(), [join("a", Some(at("e1", 10)))]);
}

#[test]
fn rooms_left_or_never_joined_are_dropped_and_the_table_is_bounded() {
    let mut client = Client::new(&["a"]);
    assert!(client
        .read(&[message("b", "x", Some(at("e1", 1)))])
        .is_empty());
    assert!(client
        .read(&[joined("b", Some(&at("e1", 1)), None, 0)])
        .is_empty());
    assert!(client.rooms.remove("a"));
    assert!(client
        .read(&[message("a", "x", Some(at("e1", 1)))])
        .is_empty());
    assert!(client.joins().is_empty());

    let rooms = Rooms::new(2);
    assert!(rooms.add("a").unwrap());
    assert!(rooms.add("b").unwrap());
    assert!(!rooms.add("a").unwrap(), "there already");
    assert!(matches!(
        rooms.add("c"),
        Err(ChatError::TooManyRooms { max: 2 })
    ));
    rooms.remove("a");
    assert!(rooms.add("c").unwrap());
}

#[test]
fn every_server_message_reads_as_its_event_and_an_unknown_one_as_it_came() {
    let mut client = Client::new(&["r"]);
    let texts = [
        ServerMessage::Welcome { user: "ann", guest: true, name: None }.to_json(),
        ServerMessage::Ack { id: Some("c1"), msg_id: 4, ts: 9 }.to_json(),
        ServerMessage::Presence { room: "r", user: "bob", name: Some("Bob"), event: "left" }
            .to_json(),
        ServerMessage::Typing { room: "r", user: "bob", name: None }.to_json(),
        ServerMessage::Members { room: "r", users: vec!["ann", "bob"] }.to_json(),
        ServerMessage::Read { room: "r", user: "bob", offset: 3 }.to_json(),
        ServerMessage::Direct { id: 5, from: "bob", name: None, to: "ann", text: "psst", ts: 2 }
            .to_json(),
        ServerMessage::Error { code: ErrorCode::Forbidden, message: "no", id: Some("c2") }
            .to_json(),
        r#"{"type":"history","room":"r","messages":[{"type":"message","id":1,"room":"r","from":"a","text":"t","ts":1,"offset":1,"epoch":"e1"}]}"#.to_string(),
        r#"{"type":"dance"}"#.to_string(),
    ];
    let events = client.read(&texts);
    assert_eq!(events.len(), texts.len(), "{events:?}");
    assert!(
        matches!(&events[0], ChatEvent::Welcome { user, guest: true, name: None } if user == "ann")
    );
    assert!(matches!(&events[1], ChatEvent::Ack { id: Some(id), msg_id: 4, ts: 9 } if id == "c1"));
    assert!(
        matches!(&events[2], ChatEvent::Presence { joined: false, name: Some(n), .. } if n == "Bob")
    );
    assert!(matches!(&events[3], ChatEvent::Typing { user, .. } if user == "bob"));
    assert!(matches!(&events[4], ChatEvent::Members { users, .. } if users == &["ann", "bob"]));
    assert!(matches!(&events[5], ChatEvent::Read { offset: 3, .. }));
    assert!(matches!(&events[6], ChatEvent::Direct(d) if d.text == "psst" && d.to == "ann"));
    assert!(matches!(
        &events[7],
        ChatEvent::Error {
            code: ErrorCode::Forbidden,
            id: Some(_),
            ..
        }
    ));
    assert!(matches!(&events[8], ChatEvent::History { messages, .. }
        if messages.len() == 1 && messages[0].position == Some(at("e1", 1))));
    assert!(matches!(&events[9], ChatEvent::Unrecognized(t) if t == r#"{"type":"dance"}"#));
    // History moves no record.
    assert_eq!(client.rooms.position("r"), None);
}

#[test]
fn the_clients_requests_are_what_the_server_reads() {
    for (message, json) in [
        (join("a", None), r#"{"type":"join","room":"a"}"#),
        (
            join("a", Some(at("e1", 3))),
            r#"{"type":"join","room":"a","epoch":"e1","offset":3}"#,
        ),
        (
            ClientMessage::Send {
                room: "a".into(),
                text: "hi".into(),
                id: Some("c".into()),
            },
            r#"{"type":"send","room":"a","text":"hi","id":"c"}"#,
        ),
        (
            ClientMessage::History {
                room: "a".into(),
                limit: None,
            },
            r#"{"type":"history","room":"a"}"#,
        ),
    ] {
        assert_eq!(to_json(&message), json);
        assert_eq!(
            serde_json::from_str::<ClientMessage>(json).unwrap(),
            message
        );
    }
}

#[tokio::test]
async fn requests_the_chat_would_refuse_are_refused_before_they_are_sent() {
    assert!(matches!(
        ChatOptions::new("http://127.0.0.1:1/ws"),
        Err(ChatError::Options(_))
    ));
    // Nothing listens there: the client keeps trying while its requests are judged.
    let options = ChatOptions::new("ws://127.0.0.1:1/ws")
        .unwrap()
        .max_rooms(1);
    let client = ChatClient::connect(options);
    assert!(matches!(
        client.join("no spaces").await,
        Err(ChatError::InvalidName)
    ));
    assert!(matches!(
        client.say("a", "hi").await,
        Err(ChatError::NotJoined)
    ));
    client.join("a").await.unwrap();
    client.join("a").await.unwrap();
    assert!(matches!(
        client.join("b").await,
        Err(ChatError::TooManyRooms { max: 1 })
    ));
    let id = client.say("a", "hi").await.unwrap();
    assert_ne!(
        id,
        client.say("a", "hi").await.unwrap(),
        "each message its own id"
    );
    assert_eq!(client.rooms(), ["a"]);
    client.leave("a").await.unwrap();
    assert!(matches!(client.leave("a").await, Err(ChatError::NotJoined)));
    assert!(client.rooms().is_empty());
    assert!(!client.is_connected());
    client.close().await;
}
