//! wss: the server's TLS over real loopback sockets, against a rustls client trusting a test CA
//! made for the run: both protocol versions and ALPN, echo, fanout with and without deflate,
//! heartbeats, backpressure, the memory budget, graceful shutdown's close_notify, the handshake
//! deadline over a stalled TLS handshake, refusals of bad files at start, and the binary's
//! reload of its certificate on SIGHUP without dropping connections.

mod common;

use common::{start, stop, tcp_connect, test_config, ClientStream, Received, TestClient};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use ws_mio_server::{Broadcast, Config, Echo};
use ws_proto::deflate::DeflateConfig;
use ws_proto::{CloseCode, CloseFrame, Event, Message};

/// TLS over a test socket.
struct Tls(StreamOwned<ClientConnection, TcpStream>);

impl Read for Tls {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Tls {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl ClientStream for Tls {
    fn tcp(&self) -> &TcpStream {
        &self.0.sock
    }
}

/// A CA made for this test, and a server certificate it signed for `localhost` and
/// 127.0.0.1, written as PEM files in a directory of their own.
struct TestPki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
}

impl TestPki {
    fn new(name: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!("ws-mio-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ws-mio-server test CA {name}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = TestPki {
            ca: ca.der().clone(),
            dir,
        };
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let leaf = CertificateParams::new(names).unwrap();
        let key_pair = KeyPair::generate().unwrap();
        let issued = leaf.signed_by(&key_pair, &ca).unwrap();
        std::fs::write(pki.path("cert.pem"), issued.pem()).unwrap();
        std::fs::write(pki.path("key.pem"), key_pair.serialize_pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn config(&self) -> Config {
        Config {
            tls_cert: Some(self.path("cert.pem")),
            tls_key: Some(self.path("key.pem")),
            ..test_config()
        }
    }

    fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    /// A TLS connection to `addr`, its handshake done.
    fn tls(&self, addr: SocketAddr, versions: &[&'static rustls::SupportedProtocolVersion]) -> Tls {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(Arc::new(self.client_config(versions)), name).unwrap();
        let mut stream = StreamOwned::new(conn, tcp_connect(addr));
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .expect("TLS handshake");
        }
        Tls(stream)
    }

    fn connect(&self, addr: SocketAddr, target: &str) -> TestClient<Tls> {
        let tls = self.tls(addr, rustls::DEFAULT_VERSIONS);
        TestClient::over(tls, addr, target, ws_proto::Config::default(), None).0
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The certificate the server presented.
fn presented(tls: &Tls) -> CertificateDer<'static> {
    tls.0.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// The certificate in a PEM file.
fn certificate_in(path: &Path) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path).unwrap()
}

/// Reads until the server ends the stream: whether it did so with close_notify (a clean end)
/// rather than by closing the socket alone.
fn ends_with_close_notify(client: &mut TestClient<Tls>) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match client.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return false,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

#[test]
fn echo_over_tls_1_2_and_1_3_with_alpn_http_1_1() {
    let pki = TestPki::new("echo");
    let (addr, handle, server) = start(pki.config(), Echo);
    assert!(handle.is_tls());
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let tls = pki.tls(addr, &[version]);
        assert_eq!(tls.0.conn.protocol_version(), Some(expected));
        assert_eq!(tls.0.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut client, _) = TestClient::over(tls, addr, "/", ws_proto::Config::default(), None);
        client.send_text("hello");
        assert_eq!(client.next_text(), "hello");
        // A message larger than a TLS record and than the read buffer.
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        client.send(&Message::Binary(big.clone().into()));
        assert_eq!(client.next_message(), Message::Binary(big.into()));
        client.close();
        match client.next() {
            Received::Event(Event::Close(Some(CloseFrame { code, .. }))) => {
                assert_eq!(code, CloseCode::NORMAL)
            }
            other => panic!("expected the close reply, got {other:?}"),
        }
        assert!(ends_with_close_notify(&mut client), "{expected:?}");
    }
    stop(handle, server);
}

#[test]
fn plain_clients_and_garbage_are_refused_by_a_tls_listener_without_harm() {
    let pki = TestPki::new("garbage");
    let (addr, handle, server) = start(pki.config(), Echo);
    let mut plain = tcp_connect(addr);
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    // The server answers the non-TLS bytes with an alert, then closes.
    let _ = plain.read_to_end(&mut out);
    assert!(!out.starts_with(b"HTTP"), "{out:?}");
    let mut client = pki.connect(addr, "/");
    client.send_text("still serving");
    assert_eq!(client.next_text(), "still serving");
    stop(handle, server);
}

#[test]
fn fanout_over_tls_reaches_every_member_with_and_without_deflate() {
    let pki = TestPki::new("fanout");
    let (addr, handle, server) = start(pki.config(), Broadcast);
    let mut plain: Vec<TestClient<Tls>> = (0..3).map(|_| pki.connect(addr, "/")).collect();
    let tls = pki.tls(addr, rustls::DEFAULT_VERSIONS);
    let (mut deflated, accepted) = TestClient::over(
        tls,
        addr,
        "/",
        ws_proto::Config::default(),
        Some(DeflateConfig::default()),
    );
    assert!(accepted, "deflate negotiated over TLS");
    common::wait_until("four members", || {
        handle.rooms().member_count(Broadcast::ROOM) == 4
    });
    let text = "fanout ".repeat(100);
    plain[0].send_text(&text);
    for client in &mut plain {
        assert_eq!(client.next_text(), text);
    }
    assert_eq!(deflated.next_text(), text);
    deflated.send_text("from the deflating member");
    for client in &mut plain {
        assert_eq!(client.next_text(), "from the deflating member");
    }
    stop(handle, server);
}

#[test]
fn a_tls_client_that_never_reads_is_held_to_the_high_water_mark() {
    let pki = TestPki::new("backpressure");
    let mut config = pki.config();
    config.high_water_mark = 256 << 10;
    let (addr, handle, server) = start(config, Broadcast);
    let slow = pki.connect(addr, "/");
    let mut fast = pki.connect(addr, "/");
    common::wait_until("two members", || {
        handle.rooms().member_count(Broadcast::ROOM) == 2
    });
    let payload = Message::Text("x".repeat(4096).into());
    let total = 3000; // 12 MiB through the room
    for i in 0..total {
        handle.publish(Broadcast::ROOM, &payload);
        if i % 50 == 49 {
            // Paced by the member that reads, so no worker's inbox overflows.
            for _ in 0..50 {
                fast.next_text();
            }
        }
    }
    let m = handle.metrics().snapshot();
    assert!(m.backpressure_drops_total > 0, "{m:?}");
    // Ciphertext waits in a bounded buffer; the rest stays in the queue backpressure sees.
    assert!(
        m.queued_bytes <= (256 << 10) + 8192,
        "queued {}",
        m.queued_bytes
    );
    drop(slow);
    stop(handle, server);
}

#[test]
fn tls_state_counts_in_the_memory_budget() {
    let pki = TestPki::new("budget");
    let (addr, handle, server) = start(pki.config(), Echo);
    let before = handle.metrics().snapshot().held_bytes;
    let mut clients: Vec<TestClient<Tls>> = (0..4).map(|_| pki.connect(addr, "/")).collect();
    for client in &mut clients {
        client.send_text("x");
        assert_eq!(client.next_text(), "x");
    }
    let held = handle.metrics().snapshot().held_bytes - before;
    // Each connection's TLS state at least: more than a plain connection's few bytes.
    assert!(held >= 4 * (32 << 10), "held {held}");
    drop(clients);
    common::wait_until("the connections gone", || {
        handle.metrics().snapshot().connections_open == 0
    });
    assert_eq!(handle.metrics().snapshot().held_bytes, 0);
    stop(handle, server);
}

#[test]
fn graceful_shutdown_closes_with_1012_then_close_notify() {
    let pki = TestPki::new("shutdown");
    let mut config = pki.config();
    config.drain_timeout = Duration::from_secs(5);
    let (addr, handle, server) = start(config, Echo);
    let mut client = pki.connect(addr, "/");
    client.send_text("hi");
    assert_eq!(client.next_text(), "hi");
    handle.shutdown();
    match client.next() {
        Received::Event(Event::Close(Some(CloseFrame { code, .. }))) => {
            assert_eq!(code, CloseCode::SERVICE_RESTART)
        }
        other => panic!("expected 1012, got {other:?}"),
    }
    // The client's reply went out with the close event; the server ends TLS properly.
    assert!(ends_with_close_notify(&mut client));
    server.join().unwrap();
}

#[test]
fn a_stalled_tls_handshake_is_closed_by_the_handshake_deadline() {
    let pki = TestPki::new("stall");
    let mut config = pki.config();
    config.handshake_timeout = Duration::from_secs(1);
    let (addr, handle, server) = start(config, Echo);
    // The first bytes of a real ClientHello, and nothing more.
    let mut hello = Vec::new();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn =
        ClientConnection::new(Arc::new(pki.client_config(rustls::DEFAULT_VERSIONS)), name).unwrap();
    conn.write_tls(&mut hello).unwrap();
    let mut partial = tcp_connect(addr);
    partial.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut silent = tcp_connect(addr);
    for socket in [&mut partial, &mut silent] {
        // Closed by the server (a read timeout would fail the test: WAIT is far longer than
        // the deadline), with at most a TLS alert before: no HTTP answer in clear.
        let mut out = Vec::new();
        match socket.read_to_end(&mut out) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the server to close, got {e}"),
        }
        assert!(out.is_empty() || out[0] == 0x15, "an alert record: {out:?}");
    }
    assert_eq!(handle.metrics().snapshot().handshake_timeouts_total, 2);
    // A whole handshake still works.
    let mut client = pki.connect(addr, "/");
    client.send_text("ok");
    assert_eq!(client.next_text(), "ok");
    stop(handle, server);
}

#[test]
fn a_missing_or_mismatched_key_fails_the_start_clearly() {
    let pki = TestPki::new("bad-files");
    let other = TestPki::new("bad-files-other");
    let fails = |cert: &Path, key: &Path| {
        let config = Config {
            tls_cert: Some(cert.to_owned()),
            tls_key: Some(key.to_owned()),
            ..test_config()
        };
        let e = ws_mio_server::Server::start(config, Echo).expect_err("a bad TLS file");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        e.to_string()
    };
    let missing = fails(&pki.path("cert.pem"), &pki.path("absent.pem"));
    assert!(missing.contains("absent.pem"), "{missing}");
    let mismatched = fails(&pki.path("cert.pem"), &other.path("key.pem"));
    assert!(mismatched.contains("does not match"), "{mismatched}");
    // A key file given as the certificate holds no certificate.
    let swapped = fails(&pki.path("key.pem"), &pki.path("key.pem"));
    assert!(swapped.contains("key.pem"), "{swapped}");
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let pki = TestPki::new("reload");
    let cert = pki.path("cert.pem");
    let key = pki.path("key.pem");
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--admin-listen",
        "off",
        "--workers",
        "2",
    ];
    let server = common::ServerProcess::spawn(env!("CARGO_BIN_EXE_ws-mio-server"), &args, &[]);
    let addr = server.addr;
    let tls = pki.tls(addr, rustls::DEFAULT_VERSIONS);
    let first = certificate_in(&cert);
    assert_eq!(presented(&tls), first);
    let (mut open, _) = TestClient::over(tls, addr, "/", ws_proto::Config::default(), None);
    open.send_text("before");
    assert_eq!(open.next_text(), "before");

