//! One worker: a mio event loop that owns its listener (SO_REUSEPORT), its connections, its
//! timer wheel and its share of every room. Workers talk only through their inboxes (a channel
//! and a mio `Waker`): a room message crosses to each other worker once, not once per member.

use crate::config::{Config, SlowConsumerPolicy};
use crate::conn::{Conn, Phase};
use crate::handler::{
    CloseInfo, Command, ConnId, Context, Handler, HttpResponse, MessageRef, OpenDecision,
    OpenRequest,
};
use crate::metrics::{add, Metrics, WorkerMetrics};
use crate::slab::Slab;
use crate::timer::{Expired, TimerWheel};
use crate::Bus;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ws_proto::deflate::{compress_shared, DeflateConfig, PerMessageDeflate};
use ws_proto::handshake::server::{Accept, ServerHandshake};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{
    CloseCode, Connection, EncodedFrame, Event, InPlaceEvent, Message, ProtocolViolation, Role,
};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// The read buffer every connection of a worker shares.
const READ_BUFFER: usize = 64 << 10;

/// Slices gathered for one vectored write.
const MAX_IOVECS: usize = 64;

/// When a read loop may stop short of `WouldBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// After a read that did not fill the buffer: the socket held no more at that moment, and
    /// with edge-triggered readiness anything arriving later raises a new event. This saves a
    /// `recv` that would only say `WouldBlock`: one syscall in three when each read carries one
    /// message.
    UntilShort,
    /// Until `WouldBlock` or the end of the stream: when the event said the peer closed (or the
    /// socket failed) before it was reported, or when reading starts outside an event (a new
    /// connection, a resume after backpressure), no later event may come to find the end.
    UntilEnd,
}

/// What crosses from one worker (or the server handle) to another.
#[derive(Debug)]
pub(crate) enum Remote {
    /// Deliver to the local members of a room.
    Publish(Arc<str>, RoomMessage),
    /// A handler's command about a connection this worker owns.
    Command(Command),
    /// Start the graceful shutdown.
    Shutdown,
}

/// A room message on its way to members: encoded once without compression, and kept whole so
/// each worker can compress it once per distinct compression window among its members.
#[derive(Debug, Clone)]
pub(crate) struct RoomMessage {
    message: Message,
    plain: EncodedFrame,
}

impl RoomMessage {
    pub(crate) fn new(message: Message) -> RoomMessage {
        let plain = EncodedFrame::new(message.kind(), message.as_bytes());
        RoomMessage { message, plain }
    }
}

/// State shared by all workers, touched only when connections open and close.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) open: AtomicUsize,
    pub(crate) per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub(crate) shutdown: AtomicBool,
}

/// A worker's ways to reach the others.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) inbox: Sender<Remote>,
    pub(crate) waker: Arc<Waker>,
}

pub(crate) struct Worker<H: Handler> {
    index: u16,
    poll: Poll,
    listener: Option<TcpListener>,
    inbox: Receiver<Remote>,
    peers: Arc<[Peer]>,
    wake_peer: Vec<bool>,
    handler: Arc<H>,
    bus: Option<Arc<dyn Bus>>,
    config: Arc<Config>,
    ws_config: ws_proto::Config,
    deflate: Option<DeflateConfig>,
    shared: Arc<Shared>,
    metrics: Arc<WorkerMetrics>,
    all_metrics: Metrics,
    conns: Slab<Conn>,
    rooms: HashMap<Arc<str>, Vec<usize>>,
    timers: TimerWheel,
    next_generation: u32,
    read_buf: Vec<u8>,
    dirty: Vec<usize>,
    commands: Vec<Command>,
    start: Instant,
    now: Duration,
    drain_deadline: Option<Duration>,
}

