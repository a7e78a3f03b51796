//! A [`Broker`] over Redis, so that the members of one room can be spread over several
//! instances of a ws-mio-server application: each instance serves its own clients, and a room
//! message published on any of them reaches the room's members on all of them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ws_mio_server::{Broadcast, Config, Hooks, Server};
//! use ws_redis::{RedisBroker, RedisConfig};
//!
//! let broker = RedisBroker::start(RedisConfig::new("redis://127.0.0.1:6379"))?;
//! let hooks = Hooks { broker: Some(Arc::new(broker)), ..Hooks::default() };
//! let server = Server::start_with(Config::default(), Broadcast, hooks)?;
//! server.run_until_signal()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The broker records ([`Broker::records`]): rooms' histories live in Redis, so a client
//! that comes back to any instance with the position of the last message it saw is sent what
//! it missed ([`ws_mio_server::history`]).
//!
//! How, in the order a message meets it:
//!
//! - A recorded room message published here ([`Broker::record`]) is offered to a bounded queue
//!   ([`RedisConfig::publish_queue`] messages and [`RedisConfig::publish_queue_bytes`]
//!   bytes); any other room message reaches the local members first, as on a single instance,
//!   then goes to the same queue ([`Broker::publish`]). No worker ever waits on Redis: when the
//!   queue is full a recorded message goes to the local members without a position, any other
//!   is not sent (both counted).
//! - The publisher thread ([`publisher`]) sends queued messages in pipelines: a recorded
//!   message crosses Redis once, in one script call that gives it the room's next offset in its
//!   epoch, appends it to the room's stream and publishes it on the room's channel
//!   ([`naming`]), as one envelope ([`envelope`]) that names the publishing instance.
//! - The subscriber thread ([`subscriber`]) is subscribed to the channels of the rooms this
//!   instance has members in, as the server reports them ([`Broker::subscribe`] at a room's
//!   first local member, [`Broker::unsubscribe`] at its last; [`interest`]), and to nothing
//!   else. It hands each recorded message to the server's [`Delivery`], this instance's own
//!   included, so every instance delivers a room's messages in the order of their offsets, and
//!   keeps it in a cache of recent history. It serves reads of history
//!   ([`Broker::read`]; [`reader`]) from that cache or from the room's stream.
//! - An unrecorded message of this instance's own comes back from Redis too (a channel has no
//!   notion of sender); the subscriber skips it by the instance id in the envelope.
//! - Either thread that loses its connection reconnects after a jittered backoff
//!   ([`backoff`]); meanwhile the instance serves its own clients (recorded messages without
//!   positions) and reports itself degraded ([`Broker::health`]). The subscriber then
//!   subscribes every wanted room again and catches each up from its stream.
//!
//! The same runs on a Redis Cluster, given as one or several of its nodes ([`seeds`]): each
//! connection finds out whether Redis is a cluster (`INFO cluster`); if so, every command goes
//! to the master that owns its key's slot ([`slot`]), and rooms' channels are shard channels
//! (`SPUBLISH`, and `SSUBSCRIBE` on a connection per master). Every name of a room carries the
//! room as a hash tag ([`naming`]), so a room's keys and channel are on one master and each
//! script touches one slot.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backoff;
mod channels;
pub mod envelope;
pub mod interest;
mod lease;
mod link;
mod marks;
pub mod naming;
mod options;
pub mod presence;
pub mod publisher;
mod queries;
mod quota;
pub mod reader;
mod routed;
pub mod seeds;
mod sharded;
pub mod slot;
mod stats;
pub mod subscriber;
mod topology;
mod wire;

pub use options::RedisOptions;
pub use stats::Stats;

use envelope::InstanceId;
use interest::Interest;
use naming::Names;
use presence::Replica;
use publisher::{Kind, Outgoing};
use seeds::{SeedError, Seeds};
use stats::{add, Counters};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ws_mio_server::broker::{ClusterQuery, Health, UserClaim};
use ws_mio_server::history::{Answer, Histories, HistoryLimits, Page, Read};
use ws_mio_server::{Broker, Delivery};
use ws_proto::Message;
use ws_proto::StatusCode;

