//! `ws_chat::client::ChatClient` against real `ws-chat` processes. Two instances share one
//! redis-server; the client reads two rooms on the first while a publisher on the second
//! says numbered messages into both; the first is killed with SIGKILL and started again on
//! its port, and the client, reconnecting by itself, ends with every message of both rooms
//! once, in offset order, in one epoch, with no gap. Then a lone instance, whose history is
//! in its memory, restarted: the client reports the messages it can no longer get as a gap.
//! Every wait is bounded; nothing is timed.

#[path = "../../ws-mio-server/tests/common/mod.rs"]
mod common;
#[path = "../../ws-redis/tests/redis_server/mod.rs"]
mod redis_server;

use common::ServerProcess;
use redis_server::{RedisServer, TestRedis};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use ws_chat::client::{
    Backoff, ChatClient, ChatEvent, ChatMessage, ChatOptions, ClientEvent, Gap, GapReason,
};

/// How long any one wait may take before the test fails: generous, for a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// Messages the publisher says into each room.
const PER_ROOM: usize = 300;

const ROOMS: [&str; 2] = ["one", "two"];

/// A chat instance on `redis` (if any), on `listen` (if given) or a port the system picks.
fn instance(redis: Option<&dyn TestRedis>, listen: Option<SocketAddr>) -> ServerProcess {
    let url = redis.map(|r| r.url());
    let listen = listen.map(|a| a.to_string());
    let mut env = Vec::new();
    if let Some(url) = &url {
        env.push(("WS_REDIS", url.as_str()));
    }
    if let Some(listen) = &listen {
        env.push(("WS_LISTEN", listen.as_str()));
    }
    let args = [
        "--admin-listen",
        "off",
        "--workers",
        "1",
        "--rate-limit",
        "10000",
        "--rate-burst",
        "10000",
        // Enough that nothing the test says is trimmed before the client comes back.
        "--history-size",
        "2000",
    ];
    // Starting a process blocks until it listens: off the runtime's other tasks.
    tokio::task::block_in_place(|| ServerProcess::spawn(env!("CARGO_BIN_EXE_ws-chat"), &args, &env))
}

fn kill(instance: &mut ServerProcess) {
    instance.signal("KILL");
    tokio::task::block_in_place(|| instance.wait());
}

/// A client of user `name` at `addr`, retrying quickly.
fn client(addr: SocketAddr, name: &str) -> ChatClient {
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        ..Backoff::default()
    };
    let url = format!("ws://{addr}/ws?name={name}");
    ChatClient::connect(ChatOptions::new(&url).unwrap().backoff(backoff))
}

/// What a client was given.
#[derive(Default)]
struct Record {
    messages: HashMap<String, Vec<ChatMessage>>,
    joined: Vec<String>,
    /// Rooms recovered, with how many messages the server said it sends back.
    recovered: Vec<(String, usize)>,
    gaps: Vec<Gap>,
    acks: usize,
    connected: usize,
    disconnected: usize,
}

impl Record {
    fn note(&mut self, event: ChatEvent) {
        match event {
            ChatEvent::Message(m) => self.messages.entry(m.room.clone()).or_default().push(m),
            ChatEvent::Joined { room, .. } => self.joined.push(room),
            ChatEvent::Recovered { room, missed } => self.recovered.push((room, missed)),
            ChatEvent::Gap(gap) => self.gaps.push(gap),
            ChatEvent::Ack { .. } => self.acks += 1,
            ChatEvent::Connection(ClientEvent::Connected { .. }) => self.connected += 1,
            ChatEvent::Connection(ClientEvent::Disconnected { .. }) => self.disconnected += 1,
            ChatEvent::Error { code, message, .. } => panic!("error {code:?}: {message}"),
            _ => {}
        }
    }

