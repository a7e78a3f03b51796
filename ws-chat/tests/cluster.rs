//! Three `ws-chat` processes joined through one real redis-server, clients spread over them,
//! publishing numbered messages into one room. One instance is killed with SIGKILL
//! mid-stream: its clients come back to the others with the position of the last message
//! they saw, and every client's record of the room is then every offset from the first to
//! the last, once each, in order. The same with Redis restarted mid-stream (from its
//! append-only file): the instances report themselves degraded and serve their own clients
//! (without offsets), then go on numbering where they were. Presence covers every instance,
//! and the users of an instance killed leave it once its lease has ended. The killed instance,
//! the presence, the admin API and the retried send run on a three-master Redis Cluster too.
//! Every wait is bounded.

#[path = "../../ws-mio-server/tests/common/mod.rs"]
mod common;
#[path = "../../ws-redis/tests/redis_server/mod.rs"]
mod redis_server;

use common::{http, wait_until, ServerProcess, TestClient, WAIT};
use redis_server::{RedisCluster, RedisServer, TestRedis};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use ws_proto::Event;

fn instance(redis: &dyn TestRedis) -> ServerProcess {
    ServerProcess::spawn(
        env!("CARGO_BIN_EXE_ws-chat"),
        &[
            "--presence-lease",
            "1",
            "--admin-listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--rate-limit",
            "10000",
            "--rate-burst",
            "10000",
        ],
        &[("WS_REDIS", &redis.url()), ("WS_ADMIN_TOKEN", ADMIN_TOKEN)],
    )
}

const ADMIN_TOKEN: &str = "t0ken";

/// The tests take turns: each starts a Redis and up to three instances, and together they
/// would crowd a small machine into timeouts.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// An admin API call to an instance: its status and body.
fn api(instance: &ServerProcess, method: &str, path: &str) -> (u16, Value) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
    );
    let reply = http(instance.admin.unwrap(), &request);
    let status = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A room message as a client recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: Option<u64>,
    epoch: Option<String>,
    text: String,
}

/// A client of the room: what it saw, and where it is.
struct Member {
    name: String,
    client: TestClient,
    seen: Vec<Seen>,
    /// Presence events: (user, event).
    presence: Vec<(String, String)>,
    /// The last `members` answer.
    members: Option<Vec<String>>,
    /// Its connection ended (the instance was killed).
    lost: bool,
}

