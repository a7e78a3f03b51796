//! Users' read marks in the rooms this instance has members in: loaded from the room's hash
//! when it is subscribed, kept by the marks published on its channel
//! ([`MARK_SCRIPT`]), so a user joining here learns its mark without a round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One mark, atomic in Redis: `KEYS[1]` the room's marks, `ARGV[1]` the user, `ARGV[2]` the
/// offset, `ARGV[3]` the room's channel, `ARGV[4]` the mark's envelope, `ARGV[5]` `PUBLISH`
/// or `SPUBLISH`, `ARGV[6]` the hash's lifetime in seconds (0: for ever). Kept and published
/// only when beyond the user's mark.
pub const MARK_SCRIPT: &str = r"
local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > mark then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if tonumber(ARGV[6]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[6]) end
  redis.call(ARGV[5], ARGV[3], ARGV[4])
end
return 1
";

/// One room's marks, by user.
type RoomMarks = HashMap<Arc<str>, u64>;

/// Read marks by room and user.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    rooms: Mutex<HashMap<Arc<str>, RoomMarks>>,
}

impl Marks {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, RoomMarks>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `room`'s marks as Redis holds them now.
    pub(crate) fn load(&self, room: &Arc<str>, marks: Vec<(String, u64)>) {
        let marks = marks.into_iter().map(|(u, o)| (Arc::from(u), o)).collect();
        self.lock().insert(room.clone(), marks);
    }

    /// A mark received: kept if beyond the user's, for a room followed here.
    pub(crate) fn set(&self, room: &str, user: &str, offset: u64) {
        if let Some(marks) = self.lock().get_mut(room) {
            let mark = marks.entry(Arc::from(user)).or_insert(0);
            *mark = (*mark).max(offset);
        }
    }

    pub(crate) fn get(&self, room: &str, user: &str) -> Option<u64> {
        self.lock().get(room)?.get(user).copied()
    }

    pub(crate) fn forget(&self, room: &str) {
        self.lock().remove(room);
    }
}
