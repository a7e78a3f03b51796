//! The handshake rate limit on pretend time: a token bucket per client (an IPv4 address or an
//! IPv6 /64), shared by the workers, refilled on the workers' time; past it, 429 with
//! `Retry-After`. (The table's eviction when full is tested with the table, in
//! `src/worker/handshake_rate.rs`.)

use std::net::SocketAddr;
use std::time::Duration;
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{Config, Echo, Handler};
use ws_proto::handshake::client::ClientRequest;

fn config(rate: f64, burst: f64) -> Config {
    Config {
        workers: 2,
        handshake_rate: rate,
        handshake_burst: burst,
        ..Config::default()
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Whether a client from `peer` completes its handshake; its answer if not.
fn attempt<H: Handler>(server: &mut TestServer<H>, peer: &str) -> Result<ClientId, String> {
    let client = server.connect_from(addr(peer), b"", ClientRequest::new("x", "/"));
    if server.is_open(client) {
        Ok(client)
    } else {
        Err(String::from_utf8_lossy(server.raw(client)).into_owned())
    }
}

/// Rule: a client may make `burst` handshakes at once, then `rate` a second; past that it
/// gets 429 with Retry-After (whole seconds until its next token), counted in the metrics.
#[test]
fn a_burst_then_the_rate_then_429_with_retry_after() {
    let mut server = TestServer::new(config(2.0, 3.0), Echo);
    for _ in 0..3 {
        attempt(&mut server, "192.0.2.1:1").unwrap();
    }
    let refused = attempt(&mut server, "192.0.2.1:1").unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 429 "), "{refused}");
    assert!(refused.contains("Retry-After: 1\r\n"), "{refused}");
    assert_eq!(server.snapshot().handshakes_rate_limited_total, 1);
    // Nothing was reserved for the refused one.
    assert_eq!(server.admitted(), 3);
    // Half a second gives one token back (two a second), not two.
    server.advance(Duration::from_millis(500));
    attempt(&mut server, "192.0.2.1:1").unwrap();
    attempt(&mut server, "192.0.2.1:1").unwrap_err();
    // A long wait refills to the burst and no further.
    server.advance(Duration::from_secs(60));
    for _ in 0..3 {
        attempt(&mut server, "192.0.2.1:1").unwrap();
    }
    attempt(&mut server, "192.0.2.1:1").unwrap_err();
    // Another client was never limited by it.
    attempt(&mut server, "192.0.2.2:1").unwrap();
}

/// Rule: IPv6 clients share a bucket per /64 (`--ipv6-prefix-len`), IPv4 per address; IPv4
/// mapped into IPv6 is the IPv4 address.
#[test]
fn ipv6_clients_share_a_bucket_per_prefix() {
    let mut server = TestServer::new(config(1.0, 2.0), Echo);
    attempt(&mut server, "[2001:db8:0:1::1]:1").unwrap();
    attempt(&mut server, "[2001:db8:0:1::2]:1").unwrap();
    // A third host of the same /64 is the same client.
    attempt(&mut server, "[2001:db8:0:1:ffff::3]:1").unwrap_err();
    // The next /64 is another.
    attempt(&mut server, "[2001:db8:0:2::1]:1").unwrap();
    attempt(&mut server, "192.0.2.7:1").unwrap();
    attempt(&mut server, "[::ffff:192.0.2.7]:1").unwrap();
    attempt(&mut server, "192.0.2.7:2").unwrap_err();
    // With a prefix of 128 each address is its own client.
    let mut exact = TestServer::new(
        Config {
            ipv6_prefix_len: 128,
            ..config(1.0, 1.0)
        },
        Echo,
    );
    attempt(&mut exact, "[2001:db8:0:1::1]:1").unwrap();
    attempt(&mut exact, "[2001:db8:0:1::2]:1").unwrap();
    attempt(&mut exact, "[2001:db8:0:1::2]:1").unwrap_err();
}

/// Rule: a trusted proxy's connections count against their clients' buckets, not the
/// proxy's.
#[test]
fn a_trusted_proxys_clients_each_have_their_own_bucket() {
    let mut server = TestServer::new(
        Config {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..config(1.0, 2.0)
        },
        Echo,
    );
    let via = |server: &mut TestServer<Echo>, client: &str| {
        let request = ClientRequest::new("x", "/").header("X-Forwarded-For", client);
        let c = server.connect_from(addr("10.0.0.1:1"), b"", request);
        server.is_open(c)
    };
    // Ten clients through the proxy, two handshakes each: all in, though the proxy made 20.
    for n in 0..10 {
        let client = format!("203.0.113.{n}");
        assert!(
            via(&mut server, &client) && via(&mut server, &client),
            "{client}"
        );
    }
    // The third of one client is refused; the admission counts only the open ones.
    assert!(!via(&mut server, "203.0.113.0"));
    assert_eq!(server.admitted(), 20);
    assert_eq!(server.snapshot().handshakes_rate_limited_total, 1);
    // The table holds the clients, not the proxy.
    assert_eq!(server.rate_limited_clients(), 10);
}

/// Rule: the rate is the workers' time: without time passing, no token comes back, however
/// many workers the attempts spread over.
#[test]
fn the_workers_share_one_table() {
    let mut server = TestServer::new(
        Config {
            workers: 4,
            ..config(1.0, 4.0)
        },
        Echo,
    );
    // Connections go round the four workers.
    for _ in 0..4 {
        attempt(&mut server, "192.0.2.1:1").unwrap();
    }
    for _ in 0..4 {
        attempt(&mut server, "192.0.2.1:1").unwrap_err();
    }
    assert_eq!(server.rate_limited_clients(), 1);
}
