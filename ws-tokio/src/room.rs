//! [`Room`]: one message to many connections, encoded once. A room keeps the latest frames
//! published to it in a bounded log; each [`Member`] is a cursor into that log, and its
//! connection's task copies the frames it has not sent yet straight into its write buffer
//! when it runs ([`WebSocketStream::recv_with`]). Publishing touches no member: it appends one
//! frame and wakes the members that had caught up, so a member woken once sends everything
//! published meanwhile in one write. A member that falls further behind than the log reaches
//! has lagged ([`Error::Lagged`]): the log, not the slowest member, sets what the room holds.

use crate::error::Error;
use crate::stream::WebSocketStream;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite};
use ws_proto::{EncodedFrame, Message};

/// A room's default bound on the frames it keeps.
pub const DEFAULT_MAX_FRAMES: usize = 1024;
/// A room's default bound on the bytes of the frames it keeps (the newest frame is kept
/// whatever its size).
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;

/// A broadcast group of server connections: [`Room::publish`] encodes a message once, and
/// every [`Member`] sends the same bytes to its peer. Cloning gives another handle to the same
/// room.
///
/// Each member's connection is read with [`WebSocketStream::recv_with`], which sends what the
/// room published while it waits for the peer's messages. What the room holds is bounded by
/// its limits ([`Room::with_limits`]) and what each member holds by its connection's
/// [`crate::Config::write_buffer_limit`]; a member whose peer reads too slowly to keep up gets
/// [`Error::Lagged`] and decides (closing it with 1008 is the usual answer).
///
/// ```no_run
/// use tokio::net::TcpListener;
/// use ws_tokio::room::Room;
/// use ws_tokio::{CloseCode, Error};
///
/// # async fn run() -> Result<(), Error> {
/// let listener = TcpListener::bind("127.0.0.1:9001").await?;
/// let room = Room::new();
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     let room = room.clone();
///     tokio::spawn(async move {
///         let mut ws = ws_tokio::accept(tcp).await?;
///         let mut member = room.join();
///         // Every message received goes to everyone; the room's messages go out meanwhile.
///         while let Some(next) = ws.recv_with(&mut member).await {
///             match next {
///                 Ok(message) => room.publish(&message),
///                 Err(Error::Lagged { .. }) => {
///                     return ws.close(CloseCode::POLICY_VIOLATION, "too slow").await;
///                 }
///                 Err(e) => return Err(e),
///             }
///         }
///         Ok::<_, Error>(())
///     });
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Room {
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let log = self.lock();
        f.debug_struct("Room")
            .field("frames", &log.frames.len())
            .field("bytes", &log.bytes)
            .field("members", &(log.wakers.len() - log.free_slots.len()))
            .finish_non_exhaustive()
    }
}

/// The frames a room keeps, and who waits for the next one.
struct Log {
    frames: VecDeque<EncodedFrame>,
    /// The sequence number of `frames[0]`; the next frame published gets `first + len`.
    first: u64,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// The members' wakers, by slot: `Some` while that member has sent everything and waits.
    wakers: Vec<Option<Waker>>,
    free_slots: Vec<usize>,
    /// The slots whose waker is set, so that publishing visits only the members that wait.
    waiting: Vec<usize>,
}

impl Log {
    fn end(&self) -> u64 {
        self.first + self.frames.len() as u64
    }
}

impl Default for Room {
    fn default() -> Self {
        Room::new()
    }
}

impl Room {
    /// A room keeping at most [`DEFAULT_MAX_FRAMES`] frames and [`DEFAULT_MAX_BYTES`] bytes.
    pub fn new() -> Room {
        Room::with_limits(DEFAULT_MAX_FRAMES, DEFAULT_MAX_BYTES)
    }

