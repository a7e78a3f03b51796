//! Several server instances in this process, each with its own listener and Redis broker,
//! sharing one real redis-server on a loopback port (started by the test, killed when it
//! ends), with WebSocket clients over real sockets: room messages reach every member on every
//! instance exactly once and in each publisher's order; an instance receives only the rooms it
//! has members in; with Redis gone each instance still serves its own members, and when Redis
//! is back the instances find each other again. The fanout runs on a three-master Redis
//! Cluster too, its rooms on different masters. Every wait is bounded.

#[path = "../../ws-mio-server/tests/common/mod.rs"]
mod common;
mod redis_server;

use common::{test_config, wait_until, TestClient, WAIT};
use redis_server::{RedisCluster, RedisServer, TestRedis};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ws_mio_server::testing::TestServer;
use ws_mio_server::{Context, Handler, Hooks, OpenDecision, OpenRequest, Server};
use ws_proto::Message;
use ws_redis::{RedisBroker, RedisConfig};

/// Joins the room named by the request's path (`/lobby`) and publishes every message to it.
struct Rooms;

impl Handler for Rooms {
    type Conn = String;
    fn on_open(&self, request: &OpenRequest<'_>) -> OpenDecision<String> {
        OpenDecision::accept(request.request.path().trim_start_matches('/').to_string())
    }
    fn on_connect(&self, ctx: &mut Context<'_>, room: &mut String) {
        ctx.join(room);
    }
    fn on_message(&self, ctx: &mut Context<'_>, room: &mut String, message: Message) {
        ctx.publish(room, message);
    }
}

/// A server instance with its broker.
struct Instance {
    server: Option<Server>,
    broker: Arc<RedisBroker>,
}

impl Instance {
    fn start(redis: &dyn TestRedis) -> Instance {
        let config = RedisConfig {
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(200),
            ..RedisConfig::new(&redis.url())
        };
        let broker = Arc::new(RedisBroker::start(config).unwrap());
        let hooks = Hooks {
            broker: Some(broker.clone()),
            ..Hooks::default()
        };
        let server = Server::start_with(test_config(), Rooms, hooks).unwrap();
        Instance {
            server: Some(server),
            broker,
        }
    }

