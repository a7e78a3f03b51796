//! The server's logic on pretend time: workers and clients in memory ([`TestServer`]), time
//! moved by the test. Nothing here sleeps or opens a socket.

use std::time::Duration;
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{
    Config, Context, Echo, Handler, OpenDecision, OpenRequest, SlowConsumerPolicy,
};
use ws_proto::{CloseCode, Message};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn config() -> Config {
    Config {
        workers: 2,
        ..Config::default()
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

/// Echoes, except that `close` makes the server start the closing handshake with 4000.
struct Closer;

impl Handler for Closer {
    type Conn = ();
    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }
    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        match message.as_bytes() {
            b"close" => ctx.close(ctx.id(), CloseCode(4000), "asked to"),
            _ => ctx.reply(message),
        }
    }
}

/// Joins the room of the request's path (`/lobby`), publishes every message to it.
struct Rooms;

impl Handler for Rooms {
    type Conn = String;
    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<String> {
        OpenDecision::accept(request.request.path().trim_start_matches('/').to_string())
    }
    fn on_connect(&self, ctx: &mut Context<'_>, room: &mut String) {
        ctx.join(room);
    }
    fn on_message(&self, ctx: &mut Context<'_>, room: &mut String, message: Message) {
        ctx.publish(room, message);
    }
}

#[test]
fn rfc6455_5_5_2_a_client_that_answers_pings_stays_and_a_silent_one_is_dropped_at_the_pong_timeout()
{
    let mut cfg = config();
    cfg.ping_interval = secs(30.0);
    cfg.pong_timeout = secs(10.0);
    let mut server = TestServer::new(cfg, Echo);
    let lively = server.connect("/");
    let silent = server.connect("/");
    server.set_reading(silent, false);
    // The first ping goes out at 30 s; the silent client's pong is due by 40 s.
    server.advance(secs(39.9));
    assert!(!server.server_closed(silent));
    server.advance(secs(0.2));
    assert!(server.server_closed(silent), "dropped at the pong timeout");
    assert_eq!(server.snapshot().heartbeat_timeouts_total, 1);
    assert_eq!(server.snapshot().closes_by_code[4], 1, "counted as 1006");
    // The lively one answers every ping, for ten minutes.
    server.advance(secs(600.0));
    assert!(server.is_open(lively));
    server.send(lively, text("still here"));
    assert_eq!(server.next_message(lively), Some(text("still here")));
    assert_eq!(server.connections(), 1);
}

#[test]
fn rfc6455_7_1_1_a_server_initiated_close_ends_at_the_close_timeout_when_the_peer_never_answers() {
    let mut cfg = config();
    cfg.close_timeout = secs(5.0);
    cfg.ping_interval = Duration::ZERO;
    let mut server = TestServer::new(cfg, Closer);
    // A client that stops reading never sees the close frame, so never answers it.
    let client = server.connect("/");
    server.set_reading(client, false);
    server.send(client, text("close"));
    let answered = server.connect("/");
    server.send(answered, text("close"));
    assert_eq!(server.close_code(answered), Some(CloseCode(4000)));
    // `answered`'s engine replied to the close by itself: that connection is done at once.
    assert!(server.transport_closed(answered));
    assert_eq!(server.connections(), 1);
    server.advance(secs(4.9));
    assert_eq!(server.connections(), 1, "still waiting for the close frame");
    server.advance(secs(0.2));
    assert_eq!(server.connections(), 0, "dropped at the close timeout");
}

