//! A sans-IO WebSocket protocol engine (RFC 6455) for clients and servers.
//!
//! `ws-proto` never touches a socket, a clock, a thread or a runtime: the caller feeds it the
//! bytes it read and the current time, and takes back events and the bytes to write. The same
//! engine therefore runs under a blocking std program, mio, tokio, or on a `no_std` device
//! (disable the default `std` feature; `alloc` is required).
//!
//! The pieces, one per concept:
//! - [`handshake`]: the opening handshake for [`handshake::server`] and [`handshake::client`];
//! - [`Connection`]: the state machine after the handshake (framing, fragments, UTF-8, close,
//!   ping/pong, limits), built from [`frame`] (header codec), [`mask`], [`utf8`] (incremental
//!   validation), [`message`] and [`close`];
//! - [`in_place`]: receiving without copying, each whole message a slice of the caller's own
//!   read buffer ([`Connection::receive_in_place`]);
//! - [`extension`]: the seam for negotiated extensions;
//! - [`error`]: typed errors that tell a peer's violation (with its [`CloseCode`] or HTTP
//!   [`StatusCode`]) from the caller's misuse.
//!
//! Unsafe code: two statements, each making a `str` of bytes already known to be UTF-8
//! without checking them a second time ([`utf8::text_of`] right after its own check, and
//! [`Utf8Bytes::as_str`], whose constructors all check). Everything else is denied unsafe code
//! by a crate-wide lint.
//!
//! # A server over `std::net`
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpListener;
//! use ws_proto::handshake::server::{Accept, ServerHandshake};
//! use ws_proto::handshake::HandshakeLimits;
//! use ws_proto::{Config, Connection, Event};
//!
//! fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:9001")?;
//!     let (mut stream, _) = listener.accept()?;
//!     let mut buf = [0u8; 4096];
//!
//!     // 1. The opening handshake.
//!     let mut handshake = ServerHandshake::new(HandshakeLimits::default());
//!     let (request, used, n) = loop {
//!         let n = stream.read(&mut buf)?;
//!         if n == 0 { return Ok(()); }
//!         match handshake.receive(&buf[..n]) {
//!             Ok(Some((request, used))) => break (request, used, n),
//!             Ok(None) => continue,
//!             Err(e) => return stream.write_all(&e.response()),
//!         }
//!     };
//!     let upgrade = match request.upgrade() {
//!         Ok(upgrade) => upgrade,
//!         Err(e) => return stream.write_all(&e.response()),
//!     };
//!     stream.write_all(&upgrade.accept(&Accept::new()).expect("no subprotocol chosen"))?;
//!
//!     // 2. Messages: echo each one back.
//!     let mut conn = Connection::server(Config::default());
//!     let mut input = &buf[used..n]; // bytes that came with the handshake
//!     loop {
//!         let _ = conn.receive(input); // a violation queues the close frame to send
//!         while let Some(event) = conn.poll_event() {
//!             if let Event::Message(message) = event {
//!                 let _ = conn.send(&message);
//!             }
//!         }
//!         while let Some(bytes) = conn.poll_transmit() {
//!             stream.write_all(&bytes)?;
//!         }
//!         if conn.should_close_transport() {
//!             return Ok(());
//!         }
//!         let n = stream.read(&mut buf)?;
//!         if n == 0 { conn.receive_eof(); return Ok(()); }
//!         input = &buf[..n];
//!     }
//! }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
// Two statements allow unsafe code, each making a `str` of bytes known to be UTF-8 without
// checking them again: in `utf8::text_of`, right after its check (utf8/whole.rs gives the
// invariant and the tests), and in `Utf8Bytes::as_str`, whose constructors all check.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;

pub mod close;
mod close_code;
pub mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
mod http;
pub mod in_place;
pub mod mask;
pub mod message;
pub mod role;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use connection::{Config, Connection, ConnectionState, EncodedFrame, Event};
pub use error::{HandshakeError, ProtocolViolation, UsageError, UPGRADE_REQUIRED_HEADERS};
pub use http::StatusCode;
pub use in_place::{InPlace, InPlaceEvent};
pub use message::{Message, MessageChunk, MessageKind, Utf8Bytes};
pub use role::Role;
