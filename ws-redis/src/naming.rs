//! Where a room lives in Redis. Every name of a room carries the room in a hash tag,
//! `PREFIX:{ROOM}:...`, so that under Redis Cluster the room's meta hash, its stream and
//! its channel hash to one slot: the publish script can touch them together, and the channel
//! works with sharded pub/sub (SSUBSCRIBE/SPUBLISH) unchanged.
//!
//! | name | type | holds |
//! | --- | --- | --- |
//! | `PREFIX:{ROOM}:meta` | hash | the room's `epoch`, and its last `offset` |
//! | `PREFIX:{ROOM}:log` | stream | the room's recent messages, each an envelope, by offset |
//! | `PREFIX:{ROOM}:once:KEY` | string | a once-only message's key, for two minutes |
//! | `PREFIX:{ROOM}:reads` | hash | each user's read mark: the offset up to which it read |
//! | `PREFIX:{ROOM}:conns` | hash | for a user's room: the user's connections per instance |
//! | `PREFIX:{ROOM}:who` | hash | who is in the room: a field `INSTANCE|USER` per user and instance |
//! | `PREFIX:instances` | sorted set | the live instances, scored by when their lease ends (ms) |
//! | `PREFIX:instance:ID:rooms` | set | the rooms where instance `ID` has users present |
//! | `PREFIX:stats` | hash | each live instance's `CONNECTIONS ROOMS`, written with its lease |
//! | `PREFIX:{ROOM}:msg` | channel | each message as it is published, an envelope |
//!
//! Redis takes the tag from the first `{` to the first `}` after it, and hashes the whole name
//! when that tag is empty. So the room is written with `{`, `}` and `%` escaped as `%7B`, `%7D`
//! and `%25`, and the empty room as a lone `%`: the tag is then exactly the written room, never
//! empty, and every name of one room shares its slot. Other names (`lobby`) read as they are.

/// The names for one prefix.
///
/// ```
/// use ws_redis::naming::Names;
/// let names = Names::new("ws");
/// assert_eq!(names.channel("lobby"), b"ws:{lobby}:msg");
/// assert_eq!(names.room_of(b"ws:{lobby}:msg").as_deref(), Some("lobby"));
/// assert_eq!(names.channel("{a}"), b"ws:{%7Ba%7D}:msg");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `PREFIX:{`.
    head: Vec<u8>,
}

const CHANNEL: &[u8] = b"}:msg";
const META: &[u8] = b"}:meta";
const LOG: &[u8] = b"}:log";
const WHO: &[u8] = b"}:who";

impl Names {
    /// Names under `prefix` (several applications, or several clusters of instances, can
    /// share one Redis with different prefixes).
    pub fn new(prefix: &str) -> Names {
        let mut head = prefix.as_bytes().to_vec();
        head.extend_from_slice(b":{");
        Names { head }
    }

    fn name(&self, room: &str, tail: &[u8]) -> Vec<u8> {
        let mut name = Vec::with_capacity(self.head.len() + room.len() + tail.len() + 1);
        name.extend_from_slice(&self.head);
        if room.is_empty() {
            name.push(b'%');
        }
        for &b in room.as_bytes() {
            match b {
                b'{' => name.extend_from_slice(b"%7B"),
                b'}' => name.extend_from_slice(b"%7D"),
                b'%' => name.extend_from_slice(b"%25"),
                _ => name.push(b),
            }
        }
        name.extend_from_slice(tail);
        name
    }

    /// The room's pub/sub channel.
    pub fn channel(&self, room: &str) -> Vec<u8> {
        self.name(room, CHANNEL)
    }

    /// The key of the room's meta hash: its epoch and last offset.
    pub fn meta_key(&self, room: &str) -> Vec<u8> {
        self.name(room, META)
    }

    /// The key of the room's stream of recent messages.
    pub fn log_key(&self, room: &str) -> Vec<u8> {
        self.name(room, LOG)
    }

    /// The key that remembers a once-only message of the room by its `key`.
    pub fn once_key(&self, room: &str, key: &str) -> Vec<u8> {
        let mut name = self.name(room, b"}:once:");
        name.extend_from_slice(key.as_bytes());
        name
    }

    /// The key of the room's read marks.
    pub fn reads_key(&self, room: &str) -> Vec<u8> {
        self.name(room, b"}:reads")
    }

