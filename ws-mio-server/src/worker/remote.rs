//! What crosses between workers: a room message once per worker (not once per member), a
//! handler's command for a connection another worker owns, and the order to shut down.

use crate::handler::Command;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use ws_proto::{EncodedFrame, Message};

/// A message for a worker.
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
    pub(crate) message: Message,
    pub(crate) plain: EncodedFrame,
}

impl RoomMessage {
    pub(crate) fn new(message: Message) -> RoomMessage {
        let plain = EncodedFrame::new(message.kind(), message.as_bytes());
        RoomMessage { message, plain }
    }
}

/// A worker's inbox, as the others and the server handle reach it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) inbox: Sender<Remote>,
    pub(crate) waker: Arc<mio::Waker>,
}