impl Member {
    fn join(addr: SocketAddr, name: &str, since: Option<(&str, u64)>) -> Member {
        let mut client = TestClient::connect(addr, &format!("/ws?name={name}"));
        let welcome: Value = serde_json::from_str(&client.next_text()).unwrap();
        assert_eq!(welcome["type"], "welcome");
        let mut join = json!({"type": "join", "room": "lobby"});
        if let Some((epoch, offset)) = since {
            join["epoch"] = json!(epoch);
            join["offset"] = json!(offset);
        }
        client.send_text(&join.to_string());
        let mut member = Member {
            name: name.to_string(),
            client,
            seen: Vec::new(),
            presence: Vec::new(),
            members: None,
            lost: false,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "{name}: no joined answer");
            let v: Value = serde_json::from_str(&member.client.next_text()).unwrap();
            if v["type"] == "joined" {
                if since.is_some() {
                    assert_eq!(v["recovered"], true, "{name}: {v}");
                }
                break;
            }
        }
        member
    }

    fn say(&mut self, n: usize) {
        if !self.lost {
            let text = format!("{}:{n}", self.name);
            self.client
                .send_text(&json!({"type": "send", "room": "lobby", "text": text}).to_string());
        }
    }

    /// Reads what has arrived (waiting `quiet` for more); notes a lost connection.
    fn pump(&mut self, quiet: Duration) {
        if self.lost {
            return;
        }
        self.client.stream.set_read_timeout(Some(quiet)).unwrap();
        let mut buf = [0; 16384];
        loop {
            while let Some(event) = self.client.conn.poll_event() {
                if let Event::Message(m) = event {
                    self.note(&String::from_utf8_lossy(m.as_bytes()));
                }
            }
            match self.client.stream.read(&mut buf) {
                Ok(0) => {
                    self.lost = true;
                    break;
                }
                Ok(n) => {
                    if self.client.conn.receive(&buf[..n]).is_err() {
                        self.lost = true;
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(_) => {
                    self.lost = true;
                    break;
                }
            }
        }
        self.client.stream.set_read_timeout(Some(WAIT)).unwrap();
    }

    fn note(&mut self, text: &str) {
        let v: Value = serde_json::from_str(text).unwrap();
        if v["type"] == "presence" {
            let (user, event) = (v["user"].as_str(), v["event"].as_str());
            self.presence
                .push((user.unwrap().to_string(), event.unwrap().to_string()));
        }
        if v["type"] == "members" {
            let users = v["users"].as_array().unwrap().iter();
            self.members = Some(users.map(|u| u.as_str().unwrap().to_string()).collect());
        }
        if v["type"] == "message" {
            self.seen.push(Seen {
                offset: v["offset"].as_u64(),
                epoch: v["epoch"].as_str().map(str::to_string),
                text: v["text"].as_str().unwrap().to_string(),
            });
        }
    }

    /// The position of the last numbered message it saw.
    fn last(&self) -> Option<(String, u64)> {
        let seen = self.seen.iter().rev().find(|s| s.offset.is_some())?;
        Some((seen.epoch.clone()?, seen.offset?))
    }

    fn numbered(&self) -> Vec<&Seen> {
        self.seen.iter().filter(|s| s.offset.is_some()).collect()
    }

    /// Back on `addr`, from its last position; what the answer sent is noted.
    fn come_back(&mut self, addr: SocketAddr) {
        let (epoch, offset) = self.last().expect("it saw a message before");
        let back = Member::join(addr, &self.name, Some((&epoch, offset)));
        self.client = back.client;
        self.lost = false;
    }
}

impl Member {
    /// Reads until `done` holds.
    fn pump_until(&mut self, what: &str, done: impl Fn(&Member) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(Instant::now() < deadline, "{}: no {what}", self.name);
            self.pump(Duration::from_millis(20));
        }
    }

    /// Whether it saw a room message with this text.
    fn saw(&self, text: &str) -> bool {
        self.seen.iter().any(|s| s.text == text)
    }

    /// Who is in the lobby, as its instance answers.
    fn who(&mut self) -> Vec<String> {
        self.members = None;
        self.client
            .send_text(&json!({"type": "who", "room": "lobby"}).to_string());
        let deadline = Instant::now() + WAIT;
        while self.members.is_none() {
            assert!(
                Instant::now() < deadline,
                "{}: no members answer",
                self.name
            );
            self.pump(Duration::from_millis(20));
        }
        self.members.take().unwrap()
    }
}

/// Ann with a connection on each of the first two instances, Bob on instance `bob_at`, all in
/// the lobby, once every instance knows of every one.
fn ann_twice_and_bob(instances: &[ServerProcess], bob_at: usize) -> (Vec<Member>, Member) {
    let ann = (0..2)
        .map(|i| Member::join(instances[i].addr, "ann", None))
        .collect();
    let mut bob = Member::join(instances[bob_at].addr, "bob", None);
    wait_until("every instance to know everyone", || {
        bob.who() == ["ann", "bob"]
    });
    (ann, bob)
}

/// Every member's numbered record is every offset from 1 to the last, once each, in order, in
/// one epoch, and no text came twice.
fn check_records(members: &[Member]) -> u64 {
    let last = members
        .iter()
        .filter_map(|m| m.last().map(|(_, o)| o))
        .max()
        .unwrap();
    for m in members {
        let numbered = m.numbered();
        let offsets: Vec<u64> = numbered.iter().map(|s| s.offset.unwrap()).collect();
        assert_eq!(
            offsets,
            (1..=last).collect::<Vec<_>>(),
            "{}: no gap, no duplicate",
            m.name
        );
        let epochs: HashSet<_> = numbered.iter().map(|s| s.epoch.clone()).collect();
        assert_eq!(epochs.len(), 1, "{}: one epoch", m.name);
        let texts: HashSet<&str> = m.seen.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts.len(), m.seen.len(), "{}: no text twice", m.name);
    }
    // Everyone saw the same messages at the same offsets.
    for m in &members[1..] {
        let a: Vec<_> = members[0].numbered().into_iter().cloned().collect();
        let b: Vec<_> = m.numbered().into_iter().cloned().collect();
        assert_eq!(a, b, "{} and {}", members[0].name, m.name);
    }
    last
}

/// Rounds of one message per member, reading in between.
fn rounds(members: &mut [Member], from: usize, to: usize) {
    for n in from..to {
        for m in members.iter_mut() {
            m.say(n);
        }
        for m in members.iter_mut() {
            m.pump(Duration::from_millis(5));
        }
    }
}

