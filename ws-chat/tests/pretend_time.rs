//! The chat on pretend time: its workers and clients in memory (`TestServer`), its wall clock
//! moved with the server's time, so tokens expire and rooms idle without waiting.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ws_chat::{Chat, ChatConfig};
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::Config;
use ws_proto::handshake::client::ClientRequest;
use ws_proto::{Event, Message};

const SECRET: &str = "pretend secret";
/// The wall clock when the server starts, seconds since the Unix epoch.
const EPOCH: u64 = 1_700_000_000;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A chat on pretend time, its wall clock `EPOCH` plus the server's time.
struct Chatroom {
    server: TestServer<Chat>,
    wall_ms: Arc<AtomicU64>,
}

impl Chatroom {
    fn new(chat: ChatConfig) -> Chatroom {
        let config = Config {
            workers: 2,
            ..Config::default()
        };
        Chatroom::with_server(chat, config)
    }

    fn with_server(chat: ChatConfig, config: Config) -> Chatroom {
        let wall_ms = Arc::new(AtomicU64::new(EPOCH * 1000));
        let clock = wall_ms.clone();
        let chat = Chat::with_clock(chat, move || {
            Duration::from_millis(clock.load(Ordering::Relaxed))
        });
        Chatroom {
            server: TestServer::new(config, chat),
            wall_ms,
        }
    }

    fn with_tokens() -> Chatroom {
        Chatroom::new(ChatConfig {
            jwt_secret: Some(SECRET.into()),
            ..ChatConfig::default()
        })
    }

    /// Moves the server's time and the wall clock on together.
    fn advance(&mut self, by: Duration) {
        self.wall_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
        self.server.advance(by);
    }

    fn connect(&mut self, target: &str) -> ClientId {
        self.server
            .connect_with(ClientRequest::new("chat", target), None)
    }

    /// A client with `token`, welcomed.
    fn login(&mut self, token: &str) -> ClientId {
        let client = self.connect(&format!("/ws?token={token}"));
        assert_eq!(self.recv(client)["type"], "welcome");
        client
    }

    fn send(&mut self, client: ClientId, value: Value) {
        self.server
            .send(client, Message::Text(value.to_string().into()));
    }

    fn recv(&mut self, client: ClientId) -> Value {
        match self.server.next_message(client) {
            Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
            other => panic!("no text message: {other:?}"),
        }
    }

    /// The close frame's code and reason the client got, if one came.
    fn closed_with(&mut self, client: ClientId) -> Option<(u16, String)> {
        while let Some(event) = self.server.next_event(client) {
            if let Event::Close(frame) = event {
                return frame.map(|f| (f.code.0, f.reason.to_string()));
            }
        }
        None
    }
}

/// A token with these claims, `exp` at `EPOCH + exp` seconds, signed with `secret`.
fn signed(mut claims: Value, exp: u64, secret: &str) -> String {
    claims["exp"] = json!(EPOCH + exp);
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::default(), &claims, &key).unwrap()
}

fn token(sub: &str, exp: u64) -> String {
    signed(json!({ "sub": sub }), exp, SECRET)
}

fn expired() -> (u16, String) {
    (1008, "credentials expired".to_string())
}

#[test]
fn a_token_that_expires_on_an_open_connection_ends_it_with_1008_after_the_leeway() {
    let mut chat = Chatroom::with_tokens();
    let alice = chat.login(&token("alice", 60));
    // exp at 60 s, and the default leeway of 5 s.
    chat.advance(secs(64.9));
    assert!(chat.server.is_open(alice));
    chat.advance(secs(0.2));
    assert_eq!(chat.closed_with(alice), Some(expired()));
}

#[test]
fn a_refresh_in_time_keeps_the_connection_open_past_the_old_exp_until_the_new_one() {
    let mut chat = Chatroom::with_tokens();
    let alice = chat.login(&token("alice", 60));
    chat.advance(secs(50.0));
    chat.send(
        alice,
        json!({"type": "refresh", "token": token("alice", 120)}),
    );
    assert_eq!(
        chat.recv(alice),
        json!({"type": "refreshed", "exp": EPOCH + 120})
    );
    chat.advance(secs(74.9));
    assert!(chat.server.is_open(alice), "past the old exp");
    chat.advance(secs(0.2));
    assert_eq!(chat.closed_with(alice), Some(expired()));
}

