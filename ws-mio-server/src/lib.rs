//! A WebSocket server on mio and [`ws_proto`]: one event loop per worker thread, rooms with
//! encode-once fanout across workers, one vectored write per connection per loop turn,
//! heartbeats and timeouts on a timer wheel, backpressure, connection limits, metrics, health
//! and readiness on a separate admin listener, and graceful shutdown; ws:// by default, wss://
//! with rustls inside the same event loops ([`tls`]).
//!
//! An application implements [`Handler`], with its own state per connection:
//!
//! ```no_run
//! use ws_mio_server::{Config, Context, Handler, OpenDecision, OpenRequest, Server};
//! use ws_proto::Message;
//!
//! /// Everyone who connects is in one room; every message goes to all of them, numbered by
//! /// its sender's count.
//! struct Broadcast;
//! impl Handler for Broadcast {
//!     type Conn = u64;
//!     fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<u64> {
//!         OpenDecision::accept(0)
//!     }
//!     fn on_connect(&self, ctx: &mut Context<'_>, _: &mut u64) {
//!         ctx.join("all");
//!     }
//!     fn on_message(&self, ctx: &mut Context<'_>, sent: &mut u64, message: Message) {
//!         *sent += 1;
//!         let text = format!("#{sent}: {}", String::from_utf8_lossy(message.as_bytes()));
//!         ctx.publish("all", Message::Text(text.into()));
//!     }
//! }
//!
//! let server = Server::start(Config::default(), Broadcast).unwrap();
//! server.run_until_signal().unwrap();
//! ```
//!
//! [`testing::TestServer`] runs the same workers in memory on pretend time, for tests of the
//! server and of applications.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod apps;
pub mod broker;
pub mod config;
mod context;
pub mod forwarded;
pub mod handler;
pub mod history;
pub mod memory;
pub mod metrics;
pub mod process;
pub mod proxy_protocol;
pub mod restart;
pub mod rooms;
mod server;
pub mod testing;
pub mod timer;
pub mod tls;
pub mod users;
mod worker;

pub use broker::{Broker, Delivery};
pub use config::{Config, SlowConsumerPolicy};
pub use handler::{
    Accept, Broadcast, CloseInfo, ConnId, Context, Echo, Handler, HttpResponse, LeftRoom,
    MessageRef, OpenDecision, OpenRequest, CREDENTIALS_EXPIRED,
};
pub use metrics::{Metrics, Snapshot};
pub use server::{Hooks, Server, ServerHandle, ShutdownSignals};
