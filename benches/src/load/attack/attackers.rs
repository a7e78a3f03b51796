//! Hostile clients on raw non-blocking sockets: the opening handshake by ws-proto's
//! [`ClientHandshake`], then frames built by hand and written as the attack wants them, with no
//! engine in the way (an engine would answer pings, refuse to send a frame it considers
//! invalid, and read). They run on their own mio `Poll`, turned without waiting between the
//! bystanders' turns, on the same thread.

use super::super::pool::{connect_registered, handshake_nonce};
use mio::net::TcpStream;
use mio::{Events, Poll};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use ws_proto::deflate::NAME as DEFLATE;
use ws_proto::frame::{FrameHeader, OpCode};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::mask::apply_mask;

/// The masking key of every attacker frame: the server unmasks whatever key it is given.
const KEY: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];

/// How long a slot that failed to connect waits before trying again (deflate-bomb only).
const RETRY: Duration = Duration::from_millis(50);

/// A masked client frame.
pub(super) fn client_frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask: Some(KEY),
        payload_len: payload.len() as u64,
    };
    let mut out = vec![0u8; header.encoded_len()];
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], KEY, 0);
    out
}

/// Copies of `frame` up to about `bytes` (at least one), so one write carries many frames and
/// a buffer written round and round always restarts on a frame boundary.
pub(super) fn repeated(frame: &[u8], bytes: usize) -> Vec<u8> {
    frame.repeat((bytes / frame.len()).max(1))
}

/// What every attacker does once its WebSocket is open.
pub(super) enum Plan {
    /// Writes `pattern` (whole frames) round and round as fast as the socket takes it, and
    /// never reads.
    Stream { pattern: Vec<u8> },
    /// Offers permessage-deflate, writes `frame` once, reads until the server closes, and
    /// starts again on a fresh connection.
    Bomb { frame: Vec<u8> },
    /// Writes nothing and never reads.
    Idle,
    /// Writes `first`, then `next` every `interval`; reads (and drops) what the server sends,
    /// to see it close.
    Trickle {
        first: Vec<u8>,
        next: Vec<u8>,
        interval: Duration,
    },
}

impl Plan {
    fn offers_deflate(&self) -> bool {
        matches!(self, Plan::Bomb { .. })
    }

    /// Whether the attacker reads after its handshake.
    fn reads(&self) -> bool {
        matches!(self, Plan::Bomb { .. } | Plan::Trickle { .. })
    }
}

enum State {
    /// To connect at `Slot::next_at`.
    Waiting,
    Handshake {
        handshake: ClientHandshake,
        request: Vec<u8>,
        written: usize,
        connected: bool,
    },
    /// Open; for a trickle, whether the message's first frame went out.
    Open { started: bool },
    /// A bomb was written: waiting for the server's answer.
    Sent,
    /// Stopped, or closed and not to be reopened.
    Dead,
}

struct Slot {
    socket: Option<TcpStream>,
    state: State,
    /// The socket took the last write whole (or is newly connected): it may take more. Cleared
    /// by `WouldBlock`, set again by a writable event.
    writable: bool,
    /// Bytes of the current frame (or pattern) already written.
    pos: usize,
    /// When to connect (`Waiting`) or write the next trickle frame.
    next_at: Instant,
    /// What the server sent since the bomb went out, up to a close frame's head.
    inbox: Vec<u8>,
    opened_once: bool,
}

/// What the attackers did, for the report.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// TCP connections started.
    pub connections: u64,
    /// WebSocket handshakes completed.
    pub opened: u64,
    /// Slots whose first connection opened.
    pub slots_opened: usize,
    /// Connections that failed before or during the handshake.
    pub failed: u64,
    /// Bytes written after the handshakes.
    pub bytes_sent: u64,
    /// Bombs written whole.
    pub bombs: u64,
    /// Connections the server closed (its close frame, its FIN or a reset).
    pub closed_by_server: u64,
    /// The codes of the close frames received, by code.
    pub close_codes: BTreeMap<u16, u64>,
    /// The first errors.
    pub errors: Vec<String>,
}

impl Stats {
    fn error(&mut self, e: String) {
        if self.errors.len() < 5 {
            self.errors.push(e);
        }
    }
}

