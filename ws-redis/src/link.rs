//! A connection for commands, to a single Redis or to a Redis Cluster, whichever the seeds
//! lead to ([`crate::seeds`]): the first seed that answers is asked `INFO cluster`; a single
//! Redis is then used on that one connection exactly as before, a cluster through
//! [`crate::routed`], each command to the master owning its key. Either way it is a
//! [`redis::ConnectionLike`], so commands, pipelines and scripts are sent to it as to a plain
//! connection.

use crate::routed::Routed;
use crate::seeds::Seeds;
use crate::topology::{self, SlotMap};
use redis::{Client, Cmd, Connection, ConnectionAddr, ConnectionInfo, ConnectionLike};
use redis::{RedisResult, Value};
use std::time::Duration;

/// A connection to a single Redis, or to every master of a cluster.
pub(crate) enum Link {
    Single(Connection),
    Cluster(Box<Routed>),
}

/// What the first seed that answered is.
pub(crate) enum Found {
    /// A single Redis, and the connection to it.
    Single(Connection),
    /// A node of a cluster, and the cluster's slot map.
    Cluster(SlotMap),
}

/// The host of a TCP seed ("" for a Unix socket).
fn host_of(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, _) => host.clone(),
        _ => String::new(),
    }
}

/// Connects to the seeds in turn and finds out what the first that answers is. A Redis that
/// will not say (`INFO` refused to its user) is taken for a single one.
pub(crate) fn find(seeds: &Seeds, timeout: Duration) -> RedisResult<Found> {
    let mut last_error = None;
    for seed in seeds.nodes() {
        let connected = Client::open(seed.clone())
            .and_then(|client| client.get_connection_with_timeout(timeout))
            .and_then(|con| {
                con.set_read_timeout(Some(timeout))?;
                Ok(con)
            });
        let mut con = match connected {
            Ok(con) => con,
            Err(error) => {
                last_error = Some(error);
                continue;
            }
        };
        match topology::is_cluster(&mut con) {
            Ok(true) => {
                let map = SlotMap::read(&mut con, &host_of(&seed))?;
                seeds.learn(map.masters().into_iter().map(|n| (n.host, n.port)));
                return Ok(Found::Cluster(map));
            }
            Ok(false) => return Ok(Found::Single(con)),
            Err(error) if matches!(error.kind(), redis::ErrorKind::Server(_)) => {
                return Ok(Found::Single(con))
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.expect("a list has at least one seed"))
}

impl Link {
    /// A connection for commands, through the first seed that answers. The timeout bounds
    /// each connection attempt; commands wait as long as [`Self::set_read_timeout`] says.
    pub(crate) fn connect(seeds: &Seeds, timeout: Duration) -> RedisResult<Link> {
        Ok(match find(seeds, timeout)? {
            Found::Single(con) => {
                con.set_read_timeout(None)?;
                Link::Single(con)
            }
            Found::Cluster(map) => {
                Link::Cluster(Box::new(Routed::new(seeds.clone(), map, timeout)))
            }
        })
    }

    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Link::Single(con) => con.set_read_timeout(timeout),
            Link::Cluster(routed) => routed.set_read_timeout(timeout),
        }
    }

    pub(crate) fn set_write_timeout(&mut self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Link::Single(con) => con.set_write_timeout(timeout),
            Link::Cluster(routed) => routed.set_write_timeout(timeout),
        }
    }

    /// The command that publishes to a room's channel: `PUBLISH` on a single Redis,
    /// `SPUBLISH` (sharded pub/sub, to the channel's master) on a cluster.
    pub(crate) fn publish_command(&self) -> &'static str {
        match self {
            Link::Single(_) => "PUBLISH",
            Link::Cluster(_) => "SPUBLISH",
        }
    }

    fn inner(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Link::Single(con) => con,
            Link::Cluster(routed) => routed.as_mut(),
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.inner().req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.inner().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.inner().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(con) => con.get_db(),
            Link::Cluster(routed) => routed.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        self.inner().check_connection()
    }

    fn is_open(&self) -> bool {
        match self {
            Link::Single(con) => con.is_open(),
            Link::Cluster(routed) => routed.is_open(),
        }
    }
}