    /// The key of a user's room's connection counts, by instance.
    pub fn conns_key(&self, room: &str) -> Vec<u8> {
        self.name(room, b"}:conns")
    }

    /// The key of the room's presence hash.
    pub fn who_key(&self, room: &str) -> Vec<u8> {
        self.name(room, WHO)
    }

    /// The key of the sorted set of live instances.
    pub fn instances_key(&self) -> Vec<u8> {
        let mut key = self.prefix().to_vec();
        key.extend_from_slice(b":instances");
        key
    }

    /// The key of the hash of instances' counts.
    pub fn stats_key(&self) -> Vec<u8> {
        let mut key = self.prefix().to_vec();
        key.extend_from_slice(b":stats");
        key
    }

    /// The key of the set of rooms where `instance` has users present.
    pub fn instance_rooms_key(&self, instance: &str) -> Vec<u8> {
        let mut key = self.prefix().to_vec();
        key.extend_from_slice(b":instance:");
        key.extend_from_slice(instance.as_bytes());
        key.extend_from_slice(b":rooms");
        key
    }

    /// The prefix, without the `:{` that starts a room's names.
    fn prefix(&self) -> &[u8] {
        &self.head[..self.head.len() - 2]
    }

    /// The room a channel is for, if it is one of these names (and the room is UTF-8).
    pub fn room_of(&self, channel: &[u8]) -> Option<String> {
        let written = channel
            .strip_prefix(self.head.as_slice())?
            .strip_suffix(CHANNEL)?;
        if written == b"%" {
            return Some(String::new());
        }
        let mut room = Vec::with_capacity(written.len());
        let mut rest = written;
        while let Some((&b, after)) = rest.split_first() {
            rest = after;
            match b {
                b'%' => {
                    let (code, after) = (rest.get(..2)?, &rest[2..]);
                    rest = after;
                    room.push(match code {
                        b"7B" => b'{',
                        b"7D" => b'}',
                        b"25" => b'%',
                        _ => return None,
                    });
                }
                // Written escaped, so never there as they are.
                b'{' | b'}' => return None,
                _ => room.push(b),
            }
        }
        String::from_utf8(room).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot rule of Redis Cluster: the hash tag if there is a non-empty one, else the name.
    fn hashed_part(name: &[u8]) -> &[u8] {
        if let Some(open) = name.iter().position(|&b| b == b'{') {
            if let Some(len) = name[open + 1..].iter().position(|&b| b == b'}') {
                if len > 0 {
                    return &name[open + 1..open + 1 + len];
                }
            }
        }
        name
    }

    #[test]
    fn a_rooms_names_share_a_hash_tag_whatever_the_room_holds() {
        let names = Names::new("ws");
        let rooms = [
            "lobby",
            "a}b",
            "{x}",
            "}",
            "{",
            "a{b}c",
            "ünï 💬",
            " ",
            "",
            "%",
            "%7B",
            "100%",
        ];
        for room in rooms {
            let channel = names.channel(room);
            let tag = hashed_part(&channel);
            assert!(tag.len() < channel.len(), "{room:?} has a tag");
            assert_eq!(hashed_part(&names.meta_key(room)), tag, "{room:?}");
            assert_eq!(hashed_part(&names.log_key(room)), tag, "{room:?}");
            assert_eq!(names.room_of(&channel).as_deref(), Some(room), "{room:?}");
        }
        // Distinct rooms, distinct channels.
        let channels: std::collections::HashSet<Vec<u8>> =
            rooms.iter().map(|r| names.channel(r)).collect();
        assert_eq!(channels.len(), rooms.len());
        assert_eq!(hashed_part(&names.channel("lobby")), b"lobby");
    }

    #[test]
    fn other_channels_are_no_room() {
        let names = Names::new("ws");
        assert_eq!(names.room_of(b"other:{lobby}:msg"), None);
        assert_eq!(names.room_of(b"ws:{lobby}:log"), None);
        assert_eq!(names.room_of(b"ws:{"), None);
        assert_eq!(names.room_of(b"ws:{\xff}:msg"), None, "not UTF-8");
        for bad in [
            &b"ws:{%7}:msg"[..],
            b"ws:{%}:msg%",
            b"ws:{a%}:msg",
            b"ws:{a{}:msg",
            b"ws:{%41}:msg",
        ] {
            assert_eq!(names.room_of(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Names::new("app").room_of(b"ws:{lobby}:msg"), None);
    }
}
