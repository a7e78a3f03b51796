//! The receiving side: one thread with one pub/sub connection, subscribed to the channels of
//! the rooms this instance has members in ([`crate::interest`]) and to no others, so an
//! instance receives the messages of its own rooms, not the cluster's; and a second, plain
//! connection for reads of rooms' histories ([`crate::reader`]), which this thread serves too,
//! so a read and the live messages it meets are put in one order. On a Redis Cluster the
//! pub/sub connection is one sharded connection per master (`SSUBSCRIBE`, each room's channel
//! on the master owning its slot), and the plain one sends each read to the room's master.
//!
//! A recorded message received is delivered to the server's [`ws_mio_server::Delivery`]
//! (rendered and encoded once, bounded worker inboxes) unless this instance delivered its
//! offset already, and kept in the instance's cache of its rooms' recent history
//! ([`ws_mio_server::history::Histories`]), from which most reads are answered without a round
//! trip. Any other message is delivered unless it is this instance's own, which its members had
//! at once.
//!
//! The thread waits for messages at most 20 ms (`POLL`) at a time, then looks for interest
//! changes and reads: a room joined here is subscribed within about that long, and a joining
//! connection's read is answered right after its room's subscription is confirmed (one taken
//! before waits for it), so nothing published from the moment of the read on can be missed. One SUBSCRIBE or UNSUBSCRIBE per
//! room, each waiting for Redis's confirmation; meanwhile the messages of the rooms already
//! subscribed keep coming, and the client holds them until they are read, right after.
//!
//! Redis forgets subscriptions with the connection: after a loss the thread reconnects after a
//! jittered backoff, subscribes every wanted room again, and then catches up each room it has
//! a history of: the messages published while it was away are read from the room's stream and
//! delivered, in order, so the members here miss nothing Redis kept. While it is away, reads
//! are answered at once as unavailable, so joining connections still get this instance's live
//! messages. What Redis holds for a subscriber that does not keep up is bounded by its
//! `client-output-buffer-limit pubsub`, past which Redis drops the connection and the same
//! reconnection follows.

use crate::backoff::{Backoff, Jitter};
use crate::channels::{Channels, Listener};
use crate::envelope::{Envelope, Kind};
use crate::link::Link;
use crate::reader::{self, READ_SCRIPT};
use crate::seeds::Seeds;
use crate::stats::add;
use crate::{queries, quota, Request, Shared};
use redis::{Msg, RedisResult, Script};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use ws_mio_server::history::{Answer, Outcome, Page, Position, Read, Want};
use ws_proto::{Message, StatusCode};

/// Reads served between two looks at the pub/sub connection at most.
const READS_PER_TURN: usize = 256;

pub(crate) fn run(shared: Arc<Shared>, client: Seeds) {
    let config = &shared.config;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut jitter = Jitter::new();
    let script = Script::new(READ_SCRIPT);
    let live = Script::new(queries::LIVE_SCRIPT);
    let quota = Script::new(quota::CLAIM_SCRIPT);
    while !shared.stopping() {
        match Listener::connect(&client, config.command_timeout) {
            Ok(mut con) => {
                add(&shared.counters.connects, 1);
                backoff.reset();
                tracing::info!("redis subscriber connected");
                let mut reads = Reads {
                    shared: &shared,
                    client: &client,
                    script: &script,
                    live: &live,
                    quota: &quota,
                    data: None,
                };
                if let Err(error) = listen(&shared, &mut con, &mut reads) {
                    add(&shared.counters.connection_errors, 1);
                    tracing::warn!(%error, "redis subscriber connection lost; reconnecting");
                }
            }
            Err(error) => {
                add(&shared.counters.connection_errors, 1);
                tracing::warn!(%error, "redis subscriber cannot connect");
            }
        }
        shared.subscriber_up.store(false, Ordering::Relaxed);
        // A new connection starts with no subscription.
        shared.subscribed().clear();
        shared.interest.resync();
        let until = Instant::now() + backoff.next_delay(jitter.next());
        while !shared.stopping() && Instant::now() < until {
            answer_unavailable(&shared);
            shared.pause(crate::POLL);
        }
    }
    answer_unavailable(&shared);
}

