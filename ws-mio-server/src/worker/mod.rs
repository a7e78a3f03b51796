//! One worker: everything a worker decides, with no I/O. It owns its connections (each a
//! [`driver::Driver`]), its index of local room members, its timer wheel and its queues, and is
//! driven in the manner of ws-proto's `Connection`: input goes in as bytes, end of stream and
//! the time ([`Worker::accept`], [`Worker::receive`], [`Worker::receive_eof`],
//! [`Worker::handle_time`], [`Worker::handle_remote`]); output comes out as bytes to write
//! ([`Worker::poll_dirty`], [`Worker::transmit_io_slices`], [`Worker::advance_transmit`],
//! [`Worker::written`]), socket orders ([`Worker::poll_io`]), messages for other workers
//! ([`Worker::poll_outbound`]) and the next deadline ([`Worker::poll_timeout`]).
//!
//! After any input, the caller drains in this order until all are empty: `poll_io` (read a
//! resumed connection, close a finished one), then `poll_dirty` (write each connection's
//! queue, then call `written`), then `poll_outbound`. [`event_loop`] does this over mio
//! sockets; [`crate::testing`] does it in memory on pretend time.
//!
//! The modules, in the order a connection meets them: [`admission`] (limits) and
//! [`handshake_rate`] (attempts per client), [`proxied`] (the client behind a trusted proxy:
//! the PROXY header, `X-Forwarded-For`), [`upgrade`] (the
//! HTTP request: an upgrade, a refusal or a plain answer), [`admin`] (the admin listener's
//! answers: metrics, health, readiness), [`driver`] (one connection's state
//! and decisions), [`dispatch`] (engine events to the handler, its commands carried out),
//! [`fanout`] (rooms, encode once, compress once), [`timers`] (heartbeats and deadlines),
//! [`drain`] (graceful shutdown), [`budget`] (the server's memory budget), [`remote`] (what
//! crosses between workers). Below the worker, in the I/O layer: [`transport`] (a socket, or
//! [`tls_transport`] over it for wss), which hands the worker plaintext either way.

mod admin;
mod admin_api;
pub(crate) mod admission;
mod budget;
mod dispatch;
mod drain;
pub(crate) mod driver;
pub(crate) mod event_loop;
mod fanout;
pub(crate) mod handshake_rate;
mod proxied;
mod recorded;
pub(crate) mod remote;
mod timers;
mod tls_transport;
mod transport;
mod upgrade;

use crate::broker::{Broker, Delivery, Local, Renderers};
use crate::config::any_contains;
use crate::config::Config;
use crate::handler::{CloseInfo, Command, ConnId, Handler};
use crate::history::Histories;
use crate::metrics::{add, Metrics, WorkerMetrics};
use crate::restart::Spread;
use crate::rooms::{RoomLimits, RoomRegistry};
use crate::timer::TimerWheel;
use crate::users::{user_room, Users};
use admission::{Admission, Refusal, Reservation};
use driver::{AfterWrite, Driver};
use fanout::RoomIndex;
use handshake_rate::HandshakeRate;
use remote::Remote;
use slab::Slab;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use ws_proto::deflate::DeflateConfig;
use ws_proto::handshake::server::ServerHandshake;
use ws_proto::handshake::HandshakeLimits;
use ws_proto::CloseCode;

/// A connection's key: its slot in the worker, and the I/O layer's token for its socket.
pub(crate) type Key = usize;

/// What one connection's input may cost in one turn: the bytes read plus the bytes they
/// inflated to. Past it, the rest of its input waits for its next turn, after every other
/// ready connection had its own: one connection cannot hold its worker longer than this costs,
/// however much it sends or however far its input inflates.
pub(crate) const TURN_BUDGET: usize = 256 << 10;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The public one: WebSocket upgrades and the application's plain HTTP.
    Public,
    /// The admin one: `/metrics`, `/healthz` and `/readyz`, nothing else ([`admin`]).
    Admin,
}

/// Admin connections open at once on a worker; more are refused with 503. Scrapers and
/// probes need a few; the cap keeps a misbehaving one from holding memory.
const MAX_ADMIN_CONNECTIONS: usize = 16;

/// An order for the I/O layer about one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Io {
    /// Read it until it would block: it was paused and may be read again (no readiness event
    /// will come for what already waits in the kernel).
    Read(Key),
    /// The connection is gone: close its socket.
    Close(Key),
}

