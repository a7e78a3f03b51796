//! The server over real loopback sockets, driven by ws-proto's client: the socket layer (reads,
//! writes, wake-ups across workers, the listener). The logic with time in it is tested on
//! pretend time in `pretend_time.rs`.

mod common;

use common::{http, start, stop, test_config as config, wait_until, Received, TestClient};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use ws_mio_server::{
    Broadcast, Context, Echo, Handler, MessageRef, OpenDecision, OpenRequest, SlowConsumerPolicy,
};
use ws_proto::{CloseCode, Event, Message, MessageKind, StatusCode};

/// Joins the room named by the `room` query parameter; publishes every message to it.
struct Rooms;

impl Handler for Rooms {
    type Conn = Option<String>;

    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<Option<String>> {
        OpenDecision::accept(request.request.query_param("room").map(|r| r.to_string()))
    }

    fn on_connect(&self, ctx: &mut Context<'_>, room: &mut Option<String>) {
        if let Some(room) = room {
            ctx.join(room);
        }
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut Option<String>, message: Message) {
        ctx.publish("r", message);
    }
}

#[test]
fn echoes_text_binary_fragmented_and_large_messages() {
    let (addr, handle, server) = start(config(), Echo);
    let mut client = TestClient::connect(addr, "/");
    client.send_text("hello");
    assert_eq!(client.next_text(), "hello");
    client.send(&Message::Binary(vec![0, 1, 2, 255].into()));
    assert_eq!(
        client.next_message(),
        Message::Binary(vec![0, 1, 2, 255].into())
    );
    client
        .conn
        .send_fragment(MessageKind::Text, b"frag", false)
        .unwrap();
    client.conn.send_ping(b"between").unwrap();
    client
        .conn
        .send_fragment(MessageKind::Text, b"mented", true)
        .unwrap();
    client.flush();
    match client.next() {
        Received::Event(Event::Pong(p)) => assert_eq!(&p[..], b"between"),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.next_text(), "fragmented");
    let large: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    client.send(&Message::Binary(large.clone().into()));
    assert_eq!(client.next_message(), Message::Binary(large.into()));
    client.close();
    client.expect_close(CloseCode::NORMAL);
    let metrics = handle.metrics().snapshot();
    assert_eq!(metrics.messages_in_total, 4);
    stop(handle, server);
}

#[test]
fn room_fanout_reaches_members_on_every_worker_in_publish_order() {
    let (addr, handle, server) = start(config(), Rooms);
    let mut members: Vec<TestClient> = (0..40)
        .map(|_| TestClient::connect(addr, "/?room=r"))
        .collect();
    let mut publisher = TestClient::connect(addr, "/");
    // Joining happens on each member's worker; a published marker proves every member is in.
    for member in &mut members {
        member.send_text("ready");
        loop {
            if member.next_text() == "ready" {
                break;
            }
        }
    }
    for i in 0..200 {
        publisher.conn.send_text(&format!("m{i}")).unwrap();
    }
    publisher.flush();
    for member in &mut members {
        let mut got = Vec::new();
        while got.len() < 200 {
            let text = member.next_text();
            if text.starts_with('m') {
                got.push(text);
            }
        }
        let expected: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        assert_eq!(got, expected);
    }
    let m = handle.metrics().snapshot();
    assert!(m.fanout_deliveries_total >= 40 * 200);
    stop(handle, server);
}

#[test]
fn broadcast_mode_sends_every_message_to_every_connection_sender_included() {
    let (addr, handle, server) = start(config(), Broadcast);
    let mut clients: Vec<TestClient> = (0..3).map(|_| TestClient::connect(addr, "/")).collect();
    clients[0].send_text("from the first");
    for client in &mut clients {
        assert_eq!(client.next_text(), "from the first");
    }
    clients[1].send(&Message::Binary(vec![7, 8, 9].into()));
    for client in &mut clients {
        assert_eq!(client.next_message(), Message::Binary(vec![7, 8, 9].into()));
    }
    // A closed connection leaves the room: the rest still get everything, it gets nothing.
    let mut gone = clients.pop().unwrap();
    gone.close();
    gone.expect_close(CloseCode::NORMAL);
    clients[0].send_text("after the close");
    for client in &mut clients {
        assert_eq!(client.next_text(), "after the close");
    }
    let m = handle.metrics().snapshot();
    assert_eq!(m.messages_in_total, 3);
    assert_eq!(m.fanout_deliveries_total, 3 + 3 + 2);
    stop(handle, server);
}

