//! The admin API's questions about every instance ([`ws_mio_server::broker::Ask`]), answered
//! from Redis by the subscriber thread on its plain connection: who is in a room (the room's
//! presence hash, live instances only), a room's last messages (its stream), and the live
//! instances with their counts (the instances' hash of counts, written with their leases).

use crate::link::Link;
use crate::presence::parse_field;
use crate::reader::{self};
use crate::Shared;
use redis::{RedisResult, Script};
use std::collections::HashSet;
use std::sync::Arc;
use ws_mio_server::api::{history_json, presence_json};
use ws_mio_server::broker::Ask;
use ws_mio_server::history::Want;

/// The instances whose lease has not ended, on Redis's clock: `KEYS[1]` the sorted set.
pub const LIVE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
";

/// The JSON answer to `ask`.
pub(crate) fn answer(
    con: &mut Link,
    scripts: (&Script, &Script),
    shared: &Shared,
    ask: &Ask,
) -> RedisResult<String> {
    let (read, live_script) = scripts;
    match ask {
        Ask::Presence(room) => {
            let live = live(con, live_script, shared)?;
            let fields: Vec<String> = redis::cmd("HKEYS")
                .arg(shared.names.who_key(room))
                .query(con)?;
            let mut users: Vec<Arc<str>> = fields
                .iter()
                .filter_map(|f| parse_field(f))
                .filter(|(instance, _)| live.contains(&instance.to_string()))
                .map(|(_, user)| Arc::from(user))
                .collect();
            users.sort_unstable();
            users.dedup();
            Ok(presence_json(room, &users))
        }
        Ask::History(room, limit) => {
            let stored = reader::read(con, read, shared, room, &Want::Last(*limit))?;
            let position = stored
                .position
                .as_ref()
                .map(|p| (p.epoch.to_string(), p.offset));
            let delivery = shared.delivery.get();
            let messages: Vec<_> = stored
                .entries
                .iter()
                .map(|(offset, payload)| {
                    let at = stored
                        .position
                        .as_ref()
                        .map(|p| ws_mio_server::history::Position {
                            epoch: p.epoch.clone(),
                            offset: *offset,
                        });
                    match delivery {
                        Some(d) => d.render(room, at.as_ref(), payload),
                        None => payload.clone(),
                    }
                })
                .collect();
            Ok(history_json(room, position, &messages))
        }
        Ask::Stats => {
            let live = live(con, live_script, shared)?;
            let counts: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(shared.names.stats_key())
                .query(con)?;
            let (mut connections, mut rooms) = (0u64, 0u64);
            for (_, figures) in counts.iter().filter(|(i, _)| live.contains(i)) {
                let mut numbers = figures.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
                connections += numbers.next().unwrap_or(0);
                rooms += numbers.next().unwrap_or(0);
            }
            Ok(format!(
                r#"{{"instances":{},"connections":{connections},"rooms":{rooms}}}"#,
                live.len()
            ))
        }
    }
}

/// The live instances' ids.
fn live(con: &mut Link, script: &Script, shared: &Shared) -> RedisResult<HashSet<String>> {
    let ids: Vec<String> = script.key(shared.names.instances_key()).invoke(con)?;
    Ok(ids.into_iter().collect())
}
