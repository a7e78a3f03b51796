//! The I/O layer of a worker: a mio event loop that owns the listener (the first worker also
//! the admin listener), the sockets and the inbox, moves bytes between the sockets and the [`Worker`], and wakes it. It decides
//! nothing about connections; it makes the system calls.

use super::remote::{Offered, Peer, Remote};
use super::tls_transport::TlsStream;
use super::transport::Transport;
use super::{Io, Key, Listener, Worker, TURN_BUDGET};
use crate::handler::Handler;
use crate::memory::MemoryReturn;
use crate::tls::TlsFiles;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, ErrorKind, IoSlice, Write};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX - 1);
pub(crate) const WAKER: Token = Token(usize::MAX - 2);
const ADMIN_LISTENER: Token = Token(usize::MAX - 3);
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

/// The listeners a worker accepts from.
pub(crate) struct Listeners {
    pub(crate) public: TcpListener,
    pub(crate) admin: Option<TcpListener>,
    /// The public listener's TLS, when it serves wss (the admin listener is always plain).
    pub(crate) tls: Option<Arc<TlsFiles>>,
}

/// A worker with its sockets.
pub(crate) struct EventLoop<H: Handler> {
    worker: Worker<H>,
    poll: Poll,
    listener: Option<TcpListener>,
    /// Kept while draining, so `/readyz` can say so.
    admin: Option<TcpListener>,
    /// Sockets by connection key.
    sockets: Vec<Option<Transport>>,
    tls: Option<Arc<TlsFiles>>,
    inbox: Receiver<Remote>,
    peers: Arc<[Peer]>,
    wake_peer: Vec<bool>,
    read_buf: Vec<u8>,
    /// Connections that spent their turn's budget with input left: read again next round.
    unfinished: Vec<Key>,
    /// The first worker gives freed memory back after bursts ([`crate::memory`]).
    memory: Option<MemoryReturn>,
    start: Instant,
}

impl<H: Handler> EventLoop<H> {
    pub(crate) fn new(
        worker: Worker<H>,
        poll: Poll,
        listeners: Listeners,
        memory: Option<MemoryReturn>,
        inbox: Receiver<Remote>,
        peers: Arc<[Peer]>,
        start: Instant,
    ) -> io::Result<EventLoop<H>> {
        let Listeners {
            public: mut listener,
            mut admin,
            tls,
        } = listeners;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(admin) = &mut admin {
            poll.registry()
                .register(admin, ADMIN_LISTENER, Interest::READABLE)?;
        }
        Ok(EventLoop {
            worker,
            poll,
            listener: Some(listener),
            admin,
            sockets: Vec::new(),
            tls,
            inbox,
            wake_peer: vec![false; peers.len()],
            peers,
            read_buf: vec![0; READ_BUFFER],
            unfinished: Vec::new(),
            memory,
            start,
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs until shutdown has drained every connection.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.unfinished.is_empty() {
                let check = self.memory.as_ref().and_then(MemoryReturn::next_check);
                [self.worker.poll_timeout(), check]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|at| at.saturating_sub(self.now()))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = self.now();
            // Those left with input last round go first, each for one more budget.
            for key in std::mem::take(&mut self.unfinished) {
                self.read(key, Drain::UntilEnd, now);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(Listener::Public, now),
                    ADMIN_LISTENER => self.accept_all(Listener::Admin, now),
                    WAKER => {
                        while let Ok(remote) = self.inbox.try_recv() {
                            self.worker.handle_remote(remote, now);
                        }
                    }
                    Token(key) => {
                        if event.is_read_closed() || event.is_error() {
                            self.read(key, Drain::UntilEnd, now);
                        } else if event.is_readable() {
                            self.read(key, Drain::UntilShort, now);
                        }
                        if event.is_writable() {
                            self.write(key);
                        }
                    }
                }
            }
            self.worker.handle_time(now);
            self.settle(now);
            if let Some(memory) = &mut self.memory {
                if !events.is_empty() {
                    memory.note_activity();
                }
                memory.run(now, events.is_empty());
            }
            if self.worker.is_draining() {
                if let Some(mut listener) = self.listener.take() {
                    let _ = self.poll.registry().deregister(&mut listener);
                }
            }
            if self.worker.is_finished() {
                return Ok(());
            }
        }
    }

    /// Carries out the worker's orders until it has none: reads, writes, closes, messages to
    /// other workers.
    fn settle(&mut self, now: Duration) {
        loop {
            if let Some(io) = self.worker.poll_io() {
                match io {
                    Io::Read(key) => self.read(key, Drain::UntilEnd, now),
                    Io::Close(key) => self.close(key),
                }
            } else if let Some(key) = self.worker.poll_dirty() {
                self.write(key);
            } else {
                break;
            }
        }
        while let Some((worker, remote)) = self.worker.poll_outbound() {
            match self.peers[worker].offer(remote) {
                Offered::Queued => self.wake_peer[worker] = true,
                Offered::Dropped => self.worker.inbox_full(worker),
                Offered::Gone => {}
            }
        }
        for (worker, wake) in self.wake_peer.iter_mut().enumerate() {
            if std::mem::take(wake) {
                self.peers[worker].wake();
            }
        }
    }

