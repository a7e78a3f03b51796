//! The reference chat application: rooms with history and presence, direct messages, typing
//! indicators, identity at the handshake, per-user limits, and a web page, written against the
//! public [`Handler`] API only.
//!
//! Who is in which room is the server's ([`Context::in_room`], [`Context::room_users`]), and
//! so is each room's history ([`ws_mio_server::history`]: room messages are recorded, each
//! with its offset and epoch, so a client that comes back is sent what it missed); the chat
//! keeps only what is its own: each connection's identity (its [`Handler::Conn`]), each user's
//! connections and rate bucket, in shards (by user) so workers handling different users do not
//! wait on one lock.
//!
//! The modules: `config` (the settings), [`auth`] (tokens and names at the handshake),
//! [`protocol`] (the JSON messages), `requests` (what each client request does), `dedup`
//! (retries taken once), [`rate`] (the per-user message rate), `sharded` (the locked tables);
//! this file is the [`Handler`]: connections opening and closing, messages rendered with
//! their position, and answers from rooms' histories. [`client`] is the other side: a Rust
//! client on tokio that reconnects and recovers its rooms.

pub mod auth;
pub mod client;
mod config;
mod dedup;
mod options;
pub mod protocol;
pub mod rate;
mod requests;
mod sharded;

pub use config::ChatConfig;
pub use options::Options;
pub(crate) use sharded::{Sharded, SHARDS};

use auth::{identify, verify, AuthError, TokenRules};
use dedup::RecentIds;
use protocol::{subprotocol, with_position, ClientMessage, ErrorCode, ServerMessage};
use rate::TokenBucket;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ws_mio_server::history::{Answer, Outcome, Position, Want};
use ws_mio_server::{CloseInfo, ConnId, Context, Handler, HttpResponse, OpenDecision, OpenRequest};
use ws_proto::handshake::server::Request;
use ws_proto::{CloseCode, Message, StatusCode};

/// The page served at `/`.
const INDEX_HTML: &str = include_str!("../web/index.html");

/// The sender of messages published through the admin API.
pub const ADMIN: &str = "admin";

/// The close code for a user over the connection limit.
pub const TOO_MANY_CONNECTIONS: CloseCode = CloseCode(4008);

/// One connection, as the chat knows it.
#[derive(Debug)]
pub struct ChatConn {
    user: Arc<str>,
    /// Its display name, from the token: shown beside the user, never trusted.
    name: Option<Arc<str>>,
    guest: bool,
    /// Until when its token counts (time since the Unix epoch); a guest's never ends.
    expires: Option<Duration>,
    /// Counted among its user's connections (not refused for being one too many).
    admitted: bool,
    /// When it last told each room of a read mark (one a second at most).
    read_events: Vec<(Arc<str>, Duration)>,
}

/// The least time between two read events of one connection in one room.
const READ_EVENT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct User {
    conns: Vec<ConnId>,
    bucket: TokenBucket,
    strikes: u32,
}

/// The chat application.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    /// Users with a connection, by name.
    users: Sharded<HashMap<Arc<str>, User>>,
    /// Client ids of recent messages, so a retry does not post twice.
    recent_ids: RecentIds,
    next_message_id: AtomicU64,
    /// Token checks, with a secret configured.
    token_rules: Option<TokenRules>,
    /// Guest names: a counter hashed with this process's random keys, so nobody can tell
    /// the next one and take it first.
    next_guest: AtomicU64,
    guest_names: RandomState,
    clock: WallClock,
}

/// The wall clock the chat reads tokens' times and stamps messages by: time since the Unix
/// epoch. The system's, or a test's own.
struct WallClock(Box<dyn Fn() -> Duration + Send + Sync>);

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WallClock")
    }
}

fn system_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
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

fn presence(ctx: &mut Context<'_>, room: &str, (user, name): (&str, Option<&str>), event: &str) {
    let message = ServerMessage::Presence {
        room,
        user,
        name,
        event,
    };
    publish(ctx, room, &message);
}

