//! Who is in which room, for the whole server: the one record an application asks (through
//! [`crate::Context`]) instead of keeping its own. Sharded by room name, so workers joining
//! different rooms do not wait on one lock; each worker keeps its own index of its local
//! members for fanout, which follows this record.
//!
//! The record also tells the [`Broker`] when a room gains its first member on this instance and
//! loses its last: the instance's interest, which decides what it receives from other
//! instances. Told while the room's shard is locked, so the broker hears of one room's changes
//! in the order they happened, whichever workers made them.

use crate::broker::{Broker, Local};
use crate::handler::{ConnId, LeftRoom};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Shards of the record: enough that two workers rarely want the same one.
const SHARDS: usize = 64;

/// The outcome of [`crate::Context::join`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// The connection is now a member; `first_of_user` when no other connection of its user
    /// was (a connection without a user is always its user's first).
    Joined {
        /// No other connection of the same user is in the room.
        first_of_user: bool,
    },
    /// It was a member already; nothing changed.
    AlreadyMember,
    /// The room does not exist and the server holds as many rooms as it may.
    TooManyRooms,
    /// The room holds as many members as a room may.
    RoomFull,
    /// The connection is in as many rooms as a connection may be.
    TooManyJoined,
}

#[derive(Debug, Default)]
struct Room {
    conns: HashSet<ConnId>,
    /// Connections in the room per named user.
    users: HashMap<Arc<str>, u32>,
}

/// One shard: some rooms by name.
type Shard = Mutex<HashMap<Arc<str>, Room>>;

/// The server's rooms and their members.
pub struct RoomRegistry {
    shards: Box<[Shard]>,
    hasher: RandomState,
    rooms: AtomicUsize,
    limits: RoomLimits,
    broker: Arc<dyn Broker>,
}

impl std::fmt::Debug for RoomRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomRegistry")
            .field("rooms", &self.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What the registry holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Rooms at once (a room exists while it has a member).
    pub rooms: usize,
    /// Members of one room.
    pub members: usize,
    /// Rooms one connection is in (its disconnect costs that many leaves).
    pub per_connection: usize,
}

impl RoomRegistry {
    /// A registry within `limits`.
    ///
    /// ```
    /// use ws_mio_server::rooms::{RoomLimits, RoomRegistry};
    /// let limits = RoomLimits { rooms: 10_000, members: 100_000, per_connection: 64 };
    /// let rooms = RoomRegistry::new(limits);
    /// assert_eq!(rooms.len(), 0);
    /// ```
    pub fn new(limits: RoomLimits) -> RoomRegistry {
        RoomRegistry::with_broker(limits, Arc::new(Local))
    }

