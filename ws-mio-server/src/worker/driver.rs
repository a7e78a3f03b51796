//! One connection's state and the decisions that concern it alone: which phase it is in,
//! what it has queued, when it must next be woken, what a timer or a finished write means for
//! it. It never touches a socket; the worker hands it bytes and the time.

use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use ws_proto::handshake::server::ServerHandshake;
use ws_proto::{CloseCode, Connection};

use super::admission::Reservation;
use super::Listener;
use crate::config::Config;
use crate::proxy_protocol::ProxyHeaderReader;

/// Where a connection is in its life.
// Nearly every connection is `Open`: keeping the engine inline saves an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Phase {
    /// Reading a trusted proxy's PROXY protocol header, until the handshake deadline; the
    /// request head's reader waits for what follows it.
    Proxy(ProxyHeaderReader, ServerHandshake),
    /// Reading the HTTP request head, until the handshake deadline.
    Handshake(ServerHandshake),
    /// WebSocket frames flow.
    Open(Connection),
    /// A plain HTTP response or a refusal is being written, until its deadline; then the
    /// socket closes.
    Answering,
}

/// How a connection ended, as far as it is known.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ending {
    /// The close code to report: set when a close frame is seen or sent, or on failure.
    pub(crate) code: Option<CloseCode>,
    /// The peer's close frame arrived (the closing handshake completes once ours is sent).
    pub(crate) peer_closed: bool,
}

/// What the worker must do after a timer of this connection fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// Nothing is due yet (or the time was handled inside the engine).
    Rearm,
    /// The handshake (or the HTTP answer) took too long.
    HandshakeTimeout,
    /// The answer to a refused or timed-out handshake could not be written in time.
    AnswerTimeout,
    /// No pong came in time: a silent peer, no closing handshake to wait for.
    PongTimeout,
    /// Nothing was received for the idle timeout.
    Idle,
    /// Its queue stayed past the high-water mark for the slow-consumer grace.
    SlowConsumer,
    /// Its credentials expired ([`crate::Context::expire_after`]).
    CredentialsExpired,
}

/// What a finished write means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterWrite {
    /// Keep going.
    Continue,
    /// Everything is said (or the peer is gone): close the transport, reporting this code
    /// and whether the closing handshake completed.
    Done(CloseCode, bool),
    /// Its queue fell below the high-water mark: read it again.
    Resume,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Driver<C> {
    pub(crate) peer: SocketAddr,
    /// The client: the peer's address, or for a trusted proxy's connection the address the
    /// proxy forwards for, once known ([`Self::client_known`]); until then, the trusted hop
    /// whose `X-Forwarded-For` will tell.
    pub(crate) client: IpAddr,
    /// Whether [`Self::client`] is the client (and counted in its reservation).
    pub(crate) client_known: bool,
    /// Its place in the connection limits (none for the admin listener's), given back when it
    /// is removed.
    pub(crate) reservation: Option<Reservation>,
    /// Request bytes have arrived (the first read is where a PROXY header would be).
    pub(crate) started: bool,
    /// The listener it came in on.
    pub(crate) origin: Listener,
    pub(crate) generation: u32,
    pub(crate) phase: Phase,
    /// The application's state, from the handshake's acceptance to the connection's end.
    pub(crate) app: Option<C>,
    /// Its user, for room presence.
    pub(crate) user: Option<Arc<str>>,
    /// Bytes to write before the engine's queue: the handshake response or an HTTP answer.
    pub(crate) raw_out: Vec<u8>,
    /// Waiting in the worker's list of connections to write this turn.
    pub(crate) dirty: bool,
    /// Not read while too much is queued for it (its requests wait in the kernel).
    pub(crate) read_paused: bool,
    /// The peer ended its stream: what is queued goes out if the socket takes it now, then
    /// the connection ends.
    pub(crate) eof: bool,
    pub(crate) rooms: Vec<Arc<str>>,
    /// The tick of this connection's live entry in the timer wheel.
    pub(crate) timer_tick: Option<u64>,
    /// The handshake or HTTP answer's deadline, then the next ping.
    pub(crate) deadline: Duration,
    pub(crate) pong_deadline: Option<Duration>,
    /// When its credentials expire, if the application set a time.
    pub(crate) expires_at: Option<Duration>,
    /// It holds one of its user's connections across instances (released when it ends).
    pub(crate) claimed: bool,
    pub(crate) last_input: Duration,
    pub(crate) ending: Ending,
    /// The queued bytes last added to the worker's gauge.
    pub(crate) reported_queue: usize,
    /// Since when its queue has been at or past the high-water mark, if it is.
    pub(crate) backlogged_since: Option<Duration>,
    /// The held bytes last added to the worker's gauge (see [`Self::held`]).
    pub(crate) reported_held: usize,
    /// Input read but not yet given to the engine (one read at most, since reading stops
    /// while it waits): kept while the queue is at the high-water mark, or for the
    /// connection's next turn when this one's budget ran out.
    pub(crate) unread: Vec<u8>,
    /// What the I/O layer's transport holds for it (TLS state and ciphertext), as it reports.
    pub(crate) transport_held: usize,
}

