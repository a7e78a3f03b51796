//! The publishing side: one thread with one connection, fed by a bounded queue, in pipelines
//! of up to 64 commands, one round trip each.
//!
//! A recorded message crosses Redis once, in one script call ([`SCRIPT`]) that numbers it in
//! its room's epoch, appends it to the room's stream and publishes it; every instance then
//! delivers it as Redis sends it back, this one included. Any other room message went to this
//! instance's members at once and is only published, for the other instances.
//!
//! While Redis cannot be reached the thread keeps taking the queue: recorded messages go to
//! this instance's members without a position (they cannot be numbered; other instances miss
//! them, and the history will not have them), the others are dropped (counted in
//! [`crate::Stats::publish_dropped`]): a burst of stale messages when Redis comes back would
//! help nobody. It tries to connect again after a jittered backoff ([`crate::backoff`]).

use crate::backoff::{Backoff, Jitter};
use crate::envelope::{self, header_prefix, unrecorded};
use crate::link::Link;
use crate::marks::MARK_SCRIPT;
use crate::presence::{self, CHANGE_SCRIPT};
use crate::seeds::Seeds;
use crate::stats::add;
use crate::Shared;
use redis::{RedisResult, Script};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;
use ws_proto::Message;

/// One recorded message, atomic in Redis. `KEYS[1]` is the room's meta hash (`epoch`, the
/// last `offset`), `KEYS[2]` its stream; `ARGV[1]` the envelope's header up to the epoch,
/// `ARGV[2]` the payload, `ARGV[3]` about how many entries the stream keeps, `ARGV[4]` the
/// room's channel, `ARGV[5]` and `ARGV[6]` the seconds the stream and the meta hash outlive the
/// room's last message (0: for ever), `ARGV[7]` `PUBLISH` or `SPUBLISH` (Redis Cluster),
/// `ARGV[8]` empty, or for a message taken once per key the seconds its key (`KEYS[3]`) is
/// remembered: a message whose key is there already is dropped (returns 0).
///
/// A room without a meta hash (never used, expired, or lost with Redis's data) starts a new
/// epoch, named after Redis's clock, and drops whatever stream it had, so an offset is never
/// given twice in one epoch. The stream's entry ids are the offsets (`OFFSET-0`), so a
/// recovery reads from an offset directly. Returns the offset.
pub const SCRIPT: &str = r"
if ARGV[8] ~= '' then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[8]) then return 0 end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local offset = string.format('%d', redis.call('HINCRBY', KEYS[1], 'offset', 1))
local envelope = ARGV[1] .. epoch .. ' ' .. offset .. '\n' .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 'm', envelope)
if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
if tonumber(ARGV[6]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[6]) end
redis.call(ARGV[7], ARGV[4], envelope)
return tonumber(offset)
";

/// Commands sent to Redis in one pipeline at most.
const BATCH: usize = 64;

/// What waits in the queue: a room message, or a presence change.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) room: Arc<str>,
    /// The message; for a presence change, the user's name.
    pub(crate) message: Message,
    pub(crate) kind: Kind,
    /// For a recorded message taken once per key: the key.
    pub(crate) once: Option<Box<str>>,
}

/// How long a once-only message's key is remembered in Redis.
pub const ONCE_WINDOW_SECONDS: u64 = 120;

/// What an [`Outgoing`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A room message to number and keep ([`SCRIPT`]).
    Recorded,
    /// A room message only to publish.
    Plain,
    /// An order to close the room's members (`CODE REASON` in the message), only to publish.
    Close,
    /// A user's read mark at this offset (the user's name in the message)
    /// ([`crate::marks::MARK_SCRIPT`]).
    Mark(u64),
    /// A user of this instance present in the room now, or no longer
    /// ([`crate::presence::CHANGE_SCRIPT`]); with whether the room joins (`Some(true)`) or
    /// leaves the set of rooms where this instance has users.
    Presence(bool, Option<bool>),
}

impl Outgoing {
    /// What it counts against the queue's byte bound.
    pub(crate) fn size(&self) -> usize {
        self.room.len() + self.message.as_bytes().len()
    }
}

pub(crate) fn run(shared: Arc<Shared>, client: Seeds, queue: Receiver<Outgoing>) {
    let scripts = Scripts {
        record: Script::new(SCRIPT),
        change: Script::new(CHANGE_SCRIPT),
        mark: Script::new(MARK_SCRIPT),
    };
    let config = &shared.config;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut jitter = Jitter::new();
    let mut connection: Option<Link> = None;
    let mut retry_at = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Connected before the first message, so the instance is ready (not degraded) at once.
        if connection.is_none() && Instant::now() >= retry_at {
            match connect(&client, &scripts, &shared) {
                Ok(con) => {
                    add(&shared.counters.connects, 1);
                    backoff.reset();
                    tracing::info!("redis publisher connected");
                    shared.publisher_up.store(true, Ordering::Relaxed);
                    connection = Some(con);
                }
                Err(error) => {
                    add(&shared.counters.connection_errors, 1);
                    tracing::warn!(%error, "redis publisher cannot connect");
                    retry_at = Instant::now() + backoff.next_delay(jitter.next());
                }
            }
        }
        // The broker holds the queue's only sender: dropping it ends this thread.
        let first = match queue.recv_timeout(crate::POLL) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        batch.push(first);
        while batch.len() < BATCH {
            let Ok(next) = queue.try_recv() else { break };
            batch.push(next);
        }
        let bytes: usize = batch.iter().map(Outgoing::size).sum();
        shared.release_queued(bytes);
        let count = batch.len() as u64;
        match connection.as_mut() {
            None => {
                add(&shared.counters.publish_dropped, count);
                deliver_here(&shared, &batch);
            }
            Some(con) => match send_or_resend(con, &client, &scripts, &shared, &batch) {
                Ok(()) => add(&shared.counters.published, count),
                Err(error) => {
                    add(&shared.counters.publish_failed, count);
                    add(&shared.counters.connection_errors, 1);
                    tracing::warn!(%error, "redis publish failed; reconnecting");
                    shared.publisher_up.store(false, Ordering::Relaxed);
                    // Whether Redis took them is unknown; this instance's members get them
                    // (rather twice than never).
                    deliver_here(&shared, &batch);
                    // The connection may be out of step: start again on a new one.
                    connection = None;
                    retry_at = Instant::now() + backoff.next_delay(jitter.next());
                }
            },
        }
        batch.clear();
    }
}