#[test]
fn a_refresh_for_another_sub_badly_signed_expired_early_or_for_another_audience_is_refused_and_the_old_deadline_stands(
) {
    let mut chat = Chatroom::new(ChatConfig {
        jwt_secret: Some(SECRET.into()),
        jwt_audience: Some("chat".into()),
        ..ChatConfig::default()
    });
    let ours = |sub: &str, exp| signed(json!({"sub": sub, "aud": "chat"}), exp, SECRET);
    let alice = chat.login(&ours("alice", 60));
    chat.advance(secs(30.0));
    let refused = [
        (ours("bob", 600), "forbidden"),
        (
            signed(json!({"sub": "alice", "aud": "chat"}), 600, "other secret"),
            "unauthorized",
        ),
        // exp plus the leeway are past at 30 s.
        (ours("alice", 24), "unauthorized"),
        (
            signed(
                json!({"sub": "alice", "aud": "chat", "nbf": EPOCH + 100}),
                600,
                SECRET,
            ),
            "unauthorized",
        ),
        (
            signed(json!({"sub": "alice", "aud": "other"}), 600, SECRET),
            "unauthorized",
        ),
        ("not a token".to_string(), "unauthorized"),
    ];
    for (token, code) in refused {
        chat.send(alice, json!({"type": "refresh", "token": token}));
        let reply = chat.recv(alice);
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some(code))
        );
    }
    chat.advance(secs(34.9));
    assert!(chat.server.is_open(alice));
    chat.advance(secs(0.2));
    assert_eq!(chat.closed_with(alice), Some(expired()));
}

#[test]
fn guests_have_no_deadline_and_no_token_to_refresh() {
    let mut chat = Chatroom::new(ChatConfig::default());
    let guest = chat.connect("/ws?name=carol");
    assert_eq!(chat.recv(guest)["guest"], true);
    chat.advance(secs(36_000.0));
    assert!(chat.server.is_open(guest));
    chat.send(
        guest,
        json!({"type": "refresh", "token": token("carol", 100_000)}),
    );
    assert_eq!(chat.recv(guest)["code"], "forbidden");
}

/// The next message of a type, skipping others.
fn recv_type(chat: &mut Chatroom, client: ClientId, kind: &str) -> Value {
    for _ in 0..50 {
        let v = chat.recv(client);
        if v["type"] == kind {
            return v;
        }
    }
    panic!("no {kind} message");
}

