//! [`WebSocketStream`]: a ws-proto [`Connection`] driven over any tokio transport.
//!
//! Every poll runs ws-proto's drain order once more: hand out the events already decoded (a
//! message ends the poll), write what is queued (pong replies, close frames, what was sent),
//! close the transport when the engine says so, handle the timers, then read. Writes therefore
//! go out in batches: the replies to every message of one read leave in one write, before the
//! stream waits for more input.

use crate::config::Config;
use crate::error::{Error, Timeout};
use crate::heartbeat::{Beat, Heartbeat};
use crate::room::Member;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use ws_proto::{
    CloseCode, CloseFrame, Connection, ConnectionState, EncodedFrame, Event, Message, MessageKind,
};

/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 64;

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// The engine is done with the transport; shutting it down.
    ShuttingDown,
    /// The transport is closed; the stream ends (after reporting a failure, if any).
    Ended,
}

/// A WebSocket connection over a transport `S` (a `TcpStream`, a TLS stream, anything
/// `AsyncRead + AsyncWrite + Unpin`), for either role, after the opening handshake
/// ([`crate::accept`], [`crate::connect`] and their builders make one).
///
/// It is a [`Stream`](futures_core::Stream) of received data messages and a
/// [`Sink`](futures_sink::Sink) of messages to send, with async [`Self::recv`],
/// [`Self::send`] and [`Self::close`] beside them. Pings are answered and the closing
/// handshake is answered by the engine; the stream ends (`None`) once the connection is
/// closed, and [`Self::close_frame`] tells what the peer said. A violation of the protocol by
/// the peer is answered with its close code and reported once as
/// [`Error::Protocol`] before the end.
///
/// The stream must be read for anything to happen: reading writes what is queued, answers
/// pings, sends heartbeats and keeps the close deadline.
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use tokio::net::TcpListener;
///
/// # async fn run() -> Result<(), ws_tokio::Error> {
/// let listener = TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = ws_tokio::accept(tcp).await?;
/// // Echo: `feed` queues without flushing; the next read writes every reply at once.
/// while let Some(message) = ws.next().await {
///     ws.feed(message?).await?;
/// }
/// # Ok(()) }
/// ```
pub struct WebSocketStream<S> {
    io: S,
    conn: Connection,
    read_buf: Box<[u8]>,
    /// The origin of the engine's clock.
    clock: Instant,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    heartbeat: Heartbeat,
    write_limit: usize,
    protocol: Option<String>,
    /// The peer's close frame: `Some(None)` for one without a status code.
    peer_close: Option<Option<CloseFrame>>,
    /// A failure to report once the transport is closed.
    failure: Option<Error>,
    started_close: bool,
    eof: bool,
    /// The last read filled the read buffer.
    read_full: bool,
    /// The heartbeat's pong is late, unless the input not read yet holds it.
    pong_overdue: bool,
    phase: Phase,
}

impl<S> std::fmt::Debug for WebSocketStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketStream")
            .field("conn", &self.conn)
            .field("protocol", &self.protocol)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Construction and getters.
impl<S> WebSocketStream<S> {
    /// Wraps a transport whose opening handshake is done, with the connection made for it
    /// (its negotiated extension attached), the subprotocol agreed on, and `leftover`, the
    /// bytes that arrived after the handshake's head. The handshake helpers call it; it is
    /// public for transports whose handshake was made elsewhere. The connection must deliver
    /// whole messages (`streaming` off in its [`ws_proto::Config`]): the stream hands out
    /// [`Message`]s, not chunks.
    pub fn from_parts(
        io: S,
        mut conn: Connection,
        leftover: &[u8],
        protocol: Option<String>,
        config: &Config,
    ) -> Self {
        let now = Instant::now();
        let mut failure = None;
        if !leftover.is_empty() {
            failure = conn.receive(leftover).err().map(Error::Protocol);
        }
        WebSocketStream {
            io,
            conn,
            read_buf: vec![0; config.read_buffer_size.max(1)].into_boxed_slice(),
            clock: now,
            timer: Box::pin(tokio::time::sleep_until(now)),
            timer_at: None,
            heartbeat: Heartbeat::new(config.ping_interval, config.pong_timeout, now),
            write_limit: config.write_buffer_limit,
            protocol,
            peer_close: None,
            failure,
            started_close: false,
            eof: false,
            read_full: false,
            pong_overdue: false,
            phase: Phase::Open,
        }
    }

