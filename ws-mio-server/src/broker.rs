//! The broker: what carries room messages between server instances. The server tells it
//! three things, none per member and none that waits: this instance's first member joined a
//! room ([`Broker::subscribe`]), its last member left ([`Broker::unsubscribe`]), and a message
//! was published to a room here ([`Broker::publish`], after it reached the local members).
//! The broker hands messages published elsewhere to [`Delivery::publish`], which fans them out
//! to the local members the same way, encoded once, and never back to the broker: a message
//! crosses between instances once and cannot loop.
//!
//! Recorded messages ([`crate::Context::publish_recorded`], [`crate::history`]) are numbered
//! and kept by the broker when it [`Broker::records`]: it delivers each, numbered, to every
//! instance's members in the order of its offsets ([`Delivery::deliver_recorded`], this
//! instance's included), and answers reads of a room's history ([`Broker::read`],
//! [`Delivery::answer`]). A broker that does not record leaves that to the server, which keeps
//! each room's history in memory.
//!
//! The default, [`Local`], does nothing: one instance needs nothing carried, and its history
//! is the server's own. A broker over Redis lives in its own crate (`ws-redis`), so the server
//! itself does not depend on a Redis client.
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

use crate::handler::{Command, ConnId, HttpResponse};
use crate::history::{Answer, Position, Read};
use crate::metrics::{add, Metrics};
use crate::rooms::RoomRegistry;
use crate::worker::remote::{Offered, Peer, Remote, RoomMessage};
use std::sync::Arc;
use ws_proto::{CloseCode, Message, StatusCode};

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

    /// A user's first connection in `room` on this instance joined it (`present`), or its
    /// last one here left. Called, like [`Self::subscribe`], while the room's record is
    /// locked. The default ignores it.
    fn presence(&self, room: &Arc<str>, user: &Arc<str>, present: bool) {
        let _ = (room, user, present);
    }

    /// The users present in `room` through other instances, as far as this one knows (it
    /// follows the presence of the rooms it has members in). The default knows of none.
    fn remote_users(&self, room: &str) -> Vec<Arc<str>> {
        let _ = room;
        Vec::new()
    }

    /// Whether it joins this instance to others (the default: no).
    fn spans_instances(&self) -> bool {
        false
    }

    /// Every member of `room` here was told to close (a user's room: a disconnect of the
    /// user): the same is to happen on every other instance ([`Delivery::close_room`]).
    fn close_room(&self, room: &Arc<str>, code: CloseCode, reason: &str) {
        let _ = (room, code, reason);
    }

    /// A question of the admin API about every instance (only asked when
    /// [`Self::spans_instances`]): answer now (`Some`) or later through [`Delivery::reply`],
    /// but always. The default cannot answer.
    fn cluster_query(&self, query: ClusterQuery) -> Option<(StatusCode, String)> {
        let _ = query;
        Some((StatusCode(503), "{\"error\":\"unavailable\"}".to_string()))
    }

    /// A connection of `claim.user` opened here and asks for one of the user's `limit`
    /// connections across instances (only called when [`Self::spans_instances`]). `counted`
    /// is how many the user has on this instance now, this one included. When the user is
    /// over the limit everywhere, close it through [`Delivery::close`] with the claim's
    /// refusal. The default admits every connection.
    fn claim(&self, claim: UserClaim) {
        let _ = claim;
    }

    /// A claimed connection of `user` ended here; it has `counted` connections here now.
    fn release(&self, user: &Arc<str>, counted: usize) {
        let _ = (user, counted);
    }

    /// Whether this broker numbers and keeps recorded messages itself ([`Self::record`],
    /// [`Self::read`]). The default does not: the server does, in memory.
    fn records(&self) -> bool {
        false
    }

    /// A recorded message was published to `room` here (only called when [`Self::records`]):
    /// number it, keep it, and deliver it to the members of every instance, this one's
    /// through [`Delivery::deliver_recorded`], in the order of the room's offsets. When that
    /// cannot be done now, deliver it here without a position, so local members still get it.
    /// With `once`, drop it if a message of the room had that key within the broker's window
    /// ([`crate::Context::publish_recorded_once`]).
    fn record(&self, room: &Arc<str>, payload: &Message, once: Option<&str>) {
        let _ = (room, payload, once);
    }

    /// A connection asks to read a room's history (only called when [`Self::records`]):
    /// answer now (`Some`) or later through [`Delivery::answer`] (`None`), but always (with
    /// [`crate::history::Page::unavailable`] when the history is out of reach), since a
    /// joining connection waits for the answer to get the room's live messages.
    fn read(&self, read: Read) -> Option<Answer> {
        Some(Answer {
            read,
            page: crate::history::Page::unavailable(),
            mark: None,
        })
    }

    /// `user` marked `room` read up to `offset` (only called when [`Self::records`]): keep
    /// it where every instance's joins find it ([`Answer::mark`]).
    fn mark(&self, room: &Arc<str>, user: &Arc<str>, offset: u64) {
        let _ = (room, user, offset);
    }

    /// How well it works now: `/readyz` and `/metrics` on the admin listener report it.
    fn health(&self) -> Health {
        Health::Healthy
    }

    /// Appends the broker's own metrics, in Prometheus text, to what the admin listener's
    /// `/metrics` serves. The default has none.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// A connection's claim to one of its user's connections across instances
