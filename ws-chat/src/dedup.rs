//! Retries do not post twice: a `send` or `direct` carrying a client id is taken once per user
//! within [`WINDOW`]. A retry of one already taken (a client that sends again after a
//! reconnect, not knowing whether its message got through) is answered with the first one's
//! ack and delivered to nobody. The record outlives the user's connections, so the retry may
//! come on a new one, to any worker.
//!
//! Bounded: at most [`IDS_PER_USER`] ids a user (the oldest go first), and at most
//! [`USERS_PER_SHARD`] users a shard; a full shard drops the users whose ids have all expired,
//! else the one heard from longest ago.

use crate::Sharded;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How long a client id is remembered.
pub(crate) const WINDOW: Duration = Duration::from_secs(120);
/// Client ids remembered per user.
pub(crate) const IDS_PER_USER: usize = 64;
/// Users remembered per shard (64 shards).
pub(crate) const USERS_PER_SHARD: usize = 1024;

/// A message taken: the server's id for it and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) msg_id: u64,
    pub(crate) ts: u64,
}

/// Whether a client id is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// First seen: deliver the message.
    New(Taken),
    /// Taken before, within the window: acknowledge it again, deliver nothing.
    Retry(Taken),
}

#[derive(Debug)]
struct Remembered {
    id: Box<str>,
    taken: Taken,
    at: Duration,
}

#[derive(Debug, Default)]
struct Shard {
    users: HashMap<Arc<str>, VecDeque<Remembered>>,
}

/// Every user's recent client ids.
#[derive(Debug)]
pub(crate) struct RecentIds {
    shards: Sharded<Shard>,
}

impl RecentIds {
    pub(crate) fn new(shards: usize) -> RecentIds {
        RecentIds {
            shards: Sharded::new(shards),
        }
    }

    /// Claims `id` for `user` at `now`: new (then `take` numbers the message, under the lock,
    /// so two retries racing on two workers cannot both be new), or a retry of one taken.
    pub(crate) fn claim(
        &self,
        user: &str,
        id: &str,
        now: Duration,
        take: impl FnOnce() -> Taken,
    ) -> Claim {
        let mut shard = self.shards.lock(user);
        let live = |r: &Remembered| now.saturating_sub(r.at) < WINDOW;
        if let Some(ids) = shard.users.get_mut(user) {
            ids.retain(live);
            if let Some(seen) = ids.iter().find(|r| &*r.id == id) {
                return Claim::Retry(seen.taken);
            }
        } else if shard.users.len() >= USERS_PER_SHARD {
            shard.users.retain(|_, ids| ids.iter().any(live));
            if shard.users.len() >= USERS_PER_SHARD {
                let stalest = shard
                    .users
                    .iter()
                    .min_by_key(|(_, ids)| ids.back().map(|r| r.at))
                    .map(|(user, _)| user.clone());
                if let Some(stalest) = stalest {
                    shard.users.remove(&stalest);
                }
            }
        }
        let taken = take();
        let ids = match shard.users.get_mut(user) {
            Some(ids) => ids,
            None => shard.users.entry(Arc::from(user)).or_default(),
        };
        if ids.len() >= IDS_PER_USER {
            ids.pop_front();
        }
        ids.push_back(Remembered {
            id: id.into(),
            taken,
            at: now,
        });
        Claim::New(taken)
    }

    /// Users remembered now (for tests of the bound).
    #[cfg(test)]
    fn users(&self) -> usize {
        self.shards.iter().map(|shard| shard.users.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(n: u64) -> impl FnOnce() -> Taken {
        move || Taken { msg_id: n, ts: n }
    }

    #[test]
    fn an_id_is_new_once_per_user_within_the_window_then_new_again() {
        let recent = RecentIds::new(4);
        let (ann, bob): (Arc<str>, Arc<str>) = ("ann".into(), "bob".into());
        let t0 = Duration::ZERO;
        assert_eq!(
            recent.claim(&ann, "x", t0, taken(1)),
            Claim::New(taken(1)())
        );
        assert_eq!(
            recent.claim(&ann, "x", t0, taken(2)),
            Claim::Retry(taken(1)())
        );
        // Another user's "x" is their own.
        assert_eq!(
            recent.claim(&bob, "x", t0, taken(3)),
            Claim::New(taken(3)())
        );
        let almost = WINDOW - Duration::from_millis(1);
        assert_eq!(
            recent.claim(&ann, "x", almost, taken(4)),
            Claim::Retry(taken(1)())
        );
        assert_eq!(
            recent.claim(&ann, "x", WINDOW, taken(5)),
            Claim::New(taken(5)())
        );
    }

    #[test]
    fn a_user_keeps_its_latest_ids_and_a_shard_its_cap_of_users() {
        let recent = RecentIds::new(1);
        let ann: Arc<str> = "ann".into();
        let t0 = Duration::ZERO;
        for n in 0..=IDS_PER_USER as u64 {
            recent.claim(&ann, &n.to_string(), t0, taken(n));
        }
        // The first id was dropped for the latest; the second is still known.
        assert_eq!(
            recent.claim(&ann, "0", t0, taken(99)),
            Claim::New(taken(99)())
        );
        assert_eq!(
            recent.claim(&ann, "2", t0, taken(98)),
            Claim::Retry(taken(2)())
        );
        // More users than a shard holds: the one heard from longest ago goes.
        for n in 0..USERS_PER_SHARD + 10 {
            let user: Arc<str> = format!("u{n}").into();
            recent.claim(&user, "x", Duration::from_millis(n as u64 + 1), taken(1));
        }
        assert_eq!(recent.users(), USERS_PER_SHARD);
        assert_eq!(
            recent.claim(&ann, "2", t0, taken(97)),
            Claim::New(taken(97)())
        );
    }
}
