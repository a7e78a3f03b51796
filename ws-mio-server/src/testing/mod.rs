//! A server's workers and any number of clients in memory, on pretend time: the test driver
//! for server logic (heartbeats, deadlines, close timeouts, drain, backpressure, fanout) and
//! for applications built on [`Handler`], with no socket, thread or clock.
//!
//! [`TestServer`] runs the same workers as [`crate::Server`] and carries out their orders the
//! way the event loop does, over pipes with a bounded "kernel buffer" each way. Clients are
//! ws-proto client connections (they answer pings by themselves) or raw byte streams. Time
//! moves only through [`TestServer::advance`], which wakes the workers at each deadline due on
//! the way. `movement` is the in-memory event loop: how bytes move between the clients'
//! pipes and the workers, a round at a time; `observe` is what the clients received and
//! what the server holds for them.
//!
//! ```
//! use std::time::Duration;
//! use ws_mio_server::testing::TestServer;
//! use ws_mio_server::{Config, Echo};
//! use ws_proto::{CloseCode, Message};
//!
//! let mut server = TestServer::new(Config::default(), Echo);
//! let client = server.connect("/");
//! server.send(client, Message::Text("hello".into()));
//! assert_eq!(server.next_message(client), Some(Message::Text("hello".into())));
//! // Nothing goes wrong for a minute of pings and pongs.
//! server.advance(Duration::from_secs(60));
//! assert!(server.is_open(client));
//! server.close(client, CloseCode::NORMAL);
//! assert!(server.transport_closed(client));
//! ```

mod movement;
mod observe;

use crate::broker::{Broker, Local};
use crate::config::Config;
use crate::handler::Handler;
use crate::metrics::{Metrics, Snapshot};
use crate::rooms::RoomRegistry;
use crate::worker::remote::{self, Remote, INBOX_CAPACITY};
use crate::worker::{Key, Listener, Services, Worker};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;
use ws_proto::deflate::DeflateConfig;
use ws_proto::handshake::client::{ClientHandshake, ClientRequest, Response};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{CloseCode, Connection, Event, Message};

/// What one read of a socket takes at most, as the event loop's buffer.
const READ_CHUNK: usize = 64 << 10;
/// What the kernel holds between a writer and a reader that does not read, each way.
pub const DEFAULT_PIPE_CAPACITY: usize = 256 << 10;

/// A client of a [`TestServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(usize);

/// What a client is.
#[derive(Debug)]
enum Peer {
    /// Waiting for the handshake response.
    Handshaking(ClientHandshake, Option<DeflateConfig>),
    /// A WebSocket connection.
    Open(Box<Connection>),
    /// Bytes only: what the server sent is kept as it came.
    Raw,
    /// The handshake response was not a 101 (or did not check out).
    Refused,
}

#[derive(Debug)]
struct Client {
    worker: usize,
    /// The server's key for this connection while the server holds it.
    key: Option<Key>,
    role: Peer,
    response: Option<Response>,
    /// Bytes written by the client that the server has not read.
    to_server: VecDeque<u8>,
    /// Bytes written by the server that the client has not read.
    to_client: VecDeque<u8>,
    /// Every byte received, for raw clients.
    raw: Vec<u8>,
    events: VecDeque<Event>,
    /// Whether the client reads what arrives.
    reading: bool,
    /// The client shut its sending side; the server sees the end once it has read the rest.
    write_closed: bool,
    eof_delivered: bool,
    /// The server closed the connection's socket.
    server_closed: bool,
}

/// Workers and clients in memory; see the module documentation.
pub struct TestServer<H: Handler> {
    handler: Arc<H>,
    workers: Vec<Worker<H>>,
    /// Each worker's inbox, as [`crate::Delivery`] fills it; read every round.
    inboxes: Vec<Receiver<Remote>>,
    keys: Vec<HashMap<Key, usize>>,
    clients: Vec<Client>,
    services: Services,
    now: Duration,
    next_worker: usize,
    pipe_capacity: usize,
    read_buf: Vec<u8>,
}

