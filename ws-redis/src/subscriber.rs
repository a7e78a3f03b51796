//! The receiving side: one thread with one pub/sub connection, subscribed to the channels of
//! the rooms this instance has members in ([`crate::interest`]) and to no others, so an
//! instance receives the messages of its own rooms, not the cluster's. Each message received
//! goes to the server's [`ws_mio_server::Delivery`] (bounded worker inboxes, encoded once
//! there), except this instance's own, which its members had at once.
//!
//! The thread waits for messages at most 20 ms (`POLL`) at a time, then looks for interest
//! changes: a room joined here is subscribed within about that long. One SUBSCRIBE or
//! UNSUBSCRIBE per room, each waiting for Redis's confirmation, so a room counts as subscribed
//! ([`crate::RedisBroker::is_subscribed`]) only once Redis would send it a message published
//! from then on; a resync after a reconnect costs a round trip per room.
//!
//! While it waits for a confirmation, messages of the rooms already subscribed keep coming;
//! the client (redis-rs's `PubSub`) holds them until they are read, right after. What it holds
//! is bounded by time, not count: the traffic of one round trip per room being subscribed (a
//! resync of many rooms holds the most). Counting confirmations on a raw connection, to
//! subscribe many rooms in one command, would shorten that; not done yet.
//!
//! Redis forgets subscriptions with the connection: after a loss the thread reconnects after a
//! jittered backoff and subscribes every wanted room again. Messages published in between are
//! missed (their rooms' streams keep them for a recovery to come). What Redis holds for a
//! subscriber that does not keep up is bounded by its `client-output-buffer-limit pubsub`,
//! past which Redis drops the connection and the same reconnection follows.

use crate::backoff::{Backoff, Jitter};
use crate::envelope::Envelope;
use crate::stats::add;
use crate::Shared;
use redis::{Client, Connection, Msg, PubSub, RedisResult};
use std::sync::Arc;

pub(crate) fn run(shared: Arc<Shared>, client: Client) {
    let config = &shared.config;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut jitter = Jitter::new();
    while !shared.stopping() {
        match client.get_connection_with_timeout(config.command_timeout) {
            Ok(mut con) => {
                add(&shared.counters.connects, 1);
                backoff.reset();
                tracing::info!("redis subscriber connected");
                if let Err(error) = listen(&shared, &mut con) {
                    add(&shared.counters.connection_errors, 1);
                    tracing::warn!(%error, "redis subscriber connection lost; reconnecting");
                }
            }
            Err(error) => {
                add(&shared.counters.connection_errors, 1);
                tracing::warn!(%error, "redis subscriber cannot connect");
            }
        }
        // A new connection starts with no subscription.
        shared.subscribed().clear();
        shared.interest.resync();
        if !shared.stopping() {
            shared.pause(backoff.next_delay(jitter.next()));
        }
    }
}

/// Follows the interest and delivers messages until the connection fails or the broker stops.
fn listen(shared: &Shared, con: &mut Connection) -> RedisResult<()> {
    con.set_write_timeout(Some(shared.config.command_timeout))?;
    let mut pubsub = con.as_pubsub();
    while !shared.stopping() {
        follow_interest(shared, &mut pubsub)?;
        pubsub.set_read_timeout(Some(crate::POLL))?;
        match pubsub.get_message() {
            Ok(message) => receive(shared, &message),
            Err(error) if error.is_timeout() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Subscribes the rooms newly wanted and unsubscribes those no longer wanted.
fn follow_interest(shared: &Shared, pubsub: &mut PubSub<'_>) -> RedisResult<()> {
    let changes = shared.interest.take_changes(&shared.subscribed());
    let Some(changes) = changes else {
        return Ok(());
    };
    // Confirmations may take longer than a poll.
    pubsub.set_read_timeout(Some(shared.config.command_timeout))?;
    for room in changes.subscribe {
        pubsub.subscribe(shared.names.channel(&room))?;
        shared.subscribed().insert(room);
    }
    for room in changes.unsubscribe {
        pubsub.unsubscribe(shared.names.channel(&room))?;
        shared.subscribed().remove(&room);
    }
    Ok(())
}

/// One message from Redis: to local delivery unless it is this instance's own or not ours.
fn receive(shared: &Shared, message: &Msg) {
    let counters = &shared.counters;
    add(&counters.received, 1);
    let channel: Vec<u8> = message.get_channel().unwrap_or_default();
    let Some(room) = shared.names.room_of(&channel) else {
        add(&counters.received_invalid, 1);
        return;
    };
    let envelope =
        match Envelope::decode(message.get_payload_bytes(), shared.config.max_message_size) {
            Ok(envelope) => envelope,
            Err(error) => {
                add(&counters.received_invalid, 1);
                tracing::debug!(%error, room, "not a room message");
                return;
            }
        };
    if envelope.instance == shared.instance {
        add(&counters.received_own, 1);
        return;
    }
    if let Some(delivery) = shared.delivery.get() {
        delivery.publish(&room, &envelope.message);
        add(&counters.delivered, 1);
    }
}