    fn connect(&self, room: &str) -> TestClient {
        let addr = self.server.as_ref().unwrap().local_addr();
        TestClient::connect(addr, &format!("/{room}"))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.handle().shutdown();
            let _ = server.join();
        }
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

/// Rooms whose slots are on the three masters of a [`RedisCluster`] (5461-10922, 0-5460,
/// 10923-16383).
const ROOMS: [&str; 3] = ["lobby", "attic", "kitchen"];

#[test]
fn every_member_on_every_instance_gets_every_message_once_in_each_publishers_order() {
    fanout(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_every_member_gets_every_message_once_in_each_publishers_order() {
    fanout(&RedisCluster::start());
}

/// Two members on A and two on B in each room of [`ROOMS`], and one on C in a room of its own.
fn fanout(redis: &dyn TestRedis) {
    let [a, b, c] = [(); 3].map(|_| Instance::start(redis));
    let mut rooms: Vec<Vec<(String, TestClient)>> = ROOMS
        .iter()
        .map(|room| {
            let member = |name: &str, on: &Instance| (format!("{name}@{room}"), on.connect(room));
            vec![
                member("a1", &a),
                member("a2", &a),
                member("b1", &b),
                member("b2", &b),
            ]
        })
        .collect();
    // C has a member elsewhere only.
    let mut outsider = c.connect("side");
    wait_until("the rooms and the side room subscribed", || {
        ROOMS
            .iter()
            .all(|room| a.broker.is_subscribed(room) && b.broker.is_subscribed(room))
            && c.broker.is_subscribed("side")
    });
    assert!(!c.broker.is_subscribed("lobby"));
    // Each room's channel is subscribed on the master that owns its slot, and the rooms are
    // spread over every master.
    let homes: HashSet<usize> = ROOMS
        .iter()
        .map(|room| {
            let on = redis.subscribed_on(&format!("ws:{{{room}}}:msg"));
            assert_eq!(on.len(), 1, "{room} on one master: {on:?}");
            on[0]
        })
        .collect();
    assert_eq!(homes.len(), redis.masters(), "{homes:?}");

    const EACH: usize = 50;
    for n in 0..EACH {
        for (name, client) in rooms.iter_mut().flatten() {
            client.send_text(&format!("{name}:{n}"));
        }
    }
    for members in &mut rooms {
        let publishers: Vec<String> = members.iter().map(|(name, _)| name.clone()).collect();
        for (name, client) in members.iter_mut() {
            let mut got: HashMap<String, Vec<usize>> = HashMap::new();
            for _ in 0..EACH * publishers.len() {
                let text = client.next_text();
                let (from, n) = text.split_once(':').expect("NAME:N");
                got.entry(from.to_string())
                    .or_default()
                    .push(n.parse().unwrap());
            }
            for publisher in &publishers {
                let want: Vec<usize> = (0..EACH).collect();
                assert_eq!(got[publisher], want, "{name} from {publisher}");
            }
        }
    }
    // Nothing more comes (a while for all, then a look at each).
    std::thread::sleep(Duration::from_millis(200));
    for (name, client) in rooms.iter_mut().flatten() {
        let more = client.arriving_within(Duration::from_millis(1));
        assert!(more.is_empty(), "{name} got more: {more:?}");
    }
    assert!(outsider
        .arriving_within(Duration::from_millis(50))
        .is_empty());

    // Each instance published its own, took the other's from Redis and skipped its own.
    let each_way = (2 * EACH * ROOMS.len()) as u64;
    for (instance, name) in [(&a, "a"), (&b, "b")] {
        let stats = instance.broker.stats();
        assert_eq!(
            (stats.published, stats.delivered, stats.received_own),
            (each_way, each_way, each_way),
            "{name}: {stats:?}"
        );
        assert_eq!(stats.publish_dropped + stats.publish_failed, 0, "{name}");
        assert_eq!(stats.received_invalid, 0, "{name}");
    }
    // Interest routing: C has nobody in the rooms, so Redis sent it nothing.
    assert_eq!(c.broker.stats().received, 0);
    // What the admin listener says of it.
    let admin = c.server.as_ref().unwrap().admin_addr().unwrap();
    let metrics = common::http(admin, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    for line in [
        "ws_redis_received_total 0\n",
        "ws_redis_subscribed_rooms 1\n",
    ] {
        assert!(metrics.contains(line), "{line:?} in {metrics}");
    }

    // Messages published without being recorded cross Redis only: no stream, no numbering.
    let kept = redis.command(&["EXISTS", "ws:{lobby}:log", "ws:{lobby}:meta"]);
    assert_eq!(kept.as_deref(), Some(":0\r\n"));

    // Something on the channel that is not an envelope: counted, not delivered.
    let garbage = [redis.publish_command(), "ws:{lobby}:msg", "not an envelope"];
    assert_eq!(
        redis.command(&garbage).as_deref(),
        Some(":2\r\n"),
        "A and B"
    );
    wait_until("the garbage to be seen", || {
        a.broker.stats().received_invalid == 1
    });
    assert!(rooms[0][0]
        .1
        .arriving_within(Duration::from_millis(50))
        .is_empty());

    // The last member of the side room leaves: C unsubscribes, as Redis sees it.
    assert_eq!(redis.subscribers("ws:{side}:msg"), 1);
    outsider.close();
    wait_until("C to unsubscribe the side room", || {
        redis.subscribers("ws:{side}:msg") == 0
    });
    assert!(!c.broker.is_subscribed("side"));
}

#[test]
fn on_a_redis_cluster_a_room_whose_slot_moves_to_another_master_is_followed_there() {
    let cluster = RedisCluster::start();
    let (a, b) = (Instance::start(&cluster), Instance::start(&cluster));
    let (mut a1, mut b1) = (a.connect("lobby"), b.connect("lobby"));
    let channel = "ws:{lobby}:msg";
    wait_until("the lobby subscribed", || {
        a.broker.is_subscribed("lobby") && b.broker.is_subscribed("lobby")
    });
    // Slot 10294, on the second master.
    assert_eq!(cluster.subscribed_on(channel), [1]);
    a1.send_text("before");
    assert_eq!(a1.next_text(), "before");
    assert_eq!(b1.next_text(), "before");

    cluster.move_slot(10294, 1, 0);
    // The old master takes the channel's subscribers away; they subscribe on the new one.
    wait_until("both instances to subscribe on the new master", || {
        cluster.subscribed_on(channel) == [0] && cluster.subscribers(channel) == 2
    });
    // The publisher still sends to the old master, which redirects it: nothing is lost.
    a1.send_text("after");
    assert_eq!(a1.next_text(), "after");
    assert_eq!(b1.next_text(), "after");
    assert!(b1.arriving_within(Duration::from_millis(100)).is_empty());
    let stats = a.broker.stats();
    assert_eq!((stats.published, stats.publish_failed), (2, 0), "{stats:?}");
}

#[test]
fn on_a_redis_cluster_a_master_that_fails_over_to_its_replica_is_followed() {
    let mut cluster = RedisCluster::start_with_replica();
    let (a, b) = (Instance::start(&cluster), Instance::start(&cluster));
    let (mut a1, mut b1) = (a.connect("lobby"), b.connect("lobby"));
    let channel = "ws:{lobby}:msg";
    wait_until("the lobby subscribed", || {
        a.broker.is_subscribed("lobby") && b.broker.is_subscribed("lobby")
    });
    assert_eq!(cluster.subscribed_on(channel), [1]);
    a1.send_text("before");
    assert_eq!(b1.next_text(), "before");

    // The lobby's master dies; its replica is elected in its place.
    cluster.nodes[1].stop();
    wait_until("the replica to take over", || {
        let role = cluster.nodes[3].command(&["ROLE"]).unwrap_or_default();
        role.starts_with("*3\r\n$6\r\nmaster")
    });
    wait_until("both instances to subscribe on it", || {
        cluster.subscribed_on(channel) == [3] && cluster.subscribers(channel) == 2
    });
    // The publisher finds its connection gone when it next uses it: say it until it gets
    // through.
    let deadline = Instant::now() + WAIT;
    let mut said = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "nothing got through after the failover"
        );
        said += 1;
        a1.send_text(&format!("after {said}"));
        let arrived = b1.arriving_within(Duration::from_millis(100));
        if arrived.iter().any(|m| m.as_bytes().starts_with(b"after ")) {
            break;
        }
    }
}

#[test]
fn without_redis_an_instance_serves_its_own_and_after_an_outage_they_meet_again() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let (a, b) = (Instance::start(&redis), Instance::start(&redis));
    let (mut a1, mut a2, mut b1) = (a.connect("lobby"), a.connect("lobby"), b.connect("lobby"));
    let both_subscribed = || a.broker.is_subscribed("lobby") && b.broker.is_subscribed("lobby");
    wait_until("the lobby subscribed", both_subscribed);
    a1.send_text("before");
    for client in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(client.next_text(), "before");
    }

