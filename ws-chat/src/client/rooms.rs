//! Where the application stands in each room it joined: the position of the last message
//! delivered to it. A new connection joins every room again from there; each message and
//! `joined` answer that comes in is judged against it: delivered, dropped as one delivered
//! before, or delivered after a reported gap.
//!
//! The table is shared by the connection hook (which reads it) and the receiving side
//! (which moves it on): one mutex, held for a lookup and never across an await, over at
//! most `max` rooms.

use super::error::ChatError;
use crate::protocol::ClientMessage;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use ws_mio_server::history::Position;

/// Why a room's record may miss messages the server will not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Coming back, the history no longer reached back to the last message delivered (it
    /// was trimmed, expired, or lost and started again in a new epoch): `joined` with
    /// `recovered: false` and a position.
    Lost,
    /// Coming back, the history could not be read (its store was out of reach): `joined`
    /// with `recovered: false` and no position.
    Unavailable,
    /// While connected, a message came in another epoch: the room's numbering started again.
    NewEpoch,
    /// A message's offset jumped past the next one in the same epoch.
    Skipped,
}

/// Messages of a room the application may never see: reported once, when it is found, and
/// never silently. [`crate::client::ChatClient::history`] shows what the room still keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The room.
    pub room: String,
    /// Why.
    pub reason: GapReason,
    /// The last message delivered before the gap, if any was.
    pub last: Option<Position>,
    /// Where the room's record goes on from (the message after the gap, or the position a
    /// `joined` answer gave); `None` when the server could not tell.
    pub now: Option<Position>,
}

/// What to do with a room message that came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: deliver it.
    Deliver,
    /// New, after messages that will not come: report the gap, then deliver it.
    DeliverAfterGap(Gap),
    /// At or before the last delivered in the same epoch: a replay already seen; drop it.
    Duplicate,
    /// For a room the application is not in (left, or never joined): drop it.
    NotJoined,
}

/// What a `joined` answer means for the room's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinedVerdict {
    /// A first entry (no position asked about): the room's position now, from which
    /// messages come live.
    Entered(Option<Position>),
    /// Back with a position, and every message missed follows.
    Recovered,
    /// Back with a position, and some of what was missed will not come.
    Gap(Gap),
    /// For a room the application is not in.
    NotJoined,
}

/// The rooms joined and the last position delivered in each.
#[derive(Debug)]
pub(crate) struct Rooms {
    max: usize,
    table: Mutex<HashMap<String, Option<Position>>>,
}

impl Rooms {
    /// A table of at most `max` rooms (at least one).
    pub(crate) fn new(max: usize) -> Rooms {
        Rooms {
            max: max.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Option<Position>>> {
        // Nothing here panics while holding the lock; a poisoned table's data is intact.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a room, with no position yet: true if it is new, false if it was there.
    pub(crate) fn add(&self, room: &str) -> Result<bool, ChatError> {
        let mut table = self.lock();
        if table.contains_key(room) {
            return Ok(false);
        }
        if table.len() >= self.max {
            return Err(ChatError::TooManyRooms { max: self.max });
        }
        table.insert(room.to_string(), None);
        Ok(true)
    }

    /// Removes a room: whether it was there.
    pub(crate) fn remove(&self, room: &str) -> bool {
        self.lock().remove(room).is_some()
    }

    /// Whether the application is in the room.
    pub(crate) fn contains(&self, room: &str) -> bool {
        self.lock().contains_key(room)
    }

    /// The position of the last message delivered in the room.
    pub(crate) fn position(&self, room: &str) -> Option<Position> {
        self.lock().get(room).cloned().flatten()
    }

    /// The rooms, in no particular order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// A `join` for every room, from its last delivered position when it has one: what a new
    /// connection sends first.
    pub(crate) fn joins(&self) -> Vec<String> {
        let table = self.lock();
        let join = |(room, at): (&String, &Option<Position>)| ClientMessage::Join {
            room: room.clone(),
            epoch: at.as_ref().map(|p| p.epoch.as_str().to_string()),
            offset: at.as_ref().map(|p| p.offset),
        };
        let joins: Vec<ClientMessage> = table.iter().map(join).collect();
        drop(table);
        joins.iter().map(to_json).collect()
    }

    /// Judges a room message at `at` (`None`: sent without a position, while the history is
    /// out of reach) and, if it is delivered, moves the room's record to it.
    pub(crate) fn on_message(&self, room: &str, at: Option<&Position>) -> Verdict {
        let mut table = self.lock();
        let Some(last) = table.get_mut(room) else {
            return Verdict::NotJoined;
        };
        // Without a position there is nothing to compare: delivered, the record kept.
        let Some(at) = at else {
            return Verdict::Deliver;
        };
        let verdict = match last.as_ref() {
            None => Verdict::Deliver,
            Some(l) if l.epoch == at.epoch && at.offset <= l.offset => return Verdict::Duplicate,
            Some(l) if l.epoch == at.epoch && l.offset.checked_add(1) == Some(at.offset) => {
                Verdict::Deliver
            }
            Some(l) => Verdict::DeliverAfterGap(Gap {
                room: room.to_string(),
                reason: if l.epoch == at.epoch {
                    GapReason::Skipped
                } else {
                    GapReason::NewEpoch
                },
                last: Some(l.clone()),
                now: Some(at.clone()),
            }),
        };
        *last = Some(at.clone());
        verdict
    }

    /// Judges a `joined` answer: `now` is the room's position it gave, `recovered` its answer
    /// to a join with a position (`None` for a join without one).
    pub(crate) fn on_joined(
        &self,
        room: &str,
        now: Option<Position>,
        recovered: Option<bool>,
    ) -> JoinedVerdict {
        let mut table = self.lock();
        let Some(last) = table.get_mut(room) else {
            return JoinedVerdict::NotJoined;
        };
        match recovered {
            // A first entry: later messages come live. A position already there (a message
            // that came first) is kept, so nothing between is taken for a gap's end.
            None => {
                if last.is_none() {
                    *last = now.clone();
                }
                JoinedVerdict::Entered(now)
            }
            // The missed messages follow, after the last delivered (or after the position
            // asked about, when some still waited to be delivered: those come again and are
            // dropped as duplicates).
            Some(true) if same_epoch(last.as_ref(), now.as_ref()) => JoinedVerdict::Recovered,
            Some(_) => {
                let reason = match now {
                    Some(_) => GapReason::Lost,
                    None => GapReason::Unavailable,
                };
                let gap = Gap {
                    room: room.to_string(),
                    reason,
                    last: last.clone(),
                    now: now.clone(),
                };
                // Go on from where the room is now; with no position, from the next message
                // that has one.
                *last = now;
                JoinedVerdict::Gap(gap)
            }
        }
    }
}

fn same_epoch(a: Option<&Position>, b: Option<&Position>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.epoch == b.epoch)
}

/// A client message's JSON text (its fields are strings and numbers: it always serializes).
pub(crate) fn to_json(message: &ClientMessage) -> String {
    serde_json::to_string(message).unwrap_or_default()
}