/// How long the subscriber waits for a message at most before it looks for new interest or a
/// stop: the delay between a room's first local member and its subscription.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// The broker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, or `unix:///PATH`; or, for a Redis
    /// Cluster, a comma-separated list of `redis://` URLs of some of its nodes ([`seeds`]).
    pub url: String,
    /// The first part of every key and channel ([`naming`]): instances with the same prefix
    /// on one Redis form one cluster.
    pub prefix: String,
    /// Room messages waiting for the publisher at most; more are not sent to Redis.
    pub publish_queue: usize,
    /// Bytes of room messages (and room names) waiting for the publisher at most.
    pub publish_queue_bytes: usize,
    /// About how many messages each room's stream keeps (`XADD MAXLEN ~`).
    pub stream_length: u64,
    /// The largest message accepted from Redis, in bytes; larger ones are dropped (counted as
    /// invalid). Set it to the server's `max_message_size`.
    pub max_message_size: usize,
    /// The first reconnection delay.
    pub reconnect_min: Duration,
    /// The longest reconnection delay.
    pub reconnect_max: Duration,
    /// How long a connection attempt or a command may take before the connection counts as
    /// lost.
    pub command_timeout: Duration,
    /// Rooms whose interest changed that the subscriber is told of one by one; past it, it
    /// compares all of them ([`interest`]).
    pub max_interest_changes: usize,
    /// How long a room's stream outlives its last message (0: for ever): the age bound of
    /// history, besides [`Self::stream_length`].
    pub history_ttl: Duration,
    /// How long a room's epoch and last offset outlive its last message or join (0: for
    /// ever). Past it a client coming back is told its history is lost, with a new epoch.
    pub meta_ttl: Duration,
    /// What the instance's cache of its rooms' recent history holds (its `idle_expiry` is
    /// not used: a room's cache goes when its last member here leaves).
    pub cache: HistoryLimits,
    /// Reads of history waiting for the subscriber at most; past it a read is answered as
    /// unavailable at once.
    pub max_pending_reads: usize,
    /// The presence lease ([`presence`]): renewed every third of it; an instance that has
    /// not renewed its lease for this long is taken for dead and its users out of presence.
    pub lease: Duration,
}

impl RedisConfig {
    /// The defaults, for the Redis at `url`.
    ///
    /// ```
    /// let config = ws_redis::RedisConfig::new("redis://127.0.0.1:6379");
    /// assert_eq!((config.prefix.as_str(), config.stream_length), ("ws", 1000));
    /// ```
    pub fn new(url: &str) -> RedisConfig {
        RedisConfig {
            url: url.to_string(),
            prefix: "ws".to_string(),
            publish_queue: 4096,
            publish_queue_bytes: 64 << 20,
            stream_length: 1000,
            max_message_size: 16 << 20,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            command_timeout: Duration::from_secs(2),
            max_interest_changes: 65_536,
            history_ttl: Duration::from_secs(3600),
            meta_ttl: Duration::from_secs(7 * 24 * 3600),
            cache: HistoryLimits::default(),
            max_pending_reads: 4096,
            lease: Duration::from_secs(10),
        }
    }
}

/// Why the broker could not start.
#[derive(Debug)]
pub enum StartError {
    /// The URL, or one URL of the list, is not one the Redis client can use.
    Url(SeedError),
    /// A thread could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Url(e) => write!(f, "the Redis URL is not usable: {e}"),
            StartError::Thread(e) => write!(f, "cannot start the Redis broker's threads: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Url(e) => Some(e),
            StartError::Thread(e) => Some(e),
        }
    }
}

/// What waits for the subscriber thread's plain connection.
#[derive(Debug)]
pub(crate) enum Request {
    /// A connection's read of a room's history.
    Read(Read),
    /// An admin API question about every instance.
    Query(ClusterQuery),
    /// A connection's claim to one of its user's connections across instances.
    Claim(UserClaim),
    /// A claimed connection ended: the user's count here.
    Release(Arc<str>, usize),
}