/// Reads until every member has the same last offset (and nothing more comes).
fn settle(members: &mut [Member]) {
    let deadline = Instant::now() + WAIT;
    loop {
        for m in members.iter_mut() {
            m.pump(Duration::from_millis(50));
        }
        let lasts: HashSet<_> = members.iter().map(|m| m.last().map(|l| l.1)).collect();
        if lasts.len() == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "members did not settle: {lasts:?}"
        );
    }
}

fn ready(instance: &ServerProcess) -> String {
    http(
        instance.admin.unwrap(),
        "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
}

fn spread(instances: &[ServerProcess]) -> Vec<Member> {
    (0..6)
        .map(|i| Member::join(instances[i % 3].addr, &format!("m{i}"), None))
        .collect()
}

#[test]
fn an_instance_killed_mid_stream_costs_its_clients_no_message_once_they_come_back() {
    let _turn = turn();
    killed_mid_stream(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_an_instance_killed_mid_stream_costs_its_clients_no_message() {
    let _turn = turn();
    killed_mid_stream(&RedisCluster::start());
}

fn killed_mid_stream(redis: &dyn TestRedis) {
    let mut instances: Vec<ServerProcess> = (0..3).map(|_| instance(redis)).collect();
    let mut members = spread(&instances);
    wait_until("three instances subscribed", || {
        redis.subscribers("ws:{lobby}:msg") == 3
    });
    rounds(&mut members, 0, 20);
    // Killed with messages in flight: m0 and m3 were on it.
    instances[0].signal("KILL");
    instances[0].wait();
    rounds(&mut members, 20, 30);
    wait_until("m0 and m3 to notice", || {
        members[0].pump(Duration::from_millis(10));
        members[3].pump(Duration::from_millis(10));
        members[0].lost && members[3].lost
    });
    members[0].come_back(instances[1].addr);
    members[3].come_back(instances[2].addr);
    rounds(&mut members, 30, 50);
    settle(&mut members);
    let last = check_records(&members);
    assert!(last >= 6 * 40, "most messages got through: {last}");
}

#[test]
fn through_a_redis_restart_instances_serve_their_own_then_go_on_numbering() {
    let _turn = turn();
    let mut redis = RedisServer::start_durable();
    let instances: Vec<ServerProcess> = (0..3).map(|_| instance(&redis)).collect();
    let mut members = spread(&instances);
    wait_until("three instances subscribed", || {
        redis.subscribers("ws:{lobby}:msg") == 3
    });
    rounds(&mut members, 0, 10);
    settle(&mut members);

    redis.stop();
    for i in &instances {
        wait_until("degraded", || ready(i).contains("\"degraded\""));
        assert!(ready(i).starts_with("HTTP/1.1 200"));
    }
    // Said during the outage: heard on the speaker's instance only, without an offset.
    members[0].say(1000);
    for m in members.iter_mut() {
        m.pump(Duration::from_millis(200));
    }
    for (i, m) in members.iter().enumerate() {
        let heard = m
            .seen
            .iter()
            .any(|s| s.text == "m0:1000" && s.offset.is_none());
        assert_eq!(heard, i % 3 == 0, "{}", m.name);
    }

    redis.start_again();
    for i in &instances {
        wait_until("ready again", || !ready(i).contains("degraded"));
    }
    wait_until("three instances subscribed again", || {
        redis.subscribers("ws:{lobby}:msg") == 3
    });
    rounds(&mut members, 10, 20);
    settle(&mut members);
    let last = check_records(&members);
    assert_eq!(last, 6 * 20, "every numbered message, numbering went on");
}

#[test]
fn presence_covers_every_instance_and_a_killed_instances_users_leave_once_its_lease_ends() {
    let _turn = turn();
    presence_and_leases(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_a_killed_instances_users_leave_once_its_lease_ends() {
    let _turn = turn();
    presence_and_leases(&RedisCluster::start());
}

fn presence_and_leases(redis: &dyn TestRedis) {
    let mut instances: Vec<ServerProcess> = (0..3).map(|_| instance(redis)).collect();
    let mut members = spread(&instances);
    let everyone: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    for m in members.iter_mut() {
        let mut m_who = Vec::new();
        wait_until("every instance to know everyone", || {
            m_who = m.who();
            m_who == everyone
        });
    }
    // m0 and m3 are on the first instance, which is killed: no leave is ever sent for them.
    instances[0].signal("KILL");
    instances[0].wait();
    let staying = ["m1", "m2", "m4", "m5"];
    for i in [1, 2, 4, 5] {
        let m = &mut members[i];
        wait_until("the dead instance's users to leave", || m.who() == staying);
        for gone in ["m0", "m3"] {
            let left = (gone.to_string(), "left".to_string());
            wait_until("a left event", || {
                m.pump(Duration::from_millis(20));
                m.presence.contains(&left)
            });
        }
    }
    // The instance that took them out did it once: each user left once, on every instance.
    for i in [1, 2, 4, 5] {
        members[i].pump(Duration::from_millis(200));
        let lefts = members[i]
            .presence
            .iter()
            .filter(|(_, e)| e == "left")
            .count();
        assert_eq!(lefts, 2, "{}: {:?}", members[i].name, members[i].presence);
    }
}

#[test]
fn a_direct_message_reaches_every_connection_of_its_user_on_every_instance_once() {
    let _turn = turn();
    let redis = RedisServer::start();
    let instances: Vec<ServerProcess> = (0..3).map(|_| instance(&redis)).collect();
    // Ann has a connection on the first two instances; Bob writes from the third.
    let (mut ann, mut bob) = ann_twice_and_bob(&instances, 2);
    let dm = json!({"type": "direct", "to": "ann", "text": "psst", "id": "d1"});
    bob.client.send_text(&dm.to_string());
    for a in ann.iter_mut() {
        let got = a.client.arriving_within(Duration::from_millis(300));
        let directs: Vec<Value> = got
            .iter()
            .map(|m| serde_json::from_slice(m.as_bytes()).unwrap())
            .filter(|v: &Value| v["type"] == "direct")
            .collect();
        assert_eq!(directs.len(), 1, "{got:?}");
        assert_eq!(
            (&directs[0]["from"], &directs[0]["text"]),
            (&json!("bob"), &json!("psst"))
        );
    }
}

#[test]
fn the_admin_api_of_any_instance_acts_on_and_answers_for_every_instance() {
    let _turn = turn();
    admin_api(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_the_admin_api_of_any_instance_answers_for_every_instance() {
    let _turn = turn();
    admin_api(&RedisCluster::start());
}

fn admin_api(redis: &dyn TestRedis) {
    let instances: Vec<ServerProcess> = (0..3).map(|_| instance(redis)).collect();
    // Ann on the first two instances, Bob on the second; nobody on the third.
    let (mut ann, mut bob) = ann_twice_and_bob(&instances, 1);

    // Presence and figures from the third, which has nobody in the room.
    let (status, body) = api(&instances[2], "GET", "/api/rooms/lobby/presence");
    assert_eq!(
        (status, body),
        (200, json!({"room": "lobby", "users": ["ann", "bob"]}))
    );
    wait_until("every lease to carry its counts", || {
        let (_, body) = api(&instances[2], "GET", "/api/cluster");
        body == json!({"instances": 3, "connections": 3, "rooms": 2})
    });

    // Published from the third: a room message from admin, numbered, on every instance.
    let (status, _) = api(
        &instances[2],
        "POST",
        "/api/rooms/lobby/publish?text=maintenance",
    );
    assert_eq!(status, 200);
    for m in ann.iter_mut().chain([&mut bob]) {
        m.pump_until("the admin's message", |m| m.saw("maintenance"));
    }
    assert_eq!(bob.last().map(|l| l.1), Some(1));
    let (status, body) = api(&instances[2], "GET", "/api/rooms/lobby/history?limit=5");
    assert_eq!(status, 200);
    assert_eq!(body["offset"], 1);
    let first: Value = serde_json::from_str(body["messages"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        (&first["from"], &first["text"]),
        (&json!("admin"), &json!("maintenance"))
    );

    // Disconnected from the third: both of Ann's connections close, Bob stays.
    let (status, _) = api(&instances[2], "POST", "/api/users/ann/disconnect");
    assert_eq!(status, 200);
    for a in ann.iter_mut() {
        let reason = a
            .client
            .expect_close_reason(ws_proto::CloseCode::POLICY_VIOLATION);
        assert_eq!(reason, "disconnected by an administrator");
    }
    wait_until("ann gone from presence", || bob.who() == ["bob"]);
    assert!(!bob.lost);
}

#[test]
fn a_send_retried_through_another_instance_with_its_id_is_posted_once() {
    let _turn = turn();
    retried_send(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_a_send_retried_through_another_instance_is_posted_once() {
    let _turn = turn();
    retried_send(&RedisCluster::start());
}

fn retried_send(redis: &dyn TestRedis) {
    let instances: Vec<ServerProcess> = (0..2).map(|_| instance(redis)).collect();
    let mut first = Member::join(instances[0].addr, "ann", None);
    let mut listener = Member::join(instances[1].addr, "lee", None);
    wait_until("both instances to know both", || {
        listener.who() == ["ann", "lee"]
    });
    let send = json!({"type": "send", "room": "lobby", "text": "only once", "id": "r1"});
    first.client.send_text(&send.to_string());
    // Ann's connection is lost before she sees her message; she sends it again elsewhere.
    let mut again = Member::join(instances[1].addr, "ann", None);
    again.client.send_text(&send.to_string());
    let other = json!({"type": "send", "room": "lobby", "text": "after", "id": "r2"});
    again.client.send_text(&other.to_string());
    listener.pump_until("the later message", |m| m.saw("after"));
    listener.pump(Duration::from_millis(100));
    let once = listener
        .seen
        .iter()
        .filter(|s| s.text == "only once")
        .count();
    assert_eq!(once, 1, "{:?}", listener.seen);
    assert_eq!(listener.last().map(|l| l.1), Some(2), "numbered once");
}

#[test]
fn a_read_mark_made_on_one_instance_is_given_back_by_another() {
    let _turn = turn();
    let redis = RedisServer::start();
    let instances: Vec<ServerProcess> = (0..2).map(|_| instance(&redis)).collect();
    let mut ann = Member::join(instances[0].addr, "ann", None);
    let mut lee = Member::join(instances[1].addr, "lee", None);
    wait_until("both instances to know both", || {
        lee.who() == ["ann", "lee"]
    });
    for n in 0..3 {
        ann.say(n);
    }
    lee.pump_until("three messages", |m| m.last().map(|l| l.1) == Some(3));
    lee.client
        .send_text(&json!({"type": "read", "room": "lobby", "offset": 2}).to_string());
    // Ann, on the other instance, sees it.
    let seen = |v: &Value| v["type"] == "read" && v["user"] == "lee" && v["offset"] == 2;
    let deadline = Instant::now() + WAIT;
    loop {
        let got = ann.client.arriving_within(Duration::from_millis(50));
        let values: Vec<Value> = got
            .iter()
            .filter_map(|m| serde_json::from_slice(m.as_bytes()).ok())
            .collect();
        if values.iter().any(seen) {
            break;
        }
        assert!(Instant::now() < deadline, "no read event");
    }
    // Lee comes back on the first instance: it knows his mark.
    let mut back = TestClient::connect(instances[0].addr, "/ws?name=lee");
    back.next_text();
    let mut joined = Value::Null;
    wait_until("the mark to reach the first instance", || {
        back.send_text(&json!({"type": "join", "room": "lobby"}).to_string());
        loop {
            let v: Value = serde_json::from_str(&back.next_text()).unwrap();
            if v["type"] == "joined" {
                joined = v;
                break;
            }
        }
        back.send_text(&json!({"type": "leave", "room": "lobby"}).to_string());
        joined["read"] == 2
    });
    assert_eq!(joined["offset"], 3);
}

#[test]
fn a_users_connection_limit_counts_its_connections_on_every_instance() {
    let _turn = turn();
    let redis = RedisServer::start();
    let instances: Vec<ServerProcess> = (0..3).map(|_| instance(&redis)).collect();
    let connect = |i: usize| {
        let mut client = TestClient::connect(instances[i % 3].addr, "/ws?name=quinn");
        assert!(client.next_text().contains("welcome"));
        client
    };
    // The limit is 8: spread over three instances, each of which alone would take more.
    let mut open: Vec<TestClient> = (0..8).map(connect).collect();
    // Each is counted once Redis has its claim: a join's answer comes after it (one thread
    // serves an instance's claims and reads in order).
    for client in open.iter_mut() {
        client.send_text(&json!({"type": "join", "room": "q"}).to_string());
        let joined = loop {
            let v: Value = serde_json::from_str(&client.next_text()).unwrap();
            if v["type"] == "joined" {
                break v;
            }
        };
        assert_eq!(joined["room"], "q");
    }
    let mut ninth = connect(8);
    let reason = ninth.expect_close_reason(ws_proto::CloseCode(4008));
    assert_eq!(reason, "too many connections for this user");
    // One goes: there is room again, on any instance.
    let mut gone = open.pop().unwrap();
    gone.close();
    drop(gone);
    wait_until("a ninth to stay", || {
        let mut again = connect(2);
        again.arriving_within(Duration::from_millis(300)).is_empty() && again.conn.can_send()
    });
}
