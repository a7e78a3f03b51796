//! The reference chat application: rooms with history and presence, direct messages, typing
//! indicators, identity at the handshake, per-user limits, and a web page, written against the
//! public [`Handler`] API only.
//!
//! The chat's state (users, rooms, history) is shared by all workers behind one mutex held for
//! the length of one message's bookkeeping; delivery itself goes through the server's rooms.

pub mod auth;
pub mod protocol;
pub mod rate;

use crate::handler::{
    CloseInfo, ConnId, Context, Handler, HttpResponse, OpenDecision, OpenRequest,
};
use crate::metrics::Metrics;
use auth::{identify, valid_name, AuthError};
use protocol::{ClientMessage, ErrorCode, RoomMessage, ServerMessage};
use rate::TokenBucket;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use ws_proto::handshake::server::Request;
use ws_proto::{CloseCode, Message};

/// The page served at `/`.
const INDEX_HTML: &str = include_str!("../../web/index.html");

/// The close code for a user over the connection limit.
pub const TOO_MANY_CONNECTIONS: CloseCode = CloseCode(4008);

/// The chat's settings, each declared once: its flag, `WS_*` variable, default, help text and
/// file key (the field's name, or its serde rename) come from the field's attributes.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct ChatConfig {
    /// HS256 secret for tokens: with one, a connection needs a valid token (401 otherwise);
    /// without one, or with an empty one, everyone is a guest.
    #[arg(long, env = "WS_JWT_SECRET", hide_env_values = true)]
    #[arg(value_name = "SECRET")]
    #[serde(default, deserialize_with = "empty_is_none")]
    pub jwt_secret: Option<String>,
    /// Origins allowed to connect, comma-separated (403 for others); none allows all.
    #[arg(long, env = "WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    #[arg(value_name = "ORIGINS")]
    pub allowed_origins: Vec<String>,
    /// Messages kept per room for history.
    #[arg(long, env = "WS_HISTORY_SIZE", default_value_t = 100, value_name = "N")]
    pub history_size: usize,
    /// Open connections per user; more are closed with 4008.
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_USER", default_value_t = 8)]
    #[arg(value_name = "N")]
    pub max_connections_per_user: usize,
    /// Messages a second per user, sustained (a token bucket).
    #[arg(long, env = "WS_RATE_LIMIT", default_value_t = 10.0)]
    #[arg(value_name = "RATE")]
    pub rate_limit: f64,
    /// Messages a user may send in a burst.
    #[arg(long, env = "WS_RATE_BURST", default_value_t = 20.0, value_name = "N")]
    pub rate_burst: f64,
    /// Refused messages after which a user's connection is closed with 1008 (not an option).
    #[arg(skip = 20u32)]
    pub abuse_limit: u32,
    /// The largest client message, in bytes of JSON (`too_large` beyond).
    #[arg(long = "max-chat-message", env = "WS_MAX_CHAT_MESSAGE")]
    #[arg(default_value_t = 8192, value_name = "BYTES")]
    #[serde(rename = "max_chat_message")]
    pub max_message_bytes: usize,
    /// The most rooms that may exist at once (not an option).
    #[arg(skip = 10_000usize)]
    pub max_rooms: usize,
}

impl Default for ChatConfig {
    /// The declared defaults, as `--help` shows them; the environment plays no part.
    fn default() -> Self {
        crate::config::layered::defaults()
    }
}

impl ChatConfig {
    /// Checks the values a type cannot: a positive rate and a burst of at least one message.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        if !(self.rate_limit > 0.0 && self.rate_burst >= 1.0) {
            return Err(crate::config::ConfigError::Invalid("rate_limit"));
        }
        Ok(())
    }
}

/// An empty secret is no secret, wherever it came from.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

#[derive(Debug)]
struct Conn {
    user: String,
    rooms: Vec<String>,
}

#[derive(Debug)]
struct User {
    conns: Vec<ConnId>,
    bucket: TokenBucket,
    strikes: u32,
}

#[derive(Debug, Default)]
struct Room {
    /// Connections in the room, per user.
    members: HashMap<String, usize>,
    history: VecDeque<RoomMessage>,
}

#[derive(Debug, Default)]
struct State {
    conns: HashMap<ConnId, Conn>,
    users: HashMap<String, User>,
    rooms: HashMap<String, Room>,
    next_message_id: u64,
    next_guest: u64,
}

/// The chat application.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    state: Mutex<State>,
    start: Instant,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn send(ctx: &mut Context<'_>, to: ConnId, message: &ServerMessage<'_>) {
    ctx.send(to, Message::Text(message.to_json().into()));
}

fn error(ctx: &mut Context<'_>, code: ErrorCode, message: &str, id: Option<&str>) {
    send(ctx, ctx.id(), &ServerMessage::Error { code, message, id });
}

fn publish(ctx: &mut Context<'_>, room: &str, message: &ServerMessage<'_>) {
    ctx.publish(room, Message::Text(message.to_json().into()));
}

