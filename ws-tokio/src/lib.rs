//! ws-proto on tokio: WebSocket streams for both roles over any transport, `wss://` through
//! rustls, heartbeats and deadlines on tokio's clock, and a reconnecting client.
//!
//! - [`accept`] / [`Acceptor`] (server) and [`connect`] / [`ClientOptions`] (client) run
//!   ws-proto's opening handshakes (subprotocols, headers, permessage-deflate) and return a
//!   [`WebSocketStream`];
//! - [`WebSocketStream`] is a `Stream` of received messages and a `Sink` of messages to send,
//!   with async `recv`, `send` and `close`; ws-proto enforces the protocol, its limits and
//!   close codes, and the stream adds heartbeats ([`Config::ping_interval`]) and the
//!   transport;
//! - [`room::Room`] sends one message to many server connections, encoded once, each
//!   member's frames leaving in one write per wake-up, within bounds
//!   ([`WebSocketStream::recv_with`]);
//! - [`reconnect`] keeps a client connected: backoff with jitter, a hook run on every
//!   (re)connection, connection events, a bounded queue of what is sent while disconnected.
//!
//! Errors are typed ([`Error`]): the peer's protocol violations and handshake failures are
//! ws-proto's, with their close code or HTTP status.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use ws_tokio::Message;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), ws_tokio::Error> {
//!     let mut ws = ws_tokio::connect("ws://127.0.0.1:9001/").await?;
//!     ws.send(Message::Text("hello".into())).await?;
//!     if let Some(reply) = ws.next().await {
//!         println!("{:?}", reply?);
//!     }
//!     ws.close(ws_tokio::CloseCode::NORMAL, "bye").await
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod accept;
mod config;
mod connect;
pub mod error;
mod futures_traits;
mod head;
mod heartbeat;
pub mod reconnect;
pub mod room;
mod stream;
pub mod tls;
mod url;

pub use accept::{accept, Acceptor};
pub use config::Config;
pub use connect::{connect, ClientOptions, ClientStream};
pub use error::Error;
pub use stream::WebSocketStream;
pub use tls::MaybeTlsStream;
/// The TLS library, for building `ServerConfig`s and `ClientConfig`s of the same version.
pub use tokio_rustls;
pub use url::WsUrl;
pub use ws_proto::deflate::DeflateConfig;
pub use ws_proto::handshake::server::Request;
pub use ws_proto::{
    CloseCode, CloseFrame, EncodedFrame, Message, MessageKind, StatusCode, Utf8Bytes,
};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