/// Follows the interest, serves reads and delivers messages until the connection fails or the
/// broker stops.
fn listen(shared: &Shared, con: &mut Listener, reads: &mut Reads<'_>) -> RedisResult<()> {
    let mut pubsub = con.channels(shared.config.command_timeout)?;
    let subscribed = follow_interest(shared, &mut pubsub)?;
    reads.load_presence(&subscribed);
    shared.subscriber_up.store(true, Ordering::Relaxed);
    reads.catch_up();
    while !shared.stopping() {
        let subscribed = follow_interest(shared, &mut pubsub)?;
        reads.load_presence(&subscribed);
        reads.serve();
        pubsub.set_read_timeout(Some(crate::POLL))?;
        // What came meanwhile first, then wait a poll at most.
        loop {
            match pubsub.get_message() {
                Ok(message) => receive(shared, &message),
                Err(error) if error.is_timeout() => break,
                Err(error) => return Err(error),
            }
            if shared.interest.pending() || shared.has_reads() {
                break;
            }
        }
    }
    Ok(())
}

/// Subscribes the rooms newly wanted and unsubscribes those no longer wanted (forgetting what
/// the cache and the presence replica hold of them); the rooms newly subscribed.
fn follow_interest(shared: &Shared, pubsub: &mut Channels<'_>) -> RedisResult<Vec<Arc<str>>> {
    let changes = shared.interest.take_changes(&shared.subscribed());
    let Some(changes) = changes else {
        return Ok(Vec::new());
    };
    // Confirmations may take longer than a poll.
    pubsub.set_read_timeout(Some(shared.config.command_timeout))?;
    for room in &changes.subscribe {
        pubsub.subscribe(shared.names.channel(room))?;
        shared.subscribed().insert(room.clone());
    }
    for room in changes.unsubscribe {
        pubsub.unsubscribe(shared.names.channel(&room))?;
        shared.subscribed().remove(&room);
        shared.cache.forget(&room);
        shared.replica.forget(&room);
        shared.marks.forget(&room);
    }
    Ok(changes.subscribe)
}

/// One message from Redis: delivered here unless it is not ours, or was delivered already.
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
    let Some(delivery) = shared.delivery.get() else {
        return;
    };
    if envelope.kind == Kind::Mark {
        let mark = String::from_utf8_lossy(envelope.message.as_bytes());
        let Some((Ok(offset), user)) = mark.split_once(' ').map(|(o, u)| (o.parse(), u)) else {
            return add(&counters.received_invalid, 1);
        };
        return shared.marks.set(&room, user, offset);
    }
    if envelope.kind == Kind::Presence {
        let change = String::from_utf8_lossy(envelope.message.as_bytes());
        let (present, user) = match change.split_at_checked(1) {
            Some(("+", user)) => (true, user),
            Some(("-", user)) => (false, user),
            _ => return add(&counters.received_invalid, 1),
        };
        return shared
            .replica
            .change(&room, envelope.instance, user, present);
    }
    if envelope.kind == Kind::Close {
        if envelope.instance == shared.instance {
            return add(&counters.received_own, 1);
        }
        let order = String::from_utf8_lossy(envelope.message.as_bytes());
        let (code, reason) = order.split_once(' ').unwrap_or((&order, ""));
        let Ok(code) = code.parse::<u16>() else {
            return add(&counters.received_invalid, 1);
        };
        return delivery.close_room(&room, ws_proto::CloseCode(code), reason);
    }
    match &envelope.position {
        Some(position) => deliver_recorded(shared, &room, position, &envelope.message),
        None if envelope.instance == shared.instance => add(&counters.received_own, 1),
        None => {
            delivery.publish(&room, &envelope.message);
            add(&counters.delivered, 1);
        }
    }
}

/// A recorded message, to this instance's members and its cache, unless delivered already.
fn deliver_recorded(shared: &Shared, room: &str, position: &Position, payload: &Message) {
    if !shared.cache.is_new(room, position) {
        add(&shared.counters.received_again, 1);
        return;
    }
    let Some(delivery) = shared.delivery.get() else {
        return;
    };
    let rendered = delivery.deliver_recorded(room, Some(position), payload);
    add(&shared.counters.delivered, 1);
    shared
        .cache
        .keep(room, position, rendered, std::time::Duration::ZERO);
}