#[test]
fn a_tokens_name_is_only_a_display_name_cleaned_and_capped_and_never_an_identity() {
    let mut chat = Chatroom::new(ChatConfig {
        jwt_secret: Some(SECRET.into()),
        max_display_name: 12,
        ..ChatConfig::default()
    });
    let named = |sub: &str, name: Value| signed(json!({"sub": sub, "name": name}), 600, SECRET);
    let alice = chat.connect(&format!(
        "/ws?token={}",
        named("alice", json!("Queen\u{202e} of\nHearts!"))
    ));
    assert_eq!(
        chat.recv(alice),
        json!({"type": "welcome", "user": "alice", "guest": false, "name": "Queen of Hea"})
    );
    // Bob calls himself alice: shown as his name, while he stays bob.
    let bob = chat.connect(&format!("/ws?token={}", named("bob", json!("alice"))));
    assert_eq!(
        chat.recv(bob),
        json!({"type": "welcome", "user": "bob", "guest": false, "name": "alice"})
    );
    // A name that is not a string is no name; the token stands.
    let carol = chat.login(&named("carol", json!(42)));
    chat.send(alice, json!({"type": "join", "room": "lobby"}));
    chat.send(bob, json!({"type": "join", "room": "lobby"}));
    chat.send(carol, json!({"type": "join", "room": "lobby"}));
    assert_eq!(
        recv_type(&mut chat, alice, "presence"),
        json!({"type": "presence", "room": "lobby", "user": "alice", "name": "Queen of Hea", "event": "joined"})
    );
    assert_eq!(
        recv_type(&mut chat, alice, "presence"),
        json!({"type": "presence", "room": "lobby", "user": "bob", "name": "alice", "event": "joined"})
    );
    assert_eq!(
        recv_type(&mut chat, alice, "presence"),
        json!({"type": "presence", "room": "lobby", "user": "carol", "event": "joined"})
    );
    chat.send(bob, json!({"type": "send", "room": "lobby", "text": "hi"}));
    let m = recv_type(&mut chat, alice, "message");
    assert_eq!((&m["from"], &m["name"]), (&json!("bob"), &json!("alice")));
    chat.send(bob, json!({"type": "typing", "room": "lobby"}));
    assert_eq!(
        recv_type(&mut chat, alice, "typing"),
        json!({"type": "typing", "room": "lobby", "user": "bob", "name": "alice"})
    );
    chat.send(alice, json!({"type": "history", "room": "lobby"}));
    let h = recv_type(&mut chat, alice, "history");
    assert_eq!(h["messages"][0]["name"], "alice");
    assert_eq!(h["messages"][0]["from"], "bob");
    // Who is in the room, and who gets a direct message, go by identity alone.
    chat.send(carol, json!({"type": "who", "room": "lobby"}));
    assert_eq!(
        recv_type(&mut chat, carol, "members")["users"],
        json!(["alice", "bob", "carol"])
    );
    chat.send(
        carol,
        json!({"type": "direct", "to": "alice", "text": "psst"}),
    );
    let d = recv_type(&mut chat, alice, "direct");
    assert_eq!(
        (&d["from"], &d["to"], d.get("name")),
        (&json!("carol"), &json!("alice"), None)
    );
    assert_eq!(recv_type(&mut chat, carol, "ack")["msg_id"], d["id"]);
    chat.server.close(bob, ws_proto::CloseCode::NORMAL);
    assert_eq!(
        recv_type(&mut chat, alice, "presence"),
        json!({"type": "presence", "room": "lobby", "user": "bob", "name": "alice", "event": "left"})
    );
    // Bob got no direct message meant for alice.
    assert!(chat
        .server
        .messages(bob)
        .iter()
        .all(|m| !String::from_utf8_lossy(m.as_bytes()).contains("psst")));
}

/// A chat whose empty rooms keep their history for ten minutes.
fn forgetful() -> Chatroom {
    let chat = ChatConfig {
        rate_limit: 1000.0,
        rate_burst: 1000.0,
        ..ChatConfig::default()
    };
    let server = Config {
        workers: 2,
        history_idle_expiry: secs(600.0),
        ..Config::default()
    };
    Chatroom::with_server(chat, server)
}

fn history_of(chat: &mut Chatroom, client: ClientId, room: &str) -> Value {
    chat.send(client, json!({"type": "history", "room": room}));
    let reply = chat.recv(client);
    match reply["type"].as_str() {
        Some("history") => reply["messages"].clone(),
        _ => reply["code"].clone(),
    }
}

#[test]
fn an_empty_room_idle_for_the_history_idle_expiry_loses_its_history_and_one_with_members_keeps_it()
{
    let mut chat = forgetful();
    let alice = chat.connect("/ws?name=alice");
    let bob = chat.connect("/ws?name=bob");
    chat.server.messages(alice);
    chat.server.messages(bob);
    for (client, room) in [(alice, "gone"), (bob, "kept")] {
        chat.send(client, json!({"type": "join", "room": room}));
        chat.send(client, json!({"type": "send", "room": room, "text": room}));
    }
    // Alice stays 15 minutes in silence, then leaves: the room is idle from then on.
    chat.advance(secs(900.0));
    chat.send(alice, json!({"type": "leave", "room": "gone"}));
    chat.server.messages(alice);
    chat.advance(secs(599.0));
    assert_eq!(history_of(&mut chat, alice, "gone")[0]["text"], "gone");
    chat.advance(secs(1.5));
    assert_eq!(history_of(&mut chat, alice, "gone"), "not_found");
    // Bob never left: his room keeps its history however long it is quiet.
    chat.advance(secs(36_000.0));
    chat.server.messages(bob);
    assert_eq!(history_of(&mut chat, bob, "kept")[0]["text"], "kept");
    assert_eq!(chat.server.rooms_with_history(), 1);
}

