//! Users as addresses: every connection that has a user ([`crate::OpenDecision::user`]) is a
//! member of its user's own room, hidden from the application's rooms (it counts in no room
//! limit and is not in the [`crate::rooms::RoomRegistry`]), so a message to a user
//! ([`crate::Context::send_to_user`]) or an order to disconnect one
//! ([`crate::Context::disconnect_user`], [`crate::ServerHandle::disconnect_user`]) takes the
//! same path as a room message: once to each worker, once across instances through the broker,
//! which is interested in the users connected here and in no others.

use crate::broker::Broker;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

/// The first part of a user's room: a character no room name of a client should hold.
const PREFIX: &str = "\u{0}user:";

/// Shards: enough that two workers rarely want the same one.
const SHARDS: usize = 64;

/// The room of `user`'s connections.
///
/// ```
/// assert_eq!(&*ws_mio_server::users::user_room("ann"), "\u{0}user:ann");
/// ```
pub fn user_room(user: &str) -> Arc<str> {
    Arc::from(format!("{PREFIX}{user}"))
}

/// The user whose room `room` is, if it is one.
pub fn user_of(room: &str) -> Option<&str> {
    room.strip_prefix(PREFIX)
}

/// Connections per user's room, in one shard.
type Shard = Mutex<HashMap<Arc<str>, usize>>;

/// How many connections each user has on this instance.
pub(crate) struct Users {
    shards: Box<[Shard]>,
    hasher: RandomState,
    broker: Arc<dyn Broker>,
}

impl Users {
    pub(crate) fn new(broker: Arc<dyn Broker>) -> Users {
        Users {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            broker,
        }
    }

    fn shard(&self, user: &str) -> MutexGuard<'_, HashMap<Arc<str>, usize>> {
        let i = self.hasher.hash_one(user) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection of `room`'s user opened here: the broker hears of the user's first.
    pub(crate) fn connected(&self, room: &Arc<str>) {
        let mut shard = self.shard(room);
        let count = shard.entry(room.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            // Still locked: a last disconnect cannot be told first.
            self.broker.subscribe(room);
        }
    }

    /// A connection of `room`'s user ended here: the broker hears of the user's last.
    pub(crate) fn disconnected(&self, room: &Arc<str>) {
        let mut shard = self.shard(room);
        let Some(count) = shard.get_mut(room) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            shard.remove(room);
            self.broker.unsubscribe(room);
        }
    }

    /// How many connections `user` has here.
    pub(crate) fn connections(&self, user: &str) -> usize {
        let room = user_room(user);
        self.shard(&room).get(&room).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}