/// Takes messages borrowed: echoes them, except that `shout` gets an owned, queued reply and
/// `bye` closes (actions the worker applies before it reads on).
struct BorrowingEcho;

impl Handler for BorrowingEcho {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_message(&self, ctx: &mut Context<'_>, conn: &mut (), message: Message) {
        self.on_message_ref(
            ctx,
            conn,
            match &message {
                Message::Text(t) => MessageRef::Text(t.as_str()),
                Message::Binary(b) => MessageRef::Binary(b),
            },
        );
    }

    fn borrows_messages(&self) -> bool {
        true
    }

    fn on_message_ref(&self, ctx: &mut Context<'_>, _: &mut (), message: MessageRef<'_>) {
        match message {
            MessageRef::Text("shout") => ctx.reply(Message::Text("SHOUT".into())),
            MessageRef::Text("bye") => ctx.close(ctx.id(), CloseCode::NORMAL, "bye"),
            other => ctx.reply_ref(other),
        }
    }
}

#[test]
fn borrowed_messages_and_everything_else_of_one_read_are_answered_in_order() {
    for handler_echo in [false, true] {
        let (addr, handle, server) = if handler_echo {
            start(config(), Echo)
        } else {
            start(config(), BorrowingEcho)
        };
        let mut client = TestClient::connect(addr, "/");
        // One write, so the server most likely reads it at once: whole messages, an action
        // the handler queues, a ping, a fragmented message, more whole messages, a close
        // asked for by the handler and a message after it. Replies and the pong keep the
        // order of what they answer.
        client.conn.send_text("one").unwrap();
        client.conn.send_binary(&[2; 300]).unwrap();
        client.conn.send_text("shout").unwrap();
        client.conn.send_text("three").unwrap();
        client.conn.send_ping(b"p").unwrap();
        client
            .conn
            .send_fragment(MessageKind::Text, b"fo", false)
            .unwrap();
        client
            .conn
            .send_fragment(MessageKind::Text, b"ur", true)
            .unwrap();
        client.conn.send_text("five").unwrap();
        client.conn.send_text("bye").unwrap();
        client.conn.send_text("after bye").unwrap();
        client.flush();
        assert_eq!(client.next_text(), "one");
        assert_eq!(client.next_message(), Message::Binary(vec![2; 300].into()));
        let shout = if handler_echo { "shout" } else { "SHOUT" };
        assert_eq!(client.next_text(), shout);
        assert_eq!(client.next_text(), "three");
        match client.next() {
            Received::Event(Event::Pong(p)) => assert_eq!(&p[..], b"p"),
            other => panic!("{other:?}"),
        }
        assert_eq!(client.next_text(), "four");
        assert_eq!(client.next_text(), "five");
        if handler_echo {
            assert_eq!(client.next_text(), "bye");
            assert_eq!(client.next_text(), "after bye");
            client.close();
        }
        client.expect_close(CloseCode::NORMAL);
        let metrics = handle.metrics().snapshot();
        assert_eq!(metrics.messages_in_total, 8);
        // BorrowingEcho answers six: `bye` closes, and `after bye` comes after the close.
        assert_eq!(metrics.messages_out_total, if handler_echo { 8 } else { 6 });
        stop(handle, server);
    }
}

#[test]
fn a_message_and_the_end_of_stream_in_one_segment_are_both_seen() {
    // A read that does not fill the buffer ends the read loop; the peer's end of stream that
    // arrived with the data must not be left unread (the connection would stay open). The
    // message is read and handled, and its echo still goes out: the peer closed only its
    // sending side.
    let (addr, handle, server) = start(config(), Echo);
    for round in 0..20 {
        let mut client = TestClient::connect(addr, "/");
        let text = format!("last words {round}");
        client.conn.send_text(&text).unwrap();
        let mut wire = Vec::new();
        while let Some(chunk) = client.conn.poll_transmit() {
            wire.extend_from_slice(&chunk);
        }
        client.stream.write_all(&wire).unwrap();
        client.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(client.next_text(), text);
        assert_eq!(client.next(), Received::Eof);
    }
    wait_until("every connection is gone", || {
        handle.metrics().snapshot().connections_open == 0
    });
    assert_eq!(handle.metrics().snapshot().messages_in_total, 20);
    stop(handle, server);
}

