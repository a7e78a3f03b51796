//! The in-memory store of rooms' histories ([`Histories`]): sharded by room, each room's
//! numbering, recent messages, once-only keys and read marks, with lazy, bounded expiry.

use super::{
    Epoch, HistoryLimits, Outcome, Page, Position, Want, MAX_MARKS, ONCE_WINDOW, RECENT_KEYS, SWEEP,
};
use indexmap::IndexMap;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use ws_proto::Message;

/// Shards of the store: enough that two workers rarely want the same one.
const SHARDS: usize = 64;

/// Every room's history, in memory.
#[derive(Debug)]
pub struct Histories {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    limits: HistoryLimits,
    /// Rooms with history in all shards, within `limits.rooms`.
    rooms: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shard {
    rooms: IndexMap<Arc<str>, History>,
    /// The next room the sweep looks at.
    cursor: usize,
}

#[derive(Debug)]
struct History {
    epoch: Epoch,
    /// The offset of the last message (0 before the first).
    last: u64,
    /// The offset the history reaches back to: a client that saw this one can be sent all
    /// that followed. Below the first message kept when messages were trimmed, or when the
    /// history began in the middle of a numbering (a cache filled from live messages).
    base: u64,
    /// The messages after `base`, the newest last, with their offsets.
    messages: VecDeque<(u64, Message)>,
    /// The last message or member leaving: idle since then.
    last_active: Duration,
    /// The keys of the last messages recorded once-only, with when ([`RECENT_KEYS`] at
    /// most, none older than [`ONCE_WINDOW`]).
    recent_keys: VecDeque<(Arc<str>, Duration)>,
    /// Each user's read mark: the offset up to which it read the room ([`MAX_MARKS`] users
    /// at most).
    marks: HashMap<Arc<str>, u64>,
}

impl History {
    fn new(epoch: Epoch, base: u64, now: Duration) -> History {
        History {
            epoch,
            last: base,
            base,
            messages: VecDeque::new(),
            last_active: now,
            recent_keys: VecDeque::new(),
            marks: HashMap::new(),
        }
    }

    fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            offset: self.last,
        }
    }

    fn push(&mut self, offset: u64, message: Message, size: usize) {
        self.last = offset;
        self.messages.push_back((offset, message));
        while self.messages.len() > size {
            if let Some((dropped, _)) = self.messages.pop_front() {
                self.base = dropped;
            }
        }
        if size == 0 {
            self.base = offset;
        }
    }

    fn expired(
        &self,
        room: &str,
        now: Duration,
        expiry: Duration,
        is_empty: &dyn Fn(&str) -> bool,
    ) -> bool {
        !expiry.is_zero() && now.saturating_sub(self.last_active) >= expiry && is_empty(room)
    }

    /// The answer to `want` from what is here.
    fn page(&self, want: &Want) -> Page {
        let (outcome, after) = match want {
            Want::Position => (Outcome::Recovered, self.last),
            Want::Last(n) => {
                let kept = self.messages.len().min(*n);
                let after = self.messages.len() - kept;
                let messages = self.messages.iter().skip(after).map(|(_, m)| m.clone());
                return Page {
                    outcome: Outcome::Recovered,
                    position: Some(self.position()),
                    messages: messages.collect(),
                };
            }
            Want::Since(since) => {
                let reaches = since.epoch == self.epoch
                    && since.offset >= self.base
                    && since.offset <= self.last;
                match reaches {
                    true => (Outcome::Recovered, since.offset),
                    false => (Outcome::Lost, self.last),
                }
            }
        };
        let messages = self
            .messages
            .iter()
            .filter(|(offset, _)| *offset > after)
            .map(|(_, m)| m.clone())
            .collect();
        Page {
            outcome,
            position: Some(self.position()),
            messages,
        }
    }
}

impl Histories {
    /// An empty store within `limits`.
    pub fn new(limits: HistoryLimits) -> Histories {
        Histories::with_shards(limits, SHARDS)
    }

    pub(super) fn with_shards(limits: HistoryLimits, shards: usize) -> Histories {
        Histories {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            limits,
            rooms: AtomicUsize::new(0),
        }
    }

    /// What it may hold.
    pub fn limits(&self) -> HistoryLimits {
        self.limits
    }

    fn shard(&self, room: &str) -> MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(room) as usize % self.shards.len();
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn removed(&self, n: usize) {
        self.rooms.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reserves a room's place within the cap.
    fn reserve(&self) -> bool {
        let cap = self.limits.rooms;
        let reserve = |n: usize| (n < cap).then_some(n + 1);
        self.rooms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, reserve)
            .is_ok()
    }

