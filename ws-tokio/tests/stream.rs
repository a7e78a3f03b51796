//! WebSocketStream over real loopback sockets: messages both ways, the handshake's choices,
//! violations answered with their close codes, the closing handshake, backpressure and wss.

mod common;

use bytes::Bytes;
use common::{accepting_server, echo_server, listener};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_proto::{HandshakeError, ProtocolViolation};
use ws_tokio::error::Timeout;
use ws_tokio::{
    Acceptor, ClientOptions, CloseCode, Config, DeflateConfig, Error, Message, MessageKind,
    StatusCode,
};

fn text(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

#[tokio::test]
async fn echoes_text_binary_large_and_fragmented_messages() {
    let addr = echo_server(Acceptor::new(Config::default())).await;
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    ws.send(text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), text("hello"));
    let large: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::Binary(Bytes::from(large.clone())))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(large.into())
    );
    ws.send_fragment(MessageKind::Text, "h\u{e9}".as_bytes(), false)
        .await
        .unwrap();
    ws.send_fragment(MessageKind::Text, b"llo", true)
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), text("h\u{e9}llo"));
    // Many messages fed at once come back in order.
    for i in 0..500 {
        ws.feed(text(&i.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..500 {
        assert_eq!(ws.next().await.unwrap().unwrap(), text(&i.to_string()));
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(ws.next().await.is_none());
}

#[tokio::test]
async fn negotiates_subprotocol_and_permessage_deflate() {
    let server_config = Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    };
    let acceptor = Acceptor::new(server_config).protocols(&["v2", "v1"]);
    let (addr, mut accepted) = accepting_server(acceptor).await;
    let client_config = Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    };
    let mut client = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .protocols(&["v1", "v2"])
        .config(client_config)
        .connect()
        .await
        .unwrap();
    let mut server = accepted.recv().await.unwrap();
    // The server's preference wins among what the client offered.
    assert_eq!(
        (client.protocol(), server.protocol()),
        (Some("v2"), Some("v2"))
    );
    assert_eq!(
        client.connection().extension_name(),
        Some("permessage-deflate")
    );
    assert_eq!(
        server.connection().extension_name(),
        Some("permessage-deflate")
    );
    let long = "compressible ".repeat(1000);
    client.send(text(&long)).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), text(&long));
    server.send(text(&long)).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text(&long));
}

#[tokio::test]
async fn a_refused_request_gets_its_status_on_both_sides() {
    let acceptor = Acceptor::new(Config::default()).check(|request| {
        if request.query_param("token").as_deref() == Some("good") {
            Ok(())
        } else {
            Err(StatusCode::UNAUTHORIZED)
        }
    });
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.map(|_| ())
    });
    let client = ws_tokio::connect(&format!("ws://{addr}/?token=bad")).await;
    assert!(matches!(
        client,
        Err(Error::Handshake(HandshakeError::NotSwitchingProtocols(
            StatusCode::UNAUTHORIZED
        )))
    ));
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Rejected(StatusCode::UNAUTHORIZED))
    ));
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_is_answered_with_400() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        ws_tokio::accept(tcp).await.map(|_| ())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Handshake(HandshakeError::MissingUpgrade))
    ));
}

