//! Per-user connection quotas across instances: each instance writes how many connections a
//! user has on it to the user's room's hash of counts ([`CLAIM_SCRIPT`]), and a connection
//! that makes the total pass its limit is refused (closed by its instance, a moment after it
//! opened). Counts are absolute, so a lost or repeated write corrects itself at the user's next
//! change; a dead instance's counts go with its lease ([`crate::presence`]).

use crate::link::Link;
use crate::Shared;
use redis::{RedisResult, Script};
use ws_mio_server::broker::UserClaim;
use ws_mio_server::users::user_room;

/// An instance's count of a user's connections set, and the total over instances returned:
/// `KEYS[1]` the user's hash of counts, `ARGV[1]` the instance, `ARGV[2]` its count (0
/// removes it), `ARGV[3]` the hash's lifetime in seconds (0: for ever).
pub const CLAIM_SCRIPT: &str = r"
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
local total = 0
for _, n in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(n) end
return total
";

/// Writes `counted` for `user` on this instance; the user's total over instances.
pub(crate) fn count(
    con: &mut Link,
    script: &Script,
    shared: &Shared,
    user: &str,
    counted: usize,
) -> RedisResult<u64> {
    let room = user_room(user);
    // Where the reaper finds the user's count if this instance dies.
    let rooms = shared
        .names
        .instance_rooms_key(&shared.instance.to_string());
    let change = if counted > 0 { "SADD" } else { "SREM" };
    redis::cmd(change)
        .arg(rooms)
        .arg(room.as_bytes())
        .query::<i64>(con)?;
    script
        .key(shared.names.conns_key(&room))
        .arg(shared.instance.to_string())
        .arg(counted)
        .arg(shared.config.meta_ttl.as_secs())
        .invoke(con)
}

/// Whether `claim` passes its user's limit, given the total it brought.
pub(crate) fn over(claim: &UserClaim, total: u64) -> bool {
    total > claim.limit as u64
}