impl<C> Driver<C> {
    /// A new connection from `peer`; `reservation` counts it (and its client, if already
    /// known); `proxy_header` when a PROXY header must come first.
    pub(crate) fn new(
        peer: SocketAddr,
        origin: Listener,
        reservation: Option<Reservation>,
        (generation, handshake, proxy_header): (u32, ServerHandshake, bool),
        now: Duration,
        config: &Config,
    ) -> Self {
        let phase = if proxy_header {
            Phase::Proxy(ProxyHeaderReader::new(), handshake)
        } else {
            Phase::Handshake(handshake)
        };
        Driver {
            peer,
            client: peer.ip(),
            client_known: reservation.as_ref().is_none_or(Reservation::has_address),
            reservation,
            started: false,
            origin,
            generation,
            phase,
            app: None,
            user: None,
            raw_out: Vec::new(),
            dirty: false,
            read_paused: false,
            eof: false,
            rooms: Vec::new(),
            timer_tick: None,
            deadline: now + config.handshake_timeout,
            pong_deadline: None,
            expires_at: None,
            claimed: false,
            last_input: now,
            ending: Ending::default(),
            reported_queue: 0,
            backlogged_since: None,
            reported_held: 0,
            unread: Vec::new(),
            transport_held: 0,
        }
    }

    pub(crate) fn ws(&mut self) -> Option<&mut Connection> {
        match &mut self.phase {
            Phase::Open(ws) => Some(ws),
            _ => None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.raw_out.len()
            + match &self.phase {
                Phase::Open(ws) => ws.pending_transmit_len(),
                _ => 0,
            }
    }

    /// The heap bytes held for it: its queue, the engine's buffers (a partial message, input
    /// waiting for the queue to drain), the compression state and the transport's (TLS). The
    /// memory budget the hostile-client tests check.
    pub(crate) fn held(&self) -> usize {
        self.raw_out.capacity()
            + self.unread.capacity()
            + self.transport_held
            + match &self.phase {
                Phase::Open(ws) => ws.memory_usage(),
                Phase::Proxy(reader, _) => reader.held(),
                _ => 0,
            }
    }

    /// Whether the worker should read from it now.
    pub(crate) fn wants_read(&self) -> bool {
        !self.read_paused
            && self.unread.is_empty()
            && !self.eof
            && !matches!(self.phase, Phase::Answering)
    }

    /// Switches to writing `answer` and closing; reading stops. The answer gets its own
    /// deadline, so a client that does not read it cannot hold the connection.
    pub(crate) fn answer(&mut self, answer: Vec<u8>, now: Duration, config: &Config) {
        self.raw_out = answer;
        self.phase = Phase::Answering;
        self.deadline = now + config.close_timeout;
    }

    /// The connection became a WebSocket: the response to write first, the engine, the
    /// application's state.
    pub(crate) fn open(
        &mut self,
        response: Vec<u8>,
        ws: Connection,
        app: C,
        user: Option<Arc<str>>,
        now: Duration,
        config: &Config,
    ) {
        self.raw_out = response;
        self.phase = Phase::Open(ws);
        self.app = Some(app);
        self.user = user;
        self.deadline = now + config.ping_interval;
    }

    /// The next time this connection must be woken, if any.
    pub(crate) fn next_deadline(&self, config: &Config) -> Option<Duration> {
        match &self.phase {
            Phase::Proxy(..) | Phase::Handshake(_) | Phase::Answering => Some(self.deadline),
            Phase::Open(ws) => {
                let ping =
                    (!config.ping_interval.is_zero() && ws.can_send()).then_some(self.deadline);
                let idle =
                    (!config.idle_timeout.is_zero()).then(|| self.last_input + config.idle_timeout);
                let grace = config.slow_consumer_grace;
                let slow = self
                    .backlogged_since
                    .filter(|_| !grace.is_zero() && ws.can_send())
                    .map(|since| since + grace);
                let expiry = self.expires_at.filter(|_| ws.can_send());
                [
                    ping,
                    self.pong_deadline,
                    idle,
                    slow,
                    expiry,
                    ws.poll_timeout(),
                ]
                .into_iter()
                .flatten()
                .min()
            }
        }
    }

    /// A timer fired at `now`: decides what is due. A ping due is queued here.
    pub(crate) fn on_timer(&mut self, now: Duration, config: &Config) -> TimerAction {
        let deadline = self.deadline;
        match &mut self.phase {
            Phase::Proxy(..) | Phase::Handshake(_) if now >= deadline => {
                TimerAction::HandshakeTimeout
            }
            Phase::Answering if now >= deadline => TimerAction::AnswerTimeout,
            Phase::Proxy(..) | Phase::Handshake(_) | Phase::Answering => TimerAction::Rearm,
            Phase::Open(ws) => {
                if self.pong_deadline.is_some_and(|d| now >= d) {
                    return TimerAction::PongTimeout;
                }
                if self.expires_at.is_some_and(|at| now >= at) && ws.can_send() {
                    return TimerAction::CredentialsExpired;
                }
                let idle = config.idle_timeout;
                if !idle.is_zero() && now >= self.last_input + idle && ws.can_send() {
                    return TimerAction::Idle;
                }
                let grace = config.slow_consumer_grace;
                if !grace.is_zero()
                    && self
                        .backlogged_since
                        .is_some_and(|since| now >= since + grace)
                    && ws.can_send()
                {
                    return TimerAction::SlowConsumer;
                }
                let interval = config.ping_interval;
                if !interval.is_zero() && now >= self.deadline && ws.can_send() {
                    if ws.send_ping(b"").is_ok() && self.pong_deadline.is_none() {
                        self.pong_deadline = Some(now + config.pong_timeout);
                    }
                    self.deadline = now + interval;
                }
                ws.handle_time(now);
                TimerAction::Rearm
            }
        }
    }

    /// The slices to write next: the raw bytes, then the engine's queue.
    pub(crate) fn transmit_io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        if !self.raw_out.is_empty() && !dst.is_empty() {
            dst[0] = IoSlice::new(&self.raw_out);
            n = 1;
        }
        if let Phase::Open(ws) = &self.phase {
            n += ws.transmit_io_slices(&mut dst[n..]);
        }
        n
    }

