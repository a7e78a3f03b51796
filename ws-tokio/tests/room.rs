//! Frames encoded once for many connections, over real loopback sockets: `send_encoded` and
//! `feed_encoded` on plain and permessage-deflate connections, and `Room`: every member gets
//! every message in order, and a member whose peer does not read lags behind a bounded log
//! while its own queue stays within the write limit.

mod common;

use common::{accepting_server, listener};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use ws_proto::deflate::compress_shared;
use ws_proto::UsageError;
use ws_tokio::room::Room;
use ws_tokio::{
    Acceptor, ClientOptions, CloseCode, Config, DeflateConfig, EncodedFrame, Error, Message,
    MessageKind,
};

fn text(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

fn deflate_config() -> Config {
    Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    }
}

#[tokio::test]
async fn encoded_frames_reach_a_plain_client_and_a_client_cannot_send_them() {
    let (addr, mut accepted) = accepting_server(Acceptor::new(Config::default())).await;
    let mut client = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    let frame = EncodedFrame::new(MessageKind::Text, b"to everyone");
    server.send_encoded(&frame).await.unwrap();
    // Fed frames and messages leave in order, with the next flush.
    server.feed_encoded(&frame).await.unwrap();
    server.feed(text("owned")).await.unwrap();
    let binary = EncodedFrame::new(MessageKind::Binary, &[7u8; 300]);
    server.feed_encoded(&binary).await.unwrap();
    server.flush().await.unwrap();
    for expected in [
        text("to everyone"),
        text("to everyone"),
        text("owned"),
        Message::Binary(vec![7u8; 300].into()),
    ] {
        assert_eq!(client.next().await.unwrap().unwrap(), expected);
    }
    // A compressed frame is refused on a connection without permessage-deflate, and nothing
    // of it is sent.
    let compressed = compress_shared(MessageKind::Text, "abc ".repeat(50).as_bytes(), 15, 6);
    assert!(matches!(
        server.send_encoded(&compressed).await,
        Err(Error::Usage(UsageError::ExtensionMismatch))
    ));
    // Only a server sends unmasked frames.
    assert!(matches!(
        client.send_encoded(&frame).await,
        Err(Error::Usage(UsageError::NotServer))
    ));
    server.send(text("still fine")).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text("still fine"));
    // The server answers the close while it is read.
    let (closed, end) = tokio::join!(client.close(CloseCode::NORMAL, ""), server.next());
    closed.unwrap();
    assert!(end.is_none());
}

#[tokio::test]
async fn a_deflate_connection_takes_plain_frames_and_compressed_ones_of_its_window() {
    let server_config = Config {
        deflate: Some(DeflateConfig {
            server_max_window_bits: 12,
            ..DeflateConfig::default()
        }),
        ..Config::default()
    };
    let (addr, mut accepted) = accepting_server(Acceptor::new(server_config)).await;
    let mut client = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(deflate_config())
        .connect()
        .await
        .unwrap();
    let mut server = accepted.recv().await.unwrap();
    let bits = server.connection().shared_deflate_window_bits();
    assert_eq!(bits, Some(12));
    let long = "a room message, again and again. ".repeat(40);
    // Uncompressed: a message without RSV1, which permessage-deflate allows.
    let plain = EncodedFrame::new(MessageKind::Text, long.as_bytes());
    server.send_encoded(&plain).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text(&long));
    // Compressed once with the connection's window: taken, and inflated by the client.
    let compressed = compress_shared(MessageKind::Text, long.as_bytes(), 12, 6);
    assert!(compressed.as_bytes().len() < long.len() / 4);
    server.send_encoded(&compressed).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text(&long));
    // Compressed with another window: refused with a typed error, nothing sent.
    let other = compress_shared(MessageKind::Text, long.as_bytes(), 15, 6);
    assert!(matches!(
        server.send_encoded(&other).await,
        Err(Error::Usage(UsageError::ExtensionMismatch))
    ));
    // The connection's own compression goes on undisturbed.
    server.send(text(&long)).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text(&long));
    client.send(text("and back")).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), text("and back"));
    // The server answers the close while it is read.
    let (closed, end) = tokio::join!(client.close(CloseCode::NORMAL, ""), server.next());
    closed.unwrap();
    assert!(end.is_none());
}