    /// What it has, for a failure's message.
    fn summary(&self) -> String {
        let rooms: Vec<String> = self
            .messages
            .iter()
            .map(|(room, m)| {
                let first = m.first().and_then(|m| m.position.clone());
                let last = m.last().and_then(|m| m.position.clone());
                format!("{room}: {} messages, {first:?} to {last:?}", m.len())
            })
            .collect();
        format!(
            "{rooms:?}; joined {:?}, recovered {:?}, gaps {:?}, connected {}, disconnected {}",
            self.joined, self.recovered, self.gaps, self.connected, self.disconnected
        )
    }

    fn count(&self, room: &str) -> usize {
        self.messages.get(room).map_or(0, Vec::len)
    }
}

/// Reads `client`'s events into `record` until `done` holds; fails after [`WAIT`].
async fn pump(
    client: &mut ChatClient,
    record: &mut Record,
    what: &str,
    done: impl Fn(&Record) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(record) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for {what}: {}",
            record.summary()
        );
        // A short slice, so that `done` is looked at again even when nothing comes.
        let slice = left.min(Duration::from_millis(50));
        if let Ok(event) = tokio::time::timeout(slice, client.recv()).await {
            record.note(event.expect("the client stopped"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_instance_is_killed_and_restarted_ends_with_every_message_once() {
    let redis = RedisServer::start();
    let mut a = instance(Some(&redis), None);
    let b = instance(Some(&redis), None);

    let mut reader = client(a.addr, "reader");
    let mut read = Record::default();
    for room in ROOMS {
        reader.join(room).await.unwrap();
    }
    pump(&mut reader, &mut read, "the reader's rooms", |r| {
        r.joined.len() == 2
    })
    .await;

    let mut publisher = client(b.addr, "publisher");
    let mut published = Record::default();
    for room in ROOMS {
        publisher.join(room).await.unwrap();
    }
    pump(
        &mut publisher,
        &mut published,
        "the publisher's rooms",
        |r| r.joined.len() == 2,
    )
    .await;
    // Both instances subscribed to both rooms: what B publishes reaches A.
    let deadline = Instant::now() + WAIT;
    for room in ROOMS {
        while redis.subscribers(&format!("ws:{{{room}}}:msg")) != 2 {
            assert!(
                Instant::now() < deadline,
                "both instances to subscribe {room}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // The publisher says "room:n" into each room in turn, a little at a time, reading its
    // acks and its own messages as it goes; `said` tells the test how far it is.
    let said = Arc::new(AtomicUsize::new(0));
    let publishing = tokio::spawn({
        let said = said.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(3));
            let mut n = 0;
            while n < PER_ROOM {
                tokio::select! {
                    event = publisher.recv() => published.note(event.expect("the publisher stopped")),
                    _ = tick.tick() => {
                        n += 1;
                        for room in ROOMS {
                            publisher.say(room, &format!("{room}:{n}")).await.unwrap();
                        }
                        said.store(n, Ordering::Relaxed);
                    }
                }
            }
            let all = |r: &Record| {
                r.acks == 2 * PER_ROOM && ROOMS.iter().all(|room| r.count(room) == PER_ROOM)
            };
            pump(
                &mut publisher,
                &mut published,
                "the publisher's acks and messages",
                all,
            )
            .await;
            published
        }
    });

    pump(&mut reader, &mut read, "the first messages", |r| {
        r.count("one") >= 30
    })
    .await;
    kill(&mut a);
    // Down while the publisher goes on.
    let at_kill = said.load(Ordering::Relaxed);
    pump(&mut reader, &mut read, "the loss to be noticed", |r| {
        r.disconnected == 1
    })
    .await;
    pump(&mut reader, &mut read, "the publisher to go on", |_| {
        said.load(Ordering::Relaxed) >= (at_kill + 50).min(PER_ROOM)
    })
    .await;
    let _a = instance(Some(&redis), Some(a.addr));

    let published = {
        let every = |r: &Record| ROOMS.iter().all(|room| r.count(room) >= PER_ROOM);
        pump(&mut reader, &mut read, "every message", every).await;
        publishing.await.unwrap()
    };
    // Anything more (a duplicate let through) would have come with or right after the rest.
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            read.note(reader.recv().await.expect("the reader stopped"));
        }
    })
    .await;

    assert_eq!(read.gaps, [], "no gap");
    assert!(read.connected >= 2, "reconnected: {}", read.connected);
    let mut recovered = read.recovered.clone();
    recovered.sort();
    let rooms: Vec<&str> = recovered.iter().map(|(room, _)| room.as_str()).collect();
    assert_eq!(rooms, ROOMS, "each room recovered once");
    // What was said while the reader was away came back through the recovery.
    for (room, missed) in &recovered {
        assert!(*missed > 0, "{room}: nothing sent back");
    }
    for room in ROOMS {
        let got = &read.messages[room];
        let offsets: Vec<u64> = got
            .iter()
            .map(|m| m.position.as_ref().unwrap().offset)
            .collect();
        assert_eq!(
            offsets,
            (1..=PER_ROOM as u64).collect::<Vec<_>>(),
            "{room}: each offset once, in order"
        );
        let epochs: Vec<_> = got
            .iter()
            .map(|m| m.position.as_ref().unwrap().epoch.clone())
            .collect();
        assert!(epochs.iter().all(|e| *e == epochs[0]), "{room}: one epoch");
        let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
        let said: Vec<String> = (1..=PER_ROOM).map(|n| format!("{room}:{n}")).collect();
        assert_eq!(texts, said, "{room}: every message said, in order");
        // The same positions the publisher was given, on the instance that stayed up.
        let theirs: Vec<_> = published.messages[room]
            .iter()
            .map(|m| (&m.position, &m.text))
            .collect();
        let ours: Vec<_> = got.iter().map(|m| (&m.position, &m.text)).collect();
        assert_eq!(ours, theirs, "{room}: as the publisher saw it");
    }
    assert_eq!(
        reader.position("one").map(|p| p.offset),
        Some(PER_ROOM as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_loses_the_history_is_reported_as_a_gap_and_the_room_goes_on() {
    let mut server = instance(None, None);
    let mut ann = client(server.addr, "ann");
    let mut record = Record::default();
    ann.join("solo").await.unwrap();
    pump(&mut ann, &mut record, "the room", |r| r.joined.len() == 1).await;
    for n in 1..=3 {
        ann.say("solo", &format!("before {n}")).await.unwrap();
    }
    pump(&mut ann, &mut record, "three messages", |r| {
        r.count("solo") == 3
    })
    .await;
    let before = ann.position("solo").expect("a position");
    assert_eq!(before.offset, 3);

    // Its history was in its memory: started again, it numbers the room in a new epoch.
    kill(&mut server);
    let _server = instance(None, Some(server.addr));
    pump(&mut ann, &mut record, "the gap", |r| !r.gaps.is_empty()).await;
    let gap = &record.gaps[0];
    assert_eq!((gap.room.as_str(), gap.reason), ("solo", GapReason::Lost));
    assert_eq!(gap.last.as_ref(), Some(&before));
    let now = gap.now.clone().expect("the room's position now");
    assert_ne!(now.epoch, before.epoch, "a new epoch");
    assert_eq!(now.offset, 0);
    assert!(record.recovered.is_empty());

    // The room goes on from there: the next message is delivered, no further gap.
    ann.say("solo", "after").await.unwrap();
    pump(&mut ann, &mut record, "the message after", |r| {
        r.count("solo") == 4
    })
    .await;
    let after = &record.messages["solo"][3];
    assert_eq!(after.text, "after");
    assert_eq!(
        after.position.as_ref().map(|p| (&p.epoch, p.offset)),
        Some((&now.epoch, 1))
    );
    assert_eq!(record.gaps.len(), 1);
}