/// What a worker shares with the others and the server handle.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) config: Arc<Config>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) handshakes: Arc<HandshakeRate>,
    pub(crate) rooms: Arc<RoomRegistry>,
    pub(crate) metrics: Metrics,
    /// Told of this instance's interest in rooms (by the registry) and of its publishes.
    pub(crate) broker: Arc<dyn Broker>,
    /// Every worker's inbox, for recorded messages: they reach this worker's members through
    /// its inbox too, in the order of their offsets.
    pub(crate) delivery: Delivery,
    /// Rooms' histories, when the broker does not keep them.
    pub(crate) history: Arc<Histories>,
    /// The users connected here, each a room of its connections.
    pub(crate) users: Arc<Users>,
    pub(crate) workers: usize,
    /// Seeds each worker's random source (a fixed one on pretend time, for repeatable tests).
    pub(crate) seed: u64,
}

impl Services {
    /// The services of `workers` workers reached through `peers`, recorded messages rendered
    /// by `render`.
    pub(crate) fn new(
        config: Arc<Config>,
        (peers, renderers): (Arc<[remote::Peer]>, Renderers),
        broker: Option<Arc<dyn Broker>>,
    ) -> Services {
        let workers = peers.len();
        let broker = broker.unwrap_or_else(|| Arc::new(Local));
        let metrics = Metrics::new(workers);
        let rooms = Arc::new(RoomRegistry::with_broker(
            RoomLimits {
                rooms: config.max_rooms,
                members: config.max_room_members,
                per_connection: config.max_rooms_per_connection,
            },
            broker.clone(),
        ));
        Services {
            delivery: Delivery::new((peers, metrics.clone()), renderers, rooms.clone()),
            history: Arc::new(Histories::new(config.history_limits())),
            users: Arc::new(Users::new(broker.clone())),
            admission: Arc::new(Admission::new(
                config.max_connections,
                config.max_connections_per_ip,
                config.ipv6_prefix_len,
            )),
            handshakes: Arc::new(HandshakeRate::new(&config)),
            rooms,
            metrics,
            broker,
            workers,
            seed: crate::restart::process_seed(),
            config,
        }
    }
}

pub(crate) struct Worker<H: Handler> {
    index: u16,
    handler: Arc<H>,
    services: Services,
    config: Arc<Config>,
    ws_config: ws_proto::Config,
    deflate: Option<DeflateConfig>,
    metrics: Arc<WorkerMetrics>,
    conns: Slab<Driver<H::Conn>>,
    fanout: RoomIndex,
    timers: TimerWheel,
    next_generation: u32,
    dirty: Vec<Key>,
    io: VecDeque<Io>,
    outbound: VecDeque<(usize, Remote)>,
    /// The handler's commands, kept between calls for their allocation.
    commands: Vec<Command>,
    /// The timer entries due, kept between turns for their allocation.
    expired: Vec<crate::timer::Expired>,
    now: Duration,
    /// What the connection being read may still cost this turn (see [`TURN_BUDGET`]).
    turn_left: usize,
    drain_deadline: Option<Duration>,
    /// Connections from the admin listener open now.
    admin_open: usize,
    /// Draws each connection's reconnect delay when the worker drains.
    spread: Spread,
}

/// Input.
impl<H: Handler> Worker<H> {
    pub(crate) fn new(index: usize, handler: Arc<H>, services: Services) -> Worker<H> {
        let config = services.config.clone();
        let spread = Spread::new(services.seed ^ index as u64);
        let ws_config = ws_proto::Config {
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            close_timeout: config.close_timeout,
            // Past the high-water mark a non-reading peer's pings get one pong, the latest.
            coalesce_pongs_above: config.high_water_mark,
            ..ws_proto::Config::default()
        };
        Worker {
            index: index as u16,
            handler,
            metrics: services.metrics.worker(index),
            deflate: config.deflate(),
            ws_config,
            config,
            services,
            conns: Slab::new(),
            fanout: RoomIndex::default(),
            timers: TimerWheel::new(Duration::from_millis(10), 4096),
            next_generation: 0,
            dirty: Vec::new(),
            io: VecDeque::new(),
            outbound: VecDeque::new(),
            commands: Vec::new(),
            expired: Vec::new(),
            now: Duration::ZERO,
            turn_left: 0,
            drain_deadline: None,
            admin_open: 0,
            spread,
        }
    }