/// ([`crate::Context::limit_user_connections`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaim {
    /// The user.
    pub user: Arc<str>,
    /// Its connections on this instance, the claiming one included.
    pub counted: usize,
    /// The most it may have on all instances together.
    pub limit: usize,
    /// How to close the connection when it is one too many.
    pub refusal: (CloseCode, String),
    /// The connection.
    pub(crate) conn: ConnId,
}

/// A question of the admin API about every instance, and where its answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterQuery {
    /// What is asked.
    pub ask: Ask,
    /// The admin connection waiting for the answer.
    pub(crate) to: ConnId,
}

/// What the admin API asks of every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// The users present in a room, on any instance: `{"room":R,"users":[...]}`.
    Presence(Arc<str>),
    /// A room's last so many recorded messages: `{"room":R,"epoch":E,"offset":N,
    /// "messages":[...]}`, each message as delivered, as a JSON string.
    History(Arc<str>, usize),
    /// `{"instances":N,"connections":N,"rooms":N}` over the live instances.
    Stats,
}

/// How well a broker works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// As it should.
    Healthy,
    /// This instance serves its own clients, but what crosses between instances does not (the
    /// broker's store is out of reach): the reason, for people.
    Degraded(&'static str),
}

/// Renders a recorded message for delivery once its position is known: the handler's
/// [`crate::Handler::render`].
pub(crate) type Render = Arc<dyn Fn(&str, Option<&Position>, &Message) -> Message + Send + Sync>;

/// Renders a presence change: the handler's [`crate::Handler::render_presence`].
pub(crate) type RenderPresence = Arc<dyn Fn(&str, &str, bool) -> Option<Message> + Send + Sync>;

/// What a delivery asks the handler to render.
pub(crate) type Renderers = (Render, RenderPresence);

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
#[derive(Clone)]
pub struct Delivery {
    peers: Arc<[Peer]>,
    metrics: Metrics,
    render: Render,
    presence: RenderPresence,
    rooms: Arc<RoomRegistry>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("workers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub(crate) fn new(
        (peers, metrics): (Arc<[Peer]>, Metrics),
        renderers: Renderers,
        rooms: Arc<RoomRegistry>,
    ) -> Delivery {
        Delivery {
            peers,
            metrics,
            render: renderers.0,
            presence: renderers.1,
            rooms,
        }
    }

    /// Delivers a recorded message to `room`'s local members, at `position` (`None`: it has
    /// none, its history being out of reach): rendered by the handler and encoded once, then
    /// offered to each worker's bounded inbox as [`Self::publish`] does. Returns it as
    /// rendered, for a history to keep. Calls for one room must come in the order of its
    /// offsets (from one thread, or under the room's lock).
    pub fn deliver_recorded(
        &self,
        room: &str,
        position: Option<&Position>,
        payload: &Message,
    ) -> Message {
        let rendered = (self.render)(room, position, payload);
        let outgoing = RoomMessage::at(rendered.clone(), position.cloned());
        self.offer_all(room, outgoing);
        rendered
    }