/// Recorded messages that Redis will not deliver: to this instance's members, without a
/// position. (The others reached them when published.)
pub(crate) fn deliver_here(shared: &Shared, batch: &[Outgoing]) {
    let Some(delivery) = shared.delivery.get() else {
        return;
    };
    for out in batch.iter().filter(|o| o.kind == Kind::Recorded) {
        delivery.deliver_recorded(&out.room, None, &out.message);
        add(&shared.counters.delivered_unnumbered, 1);
    }
}

/// [`send`], and once more on a new connection when the first found its connection dropped
/// (Redis restarted since it was last used: the old server is gone, so it cannot have taken
/// the batch). A timeout is not retried: a slow Redis may still carry it out.
fn send_or_resend(
    con: &mut Link,
    client: &Seeds,
    scripts: &Scripts,
    shared: &Shared,
    batch: &[Outgoing],
) -> RedisResult<()> {
    match send(con, scripts, shared, batch) {
        Err(error) if error.is_connection_dropped() || error.is_connection_refusal() => {
            tracing::info!(%error, "redis publisher connection dropped; sending again on a new one");
            *con = connect(client, scripts, shared)?;
            add(&shared.counters.connects, 1);
            send(con, scripts, shared, batch)
        }
        other => other,
    }
}

/// The publisher's scripts.
struct Scripts {
    record: Script,
    change: Script,
    mark: Script,
}

/// A connection with timeouts, the scripts loaded (so EVALSHA finds them).
fn connect(client: &Seeds, scripts: &Scripts, shared: &Shared) -> RedisResult<Link> {
    let timeout = shared.config.command_timeout;
    let mut con = Link::connect(client, timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    scripts.record.load(&mut con)?;
    scripts.change.load(&mut con)?;
    scripts.mark.load(&mut con)?;
    Ok(con)
}

/// One pipeline for `batch`.
fn send(con: &mut Link, scripts: &Scripts, shared: &Shared, batch: &[Outgoing]) -> RedisResult<()> {
    let config = &shared.config;
    let publish = con.publish_command();
    let names = &shared.names;
    let mut pipe = redis::pipe();
    for out in batch {
        let channel = names.channel(&out.room);
        match out.kind {
            Kind::Plain => {
                let envelope = unrecorded(shared.instance, &out.message);
                pipe.cmd(publish).arg(channel).arg(envelope);
            }
            Kind::Mark(offset) => {
                let user = String::from_utf8_lossy(out.message.as_bytes());
                pipe.cmd("EVALSHA")
                    .arg(scripts.mark.get_hash())
                    .arg(1)
                    .arg(names.reads_key(&out.room))
                    .arg(&*user)
                    .arg(offset)
                    .arg(channel)
                    .arg(envelope::mark(shared.instance, &user, offset))
                    .arg(publish)
                    .arg(config.meta_ttl.as_secs());
            }
            Kind::Close => {
                let order = String::from_utf8_lossy(out.message.as_bytes());
                let envelope = envelope::close(shared.instance, &order);
                pipe.cmd(publish).arg(channel).arg(envelope);
            }
            Kind::Recorded => {
                pipe.cmd("EVALSHA")
                    .arg(scripts.record.get_hash())
                    .arg(3)
                    .arg(names.meta_key(&out.room))
                    .arg(names.log_key(&out.room))
                    .arg(match &out.once {
                        Some(key) => names.once_key(&out.room, key),
                        None => names.meta_key(&out.room),
                    })
                    .arg(header_prefix(shared.instance, out.message.kind()))
                    .arg(out.message.as_bytes())
                    .arg(config.stream_length)
                    .arg(channel)
                    .arg(config.history_ttl.as_secs())
                    .arg(config.meta_ttl.as_secs())
                    .arg(publish)
                    .arg(match out.once {
                        Some(_) => ONCE_WINDOW_SECONDS.to_string(),
                        None => String::new(),
                    });
            }
            Kind::Presence(present, rooms_set) => {
                let user = String::from_utf8_lossy(out.message.as_bytes());
                let change = envelope::presence(shared.instance, &user, present);
                pipe.cmd("EVALSHA")
                    .arg(scripts.change.get_hash())
                    .arg(1)
                    .arg(names.who_key(&out.room))
                    .arg(presence::field(shared.instance, &user))
                    .arg(if present { "1" } else { "0" })
                    .arg(channel)
                    .arg(change)
                    .arg(publish);
                let rooms = names.instance_rooms_key(&shared.instance.to_string());
                match rooms_set {
                    Some(true) => pipe.cmd("SADD").arg(rooms).arg(out.room.as_bytes()),
                    Some(false) => pipe.cmd("SREM").arg(rooms).arg(out.room.as_bytes()),
                    None => continue,
                };
            }
        }
    }
    pipe.query::<redis::Value>(con)?;
    Ok(())
}