impl Chat {
    /// The chat with its settings, on the system's clock.
    pub fn new(config: ChatConfig) -> Chat {
        Chat::with_clock(config, system_time)
    }

    /// The chat with its settings, on `clock` (time since the Unix epoch): for tests of
    /// tokens' times.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ws_chat::{Chat, ChatConfig};
    /// let chat = Chat::with_clock(ChatConfig::default(), || Duration::from_secs(1_700_000_000));
    /// ```
    pub fn with_clock(
        config: ChatConfig,
        clock: impl Fn() -> Duration + Send + Sync + 'static,
    ) -> Chat {
        Chat {
            clock: WallClock(Box::new(clock)),
            token_rules: config.token_rules(),
            config,
            users: Sharded::new(SHARDS),
            recent_ids: RecentIds::new(SHARDS),
            next_message_id: AtomicU64::new(0),
            next_guest: AtomicU64::new(0),
            guest_names: RandomState::new(),
        }
    }

    fn wall_now(&self) -> Duration {
        (self.clock.0)()
    }

    fn now_ms(&self) -> u64 {
        self.wall_now().as_millis() as u64
    }

    /// A new token for a connection: checked as at the handshake and for the same user; the
    /// connection then lasts until it expires. A refused one leaves the old deadline.
    fn refresh(&self, ctx: &mut Context<'_>, conn: &mut ChatConn, token: &str) {
        let Some(rules) = self.token_rules.as_ref().filter(|_| !conn.guest) else {
            let reason = "a guest has no token to refresh";
            return error(ctx, ErrorCode::Forbidden, reason, None);
        };
        let now = self.wall_now();
        let Ok(token) = verify(token, rules, now) else {
            let reason = "the token is invalid or expired";
            return error(ctx, ErrorCode::Unauthorized, reason, None);
        };
        if *token.user != *conn.user {
            let reason = "the token is for another user";
            return error(ctx, ErrorCode::Forbidden, reason, None);
        }
        conn.expires = Some(token.expires);
        ctx.expire_after(Some(token.expires.saturating_sub(now)));
        let exp = token.exp.max(0.0) as u64;
        send(ctx, ctx.id(), &ServerMessage::Refreshed { exp });
    }

    /// The connection's user has read `room` up to `offset`: the mark is kept by the server,
    /// and the room's members told, at most once a second per connection and room.
    fn mark_read(&self, ctx: &mut Context<'_>, conn: &mut ChatConn, room: &str, offset: u64) {
        if !ctx.in_room(room) {
            return error(ctx, ErrorCode::Forbidden, "join the room first", None);
        }
        ctx.mark_read(room, offset);
        let now = ctx.now();
        match conn.read_events.iter_mut().find(|(r, _)| &**r == room) {
            Some((_, last)) if now.saturating_sub(*last) < READ_EVENT_INTERVAL => return,
            Some((_, last)) => *last = now,
            None => {
                // Bounded by the rooms a connection may be in: those it left go first.
                conn.read_events.retain(|(r, _)| ctx.in_room(r));
                conn.read_events.push((Arc::from(room), now));
            }
        }
        let user = &conn.user;
        publish(ctx, room, &ServerMessage::Read { room, user, offset });
    }

    /// Users with a connection counted against their limit, and those connections: what the
    /// chat holds for connections, for tests that every one is given back.
    pub fn connected(&self) -> (usize, usize) {
        self.users.iter().fold((0, 0), |(users, conns), shard| {
            let n: usize = shard.values().map(|u| u.conns.len()).sum();
            (users + shard.len(), conns + n)
        })
    }

    /// Takes a token from the user's bucket; false (and a strike) when it is empty.
    fn within_rate(&self, ctx: &mut Context<'_>, user: &Arc<str>) -> bool {
        let config = &self.config;
        let now = ctx.now();
        let mut users = self.users.lock(user);
        let Some(entry) = users.get_mut(user) else {
            return false;
        };
        if entry.bucket.take(config.rate_limit, config.rate_burst, now) {
            return true;
        }
        entry.strikes += 1;
        let abusive = entry.strikes > config.abuse_limit;
        drop(users);
        if abusive {
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
        false
    }
}

impl Handler for Chat {
    type Conn = ChatConn;

