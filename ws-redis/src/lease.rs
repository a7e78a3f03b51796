//! The lease thread: renews this instance's lease every third of the lease interval, and
//! takes out the presence of instances whose lease has ended ([`crate::presence`]). Its own
//! connection, so neither the publisher's queue nor the subscriber's messages wait for it.

use crate::envelope::{self, unrecorded, InstanceId};
use crate::link::Link;
use crate::presence::{field, parse_field, CHANGE_SCRIPT, LEASE_SCRIPT};
use crate::seeds::Seeds;
use crate::stats::add;
use crate::Shared;
use redis::{RedisResult, Script};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn run(shared: Arc<Shared>, client: Seeds) {
    let lease = Script::new(LEASE_SCRIPT);
    let change = Script::new(CHANGE_SCRIPT);
    let every = (shared.config.lease / 3).max(Duration::from_millis(10));
    let mut con: Option<Link> = None;
    while !shared.stopping() {
        if con.is_none() {
            let timeout = shared.config.command_timeout;
            con = Link::connect(&client, timeout)
                .and_then(|mut c| {
                    c.set_read_timeout(Some(timeout))?;
                    c.set_write_timeout(Some(timeout))?;
                    Ok(c)
                })
                .inspect_err(|error| tracing::debug!(%error, "redis lease: cannot connect"))
                .ok();
        }
        if let Some(c) = con.as_mut() {
            if let Err(error) = renew_and_reap(c, &lease, &change, &shared) {
                tracing::warn!(%error, "redis lease renewal failed");
                con = None;
            }
        }
        shared.pause(every);
    }
    // Going away in order: nobody need take this instance out.
    if let Some(c) = con.as_mut() {
        let id = shared.instance.to_string();
        let _: RedisResult<i64> = redis::cmd("ZREM")
            .arg(shared.names.instances_key())
            .arg(&id)
            .query(c);
        let _: RedisResult<i64> = redis::cmd("HDEL")
            .arg(shared.names.stats_key())
            .arg(&id)
            .query(c);
    }
}

/// Renews this instance's lease, and takes out each instance whose lease ended that no other
/// instance took out first.
fn renew_and_reap(
    con: &mut Link,
    lease: &Script,
    change: &Script,
    shared: &Shared,
) -> RedisResult<()> {
    let instances = shared.names.instances_key();
    let lease_ms = shared.config.lease.as_millis() as u64;
    let ended: Vec<String> = lease
        .key(&instances)
        .arg(shared.instance.to_string())
        .arg(lease_ms)
        .invoke(con)?;
    // This instance's counts, for the admin API's cluster figures.
    if let Some(delivery) = shared.delivery.get() {
        let (connections, rooms) = delivery.local_counts();
        redis::cmd("HSET")
            .arg(shared.names.stats_key())
            .arg(shared.instance.to_string())
            .arg(format!("{connections} {rooms}"))
            .query::<i64>(con)?;
    }
    for dead in ended {
        let claimed: i64 = redis::cmd("ZREM").arg(&instances).arg(&dead).query(con)?;
        if claimed == 1 {
            add(&shared.counters.instances_reaped, 1);
            tracing::info!(
                instance = dead,
                "an instance's lease ended: taking its users out"
            );
            reap(con, change, shared, &dead)?;
        }
    }
    Ok(())
}

/// Takes the users of the dead instance `dead` out of every room where it had some, and
/// announces each that is gone from a room altogether, in its name.
fn reap(con: &mut Link, change: &Script, shared: &Shared, dead: &str) -> RedisResult<()> {
    let names = &shared.names;
    let publish = con.publish_command();
    let rooms_key = names.instance_rooms_key(dead);
    let dead_id = (dead.len() == 16)
        .then(|| u64::from_str_radix(dead, 16).ok())
        .flatten()
        .map(InstanceId);
    let rooms: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&rooms_key).query(con)?;
    for room in dead_id.map_or(Vec::new(), |_| rooms) {
        let (Ok(room), Some(dead_id)) = (String::from_utf8(room), dead_id) else {
            continue;
        };
        if ws_mio_server::users::user_of(&room).is_some() {
            // A user's room: its count of the user's connections on the dead instance.
            redis::cmd("HDEL")
                .arg(names.conns_key(&room))
                .arg(dead)
                .query::<i64>(con)?;
            continue;
        }
        let who = names.who_key(&room);
        let fields: Vec<String> = redis::cmd("HKEYS").arg(&who).query(con)?;
        let mut gone = Vec::new();
        let mut staying = HashSet::new();
        for (instance, user) in fields.iter().filter_map(|f| parse_field(f)) {
            match instance == dead_id {
                true => gone.push(user.to_string()),
                false => {
                    staying.insert(user.to_string());
                }
            }
        }
        let channel = names.channel(&room);
        for user in gone {
            let _: i64 = change
                .key(&who)
                .arg(field(dead_id, &user))
                .arg("0")
                .arg(&channel)
                .arg(envelope::presence(dead_id, &user, false))
                .arg(publish)
                .invoke(con)?;
            add(&shared.counters.presence_reaped, 1);
            if staying.contains(&user) {
                continue;
            }
            let announcement = shared
                .delivery
                .get()
                .and_then(|d| d.render_presence(&room, &user, false));
            if let Some(message) = announcement {
                let _: i64 = redis::cmd(publish)
                    .arg(&channel)
                    .arg(unrecorded(dead_id, &message))
                    .query(con)?;
            }
        }
    }
    redis::cmd("DEL").arg(&rooms_key).query::<i64>(con)?;
    redis::cmd("HDEL")
        .arg(names.stats_key())
        .arg(dead)
        .query::<i64>(con)?;
    Ok(())
}