/// Runs a member's connection until it ends, reporting every error `recv_with` gives.
fn run_member(
    mut ws: ws_tokio::WebSocketStream<tokio::net::TcpStream>,
    mut member: ws_tokio::room::Member,
) -> mpsc::UnboundedReceiver<Error> {
    let (errors, reported) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(next) = ws.recv_with(&mut member).await {
            if let Err(e) = next {
                let _ = errors.send(e);
            }
        }
    });
    reported
}

#[tokio::test]
async fn a_compressed_room_frame_reaches_the_members_that_take_it_and_the_others_skip_it() {
    let server_config = Config {
        deflate: Some(DeflateConfig {
            server_max_window_bits: 12,
            ..DeflateConfig::default()
        }),
        ..Config::default()
    };
    let (addr, mut accepted) = accepting_server(Acceptor::new(server_config)).await;
    let url = format!("ws://{addr}/");
    let mut deflating = ClientOptions::new(&url)
        .unwrap()
        .config(deflate_config())
        .connect()
        .await
        .unwrap();
    let deflating_server = accepted.recv().await.unwrap();
    let mut plain = ws_tokio::connect(&url).await.unwrap();
    let plain_server = accepted.recv().await.unwrap();
    let room = Room::new();
    let mut deflating_errors = run_member(deflating_server, room.join());
    let mut plain_errors = run_member(plain_server, room.join());
    let long = "a room message, again and again. ".repeat(40);
    room.publish_encoded(compress_shared(MessageKind::Text, long.as_bytes(), 12, 6));
    room.publish(&text("for everyone"));
    assert_eq!(deflating.next().await.unwrap().unwrap(), text(&long));
    assert_eq!(
        deflating.next().await.unwrap().unwrap(),
        text("for everyone")
    );
    // The plain member refuses the compressed frame with a typed error and goes on.
    assert_eq!(plain.next().await.unwrap().unwrap(), text("for everyone"));
    assert!(matches!(
        plain_errors.recv().await,
        Some(Error::Usage(UsageError::ExtensionMismatch))
    ));
    deflating.close(CloseCode::NORMAL, "").await.unwrap();
    plain.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(plain_errors.recv().await.is_none());
    assert!(deflating_errors.recv().await.is_none());
    assert_eq!(room.members(), 0);
}

/// How the test asks a member's server task for its connection's queued bytes.
type Probe = mpsc::UnboundedSender<oneshot::Sender<usize>>;

