//! Many client connections on one mio event loop, each a ws-proto client [`Connection`].
//!
//! The pool owns the sockets and the engines; a [`Driver`] (a scenario) is told about opened
//! connections and received messages and sends through [`Clients`]. Everything runs on the
//! calling thread, so a load generator pinned to one core uses exactly that core.

use super::transport::{TlsTarget, Transport};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use ws_proto::deflate::{DeflateConfig, PerMessageDeflate, NAME as DEFLATE};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::mask::MaskKeySource;
use ws_proto::{Config, Connection, Event, InPlaceEvent, Message, Role};

/// Masking keys from a xorshift generator. RFC 6455 asks clients for unpredictable keys to
/// protect proxies from cache poisoning; a load generator on loopback has no such proxy, and
/// the OS random source would cost it a system call every 16 frames.
struct CheapKeys(u64);

impl MaskKeySource for CheapKeys {
    fn next_key(&mut self) -> [u8; 4] {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 as u32).to_ne_bytes()
    }
}

enum Phase {
    /// TCP connect in progress, then the request being written and the answer read.
    Handshake {
        handshake: ClientHandshake,
        request: Vec<u8>,
        written: usize,
        connected: bool,
    },
    Open(Box<Connection>),
    Closed,
}

/// One client connection.
pub struct Client {
    /// `None` once the connection failed or ended (the descriptor is released at once).
    socket: Option<Transport>,
    phase: Phase,
    /// When the TCP connect started.
    pub started: Instant,
    /// When the handshake completed.
    pub opened: Option<Instant>,
    dirty: bool,
}

impl Client {
    /// Whether the WebSocket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Whether the connection failed or ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    fn conn(&mut self) -> Option<&mut Connection> {
        match &mut self.phase {
            Phase::Open(c) => Some(c),
            _ => None,
        }
    }
}

/// The connections, as a driver sees them: it sends through these.
pub struct Clients {
    list: Vec<Client>,
    dirty: Vec<usize>,
    /// Connections opened so far.
    pub opened: usize,
    /// Connections that failed or ended.
    pub closed: usize,
    /// Connections that failed before their handshake completed.
    pub failed_handshakes: usize,
    /// The first errors, for the report.
    pub errors: Vec<String>,
}

impl Clients {
    /// The number of connections started.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none were started.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A connection.
    pub fn get(&self, id: usize) -> &Client {
        &self.list[id]
    }

    /// Connections whose handshake is still under way.
    pub fn pending(&self) -> usize {
        self.list.len() - self.opened - self.failed_handshakes
    }

    /// Connections open now.
    pub fn open_now(&self) -> usize {
        self.opened + self.failed_handshakes - self.closed
    }

    /// Queues a text message on connection `id`; false if it is not open.
    pub fn send_text(&mut self, id: usize, text: &str) -> bool {
        self.with_conn(id, |c| c.send_text(text).is_ok())
    }

    /// Queues a binary message on connection `id`; false if it is not open.
    pub fn send_binary(&mut self, id: usize, data: &[u8]) -> bool {
        self.with_conn(id, |c| c.send_binary(data).is_ok())
    }

    fn with_conn(&mut self, id: usize, f: impl FnOnce(&mut Connection) -> bool) -> bool {
        let client = &mut self.list[id];
        let Some(conn) = client.conn() else {
            return false;
        };
        let ok = f(conn);
        if ok && !client.dirty {
            client.dirty = true;
            self.dirty.push(id);
        }
        ok
    }

    fn mark_dirty(&mut self, id: usize) {
        if !self.list[id].dirty {
            self.list[id].dirty = true;
            self.dirty.push(id);
        }
    }

    fn fail(&mut self, id: usize, why: impl FnOnce() -> String) {
        let client = &mut self.list[id];
        if client.is_closed() {
            return;
        }
        if matches!(client.phase, Phase::Handshake { .. }) {
            self.failed_handshakes += 1;
        }
        client.phase = Phase::Closed;
        client.socket = None;
        self.closed += 1;
        if self.errors.len() < 5 {
            self.errors.push(format!("connection {id}: {}", why()));
        }
    }

    /// Writes what is queued on every connection that has something, as far as the sockets take
    /// it; the rest goes out on the next writable event.
    pub fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            self.list[id].dirty = false;
            self.write(id);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn write(&mut self, id: usize) {
        let client = &mut self.list[id];
        let Some(socket) = &mut client.socket else {
            return;
        };
        // What TLS holds from earlier first, even with nothing new queued.
        if let Err(e) = socket.flush() {
            return self.fail(id, || format!("write: {e}"));
        }
        let result = match &mut client.phase {
            Phase::Open(conn) => write_queue(socket, conn),
            Phase::Handshake {
                request,
                written,
                connected: true,
                ..
            } => write_request(socket, request, written),
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.fail(id, || format!("write: {e}"));
        }
    }
}