/// The attacking connections.
pub(super) struct Attackers {
    poll: Poll,
    events: Events,
    addr: SocketAddr,
    host: String,
    plan: Plan,
    slots: Vec<Slot>,
    concurrency: usize,
    pending: usize,
    nonce: u64,
    read_buf: Vec<u8>,
    /// A reason the attack cannot go on (the server refused what it needs).
    pub fatal: Option<String>,
    pub stats: Stats,
}

impl Attackers {
    /// `n` attackers to `addr` following `plan`, at most `concurrency` handshakes at a time;
    /// none connects before [`Self::start`].
    pub(super) fn new(
        addr: SocketAddr,
        plan: Plan,
        n: usize,
        concurrency: usize,
    ) -> io::Result<Attackers> {
        let now = Instant::now();
        Ok(Attackers {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            addr,
            host: addr.to_string(),
            plan,
            slots: (0..n)
                .map(|_| Slot {
                    socket: None,
                    state: State::Dead,
                    writable: false,
                    pos: 0,
                    next_at: now,
                    inbox: Vec::new(),
                    opened_once: false,
                })
                .collect(),
            concurrency: concurrency.max(1),
            pending: 0,
            nonce: 0x5851_f42d_4c95_7f2d,
            read_buf: vec![0; 64 << 10],
            fatal: None,
            stats: Stats::default(),
        })
    }

