//! Room history: recorded room messages numbered per room, and kept for a while, so that a
//! client that loses its connection can come back (to this instance or, through a broker that
//! records, to another) and be sent exactly what it missed.
//!
//! A recorded message ([`crate::Context::publish_recorded`]) gets a [`Position`] in its room:
//! an offset, one more than the message before it, within an [`Epoch`], which names one
//! unbroken numbering. A history that is lost (it expired, or the store that held it lost it)
//! starts a new epoch, so an offset is never taken for another message's. A client keeps the
//! position of the last message it saw in each room, and re-joins with it
//! ([`crate::Context::join_with_history`]): if the history still reaches back that far in the
//! same epoch, it is sent every message after it and then the live ones, none twice and none
//! missed ([`Outcome::Recovered`]); if not, it is told so ([`Outcome::Lost`]) with the room's
//! current position, from which it can start again.
//!
//! [`Histories`] is the in-memory store: the history of a single instance, and the cache a
//! broker that records elsewhere (Redis) keeps of the rooms this instance has members in. It
//! holds at most [`HistoryLimits::size`] messages per room in at most
//! [`HistoryLimits::rooms`] rooms, and drops a room's history once the room has had no member
//! and no message for [`HistoryLimits::idle_expiry`]. Expiry is lazy and bounded: a room asked
//! about is checked itself, and each call looks at [`SWEEP`] more rooms of its shard in turn.
//! Whether a room has members is the caller's to say, through the `is_empty` each call takes.
//!
//! ```
//! use std::time::Duration;
//! use ws_mio_server::history::{Histories, HistoryLimits, Outcome, Want};
//! use ws_proto::Message;
//!
//! let histories = Histories::new(HistoryLimits::default());
//! let now = Duration::ZERO;
//! let mut positions = Vec::new();
//! for text in ["a", "b", "c"] {
//!     histories.record(("lobby", None), now, |_| false, |position| {
//!         positions.push(position.cloned().unwrap());
//!         Message::Text(text.into())
//!     });
//! }
//! // A client that saw "a" comes back.
//! let page = histories.read("lobby", Want::Since(positions[0].clone()), now, |_| false);
//! assert_eq!(page.outcome, Outcome::Recovered);
//! assert_eq!(page.messages.len(), 2);
//! assert_eq!(page.position, Some(positions[2].clone()));
//! ```

use crate::handler::ConnId;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ws_proto::Message;

/// Rooms of a shard each call looks at, besides its own: enough that every room with history
/// is looked at again after its shard has seen as many calls as half its rooms.
pub const SWEEP: usize = 2;

/// The longest epoch accepted from a client or a store.
pub const MAX_EPOCH_LEN: usize = 32;

/// One unbroken numbering of a room's messages: letters and digits, at most
/// [`MAX_EPOCH_LEN`] of them. Opaque to clients, which only compare it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// `text` as an epoch, if it is one (1 to 32 ASCII letters and digits: safe in JSON, in a
    /// header line, in a URL).
    ///
    /// ```
    /// use ws_mio_server::history::Epoch;
    /// assert!(Epoch::parse("f3a9c2").is_some());
    /// assert!(Epoch::parse("").is_none());
    /// assert!(Epoch::parse("a b").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Epoch> {
        let valid = (1..=MAX_EPOCH_LEN).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then(|| Epoch(Arc::from(text)))
    }

    /// The epoch as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new epoch, unlike any this process made before and, with the process's random keys
    /// in it, unlike another process's.
    fn fresh() -> Epoch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let hash = KEYS.get_or_init(RandomState::new).hash_one(n);
        Epoch(Arc::from(format!("{hash:016x}")))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a recorded message sits in its room's history: the room's `offset`-th message of
/// `epoch` (the first is 1; offset 0 is the position of a history with no message yet).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// The numbering.
    pub epoch: Epoch,
    /// The message's number in it.
    pub offset: u64,
}

/// What a read of a room's history asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Every message after this position (a client coming back).
    Since(Position),
    /// The last so many messages.
    Last(usize),
    /// None: only the room's current position (a client joining for the first time).
    Position,
}

/// How far a read could answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every message asked for is in the answer.
    Recovered,
    /// The history no longer reaches back as far as asked (it was trimmed, expired or lost,
    /// or its epoch is not the one asked about): the answer has none of it, and the room's
    /// current position.
    Lost,
    /// The history could not be read now (its store is out of reach): nothing is known
    /// about what was missed.
    Unavailable,
}

/// The answer to a read: the messages asked for, oldest first, as they were delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// How far it could answer.
    pub outcome: Outcome,
    /// The room's position when it was read: that of the last message in its history (offset
    /// 0 when it has none yet); `None` when the room has no history (none may be kept, or it
    /// is out of reach).
    pub position: Option<Position>,
    /// The messages, oldest first.
    pub messages: Vec<Message>,
}

impl Page {
    /// An answer that knows nothing: the store is out of reach.
    pub fn unavailable() -> Page {
        Page {
            outcome: Outcome::Unavailable,
            position: None,
            messages: Vec::new(),
        }
    }
}

/// A read of a room's history asked for by a connection, on its way to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The room.
    pub room: Arc<str>,
    /// What is asked for.
    pub want: Want,
    /// The connection that asked.
    pub conn: ConnId,
    /// Its user, whose read mark in the room comes with the answer of a join.
    pub user: Option<Arc<str>>,
    /// Whether the connection is joining the room with it
    /// ([`crate::Context::join_with_history`]): it is sent the page's messages, then the live
    /// ones. Otherwise ([`crate::Context::read_history`]) the page goes to the handler only.
    pub join: bool,
}

/// The answer to a [`Read`], as [`crate::Handler::on_history`] gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What was asked.
    pub read: Read,
    /// The answer.
    pub page: Page,
    /// For a join by a user: the offset up to which the user has marked the room read
    /// ([`crate::Context::mark_read`]), in the room's current epoch, if it did.
    pub mark: Option<u64>,
}

/// What histories may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Messages kept per room.
    pub size: usize,
    /// Rooms with history at once; past it, a new room keeps none (its messages are delivered
    /// without a position) until another expires.
    pub rooms: usize,
    /// How long a room without members keeps its history after its last message or member;
    /// zero keeps it.
    pub idle_expiry: Duration,
}

impl Default for HistoryLimits {
    /// 100 messages per room, 10,000 rooms, an hour.
    fn default() -> HistoryLimits {
        HistoryLimits {
            size: 100,
            rooms: 10_000,
            idle_expiry: Duration::from_secs(3600),
        }
    }
}

/// Users whose read mark a room keeps.
pub const MAX_MARKS: usize = 10_000;

/// Keys of once-only messages a room remembers ([`Histories::record`]).
pub const RECENT_KEYS: usize = 256;

/// How long a once-only message's key is remembered.
pub const ONCE_WINDOW: Duration = Duration::from_secs(120);

mod store;
pub use store::Histories;

#[cfg(test)]
mod tests;
