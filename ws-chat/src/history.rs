//! Each room's recent messages: at most the history size per room, in at most so many rooms
//! (past that, a new room keeps none until others expire), and dropped once the room has been
//! empty (no members) and silent for the idle expiry, so rooms used once do not pile up for as
//! long as the chat runs. Expiry is lazy and bounded: a room asked about is checked
//! itself, and each call looks at [`SWEEP`] more rooms of its shard in turn.
//!
//! Time is the server's monotonic clock ([`ws_mio_server::Context::now`]); whether a room has
//! members is the server's to say, through the `is_empty` each call is given.

use crate::protocol::RoomMessage;
use crate::Sharded;
use indexmap::IndexMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Rooms of a shard each call looks at, besides its own: enough that every room with history
/// is looked at again after its shard has seen as many calls as half its rooms.
pub(crate) const SWEEP: usize = 2;

/// What histories may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Messages kept per room.
    pub(crate) size: usize,
    /// Rooms with history at once.
    pub(crate) rooms: usize,
    /// How long an empty room keeps its history; zero keeps it.
    pub(crate) idle_expiry: Duration,
}

/// Every room's history.
#[derive(Debug)]
pub(crate) struct Histories {
    shards: Sharded<Shard>,
    limits: Limits,
    /// Rooms with history in all shards, within `limits.rooms`.
    rooms: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shard {
    rooms: IndexMap<String, History>,
    /// The next room the sweep looks at.
    cursor: usize,
}

#[derive(Debug)]
struct History {
    messages: VecDeque<RoomMessage>,
    /// The last message, or the last member leaving: idle since then.
    last_active: Duration,
}

impl Histories {
    pub(crate) fn new(shards: usize, limits: Limits) -> Histories {
        Histories {
            shards: Sharded::new(shards),
            limits,
            rooms: AtomicUsize::new(0),
        }
    }

    fn removed(&self, n: usize) {
        self.rooms.fetch_sub(n, Ordering::Relaxed);
    }

    /// Keeps `message` in its room's history (its oldest dropped past the size); a room
    /// without history keeps none while as many rooms as may have it.
    pub(crate) fn push(
        &self,
        message: RoomMessage,
        now: Duration,
        is_empty: impl Fn(&str) -> bool,
    ) {
        let Limits {
            size, idle_expiry, ..
        } = self.limits;
        if size == 0 {
            return;
        }
        let mut shard = self.shards.lock(&message.room);
        self.removed(shard.sweep(now, idle_expiry, &is_empty));
        let history = match shard.rooms.get_mut(&message.room) {
            Some(history) => history,
            None => {
                let cap = self.limits.rooms;
                let reserve = |n: usize| (n < cap).then_some(n + 1);
                if self
                    .rooms
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, reserve)
                    .is_err()
                {
                    return;
                }
                let history = History {
                    messages: VecDeque::new(),
                    last_active: now,
                };
                shard.rooms.entry(message.room.clone()).or_insert(history)
            }
        };
        history.last_active = now;
        history.messages.push_back(message);
        while history.messages.len() > size {
            history.messages.pop_front();
        }
    }

    /// The last `limit` messages of `room`, oldest first, handed to `answer`; `None` when the
    /// room has no history (never had, or it expired).
    pub(crate) fn read<R>(
        &self,
        room: &str,
        limit: usize,
        now: Duration,
        is_empty: impl Fn(&str) -> bool,
        answer: impl FnOnce(Option<Vec<&RoomMessage>>) -> R,
    ) -> R {
        let mut shard = self.shards.lock(room);
        let expiry = self.limits.idle_expiry;
        self.removed(shard.expire(room, now, expiry, &is_empty));
        self.removed(shard.sweep(now, expiry, &is_empty));
        answer(shard.rooms.get(room).map(|history| {
            let skip = history.messages.len().saturating_sub(limit);
            history.messages.iter().skip(skip).collect()
        }))
    }

    /// Someone is about to join `room`: history that expired while it was empty goes first, so
    /// a room used again after the expiry starts afresh.
    pub(crate) fn joining(&self, room: &str, now: Duration, is_empty: impl Fn(&str) -> bool) {
        let mut shard = self.shards.lock(room);
        let expiry = self.limits.idle_expiry;
        self.removed(shard.expire(room, now, expiry, &is_empty));
        self.removed(shard.sweep(now, expiry, &is_empty));
    }

    /// The last member left `room`: it is idle from now.
    pub(crate) fn emptied(&self, room: &str, now: Duration) {
        if let Some(history) = self.shards.lock(room).rooms.get_mut(room) {
            history.last_active = now;
        }
    }

    /// Rooms with history now (expired ones not yet looked at included).
    pub(crate) fn rooms(&self) -> usize {
        self.rooms.load(Ordering::Relaxed)
    }
}

impl Shard {
    /// Drops `room`'s history if it has expired; how many rooms it dropped.
    fn expire(
        &mut self,
        room: &str,
        now: Duration,
        expiry: Duration,
        is_empty: &dyn Fn(&str) -> bool,
    ) -> usize {
        let expired = self
            .rooms
            .get(room)
            .is_some_and(|h| h.expired(room, now, expiry, is_empty));
        if expired {
            self.rooms.swap_remove(room);
        }
        usize::from(expired)
    }