#[test]
fn rfc6455_7_1_1_a_client_that_shuts_down_after_its_close_frame_still_gets_the_reply() {
    // Section 7.1.1 lets a client close its side once its close frame is sent. The server
    // still owes it the replies to what came before and its own close frame.
    let (addr, handle, server) = start(config(), Echo);
    let mut client = TestClient::connect(addr, "/");
    client.conn.send_text("last").unwrap();
    client
        .conn
        .close(Duration::ZERO, CloseCode::NORMAL, "done")
        .unwrap();
    let mut wire = Vec::new();
    while let Some(chunk) = client.conn.poll_transmit() {
        wire.extend_from_slice(&chunk);
    }
    client.stream.write_all(&wire).unwrap();
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(client.next_text(), "last");
    client.expect_close(CloseCode::NORMAL);
    let normal = ws_mio_server::metrics::COUNTED_CLOSE_CODES
        .iter()
        .position(|&c| c == 1000)
        .unwrap();
    wait_until("the close is counted", || {
        handle
            .metrics()
            .snapshot()
            .closes_by_code
            .iter()
            .sum::<u64>()
            == 1
    });
    let closes = handle.metrics().snapshot().closes_by_code;
    assert_eq!(closes[normal], 1, "a clean close with 1000: {closes:?}");
    stop(handle, server);
}

#[test]
fn a_client_that_never_reads_neither_grows_memory_nor_slows_others() {
    let mut cfg = config();
    cfg.high_water_mark = 256 << 10;
    cfg.slow_consumer = SlowConsumerPolicy::Drop;
    let (addr, handle, server) = start(cfg, Rooms);
    let mut slow = TestClient::connect(addr, "/?room=r");
    let mut fast = TestClient::connect(addr, "/?room=r");
    slow.send_text("ready");
    fast.send_text("ready");
    for c in [&mut slow, &mut fast] {
        while !matches!(c.next_text().as_str(), "ready") {}
        while !matches!(c.next_text().as_str(), "ready") {}
    }
    let mut publisher = TestClient::connect(addr, "/");
    let payload = "x".repeat(4096);
    let total = 3000; // 12 MiB through the room
    let mut seen = 0;
    for i in 0..total {
        publisher.conn.send_text(&payload).unwrap();
        if i % 50 == 49 {
            publisher.flush();
            // The fast member keeps up while the slow one reads nothing.
            while seen < i + 1 {
                fast.next_text();
                seen += 1;
            }
        }
    }
    publisher.flush();
    while seen < total {
        fast.next_text();
        seen += 1;
    }
    let m = handle.metrics().snapshot();
    assert!(m.backpressure_drops_total > 0, "{m:?}");
    // What the server holds for the slow member stays near the high-water mark (plus one
    // frame), however much was published; the socket buffers hold the rest.
    assert!(
        m.queued_bytes <= (256 << 10) + 8192,
        "queued {}",
        m.queued_bytes
    );
    drop(slow);
    stop(handle, server);
}

#[test]
fn over_limit_message_is_closed_with_1009() {
    let mut cfg = config();
    cfg.max_message_size = 1000;
    let (addr, handle, server) = start(cfg, Echo);
    let mut client = TestClient::connect(addr, "/");
    client.send(&Message::Binary(vec![1; 1001].into()));
    client.expect_close(CloseCode::MESSAGE_TOO_BIG);
    // Other connections are unaffected.
    let mut other = TestClient::connect(addr, "/");
    other.send_text("fine");
    assert_eq!(other.next_text(), "fine");
    stop(handle, server);
}

#[test]
fn protocol_violation_gets_its_close_code() {
    let (addr, handle, server) = start(config(), Echo);
    let mut client = TestClient::connect(addr, "/");
    // An unmasked frame from a client (RFC 6455 section 5.1).
    client.stream.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    client.expect_close(CloseCode::PROTOCOL_ERROR);
    assert_eq!(handle.metrics().snapshot().protocol_errors_total, 1);
    stop(handle, server);
}

#[test]
fn connection_limits_are_enforced() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 2;
    let (addr, handle, server) = start(cfg, Echo);
    let a = TestClient::connect(addr, "/");
    let _b = TestClient::connect(addr, "/");
    let answer = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    drop(a);
    wait_until("a slot to free", || {
        handle.metrics().snapshot().connections_open == 1
    });
    let _c = TestClient::connect(addr, "/");
    stop(handle, server);

    let mut cfg = config();
    cfg.max_connections = 1;
    let (addr, handle, server) = start(cfg, Echo);
    let _a = TestClient::connect(addr, "/");
    let answer = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert_eq!(handle.metrics().snapshot().connections_refused_total, 1);
    stop(handle, server);
}

