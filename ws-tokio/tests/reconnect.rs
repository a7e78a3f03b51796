//! The reconnecting client against real loopback servers, on pretend time: the backoff's
//! delays, the hook before queued messages, the queue's policies while disconnected, events,
//! the round trip, and stopping.

mod common;

use common::listener;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;
use ws_tokio::reconnect::{Backoff, ClientEvent, QueuePolicy, ReconnectOptions, SendError};
use ws_tokio::{ClientOptions, ClientStream, CloseCode, Config, Message};

fn text(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

fn no_jitter() -> Backoff {
    Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(8),
        multiplier: 2.0,
        jitter: 0.0,
    }
}

/// The next event that is not a `Reconnecting` (those are checked where they matter).
async fn next_event(events: &mut broadcast::Receiver<ClientEvent>) -> ClientEvent {
    loop {
        match events.recv().await.unwrap() {
            ClientEvent::Reconnecting { .. } => {}
            event => return event,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_back_off_exponentially_up_to_the_cap() {
    // A port nothing listens on: every attempt is refused at once.
    let addr = listener().await.1;
    let options = ClientOptions::new(&format!("ws://{addr}/")).unwrap();
    let (client, mut events) = ReconnectOptions::new(options)
        .backoff(no_jitter())
        .max_attempts(7)
        .spawn();
    let start = Instant::now();
    let mut failed_at = Vec::new();
    let mut delays = Vec::new();
    loop {
        match events.recv().await.unwrap() {
            ClientEvent::ConnectFailed { attempt, .. } => {
                assert_eq!(attempt as usize, failed_at.len() + 1);
                failed_at.push(start.elapsed().as_secs());
            }
            ClientEvent::Reconnecting { delay } => delays.push(delay.as_secs()),
            ClientEvent::Stopped => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, [1, 2, 4, 8, 8, 8]);
    assert_eq!(failed_at, [0, 1, 3, 7, 15, 23, 31]);
    assert!(matches!(
        client.send(text("x")).await,
        Err(SendError::Stopped(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_the_jitter_of_the_schedule() {
    let addr = listener().await.1;
    let options = ClientOptions::new(&format!("ws://{addr}/")).unwrap();
    let backoff = Backoff {
        jitter: 0.5,
        ..no_jitter()
    };
    let (_client, mut events) = ReconnectOptions::new(options)
        .backoff(backoff)
        .jitter_seed(99)
        .max_attempts(5)
        .spawn();
    let mut delays = Vec::new();
    loop {
        match events.recv().await.unwrap() {
            ClientEvent::Reconnecting { delay } => delays.push(delay),
            ClientEvent::Stopped => break,
            _ => {}
        }
    }
    let full = [1, 2, 4, 8].map(Duration::from_secs);
    assert_eq!(delays.len(), 4);
    for (delay, full) in delays.iter().zip(full) {
        assert!(
            *delay > full / 2 && *delay <= full,
            "{delay:?} against {full:?}"
        );
    }
}

/// A server that hands each connection's messages to the test and closes the connection
/// when told.
async fn recording_server() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<ws_tokio::WebSocketStream<tokio::net::TcpStream>>,
) {
    common::accepting_server(ws_tokio::Acceptor::new(Config::default())).await
}

#[tokio::test(start_paused = true)]
async fn the_hook_runs_on_every_connection_before_queued_messages() {
    let (addr, mut accepted) = recording_server().await;
    let options = ClientOptions::new(&format!("ws://{addr}/")).unwrap();
    let (client, mut events) = ReconnectOptions::new(options)
        .backoff(no_jitter())
        .on_connect(|mut ws: ClientStream| async move {
            ws.send(Message::Text("subscribe".into())).await?;
            Ok(ws)
        })
        .spawn();
    // Queued before any connection exists.
    client.send(text("queued 1")).await.unwrap();
    client.send(text("queued 2")).await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::Connected { attempt: 1, .. }
    ));
    for expected in ["subscribe", "queued 1", "queued 2"] {
        assert_eq!(server.next().await.unwrap().unwrap(), text(expected));
    }
    // The server goes away: the client reconnects and subscribes again, first thing.
    server
        .close(CloseCode::SERVICE_RESTART, "restart")
        .await
        .unwrap();
    match next_event(&mut events).await {
        ClientEvent::Disconnected {
            close: Some(Some(frame)),
            error: None,
        } => {
            assert_eq!(frame.code, CloseCode::SERVICE_RESTART)
        }
        other => panic!("unexpected {other:?}"),
    }
    client.send(text("after")).await.unwrap();
    let mut server = accepted.recv().await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::Connected { attempt: 1, .. }
    ));
    assert_eq!(server.next().await.unwrap().unwrap(), text("subscribe"));
    assert_eq!(server.next().await.unwrap().unwrap(), text("after"));
    // Both ways: what the server sends reaches the application.
    server.send(text("to the app")).await.unwrap();
    let mut client = client;
    assert_eq!(client.recv().await.unwrap(), text("to the app"));
    // Closing sends 1000 and stops.
    let closing = tokio::spawn(client.close());
    assert!(server.next().await.is_none());
    assert_eq!(
        server.close_frame().unwrap().unwrap().code,
        CloseCode::NORMAL
    );
    closing.await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::Stopped
    ));
}

#[tokio::test(start_paused = true)]
async fn connections_dropped_at_once_keep_backing_off() {
    // Accepts the handshake and closes straight away, as a server refusing a client might.
    let (addr, mut accepted) = recording_server().await;
    tokio::spawn(async move {
        while let Some(mut ws) = accepted.recv().await {
            let _ = ws.close(CloseCode::POLICY_VIOLATION, "go away").await;
        }
    });
    let options = ClientOptions::new(&format!("ws://{addr}/")).unwrap();
    let (_client, mut events) = ReconnectOptions::new(options).backoff(no_jitter()).spawn();
    let mut delays = Vec::new();
    while delays.len() < 4 {
        if let ClientEvent::Reconnecting { delay } = events.recv().await.unwrap() {
            delays.push(delay.as_secs());
        }
    }
    assert_eq!(delays, [1, 2, 4, 8]);
}

#[tokio::test(start_paused = true)]
async fn while_disconnected_drop_oldest_keeps_the_newest_and_counts() {
    let (listener, addr) = listener().await;
    drop(listener); // nothing there yet
    let options = ClientOptions::new(&format!("ws://{addr}/")).unwrap();
    let (client, mut events) = ReconnectOptions::new(options)
        .backoff(no_jitter())
        .queue(2, QueuePolicy::DropOldest)
        .spawn();
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::ConnectFailed { .. }
    ));
    for i in 0..5 {
        client.send(text(&i.to_string())).await.unwrap();
    }
    assert_eq!((client.dropped(), client.queued()), (3, 2));
    // The server comes up on the same port; the next attempt finds it.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let mut server = ws_tokio::accept(tcp).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), text("3"));
    assert_eq!(server.next().await.unwrap().unwrap(), text("4"));
    assert!(client.is_connected());
}