/// What the broker and its threads share.
pub(crate) struct Shared {
    pub(crate) config: RedisConfig,
    pub(crate) names: Names,
    pub(crate) instance: InstanceId,
    pub(crate) interest: Interest,
    /// The rooms Redis has confirmed a subscription to, on the subscriber's connection.
    subscribed: Mutex<HashSet<Arc<str>>>,
    pub(crate) delivery: OnceLock<Delivery>,
    pub(crate) counters: Counters,
    /// Bytes in the publish queue.
    queued_bytes: AtomicUsize,
    stop: AtomicBool,
    /// Recent history of the rooms this instance has members in, as delivered here.
    pub(crate) cache: Histories,
    /// Reads of history and admin questions waiting for the subscriber.
    reads: Mutex<VecDeque<Request>>,
    /// Whether each thread has its connection now.
    pub(crate) publisher_up: AtomicBool,
    pub(crate) subscriber_up: AtomicBool,
    /// The other instances' users in the rooms this one has members in.
    pub(crate) replica: Replica,
    /// Users' read marks in the rooms this one has members in.
    pub(crate) marks: marks::Marks,
    /// Users of this instance present in each room, counted as changes are queued: a room
    /// is in the instance's set of rooms in Redis while it has some.
    own_presence: Mutex<HashMap<Arc<str>, usize>>,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps for `delay`, or until the broker stops.
    pub(crate) fn pause(&self, delay: Duration) {
        let until = Instant::now() + delay;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(POLL));
        }
    }

    pub(crate) fn subscribed(&self) -> MutexGuard<'_, HashSet<Arc<str>>> {
        self.subscribed.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn release_queued(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn reads(&self) -> MutexGuard<'_, VecDeque<Request>> {
        self.reads.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_read(&self) -> Option<Request> {
        self.reads().pop_front()
    }

    /// Puts a request taken back at the front, to be taken first next time.
    pub(crate) fn read_again(&self, request: Request) {
        self.reads().push_front(request);
    }

    pub(crate) fn has_reads(&self) -> bool {
        !self.reads().is_empty()
    }

    /// Counts a presence change of this instance in `room`: whether the room now joins
    /// (`Some(true)`) or leaves (`Some(false)`) the instance's set of rooms with users.
    fn own_presence(&self, room: &Arc<str>, present: bool) -> Option<bool> {
        let mut own = self.own_presence.lock().unwrap_or_else(|p| p.into_inner());
        let count = own.entry(room.clone()).or_insert(0);
        match present {
            true => {
                *count += 1;
                (*count == 1).then_some(true)
            }
            false => {
                *count = count.saturating_sub(1);
                let emptied = *count == 0;
                if emptied {
                    own.remove(room);
                }
                emptied.then_some(false)
            }
        }
    }
}