    /// `room`'s history, made (empty, in a new epoch) if it has none and the cap allows;
    /// expired rooms go first, so a room used again after its expiry starts afresh.
    fn entry<'s>(
        &self,
        shard: &'s mut Shard,
        room: &str,
        now: Duration,
        is_empty: &dyn Fn(&str) -> bool,
    ) -> Option<&'s mut History> {
        let expiry = self.limits.idle_expiry;
        self.removed(shard.expire(room, now, expiry, is_empty));
        self.removed(shard.sweep(now, expiry, is_empty));
        if !shard.rooms.contains_key(room) {
            if !self.reserve() {
                return None;
            }
            let history = History::new(Epoch::fresh(), 0, now);
            shard.rooms.insert(Arc::from(room), history);
        }
        shard.rooms.get_mut(room)
    }

    /// Numbers the next message of `room` and keeps it: `deliver` is called with its
    /// position, while the room is locked (so messages are delivered in the order of their
    /// offsets), and returns the message as delivered, which is what the history keeps. A
    /// room that may keep no history (the cap on rooms) gets no position, and keeps nothing.
    /// With `once`, a message whose key is among the room's last [`RECENT_KEYS`] within
    /// [`ONCE_WINDOW`] is dropped (a retry of one recorded already).
    pub fn record(
        &self,
        (room, once): (&str, Option<&str>),
        now: Duration,
        is_empty: impl Fn(&str) -> bool,
        deliver: impl FnOnce(Option<&Position>) -> Message,
    ) {
        let mut shard = self.shard(room);
        let size = self.limits.size;
        let Some(history) = self.entry(&mut shard, room, now, &is_empty) else {
            drop(shard);
            deliver(None);
            return;
        };
        if let Some(key) = once {
            let keys = &mut history.recent_keys;
            while keys
                .front()
                .is_some_and(|(_, at)| now.saturating_sub(*at) >= ONCE_WINDOW)
            {
                keys.pop_front();
            }
            if keys.iter().any(|(k, _)| **k == *key) {
                return;
            }
            if keys.len() == RECENT_KEYS {
                keys.pop_front();
            }
            keys.push_back((Arc::from(key), now));
        }
        let position = Position {
            epoch: history.epoch.clone(),
            offset: history.last + 1,
        };
        let delivered = deliver(Some(&position));
        history.push(position.offset, delivered, size);
        history.last_active = now;
    }

    /// Keeps a message numbered elsewhere (by a broker), as delivered. It follows on from
    /// what is kept when it is the next offset of the same epoch; one already kept is
    /// ignored; after a gap, or in another epoch, the history starts again from it.
    pub fn keep(&self, room: &str, position: &Position, message: Message, now: Duration) {
        let mut shard = self.shard(room);
        let size = self.limits.size;
        if let Some(history) = shard.rooms.get_mut(room) {
            history.last_active = now;
            if history.epoch == position.epoch {
                if position.offset <= history.last {
                    return;
                }
                if position.offset == history.last + 1 {
                    return history.push(position.offset, message, size);
                }
            }
            let base = position.offset.saturating_sub(1);
            *history = History::new(position.epoch.clone(), base, now);
            return history.push(position.offset, message, size);
        }
        if !self.reserve() {
            return;
        }
        let base = position.offset.saturating_sub(1);
        let mut history = History::new(position.epoch.clone(), base, now);
        history.push(position.offset, message, size);
        shard.rooms.insert(Arc::from(room), history);
    }

    /// Whether a message at `position` is newer than what is kept of `room`: not when the
    /// room's history is in the same epoch and has that offset or a later one.
    pub fn is_new(&self, room: &str, position: &Position) -> bool {
        let shard = self.shard(room);
        match shard.rooms.get(room) {
            Some(h) => h.epoch != position.epoch || position.offset > h.last,
            None => true,
        }
    }

    /// The position of the last message kept of `room`, if it has a history here.
    pub fn last(&self, room: &str) -> Option<Position> {
        self.shard(room).rooms.get(room).map(History::position)
    }

    /// Puts what a store sent (`messages`: offsets after `base` up to `last`, in order, in
    /// `epoch`) under what is kept of `room`: messages kept already that follow `last` in the
    /// same epoch stay after them; the rest is replaced.
    pub fn fill(
        &self,
        room: &str,
        epoch: &Epoch,
        base: u64,
        last: u64,
        messages: Vec<(u64, Message)>,
        now: Duration,
    ) {
        let mut shard = self.shard(room);
        let size = self.limits.size;
        let newer: Vec<(u64, Message)> = match shard.rooms.get_mut(room) {
            Some(history) if history.epoch == *epoch && history.base <= last => history
                .messages
                .drain(..)
                .filter(|(o, _)| *o > last)
                .collect(),
            Some(_) => Vec::new(),
            None => {
                if !self.reserve() {
                    return;
                }
                Vec::new()
            }
        };
        let mut history = History::new(epoch.clone(), base, now);
        history.last = last;
        for (offset, message) in messages.into_iter().chain(newer) {
            history.push(offset, message, size);
        }
        history.last = history.last.max(last);
        shard.rooms.insert(Arc::from(room), history);
    }

    /// Answers `want` about `room`. For a join ([`Want::Since`], [`Want::Position`]) a room
    /// without history gets one (a new epoch) when the cap allows, so a first joiner learns
    /// the position to come back with; otherwise such a room's answer is [`Outcome::Lost`]
    /// with no position (so reads of rooms nobody uses take no place).
    pub fn read(
        &self,
        room: &str,
        want: Want,
        now: Duration,
        is_empty: impl Fn(&str) -> bool,
    ) -> Page {
        let mut shard = self.shard(room);
        let found = match want {
            Want::Last(_) => {
                let expiry = self.limits.idle_expiry;
                self.removed(shard.expire(room, now, expiry, &is_empty));
                self.removed(shard.sweep(now, expiry, &is_empty));
                shard.rooms.get_mut(room)
            }
            Want::Since(_) | Want::Position => self.entry(&mut shard, room, now, &is_empty),
        };
        match found {
            Some(history) => history.page(&want),
            None => Page {
                outcome: Outcome::Lost,
                position: None,
                messages: Vec::new(),
            },
        }
    }

    /// Answers `want` from what is kept, without making or expiring anything: `None` when
    /// `room` has nothing kept or what is kept does not reach back as far as asked (a cache
    /// that must ask its store).
    pub fn cached(&self, room: &str, want: &Want) -> Option<Page> {
        let shard = self.shard(room);
        let history = shard.rooms.get(room)?;
        let page = history.page(want);
        let complete = match want {
            Want::Since(_) => page.outcome == Outcome::Recovered,
            Want::Last(n) => page.messages.len() >= *n || history.base == 0,
            Want::Position => true,
        };
        complete.then_some(page)
    }

    /// `user` has read `room` up to `offset` (of the room's epoch now): kept if it is beyond
    /// the user's mark. A room without history keeps none; past [`MAX_MARKS`] users, a new
    /// user's mark is not kept.
    pub fn mark(&self, room: &str, user: &str, offset: u64) {
        let mut shard = self.shard(room);
        let Some(history) = shard.rooms.get_mut(room) else {
            return;
        };
        let offset = offset.min(history.last);
        let room_for_one = history.marks.len() < MAX_MARKS;
        match history.marks.get_mut(user) {
            Some(mark) => *mark = (*mark).max(offset),
            None if room_for_one => {
                history.marks.insert(Arc::from(user), offset);
            }
            None => {}
        }
    }

    /// `user`'s read mark in `room`, if it has one.
    pub fn mark_of(&self, room: &str, user: &str) -> Option<u64> {
        self.shard(room).rooms.get(room)?.marks.get(user).copied()
    }

    /// The last member left `room`: it is idle from now.
    pub fn emptied(&self, room: &str, now: Duration) {
        if let Some(history) = self.shard(room).rooms.get_mut(room) {
            history.last_active = now;
        }
    }

    /// Drops what is kept of `room`.
    pub fn forget(&self, room: &str) {
        if self.shard(room).rooms.swap_remove(room).is_some() {
            self.removed(1);
        }
    }

    /// Drops everything (a cache whose store may have changed while out of reach).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            self.removed(shard.rooms.len());
            shard.rooms.clear();
            shard.cursor = 0;
        }
    }

    /// The rooms each shard holds, counted one by one (for tests of the count kept).
    #[cfg(test)]
    pub(super) fn counted(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).rooms.len())
            .sum()
    }

    /// Rooms with history now (expired ones not yet looked at included).
    pub fn rooms(&self) -> usize {
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