    fn accept_all(&mut self, origin: Listener, now: Duration) {
        // Close what the worker removed first: a new connection may get its key.
        self.settle(now);
        loop {
            let listener = match origin {
                Listener::Public => &self.listener,
                Listener::Admin => &self.admin,
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((mut socket, peer)) => match self.worker.accept(peer, origin, now) {
                    Ok(key) => {
                        let _ = socket.set_nodelay(true);
                        let tls = match (&self.tls, origin) {
                            (Some(tls), Listener::Public) => match tls.accept() {
                                Ok(tls) => Some(tls),
                                Err(e) => {
                                    tracing::warn!(error = %e, "TLS state failed");
                                    self.worker.transport_failed(key);
                                    continue;
                                }
                            },
                            _ => None,
                        };
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if let Err(e) =
                            self.poll
                                .registry()
                                .register(&mut socket, Token(key), interest)
                        {
                            tracing::warn!(error = %e, "register failed");
                            self.worker.transport_failed(key);
                            continue;
                        }
                        if self.sockets.len() <= key {
                            self.sockets.resize_with(key + 1, || None);
                        }
                        self.sockets[key] = Some(match tls {
                            Some(tls) => Transport::Tls(Box::new(TlsStream::new(socket, tls))),
                            None => Transport::Plain(socket),
                        });
                        self.report_held(key);
                        // The request may already be waiting.
                        self.read(key, Drain::UntilEnd, now);
                    }
                    // Best effort: a fresh socket's send buffer takes this small answer whole.
                    // Over TLS an answer would need the handshake first: the refused connection
                    // is closed.
                    Err(refusal) if self.tls.is_none() || origin == Listener::Admin => {
                        drop(socket.write(&refusal))
                    }
                    Err(_) => drop(socket),
                },
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

    /// One turn of `key`'s input: what waits from its last turn, then reads until the socket
    /// is empty (as `drain` tells), the connection ends, the worker stops wanting its input, or
    /// the turn's budget is spent (then it goes on next round, after the others).
    fn read(&mut self, key: Key, drain: Drain, now: Duration) {
        let mut budget = TURN_BUDGET;
        self.worker.resume_input(key, now, &mut budget);
        let mut buf = std::mem::take(&mut self.read_buf);
        while budget > 0 && self.worker.wants_read(key) {
            let Some(transport) = self.sockets.get_mut(key).and_then(Option::as_mut) else {
                break;
            };
            match transport.read(&mut buf) {
                Ok(0) => {
                    self.worker.receive_eof(key, now);
                    break;
                }
                Ok(n) => {
                    let drained = n < buf.len() && transport.short_read_drains();
                    self.worker.receive(key, &mut buf[..n], now, &mut budget);
                    if drained && drain == Drain::UntilShort {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.worker.transport_failed(key);
                    break;
                }
            }
        }
        self.read_buf = buf;
        self.report_held(key);
        if budget == 0 && (self.worker.wants_read(key) || self.worker.input_waits(key)) {
            self.unfinished.push(key);
        }
    }

    /// Writes what the worker has queued for `key` until the socket would block or nothing is
    /// left, one system call per turn (send for a single slice, writev for several).
    fn write(&mut self, key: Key) {
        let Some(transport) = self.sockets.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        // What the transport buffered first (TLS's ciphertext), even with nothing queued.
        match transport.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return self.worker.transport_failed(key),
        }
        loop {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = self.worker.transmit_io_slices(key, &mut slices);
            if n == 0 {
                break;
            }
            match transport.write_vectored(&slices[..n]) {
                Ok(0) => return self.worker.transport_failed(key),
                Ok(written) => self.worker.advance_transmit(key, written),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.worker.transport_failed(key),
            }
        }
        self.report_held(key);
        self.worker.written(key);
    }

    /// Tells the worker what `key`'s transport holds, for its memory budget (a plain socket
    /// holds nothing: no call).
    fn report_held(&mut self, key: Key) {
        if let Some(Some(transport @ Transport::Tls(_))) = self.sockets.get(key) {
            self.worker.transport_holds(key, transport.held());
        }
    }

    fn close(&mut self, key: Key) {
        if let Some(mut transport) = self.sockets.get_mut(key).and_then(Option::take) {
            transport.close();
            let _ = self.poll.registry().deregister(transport.socket());
        }
    }
}