/// A room server: every message received is published to every member, the sender included;
/// a member that lags reports it on `lagged` and is closed with 1008. Each member's task
/// hands the test a probe on `probes`, in the order the connections were accepted.
async fn room_server(
    room: Room,
    config: Config,
    lagged: mpsc::UnboundedSender<u64>,
    probes: mpsc::UnboundedSender<Probe>,
) -> std::net::SocketAddr {
    let (listener, addr) = listener().await;
    let acceptor = Acceptor::new(config);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = acceptor.accept(tcp).await.unwrap();
            let mut member = room.join();
            let (probe, mut asked) = mpsc::unbounded_channel::<oneshot::Sender<usize>>();
            let _ = probes.send(probe);
            let (room, lagged) = (room.clone(), lagged.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        next = ws.recv_with(&mut member) => match next {
                            Some(Ok(message)) => room.publish(&message),
                            Some(Err(Error::Lagged { missed })) => {
                                let _ = lagged.send(missed);
                                let _ = ws.close(CloseCode::POLICY_VIOLATION, "too slow").await;
                                return;
                            }
                            Some(Err(_)) | None => return,
                        },
                        Some(reply) = asked.recv() => {
                            let _ = reply.send(ws.connection().pending_transmit_len());
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Waits (on the runtime's own turns, bounded) until the room has `n` members.
async fn members(room: &Room, n: usize) {
    for _ in 0..100_000 {
        if room.members() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the room has {} members, not {n}", room.members());
}

#[tokio::test]
async fn every_member_gets_every_message_in_order_and_leaving_is_clean() {
    // Room for every message: the four senders' may all be published before any member runs.
    let room = Room::with_limits(256, 1 << 20);
    let (lagged, mut lags) = mpsc::unbounded_channel();
    let (probes, _) = mpsc::unbounded_channel();
    let addr = room_server(room.clone(), deflate_config(), lagged, probes).await;
    let url = format!("ws://{addr}/");
    let mut clients = Vec::new();
    for i in 0..5 {
        // Members with and without permessage-deflate share the room's plain frames.
        let config = if i % 2 == 0 {
            deflate_config()
        } else {
            Config::default()
        };
        let options = ClientOptions::new(&url).unwrap().config(config);
        clients.push(options.connect().await.unwrap());
    }
    members(&room, 5).await;
    // One member leaves; the others go on.
    clients
        .pop()
        .unwrap()
        .close(CloseCode::NORMAL, "")
        .await
        .unwrap();
    members(&room, 4).await;
    for i in 0..200 {
        clients[i % 4].feed(text(&format!("m{i}"))).await.unwrap();
    }
    for c in &mut clients {
        c.flush().await.unwrap();
    }
    // Every member sees all 200, each sender's in the order sent.
    for c in &mut clients {
        let mut seen = Vec::new();
        for _ in 0..200 {
            match c.next().await.unwrap().unwrap() {
                Message::Text(t) => seen.push(t.as_str()[1..].parse::<usize>().unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }
        for sender in 0..4 {
            let mine: Vec<usize> = seen.iter().copied().filter(|i| i % 4 == sender).collect();
            let sent: Vec<usize> = (0..200).filter(|i| i % 4 == sender).collect();
            assert_eq!(mine, sent);
        }
    }
    assert!(room.len() <= 256);
    assert!(lags.try_recv().is_err(), "no member lagged");
    for mut c in clients {
        c.close(CloseCode::NORMAL, "").await.unwrap();
    }
    members(&room, 0).await;
}

#[tokio::test]
async fn a_member_that_does_not_read_lags_while_the_room_and_its_queue_stay_bounded() {
    const MAX_FRAMES: usize = 16;
    const SIZE: usize = 4096;
    const WRITE_LIMIT: usize = 32 << 10;
    let room = Room::with_limits(MAX_FRAMES, 1 << 20);
    let (lagged, mut lags) = mpsc::unbounded_channel();
    let (probes, mut probe_of) = mpsc::unbounded_channel();
    let config = Config {
        write_buffer_limit: WRITE_LIMIT,
        ..Config::default()
    };
    let addr = room_server(room.clone(), config, lagged, probes).await;
    let url = format!("ws://{addr}/");
    let mut fast = ws_tokio::connect(&url).await.unwrap();
    let _fast_probe = probe_of.recv().await.unwrap();
    let mut slow = ws_tokio::connect(&url).await.unwrap();
    let slow_probe = probe_of.recv().await.unwrap();
    members(&room, 2).await;
    // The slow member never reads; the fast one takes each message before the next is
    // published. Bounded: at most 64 MiB, far past what loopback's socket buffers hold.
    let payload = vec![b'x'; SIZE];
    let mut published = 0u64;
    let mut stalled = false;
    for i in 0..16_384u32 {
        let mut bytes = payload.clone();
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        let message = Message::Binary(bytes.into());
        room.publish(&message);
        published += 1;
        assert_eq!(fast.next().await.unwrap().unwrap(), message);
        assert!(room.len() <= MAX_FRAMES);
        assert!(room.held_bytes() <= MAX_FRAMES * (SIZE + 4));
        // The slow member's own queue: never past its write limit and one frame.
        let (reply, queued) = oneshot::channel();
        slow_probe.send(reply).unwrap();
        let queued = queued.await.unwrap();
        assert!(queued < WRITE_LIMIT + SIZE + 4, "{queued} bytes queued");
        // At the limit, the transport took no more: lap the member, then stop.
        if queued >= WRITE_LIMIT {
            for _ in 0..2 * MAX_FRAMES {
                room.publish(&message);
                published += 1;
                assert_eq!(fast.next().await.unwrap().unwrap(), message);
            }
            stalled = true;
            break;
        }
    }
    assert!(stalled, "the slow member's transport never filled");
    assert!(
        lags.try_recv().is_err(),
        "a member that cannot write does not look at the room yet"
    );
    // The slow peer reads again: what its member had queued arrives, then the member finds
    // it lagged and is closed with 1008.
    let mut received = 0u64;
    while let Some(next) = slow.next().await {
        next.unwrap();
        received += 1;
    }
    let missed = lags.recv().await.unwrap();
    assert!(missed > 0);
    assert_eq!(
        slow.close_frame().unwrap().unwrap().code,
        CloseCode::POLICY_VIOLATION
    );
    // Received and missed account for every message but those the room still kept when the
    // lag was found (the member closed instead of sending them).
    assert!(received + missed <= published);
    assert!(received + missed + MAX_FRAMES as u64 >= published);
    fast.close(CloseCode::NORMAL, "").await.unwrap();
}