    /// Looks at the next [`SWEEP`] rooms in turn, dropping those expired; how many it dropped.
    fn sweep(&mut self, now: Duration, expiry: Duration, is_empty: &dyn Fn(&str) -> bool) -> usize {
        let mut dropped = 0;
        for _ in 0..SWEEP {
            if self.cursor >= self.rooms.len() {
                self.cursor = 0;
            }
            let Some((room, history)) = self.rooms.get_index(self.cursor) else {
                break;
            };
            if history.expired(room, now, expiry, is_empty) {
                // The last room takes its place, and is looked at next.
                self.rooms.swap_remove_index(self.cursor);
                dropped += 1;
            } else {
                self.cursor += 1;
            }
        }
        dropped
    }
}

impl History {
    fn expired(
        &self,
        room: &str,
        now: Duration,
        expiry: Duration,
        is_empty: &dyn Fn(&str) -> bool,
    ) -> bool {
        !expiry.is_zero() && now.saturating_sub(self.last_active) >= expiry && is_empty(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn message(room: &str, id: u64) -> RoomMessage {
        RoomMessage {
            id,
            room: room.into(),
            from: "a".into(),
            name: None,
            text: "t".into(),
            ts: 0,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn with_limits(shards: usize, size: usize, rooms: usize, idle_expiry: Duration) -> Histories {
        let limits = Limits {
            size,
            rooms,
            idle_expiry,
        };
        Histories::new(shards, limits)
    }

    /// The rooms each shard holds, counted one by one.
    fn counted(histories: &Histories) -> usize {
        histories.shards.iter().map(|s| s.rooms.len()).sum()
    }

    #[test]
    fn history_is_capped_per_room() {
        let histories = with_limits(1, 3, 10, HOUR);
        for id in 1..=5 {
            histories.push(message("r", id), Duration::ZERO, |_| false);
        }
        let ids = histories.read(
            "r",
            10,
            Duration::ZERO,
            |_| false,
            |m| m.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(),
        );
        assert_eq!(ids, [3, 4, 5]);
    }

    /// One shard, so that which rooms a call looks at is known.
    #[test]
    fn the_sweep_drops_expired_empty_rooms_a_bounded_few_per_call_and_keeps_the_rest() {
        let histories = with_limits(1, 10, 100, HOUR);
        for i in 0..10 {
            histories.push(message(&format!("old{i}"), i), Duration::ZERO, |_| true);
        }
        // "old0" still has members: it never expires.
        let is_empty = |room: &str| room != "old0";
        let later = HOUR + Duration::from_secs(1);
        let looked = Cell::new(0);
        let counting = |room: &str| {
            looked.set(looked.get() + 1);
            is_empty(room)
        };
        histories.push(message("new", 100), later, counting);
        assert!(
            looked.get() <= SWEEP,
            "one call looks at {} rooms",
            looked.get()
        );
        assert_eq!(histories.rooms(), 11 - SWEEP);
        assert_eq!(counted(&histories), histories.rooms());
        // Enough calls go round them all: the nine expired are gone, the other two stay.
        for id in 0..10 {
            histories.push(message("new", id), later, is_empty);
        }
        assert_eq!(histories.rooms(), 2);
        assert_eq!(counted(&histories), 2);
    }

    #[test]
    fn past_the_cap_on_rooms_a_new_room_keeps_no_history_until_another_expires() {
        let histories = with_limits(8, 10, 3, HOUR);
        for room in ["a", "b", "c", "d"] {
            histories.push(message(room, 1), Duration::ZERO, |_| true);
        }
        let kept = |h: &Histories, room, at| h.read(room, 10, at, |_| false, |m| m.is_some());
        assert_eq!(histories.rooms(), 3);
        assert!(!kept(&histories, "d", Duration::ZERO));
        // Rooms at the cap still take messages.
        histories.push(message("a", 2), Duration::ZERO, |_| true);
        assert_eq!(
            histories.read("a", 10, Duration::ZERO, |_| false, |m| m.unwrap().len()),
            2
        );
        // Once "b" has expired (found when asked about), "d" may keep history. Only "b" is
        // empty: the sweep of its shard (which rooms share it is random) takes no other.
        assert!(!histories.read("b", 10, HOUR, |r| r == "b", |m| m.is_some()));
        histories.push(message("d", 3), HOUR, |_| false);
        assert!(kept(&histories, "d", HOUR));
        assert_eq!(histories.rooms(), 3);
        assert_eq!(counted(&histories), 3);
    }

    #[test]
    fn a_room_asked_about_after_its_expiry_has_no_history_and_zero_keeps_it() {
        let histories = with_limits(4, 10, 10, HOUR);
        histories.push(message("r", 1), Duration::ZERO, |_| true);
        let found = |h: &Histories, at| h.read("r", 10, at, |_| true, |m| m.is_some());
        assert!(found(&histories, HOUR - Duration::from_millis(1)));
        assert!(!found(&histories, HOUR));
        assert_eq!(histories.rooms(), 0);

        let kept = with_limits(4, 10, 10, Duration::ZERO);
        kept.push(message("r", 1), Duration::ZERO, |_| true);
        assert!(found(&kept, HOUR * 1000));
    }
}
