//! Two `ws-chat` processes given one redis-server with `--redis` are one chat: what is said in
//! a room on either reaches the room's members on both, once. The same with a three-master
//! Redis Cluster given as its nodes' list.

#[path = "../../ws-mio-server/tests/common/mod.rs"]
mod common;
#[path = "../../ws-redis/tests/redis_server/mod.rs"]
mod redis_server;

use common::{wait_until, ServerProcess, TestClient};
use redis_server::{RedisCluster, RedisServer, TestRedis};
use serde_json::{json, Value};
use std::net::SocketAddr;

fn chat(redis: &dyn TestRedis) -> ServerProcess {
    ServerProcess::spawn(
        env!("CARGO_BIN_EXE_ws-chat"),
        &["--admin-listen", "off", "--workers", "1"],
        &[("WS_REDIS", &redis.url())],
    )
}

struct Guest(TestClient);

impl Guest {
    fn join(addr: SocketAddr, name: &str, room: &str) -> Guest {
        let mut guest = Guest(TestClient::connect(addr, &format!("/ws?name={name}")));
        assert_eq!(guest.recv()["type"], "welcome");
        guest.send(json!({"type": "join", "room": room}));
        guest
    }

    fn send(&mut self, value: Value) {
        self.0.send_text(&value.to_string());
    }

    fn recv(&mut self) -> Value {
        serde_json::from_str(&self.0.next_text()).unwrap()
    }

    /// The next message of a type, skipping others (presence) that may come between.
    fn recv_type(&mut self, kind: &str) -> Value {
        for _ in 0..20 {
            let v = self.recv();
            if v["type"] == kind {
                return v;
            }
        }
        panic!("no {kind} message");
    }
}

#[test]
fn two_chat_processes_on_one_redis_share_a_room() {
    share_a_room(&RedisServer::start());
}

#[test]
fn two_chat_processes_on_a_redis_cluster_share_a_room() {
    share_a_room(&RedisCluster::start());
}

fn share_a_room(redis: &dyn TestRedis) {
    let (one, two) = (chat(redis), chat(redis));
    let mut alice = Guest::join(one.addr, "alice", "lobby");
    let mut bob = Guest::join(two.addr, "bob", "lobby");
    // Joined: each was told the room's position, so what is said from now on is after it (said
    // before the answer, it would be history the joiner did not ask for).
    alice.recv_type("joined");
    bob.recv_type("joined");
    wait_until("both instances to subscribe the lobby", || {
        redis.subscribers("ws:{lobby}:msg") == 2
    });

    alice.send(json!({"type": "send", "room": "lobby", "text": "hello from one"}));
    let heard = bob.recv_type("message");
    assert_eq!(
        (heard["from"].as_str(), heard["text"].as_str()),
        (Some("alice"), Some("hello from one"))
    );
    assert_eq!(heard["offset"], 1, "numbered in Redis, the room's first");
    assert_eq!(alice.recv_type("ack")["msg_id"], heard["id"]);
    let own = alice.recv_type("message");
    assert_eq!(
        (&own["text"], &own["offset"], &own["epoch"]),
        (&heard["text"], &heard["offset"], &heard["epoch"])
    );

    bob.send(json!({"type": "send", "room": "lobby", "text": "hi from two"}));
    assert_eq!(bob.recv_type("message")["offset"], 2);
    // Alice's next message is Bob's, not a second copy of her own.
    let heard = alice.recv_type("message");
    assert_eq!(
        (
            heard["from"].as_str(),
            heard["text"].as_str(),
            heard["offset"].as_u64()
        ),
        (Some("bob"), Some("hi from two"), Some(2))
    );
}