    redis.stop();
    a1.send_text("during");
    for client in [&mut a1, &mut a2] {
        assert_eq!(client.next_text(), "during", "local delivery goes on");
    }
    wait_until("the publisher to give the message up", || {
        let stats = a.broker.stats();
        stats.publish_failed + stats.publish_dropped == 1
    });
    assert!(b1.arriving_within(Duration::from_millis(100)).is_empty());
    wait_until("B to notice", || !b.broker.is_subscribed("lobby"));

    let (a_connects, b_connects) = (a.broker.stats().connects, b.broker.stats().connects);
    let _redis = RedisServer::start_on(port);
    wait_until("both to subscribe again", || {
        a.broker.stats().connects > a_connects
            && b.broker.stats().connects > b_connects
            && both_subscribed()
    });
    // The publisher finds its connection gone when it next uses it: what it was sending then
    // is lost (counted), so say it until it gets through.
    let deadline = Instant::now() + WAIT;
    let mut said = 0;
    let heard = loop {
        assert!(
            Instant::now() < deadline,
            "nothing got through after the outage"
        );
        said += 1;
        a1.send_text(&format!("after {said}"));
        let arrived = b1.arriving_within(Duration::from_millis(100));
        if let Some(first) = arrived.first() {
            break first.as_bytes().to_vec();
        }
    };
    assert!(
        heard.starts_with(b"after "),
        "{}",
        String::from_utf8_lossy(&heard)
    );
    let stats = a.broker.stats();
    assert!(stats.published >= 2, "{stats:?}");
    assert!(
        stats.connects >= 3,
        "subscriber, publisher, publisher again: {stats:?}"
    );
}

#[test]
fn an_unreachable_redis_costs_the_members_of_one_instance_nothing() {
    // Nothing listens on port 1 of loopback.
    let config = RedisConfig {
        reconnect_max: Duration::from_millis(100),
        ..RedisConfig::new("redis://127.0.0.1:1")
    };
    let broker = Arc::new(RedisBroker::start(config).unwrap());
    let mut server = TestServer::with_broker(test_config(), Rooms, broker.clone());
    let (x, y) = (server.connect("/lobby"), server.connect("/lobby"));
    server.send(x, text("hello"));
    for client in [x, y] {
        assert_eq!(server.messages(client), [text("hello")]);
    }
    wait_until("the message to be dropped for Redis", || {
        broker.stats().publish_dropped == 1
    });
    let stats = broker.stats();
    assert!(stats.connection_errors >= 1, "{stats:?}");
    assert_eq!((stats.published, stats.received, stats.connects), (0, 0, 0));
    assert!(!broker.is_subscribed("lobby"));
}