/// A raw client's handshake, so the test can write any bytes after it.
async fn raw_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// A raw server's side of the handshake, so the test can write any bytes after it.
async fn raw_server_handshake(tcp: &mut TcpStream) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let text = String::from_utf8(head).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        ws_proto::handshake::accept_key(key.trim())
    );
    tcp.write_all(answer.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn violations_are_reported_and_answered_with_their_close_code() {
    let mut config = Config::default();
    config.protocol.max_message_size = 1000;
    let (addr, mut accepted) = accepting_server(Acceptor::new(config)).await;
    // An unmasked frame from a client: 1002.
    let mut tcp = raw_client(addr).await;
    let mut server = accepted.recv().await.unwrap();
    tcp.write_all(b"\x81\x02hi").await.unwrap();
    assert!(matches!(
        server.next().await,
        Some(Err(Error::Protocol(ProtocolViolation::UnmaskedClientFrame)))
    ));
    assert!(server.next().await.is_none());
    let mut close = Vec::new();
    tcp.read_to_end(&mut close).await.unwrap();
    assert_eq!(close, b"\x88\x02\x03\xea");
    // A message over the limit: 1009, announced by the header alone.
    let mut tcp = raw_client(addr).await;
    let mut server = accepted.recv().await.unwrap();
    tcp.write_all(&[0x82, 0xfe, 0x10, 0x00, 0, 0, 0, 0])
        .await
        .unwrap();
    assert!(matches!(
        server.next().await,
        Some(Err(Error::Protocol(ProtocolViolation::MessageTooLarge)))
            | Some(Err(Error::Protocol(ProtocolViolation::FrameTooLarge(_))))
    ));
    let mut close = Vec::new();
    tcp.read_to_end(&mut close).await.unwrap();
    assert_eq!(&close[..4], b"\x88\x02\x03\xf1");
}

#[tokio::test]
async fn close_codes_travel_both_ways_and_a_dropped_transport_is_abnormal() {
    let (addr, mut accepted) = accepting_server(Acceptor::new(Config::default())).await;
    let mut client = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    client.start_close(CloseCode(4001), "bye").unwrap();
    assert!(matches!(
        client.send(text("late")).await,
        Err(Error::Closed)
    ));
    // Reading writes the close frame and waits for the answer.
    let client = tokio::spawn(async move {
        assert!(client.next().await.is_none());
        client
    });
    assert!(server.next().await.is_none());
    let frame = server.close_frame().unwrap().unwrap();
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode(4001), "bye")
    );
    let client = client.await.unwrap();
    assert_eq!(client.close_frame().unwrap().unwrap().code, CloseCode(4001));

    let client = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    drop(client);
    assert!(matches!(
        server.next().await,
        Some(Err(Error::ClosedAbnormally))
    ));
    assert!(server.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_ping_drops_the_connection_after_the_pong_timeout() {
    let mut server_config = Config::default();
    server_config.protocol.auto_pong = false;
    let (addr, mut accepted) = accepting_server(Acceptor::new(server_config)).await;
    let config = Config {
        ping_interval: Some(Duration::from_secs(10)),
        pong_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let mut client = options.connect().await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    tokio::spawn(async move { while server.next().await.is_some() {} });
    let start = tokio::time::Instant::now();
    assert!(matches!(
        client.next().await,
        Some(Err(Error::Timeout(Timeout::Pong)))
    ));
    // Pretend time: the ping at 10 s, its deadline 5 s later.
    assert_eq!(start.elapsed().as_secs(), 15);
    assert_eq!(client.rtt(), None);
}

#[tokio::test(start_paused = true)]
async fn answered_pings_measure_the_round_trip() {
    let (addr, mut accepted) = accepting_server(Acceptor::new(Config::default())).await;
    let config = Config {
        ping_interval: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let mut client = options.connect().await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    tokio::spawn(async move { while server.next().await.is_some() {} });
    // Read through several heartbeats: the connection stays up and the round trip is known.
    let quiet = tokio::time::timeout(Duration::from_secs(35), client.next()).await;
    assert!(quiet.is_err(), "no message and no failure: {quiet:?}");
    let rtt = client.rtt().expect("a measured round trip");
    assert!(rtt < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_the_handshake_times_out() {
    let (listener, addr) = listener().await;
    let _held = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(tcp);
    });
    let start = tokio::time::Instant::now();
    let result = ws_tokio::connect(&format!("ws://{addr}/")).await;
    assert!(matches!(result, Err(Error::Timeout(Timeout::Handshake))));
    assert_eq!(start.elapsed().as_secs(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_does_not_read_makes_sending_wait_within_the_write_limit() {
    let (listener, addr) = listener().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = ws_tokio::accept(tcp).await.unwrap();
        let _ = tx.send(ws); // handed over and never read
    });
    let config = Config {
        write_buffer_limit: 64 << 10,
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let mut client = options.connect().await.unwrap();
    let _server = rx.await.unwrap();
    let message = Message::Binary(vec![7u8; 16 << 10].into());
    let mut sent = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), client.feed(message.clone())).await {
            Ok(result) => result.unwrap(),
            Err(_) => break, // waiting: the socket buffers and the write limit are full
        }
        sent += 1;
        assert!(sent < 100_000, "sending never waited");
    }
    let queued = client.connection().pending_transmit_len();
    assert!(queued <= (64 << 10) + (17 << 10), "{queued} bytes queued");
}

#[tokio::test]
async fn wss_with_a_private_ca_and_a_rustls_server_config() {
    let (listener, addr) = listener().await;
    let tls = ws_tokio::tokio_rustls::TlsAcceptor::from(common::server_tls());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = Acceptor::new(Config::default())
            .accept_tls(tcp, &tls)
            .await
            .unwrap();
        common::echo(ws).await;
    });
    let roots = ws_tokio::tls::client_config_with_roots([common::ca_cert()]).unwrap();
    let url = format!("wss://localhost:{}/", addr.port());
    let mut ws = ClientOptions::new(&url)
        .unwrap()
        .tls_config(roots)
        .connect()
        .await
        .unwrap();
    assert!(matches!(ws.get_ref(), ws_tokio::MaybeTlsStream::Tls(_)));
    let large = "x".repeat(200_000);
    ws.send(text("over tls")).await.unwrap();
    ws.send(text(&large)).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), text("over tls"));
    assert_eq!(ws.next().await.unwrap().unwrap(), text(&large));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

