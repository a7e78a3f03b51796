//! Sharded pub/sub over a Redis Cluster, for the subscriber: one connection per master
//! ([`crate::wire`]), each `SSUBSCRIBE`d to the channels of the rooms whose slot that master
//! owns, so a room's messages cross the cluster's bus to no other node.
//!
//! The thread reads the masters in turn, each for a share of the poll interval, and goes on
//! reading one while it has messages (up to a [`BURST`]) before it moves on. A subscription
//! answered `MOVED` (the slot map this side had is out of date) reads the map again and goes to
//! the master named, connecting to it if it is new. A channel taken away by the cluster (its
//! slot moved to another master: an `sunsubscribe` nobody asked for) or a lost connection is
//! an error: the subscriber then connects again with a fresh map and subscribes every wanted
//! room again, as after any loss ([`crate::subscriber`]).

use crate::link::{self, Found};
use crate::seeds::Seeds;
use crate::topology::{Node, SlotMap};
use crate::wire::Wire;
use redis::{ErrorKind, Msg, PushInfo, PushKind, RedisError, RedisResult, ServerErrorKind, Value};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Redirections followed for one subscription at most.
const REDIRECTIONS: usize = 3;

/// Messages read from one master in a row at most while it has more, before the next master's
/// turn: a busy master is read at full speed, and still cannot keep the others waiting long.
const BURST: usize = 64;

/// One sharded pub/sub connection per master.
pub(crate) struct Shards {
    seeds: Seeds,
    map: SlotMap,
    nodes: Vec<(Node, Wire)>,
    /// How long a connection or a confirmation may take.
    command_timeout: Duration,
    /// How long [`Self::get_message`] waits for a message, over all masters.
    poll: Duration,
    /// The master read first at the next poll.
    turn: usize,
    /// Messages read in a row from that master.
    streak: usize,
    /// Messages read while waiting for a confirmation.
    waiting: VecDeque<Msg>,
    /// The master of each channel subscribed.
    subscribed: HashMap<Vec<u8>, usize>,
}

fn error(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Client, what))
}

fn taken_away() -> RedisError {
    error("a shard channel was taken away (its slot moved)")
}

/// What a value read means to the subscriber.
#[derive(Debug)]
enum Pushed {
    Message(Msg),
    /// A confirmation (`ssubscribe` or `sunsubscribe`) of a channel.
    Confirmed(PushKind, Vec<u8>),
    /// `MOVED`: the master that owns the channel now.
    Moved(Node),
    Other,
}

/// `[kind, channel, payload or count]`, as RESP2 sends them.
fn pushed(value: Value) -> RedisResult<Pushed> {
    let parts = match value {
        Value::Array(parts) => parts,
        Value::ServerError(error) => {
            let moved = error.kind() == Some(ServerErrorKind::Moved);
            let to = error
                .details()
                .and_then(|d| d.split_ascii_whitespace().nth(1));
            return match (moved, to.and_then(Node::parse)) {
                (true, Some(node)) => Ok(Pushed::Moved(node)),
                _ => Err(error.into()),
            };
        }
        _ => return Ok(Pushed::Other),
    };
    let mut parts = parts.into_iter();
    let (Some(Value::BulkString(kind)), Some(channel)) = (parts.next(), parts.next()) else {
        return Ok(Pushed::Other);
    };
    Ok(match (kind.as_slice(), channel) {
        (b"smessage", channel) => {
            let data = vec![channel, parts.next().unwrap_or(Value::Nil)];
            match Msg::from_push_info(PushInfo {
                kind: PushKind::SMessage,
                data,
            }) {
                Some(msg) => Pushed::Message(msg),
                None => Pushed::Other,
            }
        }
        (b"ssubscribe", Value::BulkString(channel)) => {
            Pushed::Confirmed(PushKind::SSubscribe, channel)
        }
        (b"sunsubscribe", Value::BulkString(channel)) => {
            Pushed::Confirmed(PushKind::SUnsubscribe, channel)
        }
        _ => Pushed::Other,
    })
}

impl Shards {
    /// Connects to every master of `map`.
    pub(crate) fn connect(seeds: &Seeds, map: SlotMap, timeout: Duration) -> RedisResult<Shards> {
        let mut shards = Shards {
            seeds: seeds.clone(),
            map,
            nodes: Vec::new(),
            command_timeout: timeout,
            poll: timeout,
            turn: 0,
            streak: 0,
            waiting: VecDeque::new(),
            subscribed: HashMap::new(),
        };
        for node in shards.map.masters() {
            shards.connection(&node)?;
        }
        if shards.nodes.is_empty() {
            return Err(error("the cluster has no master"));
        }
        Ok(shards)
    }

    /// The index of the connection to `node`, made if need be.
    fn connection(&mut self, node: &Node) -> RedisResult<usize> {
        if let Some(at) = self.nodes.iter().position(|(n, _)| n == node) {
            return Ok(at);
        }
        let info = self.seeds.node(&node.host, node.port);
        let wire = Wire::connect(&info, self.command_timeout)?;
        self.nodes.push((node.clone(), wire));
        Ok(self.nodes.len() - 1)
    }