fn write_request(socket: &mut Transport, request: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < request.len() {
        match socket.write_vectored(&[IoSlice::new(&request[*written..])]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_queue(socket: &mut Transport, conn: &mut Connection) -> io::Result<()> {
    loop {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = conn.transmit_io_slices(&mut slices);
        if n == 0 {
            return Ok(());
        }
        // One slice by send(2), whose kernel path is cheaper than writev's (as the server does).
        match socket.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => conn.advance_transmit(written),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What a scenario does when connections open and messages arrive.
pub trait Driver {
    /// Connection `id` completed its handshake.
    fn opened(&mut self, _clients: &mut Clients, _id: usize, _now: Instant) {}
    /// Connection `id` received a message (its payload); `now` is when the read that carried
    /// it returned.
    fn message(&mut self, clients: &mut Clients, id: usize, payload: &[u8], now: Instant);
}

/// The event loop and its connections.
pub struct Pool {
    poll: Poll,
    events: Events,
    read_buf: Vec<u8>,
    addr: SocketAddr,
    /// Where connections go by id, round robin, when not all to `addr` ([`Pool::spread`]).
    spread: Vec<SocketAddr>,
    host: String,
    nonce: u64,
    /// permessage-deflate, offered by every connection and required of the server.
    deflate: Option<DeflateConfig>,
    /// wss: TLS on every connection started from now on.
    tls: Option<TlsTarget>,
    /// The connections.
    pub clients: Clients,
}

impl Pool {
    /// An empty pool for connections to `addr`.
    pub fn new(addr: SocketAddr) -> io::Result<Pool> {
        Ok(Pool {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            read_buf: vec![0; 256 << 10],
            addr,
            spread: Vec::new(),
            host: addr.to_string(),
            nonce: 0x2545_f491_4f6c_dd1d,
            deflate: None,
            tls: None,
            clients: Clients {
                list: Vec::new(),
                dirty: Vec::new(),
                opened: 0,
                closed: 0,
                failed_handshakes: 0,
                errors: Vec::new(),
            },
        })
    }

    /// Sends connection `id` to `addrs[id % addrs.len()]` instead of the pool's address (several
    /// instances of one server); an empty list sends all to the pool's address.
    pub fn spread(&mut self, addrs: Vec<SocketAddr>) {
        self.spread = addrs;
    }

    /// Has every connection started from now on offer permessage-deflate with `config`; one
    /// whose server does not accept it fails.
    pub fn offer_deflate(&mut self, config: DeflateConfig) {
        self.deflate = Some(config);
    }

    /// Has every connection started from now on use TLS (wss) to `tls`.
    pub fn use_tls(&mut self, tls: TlsTarget) {
        self.tls = Some(tls);
    }

    /// Starts a connection to `target` (path and query); returns its id.
    pub fn connect(&mut self, target: &str) -> usize {
        let id = self.clients.list.len();
        let nonce = handshake_nonce(&mut self.nonce, id);
        let mut request = ClientRequest::new(&self.host, target);
        if let Some(deflate) = &self.deflate {
            request = request.extensions(&deflate.offer());
        }
        let (handshake, request) =
            ClientHandshake::new(&request, nonce, HandshakeLimits::default());
        let started = Instant::now();
        let addr = match self.spread.len() {
            0 => self.addr,
            n => self.spread[id % n],
        };
        let socket = connect_registered(&self.poll, addr, id)
            .and_then(|socket| Transport::new(socket, self.tls.as_ref()));
        let (socket, failure) = match socket {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        self.clients.list.push(Client {
            socket,
            phase: Phase::Handshake {
                handshake,
                request,
                written: 0,
                connected: false,
            },
            started,
            opened: None,
            dirty: false,
        });
        if let Some(e) = failure {
            self.clients.fail(id, || format!("connect: {e}"));
        }
        id
    }

    /// Waits up to `timeout` for events, handles them, then writes what the handlers queued.
    pub fn turn<D: Driver>(&mut self, timeout: Duration, driver: &mut D) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let Pool {
            events,
            clients,
            read_buf,
            deflate,
            ..
        } = self;
        for event in events.iter() {
            let id = event.token().0;
            if event.is_writable() {
                writable(clients, id);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                // A peer that closed before the event was reported raises no later event.
                let until_end = event.is_read_closed() || event.is_error();
                readable(clients, id, read_buf, until_end, deflate.as_ref(), driver);
            }
        }
        self.clients.flush();
        Ok(())
    }

    /// Drops every connection at once (the peers see resets or EOFs).
    pub fn close_all(&mut self) {
        for client in &mut self.clients.list {
            if let Some(mut socket) = client.socket.take() {
                let _ = self.poll.registry().deregister(socket.socket());
            }
        }
        self.clients.list.clear();
    }
}

fn writable(clients: &mut Clients, id: usize) {
    let client = &mut clients.list[id];
    let Some(socket) = &mut client.socket else {
        return;
    };
    if let Phase::Handshake { connected, .. } = &mut client.phase {
        if !*connected {
            let socket = socket.socket();
            if let Ok(Some(e)) | Err(e) = socket.take_error() {
                return clients.fail(id, || format!("connect: {e}"));
            }
            match socket.peer_addr() {
                Ok(_) => *connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return clients.fail(id, || format!("connect: {e}")),
            }
            let _ = socket.set_nodelay(true);
        }
    }
    clients.write(id);
}

/// Reads what the socket holds. Unless `until_end`, a read that does not fill `buf` ends the
/// loop: the socket was empty then, and edge-triggered readiness reports whatever comes next,
/// so the `recv` that would only say `WouldBlock` is saved (as the server does).
fn readable<D: Driver>(
    clients: &mut Clients,
    id: usize,
    buf: &mut [u8],
    until_end: bool,
    deflate: Option<&DeflateConfig>,
    driver: &mut D,
) {
    let mut drained = false;
    loop {
        let Some(socket) = &mut clients.list[id].socket else {
            return;
        };
        if drained && !until_end {
            return;
        }
        let n = match socket.read(buf) {
            Ok(0) => return clients.fail(id, || "closed by the server".to_string()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return clients.fail(id, || format!("read: {e}")),
        };
        drained = n < buf.len() && socket.short_read_drains();
        let now = Instant::now();
        let mut data = &mut buf[..n];
        let client = &mut clients.list[id];
        if let Phase::Handshake { handshake, .. } = &mut client.phase {
            match handshake.receive(data) {
                Ok(None) => continue,
                Ok(Some((response, used))) => {
                    let keys = CheapKeys(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1));
                    let mut conn = Connection::client_with_keys(Config::default(), Box::new(keys));
                    if let Some(deflate) = deflate {
                        let accepted = response.extensions().iter().find(|e| e.name == DEFLATE);
                        let Some(params) = accepted.and_then(|e| deflate.accept_response(e)) else {
                            return clients.fail(id, || {
                                "the server did not accept permessage-deflate".to_string()
                            });
                        };
                        conn = conn.with_extension(Box::new(PerMessageDeflate::new(
                            Role::Client,
                            params,
                            deflate,
                        )));
                    }
                    client.phase = Phase::Open(Box::new(conn));
                    client.opened = Some(now);
                    clients.opened += 1;
                    driver.opened(clients, id, now);
                    data = &mut std::mem::take(&mut data)[used..];
                }
                Err(e) => return clients.fail(id, || format!("handshake: {e}")),
            }
        }
        receive(clients, id, data, now, driver);
    }
}

/// Takes a read's messages in place (whole messages are slices of `data`), one at a time: the
/// driver needs the connections to answer each, so the reader gives the rest back in between.
fn receive<D: Driver>(
    clients: &mut Clients,
    id: usize,
    mut data: &mut [u8],
    now: Instant,
    driver: &mut D,
) {
    let mut violation = None;
    loop {
        let Some(conn) = clients.list[id].conn() else {
            return;
        };
        let mut input = conn.receive_in_place(data);
        let owned: Message;
        let payload = match input.next_event() {
            Ok(Some(InPlaceEvent::Text(text))) => text.as_bytes(),
            Ok(Some(InPlaceEvent::Binary(bytes))) => bytes,
            Ok(Some(InPlaceEvent::Other(Event::Message(message)))) => {
                owned = message;
                owned.as_bytes()
            }
            Ok(Some(InPlaceEvent::Other(_))) => {
                data = input.into_rest();
                continue;
            }
            Ok(None) => break,
            Err(v) => {
                violation = Some(v);
                break;
            }
        };
        data = input.into_rest();
        driver.message(clients, id, payload, now);
    }
    let Some(conn) = clients.list[id].conn() else {
        return;
    };
    let done = conn.should_close_transport();
    if conn.has_pending_transmit() {
        clients.mark_dirty(id);
    }
    if let Some(v) = violation {
        clients.fail(id, || format!("protocol: {v}"));
    } else if done {
        clients.fail(id, || "closed by the server".to_string());
    }
}

/// A handshake nonce: a 64-bit LCG step of `state` beside the connection's id, so every
/// connection of a run has its own key without a random source.
pub(crate) fn handshake_nonce(state: &mut u64, id: usize) -> [u8; 16] {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&state.to_ne_bytes());
    nonce[8..].copy_from_slice(&(id as u64).to_ne_bytes());
    nonce
}

/// A non-blocking connection to `addr`, registered in `poll` for reading and writing as `id`.
pub(crate) fn connect_registered(
    poll: &Poll,
    addr: SocketAddr,
    id: usize,
) -> io::Result<TcpStream> {
    let mut socket = TcpStream::connect(addr)?;
    poll.registry().register(
        &mut socket,
        Token(id),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    Ok(socket)
}