/// The Redis broker: give it to [`ws_mio_server::Hooks::broker`]. Its threads stop when it is
/// dropped (when the server that holds it has shut down and the caller's copies are gone).
pub struct RedisBroker {
    shared: Arc<Shared>,
    queue: Option<SyncSender<Outgoing>>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("instance", &self.shared.instance)
            .field("prefix", &self.shared.config.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Starts the publisher and subscriber threads. Redis need not be up: they connect when
    /// they can, and until then this instance works on its own.
    pub fn start(config: RedisConfig) -> Result<RedisBroker, StartError> {
        let seeds = Seeds::parse(&config.url).map_err(StartError::Url)?;
        let (queue, outgoing) = mpsc::sync_channel(config.publish_queue.max(1));
        let instance = InstanceId::random();
        let shared = Arc::new(Shared {
            names: Names::new(&config.prefix),
            instance,
            interest: Interest::new(config.max_interest_changes),
            subscribed: Mutex::default(),
            delivery: OnceLock::new(),
            counters: Counters::default(),
            queued_bytes: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            cache: Histories::new(HistoryLimits {
                idle_expiry: Duration::ZERO,
                ..config.cache
            }),
            reads: Mutex::default(),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            replica: Replica::new(instance),
            marks: marks::Marks::default(),
            own_presence: Mutex::default(),
            config,
        });
        let mut broker = RedisBroker {
            shared: shared.clone(),
            queue: Some(queue),
            threads: Vec::new(),
        };
        let (s, c) = (shared.clone(), seeds.clone());
        broker.threads.push(
            std::thread::Builder::new()
                .name("ws-redis-publish".into())
                .spawn(move || publisher::run(s, c, outgoing))
                .map_err(StartError::Thread)?,
        );
        let (s, c) = (shared.clone(), seeds.clone());
        broker.threads.push(
            std::thread::Builder::new()
                .name("ws-redis-subscribe".into())
                .spawn(move || subscriber::run(s, c))
                .map_err(StartError::Thread)?,
        );
        broker.threads.push(
            std::thread::Builder::new()
                .name("ws-redis-lease".into())
                .spawn(move || lease::run(shared, seeds))
                .map_err(StartError::Thread)?,
        );
        Ok(broker)
    }

    /// This instance's id in the envelopes it publishes.
    pub fn instance(&self) -> InstanceId {
        self.shared.instance
    }

    /// What it did so far.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Whether Redis has confirmed the subscription to `room`'s channel: messages published
    /// to the room from now on reach this instance.
    pub fn is_subscribed(&self, room: &str) -> bool {
        self.shared.subscribed().contains(room)
    }

    /// Rooms subscribed now.
    pub fn subscribed_rooms(&self) -> usize {
        self.shared.subscribed().len()
    }
}

impl RedisBroker {
    /// Offers a message to the publisher's queue without waiting; gives it back when the queue
    /// is full (in messages or bytes).
    fn enqueue(&self, room: &Arc<str>, message: &Message, kind: Kind) -> Result<(), Outgoing> {
        self.enqueue_once(room, message, kind, None)
    }

    fn enqueue_once(
        &self,
        room: &Arc<str>,
        message: &Message,
        kind: Kind,
        once: Option<&str>,
    ) -> Result<(), Outgoing> {
        let outgoing = Outgoing {
            room: room.clone(),
            message: message.clone(),
            kind,
            once: once.map(Box::from),
        };
        let Some(queue) = &self.queue else {
            return Err(outgoing);
        };
        let size = outgoing.size();
        let shared = &self.shared;
        let before = shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > shared.config.publish_queue_bytes {
            shared.release_queued(size);
            return Err(outgoing);
        }
        match queue.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(out) | TrySendError::Disconnected(out)) => {
                shared.release_queued(size);
                Err(out)
            }
        }
    }
}

impl Broker for RedisBroker {
    fn attach(&self, delivery: Delivery) {
        if self.shared.delivery.set(delivery).is_err() {
            tracing::warn!("a Redis broker serves one server: attached again, ignored");
        }
    }

    fn subscribe(&self, room: &Arc<str>) {
        self.shared.interest.set(room, true);
    }

    fn unsubscribe(&self, room: &Arc<str>) {
        self.shared.interest.set(room, false);
    }

    fn publish(&self, room: &Arc<str>, message: &Message) {
        if let Err(out) = self.enqueue(room, message, Kind::Plain) {
            drop(out);
            add(&self.shared.counters.publish_dropped, 1);
        }
    }

    fn records(&self) -> bool {
        true
    }

    fn presence(&self, room: &Arc<str>, user: &Arc<str>, present: bool) {
        let rooms_set = self.shared.own_presence(room, present);
        let name = Message::Text(user.to_string().into());
        if self
            .enqueue(room, &name, Kind::Presence(present, rooms_set))
            .is_err()
        {
            add(&self.shared.counters.presence_dropped, 1);
        }
    }

    fn remote_users(&self, room: &str) -> Vec<Arc<str>> {
        self.shared.replica.users(room)
    }

    fn spans_instances(&self) -> bool {
        true
    }