impl Chat {
    /// The chat with its settings.
    pub fn new(config: ChatConfig) -> Chat {
        Chat {
            config,
            state: Mutex::new(State::default()),
            start: Instant::now(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self, ctx: &mut Context<'_>, state: &mut State, user: &str, message: ClientMessage) {
        let id = ctx.id();
        match message {
            ClientMessage::Join { room } => {
                if !valid_name(&room) {
                    return error(
                        ctx,
                        ErrorCode::InvalidMessage,
                        "room names are 1 to 32 letters, digits, - _ .",
                        None,
                    );
                }
                let conn = state.conns.get_mut(&id).expect("registered");
                if conn.rooms.contains(&room) {
                    return;
                }
                if !state.rooms.contains_key(&room) && state.rooms.len() >= self.config.max_rooms {
                    return error(ctx, ErrorCode::Forbidden, "too many rooms", None);
                }
                conn.rooms.push(room.clone());
                ctx.join(id, &room);
                let members = state
                    .rooms
                    .entry(room.clone())
                    .or_default()
                    .members
                    .entry(user.to_string())
                    .or_insert(0);
                *members += 1;
                if *members == 1 {
                    publish(
                        ctx,
                        &room,
                        &ServerMessage::Presence {
                            room: &room,
                            user,
                            event: "joined",
                        },
                    );
                }
            }
            ClientMessage::Leave { room } => {
                let conn = state.conns.get_mut(&id).expect("registered");
                if !conn.rooms.contains(&room) {
                    return error(ctx, ErrorCode::NotFound, "not in that room", None);
                }
                conn.rooms.retain(|r| r != &room);
                ctx.leave(id, &room);
                Chat::left_room(ctx, state, user, &room);
            }
            ClientMessage::Send {
                room,
                text,
                id: client_id,
            } => {
                let in_room = state
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.rooms.contains(&room));
                if !in_room {
                    return error(
                        ctx,
                        ErrorCode::Forbidden,
                        "join the room before sending to it",
                        client_id.as_deref(),
                    );
                }
                state.next_message_id += 1;
                let message = RoomMessage {
                    id: state.next_message_id,
                    room: room.clone(),
                    from: user.to_string(),
                    text,
                    ts: now_ms(),
                };
                publish(ctx, &room, &ServerMessage::Message(&message));
                let ack = ServerMessage::Ack {
                    id: client_id.as_deref(),
                    msg_id: message.id,
                    ts: message.ts,
                };
                send(ctx, id, &ack);
                let history = &mut state.rooms.entry(room).or_default().history;
                history.push_back(message);
                while history.len() > self.config.history_size {
                    history.pop_front();
                }
            }
            ClientMessage::Direct {
                to,
                text,
                id: client_id,
            } => {
                let Some(recipients) = state.users.get(&to).map(|u| u.conns.clone()) else {
                    return error(
                        ctx,
                        ErrorCode::NotFound,
                        "no such user online",
                        client_id.as_deref(),
                    );
                };
                state.next_message_id += 1;
                let (msg_id, ts) = (state.next_message_id, now_ms());
                let direct = ServerMessage::Direct {
                    id: msg_id,
                    from: user,
                    to: &to,
                    text: &text,
                    ts,
                };
                for conn in recipients {
                    send(ctx, conn, &direct);
                }
                send(
                    ctx,
                    id,
                    &ServerMessage::Ack {
                        id: client_id.as_deref(),
                        msg_id,
                        ts,
                    },
                );
            }
            ClientMessage::Typing { room } => {
                let in_room = state
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.rooms.contains(&room));
                if !in_room {
                    return error(ctx, ErrorCode::Forbidden, "join the room first", None);
                }
                publish(ctx, &room, &ServerMessage::Typing { room: &room, user });
            }
            ClientMessage::History { room, limit } => {
                let Some(r) = state.rooms.get(&room) else {
                    return error(ctx, ErrorCode::NotFound, "no such room", None);
                };
                let limit = limit
                    .unwrap_or(self.config.history_size)
                    .min(r.history.len());
                let messages = r.history.iter().skip(r.history.len() - limit).collect();
                send(
                    ctx,
                    id,
                    &ServerMessage::History {
                        room: &room,
                        messages,
                    },
                );
            }
            ClientMessage::Who { room } => {
                let Some(r) = state.rooms.get(&room) else {
                    return error(ctx, ErrorCode::NotFound, "no such room", None);
                };
                let mut users: Vec<&str> = r.members.keys().map(String::as_str).collect();
                users.sort_unstable();
                send(ctx, id, &ServerMessage::Members { room: &room, users });
            }
        }
    }

    /// One of `user`'s connections left `room`: announce it when it was the last.
    fn left_room(ctx: &mut Context<'_>, state: &mut State, user: &str, room: &str) {
        let Some(r) = state.rooms.get_mut(room) else {
            return;
        };
        let Some(count) = r.members.get_mut(user) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            r.members.remove(user);
            publish(
                ctx,
                room,
                &ServerMessage::Presence {
                    room,
                    user,
                    event: "left",
                },
            );
        }
        if r.members.is_empty() && r.history.is_empty() {
            state.rooms.remove(room);
        }
    }
}