    fn on_open(&self, open: &OpenRequest<'_>) -> OpenDecision<ChatConn> {
        if open.request.path() != "/ws" {
            return OpenDecision::reject(StatusCode::NOT_FOUND, "the chat is at /ws\n");
        }
        if !self.config.allowed_origins.is_empty() {
            let allowed = open.request.origin().is_some_and(|o| {
                self.config
                    .allowed_origins
                    .iter()
                    .any(|a| a.trim() == o.trim())
            });
            if !allowed {
                return OpenDecision::reject(StatusCode::FORBIDDEN, "origin not allowed\n");
            }
        }
        let guest_name = || {
            let n = self.next_guest.fetch_add(1, Ordering::Relaxed);
            format!("guest-{:016x}", self.guest_names.hash_one(n))
        };
        let rules = self.token_rules.as_ref();
        let now = self.wall_now();
        let identity = match identify(open.request, open.upgrade, rules, now, guest_name) {
            Ok(identity) => identity,
            Err(AuthError::Unauthorized) => {
                let mut response =
                    HttpResponse::text(StatusCode::UNAUTHORIZED, "a valid token is required\n");
                response
                    .headers
                    .push(("WWW-Authenticate".into(), "Bearer".into()));
                return OpenDecision::Reject(response);
            }
        };
        let conn = ChatConn {
            user: Arc::from(identity.user.as_str()),
            name: identity.name.as_deref().map(Arc::from),
            guest: identity.guest,
            expires: identity.expires,
            admitted: false,
            read_events: Vec::new(),
        };
        let decision = OpenDecision::accept(conn).user(&identity.user);
        // The chat's version when offered, else the `bearer` offer as the client spelled it;
        // a client offering neither is served without one (see `subprotocol` for why).
        let offered = open.upgrade.protocols();
        match subprotocol(offered, identity.via_protocol.as_deref()) {
            Some(answer) => decision.protocol(answer),
            None => decision,
        }
    }

    fn on_connect(&self, ctx: &mut Context<'_>, conn: &mut ChatConn) {
        let mut users = self.users.lock(&conn.user);
        let user = users.entry(conn.user.clone()).or_insert_with(|| User {
            conns: Vec::new(),
            bucket: TokenBucket::new(self.config.rate_burst, ctx.now()),
            strikes: 0,
        });
        if user.conns.len() >= self.config.max_connections_per_user {
            drop(users);
            let reason = "too many connections for this user";
            return ctx.close(ctx.id(), TOO_MANY_CONNECTIONS, reason);
        }
        user.conns.push(ctx.id());
        drop(users);
        conn.admitted = true;
        if ctx.spans_instances() {
            // The same limit over every instance: Redis counts them.
            let limit = self.config.max_connections_per_user;
            let reason = "too many connections for this user";
            ctx.limit_user_connections(limit, TOO_MANY_CONNECTIONS, reason);
        }
        if let Some(expires) = conn.expires {
            ctx.expire_after(Some(expires.saturating_sub(self.wall_now())));
        }
        let welcome = ServerMessage::Welcome {
            user: &conn.user,
            guest: conn.guest,
            name: conn.name.as_deref(),
        };
        send(ctx, ctx.id(), &welcome);
    }