    // A new certificate from a new CA: written beside the old files, then moved over them, as
    // a deployment would.
    let second = TestPki::new("reload-second");
    std::fs::copy(second.path("cert.pem"), pki.path("cert.new")).unwrap();
    std::fs::copy(second.path("key.pem"), pki.path("key.new")).unwrap();
    std::fs::rename(pki.path("cert.new"), &cert).unwrap();
    std::fs::rename(pki.path("key.new"), &key).unwrap();
    server.signal("HUP");
    // New handshakes present the new certificate once the signal is handled (until then
    // they fail: this client trusts only the new CA).
    let mut fresh = None;
    common::wait_until("the new certificate", || {
        let name = ServerName::try_from("localhost").unwrap();
        let config = Arc::new(second.client_config(rustls::DEFAULT_VERSIONS));
        let conn = ClientConnection::new(config, name).unwrap();
        let mut stream = StreamOwned::new(conn, tcp_connect(addr));
        while stream.conn.is_handshaking() {
            if stream.conn.complete_io(&mut stream.sock).is_err() {
                return false;
            }
        }
        fresh = Some(Tls(stream));
        true
    });
    let fresh = fresh.unwrap();
    assert_eq!(presented(&fresh), certificate_in(&second.path("cert.pem")));
    assert_ne!(presented(&fresh), first);
    let (mut client, _) = TestClient::over(fresh, addr, "/", ws_proto::Config::default(), None);
    client.send_text("new");
    assert_eq!(client.next_text(), "new");
    // The connection opened before goes on, on its old session.
    open.send_text("after");
    assert_eq!(open.next_text(), "after");
}

