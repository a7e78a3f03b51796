//! What the broker did, counted since it started: for tests, and for the admin listener's
//! `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts since the broker started; see [`crate::RedisBroker::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Room messages Redis took (appended to their room's stream and published).
    pub published: u64,
    /// Room messages not sent to Redis: the publish queue was full, or Redis was unreachable.
    /// Local members had them already; other instances miss them.
    pub publish_dropped: u64,
    /// Room messages sent to Redis whose publish failed or whose answer was lost with the
    /// connection (they may or may not have reached other instances).
    pub publish_failed: u64,
    /// Messages received from Redis, of any kind: what interest routing keeps small.
    pub received: u64,
    /// Of those, this instance's own unrecorded ones, skipped (delivered locally when
    /// published).
    pub received_own: u64,
    /// Of those, not an envelope on a room channel of this broker, or too large: dropped.
    pub received_invalid: u64,
    /// Of those, handed to local delivery.
    pub delivered: u64,
    /// Recorded messages delivered here without a position, Redis being out of reach or the queue full: other instances miss them, and history does not keep them.
    pub delivered_unnumbered: u64,
    /// Recorded messages from Redis whose offset was delivered here already (a catch-up met them), skipped.
    pub received_again: u64,
    /// History reads answered from this instance's cache, without a round trip.
    pub reads_cached: u64,
    /// History reads that went to Redis.
    pub reads_fetched: u64,
    /// History reads that failed (answered as unavailable).
    pub read_errors: u64,
    /// History reads answered as unavailable at once: too many were waiting.
    pub reads_refused: u64,
    /// Recorded messages delivered by a catch-up after a reconnect: missed live, kept by Redis.
    pub caught_up: u64,
    /// Rooms whose catch-up after a reconnect found their history lost (a new epoch) or trimmed past what was missed.
    pub catch_up_lost: u64,
    /// Instances whose lease ended (dead) that this instance took out.
    pub instances_reaped: u64,
    /// Users of dead instances taken out of rooms' presence by this instance.
    pub presence_reaped: u64,
    /// Presence changes not sent to Redis, the queue being full: other instances' view of this one's rooms is off until the user's next change.
    pub presence_dropped: u64,
    /// Connections closed for passing their user's connection limit across instances.
    pub claims_refused: u64,
    /// Connections made to Redis, by the publisher and the subscriber together.
    pub connects: u64,
    /// Connections lost or failed, by either.
    pub connection_errors: u64,
}

impl Stats {
    /// The counts in Prometheus text, `ws_redis_*`, with `subscribed_rooms` (a gauge) beside
    /// them.
    ///
    /// ```
    /// let stats = ws_redis::Stats { published: 3, ..Default::default() };
    /// let mut text = String::new();
    /// stats.write_prometheus(&mut text, 2);
    /// assert!(text.contains("ws_redis_published_total 3\n"));
    /// assert!(text.contains("ws_redis_subscribed_rooms 2\n"));
    /// ```
    pub fn write_prometheus(&self, out: &mut String, subscribed_rooms: usize) {
        use std::fmt::Write;
        let counters = [
            (
                "published_total",
                "Room messages Redis took.",
                self.published,
            ),
            (
                "publish_dropped_total",
                "Room messages not sent to Redis: queue full or Redis unreachable.",
                self.publish_dropped,
            ),
            (
                "publish_failed_total",
                "Room messages whose publish failed or whose answer was lost.",
                self.publish_failed,
            ),
            (
                "received_total",
                "Messages received from Redis.",
                self.received,
            ),
            (
                "received_own_total",
                "Messages from Redis that this instance published, skipped.",
                self.received_own,
            ),
            (
                "received_invalid_total",
                "Messages from Redis that were not a room message, dropped.",
                self.received_invalid,
            ),
            (
                "delivered_total",
                "Messages from Redis handed to local delivery.",
                self.delivered,
            ),
            (
                "delivered_unnumbered_total",
                "Recorded messages delivered here without a position: Redis could not number them.",
                self.delivered_unnumbered,
            ),
            (
                "received_again_total",
                "Recorded messages from Redis delivered here already, skipped.",
                self.received_again,
            ),
            (
                "reads_cached_total",
                "History reads answered from the instance's cache.",
                self.reads_cached,
            ),
            (
                "reads_fetched_total",
                "History reads that went to Redis.",
                self.reads_fetched,
            ),
            (
                "read_errors_total",
                "History reads that failed: answered as unavailable.",
                self.read_errors,
            ),
            (
                "reads_refused_total",
                "History reads refused with the queue of reads full.",
                self.reads_refused,
            ),
            (
                "caught_up_total",
                "Recorded messages delivered by a catch-up after a reconnect.",
                self.caught_up,
            ),
            (
                "catch_up_lost_total",
                "Rooms whose catch-up found the history lost or trimmed.",
                self.catch_up_lost,
            ),
            (
                "instances_reaped_total",
                "Instances whose lease ended that this one took out.",
                self.instances_reaped,
            ),
            (
                "presence_reaped_total",
                "Users of dead instances taken out of rooms' presence.",
                self.presence_reaped,
            ),
            (
                "presence_dropped_total",
                "Presence changes not sent to Redis: the queue was full.",
                self.presence_dropped,
            ),
            (
                "claims_refused_total",
                "Connections refused for passing their user's limit across instances.",
                self.claims_refused,
            ),
            (
                "connects_total",
                "Connections made to Redis.",
                self.connects,
            ),
            (
                "connection_errors_total",
                "Connections to Redis lost or failed.",
                self.connection_errors,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP ws_redis_{name} {help}");
            let _ = writeln!(out, "# TYPE ws_redis_{name} counter");
            let _ = writeln!(out, "ws_redis_{name} {value}");
        }
        let name = "ws_redis_subscribed_rooms";
        let _ = writeln!(out, "# HELP {name} Rooms whose channel is subscribed now.");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {subscribed_rooms}");
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) received_own: AtomicU64,
    pub(crate) received_invalid: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) delivered_unnumbered: AtomicU64,
    pub(crate) received_again: AtomicU64,
    pub(crate) reads_cached: AtomicU64,
    pub(crate) reads_fetched: AtomicU64,
    pub(crate) read_errors: AtomicU64,
    pub(crate) reads_refused: AtomicU64,
    pub(crate) caught_up: AtomicU64,
    pub(crate) catch_up_lost: AtomicU64,
    pub(crate) instances_reaped: AtomicU64,
    pub(crate) presence_reaped: AtomicU64,
    pub(crate) presence_dropped: AtomicU64,
    pub(crate) claims_refused: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connection_errors: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            published: get(&self.published),
            publish_dropped: get(&self.publish_dropped),
            publish_failed: get(&self.publish_failed),
            received: get(&self.received),
            received_own: get(&self.received_own),
            received_invalid: get(&self.received_invalid),
            delivered: get(&self.delivered),
            delivered_unnumbered: get(&self.delivered_unnumbered),
            received_again: get(&self.received_again),
            reads_cached: get(&self.reads_cached),
            reads_fetched: get(&self.reads_fetched),
            read_errors: get(&self.read_errors),
            reads_refused: get(&self.reads_refused),
            caught_up: get(&self.caught_up),
            catch_up_lost: get(&self.catch_up_lost),
            instances_reaped: get(&self.instances_reaped),
            presence_reaped: get(&self.presence_reaped),
            presence_dropped: get(&self.presence_dropped),
            claims_refused: get(&self.claims_refused),
            connects: get(&self.connects),
            connection_errors: get(&self.connection_errors),
        }
    }
}
