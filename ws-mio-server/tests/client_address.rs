//! The client behind a trusted proxy, on pretend time: `X-Forwarded-For` and the PROXY
//! protocol name it, the application sees it, the per-IP limit and the handshake rate count
//! it, and whatever step a proxied connection ends at, every count it took is given back.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{Config, Context, Handler, OpenDecision, OpenRequest};
use ws_proto::handshake::client::ClientRequest;
use ws_proto::{CloseCode, Message, StatusCode};

/// Tells each connection the client address it was opened for; refuses `/reject`.
struct Reveal;

impl Handler for Reveal {
    type Conn = IpAddr;
    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<IpAddr> {
        if request.request.path() == "/reject" {
            return OpenDecision::reject(StatusCode::FORBIDDEN, "no\n");
        }
        OpenDecision::accept(request.client)
    }
    fn on_connect(&self, ctx: &mut Context<'_>, client: &mut IpAddr) {
        ctx.reply(Message::Text(client.to_string().into()));
    }
    fn on_message(&self, _: &mut Context<'_>, _: &mut IpAddr, _: Message) {}
}

const PROXY: &str = "10.0.0.1:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config() -> Config {
    Config {
        workers: 2,
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..Config::default()
    }
}

fn forwarded(xff: &[&str]) -> ClientRequest {
    xff.iter()
        .fold(ClientRequest::new("chat", "/"), |r, value| {
            r.header("X-Forwarded-For", value)
        })
}

/// The address the server told the client it has, or the refusal's status line.
fn seen<H: Handler>(server: &mut TestServer<H>, client: ClientId) -> String {
    match server.next_message(client) {
        Some(Message::Text(text)) => text.to_string(),
        _ => {
            let raw = String::from_utf8_lossy(server.raw(client)).into_owned();
            raw.lines()
                .next()
                .unwrap_or("closed with no answer")
                .to_string()
        }
    }
}

fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 192.0.2.1 50000 443\r\n").into_bytes()
}

fn v2(client: [u8; 4]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&client);
    header.extend_from_slice(&[192, 0, 2, 1, 0xc3, 0x50, 0x01, 0xbb]);
    header
}

/// Rule: from a trusted proxy, the client is the right-most untrusted address of
/// X-Forwarded-For (several headers are one list); from anyone else the header is ignored.
#[test]
fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    let mut server = TestServer::new(config(), Reveal);
    let cases: [(&str, &[&str], &str); 5] = [
        (PROXY, &["198.51.100.1, 203.0.113.7"], "203.0.113.7"),
        (PROXY, &["203.0.113.7", "10.0.0.2"], "203.0.113.7"),
        (PROXY, &["[2001:db8::7]:443"], "2001:db8::7"),
        // The proxy's own request (a health check): the proxy is the client.
        (PROXY, &[], "10.0.0.1"),
        // Not a trusted proxy: what it says is not read.
        ("192.0.2.5:1234", &["203.0.113.7"], "192.0.2.5"),
    ];
    for (peer, xff, expected) in cases {
        let client = server.connect_from(addr(peer), b"", forwarded(xff));
        assert_eq!(seen(&mut server, client), expected, "{peer} {xff:?}");
    }
}

/// Rule: a malformed X-Forwarded-For from a trusted proxy is refused with 400.
#[test]
fn a_malformed_x_forwarded_for_from_a_trusted_proxy_gets_400() {
    let mut server = TestServer::new(config(), Reveal);
    let client = server.connect_from(addr(PROXY), b"", forwarded(&["203.0.113.7, nonsense"]));
    assert_eq!(seen(&mut server, client), "HTTP/1.1 400 Bad Request");
    assert_eq!((server.admitted(), server.admitted_addresses()), (0, 0));
}