#[test]
fn a_client_that_never_finishes_its_handshake_gets_408_at_the_deadline() {
    let mut cfg = config();
    cfg.handshake_timeout = secs(10.0);
    let mut server = TestServer::new(cfg, Echo);
    let client = server.connect_raw();
    server.send_raw(client, b"GET / HTTP/1.1\r\nHost: x\r\n"); // never ends the head
    server.advance(secs(9.9));
    assert!(server.raw(client).is_empty());
    server.advance(secs(0.2));
    let answer = String::from_utf8_lossy(server.raw(client)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(server.transport_closed(client));
    assert_eq!(server.snapshot().handshake_timeouts_total, 1);
    assert_eq!(server.admitted(), 0, "its reservation is released");
}

#[test]
fn an_http_answer_the_client_does_not_read_is_dropped_at_its_deadline() {
    let mut cfg = config();
    cfg.close_timeout = secs(5.0);
    let mut server = TestServer::new(cfg, Echo);
    server.set_pipe_capacity(16);
    let client = server.connect_raw();
    server.set_reading(client, false);
    server.send_raw(client, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(server.connections(), 1, "the answer waits for the client");
    server.advance(secs(5.1));
    assert_eq!(server.connections(), 0);
    assert_eq!(server.admitted(), 0);
}

#[test]
fn shutdown_closes_every_connection_with_1012_and_ends_at_the_drain_deadline() {
    let mut cfg = config();
    cfg.drain_timeout = secs(10.0);
    // Longer than the drain, so the drain's deadline is what ends the deaf connection.
    cfg.close_timeout = secs(60.0);
    let mut server = TestServer::new(cfg, Echo);
    let polite = server.connect("/");
    let deaf = server.connect("/");
    server.set_reading(deaf, false);
    let half = server.connect_raw();
    server.send_raw(half, b"GET / HTTP/1.1\r\n");
    server.shutdown();
    assert_eq!(server.close_code(polite), Some(CloseCode::SERVICE_RESTART));
    assert!(
        server.transport_closed(polite),
        "its closing handshake completed"
    );
    assert!(
        server.transport_closed(half),
        "a handshake in progress is dropped"
    );
    assert!(!server.is_finished(), "the deaf client may still answer");
    // New connections are refused while draining.
    let late = server.connect_raw();
    assert!(server.transport_closed(late));
    server.advance(secs(9.9));
    assert!(!server.is_finished());
    server.advance(secs(0.2));
    assert!(server.is_finished());
    assert_eq!(server.admitted(), 0);
}

/// Rule: a restart's close frames carry each connection's own reconnect delay, spread over
/// the jitter window, in the documented form.
#[test]
fn shutdown_hints_spread_reconnects_over_the_jitter_window() {
    let mut cfg = config();
    cfg.reconnect_jitter = secs(10.0);
    // All 200 come from one address at one instant, past any sane handshake rate.
    cfg.handshake_rate = 0.0;
    let mut server = TestServer::new(cfg, Echo);
    let clients: Vec<ClientId> = (0..200).map(|_| server.connect("/")).collect();
    server.shutdown();
    let mut per_second = [0usize; 10];
    for &client in &clients {
        let frame = server.close_frame(client).flatten().expect("a close frame");
        assert_eq!(frame.code, CloseCode::SERVICE_RESTART);
        let reason = frame.reason.to_string();
        assert!(reason.starts_with("restart; reconnect-after="), "{reason}");
        let after = ws_mio_server::restart::reconnect_after(&reason).expect(&reason);
        assert!(after < secs(10.0), "{reason}");
        per_second[after.as_secs() as usize] += 1;
    }
    // 200 draws over ten seconds: every second of the window has some, none has a crowd
    // (20 expected in each; a uniform draw puts more than 45 in one with negligible odds).
    assert!(
        per_second.iter().all(|&n| (1..=45).contains(&n)),
        "{per_second:?}"
    );
    server.advance(secs(1.0));
    assert!(server.is_finished());
}

/// Rule: a zero reconnect jitter closes with 1012 and no hint.
#[test]
fn a_zero_jitter_restarts_without_a_hint() {
    let mut cfg = config();
    cfg.reconnect_jitter = Duration::ZERO;
    let mut server = TestServer::new(cfg, Echo);
    let client = server.connect("/");
    server.shutdown();
    let frame = server.close_frame(client).flatten().expect("a close frame");
    assert_eq!(frame.code, CloseCode::SERVICE_RESTART);
    assert_eq!(&*frame.reason, "restart");
    assert_eq!(ws_mio_server::restart::reconnect_after(&frame.reason), None);
}

#[test]
fn a_client_that_does_not_read_is_not_read_either_until_it_drains_then_everything_arrives() {
    let mut cfg = config();
    cfg.high_water_mark = 1 << 20;
    let mut server = TestServer::new(cfg, Echo);
    let client = server.connect("/");
    server.set_reading(client, false);
    let payload = vec![7u8; 64 << 10];
    let count = 80; // 5 MiB of echoes, more than the pipes and the high-water mark hold
    for _ in 0..count {
        server.send(client, Message::Binary(payload.clone().into()));
    }
    // The server paused reading: the rest waits in the client's pipe, not in the server.
    assert!(server.unsent(client) > 0, "the server stopped reading");
    let queued = server.snapshot().queued_bytes as usize;
    assert!(queued < (1 << 20) + (128 << 10), "queue bounded: {queued}");
    // Reading again resumes the server, and every echo arrives in order.
    server.set_reading(client, true);
    let echoes = server.messages(client);
    assert_eq!(echoes.len(), count);
    assert!(echoes.iter().all(|m| m.as_bytes() == &payload[..]));
    assert_eq!(server.unsent(client), 0);
}

#[test]
fn room_messages_reach_members_on_every_worker_once_in_publish_order() {
    let mut server = TestServer::new(
        Config {
            workers: 3,
            ..config()
        },
        Rooms,
    );
    let members: Vec<_> = (0..6).map(|_| server.connect("/lobby")).collect();
    let other = server.connect("/elsewhere");
    assert_eq!(server.rooms().members("lobby").len(), 6);
    for (i, &member) in members.iter().take(3).enumerate() {
        server.send(member, text(&format!("m{i}")));
    }
    for &m in &members {
        assert_eq!(server.messages(m), vec![text("m0"), text("m1"), text("m2")]);
    }
    assert!(server.messages(other).is_empty());
    assert_eq!(server.snapshot().fanout_deliveries_total, 18);
    // A member that leaves is gone from the room everywhere.
    server.close(members[0], CloseCode::NORMAL);
    assert_eq!(server.rooms().members("lobby").len(), 5);
}

#[test]
fn a_slow_member_is_skipped_or_closed_as_configured_and_the_others_get_everything() {
    for policy in [SlowConsumerPolicy::Drop, SlowConsumerPolicy::Close] {
        let mut cfg = config();
        cfg.high_water_mark = 64 << 10;
        cfg.slow_consumer = policy;
        let mut server = TestServer::new(cfg, Rooms);
        server.set_pipe_capacity(32 << 10);
        let sender = server.connect("/r");
        let slow = server.connect("/r");
        server.set_reading(slow, false);
        let payload = Message::Binary(vec![1u8; 8 << 10].into());
        for _ in 0..40 {
            server.send(sender, payload.clone());
            assert_eq!(server.messages(sender), vec![payload.clone()]);
        }
        let m = server.snapshot();
        match policy {
            SlowConsumerPolicy::Drop => {
                assert!(m.backpressure_drops_total > 0);
                assert!(server.is_open(slow));
            }
            SlowConsumerPolicy::Close => {
                assert_eq!(m.backpressure_closes_total, 1);
                server.set_reading(slow, true);
                assert_eq!(server.close_code(slow), Some(CloseCode::POLICY_VIOLATION));
            }
        }
        assert!((m.queued_bytes as usize) < (64 << 10) + (16 << 10));
    }
}

#[test]
fn idle_connections_are_closed_with_1001_after_the_idle_timeout() {
    let mut cfg = config();
    cfg.idle_timeout = secs(60.0);
    cfg.ping_interval = Duration::ZERO;
    let mut server = TestServer::new(cfg, Echo);
    let client = server.connect("/");
    server.advance(secs(30.0));
    server.send(client, text("hi"));
    server.advance(secs(59.0));
    assert!(server.is_open(client), "input 59 s ago");
    server.advance(secs(1.1));
    assert_eq!(server.close_code(client), Some(CloseCode::GOING_AWAY));
    assert_eq!(server.snapshot().idle_timeouts_total, 1);
}

/// Credentials that last the seconds in the path (`/60`; none for `/`): `renew:S` moves the
/// expiry to S seconds from now, `forever` clears it; `now` answers the handler's clock.
struct Leases;

impl Handler for Leases {
    type Conn = Option<Duration>;
    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<Option<Duration>> {
        let secs = request.request.path().trim_start_matches('/').parse().ok();
        OpenDecision::accept(secs.map(Duration::from_secs))
    }
    fn on_connect(&self, ctx: &mut Context<'_>, lease: &mut Option<Duration>) {
        if lease.is_some() {
            ctx.expire_after(*lease);
        }
    }
    fn on_message(&self, ctx: &mut Context<'_>, _: &mut Option<Duration>, message: Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        if let Some(secs) = text.strip_prefix("renew:") {
            ctx.expire_after(secs.parse().ok().map(Duration::from_secs));
        } else if text == "forever" {
            ctx.expire_after(None);
        } else if text == "now" {
            ctx.reply(Message::Text(format!("{}", ctx.now().as_millis()).into()));
        }
    }
}

/// The close frame a client got: its code and reason.
fn close_frame<H: Handler>(server: &mut TestServer<H>, client: ClientId) -> Option<(u16, String)> {
    while let Some(event) = server.next_event(client) {
        if let ws_proto::Event::Close(frame) = event {
            return frame.map(|f| (f.code.0, f.reason.to_string()));
        }
    }
    None
}

#[test]
fn credentials_that_expire_unrenewed_close_the_connection_with_1008_credentials_expired() {
    let mut server = TestServer::new(config(), Leases);
    let leased = server.connect("/60");
    let unleased = server.connect("/");
    server.advance(secs(59.9));
    assert!(server.is_open(leased), "not yet expired");
    server.advance(secs(0.2));
    assert_eq!(
        close_frame(&mut server, leased),
        Some((1008, "credentials expired".to_string()))
    );
    assert_eq!(
        ws_mio_server::CREDENTIALS_EXPIRED.0,
        CloseCode::POLICY_VIOLATION
    );
    assert_eq!(server.snapshot().credential_expiries_total, 1);
    // A connection that never had a deadline is not touched by anyone else's.
    server.advance(secs(3600.0));
    assert!(server.is_open(unleased));
    assert_eq!(server.snapshot().credential_expiries_total, 1);
}

#[test]
fn credentials_renewed_in_time_move_the_deadline_later_or_earlier_or_clear_it() {
    let mut server = TestServer::new(config(), Leases);
    let later = server.connect("/60");
    let earlier = server.connect("/60");
    let cleared = server.connect("/60");
    let huge = server.connect("/60");
    server.advance(secs(50.0));
    server.send(later, text("renew:60"));
    server.send(earlier, text("renew:1"));
    server.send(cleared, text("forever"));
    server.send(huge, text(&format!("renew:{}", u64::MAX)));
    // An earlier deadline is kept to, not the one first set.
    server.advance(secs(1.1));
    assert_eq!(close_frame(&mut server, earlier).map(|f| f.0), Some(1008));
    // Past the first deadline, the renewed connection is still open, until its new one.
    server.advance(secs(58.0));
    assert!(server.is_open(later), "renewed at 50 s for 60 s more");
    server.advance(secs(1.0));
    assert_eq!(close_frame(&mut server, later).map(|f| f.0), Some(1008));
    server.advance(secs(3600.0));
    assert!(server.is_open(cleared), "no deadline after clearing it");
    assert!(
        server.is_open(huge),
        "a deadline past any clock counts as none"
    );
    assert_eq!(server.snapshot().credential_expiries_total, 2);
}

#[test]
fn the_handlers_clock_is_the_workers_time() {
    let mut server = TestServer::new(config(), Leases);
    let client = server.connect("/");
    server.advance(secs(12.5));
    server.send(client, text("now"));
    assert_eq!(server.next_message(client), Some(text("12500")));
}

/// Sends one request and returns the whole answer, checking the connection was closed after.
fn exchange<H: Handler>(server: &mut TestServer<H>, client: ClientId, request: &str) -> String {
    server.send_raw(client, request.as_bytes());
    assert!(server.transport_closed(client), "closed after {request}");
    String::from_utf8_lossy(server.raw(client)).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

#[test]
fn the_admin_listener_alone_serves_metrics_health_and_readiness() {
    let mut server = TestServer::new(config(), Echo);
    let _open = server.connect("/");
    for (path, status, body) in [
        // The open WebSocket client; admin connections are not counted.
        ("/metrics", "200", "ws_connections_open 1\n"),
        ("/healthz", "200", "\"status\":\"ok\""),
        ("/readyz", "200", "\"ready\":true"),
        ("/elsewhere", "404", "not found"),
    ] {
        let admin = server.connect_admin();
        let answer = exchange(&mut server, admin, &get(path));
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "admin {path}: {answer}"
        );
        assert!(answer.contains(body), "admin {path}: {answer}");
        // The public listener leaves every path to the handler: for the echo server every path
        // is a WebSocket endpoint, so a plain request gets 426 (RFC 6455 section 4.4).
        let public = server.connect_raw();
        let answer = exchange(&mut server, public, &get(path));
        assert!(
            answer.starts_with("HTTP/1.1 426 ")
                && answer.contains("Upgrade: websocket\r\n")
                && answer.contains("Sec-WebSocket-Version: 13\r\n"),
            "public {path}: {answer}"
        );
    }
    let admin = server.connect_admin();
    let answer = exchange(
        &mut server,
        admin,
        "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 405 ") && answer.contains("Allow: GET"),
        "{answer}"
    );
    // No upgrade on the admin listener either.
    let admin = server.connect_admin();
    let upgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let answer = exchange(&mut server, admin, upgrade);
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert_eq!(server.snapshot().connections_open, 1);
}