    /// Delivers a recorded message rendered already (by [`Self::render`], for a history) at
    /// `position`, as [`Self::deliver_recorded`] does.
    pub fn deliver_rendered(&self, room: &str, position: &Position, rendered: Message) {
        self.offer_all(room, RoomMessage::at(rendered, Some(position.clone())));
    }

    /// Starts the closing handshake with every local member of `room` (a user's room:
    /// [`crate::users::user_room`]), on every worker. It does not go to the broker again.
    pub fn close_room(&self, room: &str, code: CloseCode, reason: &str) {
        let room: Arc<str> = Arc::from(room);
        for (i, peer) in self.peers.iter().enumerate() {
            let remote = Remote::CloseRoom(room.clone(), code, reason.to_string());
            match peer.offer(remote) {
                Offered::Queued => peer.wake(),
                Offered::Dropped => add(&self.metrics.worker(i).inbox_drops_total, 1),
                Offered::Gone => {}
            }
        }
    }

    /// Starts the closing handshake with the connection that made `claim`, with its refusal
    /// (on its worker, through the inbox; waiting for room, as [`Self::answer`] does).
    pub fn refuse(&self, claim: &UserClaim) {
        let Some(peer) = self.peers.get(claim.conn.worker()) else {
            return;
        };
        let (code, reason) = claim.refusal.clone();
        let close = Command::Close(claim.conn, code, reason);
        if peer.inbox.send(Remote::Command(close)).is_ok() {
            peer.wake();
        }
    }

    /// Answers an admin API question with `status` and the JSON `body` (waiting for room in
    /// the admin connection's worker's inbox, as [`Self::answer`] does).
    pub fn reply(&self, query: &ClusterQuery, status: StatusCode, body: String) {
        let Some(peer) = self.peers.get(query.to.worker()) else {
            return;
        };
        let response = HttpResponse::with_type(status, "application/json", body.into_bytes());
        if peer.inbox.send(Remote::Reply(query.to, response)).is_ok() {
            peer.wake();
        }
    }

    /// This instance's open connections and rooms (for a broker that tells other instances).
    pub fn local_counts(&self) -> (u64, u64) {
        let snapshot = self.metrics.snapshot();
        let rooms = self.rooms.len() as u64;
        (snapshot.connections_open.max(0) as u64, rooms)
    }

    /// Hands the answer to a read to the worker of the connection that asked, waiting for
    /// room in its inbox (an answer is never dropped: a joining connection waits for it).
    /// For a broker's own threads; a worker never calls it.
    pub fn answer(&self, answer: Answer) {
        let Some(peer) = self.peers.get(answer.read.conn.worker()) else {
            return;
        };
        if peer.inbox.send(Remote::Answer(Box::new(answer))).is_ok() {
            peer.wake();
        }
    }

    /// The handler's message telling a room that `user` joined it or left it
    /// ([`crate::Handler::render_presence`]): for a broker that finds a user gone with its
    /// instance.
    pub fn render_presence(&self, room: &str, user: &str, joined: bool) -> Option<Message> {
        (self.presence)(room, user, joined)
    }

    /// Renders a message as [`Self::deliver_recorded`] does, without delivering it: for a
    /// broker filling a history from its store.
    pub fn render(&self, room: &str, position: Option<&Position>, payload: &Message) -> Message {
        (self.render)(room, position, payload)
    }

    fn offer_all(&self, room: &str, outgoing: RoomMessage) {
        let room: Arc<str> = Arc::from(room);
        for (i, peer) in self.peers.iter().enumerate() {
            match peer.offer(Remote::Publish(room.clone(), outgoing.clone())) {
                Offered::Queued => peer.wake(),
                Offered::Dropped => add(&self.metrics.worker(i).inbox_drops_total, 1),
                Offered::Gone => {}
            }
        }
    }

    /// Queues `message` for `room`'s local members: encoded once, offered once to each
    /// worker's bounded inbox without waiting. A worker whose inbox is full misses it
    /// (counted in `ws_inbox_drops_total`), as for a message from another worker. It does not
    /// go to the broker again.
    pub fn publish(&self, room: &str, message: &Message) {
        self.offer_all(room, RoomMessage::new(message.clone()));
    }
}