    /// A room keeping at most `max_frames` frames (at least one) and `max_bytes` bytes of them
    /// (the newest frame is kept whatever its size). A member more than that behind has lagged.
    pub fn with_limits(max_frames: usize, max_bytes: usize) -> Room {
        let max_frames = max_frames.max(1);
        Room {
            log: Arc::new(Mutex::new(Log {
                frames: VecDeque::with_capacity(max_frames.min(DEFAULT_MAX_FRAMES)),
                first: 0,
                bytes: 0,
                max_frames,
                max_bytes,
                wakers: Vec::new(),
                free_slots: Vec::new(),
                waiting: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        lock(&self.log)
    }

    /// A new member, which receives what is published from now on.
    pub fn join(&self) -> Member {
        let mut log = self.lock();
        let slot = match log.free_slots.pop() {
            Some(slot) => slot,
            None => {
                log.wakers.push(None);
                log.wakers.len() - 1
            }
        };
        Member {
            log: self.log.clone(),
            slot,
            next: log.end(),
        }
    }

    /// Sends a data message to every member: encoded once, as one uncompressed frame, which
    /// every server connection takes (permessage-deflate's included: a frame without RSV1 is
    /// a message sent uncompressed).
    pub fn publish(&self, message: &Message) {
        self.publish_encoded(EncodedFrame::new(message.kind(), message.as_bytes()));
    }

    /// Sends an encoded frame to every member. A compressed frame
    /// (`ws_proto::deflate::compress_shared`) suits a room whose members all negotiated
    /// permessage-deflate with those window bits; any other member's
    /// [`WebSocketStream::recv_with`] reports [`Error::Usage`] (`ExtensionMismatch`).
    pub fn publish_encoded(&self, frame: EncodedFrame) {
        let woken: Vec<Waker> = {
            let mut log = self.lock();
            log.bytes += frame.as_bytes().len();
            log.frames.push_back(frame);
            while log.frames.len() > log.max_frames
                || (log.bytes > log.max_bytes && log.frames.len() > 1)
            {
                if let Some(old) = log.frames.pop_front() {
                    log.bytes -= old.as_bytes().len();
                    log.first += 1;
                }
            }
            let Log {
                waiting, wakers, ..
            } = &mut *log;
            waiting
                .drain(..)
                .filter_map(|slot| wakers[slot].take())
                .collect()
        };
        // Woken outside the lock: on a multi-threaded runtime the members run at once.
        for waker in woken {
            waker.wake();
        }
    }

    /// The members in the room now.
    pub fn members(&self) -> usize {
        let log = self.lock();
        log.wakers.len() - log.free_slots.len()
    }

    /// The frames the room keeps now.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Whether the room keeps no frame.
    pub fn is_empty(&self) -> bool {
        self.lock().frames.is_empty()
    }

    /// The bytes of the frames the room keeps now.
    pub fn held_bytes(&self) -> usize {
        self.lock().bytes
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    // A panic elsewhere leaves the log consistent: every change is made in full under the lock.
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection's place in a [`Room`]: the next frame it has to send. Dropping it leaves
/// the room.
pub struct Member {
    log: Arc<Mutex<Log>>,
    slot: usize,
    next: u64,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut log = lock(&self.log);
        if log.wakers[self.slot].take().is_some() {
            let slot = self.slot;
            log.waiting.retain(|&s| s != slot);
        }
        log.free_slots.push(self.slot);
    }
}

impl Member {
    /// Queues on `ws` the frames published since the last call, as far as its write limit
    /// allows, writing when it is reached; registers to be woken by the next publication once
    /// everything is queued, or by the transport while it is full. A connection that no
    /// longer sends (closing, failed) takes nothing. The errors are the member's own: lagged,
    /// or a frame the connection refuses (skipped).
    pub(crate) fn feed<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        cx: &mut Context<'_>,
    ) -> Result<(), Error> {
        loop {
            if !ws.can_queue() {
                return Ok(());
            }
            {
                let mut log = lock(&self.log);
                if self.next < log.first {
                    let missed = log.first - self.next;
                    self.next = log.first;
                    return Err(Error::Lagged { missed });
                }
                let end = log.end();
                while self.next < end && ws.below_write_limit() {
                    let frame = &log.frames[(self.next - log.first) as usize];
                    // A frame this connection refuses (a compressed one it cannot take) is
                    // skipped, not offered again.
                    self.next += 1;
                    ws.queue_encoded(frame)?;
                }
                if self.next == end {
                    let waker = &mut log.wakers[self.slot];
                    match waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        Some(w) => w.clone_from(cx.waker()),
                        None => {
                            *waker = Some(cx.waker().clone());
                            let slot = self.slot;
                            log.waiting.push(slot);
                        }
                    }
                    return Ok(());
                }
            }
            // At the write limit with frames left: write (outside the room's lock), then go
            // on, or wait for the transport. A transport that failed is the stream's to
            // report, as it reports any other failure.
            match ws.poll_ready_to_send(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) | Poll::Pending => return Ok(()),
            }
        }
    }
}
