//! What crosses between workers: a room message once per worker (not once per member), a
//! handler's command for a connection another worker owns, and the order to shut down.
//!
//! Each worker's inbox is bounded ([`INBOX_CAPACITY`]). A worker or the server handle that
//! finds an inbox full drops the room message or command (counted in
//! `ws_inbox_drops_total`): a worker that far behind is served like a slow consumer, and
//! nobody waits on it. Only the order to shut down waits for room.

use crate::handler::{Command, ConnId, HttpResponse};
use crate::history::{Answer, Position};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use ws_proto::{CloseCode, EncodedFrame, Message};

/// A message for a worker.
#[derive(Debug)]
pub(crate) enum Remote {
    /// Deliver to the local members of a room.
    Publish(Arc<str>, RoomMessage),
    /// A handler's command about a connection this worker owns.
    Command(Command),
    /// The answer to a read of a room's history by a connection this worker owns.
    Answer(Box<Answer>),
    /// Close every local member of a room (a user's room: disconnect the user).
    CloseRoom(Arc<str>, CloseCode, String),
    /// The answer to an admin API question asked on this worker's admin connection.
    Reply(ConnId, HttpResponse),
    /// Start the graceful shutdown.
    Shutdown,
}

/// A room message on its way to members: encoded once without compression, and kept whole so
/// each worker can compress it once per distinct compression window among its members.
#[derive(Debug, Clone)]
pub(crate) struct RoomMessage {
    pub(crate) message: Message,
    pub(crate) plain: EncodedFrame,
    /// Its place in the room's history, when it was recorded there.
    pub(crate) position: Option<Position>,
}

impl RoomMessage {
    pub(crate) fn new(message: Message) -> RoomMessage {
        RoomMessage::at(message, None)
    }

    pub(crate) fn at(message: Message, position: Option<Position>) -> RoomMessage {
        let plain = EncodedFrame::new(message.kind(), message.as_bytes());
        RoomMessage {
            message,
            plain,
            position,
        }
    }
}

/// Messages a worker's inbox holds before senders drop what they would add.
pub(crate) const INBOX_CAPACITY: usize = 8192;

/// A worker's inbox, as the others and the server handle reach it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) inbox: SyncSender<Remote>,
    /// The worker's event loop, woken to read its inbox; none under
    /// [`crate::testing::TestServer`], which reads every inbox each round.
    pub(crate) waker: Option<Arc<mio::Waker>>,
}

/// What became of a message offered to an inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// It is in the inbox: wake the worker.
    Queued,
    /// The inbox was full: dropped (count it).
    Dropped,
    /// The worker is gone (shutting down): nothing to do.
    Gone,
}

impl Peer {
    /// Offers `remote` without waiting.
    pub(crate) fn offer(&self, remote: Remote) -> Offered {
        match self.inbox.try_send(remote) {
            Ok(()) => Offered::Queued,
            Err(TrySendError::Full(_)) => Offered::Dropped,
            Err(TrySendError::Disconnected(_)) => Offered::Gone,
        }
    }

    /// Wakes the worker to read its inbox.
    pub(crate) fn wake(&self) {
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }
}