/// Rule: the per-IP limit counts a trusted proxy's clients, not the proxy.
#[test]
fn the_per_ip_limit_counts_forwarded_clients_not_the_proxy() {
    let mut server = TestServer::new(
        Config {
            max_connections_per_ip: 1,
            ..config()
        },
        Reveal,
    );
    let mut open = Vec::new();
    for n in 1..=3 {
        let ip = format!("203.0.113.{n}");
        let client = server.connect_from(addr(PROXY), b"", forwarded(&[&ip]));
        assert_eq!(seen(&mut server, client), ip);
        open.push(client);
    }
    assert_eq!((server.admitted(), server.admitted_addresses()), (3, 3));
    let again = server.connect_from(addr(PROXY), b"", forwarded(&["203.0.113.2"]));
    assert_eq!(seen(&mut server, again), "HTTP/1.1 429 Too Many Requests");
    assert_eq!(server.snapshot().connections_refused_total, 1);
    for client in open {
        server.close(client, CloseCode::NORMAL);
    }
    assert_eq!((server.admitted(), server.admitted_addresses()), (0, 0));
}

/// Rule: with the PROXY protocol on, a trusted proxy's header (v1 or v2) names the client;
/// LOCAL leaves the proxy as the client; X-Forwarded-For counts only past a trusted hop.
#[test]
fn the_proxy_protocol_names_the_client() {
    let mut server = TestServer::new(
        Config {
            proxy_protocol: true,
            ..config()
        },
        Reveal,
    );
    let plain = ClientRequest::new("chat", "/");
    let c = server.connect_from(addr(PROXY), &v1("203.0.113.9"), plain.clone());
    assert_eq!(seen(&mut server, c), "203.0.113.9");
    let c = server.connect_from(addr(PROXY), &v2([203, 0, 113, 10]), plain.clone());
    assert_eq!(seen(&mut server, c), "203.0.113.10");
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let c = server.connect_from(addr(PROXY), local, plain.clone());
    assert_eq!(seen(&mut server, c), "10.0.0.1");
    // The header names an untrusted client: what that client wrote in X-Forwarded-For is
    // its own say, not read.
    let c = server.connect_from(
        addr(PROXY),
        &v1("203.0.113.9"),
        forwarded(&["198.51.100.1"]),
    );
    assert_eq!(seen(&mut server, c), "203.0.113.9");
    // The header names another trusted proxy: its X-Forwarded-For tells.
    let c = server.connect_from(addr(PROXY), &v1("10.0.0.2"), forwarded(&["198.51.100.1"]));
    assert_eq!(seen(&mut server, c), "198.51.100.1");
}

/// Rule: with the PROXY protocol on, a trusted proxy's connection without a valid header, and
/// an untrusted peer's connection that starts with one, are closed with no answer.
#[test]
fn the_proxy_protocol_is_required_from_trusted_proxies_and_refused_from_others() {
    let mut server = TestServer::new(
        Config {
            proxy_protocol: true,
            ..config()
        },
        Reveal,
    );
    let plain = ClientRequest::new("chat", "/");
    let missing = server.connect_from(addr(PROXY), b"", plain.clone());
    let bad = server.connect_from(addr(PROXY), b"PROXY TCP4 nonsense\r\n", plain.clone());
    let spoofed = server.connect_from(addr("192.0.2.5:1"), &v1("203.0.113.9"), plain.clone());
    for client in [missing, bad, spoofed] {
        assert!(server.transport_closed(client));
        assert_eq!(seen(&mut server, client), "closed with no answer");
    }
    // An untrusted peer without a header is served as usual.
    let direct = server.connect_from(addr("192.0.2.5:2"), b"", plain);
    assert_eq!(seen(&mut server, direct), "192.0.2.5");
    assert_eq!(server.admitted(), 1);
}