/// While Redis is out of reach: every read and question waiting is answered as unavailable.
fn answer_unavailable(shared: &Shared) {
    let Some(delivery) = shared.delivery.get() else {
        return;
    };
    while let Some(request) = shared.next_read() {
        match request {
            Request::Read(read) => delivery.answer(Answer {
                read,
                page: Page::unavailable(),
                mark: None,
            }),
            Request::Query(query) => delivery.reply(&query, StatusCode(503), unavailable()),
            // Admitted unchecked while Redis is out of reach; counted again at the next change.
            Request::Claim(_) | Request::Release(..) => {}
        }
    }
}

fn unavailable() -> String {
    r#"{"error":"redis unreachable"}"#.to_string()
}

/// The reads' side of the thread: a plain connection, made when first needed.
struct Reads<'a> {
    shared: &'a Shared,
    client: &'a Seeds,
    script: &'a Script,
    live: &'a Script,
    quota: &'a Script,
    data: Option<Link>,
}

impl Reads<'_> {
    /// The connection for reads, made if need be.
    fn connection(&mut self) -> RedisResult<&mut Link> {
        if self.data.is_none() {
            let timeout = self.shared.config.command_timeout;
            let mut con = Link::connect(self.client, timeout)?;
            con.set_read_timeout(Some(timeout))?;
            con.set_write_timeout(Some(timeout))?;
            self.data = Some(con);
        }
        Ok(self.data.as_mut().expect("made above"))
    }

    /// What Redis holds of `room` for `want`, the messages rendered; `None` when Redis could
    /// not be read (the connection is dropped, to be made again).
    fn fetch(&mut self, room: &str, want: &Want) -> Option<(Page, Vec<u64>)> {
        let shared = self.shared;
        let script = self.script;
        let stored = self
            .connection()
            .and_then(|con| reader::read(con, script, shared, room, want));
        let stored = match stored {
            Ok(stored) => stored,
            Err(error) => {
                add(&shared.counters.read_errors, 1);
                tracing::warn!(%error, room, "redis history read failed");
                self.data = None;
                return None;
            }
        };
        let offsets = stored.entries.iter().map(|(o, _)| *o).collect();
        let delivery = shared.delivery.get()?;
        let render = |at: &Position, m: &Message| delivery.render(room, Some(at), m);
        Some((reader::page(want, stored, render), offsets))
    }

    /// Loads the presence and read marks of rooms just subscribed (changes published from
    /// now on come on their channels). A room whose state cannot be read is followed from its
    /// changes.
    fn load_presence(&mut self, rooms: &[Arc<str>]) {
        let shared = self.shared;
        for room in rooms {
            let who = shared.names.who_key(room);
            let reads = shared.names.reads_key(room);
            let state = self.connection().and_then(|con| {
                let fields: Vec<String> = redis::cmd("HKEYS").arg(who).query(con)?;
                let marks: Vec<(String, u64)> = redis::cmd("HGETALL").arg(reads).query(con)?;
                Ok((fields, marks))
            });
            match state {
                Ok((fields, marks)) => {
                    shared.replica.load(room, &fields);
                    shared.marks.load(room, marks);
                }
                Err(error) => {
                    tracing::warn!(%error, %room, "redis presence read failed");
                    self.data = None;
                    shared.replica.load(room, &[]);
                    shared.marks.load(room, Vec::new());
                }
            }
        }
    }

    /// Answers the reads and questions waiting, a bounded number of them.
    fn serve(&mut self) {
        for _ in 0..READS_PER_TURN {
            let Some(request) = self.shared.next_read() else {
                return;
            };
            if self.must_wait(&request) {
                // Back to the front: served next turn, once the subscriptions are made.
                return self.shared.read_again(request);
            }
            let Some(delivery) = self.shared.delivery.get() else {
                return;
            };
            match request {
                Request::Read(read) => {
                    let page = self.answer(&read);
                    let mark = match (&read.user, read.join) {
                        (Some(user), true) => self.shared.marks.get(&read.room, user),
                        _ => None,
                    };
                    delivery.answer(Answer { read, page, mark });
                }
                Request::Claim(claim) => {
                    let (shared, script) = (self.shared, self.quota);
                    let total = self.connection().and_then(|con| {
                        quota::count(con, script, shared, &claim.user, claim.counted)
                    });
                    match total {
                        Ok(total) if quota::over(&claim, total) => {
                            add(&shared.counters.claims_refused, 1);
                            delivery.refuse(&claim);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            // Admitted unchecked rather than refused for an unreachable Redis.
                            tracing::warn!(%error, "redis connection claim failed");
                            self.data = None;
                        }
                    }
                }
                Request::Release(user, counted) => {
                    let (shared, script) = (self.shared, self.quota);
                    let written = self
                        .connection()
                        .and_then(|con| quota::count(con, script, shared, &user, counted));
                    if let Err(error) = written {
                        tracing::warn!(%error, "redis connection release failed");
                        self.data = None;
                    }
                }
                Request::Query(query) => {
                    let shared = self.shared;
                    let scripts = (self.script, self.live);
                    let answer = self
                        .connection()
                        .and_then(|con| queries::answer(con, scripts, shared, &query.ask));
                    match answer {
                        Ok(body) => delivery.reply(&query, StatusCode::OK, body),
                        Err(error) => {
                            tracing::warn!(%error, "redis admin query failed");
                            self.data = None;
                            delivery.reply(&query, StatusCode(503), unavailable());
                        }
                    }
                }
            }
        }
    }

    /// Whether a request must wait for the next turn's subscriptions: a join's read of a
    /// room wanted here but not subscribed yet (the worker marks the room wanted before it
    /// asks, and the subscriber may look in between). Answered first, it would miss what is
    /// published between the read and the subscription, and so would its connection.
    fn must_wait(&self, request: &Request) -> bool {
        let Request::Read(read) = request else {
            return false;
        };
        let subscribed = self.shared.subscribed().contains(&*read.room);
        read.join && !subscribed && self.shared.interest.wants(&read.room)
    }

    fn answer(&mut self, read: &Read) -> Page {
        let shared = self.shared;
        if let Some(page) = shared.cache.cached(&read.room, &read.want) {
            add(&shared.counters.reads_cached, 1);
            return page;
        }
        add(&shared.counters.reads_fetched, 1);
        let Some((page, offsets)) = self.fetch(&read.room, &read.want) else {
            return Page::unavailable();
        };
        // A room subscribed here with nothing cached yet starts its cache from this read; once
        // it has one, live messages extend it, and reads that reach further back fetch.
        let subscribed = shared.subscribed().contains(&*read.room);
        let fresh = shared.cache.last(&read.room).is_none();
        if let (true, true, Outcome::Recovered, Some(position)) =
            (subscribed, fresh, page.outcome, &page.position)
        {
            if offsets.len() == page.messages.len() {
                let base = match &read.want {
                    Want::Since(since) => since.offset,
                    Want::Last(_) => offsets.first().map_or(position.offset, |o| o - 1),
                    Want::Position => position.offset,
                };
                let kept = offsets.iter().copied().zip(page.messages.iter().cloned());
                let when = std::time::Duration::ZERO;
                let (epoch, last) = (&position.epoch, position.offset);
                shared
                    .cache
                    .fill(&read.room, epoch, base, last, kept.collect(), when);
            }
        }
        page
    }

    /// After a reconnect: each room with a history here gets the messages published while
    /// this instance was away, as Redis kept them.
    fn catch_up(&mut self) {
        let shared = self.shared;
        let rooms: Vec<_> = shared.subscribed().iter().cloned().collect();
        for room in rooms {
            let Some(last) = shared.cache.last(&room) else {
                continue;
            };
            let want = Want::Since(last.clone());
            let Some((page, offsets)) = self.fetch(&room, &want) else {
                return;
            };
            let Some(position) = page.position.clone() else {
                continue;
            };
            if page.outcome != Outcome::Recovered {
                // Lost (Redis lost its data: a new epoch; or too much was missed): the members
                // here cannot be given what they missed; the next live message starts afresh.
                add(&shared.counters.catch_up_lost, 1);
                shared.cache.forget(&room);
                continue;
            }
            let Some(delivery) = shared.delivery.get() else {
                return;
            };
            for (offset, rendered) in offsets.into_iter().zip(page.messages) {
                let at = Position {
                    epoch: position.epoch.clone(),
                    offset,
                };
                if shared.cache.is_new(&room, &at) {
                    delivery.deliver_rendered(&room, &at, rendered.clone());
                    shared
                        .cache
                        .keep(&room, &at, rendered, std::time::Duration::ZERO);
                    add(&shared.counters.caught_up, 1);
                }
            }
        }
    }
}
