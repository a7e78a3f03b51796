//! The chat application over real sockets: every message type, every error code, the three
//! token carriers and refusals, the subprotocol answered, origins, limits, history and
//! presence.

// The server's real-socket test client.
#[path = "../../ws-mio-server/tests/common/mod.rs"]
mod common;

use common::{http, stop, wait_until, Received, TestClient};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};
use ws_chat::{Chat, ChatConfig};
use ws_mio_server::{Config, Server, ServerHandle};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{CloseCode, Connection, Event, Message};

const SECRET: &str = "test secret";

fn start(chat: ChatConfig) -> (SocketAddr, ServerHandle, Server) {
    common::start(common::test_config(), Chat::new(chat))
}

fn token(sub: &str, expires_in: i64) -> String {
    token_with(json!({ "sub": sub }), expires_in)
}

/// A token with these claims and an `exp` `expires_in` seconds from now.
fn token_with(mut claims: Value, expires_in: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    claims["exp"] = json!(now + expires_in);
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

struct User(TestClient);

impl User {
    fn guest(addr: SocketAddr, name: &str) -> User {
        let mut user = User(TestClient::connect(addr, &format!("/ws?name={name}")));
        let welcome = user.recv();
        assert_eq!(
            welcome,
            json!({"type": "welcome", "user": name, "guest": true})
        );
        user
    }

    fn send(&mut self, value: Value) {
        self.0.send_text(&value.to_string());
    }

    fn recv(&mut self) -> Value {
        serde_json::from_str(&self.0.next_text()).unwrap()
    }

    /// The next message of a type, skipping others (presence, typing) that may come between.
    fn recv_type(&mut self, kind: &str) -> Value {
        for _ in 0..50 {
            let v = self.recv();
            if v["type"] == kind {
                return v;
            }
        }
        panic!("no {kind} message");
    }

    fn join(&mut self, room: &str, me: &str) {
        self.send(json!({"type": "join", "room": room}));
        let p = self.recv_type("presence");
        assert_eq!(
            p,
            json!({"type": "presence", "room": room, "user": me, "event": "joined"})
        );
    }
}

#[test]
fn every_message_type() {
    let (addr, handle, server) = start(ChatConfig::default());
    let mut alice = User::guest(addr, "alice");
    let mut bob = User::guest(addr, "bob");
    alice.join("lobby", "alice");
    bob.join("lobby", "bob");
    assert_eq!(alice.recv_type("presence")["user"], "bob");

    // send: every member gets the message with id, sender, room and server time; the sender an ack.
    alice.send(json!({"type": "send", "room": "lobby", "text": "hello", "id": "c1"}));
    let m = bob.recv_type("message");
    assert_eq!(
        (m["from"].as_str(), m["room"].as_str(), m["text"].as_str()),
        (Some("alice"), Some("lobby"), Some("hello"))
    );
    assert!(m["id"].as_u64().is_some() && m["ts"].as_u64().unwrap() > 1_600_000_000_000);
    // The ack at once; the message, numbered in the room's history, through the room.
    let ack = alice.recv_type("ack");
    assert_eq!((ack["id"].as_str(), &ack["msg_id"]), (Some("c1"), &m["id"]));
    let own = alice.recv_type("message");
    assert_eq!(own["id"], m["id"]);
    assert_eq!(
        (own["offset"].as_u64(), &own["epoch"]),
        (Some(1), &m["epoch"])
    );

    // typing.
    bob.send(json!({"type": "typing", "room": "lobby"}));
    assert_eq!(
        alice.recv_type("typing"),
        json!({"type": "typing", "room": "lobby", "user": "bob"})
    );

    // direct.
    bob.send(json!({"type": "direct", "to": "alice", "text": "psst", "id": "d1"}));
    let d = alice.recv_type("direct");
    assert_eq!(
        (d["from"].as_str(), d["to"].as_str(), d["text"].as_str()),
        (Some("bob"), Some("alice"), Some("psst"))
    );
    assert_eq!(bob.recv_type("ack")["id"], "d1");

    // who and history.
    alice.send(json!({"type": "who", "room": "lobby"}));
    assert_eq!(
        alice.recv_type("members"),
        json!({"type": "members", "room": "lobby", "users": ["alice", "bob"]})
    );
    alice.send(json!({"type": "history", "room": "lobby", "limit": 10}));
    let h = alice.recv_type("history");
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    assert_eq!(h["messages"][0]["text"], "hello");

    // leave: the others see it.
    bob.send(json!({"type": "leave", "room": "lobby"}));
    assert_eq!(
        alice.recv_type("presence"),
        json!({"type": "presence", "room": "lobby", "user": "bob", "event": "left"})
    );
    stop(handle, server);
}

fn expect_error(user: &mut User, code: &str) -> Value {
    let e = user.recv_type("error");
    assert_eq!(e["code"], code, "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    e
}

#[test]
fn every_error_code_and_the_connection_stays() {
    let (addr, handle, server) = start(ChatConfig {
        max_message_bytes: 200,
        ..ChatConfig::default()
    });
    let mut u = User::guest(addr, "carol");
    u.0.send_text("{not json");
    expect_error(&mut u, "invalid_message");
    u.send(json!({"type": "dance"}));
    expect_error(&mut u, "invalid_message");
    u.0.send(&Message::Binary(vec![1, 2].into()));
    expect_error(&mut u, "invalid_message");
    u.send(json!({"type": "direct", "to": "nobody", "text": "x", "id": "q"}));
    assert_eq!(expect_error(&mut u, "not_found")["id"], "q");
    u.send(json!({"type": "history", "room": "empty"}));
    expect_error(&mut u, "not_found");
    u.send(json!({"type": "send", "room": "lobby", "text": "x", "id": "s"}));
    assert_eq!(expect_error(&mut u, "forbidden")["id"], "s");
    u.send(json!({"type": "send", "room": "lobby", "text": "x".repeat(300)}));
    expect_error(&mut u, "too_large");
    // Still connected and served.
    u.join("lobby", "carol");
    stop(handle, server);
}

#[test]
fn rate_limit_then_close_for_repeated_abuse() {
    let (addr, handle, server) = start(ChatConfig {
        rate_limit: 1.0,
        rate_burst: 3.0,
        abuse_limit: 5,
        ..ChatConfig::default()
    });
    let mut u = User::guest(addr, "spammer");
    for _ in 0..3 {
        u.send(json!({"type": "who", "room": "nowhere"}));
        expect_error(&mut u, "not_found");
    }
    u.send(json!({"type": "who", "room": "nowhere"}));
    expect_error(&mut u, "rate_limited");
    for _ in 0..10 {
        u.send(json!({"type": "who", "room": "nowhere"}));
    }
    loop {
        match u.0.next() {
            Received::Event(Event::Message(_)) => {}
            Received::Event(Event::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::POLICY_VIOLATION);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    stop(handle, server);
}

#[test]
fn per_user_connection_limit_closes_with_4008() {
    let (addr, handle, server) = start(ChatConfig {
        max_connections_per_user: 2,
        ..ChatConfig::default()
    });
    let _a = User::guest(addr, "dave");
    let _b = User::guest(addr, "dave");
    let mut third = TestClient::connect(addr, "/ws?name=dave");
    third.expect_close(CloseCode(4008));
    let _other_user = User::guest(addr, "erin");
    stop(handle, server);
}

fn handshake_status(addr: SocketAddr, target: &str, extra: &str) -> String {
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 2048];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn tokens_from_all_three_carriers_and_refusals() {
    let (addr, handle, server) = start(ChatConfig {
        jwt_secret: Some(SECRET.into()),
        ..ChatConfig::default()
    });
    let good = token("frank", 300);
    // Query parameter.
    let mut q = TestClient::connect(addr, &format!("/ws?token={good}"));
    assert_eq!(
        serde_json::from_str::<Value>(&q.next_text()).unwrap(),
        json!({"type": "welcome", "user": "frank", "guest": false})
    );
    // Authorization header.
    let answer = handshake_status(addr, "/ws", &format!("Authorization: Bearer {good}\r\n"));
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    // Sec-WebSocket-Protocol offer, answered with "bearer".
    let answer = handshake_status(
        addr,
        "/ws",
        &format!("Sec-WebSocket-Protocol: bearer, {good}\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    assert!(
        answer.contains("Sec-WebSocket-Protocol: bearer\r\n"),
        "{answer}"
    );
    // Refusals: none, a bad signature, an expired token, a guest name.
    for extra in [
        String::new(),
        format!("Authorization: Bearer {}x\r\n", good),
        format!("Authorization: Bearer {}\r\n", token("frank", -10)),
    ] {
        let answer = handshake_status(addr, "/ws", &extra);
        assert!(answer.starts_with("HTTP/1.1 401 "), "{extra}: {answer}");
    }
    let answer = handshake_status(addr, "/ws?name=guest", "");
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    stop(handle, server);
}

/// The user a token makes, or the status that refused it.
fn welcomed_as(addr: SocketAddr, token: &str) -> Result<String, String> {
    let answer = handshake_status(addr, "/ws", &format!("Authorization: Bearer {token}\r\n"));
    if !answer.starts_with("HTTP/1.1 101 ") {
        return Err(answer.lines().next().unwrap_or("").to_string());
    }
    let mut client = TestClient::connect(addr, &format!("/ws?token={token}"));
    let welcome: Value = serde_json::from_str(&client.next_text()).unwrap();
    Ok(welcome["user"].as_str().unwrap().to_string())
}

#[test]
fn rfc7519_identity_is_sub_nbf_aud_and_iss_are_checked() {
    let (addr, handle, server) = start(ChatConfig {
        jwt_secret: Some(SECRET.into()),
        jwt_audience: Some("chat".into()),
        jwt_issuer: Some("https://auth.example".into()),
        ..ChatConfig::default()
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |extra: Value| {
        let mut c = json!({"sub": "frank", "aud": "chat", "iss": "https://auth.example"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // `name` is a display name: it cannot take someone else's identity.
    let t = token_with(claims(json!({"name": "alice"})), 300);
    assert_eq!(welcomed_as(addr, &t), Ok("frank".to_string()));
    // Not yet valid (past the 5 s leeway), a wrong audience or issuer: 401.
    for extra in [
        json!({"nbf": now + 60}),
        json!({"aud": "other"}),
        json!({"iss": "https://evil.example"}),
    ] {
        let t = token_with(claims(extra.clone()), 300);
        let refused = welcomed_as(addr, &t).unwrap_err();
        assert!(refused.starts_with("HTTP/1.1 401 "), "{extra}: {refused}");
    }
    // Within the leeway, a token just expired or not quite valid yet is taken.
    let t = token_with(claims(json!({"nbf": now + 2})), -2);
    assert_eq!(welcomed_as(addr, &t), Ok("frank".to_string()));
    stop(handle, server);
}

#[test]
fn a_capitalised_bearer_offer_is_answered_as_offered() {
    let (addr, handle, server) = start(ChatConfig {
        jwt_secret: Some(SECRET.into()),
        ..ChatConfig::default()
    });
    let good = token("frank", 300);
    let offer = format!("Sec-WebSocket-Protocol: Bearer, {good}\r\n");
    let answer = handshake_status(addr, "/ws", &offer);
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    assert!(
        answer.contains("Sec-WebSocket-Protocol: Bearer\r\n"),
        "{answer}"
    );
    stop(handle, server);
}

/// Connects to `target` offering these subprotocols through ws-proto's client (which fails a
/// response that names one not offered): the subprotocol answered, and the first message.
fn connect_offering(addr: SocketAddr, target: &str, protocols: &[&str]) -> (Option<String>, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    let request = ClientRequest::new(&addr.to_string(), target).protocols(protocols);
    let (mut handshake, bytes) =
        ClientHandshake::with_random_key(&request, HandshakeLimits::default());
    stream.write_all(&bytes).unwrap();
    let mut conn = Connection::client(ws_proto::Config::default());
    let mut answered = None;
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = stream.read(&mut buf).expect("the server's answer");
        assert!(n > 0, "the server closed the connection");
        let frames = match &answered {
            Some(_) => &buf[..n],
            None => match handshake.receive(&buf[..n]).expect("a valid 101 response") {
                Some((response, used)) => {
                    answered = Some(response.protocol().map(str::to_string));
                    &buf[used..n]
                }
                None => continue,
            },
        };
        conn.receive(frames).unwrap();
        while let Some(event) = conn.poll_event() {
            if let Event::Message(Message::Text(text)) = event {
                return (answered.flatten(), serde_json::from_str(&text).unwrap());
            }
        }
    }
}

#[test]
fn the_chat_version_is_answered_when_offered_and_others_are_still_served() {
    let (addr, handle, server) = start(ChatConfig::default());
    let welcome = |user: &str| json!({"type": "welcome", "user": user, "guest": true});
    // The version alone, or among others in any place: answered with it.
    let (answer, first) = connect_offering(addr, "/ws?name=vera", &["chat.v1"]);
    assert_eq!(
        (answer.as_deref(), first),
        (Some("chat.v1"), welcome("vera"))
    );
    let (answer, first) = connect_offering(addr, "/ws?name=walt", &["chat.v2", "chat.v1", "x"]);
    assert_eq!(
        (answer.as_deref(), first),
        (Some("chat.v1"), welcome("walt"))
    );
    // Only versions or protocols the chat does not know: no subprotocol, served all the same.
    let (answer, first) = connect_offering(addr, "/ws?name=xena", &["chat.v2", "mqtt"]);
    assert_eq!((answer, first), (None, welcome("xena")));
    // The name is compared as written.
    let (answer, first) = connect_offering(addr, "/ws?name=yann", &["CHAT.V1"]);
    assert_eq!((answer, first), (None, welcome("yann")));
    // No offer at all: an unversioned client, served as before.
    let (answer, first) = connect_offering(addr, "/ws?name=zoe", &[]);
    assert_eq!((answer, first), (None, welcome("zoe")));
    stop(handle, server);
}

#[test]
fn with_a_token_offered_after_bearer_the_answer_is_the_version_when_offered() {
    let (addr, handle, server) = start(ChatConfig {
        jwt_secret: Some(SECRET.into()),
        ..ChatConfig::default()
    });
    let good = token("frank", 300);
    let welcome = json!({"type": "welcome", "user": "frank", "guest": false});
    for offer in [
        ["chat.v1", "bearer", good.as_str()],
        ["bearer", good.as_str(), "chat.v1"],
    ] {
        let (answer, first) = connect_offering(addr, "/ws", &offer);
        assert_eq!(
            (answer.as_deref(), &first),
            (Some("chat.v1"), &welcome),
            "{offer:?}"
        );
    }
    // Without the version, `bearer` as before (browsers fail an answer that names nothing
    // they offered).
    let (answer, first) = connect_offering(addr, "/ws", &["chat.v2", "bearer", &good]);
    assert_eq!(
        (answer.as_deref(), first),
        (Some("bearer"), welcome.clone())
    );
    // A token in the query and unknown offers: no subprotocol.
    let (answer, first) = connect_offering(addr, &format!("/ws?token={good}"), &["chat.v2"]);
    assert_eq!((answer, first), (None, welcome));
    // The version without a token is no way around the secret.
    let answer = handshake_status(addr, "/ws", "Sec-WebSocket-Protocol: chat.v1\r\n");
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    stop(handle, server);
}

#[test]
fn guests_get_unguessable_distinct_names() {
    let (addr, handle, server) = start(ChatConfig::default());
    let name = |client: &mut TestClient| {
        let welcome: Value = serde_json::from_str(&client.next_text()).unwrap();
        welcome["user"].as_str().unwrap().to_string()
    };
    let mut a = TestClient::connect(addr, "/ws");
    let mut b = TestClient::connect(addr, "/ws");
    let (a, b) = (name(&mut a), name(&mut b));
    assert_ne!(a, b);
    for n in [&a, &b] {
        let hex = n.strip_prefix("guest-").unwrap_or_else(|| panic!("{n}"));
        assert!(
            hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{n}"
        );
    }
    // Not a counter: the next name is not the last one plus one.
    let parse = |n: &str| u64::from_str_radix(&n[6..], 16).unwrap();
    assert_ne!(parse(&b), parse(&a).wrapping_add(1));
    stop(handle, server);
}

#[test]
fn origins_outside_the_allowlist_get_403() {
    let (addr, handle, server) = start(ChatConfig {
        // Entries as a list in a variable often come: with spaces.
        allowed_origins: vec![" https://chat.example".into()],
        ..ChatConfig::default()
    });
    let answer = handshake_status(addr, "/ws", "Origin: https://evil.example\r\n");
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    let answer = handshake_status(addr, "/ws", "Origin: https://chat.example\r\n");
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    stop(handle, server);
}

#[test]
fn history_after_a_rejoin() {
    let config = Config {
        history_size: 3,
        ..common::test_config()
    };
    let (addr, handle, server) = common::start(config, Chat::new(ChatConfig::default()));
    let mut g = User::guest(addr, "gina");
    g.join("news", "gina");
    for i in 0..5 {
        g.send(json!({"type": "send", "room": "news", "text": format!("n{i}")}));
        g.recv_type("ack");
    }
    drop(g);
    // The server learns of the dropped connection when it reads its end; until then gina is
    // still in the room, and joining again would announce nothing.
    wait_until("the first connection is gone", || {
        handle.metrics().snapshot().connections_open == 0
    });
    let mut g = User::guest(addr, "gina");
    g.join("news", "gina");
    g.send(json!({"type": "history", "room": "news"}));
    let texts: Vec<String> = g.recv_type("history")["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["n2", "n3", "n4"], "the last three, oldest first");
    stop(handle, server);
}

#[test]
fn presence_after_a_client_is_killed_without_a_close_frame() {
    let (addr, handle, server) = start(ChatConfig::default());
    let mut hank = User::guest(addr, "hank");
    hank.join("r", "hank");
    let mut ivy = User::guest(addr, "ivy");
    ivy.join("r", "ivy");
    // Two connections of one user: the leave is announced only when the last one goes.
    let mut ivy2 = User::guest(addr, "ivy");
    ivy2.send(json!({"type": "join", "room": "r"}));
    ivy2.send(json!({"type": "who", "room": "r"}));
    assert_eq!(ivy2.recv_type("members")["users"], json!(["hank", "ivy"]));
    let _ = ivy.0.stream.shutdown(std::net::Shutdown::Both);
    drop(ivy);
    hank.send(json!({"type": "who", "room": "r"}));
    assert_eq!(hank.recv_type("members")["users"], json!(["hank", "ivy"]));
    let _ = ivy2.0.stream.shutdown(std::net::Shutdown::Both);
    drop(ivy2);
    assert_eq!(
        hank.recv_type("presence"),
        json!({"type": "presence", "room": "r", "user": "ivy", "event": "left"})
    );
    stop(handle, server);
}

#[test]
fn the_page_on_the_public_port_health_and_metrics_on_the_admin_port() {
    let (addr, handle, server) = start(ChatConfig::default());
    let _u = User::guest(addr, "jo");
    let page = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        page.starts_with("HTTP/1.1 200 ") && page.contains("text/html") && page.contains("<html"),
        "{page}"
    );
    for path in ["/healthz", "/metrics", "/readyz"] {
        let public = http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(
            public.starts_with("HTTP/1.1 404 "),
            "public {path}: {public}"
        );
    }
    // A plain request for the WebSocket endpoint is told to upgrade (RFC 6455 section 4.4).
    let plain = http(addr, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        plain.starts_with("HTTP/1.1 426 ") && plain.contains("Upgrade: websocket\r\n"),
        "{plain}"
    );
    let admin = handle
        .admin_addr()
        .expect("the test config has an admin listener");
    let health = http(admin, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let body: Value = serde_json::from_str(health.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    // The server's own report: the guest is open (admin connections are not counted).
    assert_eq!(
        (body["status"].as_str(), body["connections"].as_u64()),
        (Some("ok"), Some(1))
    );
    let metrics = http(admin, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(metrics.contains("ws_handshakes_ok_total 1\n"), "{metrics}");
    stop(handle, server);
}
