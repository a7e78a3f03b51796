//! Rooms' histories kept in Redis, through several server instances in this process sharing
//! one real redis-server on a loopback port: recorded messages numbered once in Redis and
//! delivered in offset order on every instance; a client that moves to another instance with
//! the position of the last message it saw is sent exactly what it missed; a Redis restart
//! with its append-only file keeps histories and epochs (the instances degraded meanwhile,
//! serving their own members), one that lost its data starts new epochs and says so. The
//! ordering and the recovery run on a three-master Redis Cluster too. Every wait is bounded.

#[path = "../../ws-mio-server/tests/common/mod.rs"]
mod common;
mod redis_server;

use common::{test_config, wait_until, TestClient};
use redis_server::{RedisCluster, RedisServer, TestRedis};
use std::sync::Arc;
use std::time::Duration;
use ws_mio_server::history::{Answer, Epoch, Position};
use ws_mio_server::{Context, Handler, Hooks, OpenDecision, OpenRequest, Server};
use ws_proto::Message;
use ws_redis::{RedisBroker, RedisConfig};

/// One room, "r". `pub TEXT` records TEXT; `join` joins fresh, `join EPOCH OFFSET` with a
/// position. Messages read `OFFSET EPOCH TEXT` (`- - TEXT` without a position); an answer
/// reads `answer OUTCOME EPOCH OFFSET MISSED`.
struct Numbered;