    /// How long [`Self::get_message`] waits at most (confirmations wait the connection
    /// timeout whatever this says).
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.poll = timeout.unwrap_or(self.command_timeout);
    }

    /// Subscribes `channel` on its master, waiting for the confirmation.
    pub(crate) fn subscribe(&mut self, channel: &[u8]) -> RedisResult<()> {
        let mut owner = self
            .map
            .owner(channel)
            .cloned()
            .ok_or_else(|| error("no master owns the channel's slot"))?;
        for _ in 0..REDIRECTIONS {
            let at = self.connection(&owner)?;
            match self.order(at, "SSUBSCRIBE", channel, PushKind::SSubscribe)? {
                None => {
                    self.subscribed.insert(channel.to_vec(), at);
                    return Ok(());
                }
                Some(moved) => {
                    if let Found::Cluster(map) = link::find(&self.seeds, self.command_timeout)? {
                        self.map = map;
                    }
                    owner = moved;
                }
            }
        }
        Err(error("too many cluster redirections"))
    }

    /// Unsubscribes `channel`, waiting for the confirmation.
    pub(crate) fn unsubscribe(&mut self, channel: &[u8]) -> RedisResult<()> {
        let Some(at) = self.subscribed.remove(channel) else {
            return Ok(());
        };
        match self.order(at, "SUNSUBSCRIBE", channel, PushKind::SUnsubscribe)? {
            None => Ok(()),
            Some(_) => Err(taken_away()),
        }
    }

    /// Sends `command channel` to master `at` and waits for its `confirmation`, keeping the
    /// messages that come first; the master named when the answer is `MOVED`.
    fn order(
        &mut self,
        at: usize,
        command: &str,
        channel: &[u8],
        confirmation: PushKind,
    ) -> RedisResult<Option<Node>> {
        let wire = &mut self.nodes[at].1;
        wire.send(redis::cmd(command).arg(channel))?;
        loop {
            match pushed(wire.next(self.command_timeout)?)? {
                Pushed::Message(msg) => self.waiting.push_back(msg),
                Pushed::Confirmed(kind, name) if kind == confirmation && name == channel => {
                    return Ok(None)
                }
                Pushed::Confirmed(PushKind::SUnsubscribe, _) => return Err(taken_away()),
                Pushed::Moved(node) => return Ok(Some(node)),
                Pushed::Confirmed(..) | Pushed::Other => {}
            }
        }
    }

    /// The next message from any master, waiting the poll interval at most (a timeout error
    /// when none came).
    pub(crate) fn get_message(&mut self) -> RedisResult<Msg> {
        if let Some(msg) = self.waiting.pop_front() {
            return Ok(msg);
        }
        let count = self.nodes.len();
        let each = self.poll / count as u32;
        for _ in 0..count {
            let at = self.turn % count;
            let value = match self.nodes[at].1.next(each) {
                Ok(value) => value,
                Err(error) if error.is_timeout() => {
                    self.next_turn();
                    continue;
                }
                Err(error) => return Err(error),
            };
            match pushed(value)? {
                Pushed::Message(msg) => {
                    self.streak += 1;
                    if self.streak >= BURST {
                        self.next_turn();
                    }
                    return Ok(msg);
                }
                Pushed::Confirmed(PushKind::SUnsubscribe, _) => return Err(taken_away()),
                Pushed::Moved(_) => return Err(error("an unexpected redirection")),
                Pushed::Confirmed(..) | Pushed::Other => {}
            }
        }
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into())
    }

    fn next_turn(&mut self) {
        self.turn = self.turn.wrapping_add(1);
        self.streak = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn shard_messages_confirmations_and_redirections_are_told_apart() {
        let message = Value::Array(vec![bulk("smessage"), bulk("ws:{r}:msg"), bulk("hi")]);
        match pushed(message).unwrap() {
            Pushed::Message(msg) => {
                assert_eq!(msg.get_channel_name(), "ws:{r}:msg");
                assert_eq!(msg.get_payload_bytes(), b"hi");
            }
            other => panic!("{other:?}"),
        }
        let confirmed = Value::Array(vec![bulk("ssubscribe"), bulk("c"), Value::Int(1)]);
        assert!(matches!(
            pushed(confirmed).unwrap(),
            Pushed::Confirmed(PushKind::SSubscribe, c) if c == b"c"
        ));
        let moved = redis::parse_redis_value(b"-MOVED 7893 127.0.0.1:7003\r\n").unwrap();
        assert!(matches!(pushed(moved).unwrap(), Pushed::Moved(n) if n.port == 7003));
        let refused = redis::parse_redis_value(b"-ERR nope\r\n").unwrap();
        assert!(pushed(refused).is_err());
        assert!(matches!(pushed(Value::Int(3)).unwrap(), Pushed::Other));
    }
}