#[test]
fn bad_handshakes_get_their_http_status_and_plain_http_reaches_the_hook() {
    let (addr, handle, server) = start(config(), Echo);
    let answer = http(addr, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"));
    // Echo's hook: every path is a WebSocket endpoint, so a plain GET is told to upgrade.
    let answer = http(addr, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    // An upgrade with a body, or a second key, is refused (RFC 6455 section 4.1, 4.2.1).
    let upgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    for extra in [
        "Content-Length: 2\r\n\r\nhi",
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
    ] {
        let answer = http(addr, &format!("{upgrade}{extra}"));
        assert!(answer.starts_with("HTTP/1.1 400 "), "{extra}: {answer}");
    }
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = http(addr, &huge);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    stop(handle, server);
}

#[test]
fn shutdown_closes_every_client_with_1012() {
    let mut cfg = config();
    // Time for the clients to answer the close frames (they do at once, as they read them).
    cfg.drain_timeout = Duration::from_secs(10);
    let (addr, handle, server) = start(cfg, Echo);
    let mut clients: Vec<TestClient> = (0..6).map(|_| TestClient::connect(addr, "/")).collect();
    handle.shutdown();
    for client in &mut clients {
        client.expect_close(CloseCode::SERVICE_RESTART);
    }
    server.join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}

/// Refuses `/who` with the client address it sees; accepts the rest.
struct Reveal;

impl Handler for Reveal {
    type Conn = ();
    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<()> {
        match request.request.path() {
            "/who" => OpenDecision::reject(StatusCode::FORBIDDEN, &request.client.to_string()),
            _ => OpenDecision::accept(()),
        }
    }
    fn on_message(&self, _: &mut Context<'_>, _: &mut (), _: Message) {}
}

/// A PROXY v1 header for `client`, then an upgrade request for `path`.
fn proxied_upgrade(client: &str, path: &str) -> String {
    format!(
        "PROXY TCP4 {client} 127.0.0.1 50000 9001\r\n\
         GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Rule: behind a trusted proxy speaking the PROXY protocol, over a real socket, the
/// application sees the client and the per-IP limit counts it; without the header the
/// connection is closed.
#[test]
fn a_trusted_proxys_clients_are_seen_and_counted_over_a_real_socket() {
    let mut cfg = config();
    cfg.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    cfg.proxy_protocol = true;
    cfg.max_connections_per_ip = 1;
    let (addr, handle, server) = start(cfg, Reveal);
    let answer = http(addr, &proxied_upgrade("203.0.113.5", "/who"));
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.ends_with("\r\n\r\n203.0.113.5"), "{answer}");
    // One open connection for 203.0.113.6 through the proxy...
    let mut held = TcpStream::connect(addr).unwrap();
    held.set_read_timeout(Some(common::WAIT)).unwrap();
    held.write_all(proxied_upgrade("203.0.113.6", "/").as_bytes())
        .unwrap();
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut held, &mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    // ...and that client is at its limit, though the proxy is not.
    let answer = http(addr, &proxied_upgrade("203.0.113.6", "/who"));
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    let answer = http(addr, &proxied_upgrade("203.0.113.7", "/who"));
    assert!(answer.ends_with("203.0.113.7"), "{answer}");
    // No PROXY header from the trusted proxy: closed, unanswered.
    let answer = http(addr, "GET /who HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(answer, "");
    drop(held);
    wait_until("the held connection to be counted gone", || {
        handle.metrics().snapshot().connections_open == 0
    });
    stop(handle, server);
}

/// Rule: past its handshake burst a client gets 429 with Retry-After, over a real socket,
/// and the refusal holds nothing.
#[test]
fn handshakes_past_the_burst_get_429_with_retry_after_over_a_real_socket() {
    let mut cfg = config();
    cfg.handshake_rate = 0.5;
    cfg.handshake_burst = 2.0;
    let (addr, handle, server) = start(cfg, Echo);
    let _a = TestClient::connect(addr, "/");
    let _b = TestClient::connect(addr, "/");
    let answer = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    // A token every two seconds.
    assert!(answer.contains("\r\nRetry-After: 2\r\n"), "{answer}");
    let snapshot = handle.metrics().snapshot();
    assert_eq!(snapshot.handshakes_rate_limited_total, 1);
    assert_eq!(snapshot.connections_open, 2);
    stop(handle, server);
}
