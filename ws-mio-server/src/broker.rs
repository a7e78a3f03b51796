//! The broker: what carries room messages between server instances. The server tells it
//! three things, none per member and none that waits: this instance's first member joined a
//! room ([`Broker::subscribe`]), its last member left ([`Broker::unsubscribe`]), and a message
//! was published to a room here ([`Broker::publish`], after it reached the local members).
//! The broker hands messages published elsewhere to [`Delivery::publish`], which fans them out
//! to the local members the same way, encoded once, and never back to the broker: a message
//! crosses between instances once and cannot loop.
//!
//! The default, [`Local`], does nothing: one instance needs nothing carried. A broker over
//! Redis lives in its own crate (`ws-redis`), so the server itself does not depend on a Redis
//! client.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use ws_mio_server::broker::Broker;
//! use ws_mio_server::testing::TestServer;
//! use ws_mio_server::{Broadcast, Config};
//! use ws_proto::Message;
//!
//! /// Counts the rooms this instance has members in.
//! #[derive(Default)]
//! struct Interest(AtomicUsize);
//! impl Broker for Interest {
//!     fn subscribe(&self, _: &Arc<str>) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//!     fn unsubscribe(&self, _: &Arc<str>) {
//!         self.0.fetch_sub(1, Ordering::Relaxed);
//!     }
//!     fn publish(&self, _: &Arc<str>, _: &Message) {}
//! }
//!
//! let interest = Arc::new(Interest::default());
//! let mut server = TestServer::with_broker(Config::default(), Broadcast, interest.clone());
//! let client = server.connect("/");
//! assert_eq!(interest.0.load(Ordering::Relaxed), 1, "the broadcast room");
//! server.close(client, ws_proto::CloseCode::NORMAL);
//! assert_eq!(interest.0.load(Ordering::Relaxed), 0);
//! ```

use crate::metrics::{add, Metrics};
use crate::worker::remote::{Offered, Peer, Remote, RoomMessage};
use std::sync::Arc;
use ws_proto::Message;

/// Carries room messages between this server instance and others.
///
/// Every method is called from a worker thread while it serves connections (and
/// `subscribe`/`unsubscribe` while the room's record is locked, so the calls about one room
/// arrive in the order of the changes they report): each must return quickly, without waiting
/// on the network, and must not call back into the server.
pub trait Broker: Send + Sync + 'static {
    /// Called once as the server starts, before any connection: where to deliver the messages
    /// published on other instances. The default ignores it (a broker that receives nothing).
    fn attach(&self, delivery: Delivery) {
        let _ = delivery;
    }

    /// The first member of `room` on this instance joined: messages published to it elsewhere
    /// are wanted from now on.
    fn subscribe(&self, room: &Arc<str>);

    /// The last member of `room` on this instance left: its messages are no longer wanted.
    fn unsubscribe(&self, room: &Arc<str>);

    /// `message` was published to `room` on this instance, and has been queued to the local
    /// members already.
    fn publish(&self, room: &Arc<str>, message: &Message);

    /// Appends the broker's own metrics, in Prometheus text, to what the admin listener's
    /// `/metrics` serves. The default has none.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// The broker of a single instance: nothing to carry, so nothing done.
#[derive(Debug, Default, Clone, Copy)]
pub struct Local;

impl Broker for Local {
    fn subscribe(&self, _: &Arc<str>) {}
    fn unsubscribe(&self, _: &Arc<str>) {}
    fn publish(&self, _: &Arc<str>, _: &Message) {}
}

/// Where a broker delivers a message published on another instance: to this instance's
/// members of the room, on every worker. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct Delivery {
    peers: Arc<[Peer]>,
    metrics: Metrics,
}

impl Delivery {
    pub(crate) fn new(peers: Arc<[Peer]>, metrics: Metrics) -> Delivery {
        Delivery { peers, metrics }
    }

    /// Queues `message` for `room`'s local members: encoded once, offered once to each
    /// worker's bounded inbox without waiting. A worker whose inbox is full misses it
    /// (counted in `ws_inbox_drops_total`), as for a message from another worker. It does not
    /// go to the broker again.
    pub fn publish(&self, room: &str, message: &Message) {
        let outgoing = RoomMessage::new(message.clone());
        let room: Arc<str> = Arc::from(room);
        for (i, peer) in self.peers.iter().enumerate() {
            match peer.offer(Remote::Publish(room.clone(), outgoing.clone())) {
                Offered::Queued => peer.wake(),
                Offered::Dropped => add(&self.metrics.worker(i).inbox_drops_total, 1),
                Offered::Gone => {}
            }
        }
    }
}
