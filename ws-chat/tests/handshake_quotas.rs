//! Random sequences of handshakes against the chat, most of them failing, on pretend time:
//! tokens expired, for another audience, badly signed, garbled or missing; origins outside the
//! allowlist; duplicate headers, bodies, oversize heads; clients that vanish mid-handshake or
//! without reading the answer; users over their connection limit; the server's own limits;
//! tokens that expire on open connections; successful clients that join rooms, talk and
//! leave. Whatever happened, once every client has gone and time has passed every deadline,
//! every quota is back to zero: the server's connections and admissions, its gauges, the
//! chat's per-user connection reservations, room memberships.

use jsonwebtoken::{encode, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ws_chat::{Chat, ChatConfig};
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::Config;
use ws_proto::handshake::client::ClientRequest;
use ws_proto::{CloseCode, Message};

const SECRET: &str = "quota secret";
const ORIGIN: &str = "https://chat.example";
/// The wall clock when the server starts, seconds since the Unix epoch.
const EPOCH: u64 = 1_700_000_000;
const USERS: u8 = 3;
const PER_USER: usize = 2;
const ROOMS: u8 = 3;

/// What a connecting client's token is.
#[derive(Debug, Clone, Copy)]
enum Token {
    Valid,
    /// Expires two seconds after the start (plus the leeway of one).
    ShortLived,
    Expired,
    WrongAudience,
    BadSignature,
    Garbage,
    Missing,
}

/// Where a token goes.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    Query,
    Header,
    Protocol,
}

/// A request written by hand.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// Two `Sec-WebSocket-Key` headers.
    DuplicateKey,
    /// A request with a body.
    Body,
    /// A head past the server's limit.
    Oversize,
    /// The first bytes of a valid request, then the client goes.
    CutOff(u16),
    /// The first bytes of a valid request, then nothing.
    Stalled(u16),
    /// A valid request from a client that never reads and goes at once.
    Vanishing,
    /// A valid request, then nothing (not even pongs).
    Silent,
}

#[derive(Debug, Clone)]
enum Op {
    Connect {
        user: u8,
        token: Token,
        carrier: Carrier,
        origin: bool,
    },
    Raw(Raw),
    Join {
        client: u8,
        room: u8,
    },
    Send {
        client: u8,
        room: u8,
    },
    Leave {
        client: u8,
        room: u8,
    },
    Close {
        client: u8,
    },
    Vanish {
        client: u8,
    },
    StopReading {
        client: u8,
    },
    Advance {
        ms: u16,
    },
}

fn token_strategy() -> impl Strategy<Value = Token> {
    prop_oneof![
        3 => Just(Token::Valid),
        1 => Just(Token::ShortLived),
        1 => Just(Token::Expired),
        1 => Just(Token::WrongAudience),
        1 => Just(Token::BadSignature),
        1 => Just(Token::Garbage),
        1 => Just(Token::Missing),
    ]
}

