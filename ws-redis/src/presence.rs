//! Presence across instances: who is in each room, whichever instance their connections are
//! on, and users leaving with an instance that died.
//!
//! Each instance writes its own users' presence to the room's hash (a field
//! `INSTANCE|USER` per user with a connection in the room on that instance) and publishes the
//! change on the room's channel in the same script call ([`CHANGE_SCRIPT`]), through the
//! publisher's queue. Each instance keeps a replica of the other instances' users in the
//! rooms it has members in: loaded from the hash when it subscribes a room, then kept by the
//! changes it receives. So `who` and the join/leave announcements cover every instance without
//! a round trip.
//!
//! An instance that dies (SIGKILL, a lost machine) cannot take its users out. Each instance
//! holds a lease: its entry in the sorted set of instances, scored by when the lease ends, and
//! renewed every third of the lease interval ([`RedisConfig::lease`](crate::RedisConfig));
//! every instance looks for entries whose lease has ended at the same pace ([`LEASE_SCRIPT`]),
//! and the first to take such an entry out (`ZREM` answers 1 to one of them) removes the dead
//! instance's fields from the rooms it had users in, publishes their changes, and announces
//! each user that is now gone from a room (the handler's
//! [`ws_mio_server::Handler::render_presence`]), in the dead instance's name, so every instance
//! delivers it. A dead instance's users are gone from presence within one lease interval and a
//! third after its last renewal, plus a round trip.

use crate::envelope::InstanceId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// One presence change, atomic in Redis: `KEYS[1]` the room's presence hash, `ARGV[1]` the
/// field (`INSTANCE|USER`), `ARGV[2]` `1` (present) or `0`, `ARGV[3]` the room's channel,
/// `ARGV[4]` the change's envelope, `ARGV[5]` `PUBLISH` or `SPUBLISH`.
pub const CHANGE_SCRIPT: &str = r"
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], '1')
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call(ARGV[5], ARGV[3], ARGV[4])
return 1
";

/// An instance's lease renewed and the ended ones found, on Redis's clock: `KEYS[1]` the
/// sorted set of instances, `ARGV[1]` this instance, `ARGV[2]` the lease in milliseconds.
/// Returns the instances whose lease has ended.
pub const LEASE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
";

/// The field of `user` on `instance` in a room's presence hash.
pub fn field(instance: InstanceId, user: &str) -> String {
    format!("{instance}|{user}")
}

/// A field's instance and user, if it is one.
pub fn parse_field(field: &str) -> Option<(InstanceId, &str)> {
    let (instance, user) = field.split_once('|')?;
    let id = (instance.len() == 16)
        .then(|| u64::from_str_radix(instance, 16).ok())
        .flatten()?;
    Some((InstanceId(id), user))
}

/// Each other instance's users present in one room.
type RoomPresence = HashMap<InstanceId, HashSet<Arc<str>>>;

/// The users of the other instances in the rooms this one has members in.
#[derive(Debug)]
pub(crate) struct Replica {
    own: InstanceId,
    rooms: Mutex<HashMap<Arc<str>, RoomPresence>>,
}

impl Replica {
    pub(crate) fn new(own: InstanceId) -> Replica {
        Replica {
            own,
            rooms: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, RoomPresence>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `room`'s presence as Redis holds it now (its hash's fields), replacing what was known.
    pub(crate) fn load(&self, room: &Arc<str>, fields: &[String]) {
        let mut by_instance = RoomPresence::new();
        for (instance, user) in fields.iter().filter_map(|f| parse_field(f)) {
            if instance != self.own {
                by_instance
                    .entry(instance)
                    .or_default()
                    .insert(Arc::from(user));
            }
        }
        self.lock().insert(room.clone(), by_instance);
    }

    /// A change received: `user` present on `instance` in `room`, or no longer. Ignored for
    /// a room not followed here.
    pub(crate) fn change(&self, room: &str, instance: InstanceId, user: &str, present: bool) {
        if instance == self.own {
            return;
        }
        let mut rooms = self.lock();
        let Some(instances) = rooms.get_mut(room) else {
            return;
        };
        if present {
            instances
                .entry(instance)
                .or_default()
                .insert(Arc::from(user));
        } else if let Some(users) = instances.get_mut(&instance) {
            users.remove(user);
            if users.is_empty() {
                instances.remove(&instance);
            }
        }
    }

    /// No longer followed (no member here).
    pub(crate) fn forget(&self, room: &str) {
        self.lock().remove(room);
    }

    /// The users of `room` on other instances, each once.
    pub(crate) fn users(&self, room: &str) -> Vec<Arc<str>> {
        let rooms = self.lock();
        let Some(instances) = rooms.get(room) else {
            return Vec::new();
        };
        let all: HashSet<&Arc<str>> = instances.values().flatten().collect();
        all.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_follows_other_instances_users_not_its_own() {
        let (me, other, third) = (InstanceId(1), InstanceId(2), InstanceId(3));
        let replica = Replica::new(me);
        let room: Arc<str> = Arc::from("r");
        replica.change("r", other, "ann", true);
        assert!(replica.users("r").is_empty(), "not followed yet");
        replica.load(
            &room,
            &[field(me, "me"), field(other, "ann"), "junk".into()],
        );
        assert_eq!(replica.users("r"), [Arc::from("ann")]);
        replica.change("r", third, "ann", true);
        replica.change("r", other, "ann", false);
        assert_eq!(replica.users("r"), [Arc::from("ann")], "still on the third");
        replica.change("r", third, "ann", false);
        replica.change("r", me, "bob", true);
        assert!(replica.users("r").is_empty());
        replica.forget("r");
        replica.change("r", other, "cy", true);
        assert!(replica.users("r").is_empty());
    }

    #[test]
    fn fields_name_an_instance_and_a_user_that_may_hold_bars() {
        let f = field(InstanceId(0xab), "a|b");
        assert_eq!(parse_field(&f), Some((InstanceId(0xab), "a|b")));
        assert_eq!(parse_field("ab|x"), None);
        assert_eq!(parse_field("nobar"), None);
    }
}