    fn mark(&self, room: &Arc<str>, user: &Arc<str>, offset: u64) {
        let name = Message::Text(user.to_string().into());
        if self.enqueue(room, &name, Kind::Mark(offset)).is_err() {
            add(&self.shared.counters.publish_dropped, 1);
        }
    }

    fn close_room(&self, room: &Arc<str>, code: ws_proto::CloseCode, reason: &str) {
        let order = Message::Text(format!("{} {reason}", code.0).into());
        if self.enqueue(room, &order, Kind::Close).is_err() {
            add(&self.shared.counters.publish_dropped, 1);
        }
    }

    fn record(&self, room: &Arc<str>, payload: &Message, once: Option<&str>) {
        if let Err(out) = self.enqueue_once(room, payload, Kind::Recorded, once) {
            add(&self.shared.counters.publish_dropped, 1);
            publisher::deliver_here(&self.shared, &[out]);
        }
    }

    fn read(&self, read: Read) -> Option<Answer> {
        let mut reads = self.shared.reads();
        if reads.len() >= self.shared.config.max_pending_reads {
            drop(reads);
            add(&self.shared.counters.reads_refused, 1);
            let page = Page::unavailable();
            return Some(Answer {
                read,
                page,
                mark: None,
            });
        }
        reads.push_back(Request::Read(read));
        None
    }

    fn claim(&self, claim: UserClaim) {
        let mut reads = self.shared.reads();
        if reads.len() >= self.shared.config.max_pending_reads {
            // Admitted unchecked rather than refused for a busy broker.
            drop(reads);
            return add(&self.shared.counters.reads_refused, 1);
        }
        reads.push_back(Request::Claim(claim));
    }

    fn release(&self, user: &Arc<str>, counted: usize) {
        // Past the bound too: one a claimed connection at most, and a lost one would leave
        // the user counted here until this instance ends.
        self.shared
            .reads()
            .push_back(Request::Release(user.clone(), counted));
    }

    fn cluster_query(&self, query: ClusterQuery) -> Option<(StatusCode, String)> {
        let mut reads = self.shared.reads();
        if reads.len() >= self.shared.config.max_pending_reads {
            drop(reads);
            add(&self.shared.counters.reads_refused, 1);
            return Some((StatusCode(503), r#"{"error":"busy"}"#.to_string()));
        }
        reads.push_back(Request::Query(query));
        None
    }

    fn health(&self) -> Health {
        let shared = &self.shared;
        let up = shared.publisher_up.load(Ordering::Relaxed)
            && shared.subscriber_up.load(Ordering::Relaxed);
        match up {
            true => Health::Healthy,
            false => Health::Degraded("redis unreachable"),
        }
    }

    fn write_metrics(&self, out: &mut String) {
        self.stats().write_prometheus(out, self.subscribed_rooms());
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The publisher ends when the queue's last sender is gone, the subscriber at its next
        // poll.
        self.queue = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker whose Redis is never reached (nothing listens on port 1 of loopback).
    fn unreachable(publish_queue_bytes: usize) -> RedisBroker {
        let config = RedisConfig {
            publish_queue_bytes,
            ..RedisConfig::new("redis://127.0.0.1:1")
        };
        RedisBroker::start(config).unwrap()
    }

    #[test]
    fn a_message_past_the_queues_byte_bound_is_dropped_at_once_without_waiting() {
        let broker = unreachable(64);
        let room: Arc<str> = Arc::from("lobby");
        broker.publish(&room, &Message::Binary(vec![0; 100].into()));
        assert_eq!(broker.stats().publish_dropped, 1);
        assert_eq!(broker.shared.queued_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_bad_url_is_refused_at_start() {
        let error = RedisBroker::start(RedisConfig::new("http://127.0.0.1")).unwrap_err();
        assert!(matches!(error, StartError::Url(_)), "{error}");
    }

    #[test]
    fn dropping_the_broker_stops_its_threads() {
        let started = Instant::now();
        drop(unreachable(1 << 20));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
