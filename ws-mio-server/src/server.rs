//! Starting and stopping: one listener per worker on the same port (SO_REUSEPORT, so the kernel
//! spreads connections and no accept lock is shared), the admin listener on the first worker,
//! a thread per worker, and a handle to publish from outside, read metrics and shut down.

use crate::broker::{Broker, Delivery, Renderers};
use crate::config::Config;
use crate::handler::Handler;
use crate::memory::{Allocator, MemoryReturn};
use crate::metrics::Metrics;
use crate::rooms::RoomRegistry;
use crate::tls::TlsFiles;
use crate::worker::event_loop::{EventLoop, Listeners, WAKER};
use crate::worker::remote::{Peer, Remote, INBOX_CAPACITY};
use crate::worker::{Services, Worker};
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use ws_proto::Message;

/// A running server.
#[derive(Debug)]
pub struct Server {
    handle: ServerHandle,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

/// A cheap, cloneable way to reach a running server from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    peers: Arc<[Peer]>,
    delivery: Delivery,
    metrics: Metrics,
    rooms: Arc<RoomRegistry>,
    broker: Arc<dyn Broker>,
    users: Arc<crate::users::Users>,
    tls: Option<Arc<TlsFiles>>,
}

/// What a server can be given beyond its configuration and handler.
#[derive(Clone, Default)]
pub struct Hooks {
    /// What carries room messages between server instances ([`crate::broker`]); none: this
    /// instance is on its own ([`crate::broker::Local`]).
    pub broker: Option<Arc<dyn Broker>>,
    /// The memory allocator, asked to give freed memory back after bursts ([`crate::memory`]).
    pub allocator: Option<Arc<dyn Allocator>>,
}

impl Server {
    /// Binds the listeners and starts the workers. With `tls_cert` and `tls_key` set, the files
    /// are read first: a missing file, one without a certificate or key, or a key that is not
    /// the certificate's, fails the start (an [`io::ErrorKind::InvalidInput`] error wrapping
    /// the [`crate::tls::TlsError`]).
    pub fn start<H: Handler>(config: Config, handler: H) -> io::Result<Server> {
        Server::start_with(config, handler, Hooks::default())
    }

    /// Like [`Server::start`], with hooks into the rest of the program.
    pub fn start_with<H: Handler>(config: Config, handler: H, hooks: Hooks) -> io::Result<Server> {
        let workers = config.workers.max(1);
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                Some(Arc::new(TlsFiles::load(cert, key).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, e)
                })?))
            }
            _ => None,
        };
        // The first listener fixes the port (which may have been 0); the rest share it.
        let mut listeners = vec![bind(config.listen, true)?];
        let local_addr = listeners[0].local_addr()?;
        for _ in 1..workers {
            listeners.push(bind(local_addr, true)?);
        }
        // One socket, not shared: binding an address in use fails here, not silently.
        let mut admin = config.admin_listen.0.map(|a| bind(a, false)).transpose()?;
        let admin_addr = admin.as_ref().map(|l| l.local_addr()).transpose()?;
        if let Some(addr) = admin_addr.filter(|a| !a.ip().is_loopback()) {
            tracing::warn!(%addr, "the admin listener is not on loopback");
        }
        let handler = Arc::new(handler);
        let mut polls = Vec::new();
        let mut inboxes = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..workers {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = mpsc::sync_channel(INBOX_CAPACITY);
            peers.push(Peer {
                inbox: tx,
                waker: Some(waker),
            });
            polls.push(poll);
            inboxes.push(rx);
        }
        let peers: Arc<[Peer]> = peers.into();
        let render = renderer(&handler);
        let services = Services::new(Arc::new(config), (peers.clone(), render), hooks.broker);
        let delivery = services.delivery.clone();
        // Before any connection, so no message from elsewhere finds the broker unattached.
        services.broker.attach(delivery.clone());
        let start = Instant::now();
        let mut threads = Vec::new();
        for (index, ((poll, inbox), listener)) in
            polls.into_iter().zip(inboxes).zip(listeners).enumerate()
        {
            let worker = Worker::new(index, handler.clone(), services.clone());
            // The first worker takes the admin listener and the memory checks.
            let listeners = Listeners {
                public: mio::net::TcpListener::from_std(listener),
                admin: admin.take().map(mio::net::TcpListener::from_std),
                tls: tls.clone(),
            };
            let memory = hooks
                .allocator
                .clone()
                .filter(|_| index == 0)
                .map(MemoryReturn::new);
            let event_loop =
                EventLoop::new(worker, poll, listeners, memory, inbox, peers.clone(), start)?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("ws-worker-{index}"))
                    .spawn(move || event_loop.run())?,
            );
        }
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        match admin_addr {
            Some(admin) => tracing::info!(%local_addr, %admin, workers, scheme, "listening"),
            None => tracing::info!(%local_addr, workers, scheme, "listening"),
        }
        Ok(Server {
            handle: ServerHandle {
                local_addr,
                admin_addr,
                peers,
                delivery,
                metrics: services.metrics.clone(),
                rooms: services.rooms.clone(),
                broker: services.broker.clone(),
                users: services.users.clone(),
                tls,
            },
            threads,
        })
    }

    /// The handle.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The address the server listens on (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// The admin listener's address (with the real port if 0 was asked for), if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.handle.admin_addr
    }

    /// Waits for the workers to finish (after [`ServerHandle::shutdown`]).
    pub fn join(self) -> io::Result<()> {
        for thread in self.threads {
            thread
                .join()
                .map_err(|_| io::Error::other("worker panicked"))??;
        }
        Ok(())
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully: stop accepting, close every
    /// connection with 1012 and its reconnect hint ([`crate::restart`]), wait for the closing
    /// handshakes up to the drain timeout. SIGHUP reloads the TLS certificate and key
    /// ([`ServerHandle::reload_tls`]); a reload that fails is logged and the old ones stay.
    /// A second
    /// signal ends the process at once (exit status 128 + the signal). A signal that comes
    /// before this is called has its default effect; a program that must not lose one installs
    /// the handling before it starts the server, as [`crate::process::serve`] does.
    pub fn run_until_signal(self) -> io::Result<()> {
        self.run_until(ShutdownSignals::install()?)
    }

    /// [`Self::run_until_signal`] with signal handling installed earlier.
    pub fn run_until(self, signals: ShutdownSignals) -> io::Result<()> {
        let mut signals = signals.0;
        let handle = self.handle();
        std::thread::Builder::new()
            .name("ws-signals".into())
            .spawn(move || {
                let mut stopping = false;
                for signal in signals.forever() {
                    if signal == signal_hook::consts::SIGHUP {
                        match handle.reload_tls() {
                            Ok(true) => tracing::info!("TLS certificate reloaded"),
                            Ok(false) => tracing::info!("SIGHUP: no TLS to reload"),
                            Err(e) => tracing::error!(error = %e, "TLS reload failed; the old certificate stays"),
                        }
                    } else if !std::mem::replace(&mut stopping, true) {
                        tracing::info!(signal, "shutting down");
                        handle.shutdown();
                    } else {
                        tracing::warn!(signal, "second signal: exiting without waiting");
                        std::process::exit(128 + signal);
                    }
                }
            })?;
        self.join()
    }
}