    /// A new TCP connection from `peer` on the `origin` listener: its key, or the answer to
    /// write before closing it when a limit refuses it. Admin connections have a small cap of
    /// their own and count in none of the public limits or gauges, so a server full of clients
    /// can still be watched. A direct client is counted against the handshake rate and its
    /// address now; a trusted proxy's connection against the total only, and against its
    /// client once the proxy says who that is ([`proxied`]).
    pub(crate) fn accept(
        &mut self,
        peer: SocketAddr,
        origin: Listener,
        now: Duration,
    ) -> Result<Key, Vec<u8>> {
        self.now = now;
        let mut proxy_header = false;
        let reservation = match origin {
            Listener::Public => {
                add(&self.metrics.connections_accepted_total, 1);
                let trusted = any_contains(&self.config.trusted_proxies, peer.ip());
                let admitted = match self.check_rate(peer.ip(), trusted) {
                    Ok(()) => self.reserve(peer.ip(), trusted),
                    Err(refusal) => Err(refusal),
                };
                match admitted {
                    Ok(reservation) => {
                        proxy_header = trusted && self.config.proxy_protocol;
                        Some(reservation)
                    }
                    Err(refusal) => {
                        self.count_refusal(refusal);
                        return Err(refusal.response().encode());
                    }
                }
            }
            Listener::Admin if self.admin_open >= MAX_ADMIN_CONNECTIONS => {
                return Err(Refusal::Unavailable.response().encode());
            }
            Listener::Admin => {
                self.admin_open += 1;
                None
            }
        };
        if reservation.is_some() {
            self.metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let limits = HandshakeLimits {
            max_head_bytes: self.config.max_handshake_size,
            ..HandshakeLimits::default()
        };
        let driver = Driver::new(
            peer,
            origin,
            reservation,
            (
                self.next_generation,
                ServerHandshake::new(limits),
                proxy_header,
            ),
            now,
            &self.config,
        );
        let key = self.conns.insert(driver);
        self.arm_timer(key);
        Ok(key)
    }

    /// A direct client's handshake attempt against its rate (a trusted proxy's connection is
    /// counted for its client, once known).
    fn check_rate(&self, ip: IpAddr, trusted: bool) -> Result<(), Refusal> {
        if trusted {
            return Ok(());
        }
        let client = self.services.admission.client(ip);
        self.services
            .handshakes
            .attempt(client, self.now)
            .map_err(Refusal::RateLimited)
    }

    /// A place in the total, and for a direct client in its address's count.
    fn reserve(&self, ip: IpAddr, trusted: bool) -> Result<Reservation, Refusal> {
        // Draining or over the memory budget: like a full server.
        let unavailable = self.drain_deadline.is_some() || self.over_budget();
        let admission = &self.services.admission;
        let mut reservation = admission.reserve(unavailable)?;
        if !trusted {
            if let Err(refusal) = admission.reserve_address(&mut reservation, ip) {
                admission.release(reservation);
                return Err(refusal);
            }
        }
        Ok(reservation)
    }

    fn count_refusal(&self, refusal: Refusal) {
        match refusal {
            Refusal::RateLimited(_) => add(&self.metrics.handshakes_rate_limited_total, 1),
            Refusal::Unavailable | Refusal::TooManyFromAddress => {
                add(&self.metrics.connections_refused_total, 1)
            }
        }
    }

    /// Bytes read from `key`'s socket (the buffer may be unmasked in place), charged with what
    /// they inflate to against `budget`, what the connection may still cost this turn (see
    /// [`TURN_BUDGET`]). When it runs out, the rest of `data` is kept for the next turn
    /// ([`Self::input_waits`]).
    pub(crate) fn receive(&mut self, key: Key, data: &mut [u8], now: Duration, budget: &mut usize) {
        self.now = now;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        add(&self.metrics.bytes_in_total, data.len() as u64);
        conn.last_input = now;
        self.turn_left = *budget;
        if conn.is_open() {
            self.receive_frames(key, data);
        } else {
            self.turn_left = self.turn_left.saturating_sub(data.len());
            self.receive_request(key, data);
        }
        *budget = std::mem::take(&mut self.turn_left);
        self.after_input(key);
    }

    /// Input kept for this turn because an earlier turn's budget ran out, taken now against
    /// `budget` (none is taken while reading is paused by backpressure; [`Self::written`]
    /// resumes it then).
    pub(crate) fn resume_input(&mut self, key: Key, now: Duration, budget: &mut usize) {
        if !self.input_waits(key) {
            return;
        }
        self.now = now;
        self.turn_left = *budget;
        self.receive_unread(key);
        *budget = std::mem::take(&mut self.turn_left);
        self.after_input(key);
    }

    /// Whether input read earlier waits to be taken in `key`'s next turn.
    pub(crate) fn input_waits(&self, key: Key) -> bool {
        self.conns.get(key).is_some_and(Driver::input_waits)
    }

    fn after_input(&mut self, key: Key) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.check_backpressure(self.config.high_water_mark);
        }
        self.account(key);
        self.enforce_budget();
    }

    /// The peer ended its stream. It may have closed only its sending side: what is queued for
    /// it (replies to what it sent last, the reply to its close frame) still goes out if the
    /// socket takes it now; whatever would have to wait is dropped with the connection.
    pub(crate) fn receive_eof(&mut self, key: Key, now: Duration) {
        self.now = now;
        if let Some(conn) = self.conns.get_mut(key) {
            conn.eof = true;
            self.mark_dirty(key);
        }
    }

    /// The socket failed: the connection ends now.
    pub(crate) fn transport_failed(&mut self, key: Key) {
        if let Some(conn) = self.conns.get_mut(key) {
            let (code, clean) = conn.lost_code();
            self.remove(key, code, clean);
        }
    }

    /// Moves time to `now`: timers due fire, a drain past its deadline ends.
    pub(crate) fn handle_time(&mut self, now: Duration) {
        self.now = now;
        self.fire_timers();
        self.check_drain();
        self.enforce_budget();
    }

    /// A message from another worker or the server handle.
    pub(crate) fn handle_remote(&mut self, remote: Remote, now: Duration) {
        self.now = now;
        match remote {
            Remote::Publish(room, message) => self.deliver(&room, &message),
            Remote::Command(command) => self.apply_local(command),
            Remote::Answer(answer) => self.answered(*answer),
            Remote::CloseRoom(room, code, reason) => self.close_room(&room, code, &reason),
            Remote::Reply(to, response) => {
                if let Some(key) = self.local_key(to) {
                    self.answer(key, response.encode());
                }
            }
            Remote::Shutdown => self.begin_drain(),
        }
    }
}

