//! Sharded pub/sub over a Redis Cluster, for the subscriber: one connection per master,
//! each `SSUBSCRIBE`d to the channels of the rooms whose slot that master owns, so a room's
//! messages cross the cluster's bus to no other node. The connections speak RESP3, where what
//! a shard channel sends (`smessage`, `ssubscribe`, `sunsubscribe`) comes as push values that
//! the blocking client reads as they are.
//!
//! The thread reads the masters in turn, each for a share of the poll interval. A channel
//! taken away by the cluster (its slot moved to another master: an `sunsubscribe` nobody
//! asked for), a `MOVED` answer, or a lost connection is an error: the subscriber then
//! connects again with a fresh slot map and subscribes every wanted room again, as after any
//! loss ([`crate::subscriber`]).

use crate::seeds::Seeds;
use crate::topology::{Node, SlotMap};
use redis::{Client, Connection, ConnectionLike, Msg, ProtocolVersion, PushInfo, PushKind};
use redis::{ErrorKind, RedisError, RedisResult, Value};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The shortest wait on one master while polling.
const LEAST_WAIT: Duration = Duration::from_millis(1);

/// One sharded pub/sub connection per master.
pub(crate) struct Shards {
    map: SlotMap,
    nodes: Vec<(Node, Connection)>,
    /// How long a confirmation may take.
    command_timeout: Duration,
    /// How long [`Self::get_message`] waits for a message, over all masters.
    poll: Duration,
    /// The master read first at the next poll.
    turn: usize,
    /// Messages read while waiting for a confirmation.
    waiting: VecDeque<Msg>,
    /// The master of each channel subscribed.
    subscribed: HashMap<Vec<u8>, usize>,
}

fn error(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Client, what))
}

/// What a push value means to the subscriber.
enum Pushed {
    Message(Msg),
    /// A confirmation (`ssubscribe` or `sunsubscribe`) of a channel.
    Confirmed(PushKind, Vec<u8>),
    Other,
}

fn pushed(value: Value) -> RedisResult<Pushed> {
    let (kind, data) = match value {
        Value::Push { kind, data } => (kind, data),
        Value::ServerError(error) => return Err(error.into()),
        _ => return Ok(Pushed::Other),
    };
    Ok(match kind {
        PushKind::SMessage => match Msg::from_push_info(PushInfo { kind, data }) {
            Some(msg) => Pushed::Message(msg),
            None => Pushed::Other,
        },
        PushKind::SSubscribe | PushKind::SUnsubscribe => match data.into_iter().next() {
            Some(Value::BulkString(channel)) => Pushed::Confirmed(kind, channel),
            _ => Pushed::Other,
        },
        _ => Pushed::Other,
    })
}

impl Shards {
    /// Connects to every master of `map`.
    pub(crate) fn connect(seeds: &Seeds, map: SlotMap, timeout: Duration) -> RedisResult<Shards> {
        let mut nodes = Vec::new();
        for node in map.masters() {
            let info = seeds.node(&node.host, node.port);
            let resp3 = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            let con = Client::open(info.set_redis_settings(resp3))?
                .get_connection_with_timeout(timeout)?;
            con.set_write_timeout(Some(timeout))?;
            nodes.push((node, con));
        }
        if nodes.is_empty() {
            return Err(error("the cluster has no master"));
        }
        Ok(Shards {
            map,
            nodes,
            command_timeout: timeout,
            poll: timeout,
            turn: 0,
            waiting: VecDeque::new(),
            subscribed: HashMap::new(),
        })
    }

    /// How long [`Self::get_message`] waits at most (confirmations wait the connection
    /// timeout whatever this says).
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.poll = timeout.unwrap_or(self.command_timeout);
    }

    /// The master of `channel`, as an index into the connections.
    fn master_of(&self, channel: &[u8]) -> RedisResult<usize> {
        let owner = self
            .map
            .owner(channel)
            .ok_or_else(|| error("no master owns the channel's slot"))?;
        self.nodes
            .iter()
            .position(|(node, _)| node == owner)
            .ok_or_else(|| error("the channel's master is not connected"))
    }

    /// Subscribes `channel` on its master, waiting for the confirmation.
    pub(crate) fn subscribe(&mut self, channel: &[u8]) -> RedisResult<()> {
        let at = self.master_of(channel)?;
        self.order(at, "SSUBSCRIBE", channel, PushKind::SSubscribe)?;
        self.subscribed.insert(channel.to_vec(), at);
        Ok(())
    }

    /// Unsubscribes `channel`, waiting for the confirmation.
    pub(crate) fn unsubscribe(&mut self, channel: &[u8]) -> RedisResult<()> {
        let Some(at) = self.subscribed.remove(channel) else {
            return Ok(());
        };
        self.order(at, "SUNSUBSCRIBE", channel, PushKind::SUnsubscribe)
    }

    /// Sends `command channel` to master `at` and waits for its `confirmation`, keeping the
    /// messages that come first.
    fn order(
        &mut self,
        at: usize,
        command: &str,
        channel: &[u8],
        confirmation: PushKind,
    ) -> RedisResult<()> {
        let con = &mut self.nodes[at].1;
        con.set_read_timeout(Some(self.command_timeout))?;
        let mut cmd = redis::cmd(command);
        cmd.arg(channel).set_no_response(true);
        con.req_command(&cmd)?;
        loop {
            match pushed(con.recv_response()?)? {
                Pushed::Message(msg) => self.waiting.push_back(msg),
                Pushed::Confirmed(kind, name) if kind == confirmation && name == channel => {
                    return Ok(())
                }
                Pushed::Confirmed(PushKind::SUnsubscribe, _) => {
                    return Err(error("a shard channel was taken away (its slot moved)"))
                }
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
        let each = (self.poll / count as u32).max(LEAST_WAIT);
        for _ in 0..count {
            let at = self.turn % count;
            self.turn = self.turn.wrapping_add(1);
            let con = &mut self.nodes[at].1;
            con.set_read_timeout(Some(each))?;
            let value = match con.recv_response() {
                Ok(value) => value,
                Err(error) if error.is_timeout() => continue,
                Err(error) => return Err(error),
            };
            match pushed(value)? {
                Pushed::Message(msg) => return Ok(msg),
                Pushed::Confirmed(PushKind::SUnsubscribe, _) => {
                    return Err(error("a shard channel was taken away (its slot moved)"))
                }
                Pushed::Confirmed(..) | Pushed::Other => {}
            }
        }
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into())
    }
}