impl<H: Handler> std::fmt::Debug for TestServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("now", &self.now)
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl<H: Handler> TestServer<H> {
    /// `config.workers` workers (at least one) running `handler`; time starts at zero.
    pub fn new(config: Config, handler: H) -> TestServer<H> {
        TestServer::with_broker(config, handler, Arc::new(Local))
    }

    /// Like [`Self::new`], with `broker` attached as [`crate::Server::start_with`] attaches
    /// one: it is told of this instance's rooms and publishes, and what it hands to its
    /// [`crate::Delivery`] reaches the local members in the next round ([`Self::drive`]).
    pub fn with_broker(config: Config, handler: H, broker: Arc<dyn Broker>) -> TestServer<H> {
        let workers = config.workers.max(1);
        let handler = Arc::new(handler);
        let (peers, inboxes): (Vec<remote::Peer>, Vec<Receiver<Remote>>) = (0..workers)
            .map(|_| {
                let (inbox, rx) = mpsc::sync_channel(INBOX_CAPACITY);
                (remote::Peer { inbox, waker: None }, rx)
            })
            .unzip();
        let render = crate::server::renderer(&handler);
        let mut services = Services::new(Arc::new(config), (peers.into(), render), Some(broker));
        // The same random draws on every run (reconnect hints), as the time is pretend.
        services.seed = 0x5eed;
        services.broker.attach(services.delivery.clone());
        TestServer {
            workers: (0..workers)
                .map(|i| Worker::new(i, handler.clone(), services.clone()))
                .collect(),
            inboxes,
            handler,
            keys: vec![HashMap::new(); workers],
            clients: Vec::new(),
            services,
            now: Duration::ZERO,
            next_worker: 0,
            pipe_capacity: DEFAULT_PIPE_CAPACITY,
            read_buf: vec![0; READ_CHUNK],
        }
    }

    /// Sets what each pipe holds before a writer must wait (the kernel's buffers).
    pub fn set_pipe_capacity(&mut self, bytes: usize) {
        self.pipe_capacity = bytes.max(1);
    }

    /// The pretend time now.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.services.metrics
    }

    /// The metrics summed now.
    pub fn snapshot(&self) -> Snapshot {
        self.services.metrics.snapshot()
    }

    /// The application the workers run, to ask it what it holds.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Rooms holding history in the server's own store now (rooms whose history expired but
    /// that no call has looked at since are counted).
    pub fn rooms_with_history(&self) -> usize {
        self.services.history.rooms()
    }

    /// The server's rooms.
    pub fn rooms(&self) -> &RoomRegistry {
        &self.services.rooms
    }

    /// Connections counted against the server's limits.
    pub fn admitted(&self) -> usize {
        self.services.admission.open()
    }

    /// Client addresses (or IPv6 prefixes) with a connection counted against the per-IP
    /// limit.
    pub fn admitted_addresses(&self) -> usize {
        self.services.admission.addresses()
    }

    /// Clients in the handshake rate limit's table.
    pub fn rate_limited_clients(&self) -> usize {
        self.services.handshakes.clients()
    }

    /// Connections the workers hold, in any phase.
    pub fn connections(&self) -> usize {
        self.workers.iter().map(Worker::connections).sum()
    }

    /// Every worker has drained and ended.
    pub fn is_finished(&self) -> bool {
        self.workers.iter().all(Worker::is_finished)
    }

    /// A TCP connection that sends nothing yet: see [`Self::send_raw`], [`Self::raw`].
    pub fn connect_raw(&mut self) -> ClientId {
        let id = self.open_client(Peer::Raw, Vec::new(), Listener::Public, None);
        self.drive();
        id
    }

    /// A raw client whose TCP connection comes from `peer` (a trusted proxy, say; the others'
    /// come from 127.0.0.1).
    pub fn connect_raw_from(&mut self, peer: SocketAddr) -> ClientId {
        let id = self.open_client(Peer::Raw, Vec::new(), Listener::Public, Some(peer));
        self.drive();
        id
    }

    /// A WebSocket client with its own request (extra headers, say), connecting from `peer`;
    /// `prefix` goes before the request (a PROXY protocol header, say).
    pub fn connect_from(
        &mut self,
        peer: SocketAddr,
        prefix: &[u8],
        request: ClientRequest,
    ) -> ClientId {
        let nonce = (self.clients.len() as u128).to_le_bytes();
        let (handshake, bytes) = ClientHandshake::new(&request, nonce, HandshakeLimits::default());
        let role = Peer::Handshaking(handshake, None);
        let id = self.open_client(
            role,
            [prefix, &bytes].concat(),
            Listener::Public,
            Some(peer),
        );
        self.drive();
        id
    }

    /// A raw client of the admin listener (on the first worker, as in a real server).
    pub fn connect_admin(&mut self) -> ClientId {
        let id = self.open_client(Peer::Raw, Vec::new(), Listener::Admin, None);
        self.drive();
        id
    }

    /// A WebSocket client that completes its handshake for `target` (as far as the server
    /// lets it: see [`Self::is_open`]).
    pub fn connect(&mut self, target: &str) -> ClientId {
        self.connect_with(ClientRequest::new("test", target), None)
    }

    /// A client with its own request, offering permessage-deflate with `deflate`.
    pub fn connect_with(
        &mut self,
        request: ClientRequest,
        deflate: Option<DeflateConfig>,
    ) -> ClientId {
        let request = match &deflate {
            Some(d) => request.extensions(&d.offer()),
            None => request,
        };
        let nonce = (self.clients.len() as u128).to_le_bytes();
        let (handshake, bytes) = ClientHandshake::new(&request, nonce, HandshakeLimits::default());
        let id = self.open_client(
            Peer::Handshaking(handshake, deflate),
            bytes,
            Listener::Public,
            None,
        );
        self.drive();
        id
    }

    fn open_client(
        &mut self,
        role: Peer,
        bytes: Vec<u8>,
        origin: Listener,
        peer: Option<SocketAddr>,
    ) -> ClientId {
        let worker = match origin {
            Listener::Public => {
                self.next_worker += 1;
                (self.next_worker - 1) % self.workers.len()
            }
            Listener::Admin => 0,
        };
        let n = self.clients.len();
        let port = 10_000 + (n % 50_000) as u16;
        let peer = peer.unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
        // A refused connection gets its answer, then the end of the stream.
        let (key, answer) = match self.workers[worker].accept(peer, origin, self.now) {
            Ok(key) => {
                self.keys[worker].insert(key, n);
                (Some(key), Vec::new())
            }
            Err(answer) => (None, answer),
        };
        self.clients.push(Client {
            worker,
            key,
            role,
            response: None,
            to_server: bytes.into(),
            to_client: answer.into(),
            raw: Vec::new(),
            events: VecDeque::new(),
            reading: true,
            write_closed: false,
            eof_delivered: false,
            server_closed: key.is_none(),
        });
        ClientId(n)
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, client: ClientId, bytes: &[u8]) {
        self.clients[client.0].to_server.extend(bytes);
        self.drive();
    }

    /// Puts raw bytes in the client's pipe without moving anything: [`Self::round`] or
    /// [`Self::drive`] then does, so that several clients' input can be taken in one round.
    pub fn queue_raw(&mut self, client: ClientId, bytes: &[u8]) {
        self.clients[client.0].to_server.extend(bytes);
    }

    /// Has a WebSocket client send a message without moving anything (see [`Self::queue_raw`]).
    pub fn queue(&mut self, client: ClientId, message: Message) {
        if let Some(conn) = self.conn(client) {
            let _ = conn.send(&message);
        }
    }

    /// Every byte a raw client received so far.
    pub fn raw(&self, client: ClientId) -> &[u8] {
        &self.clients[client.0].raw
    }

    /// The handshake response a WebSocket client got, if any.
    pub fn response(&self, client: ClientId) -> Option<&Response> {
        self.clients[client.0].response.as_ref()
    }

    /// Sends a message (a WebSocket client).
    pub fn send(&mut self, client: ClientId, message: Message) {
        if let Some(conn) = self.conn(client) {
            let _ = conn.send(&message);
        }
        self.drive();
    }

    /// Sends a ping.
    pub fn ping(&mut self, client: ClientId, payload: &[u8]) {
        if let Some(conn) = self.conn(client) {
            let _ = conn.send_ping(payload);
        }
        self.drive();
    }

    /// Starts the closing handshake from the client.
    pub fn close(&mut self, client: ClientId, code: CloseCode) {
        let now = self.now;
        if let Some(conn) = self.conn(client) {
            let _ = conn.close(now, code, "");
        }
        self.drive();
    }

    /// Stops (or resumes) reading on the client's side: what the server sends stays in the
    /// pipe, and once the pipe is full the server's writes wait. A client that does not read
    /// does not answer pings either.
    pub fn set_reading(&mut self, client: ClientId, reading: bool) {
        self.clients[client.0].reading = reading;
        self.drive();
    }

    /// Shuts the client's sending side (the server reads the end of the stream).
    pub fn shutdown_write(&mut self, client: ClientId) {
        self.clients[client.0].write_closed = true;
        self.drive();
    }

    /// Starts the server's graceful shutdown.
    pub fn shutdown(&mut self) {
        for worker in &mut self.workers {
            worker.handle_remote(Remote::Shutdown, self.now);
        }
        self.drive();
    }

    /// Moves time on by `by`, waking the workers at every deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..10_000_000 {
            let next = self.workers.iter().filter_map(Worker::poll_timeout).min();
            // A deadline not after now was handled already: go on to the next one.
            let step = next
                .filter(|&at| at > self.now && at <= target)
                .unwrap_or(target);
            self.now = step;
            for worker in &mut self.workers {
                worker.handle_time(step);
            }
            self.drive();
            if step >= target {
                return;
            }
        }
        panic!("time did not reach its target");
    }

    fn conn(&mut self, client: ClientId) -> Option<&mut Connection> {
        match &mut self.clients[client.0].role {
            Peer::Open(conn) => Some(conn),
            _ => None,
        }
    }
}