#[tokio::test]
async fn wss_refuses_a_certificate_from_an_unknown_ca() {
    let (listener, addr) = listener().await;
    let tls = ws_tokio::tokio_rustls::TlsAcceptor::from(common::server_tls());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = Acceptor::new(Config::default()).accept_tls(tcp, &tls).await;
    });
    // The default roots (webpki-roots) do not include the test CA.
    let result = ws_tokio::connect(&format!("wss://localhost:{}/", addr.port())).await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}

#[tokio::test]
async fn a_reset_after_the_closing_handshake_is_a_clean_end() {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        raw_server_handshake(&mut tcp).await;
        // The client's masked close frame with 1000, answered; then a reset, not a FIN.
        let mut close = [0u8; 8];
        tcp.read_exact(&mut close).await.unwrap();
        tcp.write_all(b"\x88\x02\x03\xe8").await.unwrap();
        // Deprecated because a lingering close blocks the thread; a zero linger resets at once.
        #[allow(deprecated)]
        tcp.set_linger(Some(Duration::ZERO)).unwrap();
        drop(tcp);
    });
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(ws.close_frame().unwrap().unwrap().code, CloseCode::NORMAL);
    assert!(ws.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_pong_waiting_unread_in_the_socket_counts_as_an_answer() {
    let (listener, addr) = listener().await;
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        raw_server_handshake(&mut tcp).await;
        // The heartbeat's ping (8 bytes, masked) is answered only when the test says so.
        answer_rx.await.unwrap();
        let mut ping = [0u8; 14];
        tcp.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping[..2], b"\x89\x88");
        let payload: Vec<u8> = (0..8).map(|i| ping[6 + i] ^ ping[2 + i % 4]).collect();
        tcp.write_all(&[&b"\x8a\x08"[..], &payload].concat())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let config = Config {
        ping_interval: Some(Duration::from_secs(10)),
        pong_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let mut client = options.connect().await.unwrap();
    // Read long enough for the ping to go out (at 10 s), then leave the stream unread.
    assert!(tokio::time::timeout(Duration::from_secs(11), client.next())
        .await
        .is_err());
    answer_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Read again, long past the pong deadline: the pong in the socket is taken first.
    let quiet = tokio::time::timeout(Duration::from_secs(1), client.next()).await;
    assert!(quiet.is_err(), "the connection stays up: {quiet:?}");
    assert!(client.rtt().is_some());
}

#[tokio::test]
async fn a_streaming_engine_setting_still_delivers_whole_messages() {
    let mut config = Config::default();
    config.protocol.streaming = true;
    let (addr, mut accepted) = accepting_server(Acceptor::new(config)).await;
    let mut client = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    client
        .send_fragment(MessageKind::Binary, b"who", false)
        .await
        .unwrap();
    client
        .send_fragment(MessageKind::Binary, b"le", true)
        .await
        .unwrap();
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Binary(Bytes::from_static(b"whole"))
    );
}
