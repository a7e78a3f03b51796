//! The rooms this instance wants, as the server reports them, and what changed since the
//! subscriber last looked. The server's calls only update a set under a short lock (they come
//! from workers, which must not wait on Redis); the subscriber thread takes the changes and
//! subscribes or unsubscribes. A room that changes several times in between is looked at once,
//! in its final state, so churn costs no Redis command.
//!
//! Bounds: `wanted` holds at most the rooms that exist on this instance (the server's
//! `--max-rooms`). `changed` holds at most
//! [`max_interest_changes`](crate::RedisConfig::max_interest_changes) rooms; past that it is
//! emptied and the next look compares everything instead (a resync), which is also what
//! happens after a reconnect, when Redis has forgotten every subscription.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    wanted: HashSet<Arc<str>>,
    changed: HashSet<Arc<str>>,
    /// Compare every wanted and subscribed room next time.
    resync: bool,
}

/// The instance's interest in rooms.
#[derive(Debug)]
pub(crate) struct Interest {
    state: Mutex<State>,
    /// Something changed since the last look: checked without the lock.
    pending: AtomicBool,
    max_changes: usize,
}

/// What the subscriber should do to match the interest.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) subscribe: Vec<Arc<str>>,
    pub(crate) unsubscribe: Vec<Arc<str>>,
}

impl Interest {
    pub(crate) fn new(max_changes: usize) -> Interest {
        Interest {
            state: Mutex::default(),
            pending: AtomicBool::new(false),
            max_changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether something changed since the subscriber last looked.
    pub(crate) fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Whether the room is wanted: a member here has it.
    pub(crate) fn wants(&self, room: &str) -> bool {
        self.lock().wanted.contains(room)
    }

    /// The room is wanted (`true`) or no longer (`false`).
    pub(crate) fn set(&self, room: &Arc<str>, wanted: bool) {
        let mut state = self.lock();
        if wanted {
            state.wanted.insert(room.clone());
        } else {
            state.wanted.remove(room);
        }
        if !state.resync {
            if state.changed.len() < self.max_changes {
                state.changed.insert(room.clone());
            } else {
                state.changed = HashSet::new();
                state.resync = true;
            }
        }
        self.pending.store(true, Ordering::Release);
    }

    /// Compare everything next time (Redis forgot the subscriptions).
    pub(crate) fn resync(&self) {
        let mut state = self.lock();
        state.changed = HashSet::new();
        state.resync = true;
        self.pending.store(true, Ordering::Release);
    }

    /// What to subscribe and unsubscribe, given what is subscribed now; `None` when nothing
    /// changed since the last call.
    pub(crate) fn take_changes(&self, subscribed: &HashSet<Arc<str>>) -> Option<Changes> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        let mut state = self.lock();
        let mut changes = Changes::default();
        if std::mem::take(&mut state.resync) {
            state.changed = HashSet::new();
            changes.subscribe = state.wanted.difference(subscribed).cloned().collect();
            changes.unsubscribe = subscribed.difference(&state.wanted).cloned().collect();
        } else {
            for room in std::mem::take(&mut state.changed) {
                match (state.wanted.contains(&room), subscribed.contains(&room)) {
                    (true, false) => changes.subscribe.push(room),
                    (false, true) => changes.unsubscribe.push(room),
                    _ => {}
                }
            }
        }
        Some(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    fn sorted(mut rooms: Vec<Arc<str>>) -> Vec<Arc<str>> {
        rooms.sort();
        rooms
    }

    #[test]
    fn only_the_final_state_of_each_changed_room_counts() {
        let interest = Interest::new(100);
        let mut subscribed = HashSet::new();
        assert_eq!(interest.take_changes(&subscribed), None);
        interest.set(&room("a"), true);
        interest.set(&room("b"), true);
        interest.set(&room("b"), false);
        let changes = interest.take_changes(&subscribed).unwrap();
        assert_eq!(changes.subscribe, [room("a")]);
        assert!(changes.unsubscribe.is_empty(), "b came and went");
        subscribed.insert(room("a"));
        assert_eq!(interest.take_changes(&subscribed), None);
        interest.set(&room("a"), false);
        let changes = interest.take_changes(&subscribed).unwrap();
        assert_eq!(changes.unsubscribe, [room("a")]);
    }

    #[test]
    fn past_its_bound_the_change_set_gives_way_to_a_full_comparison() {
        let interest = Interest::new(2);
        // Subscribed to x, which is no longer wanted; four rooms come, one goes.
        let subscribed: HashSet<Arc<str>> = [room("x")].into();
        for name in ["a", "b", "c", "d"] {
            interest.set(&room(name), true);
        }
        interest.set(&room("c"), false);
        let changes = interest.take_changes(&subscribed).unwrap();
        assert_eq!(
            sorted(changes.subscribe),
            ["a", "b", "d"].map(room).to_vec()
        );
        assert_eq!(changes.unsubscribe, [room("x")]);
        // Back to following changes.
        interest.set(&room("e"), true);
        let changes = interest.take_changes(&subscribed).unwrap();
        assert_eq!(changes.subscribe, [room("e")]);
    }

    #[test]
    fn a_resync_subscribes_everything_wanted_again() {
        let interest = Interest::new(10);
        interest.set(&room("a"), true);
        interest.take_changes(&HashSet::new());
        // Reconnected: Redis has nothing.
        interest.resync();
        let changes = interest.take_changes(&HashSet::new()).unwrap();
        assert_eq!(changes.subscribe, [room("a")]);
    }
}