#[test]
fn a_room_joined_again_after_its_expiry_starts_afresh_and_before_it_keeps_its_history() {
    let mut chat = forgetful();
    let alice = chat.connect("/ws?name=alice");
    for room in ["soon", "late"] {
        chat.send(alice, json!({"type": "join", "room": room}));
        chat.send(alice, json!({"type": "send", "room": room, "text": "old"}));
        chat.send(alice, json!({"type": "leave", "room": room}));
    }
    chat.advance(secs(300.0));
    chat.send(alice, json!({"type": "join", "room": "soon"}));
    chat.server.messages(alice);
    assert_eq!(history_of(&mut chat, alice, "soon")[0]["text"], "old");
    chat.advance(secs(400.0));
    chat.send(alice, json!({"type": "join", "room": "late"}));
    chat.server.messages(alice);
    assert_eq!(history_of(&mut chat, alice, "late"), json!([]));
}

#[test]
fn rooms_with_history_do_not_pile_up_when_rooms_are_used_once() {
    let mut chat = forgetful();
    let alice = chat.connect("/ws?name=alice");
    // A thousand rooms used once each, over ten idle expiries: those of the last expiry or so
    // are all that can be left, and the sweep leaves little more.
    for i in 0..1000 {
        let room = format!("r{i}");
        chat.send(alice, json!({"type": "join", "room": room}));
        chat.send(alice, json!({"type": "send", "room": room, "text": "once"}));
        chat.send(alice, json!({"type": "leave", "room": room}));
        chat.server.messages(alice);
        chat.advance(secs(6.0));
    }
    let left = chat.server.rooms_with_history();
    assert!(left < 250, "{left} rooms still hold history");
    assert!(left >= 100, "the last expiry's rooms keep theirs: {left}");
}

#[test]
fn the_message_rate_refills_on_the_servers_time_and_repeated_abuse_closes_with_1008() {
    let mut chat = Chatroom::new(ChatConfig {
        rate_limit: 1.0,
        rate_burst: 3.0,
        abuse_limit: 2,
        ..ChatConfig::default()
    });
    let guest = chat.connect("/ws?name=dave");
    assert_eq!(chat.recv(guest)["type"], "welcome");
    let say = |id: &str| json!({"type": "send", "room": "r", "text": "hi", "id": id});
    // The burst: a join and two messages, then the bucket is empty.
    chat.send(guest, json!({"type": "join", "room": "r"}));
    chat.send(guest, say("a"));
    assert_eq!(recv_type(&mut chat, guest, "ack")["id"], "a");
    chat.send(guest, say("b"));
    assert_eq!(recv_type(&mut chat, guest, "ack")["id"], "b");
    chat.send(guest, say("c"));
    assert_eq!(recv_type(&mut chat, guest, "error")["code"], "rate_limited");
    // A second of the server's time gives one token back.
    chat.advance(secs(1.0));
    chat.send(guest, say("d"));
    assert_eq!(recv_type(&mut chat, guest, "ack")["id"], "d");
    // The second strike is still an error; the third, past the abuse limit of 2, closes.
    chat.send(guest, say("e"));
    assert_eq!(recv_type(&mut chat, guest, "error")["code"], "rate_limited");
    chat.send(guest, say("f"));
    assert_eq!(
        chat.closed_with(guest),
        Some((1008, "rate limit exceeded repeatedly".to_string()))
    );
}

/// The messages of a type a client received so far, others skipped.
fn all_of_type(chat: &mut Chatroom, client: ClientId, kind: &str) -> Vec<Value> {
    chat.server
        .messages(client)
        .into_iter()
        .filter_map(|m| match m {
            Message::Text(text) => serde_json::from_str::<Value>(&text).ok(),
            Message::Binary(_) => None,
        })
        .filter(|v| v["type"] == kind)
        .collect()
}

