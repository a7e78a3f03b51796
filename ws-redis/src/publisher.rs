//! The publishing side: one thread with one connection, fed by a bounded queue. Each room
//! message crosses Redis once, in one script call that numbers it, appends it to the room's
//! stream and publishes it ([`SCRIPT`]); the calls for the messages queued together go in one
//! pipeline, one round trip.
//!
//! While Redis cannot be reached the thread keeps taking the queue and drops what it takes
//! (counted in [`crate::Stats::publish_dropped`]): local members had those messages already,
//! and a burst of stale ones when Redis comes back would help nobody. It tries to connect again
//! after a jittered backoff ([`crate::backoff`]).

use crate::backoff::{Backoff, Jitter};
use crate::envelope::header_prefix;
use crate::stats::add;
use crate::Shared;
use redis::{Client, Connection, RedisResult, Script};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;
use ws_proto::Message;

/// One publish, atomic in Redis: the room's next offset (`KEYS[1]`, a counter), the envelope
/// built around it (`ARGV[1]` is its header up to the offset, `ARGV[2]` the payload), appended
/// to the room's stream (`KEYS[2]`, trimmed to about `ARGV[3]` entries) and published on the
/// room's channel (`ARGV[4]`: a channel is not a key). Returns the offset.
///
/// The stream's entry ids are Redis's own (`*`), the offset a field of the envelope: a counter
/// lost without its stream then restarts the numbering (an epoch the chat will have to tell)
/// instead of making every publish fail on an id not above the stream's last.
pub const SCRIPT: &str = r"
local offset = redis.call('INCR', KEYS[1])
local envelope = ARGV[1] .. string.format('%d', offset) .. '\n' .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'm', envelope)
redis.call('PUBLISH', ARGV[4], envelope)
return offset
";

/// Messages sent to Redis in one pipeline at most.
const BATCH: usize = 64;

/// A room message waiting in the queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) room: Arc<str>,
    pub(crate) message: Message,
}

impl Outgoing {
    /// What it counts against the queue's byte bound.
    pub(crate) fn size(&self) -> usize {
        self.room.len() + self.message.as_bytes().len()
    }
}

pub(crate) fn run(shared: Arc<Shared>, client: Client, queue: Receiver<Outgoing>) {
    let script = Script::new(SCRIPT);
    let config = &shared.config;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut jitter = Jitter::new();
    let mut connection: Option<Connection> = None;
    let mut retry_at = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // The broker holds the queue's only sender: dropping it ends this thread.
        let Ok(first) = queue.recv() else { return };
        batch.push(first);
        while batch.len() < BATCH {
            let Ok(next) = queue.try_recv() else { break };
            batch.push(next);
        }
        let bytes: usize = batch.iter().map(Outgoing::size).sum();
        shared.release_queued(bytes);
        let count = batch.len() as u64;
        if connection.is_none() && Instant::now() >= retry_at {
            match connect(&client, &script, &shared) {
                Ok(con) => {
                    add(&shared.counters.connects, 1);
                    backoff.reset();
                    tracing::info!("redis publisher connected");
                    connection = Some(con);
                }
                Err(error) => {
                    add(&shared.counters.connection_errors, 1);
                    tracing::warn!(%error, "redis publisher cannot connect");
                    retry_at = Instant::now() + backoff.next_delay(jitter.next());
                }
            }
        }
        match connection.as_mut() {
            None => add(&shared.counters.publish_dropped, count),
            Some(con) => match send(con, &script, &shared, &batch) {
                Ok(()) => add(&shared.counters.published, count),
                Err(error) => {
                    add(&shared.counters.publish_failed, count);
                    add(&shared.counters.connection_errors, 1);
                    tracing::warn!(%error, "redis publish failed; reconnecting");
                    // The connection may be out of step: start again on a new one.
                    connection = None;
                    retry_at = Instant::now() + backoff.next_delay(jitter.next());
                }
            },
        }
        batch.clear();
    }
}

/// A connection with timeouts, the script loaded (so EVALSHA finds it).
fn connect(client: &Client, script: &Script, shared: &Shared) -> RedisResult<Connection> {
    let timeout = shared.config.command_timeout;
    let mut con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    script.load(&mut con)?;
    Ok(con)
}

/// One pipeline of script calls for `batch`.
fn send(
    con: &mut Connection,
    script: &Script,
    shared: &Shared,
    batch: &[Outgoing],
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    for out in batch {
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(2)
            .arg(shared.names.offset_key(&out.room))
            .arg(shared.names.log_key(&out.room))
            .arg(header_prefix(shared.instance, out.message.kind()))
            .arg(out.message.as_bytes())
            .arg(shared.config.stream_length)
            .arg(shared.names.channel(&out.room));
    }
    let offsets: Vec<u64> = pipe.query(con)?;
    debug_assert_eq!(offsets.len(), batch.len());
    Ok(())
}