    fn on_message(&self, ctx: &mut Context<'_>, conn: &mut ChatConn, message: Message) {
        if !conn.admitted || !self.within_rate(ctx, &conn.user) {
            return; // over the connection limit and being closed, or over the rate
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let reason = "messages are JSON text frames";
                return error(ctx, ErrorCode::InvalidMessage, reason, None);
            }
        };
        if text.len() > self.config.max_message_bytes {
            return error(ctx, ErrorCode::TooLarge, "message too large", None);
        }
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Refresh { token }) => self.refresh(ctx, conn, &token),
            Ok(ClientMessage::Read { room, offset }) => self.mark_read(ctx, conn, &room, offset),
            Ok(parsed) => self.handle(ctx, (&conn.user, conn.name.as_deref()), parsed),
            Err(e) => {
                let message = format!("invalid message: {e}");
                error(ctx, ErrorCode::InvalidMessage, &message, None)
            }
        }
    }

    fn on_close(&self, ctx: &mut Context<'_>, conn: ChatConn, info: CloseInfo) {
        if !conn.admitted {
            return;
        }
        for left in &info.left {
            if left.last_of_user {
                presence(ctx, &left.room, (&conn.user, conn.name.as_deref()), "left");
            }
        }
        let mut users = self.users.lock(&conn.user);
        if let Some(user) = users.get_mut(&conn.user) {
            user.conns.retain(|c| *c != ctx.id());
            if user.conns.is_empty() {
                users.remove(&conn.user);
            }
        }
    }

    /// A room message gets its position as its last fields (see [`with_position`]).
    fn render(&self, _room: &str, position: Option<&Position>, payload: &Message) -> Message {
        match payload {
            Message::Text(object) => Message::Text(with_position(object, position).into()),
            Message::Binary(_) => payload.clone(),
        }
    }

    /// A message from the admin API: a room message from `admin`, numbered and kept as any.
    fn admin_message(&self, room: &str, text: &str) -> Option<Message> {
        if !auth::valid_name(room) || text.len() > self.config.max_message_bytes {
            return None;
        }
        let message = protocol::RoomMessage {
            id: self.next_message_id.fetch_add(1, Ordering::Relaxed) + 1,
            room: room.to_string(),
            from: ADMIN.to_string(),
            name: None,
            text: text.to_string(),
            ts: self.now_ms(),
        };
        Some(Message::Text(
            ServerMessage::Message(&message).to_json().into(),
        ))
    }

    /// A user gone with an instance that died, announced as if it had left.
    fn render_presence(&self, room: &str, user: &str, joined: bool) -> Option<Message> {
        let event = if joined { "joined" } else { "left" };
        let message = ServerMessage::Presence {
            room,
            user,
            name: None,
            event,
        };
        Some(Message::Text(message.to_json().into()))
    }

    fn on_history(&self, ctx: &mut Context<'_>, _conn: &mut ChatConn, answer: &Answer) {
        let room = &answer.read.room;
        let page = &answer.page;
        if answer.read.join {
            let asked = matches!(answer.read.want, Want::Since(_));
            let joined = ServerMessage::Joined {
                room,
                epoch: page.position.as_ref().map(|p| p.epoch.as_str()),
                offset: page.position.as_ref().map(|p| p.offset),
                recovered: asked.then_some(page.outcome == Outcome::Recovered),
                missed: page.messages.len(),
                read: answer.mark,
            };
            return send(ctx, ctx.id(), &joined);
        }
        // A room never used (or whose history expired, with nobody in it) is not found; one
        // with members but no message yet has an empty history.
        if page.position.is_none() && ctx.room_size(room) == 0 {
            return error(ctx, ErrorCode::NotFound, "no such room", None);
        }
        let raw = |m: &Message| match m {
            Message::Text(text) => serde_json::value::RawValue::from_string(text.to_string()).ok(),
            Message::Binary(_) => None,
        };
        let kept: Vec<_> = page.messages.iter().filter_map(raw).collect();
        let messages = kept.iter().map(|m| &**m).collect();
        send(ctx, ctx.id(), &ServerMessage::History { room, messages });
    }

    fn on_http(&self, request: &Request) -> HttpResponse {
        match request.path() {
            "/" | "/index.html" => HttpResponse::with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                INDEX_HTML.as_bytes().to_vec(),
            ),
            "/ws" => HttpResponse::upgrade_required(),
            _ => HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}