impl<H: Handler> Worker<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        listener: TcpListener,
        inbox: Receiver<Remote>,
        peers: Arc<[Peer]>,
        handler: Arc<H>,
        bus: Option<Arc<dyn Bus>>,
        config: Arc<Config>,
        shared: Arc<Shared>,
        metrics: Metrics,
        start: Instant,
    ) -> io::Result<Worker<H>> {
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let ws_config = ws_proto::Config {
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            close_timeout: config.close_timeout,
            ..ws_proto::Config::default()
        };
        Ok(Worker {
            index: index as u16,
            poll,
            listener: Some(listener),
            inbox,
            wake_peer: vec![false; peers.len()],
            peers,
            handler,
            bus,
            ws_config,
            deflate: config.deflate(),
            shared,
            metrics: metrics.worker(index),
            all_metrics: metrics,
            conns: Slab::new(),
            rooms: HashMap::new(),
            timers: TimerWheel::new(Duration::from_millis(10), 4096),
            next_generation: 0,
            read_buf: vec![0; READ_BUFFER],
            dirty: Vec::new(),
            commands: Vec::new(),
            start,
            now: Duration::ZERO,
            drain_deadline: None,
            config,
        })
    }

    /// Runs until shutdown has drained every connection.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut expired = Vec::new();
        loop {
            let timeout = [self.timers.next_wakeup(), self.drain_deadline]
                .into_iter()
                .flatten()
                .min()
                .map(|at| at.saturating_sub(self.start.elapsed()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.now = self.start.elapsed();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => self.drain_inbox(),
                    Token(slot) => {
                        if event.is_read_closed() || event.is_error() {
                            self.read(slot, Drain::UntilEnd);
                        } else if event.is_readable() {
                            self.read(slot, Drain::UntilShort);
                        }
                        if event.is_writable() {
                            self.mark_dirty(slot);
                        }
                    }
                }
            }
            self.timers.advance(self.now, &mut expired);
            for entry in expired.drain(..) {
                self.timer_fired(entry);
            }
            if self.shared.shutdown.load(Ordering::Relaxed) && self.drain_deadline.is_none() {
                self.begin_drain();
            }
            self.flush_dirty();
            self.wake_peers();
            if let Some(deadline) = self.drain_deadline {
                if self.conns.len() == 0 || self.now >= deadline {
                    for slot in self.conns.keys() {
                        self.remove(slot, 1001, false);
                    }
                    return Ok(());
                }
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: try again on the next event.
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr) {
        add(&self.metrics.connections_accepted_total, 1);
        let refusal = self.reserve_slot(peer.ip());
        if let Some(status) = refusal {
            add(&self.metrics.connections_refused_total, 1);
            // Best effort: a fresh socket's send buffer takes this small answer whole.
            let _ =
                socket.write(&HttpResponse::text(status, "connection limit reached\n").encode());
            return;
        }
        let _ = socket.set_nodelay(true);
        let slot = self.conns.vacant_key();
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(error = %e, "register failed");
            self.release_slot(peer.ip());
            return;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let limits = HandshakeLimits {
            max_head_bytes: self.config.max_handshake_size,
            ..HandshakeLimits::default()
        };
        let conn = Conn {
            socket,
            peer,
            generation: self.next_generation,
            phase: Phase::Handshake(ServerHandshake::new(limits)),
            raw_out: Vec::new(),
            dirty: false,
            read_paused: false,
            rooms: Vec::new(),
            timer_tick: None,
            next_ping: self.now + self.config.handshake_timeout,
            pong_deadline: None,
            last_input: self.now,
            close_code: None,
            clean_close: false,
            reported_queue: 0,
        };
        self.conns.insert(conn);
        self.metrics
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        self.arm_timer(slot);
        // The request may already be waiting.
        self.read(slot, Drain::UntilEnd);
    }

    /// Counts a connection against the limits; returns the refusal status if over one.
    fn reserve_slot(&self, ip: IpAddr) -> Option<u16> {
        if self.drain_deadline.is_some() {
            return Some(503);
        }
        if self.shared.open.fetch_add(1, Ordering::Relaxed) >= self.config.max_connections {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            return Some(503);
        }
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.config.max_connections_per_ip {
            drop(per_ip);
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            return Some(429);
        }
        *count += 1;
        None
    }

    fn release_slot(&self, ip: IpAddr) {
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    fn id(&self, slot: usize) -> Option<ConnId> {
        let conn = self.conns.get(slot)?;
        Some(ConnId {
            worker: self.index,
            slot: slot as u32,
            generation: conn.generation,
        })
    }

    /// Reads until the socket is empty (as `drain` tells), the connection ends, or
    /// backpressure pauses it.
    fn read(&mut self, slot: usize, drain: Drain) {
        let mut buf = std::mem::take(&mut self.read_buf);
        while let Some(conn) = self.conns.get_mut(slot) {
            if conn.read_paused {
                break;
            }
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    self.end_of_stream(slot);
                    break;
                }
                Ok(n) => {
                    add(&self.metrics.bytes_in_total, n as u64);
                    conn.last_input = self.now;
                    self.received(slot, &mut buf[..n]);
                    if n < buf.len() && drain == Drain::UntilShort {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.transport_lost(slot);
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    /// The peer ended its stream. It may have closed only its sending side: what is queued for
    /// it (replies to what it sent last, the reply to its close frame) still goes out if the
    /// socket takes it now. Whatever would have to wait is dropped with the connection.
    fn end_of_stream(&mut self, slot: usize) {
        self.write_queued(slot);
        self.transport_lost(slot);
    }

    /// The connection can no longer be used: removed, clean only if the closing handshake
    /// completed.
    fn transport_lost(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if let Some(ws) = conn.ws() {
            ws.receive_eof();
        }
        let clean = conn.close_code.is_some() && conn.ws().is_some_and(|ws| !ws.can_send());
        let code = conn.close_code.filter(|_| clean).unwrap_or(1006);
        self.remove(slot, code, clean);
    }

    fn received(&mut self, slot: usize, data: &mut [u8]) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        match &mut conn.phase {
            Phase::Handshake(handshake) => match handshake.receive(data) {
                Ok(None) => {}
                Ok(Some((request, used))) => self.request(slot, request, &data[used..]),
                Err(e) => {
                    add(&self.metrics.handshakes_rejected_total, 1);
                    self.answer_and_close(slot, e.response());
                }
            },
            Phase::Open(_) => {
                let result = if self.handler.borrows_messages() {
                    self.receive_in_place(slot, data)
                } else {
                    conn.ws().map_or(Ok(()), |ws| ws.receive(data).map(drop))
                };
                if let Err(violation) = result {
                    add(&self.metrics.protocol_errors_total, 1);
                    if let Some(conn) = self.conns.get_mut(slot) {
                        conn.close_code = Some(violation.close_code().0);
                        tracing::debug!(peer = %conn.peer, %violation, "protocol violation");
                    }
                }
                self.process(slot);
            }
            Phase::Closing => {}
        }
    }

    fn request(&mut self, slot: usize, request: ws_proto::handshake::server::Request, rest: &[u8]) {
        if !request.is_websocket_upgrade() {
            add(&self.metrics.http_requests_total, 1);
            let response = self.handler.on_http(&request, &self.all_metrics);
            return self.answer_and_close(slot, response.encode());
        }
        let upgrade = match request.upgrade() {
            Ok(upgrade) => upgrade,
            Err(e) => {
                add(&self.metrics.handshakes_rejected_total, 1);
                return self.answer_and_close(slot, e.response());
            }
        };
        let Some(id) = self.id(slot) else { return };
        let peer = self.conns.get(slot).map(|c| c.peer).expect("slot is live");
        let mut commands = std::mem::take(&mut self.commands);
        let decision = {
            let mut ctx = Context::new(id, &mut commands);
            let open = OpenRequest {
                request: &request,
                upgrade: &upgrade,
                peer,
            };
            self.handler.on_open(&mut ctx, &open)
        };
        let mut negotiated = None;
        let response = match decision {
            OpenDecision::Accept { protocol, headers } => {
                let mut accept = Accept::new();
                if let Some(deflate) = &self.deflate {
                    if let Some((params, value)) = deflate.negotiate(upgrade.extensions()) {
                        accept = accept.extensions(&value);
                        negotiated = Some(PerMessageDeflate::new(Role::Server, params, deflate));
                    }
                }
                if let Some(p) = &protocol {
                    accept = accept.protocol(p);
                }
                for (name, value) in &headers {
                    accept = accept.header(name, value);
                }
                upgrade.accept(&accept).map_err(|e| {
                    tracing::error!(error = %e, "handler chose a subprotocol the client did not offer");
                    HttpResponse::text(500, "server error\n")
                })
            }
            OpenDecision::Reject(response) => Err(response),
        };
        match response {
            Ok(bytes) => {
                add(&self.metrics.handshakes_ok_total, 1);
                let conn = self.conns.get_mut(slot).expect("slot is live");
                conn.raw_out = bytes;
                let mut ws = Connection::server(self.ws_config.clone());
                if let Some(deflate) = negotiated {
                    add(&self.metrics.deflate_handshakes_total, 1);
                    ws = ws.with_extension(Box::new(deflate));
                }
                conn.phase = Phase::Open(ws);
                conn.next_ping = self.now + self.config.ping_interval;
                self.mark_dirty(slot);
                self.apply(&mut commands);
                self.commands = commands;
                if let Some(ws) = self.conns.get_mut(slot).and_then(Conn::ws) {
                    let _ = ws.receive(rest);
                }
                self.process(slot);
            }
            Err(rejection) => {
                commands.clear();
                self.commands = commands;
                add(&self.metrics.handshakes_rejected_total, 1);
                self.answer_and_close(slot, rejection.encode());
            }
        }
    }

    /// Writes an HTTP answer, then closes the socket.
    fn answer_and_close(&mut self, slot: usize, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.raw_out = bytes;
        conn.phase = Phase::Closing;
        conn.read_paused = true;
        self.mark_dirty(slot);
    }

    /// Takes one read's events to a handler that borrows messages: each message that arrived
    /// whole goes to it borrowed from the read buffer (its replies straight into the
    /// connection's output queue), every other event as [`Self::process`] takes it. Actions the
    /// handler queues are applied before the next event, as in [`Self::process`].
    fn receive_in_place(
        &mut self,
        slot: usize,
        mut data: &mut [u8],
    ) -> Result<(), ProtocolViolation> {
        let Some(id) = self.id(slot) else {
            return Ok(());
        };
        let mut commands = std::mem::take(&mut self.commands);
        let mut result = Ok(());
        while !data.is_empty() {
            let Some(conn) = self.conns.get_mut(slot) else {
                break;
            };
            let Conn {
                phase: Phase::Open(ws),
                pong_deadline,
                close_code,
                clean_close,
                ..
            } = conn
            else {
                break;
            };
            let mut input = ws.receive_in_place(data);
            loop {
                let message = match input.next_event() {
                    Ok(Some(InPlaceEvent::Text(text))) => Ok(MessageRef::Text(text)),
                    Ok(Some(InPlaceEvent::Binary(data))) => Ok(MessageRef::Binary(data)),
                    Ok(Some(InPlaceEvent::Other(Event::Message(message)))) => Err(message),
                    Ok(Some(InPlaceEvent::Other(other))) => {
                        other_event(other, pong_deadline, close_code, clean_close);
                        continue;
                    }
                    Ok(None) => break,
                    Err(violation) => {
                        result = Err(violation);
                        break;
                    }
                };
                add(&self.metrics.messages_in_total, 1);
                let mut ctx = Context::direct(id, &mut commands, input.connection());
                match message {
                    Ok(borrowed) => self.handler.on_message_ref(&mut ctx, borrowed),
                    Err(owned) => self.handler.on_message(&mut ctx, owned),
                }
                add(&self.metrics.messages_out_total, ctx.sent_directly);
                if !commands.is_empty() {
                    break;
                }
            }
            // Applying actions needs the whole worker: stop reading, apply, read on.
            data = input.into_rest();
            self.apply(&mut commands);
        }
        self.commands = commands;
        result
    }

    /// Takes the engine's events to the handler one at a time, applying what the handler asks
    /// for before taking the next: the engine holds back its own close frame until its events
    /// are drained, so replies to messages that came before a close still go out.
    fn process(&mut self, slot: usize) {
        let Some(id) = self.id(slot) else { return };
        let mut commands = std::mem::take(&mut self.commands);
        if let Some(ws) = self.conns.get_mut(slot).and_then(Conn::ws) {
            ws.handle_time(self.now);
        }
        while let Some(conn) = self.conns.get_mut(slot) {
            let Phase::Open(ws) = &mut conn.phase else {
                break;
            };
            let Some(event) = ws.poll_event() else { break };
            match event {
                Event::Message(message) => {
                    add(&self.metrics.messages_in_total, 1);
                    let mut ctx = Context::new(id, &mut commands);
                    self.handler.on_message(&mut ctx, message);
                    self.apply(&mut commands);
                }
                other => other_event(
                    other,
                    &mut conn.pong_deadline,
                    &mut conn.close_code,
                    &mut conn.clean_close,
                ),
            }
        }
        self.commands = commands;
        self.mark_dirty(slot);
        self.arm_timer(slot);
    }

    /// Carries out handler commands in order.
    fn apply(&mut self, commands: &mut Vec<Command>) {
        for command in commands.drain(..) {
            let target = match &command {
                Command::Send(id, _)
                | Command::Close(id, _, _)
                | Command::Join(id, _)
                | Command::Leave(id, _) => Some(*id),
                Command::Publish(..) => None,
            };
            match target {
                Some(id) if id.worker != self.index => {
                    self.forward(id.worker(), Remote::Command(command))
                }
                _ => self.apply_local(command),
            }
        }
    }

    fn local_slot(&self, id: ConnId) -> Option<usize> {
        let slot = id.slot as usize;
        (self.conns.get(slot)?.generation == id.generation).then_some(slot)
    }

    fn apply_local(&mut self, command: Command) {
        match command {
            Command::Send(id, message) => {
                let Some(slot) = self.local_slot(id) else {
                    return;
                };
                if let Some(ws) = self.conns.get_mut(slot).and_then(Conn::ws) {
                    if ws.send(&message).is_ok() {
                        add(&self.metrics.messages_out_total, 1);
                        self.mark_dirty(slot);
                    }
                }
            }
            Command::Close(id, code, reason) => {
                let Some(slot) = self.local_slot(id) else {
                    return;
                };
                self.close(slot, code, &reason);
            }
            Command::Join(id, room) => {
                let Some(slot) = self.local_slot(id) else {
                    return;
                };
                let conn = self.conns.get_mut(slot).expect("live");
                if !conn.rooms.contains(&room) {
                    conn.rooms.push(room.clone());
                    self.rooms.entry(room).or_default().push(slot);
                }
            }
            Command::Leave(id, room) => {
                let Some(slot) = self.local_slot(id) else {
                    return;
                };
                let conn = self.conns.get_mut(slot).expect("live");
                conn.rooms.retain(|r| r != &room);
                self.leave_room(slot, &room);
            }
            Command::Publish(room, message) => {
                let outgoing = RoomMessage::new(message);
                for worker in 0..self.peers.len() {
                    if worker != self.index as usize {
                        self.forward(worker, Remote::Publish(room.clone(), outgoing.clone()));
                    }
                }
                self.deliver(&room, &outgoing);
                if let Some(bus) = &self.bus {
                    bus.publish(&room, &outgoing.message);
                }
            }
        }
    }

    fn leave_room(&mut self, slot: usize, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.retain(|&m| m != slot);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Queues a room message to this worker's members: the same bytes to each member with the
    /// same compression window, compressed at most once per window.
    fn deliver(&mut self, room: &str, outgoing: &RoomMessage) {
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        let payload = outgoing.message.as_bytes();
        let level = self
            .deflate
            .filter(|d| payload.len() >= d.min_size)
            .map(|d| d.level);
        let mut compressed: [Option<EncodedFrame>; 16] = Default::default();
        let high_water = self.config.high_water_mark;
        let mut slow = Vec::new();
        for &slot in members {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            let queued = conn.queued();
            // A member that is closing gets nothing more and is not counted again.
            let Some(ws) = conn.ws().filter(|ws| ws.can_send()) else {
                continue;
            };
            if queued >= high_water {
                slow.push(slot);
                continue;
            }
            let frame = match (ws.shared_deflate_window_bits(), level) {
                (Some(bits), Some(level)) => {
                    compressed[bits as usize & 15].get_or_insert_with(|| {
                        compress_shared(outgoing.message.kind(), payload, bits, level)
                    })
                }
                _ => &outgoing.plain,
            };
            if ws.send_encoded(frame).is_ok() {
                add(&self.metrics.fanout_deliveries_total, 1);
                add(&self.metrics.messages_out_total, 1);
                if !conn.dirty {
                    conn.dirty = true;
                    self.dirty.push(slot);
                }
            }
        }
        for slot in slow {
            match self.config.slow_consumer {
                SlowConsumerPolicy::Drop => add(&self.metrics.backpressure_drops_total, 1),
                SlowConsumerPolicy::Close => {
                    add(&self.metrics.backpressure_closes_total, 1);
                    self.close(slot, CloseCode::POLICY_VIOLATION, "too slow");
                }
            }
        }
    }

    /// Starts the closing handshake from this side.
    fn close(&mut self, slot: usize, code: CloseCode, reason: &str) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(ws) = conn.ws() else { return };
        if ws.close(self.now, code, reason).is_ok() && conn.close_code.is_none() {
            conn.close_code = Some(code.0);
        }
        self.mark_dirty(slot);
        self.arm_timer(slot);
    }

    fn forward(&mut self, worker: usize, message: Remote) {
        if self.peers[worker].inbox.send(message).is_ok() {
            self.wake_peer[worker] = true;
        }
    }

    fn wake_peers(&mut self) {
        for (worker, wake) in self.wake_peer.iter_mut().enumerate() {
            if std::mem::take(wake) {
                let _ = self.peers[worker].waker.wake();
            }
        }
    }

    fn drain_inbox(&mut self) {
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                Remote::Publish(room, outgoing) => self.deliver(&room, &outgoing),
                Remote::Command(command) => self.apply_local(command),
                Remote::Shutdown => self.shared.shutdown.store(true, Ordering::Relaxed),
            }
        }
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    fn flush_dirty(&mut self) {
        // Flushing can close connections and so dirty others (their presence, say).
        while !self.dirty.is_empty() {
            let dirty = std::mem::take(&mut self.dirty);
            for slot in dirty {
                if let Some(conn) = self.conns.get_mut(slot) {
                    conn.dirty = false;
                    self.flush(slot);
                }
            }
        }
    }

    /// Writes what is queued until the socket would block or nothing is left, one system call
    /// per turn (send for a single slice, writev for several); false if the socket failed.
    fn write_queued(&mut self, slot: usize) -> bool {
        let Some(conn) = self.conns.get_mut(slot) else {
            return true;
        };
        loop {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            if !conn.raw_out.is_empty() {
                slices[0] = IoSlice::new(&conn.raw_out);
                n = 1;
            }
            if let Phase::Open(ws) = &conn.phase {
                n += ws.transmit_io_slices(&mut slices[n..]);
            }
            if n == 0 {
                break;
            }
            // One slice goes by send(2): the kernel's writev path costs more (the iovec import
            // and the file-position lock a socket does not need).
            let result = if n == 1 {
                conn.socket.write(&slices[0])
            } else {
                conn.socket.write_vectored(&slices[..n])
            };
            match result {
                Ok(0) => return false,
                Ok(mut written) => {
                    add(&self.metrics.bytes_out_total, written as u64);
                    let raw = written.min(conn.raw_out.len());
                    conn.raw_out.drain(..raw);
                    written -= raw;
                    if conn.raw_out.is_empty() && conn.raw_out.capacity() > 0 {
                        conn.raw_out = Vec::new();
                    }
                    if let Phase::Open(ws) = &mut conn.phase {
                        ws.advance_transmit(written);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Writes what is queued (see [`Self::write_queued`]), then closes the socket if the
    /// connection is done.
    fn flush(&mut self, slot: usize) {
        if !self.write_queued(slot) {
            return self.transport_lost(slot);
        }
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let queued = conn.queued();
        let delta = queued as i64 - conn.reported_queue as i64;
        conn.reported_queue = queued;
        self.metrics
            .queued_bytes
            .fetch_add(delta, Ordering::Relaxed);
        let done = match &mut conn.phase {
            Phase::Open(ws) => {
                if queued == 0 {
                    ws.shrink_buffers();
                }
                ws.should_close_transport()
            }
            Phase::Closing => queued == 0,
            Phase::Handshake(_) => false,
        };
        if done {
            let clean = conn.clean_close;
            let code = conn.close_code.unwrap_or(1006);
            return self.remove(slot, code, clean);
        }
        // Backpressure: stop reading while the peer does not take what it is sent.
        let over = queued >= self.config.high_water_mark;
        if conn.read_paused && !over && !matches!(conn.phase, Phase::Closing) {
            conn.read_paused = false;
            self.read(slot, Drain::UntilEnd);
        } else if over {
            conn.read_paused = true;
        }
    }

    /// Schedules the connection's next timer if it is earlier than the one it has.
    fn arm_timer(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let config = &self.config;
        let due = match &conn.phase {
            Phase::Handshake(_) => Some(conn.next_ping),
            Phase::Open(ws) => {
                let ping =
                    (!config.ping_interval.is_zero() && ws.can_send()).then_some(conn.next_ping);
                let idle =
                    (!config.idle_timeout.is_zero()).then(|| conn.last_input + config.idle_timeout);
                [ping, conn.pong_deadline, idle, ws.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Phase::Closing => None,
        };
        let Some(due) = due else { return };
        let tick = self.timers.tick_for(due);
        if conn.timer_tick.is_none_or(|t| tick < t) {
            conn.timer_tick = Some(self.timers.schedule(due, slot, conn.generation));
        }
    }

    fn timer_fired(&mut self, entry: Expired) {
        let Some(conn) = self.conns.get_mut(entry.key) else {
            return;
        };
        if conn.generation != entry.generation || conn.timer_tick != Some(entry.tick) {
            return; // superseded or for a closed connection
        }
        conn.timer_tick = None;
        let slot = entry.key;
        let now = self.now;
        match &mut conn.phase {
            Phase::Handshake(_) => {
                if now >= conn.next_ping {
                    add(&self.metrics.handshake_timeouts_total, 1);
                    return self.answer_and_close(
                        slot,
                        HttpResponse::text(408, "handshake timeout\n").encode(),
                    );
                }
            }
            Phase::Open(ws) => {
                if conn.pong_deadline.is_some_and(|d| now >= d) {
                    // A silent peer: no closing handshake to wait for.
                    add(&self.metrics.heartbeat_timeouts_total, 1);
                    return self.remove(slot, 1006, false);
                }
                let idle = self.config.idle_timeout;
                if !idle.is_zero() && now >= conn.last_input + idle && ws.can_send() {
                    add(&self.metrics.idle_timeouts_total, 1);
                    self.close(slot, CloseCode::GOING_AWAY, "idle timeout");
                    return;
                }
                let interval = self.config.ping_interval;
                if !interval.is_zero() && now >= conn.next_ping && ws.can_send() {
                    if ws.send_ping(b"").is_ok() && conn.pong_deadline.is_none() {
                        conn.pong_deadline = Some(now + self.config.pong_timeout);
                    }
                    conn.next_ping = now + interval;
                }
                ws.handle_time(now);
                self.mark_dirty(slot);
            }
            Phase::Closing => {}
        }
        self.arm_timer(slot);
    }

    fn begin_drain(&mut self) {
        self.drain_deadline = Some(self.now + self.config.drain_timeout);
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for slot in self.conns.keys() {
            let open = matches!(self.conns.get(slot).map(|c| &c.phase), Some(Phase::Open(_)));
            if open {
                self.close(slot, CloseCode::GOING_AWAY, "server shutting down");
            } else {
                self.remove(slot, 1001, false);
            }
        }
    }

    /// Drops a connection: leaves its rooms, releases its limits, tells the handler.
    fn remove(&mut self, slot: usize, code: u16, clean: bool) {
        let Some(id) = self.id(slot) else { return };
        let Some(mut conn) = self.conns.remove(slot) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.socket);
        self.release_slot(conn.peer.ip());
        self.metrics
            .queued_bytes
            .fetch_sub(conn.reported_queue as i64, Ordering::Relaxed);
        for room in std::mem::take(&mut conn.rooms) {
            self.leave_room(slot, &room);
        }
        let was_open = matches!(conn.phase, Phase::Open(_));
        drop(conn);
        if was_open {
            self.metrics.count_close(code);
            let mut commands = std::mem::take(&mut self.commands);
            let info = CloseInfo {
                code: CloseCode(code),
                clean,
            };
            self.handler
                .on_close(&mut Context::new(id, &mut commands), info);
            self.apply(&mut commands);
            self.commands = commands;
        }
        // Last, so that a connection counted gone has left its rooms and been closed by the
        // handler.
        self.metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an event other than a message changes on its connection: a pong ends the wait for one;
/// the peer's close frame gives the close code (1005 when it carried none) of a clean close.
fn other_event(
    event: Event,
    pong_deadline: &mut Option<Duration>,
    close_code: &mut Option<u16>,
    clean_close: &mut bool,
) {
    match event {
        Event::Pong(_) => *pong_deadline = None,
        Event::Close(frame) => {
            *close_code = Some(frame.map_or(1005, |f| f.code.0));
            *clean_close = true;
        }
        Event::Message(_) | Event::Ping(_) | Event::Chunk(_) => {}
    }
}
