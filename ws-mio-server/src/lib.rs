//! A WebSocket server on mio and [`ws_proto`]: one event loop per worker thread, rooms with
//! encode-once fanout across workers, one vectored write per connection per loop turn,
//! heartbeats and timeouts on a timer wheel, backpressure, connection limits, metrics and
//! graceful shutdown.
//!
//! An application implements [`Handler`]:
//!
//! ```no_run
//! use ws_mio_server::{Config, Context, Handler, Server};
//! use ws_proto::Message;
//!
//! /// Everyone who connects is in one room; every message goes to all of them.
//! struct Broadcast;
//! impl Handler for Broadcast {
//!     fn on_open(&self, ctx: &mut Context<'_>, _: &ws_mio_server::OpenRequest<'_>) -> ws_mio_server::OpenDecision {
//!         ctx.join(ctx.id(), "all");
//!         ws_mio_server::OpenDecision::accept()
//!     }
//!     fn on_message(&self, ctx: &mut Context<'_>, message: Message) {
//!         ctx.publish("all", message);
//!     }
//! }
//!
//! let server = Server::start(Config::default(), Broadcast).unwrap();
//! server.run_until_signal().unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chat;
pub mod config;
mod conn;
pub mod handler;
pub mod metrics;
mod server;
mod slab;
pub mod timer;
mod worker;

pub use config::{Config, Mode, SlowConsumerPolicy};
pub use handler::{
    Broadcast, CloseInfo, ConnId, Context, Echo, Handler, HttpResponse, MessageRef, OpenDecision,
    OpenRequest,
};
pub use metrics::{Metrics, Snapshot};
pub use server::{Server, ServerHandle};

/// The seam for a cross-instance bus (Redis pub/sub, say): every room message published on
/// this instance is also handed to the bus, which delivers messages from other instances with
/// [`ServerHandle::publish`].
pub trait Bus: Send + Sync + 'static {
    /// A room message published on this instance.
    fn publish(&self, room: &str, message: &ws_proto::Message);
}