    /// The subprotocol agreed on at the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The peer's close frame once it arrived: `Some(None)` if it carried no status code.
    pub fn close_frame(&self) -> Option<Option<&CloseFrame>> {
        self.peer_close.as_ref().map(Option::as_ref)
    }

    /// The round-trip time the latest answered heartbeat ping measured
    /// ([`Config::ping_interval`]).
    pub fn rtt(&self) -> Option<Duration> {
        self.heartbeat.rtt()
    }

    /// The engine, for its state, limits and counters.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport, mutably (reading or writing it directly breaks the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Whether the stream has ended: the transport is closed.
    pub fn is_terminated(&self) -> bool {
        self.phase == Phase::Ended && self.failure.is_none()
    }
}

/// Driving: the poll functions behind the Stream and Sink implementations.
impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// The next data message, or the end; `discard` drops messages instead (closing).
    pub(crate) fn poll_drive(
        &mut self,
        cx: &mut Context<'_>,
        discard: bool,
    ) -> Poll<Option<Result<Message, Error>>> {
        loop {
            match self.phase {
                Phase::Open => {}
                Phase::ShuttingDown => {
                    // Errors closing a transport that is done with change nothing.
                    let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                    self.phase = Phase::Ended;
                    continue;
                }
                Phase::Ended => return Poll::Ready(self.failure.take().map(Err)),
            }
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::Message(message) if !discard => return Poll::Ready(Some(Ok(message))),
                    Event::Pong(payload) => self.heartbeat.on_pong(&payload, Instant::now()),
                    Event::Close(frame) => self.peer_close = Some(frame),
                    _ => {}
                }
            }
            // After a read that filled the buffer more input is likely waiting: its replies
            // can leave in the same write, up to the write limit.
            let defer_write = self.read_full && self.conn.pending_transmit_len() < self.write_limit;
            if !defer_write {
                if let Err(e) = ready_or_pending(self.poll_write_queued(cx)) {
                    self.fail(Error::Io(e));
                    continue;
                }
            }
            if self.conn.should_close_transport() {
                self.finish();
                continue;
            }
            if self.poll_timers(cx).is_ready() {
                continue;
            }
            let mut buf = ReadBuf::new(&mut self.read_buf);
            let read = Pin::new(&mut self.io).poll_read(cx, &mut buf);
            self.read_full = matches!(read, Poll::Ready(Ok(()))) && buf.remaining() == 0;
            if read.is_pending() && self.pong_overdue {
                self.fail(Error::Timeout(Timeout::Pong));
                continue;
            }
            if read.is_pending() && defer_write && self.conn.has_pending_transmit() {
                // Nothing more to read after all: write what was held back, then wait.
                continue;
            }
            match ready!(read) {
                Ok(()) if buf.filled().is_empty() => {
                    self.eof = true;
                    self.conn.receive_eof();
                }
                Ok(()) => {
                    let n = buf.filled().len();
                    if let Err(violation) = self.conn.receive(&self.read_buf[..n]) {
                        self.failure.get_or_insert(Error::Protocol(violation));
                    }
                }
                // After the closing handshake the transport's end is all that is awaited,
                // and a reset is as good an end as any.
                Err(_)
                    if self.peer_close.is_some()
                        && self.conn.state() == ConnectionState::Closed =>
                {
                    self.eof = true;
                    self.conn.receive_eof();
                }
                Err(e) => self.fail(Error::Io(e)),
            }
        }
    }

    /// Writes queued bytes until none are left (`Ready`) or the transport is full (`Pending`).
    pub(crate) fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.conn.has_pending_transmit() {
            let n = if self.io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                let count = self.conn.transmit_io_slices(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?
            } else {
                let mut slices: [&[u8]; 1] = [&[]];
                self.conn.transmit_slices(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write(cx, slices[0]))?
            };
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.conn.advance_transmit(n);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Feeds the engine the time and runs the heartbeat; arms the timer for the next deadline.
    /// `Ready` when something happened that the drive loop must look at.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let engine_due = self.conn.poll_timeout();
        let beat_due = self.heartbeat.deadline();
        if engine_due.is_none() && beat_due.is_none() {
            return Poll::Pending;
        }
        let now = Instant::now();
        self.pong_overdue = false;
        self.conn.handle_time(now.duration_since(self.clock));
        match self.heartbeat.poll(now) {
            Beat::Wait => {}
            Beat::Ping(payload) => {
                // A ping after this side's close frame is not allowed; the close deadline
                // bounds the wait then.
                let _ = self.conn.send_ping(&payload);
                return Poll::Ready(());
            }
            Beat::TimedOut => {
                // Judged after the next read: a stream that was not read for a while may
                // have the pong waiting in the socket.
                self.pong_overdue = true;
                return Poll::Pending;
            }
        }
        if self.conn.should_close_transport() {
            return Poll::Ready(());
        }
        let due = [
            self.conn.poll_timeout().map(|d| self.clock + d),
            self.heartbeat.deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(due) = due else {
            return Poll::Pending;
        };
        if self.timer_at != Some(due) {
            self.timer.as_mut().reset(due);
            self.timer_at = Some(due);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer_at = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Gives up on the connection: the error is reported once the transport is closed.
    fn fail(&mut self, error: Error) {
        self.failure.get_or_insert(error);
        self.phase = Phase::ShuttingDown;
    }

    /// The engine is done with the transport.
    fn finish(&mut self) {
        if self.eof && self.peer_close.is_none() && !self.started_close {
            self.failure.get_or_insert(Error::ClosedAbnormally);
        }
        self.phase = Phase::ShuttingDown;
    }

    /// Waits until fewer than the write limit's bytes are queued.
    pub(crate) fn poll_ready_to_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.phase != Phase::Open || !self.conn.can_send() {
            return Poll::Ready(Err(Error::Closed));
        }
        while self.conn.pending_transmit_len() >= self.write_limit {
            if let Err(e) = ready!(self.poll_write_queued(cx)) {
                self.fail(Error::Io(e));
                return Poll::Ready(Err(Error::Closed));
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues a message (after [`Self::poll_ready_to_send`]).
    pub(crate) fn queue(&mut self, message: &Message) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::Closed);
        }
        self.conn.send(message).map_err(Error::Usage)
    }

    /// Queues a frame encoded once for many connections (after [`Self::poll_ready_to_send`]).
    pub(crate) fn queue_encoded(&mut self, frame: &EncodedFrame) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::Closed);
        }
        self.conn.send_encoded(frame).map_err(Error::Usage)
    }

    /// Whether data may still be queued: open, and no close frame sent.
    pub(crate) fn can_queue(&self) -> bool {
        self.phase == Phase::Open && self.conn.can_send()
    }

    /// Whether fewer than the write limit's bytes are queued.
    pub(crate) fn below_write_limit(&self) -> bool {
        self.conn.pending_transmit_len() < self.write_limit
    }

    /// Writes everything queued.
    pub(crate) fn poll_flush_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.phase != Phase::Open {
            return Poll::Ready(Err(Error::Closed));
        }
        match ready!(self.poll_write_queued(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => {
                self.fail(Error::Io(e));
                Poll::Ready(Err(Error::Closed))
            }
        }
    }

    /// Runs the connection to its end, dropping the messages that still arrive; a failure
    /// met on the way is the result.
    pub(crate) fn poll_until_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match ready!(self.poll_drive(cx, true)) {
            Some(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// Async methods.
impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// The next data message; `None` once the connection is closed. A failure is reported
    /// once (`Some(Err(..))`) before the end.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        std::future::poll_fn(|cx| self.poll_drive(cx, false)).await
    }

    /// Sends a message and writes everything queued. To send several and write them
    /// together, use [`futures_util::SinkExt::feed`] and then `flush` (or read: reading
    /// writes what is queued).
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.queue(&message)?;
        std::future::poll_fn(|cx| self.poll_flush_queued(cx)).await
    }

    /// Queues a frame encoded once for many connections without writing it (the next read or
    /// flush writes it), waiting first while the write limit's bytes are queued. Only a server
    /// sends [`EncodedFrame`]s ([`ws_proto::UsageError::NotServer`] otherwise). An
    /// uncompressed frame ([`EncodedFrame::new`]) suits every server connection, one that
    /// negotiated permessage-deflate included (a frame without RSV1 is a message sent
    /// uncompressed); a compressed one only a connection whose
    /// [`Connection::shared_deflate_window_bits`] are the frame's
    /// ([`ws_proto::UsageError::ExtensionMismatch`] otherwise, and nothing is sent).
    ///
    /// ```no_run
    /// use futures_util::SinkExt;
    /// use ws_tokio::{EncodedFrame, MessageKind};
    ///
    /// # async fn run(mut clients: Vec<ws_tokio::WebSocketStream<tokio::net::TcpStream>>)
    /// # -> Result<(), ws_tokio::Error> {
    /// let frame = EncodedFrame::new(MessageKind::Text, b"to everyone");
    /// for ws in &mut clients {
    ///     ws.feed_encoded(&frame).await?;
    ///     ws.flush().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn feed_encoded(&mut self, frame: &EncodedFrame) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.queue_encoded(frame)
    }

    /// [`Self::feed_encoded`], then writes everything queued.
    pub async fn send_encoded(&mut self, frame: &EncodedFrame) -> Result<(), Error> {
        self.feed_encoded(frame).await?;
        std::future::poll_fn(|cx| self.poll_flush_queued(cx)).await
    }

    /// The next data message, as [`Self::recv`], sending meanwhile what `member`'s
    /// [`Room`](crate::room::Room) publishes: the frames are copied into the write buffer when
    /// this stream is polled, and everything published since the last poll leaves in one
    /// write. Reports [`Error::Lagged`] (the connection stays open) if the room dropped frames
    /// this member had not sent yet, its peer reading too slowly; a connection that is closing
    /// takes no more frames.
    pub async fn recv_with(&mut self, member: &mut Member) -> Option<Result<Message, Error>> {
        std::future::poll_fn(|cx| {
            if let Err(e) = member.feed(self, cx) {
                return Poll::Ready(Some(Err(e)));
            }
            self.poll_drive(cx, false)
        })
        .await
    }

    /// Sends one fragment of a message sent in pieces (RFC 6455 section 5.4): the first call
    /// starts a message of `kind`, the call with `fin` ends it. See
    /// [`Connection::send_fragment`].
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.conn.send_fragment(kind, data, fin)?;
        std::future::poll_fn(|cx| self.poll_flush_queued(cx)).await
    }

    /// Sends a ping of at most 125 bytes; its pong is not reported (the heartbeat's are
    /// measured, see [`Self::rtt`]).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_ready_to_send(cx)).await?;
        self.conn.send_ping(payload)?;
        std::future::poll_fn(|cx| self.poll_flush_queued(cx)).await
    }

    /// Starts the closing handshake without waiting for it: the stream keeps delivering what
    /// arrives until the peer's close frame, then ends. Sending is refused from now on.
    pub fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = Instant::now().duration_since(self.clock);
        self.conn.close(now, code, reason)?;
        self.started_close = true;
        Ok(())
    }

    /// Closes the connection: sends a close frame (unless one was sent), waits for the
    /// peer's (within [`ws_proto::Config::close_timeout`]) and closes the transport.
    /// Messages that arrive meanwhile are dropped; to read them, call [`Self::start_close`]
    /// and read the stream to its end instead.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.phase == Phase::Open && self.conn.can_send() {
            self.start_close(code, reason)?;
        }
        std::future::poll_fn(|cx| self.poll_until_closed(cx)).await
    }
}

/// A poll that is not ready counts as success: what could not be written stays queued.
fn ready_or_pending(poll: Poll<std::io::Result<()>>) -> std::io::Result<()> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Ok(()),
    }
}
