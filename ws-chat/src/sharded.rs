//! Tables split into shards by key, so workers handling different users and rooms do not
//! wait on one lock.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

/// A map split into shards by key, each behind its own lock.
#[derive(Debug)]
pub(crate) struct Sharded<T> {
    shards: Box<[Mutex<T>]>,
    hasher: RandomState,
}

impl<T: Default> Sharded<T> {
    pub(crate) fn new(shards: usize) -> Sharded<T> {
        Sharded {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    pub(crate) fn lock(&self, key: &str) -> MutexGuard<'_, T> {
        let i = self.hasher.hash_one(key) as usize % self.shards.len();
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Each shard in turn, locked.
    pub(crate) fn iter(&self) -> impl Iterator<Item = MutexGuard<'_, T>> {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Shards of each table: enough that two workers rarely want the same one.
pub(crate) const SHARDS: usize = 64;