    /// A registry within `limits` that tells `broker` when a room gets its first member and
    /// loses its last.
    pub(crate) fn with_broker(limits: RoomLimits, broker: Arc<dyn Broker>) -> RoomRegistry {
        RoomRegistry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            rooms: AtomicUsize::new(0),
            limits,
            broker,
        }
    }

    fn shard(&self, room: &str) -> MutexGuard<'_, HashMap<Arc<str>, Room>> {
        let i = self.hasher.hash_one(room) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `conn` (of `user`, in `joined` rooms already) to `room`; with the outcome, the
    /// room's shared name when the connection joined.
    pub(crate) fn join(
        &self,
        room: &str,
        conn: ConnId,
        user: Option<&Arc<str>>,
        joined: usize,
    ) -> (Join, Option<Arc<str>>) {
        let mut shard = self.shard(room);
        let created = !shard.contains_key(room);
        let (name, entry) = match shard.get_key_value(room) {
            Some((name, existing)) => {
                if existing.conns.contains(&conn) {
                    return (Join::AlreadyMember, None);
                }
                if joined >= self.limits.per_connection {
                    return (Join::TooManyJoined, None);
                }
                if existing.conns.len() >= self.limits.members {
                    return (Join::RoomFull, None);
                }
                let name = name.clone();
                let entry = shard.get_mut(room).expect("present");
                (name, entry)
            }
            None => {
                if joined >= self.limits.per_connection {
                    return (Join::TooManyJoined, None);
                }
                // Reserve the room's place first, so two workers cannot both take the last.
                if self.rooms.fetch_add(1, Ordering::Relaxed) >= self.limits.rooms {
                    self.rooms.fetch_sub(1, Ordering::Relaxed);
                    return (Join::TooManyRooms, None);
                }
                let name: Arc<str> = Arc::from(room);
                (name.clone(), shard.entry(name).or_default())
            }
        };
        entry.conns.insert(conn);
        let first_here = match user {
            Some(user) => {
                let count = entry.users.entry(user.clone()).or_insert(0);
                *count += 1;
                *count == 1
            }
            None => true,
        };
        if created {
            // The shard is still locked: a leave emptying the room cannot be told first.
            self.broker.subscribe(&name);
        }
        // First of its user in the whole cluster: here, and on no other instance.
        let first_of_user = match user {
            Some(user) if first_here => {
                self.broker.presence(&name, user, true);
                !self.broker.remote_users(&name).contains(user)
            }
            _ => first_here,
        };
        (Join::Joined { first_of_user }, Some(name))
    }

    /// Removes `conn` (of `user`) from `room`; `None` if it was not a member.
    pub(crate) fn leave(
        &self,
        room: &str,
        conn: ConnId,
        user: Option<&Arc<str>>,
    ) -> Option<LeftRoom> {
        let mut shard = self.shard(room);
        let (name, entry) = shard.get_key_value(room)?;
        let name = name.clone();
        let entry_conns = entry.conns.contains(&conn);
        if !entry_conns {
            return None;
        }
        let entry = shard.get_mut(room).expect("present");
        entry.conns.remove(&conn);
        let last_here = match user {
            Some(user) => match entry.users.get_mut(user) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                _ => {
                    entry.users.remove(user);
                    true
                }
            },
            None => true,
        };
        // Last of its user in the whole cluster: here, and on no other instance.
        let last_of_user = match user {
            Some(user) if last_here => {
                self.broker.presence(&name, user, false);
                !self.broker.remote_users(&name).contains(user)
            }
            _ => last_here,
        };
        if entry.conns.is_empty() {
            shard.remove(room);
            self.rooms.fetch_sub(1, Ordering::Relaxed);
            self.broker.unsubscribe(&name);
        }
        Some(LeftRoom {
            room: name,
            last_of_user,
        })
    }

    /// Whether `conn` is in `room`.
    pub fn contains(&self, room: &str, conn: ConnId) -> bool {
        self.shard(room)
            .get(room)
            .is_some_and(|r| r.conns.contains(&conn))
    }

    /// The named users in `room`, each once, sorted, on this instance and (as far as the
    /// broker knows) on others; `None` if the room has no member here.
    pub fn users(&self, room: &str) -> Option<Vec<Arc<str>>> {
        let shard = self.shard(room);
        let mut users: Vec<Arc<str>> = shard.get(room)?.users.keys().cloned().collect();
        drop(shard);
        users.extend(self.broker.remote_users(room));
        users.sort_unstable();
        users.dedup();
        Some(users)
    }

    /// How many connections are in `room` (0 when it does not exist), without copying them.
    pub fn member_count(&self, room: &str) -> usize {
        self.shard(room).get(room).map_or(0, |r| r.conns.len())
    }

    /// The connections in `room`.
    pub fn members(&self, room: &str) -> Vec<ConnId> {
        self.shard(room)
            .get(room)
            .map(|r| r.conns.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether the broker joins this instance to others.
    pub(crate) fn spans_instances(&self) -> bool {
        self.broker.spans_instances()
    }

    /// Rooms that exist now.
    pub fn len(&self) -> usize {
        self.rooms.load(Ordering::Relaxed)
    }

    /// Whether no room exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registry(rooms: usize, members: usize, per_connection: usize) -> RoomRegistry {
        RoomRegistry::new(RoomLimits {
            rooms,
            members,
            per_connection,
        })
    }

    fn conn(slot: u32) -> ConnId {
        ConnId {
            worker: 0,
            slot,
            generation: 1,
        }
    }

    #[test]
    fn presence_counts_users_not_connections() {
        let rooms = registry(10, 10, 10);
        let alice: Arc<str> = Arc::from("alice");
        let first = rooms.join("lobby", conn(1), Some(&alice), 0).0;
        let second = rooms.join("lobby", conn(2), Some(&alice), 0).0;
        assert_eq!(
            first,
            Join::Joined {
                first_of_user: true
            }
        );
        assert_eq!(
            second,
            Join::Joined {
                first_of_user: false
            }
        );
        assert_eq!(
            rooms.join("lobby", conn(2), Some(&alice), 0).0,
            Join::AlreadyMember
        );
        assert_eq!(rooms.users("lobby").unwrap(), vec![alice.clone()]);
        assert_eq!(rooms.member_count("lobby"), 2, "connections, not users");
        assert_eq!(rooms.member_count("elsewhere"), 0);
        assert!(
            !rooms
                .leave("lobby", conn(1), Some(&alice))
                .unwrap()
                .last_of_user
        );
        assert!(rooms.leave("lobby", conn(1), Some(&alice)).is_none());
        assert!(
            rooms
                .leave("lobby", conn(2), Some(&alice))
                .unwrap()
                .last_of_user
        );
        assert!(rooms.users("lobby").is_none(), "an empty room is gone");
        assert_eq!(rooms.member_count("lobby"), 0);
        assert!(rooms.is_empty());
    }

    #[test]
    fn the_room_cap_refuses_new_rooms_only() {
        let rooms = registry(1, 10, 10);
        assert!(matches!(
            rooms.join("a", conn(1), None, 0).0,
            Join::Joined { .. }
        ));
        assert_eq!(rooms.join("b", conn(1), None, 0).0, Join::TooManyRooms);
        assert!(matches!(
            rooms.join("a", conn(2), None, 0).0,
            Join::Joined { .. }
        ));
        rooms.leave("a", conn(1), None);
        rooms.leave("a", conn(2), None);
        assert!(matches!(
            rooms.join("b", conn(1), None, 0).0,
            Join::Joined { .. }
        ));
        assert_eq!(rooms.len(), 1);
    }

    /// A broker that checks what it hears of each room alternates: subscribe, unsubscribe,
    /// subscribe...
    #[derive(Default)]
    struct Alternation {
        subscribed: Mutex<HashMap<String, bool>>,
        heard: AtomicUsize,
        out_of_turn: AtomicUsize,
    }

    impl Alternation {
        fn hear(&self, room: &str, subscribe: bool) {
            let mut subscribed = self.subscribed.lock().unwrap();
            let was = subscribed.insert(room.to_string(), subscribe);
            if was.unwrap_or(false) == subscribe {
                self.out_of_turn.fetch_add(1, Ordering::Relaxed);
            }
            self.heard.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Broker for Alternation {
        fn subscribe(&self, room: &Arc<str>) {
            self.hear(room, true);
        }
        fn unsubscribe(&self, room: &Arc<str>) {
            self.hear(room, false);
        }
        fn publish(&self, _: &Arc<str>, _: &ws_proto::Message) {}
    }

    /// Threads joining and leaving one room at once, as workers do, so that it empties and
    /// fills again all the time: the broker hears of its first member and last in turn, and
    /// ends subscribed exactly when it has members.
    #[test]
    fn the_broker_hears_a_rooms_changes_in_order_whatever_the_threads() {
        let broker = Arc::new(Alternation::default());
        let limits = RoomLimits {
            rooms: 10,
            members: 100,
            per_connection: 4,
        };
        let rooms = Arc::new(RoomRegistry::with_broker(limits, broker.clone()));
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let rooms = rooms.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let (outcome, _) = rooms.join("r", conn(t), None, 0);
                        assert!(matches!(outcome, Join::Joined { .. }), "{outcome:?}");
                        assert!(rooms.leave("r", conn(t), None).is_some());
                    }
                    // Half of them stay.
                    if t % 2 == 0 {
                        rooms.join("r", conn(t), None, 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(broker.out_of_turn.load(Ordering::Relaxed), 0);
        assert!(broker.heard.load(Ordering::Relaxed) > 10);
        assert_eq!(broker.subscribed.lock().unwrap().get("r"), Some(&true));
        assert_eq!(rooms.member_count("r"), 4);
    }

    proptest! {
        /// Whatever the order of joins and leaves, the count of rooms matches the rooms that
        /// have members, and everyone who left is gone.
        #[test]
        fn the_record_matches_a_model(ops in proptest::collection::vec((0u32..6, 0u8..4, any::<bool>()), 1..200)) {
            // At most 3 rooms, 3 members a room, 2 rooms a connection.
            let rooms = registry(3, 3, 2);
            let mut model: HashMap<String, HashSet<u32>> = HashMap::new();
            for (c, r, join) in ops {
                let name = format!("r{r}");
                if join {
                    let joined = model.values().filter(|m| m.contains(&c)).count();
                    let (outcome, _) = rooms.join(&name, conn(c), None, joined);
                    let member = model.get(&name).is_some_and(|m| m.contains(&c));
                    match outcome {
                        Join::Joined { .. } => {
                            prop_assert!(joined < 2);
                            prop_assert!(model.get(&name).map_or(0, HashSet::len) < 3);
                            prop_assert!(model.entry(name).or_default().insert(c));
                        }
                        Join::AlreadyMember => prop_assert!(member),
                        Join::TooManyJoined => prop_assert!(!member && joined >= 2),
                        Join::RoomFull => prop_assert!(!member && model[&name].len() >= 3),
                        Join::TooManyRooms => prop_assert!(model.len() >= 3 && !model.contains_key(&name)),
                    }
                } else {
                    let left = rooms.leave(&name, conn(c), None).is_some();
                    let was = model.get_mut(&name).is_some_and(|m| m.remove(&c));
                    prop_assert_eq!(left, was);
                    if model.get(&name).is_some_and(|m| m.is_empty()) { model.remove(&name); }
                }
                prop_assert_eq!(rooms.len(), model.len());
            }
            for (name, members) in &model {
                let mut got: Vec<u32> = rooms.members(name).iter().map(|c| c.slot).collect();
                got.sort_unstable();
                let mut want: Vec<u32> = members.iter().copied().collect();
                want.sort_unstable();
                prop_assert_eq!(got, want);
            }
        }
    }
}