fn raw_strategy() -> impl Strategy<Value = Raw> {
    prop_oneof![
        Just(Raw::DuplicateKey),
        Just(Raw::Body),
        Just(Raw::Oversize),
        any::<u16>().prop_map(Raw::CutOff),
        any::<u16>().prop_map(Raw::Stalled),
        Just(Raw::Vanishing),
        Just(Raw::Silent),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let carrier = prop_oneof![
        Just(Carrier::Query),
        Just(Carrier::Header),
        Just(Carrier::Protocol)
    ];
    prop_oneof![
        6 => (0..USERS, token_strategy(), carrier, prop::bool::weighted(0.85)).prop_map(
            |(user, token, carrier, origin)| Op::Connect { user, token, carrier, origin }
        ),
        3 => raw_strategy().prop_map(Op::Raw),
        3 => (any::<u8>(), 0..ROOMS).prop_map(|(client, room)| Op::Join { client, room }),
        2 => (any::<u8>(), 0..ROOMS).prop_map(|(client, room)| Op::Send { client, room }),
        1 => (any::<u8>(), 0..ROOMS).prop_map(|(client, room)| Op::Leave { client, room }),
        2 => any::<u8>().prop_map(|client| Op::Close { client }),
        1 => any::<u8>().prop_map(|client| Op::Vanish { client }),
        1 => any::<u8>().prop_map(|client| Op::StopReading { client }),
        2 => (0u16..4000).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn jwt(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn token_text(user: u8, token: Token) -> Option<String> {
    let sub = format!("user{user}");
    let claims = |exp: u64, aud: &str| json!({"sub": sub, "aud": aud, "exp": exp});
    Some(match token {
        Token::Valid => jwt(claims(EPOCH + 3600, "chat"), SECRET),
        Token::ShortLived => jwt(claims(EPOCH + 2, "chat"), SECRET),
        Token::Expired => jwt(claims(EPOCH - 60, "chat"), SECRET),
        Token::WrongAudience => jwt(claims(EPOCH + 3600, "other"), SECRET),
        Token::BadSignature => jwt(claims(EPOCH + 3600, "chat"), "not the secret"),
        Token::Garbage => "a.b.c".to_string(),
        Token::Missing => return None,
    })
}

/// A valid upgrade request, with these extra header lines.
fn raw_request(extra: &str) -> String {
    let token = token_text(0, Token::Valid).unwrap();
    format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n{extra}\r\n"
    )
}

struct Run {
    server: TestServer<Chat>,
    wall_ms: Arc<AtomicU64>,
    clients: Vec<ClientId>,
}

impl Run {
    fn new() -> Run {
        let wall_ms = Arc::new(AtomicU64::new(EPOCH * 1000));
        let clock = wall_ms.clone();
        let chat = Chat::with_clock(
            ChatConfig {
                jwt_secret: Some(SECRET.into()),
                jwt_audience: Some("chat".into()),
                jwt_leeway: 1,
                allowed_origins: vec![ORIGIN.into()],
                max_connections_per_user: PER_USER,
                rate_limit: 1000.0,
                rate_burst: 1000.0,
                ..ChatConfig::default()
            },
            move || Duration::from_millis(clock.load(Ordering::Relaxed)),
        );
        let config = Config {
            workers: 2,
            max_connections: 8,
            max_connections_per_ip: 5,
            max_handshake_size: 1024,
            handshake_timeout: Duration::from_secs(2),
            close_timeout: Duration::from_secs(1),
            ping_interval: Duration::from_secs(5),
            pong_timeout: Duration::from_secs(5),
            history_idle_expiry: Duration::from_secs(5),
            ..Config::default()
        };
        Run {
            server: TestServer::new(config, chat),
            wall_ms,
            clients: Vec::new(),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.wall_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
        self.server.advance(by);
    }

    fn client(&self, n: u8) -> Option<ClientId> {
        (!self.clients.is_empty()).then(|| self.clients[n as usize % self.clients.len()])
    }

    fn text(&mut self, n: u8, value: serde_json::Value) {
        if let Some(client) = self.client(n) {
            self.server
                .send(client, Message::Text(value.to_string().into()));
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> ClientId {
        let client = self.server.connect_raw();
        self.server.send_raw(client, bytes);
        client
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect {
                user,
                token,
                carrier,
                origin,
            } => {
                let token = token_text(user, token);
                let target = match (&token, carrier) {
                    (Some(token), Carrier::Query) => format!("/ws?token={token}"),
                    _ => "/ws".to_string(),
                };
                let mut request = ClientRequest::new("chat", &target);
                match (&token, carrier) {
                    (Some(token), Carrier::Header) => {
                        request = request.header("Authorization", &format!("Bearer {token}"))
                    }
                    (Some(token), Carrier::Protocol) => {
                        request = request.protocols(&["bearer", token])
                    }
                    _ => {}
                }
                let origin = if origin {
                    ORIGIN
                } else {
                    "https://evil.example"
                };
                let client = self.server.connect_with(request.origin(origin), None);
                self.clients.push(client);
            }
            Op::Raw(raw) => {
                let valid = raw_request("");
                let client = match raw {
                    Raw::DuplicateKey => self.raw(
                        raw_request("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n").as_bytes(),
                    ),
                    Raw::Body => {
                        let request = raw_request("Content-Length: 5\r\n") + "hello";
                        self.raw(request.as_bytes())
                    }
                    Raw::Oversize => {
                        let pad = format!("X-Pad: {}\r\n", "a".repeat(2000));
                        self.raw(raw_request(&pad).as_bytes())
                    }
                    Raw::CutOff(n) => {
                        let client = self.raw(&valid.as_bytes()[..n as usize % valid.len()]);
                        self.server.shutdown_write(client);
                        client
                    }
                    Raw::Stalled(n) => self.raw(&valid.as_bytes()[..n as usize % valid.len()]),
                    Raw::Vanishing => {
                        let client = self.server.connect_raw();
                        self.server.set_reading(client, false);
                        self.server.send_raw(client, valid.as_bytes());
                        self.server.shutdown_write(client);
                        client
                    }
                    Raw::Silent => self.raw(valid.as_bytes()),
                };
                self.clients.push(client);
            }
            Op::Join { client, room } => {
                self.text(client, json!({"type": "join", "room": format!("r{room}")}))
            }
            Op::Send { client, room } => self.text(
                client,
                json!({"type": "send", "room": format!("r{room}"), "text": "hi"}),
            ),
            Op::Leave { client, room } => {
                self.text(client, json!({"type": "leave", "room": format!("r{room}")}))
            }
            Op::Close { client } => {
                if let Some(client) = self.client(client) {
                    self.server.close(client, CloseCode::NORMAL);
                }
            }
            Op::Vanish { client } => {
                if let Some(client) = self.client(client) {
                    self.server.shutdown_write(client);
                }
            }
            Op::StopReading { client } => {
                if let Some(client) = self.client(client) {
                    self.server.set_reading(client, false);
                }
            }
            Op::Advance { ms } => self.advance(Duration::from_millis(ms.into())),
        }
        // What clients received is of no interest here, only what the server holds.
        for &client in &self.clients {
            while self.server.next_event(client).is_some() {}
        }
    }

    /// What must hold at any time.
    fn check_bounds(&self) {
        let (users, conns) = self.server.handler().connected();
        assert!(users <= USERS as usize, "{users} users");
        assert!(conns <= USERS as usize * PER_USER, "{conns} reservations");
        assert!(self.server.admitted() <= 5);
        assert!(self.server.admitted() <= self.server.connections());
        assert!(self.server.rooms().len() <= ROOMS as usize);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn after_any_handshakes_and_once_everyone_has_gone_every_quota_is_back_to_zero(
        ops in prop::collection::vec(op_strategy(), 1..64)
    ) {
        let mut run = Run::new();
        for op in &ops {
            run.apply(op);
            run.check_bounds();
        }
        for client in run.clients.clone() {
            if run.server.is_open(client) {
                run.server.close(client, CloseCode::NORMAL);
            }
            run.server.shutdown_write(client);
        }
        // Past every deadline: handshakes, answers, pongs, closing handshakes.
        run.advance(Duration::from_secs(60));
        let server = &run.server;
        prop_assert_eq!(server.connections(), 0);
        prop_assert_eq!(server.admitted(), 0);
        prop_assert_eq!(server.metrics().connections_open(), 0);
        prop_assert_eq!(server.metrics().held_bytes(), 0);
        prop_assert_eq!(server.handler().connected(), (0, 0));
        prop_assert_eq!(server.rooms().len(), 0);
        for client in &run.clients {
            prop_assert!(server.server_closed(*client));
        }
    }
}