impl Handler for Numbered {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
        match text.split(' ').collect::<Vec<_>>().as_slice() {
            ["pub", text] => ctx.publish_recorded("r", Message::Text(text.to_string().into())),
            ["join"] => {
                ctx.join_with_history("r", None);
            }
            ["join", epoch, offset] => {
                let since = Position {
                    epoch: Epoch::parse(epoch).unwrap(),
                    offset: offset.parse().unwrap(),
                };
                ctx.join_with_history("r", Some(since));
            }
            _ => panic!("unknown request {text}"),
        }
    }

    fn render(&self, _: &str, at: Option<&Position>, payload: &Message) -> Message {
        let text = String::from_utf8_lossy(payload.as_bytes());
        let line = match at {
            Some(at) => format!("{} {} {text}", at.offset, at.epoch),
            None => format!("- - {text}"),
        };
        Message::Text(line.into())
    }

    fn on_history(&self, ctx: &mut Context<'_>, _: &mut (), answer: &Answer) {
        let page = &answer.page;
        let (epoch, offset) = page
            .position
            .as_ref()
            .map_or(("-".to_string(), 0), |p| (p.epoch.to_string(), p.offset));
        let text = format!(
            "answer {:?} {epoch} {offset} {}",
            page.outcome,
            page.messages.len()
        );
        ctx.reply(Message::Text(text.into()));
    }
}

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
        let server = Server::start_with(test_config(), Numbered, hooks).unwrap();
        Instance {
            server: Some(server),
            broker,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// A client that joined (with `since`, if given), and the answer it got.
    fn join(&self, since: Option<(&str, u64)>) -> (TestClient, Vec<String>) {
        let mut client = TestClient::connect(self.server().local_addr(), "/");
        match since {
            Some((epoch, offset)) => client.send_text(&format!("join {epoch} {offset}")),
            None => client.send_text("join"),
        }
        let answer: Vec<String> = client.next_text().split(' ').map(str::to_string).collect();
        assert_eq!(answer[0], "answer", "{answer:?}");
        (client, answer)
    }

    fn readiness(&self) -> String {
        let admin = self.server().admin_addr().unwrap();
        common::http(admin, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
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

/// A delivered line's offset and epoch (`None` for one without a position).
fn position(line: &str) -> Option<(u64, String)> {
    let mut words = line.split(' ');
    let offset = words.next()?.parse().ok()?;
    Some((offset, words.next()?.to_string()))
}

fn lines(client: &mut TestClient, n: usize) -> Vec<String> {
    (0..n).map(|_| client.next_text()).collect()
}

#[test]
fn every_instance_delivers_a_rooms_messages_once_each_in_the_order_of_their_offsets() {
    in_offset_order(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_every_instance_delivers_a_rooms_messages_in_offset_order() {
    in_offset_order(&RedisCluster::start());
}

fn in_offset_order(redis: &dyn TestRedis) {
    let (a, b) = (Instance::start(redis), Instance::start(redis));
    let (mut a1, answer) = a.join(None);
    assert_eq!(
        answer[1..],
        ["Recovered", &answer[2], "0", "0"],
        "a new room"
    );
    let epoch = answer[2].clone();
    let (mut b1, _) = b.join(None);
    let (mut b2, _) = b.join(None);
    const EACH: usize = 40;
    for n in 0..EACH {
        a1.send_text(&format!("pub a{n}"));
        b1.send_text(&format!("pub b{n}"));
    }
    for client in [&mut a1, &mut b1, &mut b2] {
        let got = lines(client, 2 * EACH);
        let offsets: Vec<u64> = got.iter().map(|l| position(l).unwrap().0).collect();
        assert_eq!(offsets, (1..=2 * EACH as u64).collect::<Vec<_>>());
        assert!(got.iter().all(|l| position(l).unwrap().1 == epoch));
        assert!(client
            .arriving_within(Duration::from_millis(100))
            .is_empty());
    }
    // One script call per message, whatever the number of members and instances.
    let published = a.broker.stats().published + b.broker.stats().published;
    assert_eq!(published, 2 * EACH as u64);
    let offset = redis.command(&["HGET", "ws:{r}:meta", "offset"]).unwrap();
    assert!(offset.ends_with("\r\n80\r\n"), "{offset:?}");
    assert_eq!(redis.command(&["XLEN", "ws:{r}:log"]).unwrap(), ":80\r\n");
}

#[test]
fn a_client_that_moves_to_another_instance_gets_exactly_what_it_missed_then_the_live_ones() {
    moving(&RedisServer::start());
}

#[test]
fn on_a_redis_cluster_a_client_that_moves_gets_exactly_what_it_missed() {
    moving(&RedisCluster::start());
}

fn moving(redis: &dyn TestRedis) {
    let (a, b) = (Instance::start(redis), Instance::start(redis));
    let (mut speaker, _) = a.join(None);
    let (mut listener, _) = a.join(None);
    speaker.send_text("pub 1");
    let seen = listener.next_text();
    let (offset, epoch) = position(&seen).unwrap();
    speaker.next_text();
    listener.close();
    for n in 2..=6 {
        speaker.send_text(&format!("pub {n}"));
    }
    lines(&mut speaker, 5);
    // Back, on the other instance, which has nobody in the room yet: its history comes from
    // Redis. Published meanwhile: 7, live.
    let (mut back, answer) = b.join(Some((&epoch, offset)));
    assert_eq!(answer[1..], ["Recovered", &epoch, "6", "5"]);
    speaker.send_text("pub 7");
    let got = lines(&mut back, 6);
    let offsets: Vec<u64> = got.iter().map(|l| position(l).unwrap().0).collect();
    assert_eq!(offsets, [2, 3, 4, 5, 6, 7]);
    assert!(back.arriving_within(Duration::from_millis(100)).is_empty());
    // A second client coming back to b is answered from b's cache, the same.
    let fetched = b.broker.stats().reads_fetched;
    let (mut again, answer) = b.join(Some((&epoch, 3)));
    assert_eq!(answer[1..], ["Recovered", &epoch, "7", "4"]);
    let offsets: Vec<u64> = lines(&mut again, 4)
        .iter()
        .map(|l| position(l).unwrap().0)
        .collect();
    assert_eq!(offsets, [4, 5, 6, 7]);
    assert_eq!(b.broker.stats().reads_fetched, fetched, "no round trip");
    // Too far back (the stream kept it all, but another epoch) is lost.
    let (_, answer) = b.join(Some(("elsewhere", 3)));
    assert_eq!(answer[1..], ["Lost", &epoch, "7", "0"]);
}

#[test]
fn on_a_redis_cluster_a_rooms_history_follows_its_slot_to_another_master() {
    let cluster = RedisCluster::start();
    let (a, b) = (Instance::start(&cluster), Instance::start(&cluster));
    let (mut speaker, _) = a.join(None);
    for n in 1..=3 {
        speaker.send_text(&format!("pub {n}"));
    }
    let (_, epoch) = position(&lines(&mut speaker, 3)[2]).unwrap();
    // Room "r" is in slot 7893, on the second master; its meta hash and stream go along.
    cluster.move_slot(7893, 1, 2);
    wait_until("a to subscribe on the new master", || {
        cluster.subscribed_on("ws:{r}:msg") == [2] && a.broker.is_subscribed("r")
    });
    // Numbering goes on in the same epoch, and the history is read where it is now.
    speaker.send_text("pub 4");
    assert_eq!(position(&speaker.next_text()).unwrap(), (4, epoch.clone()));
    let (mut back, answer) = b.join(Some((&epoch, 2)));
    assert_eq!(answer[1..], ["Recovered", &epoch, "4", "2"]);
    let offsets: Vec<u64> = lines(&mut back, 2)
        .iter()
        .map(|l| position(l).unwrap().0)
        .collect();
    assert_eq!(offsets, [3, 4]);
}

#[test]
fn through_a_redis_restart_with_its_file_histories_stay_and_instances_serve_their_own_meanwhile() {
    let mut redis = RedisServer::start_durable();
    let (a, b) = (Instance::start(&redis), Instance::start(&redis));
    wait_until("both ready", || {
        !a.readiness().contains("degraded") && !b.readiness().contains("degraded")
    });
    let (mut a1, _) = a.join(None);
    let (mut a2, _) = a.join(None);
    let (mut b1, _) = b.join(None);
    a1.send_text("pub before");
    let (offset, epoch) = position(&b1.next_text()).unwrap();
    lines(&mut a1, 1);
    lines(&mut a2, 1);

    redis.stop();
    wait_until("a to report itself degraded", || {
        a.readiness().contains("degraded")
    });
    assert!(a.readiness().starts_with("HTTP/1.1 200"), "still serving");
    a1.send_text("pub during");
    for client in [&mut a1, &mut a2] {
        assert_eq!(
            client.next_text(),
            "- - during",
            "local members, no position"
        );
    }
    assert!(b1.arriving_within(Duration::from_millis(100)).is_empty());

    redis.start_again();
    wait_until("both ready again", || {
        !a.readiness().contains("degraded") && !b.readiness().contains("degraded")
    });
    // The room's history and epoch survived: a client coming back recovers, and numbering
    // goes on from where it was.
    let (mut back, answer) = b.join(Some((&epoch, offset)));
    assert_eq!(answer[1..], ["Recovered", &epoch, "1", "0"]);
    wait_until("a to subscribe again", || a.broker.is_subscribed("r"));
    a1.send_text("pub after");
    for client in [&mut a1, &mut a2, &mut b1, &mut back] {
        let (n, e) = position(&client.next_text()).unwrap();
        assert_eq!((n, e.as_str()), (2, epoch.as_str()));
    }
}

#[test]
fn a_redis_that_lost_its_data_starts_a_new_epoch_and_a_client_coming_back_is_told() {
    let mut redis = RedisServer::start();
    let a = Instance::start(&redis);
    let (mut a1, _) = a.join(None);
    a1.send_text("pub one");
    let (offset, epoch) = position(&a1.next_text()).unwrap();
    redis.restart();
    wait_until("a ready again", || !a.readiness().contains("degraded"));
    wait_until("a to subscribe again", || a.broker.is_subscribed("r"));
    let (_, answer) = a.join(Some((&epoch, offset)));
    assert_eq!(answer[1], "Lost");
    assert_ne!(answer[2], epoch, "a new epoch");
    assert_eq!(answer[3], "0");
}