impl Handler for Chat {
    fn on_open(&self, ctx: &mut Context<'_>, open: &OpenRequest<'_>) -> OpenDecision {
        if open.request.path() != "/ws" {
            return OpenDecision::reject(404, "the chat is at /ws\n");
        }
        if !self.config.allowed_origins.is_empty() {
            let allowed = open
                .request
                .origin()
                .is_some_and(|o| self.config.allowed_origins.iter().any(|a| a == o));
            if !allowed {
                return OpenDecision::reject(403, "origin not allowed\n");
            }
        }
        let mut state = self.state();
        state.next_guest += 1;
        let secret = self.config.jwt_secret.as_deref().map(str::as_bytes);
        let identity = match identify(open.request, open.upgrade, secret, state.next_guest) {
            Ok(identity) => identity,
            Err(AuthError::Unauthorized) => {
                let mut response = HttpResponse::text(401, "a valid token is required\n");
                response
                    .headers
                    .push(("WWW-Authenticate".into(), "Bearer".into()));
                return OpenDecision::Reject(response);
            }
        };
        let now = self.start.elapsed();
        let user = state
            .users
            .entry(identity.user.clone())
            .or_insert_with(|| User {
                conns: Vec::new(),
                bucket: TokenBucket::new(self.config.rate_burst, now),
                strikes: 0,
            });
        if user.conns.len() >= self.config.max_connections_per_user {
            ctx.close(
                ctx.id(),
                TOO_MANY_CONNECTIONS,
                "too many connections for this user",
            );
        } else {
            user.conns.push(ctx.id());
            state.conns.insert(
                ctx.id(),
                Conn {
                    user: identity.user.clone(),
                    rooms: Vec::new(),
                },
            );
            let welcome = ServerMessage::Welcome {
                user: &identity.user,
                guest: identity.guest,
            };
            send(ctx, ctx.id(), &welcome);
        }
        match identity.via_protocol {
            true => OpenDecision::accept_protocol("bearer"),
            false => OpenDecision::accept(),
        }
    }

    fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
        let mut state = self.state();
        let Some(user) = state.conns.get(&ctx.id()).map(|c| c.user.clone()) else {
            return; // over the connection limit and being closed
        };
        let now = self.start.elapsed();
        let config = &self.config;
        let entry = state
            .users
            .get_mut(&user)
            .expect("a connection's user exists");
        if !entry.bucket.take(config.rate_limit, config.rate_burst, now) {
            entry.strikes += 1;
            if entry.strikes > config.abuse_limit {
                ctx.close(
                    ctx.id(),
                    CloseCode::POLICY_VIOLATION,
                    "rate limit exceeded repeatedly",
                );
            } else {
                error(
                    ctx,
                    ErrorCode::RateLimited,
                    "too many messages; slow down",
                    None,
                );
            }
            return;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return error(
                    ctx,
                    ErrorCode::InvalidMessage,
                    "messages are JSON text frames",
                    None,
                );
            }
        };
        if text.len() > config.max_message_bytes {
            return error(ctx, ErrorCode::TooLarge, "message too large", None);
        }
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(parsed) => self.handle(ctx, &mut state, &user, parsed),
            Err(e) => error(
                ctx,
                ErrorCode::InvalidMessage,
                &format!("invalid message: {e}"),
                None,
            ),
        }
    }

    fn on_close(&self, ctx: &mut Context<'_>, _info: CloseInfo) {
        let mut state = self.state();
        let Some(conn) = state.conns.remove(&ctx.id()) else {
            return;
        };
        for room in &conn.rooms {
            Chat::left_room(ctx, &mut state, &conn.user, room);
        }
        if let Some(user) = state.users.get_mut(&conn.user) {
            user.conns.retain(|c| *c != ctx.id());
            if user.conns.is_empty() {
                state.users.remove(&conn.user);
            }
        }
    }

    fn on_http(&self, request: &Request, metrics: &Metrics) -> HttpResponse {
        match request.path() {
            "/" | "/index.html" => HttpResponse::with_type(
                200,
                "text/html; charset=utf-8",
                INDEX_HTML.as_bytes().to_vec(),
            ),
            "/healthz" => {
                let state = self.state();
                let snapshot = metrics.snapshot();
                let body = serde_json::json!({
                    "status": "ok",
                    "connections": snapshot.connections_open,
                    "users": state.users.len(),
                    "rooms": state.rooms.len(),
                    "uptime_seconds": self.start.elapsed().as_secs(),
                });
                HttpResponse::with_type(200, "application/json", body.to_string().into_bytes())
            }
            "/metrics" => HttpResponse::with_type(
                200,
                "text/plain; version=0.0.4",
                metrics.snapshot().to_prometheus().into_bytes(),
            ),
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}