/// Output.
impl<H: Handler> Worker<H> {
    /// The next order for the I/O layer.
    pub(crate) fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// A connection with bytes to write (or a decision to take after trying).
    pub(crate) fn poll_dirty(&mut self) -> Option<Key> {
        let key = self.dirty.pop()?;
        if let Some(conn) = self.conns.get_mut(key) {
            conn.dirty = false;
        }
        Some(key)
    }

    /// The slices to write to `key`'s socket next.
    pub(crate) fn transmit_io_slices<'a>(&'a self, key: Key, dst: &mut [IoSlice<'a>]) -> usize {
        self.conns
            .get(key)
            .map_or(0, |conn| conn.transmit_io_slices(dst))
    }

    /// `n` bytes of those slices were written.
    pub(crate) fn advance_transmit(&mut self, key: Key, n: usize) {
        add(&self.metrics.bytes_out_total, n as u64);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.advance_transmit(n);
        }
    }

    /// The socket took what it would: the connection may be done, or may be read again.
    pub(crate) fn written(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let queued = conn.queued();
        let delta = queued as i64 - conn.reported_queue as i64;
        conn.reported_queue = queued;
        self.metrics
            .queued_bytes
            .fetch_add(delta, Ordering::Relaxed);
        let backlog_started = conn.track_backlog(self.now, self.config.high_water_mark);
        self.account(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.after_write(self.config.high_water_mark) {
            AfterWrite::Continue if backlog_started => self.arm_timer(key),
            AfterWrite::Continue => {}
            AfterWrite::Resume => {
                // What waits in the engine first; then what was read and kept, and the
                // socket, in a turn of the connection's own (its budget applies).
                self.process(key);
                if self.wants_read(key) || self.input_waits(key) {
                    self.io.push_back(Io::Read(key));
                }
            }
            AfterWrite::Done(code, clean) => self.remove(key, code, clean),
        }
    }

    /// The I/O layer's transport holds `bytes` for `key` (TLS): counted in what the
    /// connection holds, and so in the memory budget.
    pub(crate) fn transport_holds(&mut self, key: Key, bytes: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.transport_held != bytes {
            conn.transport_held = bytes;
            self.account(key);
        }
    }

    /// The heap bytes held for `key` (see [`Driver::held`]).
    pub(crate) fn held(&self, key: Key) -> usize {
        self.conns.get(key).map_or(0, Driver::held)
    }

    /// Whether `key`'s socket should be read now (not paused by backpressure, not ending).
    pub(crate) fn wants_read(&self, key: Key) -> bool {
        self.conns.get(key).is_some_and(Driver::wants_read)
    }

    /// A message from [`Self::poll_outbound`] was dropped: worker `to`'s inbox was full.
    pub(crate) fn inbox_full(&self, to: usize) {
        add(&self.services.metrics.worker(to).inbox_drops_total, 1);
    }

    /// A message for worker `index`.
    pub(crate) fn poll_outbound(&mut self) -> Option<(usize, Remote)> {
        self.outbound.pop_front()
    }

    /// When to call [`Self::handle_time`] next.
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        let drain = self.drain_deadline.filter(|_| !self.conns.is_empty());
        [self.timers.next_wakeup(), drain]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the worker has shut down: drained, every connection gone.
    pub(crate) fn is_finished(&self) -> bool {
        self.drain_deadline.is_some() && self.conns.is_empty()
    }

    /// Open connections (any phase).
    pub(crate) fn connections(&self) -> usize {
        self.conns.len()
    }
}