#[tokio::test(start_paused = true)]
async fn while_disconnected_drop_newest_refuses_and_wait_waits() {
    let addr = listener().await.1;
    let options = ClientOptions::new(&format!("ws://{addr}/")).unwrap();
    let (client, _events) = ReconnectOptions::new(options.clone())
        .queue(1, QueuePolicy::DropNewest)
        .spawn();
    client.send(text("kept")).await.unwrap();
    assert_eq!(
        client.send(text("refused")).await,
        Err(SendError::Full(text("refused")))
    );
    assert_eq!(client.dropped(), 1);

    let (client, _events) = ReconnectOptions::new(options)
        .queue(1, QueuePolicy::Wait)
        .spawn();
    client.send(text("kept")).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_secs(60), client.send(text("waits"))).await;
    assert!(waiting.is_err(), "a full queue makes the sender wait");
    assert_eq!(
        client.try_send(text("now")),
        Err(SendError::Full(text("now")))
    );
    assert_eq!(client.dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_round_trip_is_measured_and_a_silent_server_is_left() {
    let (addr, mut accepted) = recording_server().await;
    let config = Config {
        ping_interval: Some(Duration::from_secs(5)),
        pong_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let options = ClientOptions::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(config);
    let (client, mut events) = ReconnectOptions::new(options).backoff(no_jitter()).spawn();
    let mut server = accepted.recv().await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::Connected { .. }
    ));
    // The server reads (and so answers pings) for a while.
    let _ = tokio::time::timeout(Duration::from_secs(12), server.next()).await;
    assert!(client.rtt().is_some());
    // Then it stops reading: its pongs stop, and the client leaves after the pong timeout.
    let start = Instant::now();
    match next_event(&mut events).await {
        ClientEvent::Disconnected {
            error: Some(error), ..
        } => {
            assert!(matches!(
                *error,
                ws_tokio::Error::Timeout(ws_tokio::error::Timeout::Pong)
            ))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(start.elapsed() <= Duration::from_secs(10));
    drop(server);
}
