//! Typed errors: ws-proto's own (a peer's violation with its close code, a handshake failure
//! with its HTTP status, the caller's misuse), plus what the transport and the clock add.

use std::fmt;
use ws_proto::{HandshakeError, ProtocolViolation, StatusCode, UsageError};

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The TCP connection (and TLS, for `wss://`) was not established in time.
    Connect,
    /// The opening handshake did not complete in time.
    Handshake,
    /// The peer did not answer a heartbeat ping in time.
    Pong,
    /// The reconnecting client's on-connect hook did not finish in time.
    Hook,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timeout::Connect => "connecting timed out",
            Timeout::Handshake => "the opening handshake timed out",
            Timeout::Pong => "the peer did not answer a ping in time",
            Timeout::Hook => "the on-connect hook did not finish in time",
        })
    }
}

/// Why a URL cannot be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// The scheme is neither `ws` nor `wss` (RFC 6455 section 3).
    Scheme,
    /// No host, or a host that is not a valid name or address.
    Host,
    /// A port that is not a number from 1 to 65535.
    Port,
    /// A fragment (`#...`), which a WebSocket URI must not have (section 3).
    Fragment,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "the URL's scheme must be ws or wss (RFC 6455 section 3)",
            UrlError::Host => "the URL has no valid host",
            UrlError::Port => "the URL's port is not a number from 1 to 65535",
            UrlError::Fragment => "a WebSocket URL has no fragment (RFC 6455 section 3)",
        })
    }
}

/// Everything that can go wrong on a WebSocket stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (TLS failures come as I/O errors from tokio-rustls).
    Io(std::io::Error),
    /// The opening handshake failed; a server has answered with [`HandshakeError::status`].
    Handshake(HandshakeError),
    /// The server refused the connection with this status, by the application's decision
    /// ([`crate::Acceptor::check`]).
    Rejected(StatusCode),
    /// The server accepted an extension with parameters this client did not offer
    /// (RFC 7692 section 7.1).
    ExtensionRefused,
    /// The peer broke the protocol; the close frame with its code was sent.
    Protocol(ProtocolViolation),
    /// The caller asked for something the connection's state forbids; nothing was sent.
    Usage(UsageError),
    /// A deadline ran out.
    Timeout(Timeout),
    /// The peer closed the transport without a closing handshake (RFC 6455 section 7.1.5:
    /// the close code is 1006).
    ClosedAbnormally,
    /// The connection is closed: nothing more can be sent or received.
    Closed,
    /// A URL that cannot be connected to.
    Url(UrlError),
    /// This member of a [`crate::room::Room`] fell so far behind that the room dropped
    /// `missed` frames it had not sent yet; it goes on with the oldest frame the room keeps.
    Lagged {
        /// The frames this member will never send.
        missed: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "transport error: {e}"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Rejected(status) => write!(f, "the server refused the connection: {status}"),
            Error::ExtensionRefused => {
                f.write_str("the server answered the permessage-deflate offer with parameters that were not offered (RFC 7692 section 7.1)")
            }
            Error::Protocol(e) => write!(f, "protocol violation: {e}"),
            Error::Usage(e) => write!(f, "{e}"),
            Error::Timeout(t) => t.fmt(f),
            Error::ClosedAbnormally => f.write_str(
                "the peer closed the transport without a closing handshake (1006)",
            ),
            Error::Closed => f.write_str("the connection is closed"),
            Error::Url(e) => e.fmt(f),
            Error::Lagged { missed } => {
                write!(f, "too slow for the room: {missed} frames were dropped unsent")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Usage(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl From<ProtocolViolation> for Error {
    fn from(e: ProtocolViolation) -> Self {
        Error::Protocol(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Url(e)
    }
}