/// SIGINT and SIGTERM caught (from [`Self::install`] on) for a graceful shutdown, and SIGHUP
/// for a TLS reload, to give to [`Server::run_until`].
#[derive(Debug)]
pub struct ShutdownSignals(signal_hook::iterator::Signals);

impl ShutdownSignals {
    /// Catches SIGINT, SIGTERM and SIGHUP from now on: one that comes while the server starts
    /// waits for it instead of killing the process.
    pub fn install() -> io::Result<ShutdownSignals> {
        signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])
        .map(ShutdownSignals)
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The metrics now.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The server's rooms and their members.
    pub fn rooms(&self) -> &RoomRegistry {
        &self.rooms
    }

    /// Publishes to a room's members on every worker of this instance, as
    /// [`Delivery::publish`] does (not to the broker: other instances do not get it).
    pub fn publish(&self, room: &str, message: &Message) {
        self.delivery.publish(room, message);
    }

    /// Sends a message to every connection of `user` on this instance and, through the
    /// broker, on every other ([`crate::Context::send_to_user`]).
    pub fn send_to_user(&self, user: &str, message: &Message) {
        let room = crate::users::user_room(user);
        self.delivery.publish(&room, message);
        self.broker.publish(&room, message);
    }

    /// Disconnects every connection of `user`, here and, through the broker, everywhere.
    pub fn disconnect_user(&self, user: &str, code: ws_proto::CloseCode, reason: &str) {
        let room = crate::users::user_room(user);
        self.delivery.close_room(&room, code, reason);
        self.broker.close_room(&room, code, reason);
    }

    /// Connections `user` has on this instance.
    pub fn user_connections(&self, user: &str) -> usize {
        self.users.connections(user)
    }

    /// Reads the TLS certificate and key files again: handshakes from now on present the new
    /// ones; open connections are not touched. `Ok(false)` when the server is not on TLS. On
    /// an error the certificate in use stays.
    pub fn reload_tls(&self) -> Result<bool, crate::tls::TlsError> {
        match &self.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// Whether the listener serves wss.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Starts the graceful shutdown (waiting for room in a full inbox, so it is never lost).
    pub fn shutdown(&self) {
        for peer in self.peers.iter() {
            let _ = peer.inbox.send(Remote::Shutdown);
            peer.wake();
        }
    }
}

/// The handler's [`Handler::render`] and [`Handler::render_presence`], for deliveries from any
/// thread.
pub(crate) fn renderer<H: Handler>(handler: &Arc<H>) -> Renderers {
    let (a, b) = (handler.clone(), handler.clone());
    (
        Arc::new(move |room, position, payload| a.render(room, position, payload)),
        Arc::new(move |room, user, joined| b.render_presence(room, user, joined)),
    )
}

/// A non-blocking listener on `addr`, sharing the port with others when `shared`; an error
/// names the address.
fn bind(addr: SocketAddr, shared: bool) -> io::Result<std::net::TcpListener> {
    let listen = || -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(shared)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    };
    listen().map_err(|e| io::Error::new(e.kind(), format!("listening on {addr}: {e}")))
}
