//! Interoperability with tokio-tungstenite, both ways over loopback: our client against
//! their server, their client against our server. Text, binary, large and fragmented
//! messages, pings, close codes. tokio-tungstenite 0.28 has no permessage-deflate: our offer
//! goes unanswered and both sides speak uncompressed.

mod common;

use bytes::Bytes;
use common::listener;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode as TCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame as TCloseFrame, Frame};
use tokio_tungstenite::tungstenite::Message as TMessage;
use ws_tokio::{Acceptor, ClientOptions, CloseCode, Config, DeflateConfig, Message, MessageKind};

fn large() -> Vec<u8> {
    (0..4_000_000u32).map(|i| (i % 253) as u8).collect()
}

/// Their echo server; `close` makes it close with 4002.
async fn their_server() -> std::net::SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            match message {
                TMessage::Text(t) if t.as_str() == "close" => {
                    let frame = TCloseFrame {
                        code: TCode::from(4002),
                        reason: "theirs".into(),
                    };
                    ws.close(Some(frame)).await.unwrap();
                }
                m @ (TMessage::Text(_) | TMessage::Binary(_)) => ws.send(m).await.unwrap(),
                _ => {}
            }
        }
    });
    addr
}

#[tokio::test]
async fn our_client_against_their_server() {
    let addr = their_server().await;
    let config = Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let mut ws = options.connect().await.unwrap();
    assert_eq!(
        ws.connection().extension_name(),
        None,
        "tungstenite does not compress"
    );
    ws.send(Message::Text("h\u{e9}llo".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("h\u{e9}llo".into())
    );
    ws.send(Message::Binary(Bytes::from(large())))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(large().into())
    );
    ws.send_fragment(MessageKind::Binary, b"frag", false)
        .await
        .unwrap();
    ws.ping(b"between fragments").await.unwrap();
    ws.send_fragment(MessageKind::Binary, b"mented", true)
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(Bytes::from_static(b"fragmented"))
    );
    // Their close code reaches us, and the stream ends cleanly.
    ws.send(Message::Text("close".into())).await.unwrap();
    assert!(ws.next().await.is_none());
    let frame = ws.close_frame().unwrap().unwrap();
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode(4002), "theirs")
    );
}

#[tokio::test(start_paused = true)]
async fn their_server_answers_our_heartbeat() {
    let addr = their_server().await;
    let config = Config {
        ping_interval: Some(Duration::from_secs(1)),
        pong_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let mut ws = options.connect().await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(quiet.is_err(), "the connection stays up: {quiet:?}");
    assert!(ws.rtt().is_some());
    // They answer our close frame, so the closing handshake completes.
    ws.close(CloseCode(4001), "ours").await.unwrap();
}

#[tokio::test]
async fn their_client_against_our_server() {
    let (listener, addr) = listener().await;
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let config = Config {
            deflate: Some(DeflateConfig::default()),
            ..Config::default()
        };
        let mut ws = Acceptor::new(config).accept(tcp).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if message.as_bytes() == b"close" {
                ws.close(CloseCode(4004), "ours").await.unwrap();
                break;
            }
            ws.send(message).await.unwrap();
        }
        let code = ws.close_frame().flatten().map(|f| f.code);
        let _ = closed_tx.send(code);
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
        .await
        .unwrap();
    ws.send(TMessage::text("h\u{e9}llo")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        TMessage::text("h\u{e9}llo")
    );
    ws.send(TMessage::binary(large())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), TMessage::binary(large()));
    // A text message in three frames, a ping among them.
    let frames = [
        Frame::message(&b"fra"[..], OpCode::Data(Data::Text), false),
        Frame::message(&b"gmen"[..], OpCode::Data(Data::Continue), false),
        Frame::ping(&b"in between"[..]),
        Frame::message(&b"ted"[..], OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        ws.send(TMessage::Frame(frame)).await.unwrap();
    }
    // The pong comes first: it was answered as the ping arrived.
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        TMessage::Pong(Bytes::from_static(b"in between"))
    );
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        TMessage::text("fragmented")
    );
    // Our close code reaches them.
    ws.send(TMessage::text("close")).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        TMessage::Close(Some(frame)) => {
            assert_eq!(
                (u16::from(frame.code), frame.reason.as_str()),
                (4004, "ours")
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(ws.next().await.is_none());
    assert_eq!(closed_rx.await.unwrap(), Some(CloseCode(4004)));
}

#[tokio::test]
async fn their_close_code_reaches_our_server() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = ws_tokio::accept(tcp).await.unwrap();
        assert!(ws.next().await.is_none());
        ws.close_frame()
            .flatten()
            .map(|f| (f.code, f.reason.to_string()))
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
        .await
        .unwrap();
    let frame = TCloseFrame {
        code: TCode::from(4003),
        reason: "theirs".into(),
    };
    ws.close(Some(frame)).await.unwrap();
    while ws.next().await.is_some() {}
    assert_eq!(
        server.await.unwrap(),
        Some((CloseCode(4003), "theirs".to_string()))
    );
}