    /// Every attacker connects (as the concurrency allows) from the next turn on.
    pub(super) fn start(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            slot.state = State::Waiting;
            slot.next_at = now;
        }
    }

    /// Attackers with an open WebSocket now.
    pub(super) fn open_now(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::Open { .. } | State::Sent))
            .count()
    }

    /// Whether some attacker can no longer open: it failed and is not to try again.
    pub(super) fn gave_up(&self) -> bool {
        self.slots
            .iter()
            .any(|s| !s.opened_once && matches!(s.state, State::Dead))
    }

    /// Closes every attacker's socket (the server sees a reset or an end of stream) and stops.
    pub(super) fn stop(&mut self) {
        for id in 0..self.slots.len() {
            self.drop_socket(id);
            self.slots[id].state = State::Dead;
        }
        self.pending = 0;
    }

    /// Handles what the sockets reported, starts due connections, writes what the attack
    /// wants written. Never waits. Returns whether a socket may take more right away (the
    /// caller should then not wait either).
    pub(super) fn turn(&mut self, now: Instant) -> io::Result<bool> {
        match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let ready: Vec<(usize, bool, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token().0,
                    e.is_writable(),
                    e.is_readable(),
                    e.is_read_closed() || e.is_error(),
                )
            })
            .collect();
        for (id, writable, readable, closed) in ready {
            if self.slots[id].socket.is_none() {
                continue;
            }
            if writable {
                self.on_writable(id);
            }
            if readable || closed {
                self.on_readable(id, closed, now);
            }
        }
        let mut busy = false;
        for id in 0..self.slots.len() {
            let slot = &self.slots[id];
            match slot.state {
                State::Waiting if now >= slot.next_at && self.pending < self.concurrency => {
                    self.connect(id, now)
                }
                State::Handshake {
                    connected: true, ..
                } if slot.writable => self.write_request(id),
                State::Open { .. } if slot.writable => busy |= self.write_open(id, now),
                _ => {}
            }
        }
        Ok(busy)
    }

    fn connect(&mut self, id: usize, now: Instant) {
        let nonce = handshake_nonce(&mut self.nonce, id);
        let mut request = ClientRequest::new(&self.host, "/");
        if self.plan.offers_deflate() {
            request = request.extensions(&ws_proto::deflate::DeflateConfig::default().offer());
        }
        let (handshake, request) =
            ClientHandshake::new(&request, nonce, HandshakeLimits::default());
        self.stats.connections += 1;
        let socket = connect_registered(&self.poll, self.addr, id);
        let slot = &mut self.slots[id];
        slot.writable = false;
        slot.pos = 0;
        slot.inbox.clear();
        match socket {
            Ok(s) => {
                slot.socket = Some(s);
                slot.state = State::Handshake {
                    handshake,
                    request,
                    written: 0,
                    connected: false,
                };
                self.pending += 1;
            }
            Err(e) => self.failed(id, now, format!("connect: {e}")),
        }
    }

    /// A connection failed before its WebSocket opened (a bomber tries again shortly).
    fn failed(&mut self, id: usize, now: Instant, why: String) {
        self.stats.failed += 1;
        self.stats.error(format!("attacker {id}: {why}"));
        if matches!(self.slots[id].state, State::Handshake { .. }) {
            self.pending -= 1;
        }
        self.drop_socket(id);
        self.retry_or_die(id, now + RETRY);
    }

    /// A bomber connects again at `at`; any other attacker is done.
    fn retry_or_die(&mut self, id: usize, at: Instant) {
        let slot = &mut self.slots[id];
        if matches!(self.plan, Plan::Bomb { .. }) {
            slot.state = State::Waiting;
            slot.next_at = at;
        } else {
            slot.state = State::Dead;
        }
    }

    fn drop_socket(&mut self, id: usize) {
        if let Some(mut socket) = self.slots[id].socket.take() {
            let _ = self.poll.registry().deregister(&mut socket);
        }
    }

    fn on_writable(&mut self, id: usize) {
        let slot = &mut self.slots[id];
        let Some(socket) = &slot.socket else {
            return;
        };
        if let State::Handshake { connected, .. } = &mut slot.state {
            if !*connected {
                if let Ok(Some(e)) | Err(e) = socket.take_error() {
                    return self.failed(id, Instant::now(), format!("connect: {e}"));
                }
                match socket.peer_addr() {
                    Ok(_) => *connected = true,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => return self.failed(id, Instant::now(), format!("connect: {e}")),
                }
            }
        }
        slot.writable = true;
    }

    fn write_request(&mut self, id: usize) {
        let slot = &mut self.slots[id];
        let (
            Some(socket),
            State::Handshake {
                request, written, ..
            },
        ) = (&mut slot.socket, &mut slot.state)
        else {
            return;
        };
        while *written < request.len() {
            match socket.write(&request[*written..]) {
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    slot.writable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed(id, Instant::now(), format!("write: {e}")),
            }
        }
    }

    /// One write of what the attack wants written now; whether the socket may take more.
    fn write_open(&mut self, id: usize, now: Instant) -> bool {
        let slot = &mut self.slots[id];
        let Some(socket) = &mut slot.socket else {
            return false;
        };
        let State::Open { started } = &mut slot.state else {
            return false;
        };
        let (bytes, repeat): (&[u8], bool) = match &self.plan {
            Plan::Stream { pattern } => (pattern, true),
            Plan::Bomb { frame } => (frame, false),
            Plan::Idle => return false,
            Plan::Trickle { first, next, .. } => {
                if now < slot.next_at {
                    return false;
                }
                (if *started { next } else { first }, false)
            }
        };
        match socket.write(&bytes[slot.pos..]) {
            Ok(n) => {
                self.stats.bytes_sent += n as u64;
                slot.pos += n;
                if slot.pos < bytes.len() {
                    return true;
                }
                slot.pos = 0;
                match &self.plan {
                    Plan::Stream { .. } => {}
                    Plan::Bomb { .. } => {
                        self.stats.bombs += 1;
                        slot.state = State::Sent;
                    }
                    Plan::Trickle { interval, .. } => {
                        *started = true;
                        // On schedule, unless the loop fell behind by more than a frame.
                        slot.next_at = (slot.next_at + *interval).max(now);
                    }
                    Plan::Idle => {}
                }
                repeat
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                slot.writable = false;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.closed_by_server(id, now, format!("write: {e}"));
                false
            }
        }
    }

    /// The server ended an open connection.
    fn closed_by_server(&mut self, id: usize, now: Instant, why: String) {
        self.stats.closed_by_server += 1;
        if !matches!(self.plan, Plan::Bomb { .. }) {
            self.stats.error(format!("attacker {id}: {why}"));
        }
        self.drop_socket(id);
        self.retry_or_die(id, now);
    }

    fn on_readable(&mut self, id: usize, closed: bool, now: Instant) {
        let reads = self.plan.reads();
        loop {
            let slot = &mut self.slots[id];
            let Some(socket) = &mut slot.socket else {
                return;
            };
            let handshaking = matches!(slot.state, State::Handshake { .. });
            if !handshaking && !reads {
                // Never read: only notice that the server has gone.
                if closed {
                    self.closed_by_server(id, now, "closed by the server".into());
                }
                return;
            }
            let n = match socket.read(&mut self.read_buf) {
                Ok(0) if handshaking => {
                    return self.failed(id, now, "closed during the handshake".into())
                }
                Ok(0) => return self.closed_by_server(id, now, "closed by the server".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if handshaking => return self.failed(id, now, format!("read: {e}")),
                Err(e) => return self.closed_by_server(id, now, format!("read: {e}")),
            };
            let mut data = &self.read_buf[..n];
            if let State::Handshake { handshake, .. } = &mut slot.state {
                match handshake.receive(data) {
                    Ok(None) => continue,
                    Ok(Some((response, used))) => {
                        if self.plan.offers_deflate()
                            && !response.extensions().iter().any(|e| e.name == DEFLATE)
                        {
                            self.fatal =
                                Some("the server did not accept permessage-deflate".into());
                        }
                        slot.state = State::Open { started: false };
                        slot.writable = true;
                        slot.next_at = now;
                        self.pending -= 1;
                        self.stats.opened += 1;
                        if !slot.opened_once {
                            slot.opened_once = true;
                            self.stats.slots_opened += 1;
                        }
                        if !reads {
                            return;
                        }
                        data = &self.read_buf[used..n];
                    }
                    Err(e) => return self.failed(id, now, format!("handshake: {e}")),
                }
            }
            if let Some(code) = close_code(&mut slot.inbox, data) {
                *self.stats.close_codes.entry(code).or_default() += 1;
                // The close frame says it all: a bomber leaves at once for a fresh connection.
                return self.closed_by_server(id, now, format!("closed by the server with {code}"));
            }
        }
    }
}

