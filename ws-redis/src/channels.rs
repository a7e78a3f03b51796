//! The subscriber's connections for rooms' channels: one pub/sub connection to a single Redis
//! (`SUBSCRIBE`), or one sharded pub/sub connection per master of a cluster (`SSUBSCRIBE`,
//! [`crate::sharded`]), behind one interface that subscribes a channel, waits for the
//! confirmation, and gives the next message.

use crate::link::{self, Found};
use crate::seeds::Seeds;
use crate::sharded::Shards;
use redis::{Connection, Msg, PubSub, RedisResult};
use std::time::Duration;

/// What the subscriber connected to.
pub(crate) enum Listener {
    Single(Connection),
    Sharded(Shards),
}

impl Listener {
    /// Connects through the first seed that answers.
    pub(crate) fn connect(seeds: &Seeds, timeout: Duration) -> RedisResult<Listener> {
        Ok(match link::find(seeds, timeout)? {
            Found::Single(con) => {
                con.set_read_timeout(None)?;
                Listener::Single(con)
            }
            Found::Cluster(map) => Listener::Sharded(Shards::connect(seeds, map, timeout)?),
        })
    }

    /// Its channels, writes bounded by `write_timeout`.
    pub(crate) fn channels(&mut self, write_timeout: Duration) -> RedisResult<Channels<'_>> {
        Ok(match self {
            Listener::Single(con) => {
                con.set_write_timeout(Some(write_timeout))?;
                Channels::Single(con.as_pubsub())
            }
            Listener::Sharded(shards) => Channels::Sharded(shards),
        })
    }
}

/// Subscriptions to rooms' channels.
pub(crate) enum Channels<'a> {
    Single(PubSub<'a>),
    Sharded(&'a mut Shards),
}

impl Channels<'_> {
    /// How long a wait for a message or a confirmation may take.
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Channels::Single(pubsub) => pubsub.set_read_timeout(timeout),
            Channels::Sharded(shards) => {
                shards.set_read_timeout(timeout);
                Ok(())
            }
        }
    }

    /// Subscribes `channel`, once Redis confirmed it.
    pub(crate) fn subscribe(&mut self, channel: Vec<u8>) -> RedisResult<()> {
        match self {
            Channels::Single(pubsub) => pubsub.subscribe(channel),
            Channels::Sharded(shards) => shards.subscribe(&channel),
        }
    }

    /// Unsubscribes `channel`, once Redis confirmed it.
    pub(crate) fn unsubscribe(&mut self, channel: Vec<u8>) -> RedisResult<()> {
        match self {
            Channels::Single(pubsub) => pubsub.unsubscribe(channel),
            Channels::Sharded(shards) => shards.unsubscribe(&channel),
        }
    }

    /// The next message (a timeout error when none came in time).
    pub(crate) fn get_message(&mut self) -> RedisResult<Msg> {
        match self {
            Channels::Single(pubsub) => pubsub.get_message(),
            Channels::Sharded(shards) => shards.get_message(),
        }
    }
}