#[test]
fn a_reload_of_broken_files_keeps_the_certificate_in_use() {
    let pki = TestPki::new("broken-reload");
    let (addr, handle, server) = start(pki.config(), Echo);
    let before = certificate_in(&pki.path("cert.pem"));
    std::fs::write(pki.path("key.pem"), "not a key").unwrap();
    assert!(handle.reload_tls().is_err());
    let tls = pki.tls(addr, rustls::DEFAULT_VERSIONS);
    assert_eq!(presented(&tls), before);
    let (mut client, _) = TestClient::over(tls, addr, "/", ws_proto::Config::default(), None);
    client.send_text("still");
    assert_eq!(client.next_text(), "still");
    stop(handle, server);
}

#[test]
fn heartbeats_run_over_tls_a_silent_client_is_dropped_an_answering_one_kept() {
    let pki = TestPki::new("heartbeat");
    let mut config = pki.config();
    config.ping_interval = Duration::from_millis(200);
    // Long beside the answering client's turns (50 ms), so a busy machine does not fail it.
    config.pong_timeout = Duration::from_secs(1);
    let (addr, handle, server) = start(config, Echo);
    let mut silent = pki.connect(addr, "/");
    let mut answering = pki.connect(addr, "/");
    // The answering client reads (its engine answers each ping) until the silent one is gone.
    common::wait_until("the silent client dropped", || {
        let _ = answering.arriving_within(Duration::from_millis(50));
        answering.flush();
        handle.metrics().snapshot().connections_open == 1
    });
    // The silent one finds pings, then the end of the connection.
    let mut pings = 0;
    loop {
        match silent.conn.poll_event() {
            Some(Event::Ping(_)) => pings += 1,
            Some(_) => {}
            None => {
                let mut buf = [0u8; 4096];
                match silent.stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let _ = silent.conn.receive(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                    Err(e) => panic!("read failed: {e}"),
                }
            }
        }
    }
    assert!(pings >= 1, "pings seen: {pings}");
    answering.send_text("still here");
    assert_eq!(answering.next_text(), "still here");
    stop(handle, server);
}
