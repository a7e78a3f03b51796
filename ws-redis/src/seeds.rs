//! Where Redis is: one URL, or a comma-separated list of them, the seed nodes of a Redis
//! Cluster (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`). Whether Redis is a cluster is not
//! said here but found at each connection (`INFO cluster`): a single Redis given as one URL
//! works as before, and a cluster can be reached through any one of its nodes; several seeds
//! only let it connect while some of them are down. The masters of a cluster, once known,
//! are tried after the seeds, so an instance given one node finds the cluster again when
//! that node is gone.

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use std::fmt;
use std::sync::{Arc, Mutex};

/// The seed nodes, in the order given.
///
/// ```
/// use ws_redis::seeds::{SeedError, Seeds};
/// let seeds = Seeds::parse("redis://127.0.0.1:7001, redis://127.0.0.1:7002")?;
/// assert_eq!(seeds.len(), 2);
/// assert!(matches!(Seeds::parse("redis://a:1,,redis://b:2"), Err(SeedError::Empty { position: 2 })));
/// # Ok::<(), SeedError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Seeds {
    nodes: Vec<ConnectionInfo>,
    /// The cluster's masters as last read (`HOST`, `PORT`), shared by every copy.
    learned: Arc<Mutex<Vec<(String, u16)>>>,
}

/// Why a `--redis` value is not usable. It never repeats the value, which may hold a password.
#[derive(Debug)]
pub enum SeedError {
    /// Nothing between two commas, or before the first, or after the last (`position` counts
    /// from 1).
    Empty {
        /// Which URL of the list.
        position: usize,
    },
    /// Not a URL the Redis client can use.
    Url {
        /// Which URL of the list.
        position: usize,
        /// What the client said of it.
        error: redis::RedisError,
    },
    /// A Unix socket in a list: cluster nodes are reached over TCP.
    NotTcp {
        /// Which URL of the list.
        position: usize,
    },
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedError::Empty { position } => write!(f, "Redis URL {position} of the list is empty"),
            SeedError::Url { position, error } => {
                write!(f, "Redis URL {position} is not usable: {error}")
            }
            SeedError::NotTcp { position } => write!(
                f,
                "Redis URL {position} is a Unix socket: a list of seed nodes takes redis:// URLs"
            ),
        }
    }
}

impl std::error::Error for SeedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SeedError::Url { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Seeds {
    /// `URL[,URL...]`, spaces around each URL ignored.
    pub fn parse(list: &str) -> Result<Seeds, SeedError> {
        let parts: Vec<&str> = list.split(',').map(str::trim).collect();
        let several = parts.len() > 1;
        let mut nodes = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            let position = i + 1;
            if part.is_empty() {
                return Err(SeedError::Empty { position });
            }
            let info = part
                .into_connection_info()
                .map_err(|error| SeedError::Url { position, error })?;
            if several && !matches!(info.addr(), ConnectionAddr::Tcp(..)) {
                return Err(SeedError::NotTcp { position });
            }
            nodes.push(info);
        }
        Ok(Seeds {
            nodes,
            learned: Arc::default(),
        })
    }

    /// How many seeds there are (at least one).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: a list has at least one seed.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes to try, in turn: each seed, then each master last learned that is not one.
    pub(crate) fn nodes(&self) -> Vec<ConnectionInfo> {
        let learned = self
            .learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut nodes = self.nodes.clone();
        for (host, port) in learned {
            let address = ConnectionAddr::Tcp(host.clone(), port);
            if !nodes.iter().any(|n| n.addr() == &address) {
                nodes.push(self.node(&host, port));
            }
        }
        nodes
    }

    /// The cluster's masters, as a slot map just read names them.
    pub(crate) fn learn(&self, masters: impl IntoIterator<Item = (String, u16)>) {
        *self.learned.lock().unwrap_or_else(|p| p.into_inner()) = masters.into_iter().collect();
    }

    /// The settings of the first seed (user, password, protocol) for another node, at
    /// `host:port`.
    pub(crate) fn node(&self, host: &str, port: u16) -> ConnectionInfo {
        self.nodes[0]
            .clone()
            .set_addr(ConnectionAddr::Tcp(host.to_string(), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_or_a_list_of_them() {
        assert_eq!(Seeds::parse("redis://127.0.0.1:6379").unwrap().len(), 1);
        assert_eq!(Seeds::parse("unix:///run/redis.sock").unwrap().len(), 1);
        let seeds = Seeds::parse("redis://:pw@10.0.0.1:7001,redis://:pw@10.0.0.2:7002").unwrap();
        assert_eq!(seeds.len(), 2);
        let other = seeds.node("10.0.0.3", 7003);
        assert_eq!(other.addr(), &ConnectionAddr::Tcp("10.0.0.3".into(), 7003));
        assert_eq!(other.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn masters_learned_are_tried_after_the_seeds_and_by_every_copy() {
        let seeds = Seeds::parse("redis://:pw@10.0.0.1:7001").unwrap();
        let copy = seeds.clone();
        copy.learn([
            ("10.0.0.1".to_string(), 7001),
            ("10.0.0.2".to_string(), 7002),
        ]);
        let nodes = seeds.nodes();
        let addresses: Vec<&ConnectionAddr> = nodes.iter().map(|n| n.addr()).collect();
        assert_eq!(
            addresses,
            [
                &ConnectionAddr::Tcp("10.0.0.1".into(), 7001),
                &ConnectionAddr::Tcp("10.0.0.2".into(), 7002)
            ]
        );
        assert_eq!(nodes[1].redis_settings().password(), Some("pw"));
    }

    #[test]
    fn a_bad_list_says_which_url_without_repeating_it() {
        let error = Seeds::parse("redis://a:1,http://user:secret@b:2").unwrap_err();
        assert!(
            matches!(error, SeedError::Url { position: 2, .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("secret"));
        for (list, position) in [(",redis://a:1", 1), ("redis://a:1,", 2), ("", 1)] {
            match Seeds::parse(list) {
                Err(SeedError::Empty { position: p }) => assert_eq!(p, position, "{list:?}"),
                other => panic!("{list:?}: {other:?}"),
            }
        }
        let error = Seeds::parse("redis://a:1,unix:///tmp/s").unwrap_err();
        assert!(
            matches!(error, SeedError::NotTcp { position: 2 }),
            "{error}"
        );
    }
}
