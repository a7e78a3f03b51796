//! Which master of a Redis Cluster owns each slot, as `CLUSTER SLOTS` tells it, and how to
//! find out whether a Redis is a cluster at all (`INFO cluster`). Read when a connection is
//! made, and again whenever a node answers `MOVED` ([`crate::routed`]) or a shard channel is
//! taken away ([`crate::sharded`]).

use crate::slot::slot;
use redis::{Connection, RedisResult, Value};
use std::fmt;

/// A master, by the address the cluster gives for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Node {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Node {
    /// `HOST:PORT`, as in a `MOVED` or `ASK` error.
    pub(crate) fn parse(address: &str) -> Option<Node> {
        let (host, port) = address.rsplit_once(':')?;
        Some(Node {
            host: host.to_string(),
            port: port.parse().ok()?,
        })
    }
}

/// The masters' slot ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SlotMap {
    /// `(first, last, master)`, sorted by first slot.
    ranges: Vec<(u16, u16, Node)>,
}

impl SlotMap {
    /// Parses a `CLUSTER SLOTS` answer from the node at `answering_host` (a node with no host
    /// of its own, an empty one, is that host).
    pub(crate) fn parse(value: &Value, answering_host: &str) -> Option<SlotMap> {
        let Value::Array(items) = value else {
            return None;
        };
        let mut ranges = Vec::with_capacity(items.len());
        for item in items {
            let Value::Array(parts) = item else {
                return None;
            };
            let [Value::Int(first), Value::Int(last), Value::Array(master), ..] = parts.as_slice()
            else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(host) if !host.is_empty() => {
                    String::from_utf8(host.clone()).ok()?
                }
                Value::BulkString(_) | Value::Nil => answering_host.to_string(),
                _ => return None,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                return None;
            };
            let node = Node {
                host,
                port: u16::try_from(*port).ok()?,
            };
            ranges.push((
                u16::try_from(*first).ok()?,
                u16::try_from(*last).ok()?,
                node,
            ));
        }
        ranges.sort();
        Some(SlotMap { ranges })
    }

    /// Reads the map from a node of the cluster.
    pub(crate) fn read(con: &mut Connection, answering_host: &str) -> RedisResult<SlotMap> {
        let value: Value = redis::cmd("CLUSTER").arg("SLOTS").query(con)?;
        SlotMap::parse(&value, answering_host).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "CLUSTER SLOTS answered something else than slot ranges",
            ))
        })
    }

    /// The master owning `slot`, if the map has one for it.
    pub(crate) fn owner_of_slot(&self, slot: u16) -> Option<&Node> {
        let at = self.ranges.partition_point(|(first, _, _)| *first <= slot);
        let (_, last, node) = self.ranges.get(at.checked_sub(1)?)?;
        (slot <= *last).then_some(node)
    }

    /// The master owning `key`'s slot.
    pub(crate) fn owner(&self, key: &[u8]) -> Option<&Node> {
        self.owner_of_slot(slot(key))
    }

    /// Every master that owns some slot, each once.
    pub(crate) fn masters(&self) -> Vec<Node> {
        let mut masters: Vec<Node> = self.ranges.iter().map(|(_, _, n)| n.clone()).collect();
        masters.sort();
        masters.dedup();
        masters
    }
}

/// Whether the Redis on `con` runs in cluster mode.
pub(crate) fn is_cluster(con: &mut Connection) -> RedisResult<bool> {
    let info: String = redis::cmd("INFO").arg("cluster").query(con)?;
    Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn range(first: i64, last: i64, host: Value, port: i64) -> Value {
        let master = Value::Array(vec![host, Value::Int(port), bulk("id")]);
        let replica = Value::Array(vec![bulk("10.0.0.9"), Value::Int(9), bulk("id2")]);
        Value::Array(vec![Value::Int(first), Value::Int(last), master, replica])
    }

    #[test]
    fn each_slot_has_its_master_and_a_hole_has_none() {
        let answer = Value::Array(vec![
            range(10923, 16383, bulk("10.0.0.3"), 7003),
            range(0, 5460, bulk("10.0.0.1"), 7001),
            range(5461, 10000, bulk(""), 7002),
        ]);
        let map = SlotMap::parse(&answer, "10.0.0.2").unwrap();
        let at = |slot| map.owner_of_slot(slot).map(|n| n.to_string());
        assert_eq!(at(0).as_deref(), Some("10.0.0.1:7001"));
        assert_eq!(at(5460).as_deref(), Some("10.0.0.1:7001"));
        assert_eq!(
            at(5461).as_deref(),
            Some("10.0.0.2:7002"),
            "the answering host"
        );
        assert_eq!(at(10001), None);
        assert_eq!(at(16383).as_deref(), Some("10.0.0.3:7003"));
        assert_eq!(map.masters().len(), 3);
        // "123456789" is in slot 12739.
        assert_eq!(map.owner(b"x{123456789}y").unwrap().port, 7003);
        assert_eq!(
            SlotMap::parse(&Value::Array(vec![]), "h")
                .unwrap()
                .owner_of_slot(0),
            None
        );
    }

    #[test]
    fn an_answer_that_is_not_slot_ranges_is_refused() {
        assert_eq!(SlotMap::parse(&Value::Nil, "h"), None);
        let short = Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(1)])]);
        assert_eq!(SlotMap::parse(&short, "h"), None);
        let bad_port = Value::Array(vec![range(0, 1, bulk("h"), 70000)]);
        assert_eq!(SlotMap::parse(&bad_port, "h"), None);
    }

    #[test]
    fn redirections_name_a_node() {
        let node = Node::parse("127.0.0.1:7002").unwrap();
        assert_eq!((node.host.as_str(), node.port), ("127.0.0.1", 7002));
        assert_eq!(Node::parse("::1:7002").unwrap().host, "::1");
        assert_eq!(Node::parse("nowhere"), None);
    }
}