/// Takes what the server sent in `data` (after what `inbox` holds already) and returns the
/// code of its close frame once one has arrived (1005 for a close frame without a code).
/// Other frames are skipped.
fn close_code(inbox: &mut Vec<u8>, data: &[u8]) -> Option<u16> {
    inbox.extend_from_slice(data);
    loop {
        let (header, len) = FrameHeader::decode(inbox).ok()??;
        if header.opcode == OpCode::Close {
            return match header.payload_len {
                0 => Some(1005),
                _ if inbox.len() >= len + 2 => {
                    Some(u16::from_be_bytes([inbox[len], inbox[len + 1]]))
                }
                _ => None,
            };
        }
        let end = len.saturating_add(header.payload_len as usize);
        if inbox.len() < end {
            // Keep only what is needed to find the next frame's head.
            return None;
        }
        inbox.drain(..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_and_decode() {
        let frame = client_frame(false, 0x40, OpCode::Binary, &[0u8; 300]);
        let (header, len) = FrameHeader::decode(&frame).unwrap().unwrap();
        assert_eq!(
            (header.fin, header.rsv, header.opcode, header.payload_len),
            (false, 0x40, OpCode::Binary, 300)
        );
        assert_eq!(header.mask, Some(KEY));
        assert_eq!(frame.len(), len + 300);
        let mut payload = frame[len..].to_vec();
        apply_mask(&mut payload, KEY, 0);
        assert!(payload.iter().all(|&b| b == 0));
        let pattern = repeated(&frame, 1000);
        assert_eq!(pattern.len(), 3 * frame.len());
        assert_eq!(repeated(&frame, 1).len(), frame.len());
    }

    #[test]
    fn the_close_code_is_found_after_other_frames_and_across_reads() {
        let mut inbox = Vec::new();
        // An unmasked pong "hi", then a close frame 1009, in three pieces.
        let wire = [0x8a, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xf1];
        assert_eq!(close_code(&mut inbox, &wire[..3]), None);
        assert_eq!(close_code(&mut inbox, &wire[3..7]), None);
        assert_eq!(close_code(&mut inbox, &wire[7..]), Some(1009));
        assert_eq!(close_code(&mut Vec::new(), &[0x88, 0x00]), Some(1005));
    }
}