/// Rule: a proxied connection counts against the total from its acceptance and against its
/// client once known; whatever step it ends at, both are given back exactly once.
#[test]
fn every_count_returns_to_zero_whatever_step_a_proxied_connection_ends_at() {
    let cfg = Config {
        proxy_protocol: true,
        max_connections_per_ip: 1,
        handshake_rate: 1.0,
        handshake_burst: 1.0,
        handshake_timeout: Duration::from_secs(5),
        close_timeout: Duration::from_secs(1),
        ..config()
    };
    let mut server = TestServer::new(cfg, Reveal);
    let proxy = addr(PROXY);
    let request = |path: &str| ClientRequest::new("chat", path);
    // Each step's client has an address of its own, so their counts do not meet.
    let step = |n: u8| format!("203.0.113.{n}");
    let zero = |server: &TestServer<Reveal>, what: &str| {
        assert_eq!(
            (server.admitted(), server.admitted_addresses()),
            (0, 0),
            "after {what}"
        );
    };

    // 1. The proxy goes away before its header is whole.
    let c = server.connect_raw_from(proxy);
    server.send_raw(c, b"PROXY TCP4 203.0");
    assert_eq!((server.admitted(), server.admitted_addresses()), (1, 0));
    server.shutdown_write(c);
    server.advance(Duration::from_secs(1));
    zero(&server, "an end of stream in the header");

    // 2. The header never ends: the handshake deadline.
    let c = server.connect_raw_from(proxy);
    server.send_raw(c, b"PROXY TCP4 ");
    server.advance(Duration::from_secs(7));
    assert!(server.transport_closed(c));
    zero(&server, "a header timeout");

    // 3. A malformed header.
    let c = server.connect_raw_from(proxy);
    server.send_raw(c, b"\r\n\r\n\0\r\nQUIT\n\x31");
    assert!(server.transport_closed(c));
    zero(&server, "a malformed header");

    // 4. The client named is at its per-IP limit.
    let holder = server.connect_from(proxy, &v1(&step(4)), request("/"));
    assert_eq!(seen(&mut server, holder), step(4));
    server.advance(Duration::from_secs(2));
    let c = server.connect_from(proxy, &v1(&step(4)), request("/"));
    assert_eq!(seen(&mut server, c), "HTTP/1.1 429 Too Many Requests");
    server.advance(Duration::from_secs(2));
    assert_eq!((server.admitted(), server.admitted_addresses()), (1, 1));
    server.close(holder, CloseCode::NORMAL);
    zero(&server, "a per-IP refusal");

    // 5. The client named is past its handshake rate.
    let first = server.connect_from(proxy, &v1(&step(5)), request("/"));
    assert_eq!(seen(&mut server, first), step(5));
    server.close(first, CloseCode::NORMAL);
    let c = server.connect_from(proxy, &v1(&step(5)), request("/"));
    assert_eq!(seen(&mut server, c), "HTTP/1.1 429 Too Many Requests");
    assert!(String::from_utf8_lossy(server.raw(c)).contains("Retry-After: 1\r\n"));
    server.advance(Duration::from_secs(2));
    zero(&server, "a rate refusal");

    // 6. A trusted hop whose X-Forwarded-For is malformed.
    let c = server.connect_from(proxy, &v1("10.0.0.2"), forwarded(&["bad"]));
    assert_eq!(seen(&mut server, c), "HTTP/1.1 400 Bad Request");
    server.advance(Duration::from_secs(2));
    zero(&server, "a malformed X-Forwarded-For");

    // 7. The request head never ends after a good header.
    let c = server.connect_raw_from(proxy);
    server.send_raw(c, &[v1(&step(7)), b"GET / HTTP/1.1\r\n".to_vec()].concat());
    assert_eq!((server.admitted(), server.admitted_addresses()), (1, 1));
    server.shutdown_write(c);
    server.advance(Duration::from_secs(2));
    zero(&server, "an end of stream in the request head");

    // 8. The application refuses the handshake.
    let c = server.connect_from(proxy, &v1(&step(8)), request("/reject"));
    assert_eq!(seen(&mut server, c), "HTTP/1.1 403 Forbidden");
    server.advance(Duration::from_secs(2));
    zero(&server, "a refusal by the application");

    // 9. Open, then the shutdown drains it; and one still in its header is dropped.
    let open = server.connect_from(proxy, &v1(&step(9)), request("/"));
    assert_eq!(seen(&mut server, open), step(9));
    let half = server.connect_raw_from(proxy);
    server.send_raw(half, b"PROXY ");
    assert_eq!((server.admitted(), server.admitted_addresses()), (2, 1));
    server.shutdown();
    assert_eq!(server.close_code(open), Some(CloseCode::SERVICE_RESTART));
    server.advance(Duration::from_secs(2));
    assert!(server.is_finished());
    zero(&server, "the shutdown");
}