#[test]
fn readiness_turns_503_while_draining_and_the_admin_listener_still_answers() {
    let mut cfg = config();
    cfg.drain_timeout = secs(10.0);
    let mut server = TestServer::new(cfg, Echo);
    let deaf = server.connect("/");
    server.set_reading(deaf, false);
    server.shutdown();
    let admin = server.connect_admin();
    let answer = exchange(&mut server, admin, &get("/readyz"));
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.contains("draining"),
        "{answer}"
    );
    let admin = server.connect_admin();
    let answer = exchange(&mut server, admin, &get("/healthz"));
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

#[test]
fn admin_connections_have_a_cap_of_their_own() {
    let mut cfg = config();
    cfg.max_connections = 1;
    let mut server = TestServer::new(cfg, Echo);
    let _full = server.connect("/");
    let refused = server.connect_raw();
    assert!(
        server.transport_closed(refused),
        "the public limit is reached"
    );
    // A full server can still be watched, by a bounded number of admin connections.
    let waiting: Vec<_> = (0..16).map(|_| server.connect_admin()).collect();
    assert!(waiting.iter().all(|&c| !server.transport_closed(c)));
    let one_more = server.connect_admin();
    assert!(server.transport_closed(one_more));
    assert!(String::from_utf8_lossy(server.raw(one_more)).starts_with("HTTP/1.1 503 "));
    let answer = exchange(&mut server, waiting[0], &get("/healthz"));
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // Its slot is free again.
    let again = server.connect_admin();
    assert!(!server.transport_closed(again));
}