    /// `written` bytes of what [`Self::transmit_io_slices`] gave were sent.
    pub(crate) fn advance_transmit(&mut self, mut written: usize) {
        let raw = written.min(self.raw_out.len());
        self.raw_out.drain(..raw);
        written -= raw;
        if self.raw_out.is_empty() && self.raw_out.capacity() > 0 {
            self.raw_out = Vec::new();
        }
        if let Phase::Open(ws) = &mut self.phase {
            ws.advance_transmit(written);
        }
    }

    /// After a write: whether the connection is done, and backpressure on reading.
    pub(crate) fn after_write(&mut self, high_water_mark: usize) -> AfterWrite {
        let queued = self.queued();
        let done = match &mut self.phase {
            Phase::Open(ws) => {
                if queued == 0 {
                    ws.shrink_buffers();
                }
                ws.should_close_transport()
            }
            Phase::Answering => queued == 0,
            Phase::Proxy(..) | Phase::Handshake(_) => false,
        };
        if self.eof {
            let (code, clean) = self.lost_code();
            return AfterWrite::Done(code, clean);
        }
        if done {
            let code = self.ending.code.unwrap_or(CloseCode::ABNORMAL);
            return AfterWrite::Done(code, self.ending.peer_closed);
        }
        if self.read_paused && queued < high_water_mark {
            self.read_paused = false;
            return AfterWrite::Resume;
        }
        self.check_backpressure(high_water_mark);
        AfterWrite::Continue
    }

    /// Keeps the rest of a read for when the queue is below the mark, and stops reading.
    pub(crate) fn keep_unread(&mut self, rest: &[u8]) {
        self.unread.extend_from_slice(rest);
        self.read_paused = true;
    }

    /// Keeps the rest of a read for the connection's next turn: this turn's budget is spent.
    pub(crate) fn keep_for_next_turn(&mut self, rest: &[u8]) {
        self.unread.extend_from_slice(rest);
    }

    /// Input kept for its next turn waits, and nothing holds it back.
    pub(crate) fn input_waits(&self) -> bool {
        !self.unread.is_empty() && !self.read_paused
    }

    /// Stops reading while the peer does not take what it is sent.
    pub(crate) fn check_backpressure(&mut self, high_water_mark: usize) {
        if self.queued() >= high_water_mark {
            self.read_paused = true;
        }
    }

    /// Notes whether its queue is at or past the high-water mark now, and since when; true
    /// when it has just become so (a new deadline for the timer).
    pub(crate) fn track_backlog(&mut self, now: Duration, high_water_mark: usize) -> bool {
        let backlogged = self.queued() >= high_water_mark;
        let started = backlogged && self.backlogged_since.is_none();
        if started {
            self.backlogged_since = Some(now);
        } else if !backlogged {
            self.backlogged_since = None;
        }
        started
    }

    /// How the connection ended when its transport is lost (end of stream, failure): clean
    /// only if a close frame was exchanged and ours is sent.
    pub(crate) fn lost_code(&mut self) -> (CloseCode, bool) {
        let code = self.ending.code;
        if let Some(ws) = self.ws() {
            ws.receive_eof();
            if let Some(code) = code.filter(|_| !ws.can_send()) {
                return (code, true);
            }
        }
        (CloseCode::ABNORMAL, false)
    }
}