#[test]
fn a_send_retried_with_its_client_id_after_a_reconnect_posts_once_within_the_window() {
    let mut chat = Chatroom::new(ChatConfig::default());
    let fred = chat.connect("/ws?name=fred");
    chat.send(fred, json!({"type": "join", "room": "r"}));
    let say = json!({"type": "send", "room": "r", "text": "only once", "id": "m1"});
    let erin = chat.connect("/ws?name=erin");
    chat.send(erin, json!({"type": "join", "room": "r"}));
    chat.send(erin, say.clone());
    let first = recv_type(&mut chat, erin, "ack");
    assert_eq!(all_of_type(&mut chat, fred, "message").len(), 1);
    // The connection is lost before the client saw its ack; it comes back and sends again.
    chat.server.close(erin, ws_proto::CloseCode::NORMAL);
    chat.advance(secs(30.0));
    let erin = chat.connect("/ws?name=erin");
    chat.send(erin, json!({"type": "join", "room": "r"}));
    chat.send(erin, say.clone());
    let again = recv_type(&mut chat, erin, "ack");
    assert_eq!(again["msg_id"], first["msg_id"]);
    assert_eq!(again["id"], "m1");
    assert!(all_of_type(&mut chat, fred, "message").is_empty());
    // Without an id, or past the window, a message is new.
    chat.send(erin, json!({"type": "send", "room": "r", "text": "no id"}));
    assert_eq!(all_of_type(&mut chat, fred, "message").len(), 1);
    chat.advance(secs(120.0));
    chat.send(erin, say);
    let later = recv_type(&mut chat, erin, "ack");
    assert_ne!(later["msg_id"], first["msg_id"]);
    assert_eq!(all_of_type(&mut chat, fred, "message").len(), 1);
}

#[test]
fn a_read_mark_is_shown_to_the_room_once_a_second_at_most_and_given_back_on_a_later_join() {
    let mut chat = Chatroom::new(ChatConfig::default());
    let (ann, bob) = (chat.connect("/ws?name=ann"), chat.connect("/ws?name=bob"));
    for client in [ann, bob] {
        chat.send(client, json!({"type": "join", "room": "r"}));
    }
    for text in ["one", "two", "three"] {
        chat.send(bob, json!({"type": "send", "room": "r", "text": text}));
    }
    chat.server.messages(ann);
    chat.server.messages(bob);
    chat.send(ann, json!({"type": "read", "room": "r", "offset": 2}));
    let events = all_of_type(&mut chat, bob, "read");
    assert_eq!(
        events,
        [json!({"type": "read", "room": "r", "user": "ann", "offset": 2})]
    );
    // Within the second: kept, not shown; after it, shown with the latest.
    chat.send(ann, json!({"type": "read", "room": "r", "offset": 3}));
    assert!(all_of_type(&mut chat, bob, "read").is_empty());
    chat.advance(secs(1.0));
    chat.send(ann, json!({"type": "read", "room": "r", "offset": 3}));
    assert_eq!(all_of_type(&mut chat, bob, "read")[0]["offset"], 3);
    // A mark of a room not joined is refused.
    chat.send(
        ann,
        json!({"type": "read", "room": "elsewhere", "offset": 1}),
    );
    assert_eq!(recv_type(&mut chat, ann, "error")["code"], "forbidden");
    // Ann comes back on another connection: the join tells her where she was.
    let again = chat.connect("/ws?name=ann");
    chat.send(again, json!({"type": "join", "room": "r"}));
    let joined = recv_type(&mut chat, again, "joined");
    assert_eq!(
        (joined["offset"].as_u64(), joined["read"].as_u64()),
        (Some(3), Some(3))
    );
    // Bob never marked anything: no read position.
    let bob2 = chat.connect("/ws?name=bob");
    chat.send(bob2, json!({"type": "join", "room": "r"}));
    assert!(recv_type(&mut chat, bob2, "joined").get("read").is_none());
}