/// What every part shares: looking connections up, removing them.
impl<H: Handler> Worker<H> {
    fn id(&self, key: Key) -> Option<ConnId> {
        let conn = self.conns.get(key)?;
        Some(ConnId {
            worker: self.index,
            slot: key as u32,
            generation: conn.generation,
        })
    }

    /// The key of a connection this worker owns, if it is still the same connection.
    fn local_key(&self, id: ConnId) -> Option<Key> {
        let key = id.slot as usize;
        (id.worker == self.index && self.conns.get(key)?.generation == id.generation).then_some(key)
    }

    fn mark_dirty(&mut self, key: Key) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Drops a connection: leaves its rooms, releases its limits, tells the handler, tells
    /// the I/O layer to close the socket.
    fn remove(&mut self, key: Key, code: CloseCode, clean: bool) {
        let Some(id) = self.id(key) else { return };
        let conn = self.conns.get_mut(key).expect("id found it");
        let rooms = std::mem::take(&mut conn.rooms);
        if let Some(user) = &conn.user {
            let room = user_room(user);
            self.fanout.leave(&room, key);
            self.services.users.disconnected(&room);
            if conn.claimed {
                let counted = self.services.users.connections(user);
                self.services.broker.release(user, counted);
            }
        }
        let mut left = Vec::with_capacity(rooms.len());
        for room in rooms {
            self.fanout.leave(&room, key);
            if let Some(l) = self.services.rooms.leave(&room, id, conn.user.as_ref()) {
                left.push(l);
            }
            if self.services.rooms.member_count(&room) == 0 {
                self.services.history.emptied(&room, self.now);
            }
        }
        if conn.app.is_some() {
            self.metrics.count_close(code);
            let info = CloseInfo { code, clean, left };
            self.ask_handler(key, |handler, ctx, app| {
                if let Some(app) = app.take() {
                    handler.on_close(ctx, app, info);
                }
            });
        }
        let conn = self.conns.remove(key);
        self.io.push_back(Io::Close(key));
        self.metrics
            .queued_bytes
            .fetch_sub(conn.reported_queue as i64, Ordering::Relaxed);
        self.metrics
            .held_bytes
            .fetch_sub(conn.reported_held as i64, Ordering::Relaxed);
        // What `on_close` asked, once the connection is gone: a reply to it goes nowhere.
        self.apply_commands();
        match conn.reservation {
            Some(reservation) => {
                self.services.admission.release(reservation);
                // Last, so that a connection counted gone has left its rooms and been closed
                // by the handler.
                self.metrics
                    .connections_open
                    .fetch_sub(1, Ordering::Relaxed);
            }
            None => self.admin_open -= 1,
        }
    }
}
