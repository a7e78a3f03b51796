//! What the reconnecting client tells the application about its connection.

use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;
use ws_proto::CloseFrame;

/// A change in the reconnecting client's connection, in the order it happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A connection is up and the on-connect hook has run; queued messages flow from now on.
    Connected {
        /// Attempts it took since the last connection was lost (1: the first try worked).
        attempt: u32,
        /// The subprotocol the server chose.
        protocol: Option<String>,
    },
    /// The connection was lost or closed: the peer's close frame if one came, the error if
    /// the connection failed.
    Disconnected {
        /// The peer's close frame (`Some(None)`: one without a status code).
        close: Option<Option<CloseFrame>>,
        /// What broke the connection, if it did not end with a closing handshake.
        error: Option<Arc<Error>>,
    },
    /// An attempt to connect (TCP, TLS, handshake or the on-connect hook) failed.
    ConnectFailed {
        /// Attempts since the last connection was lost, this one included.
        attempt: u32,
        /// Why.
        error: Arc<Error>,
    },
    /// The client waits this long before its next attempt.
    Reconnecting {
        /// The wait, drawn from the [`super::Backoff`].
        delay: Duration,
    },
    /// The client has stopped ([`super::ReconnectingClient::close`], or it gave up after
    /// its maximum attempts); no more events follow.
    Stopped,
}
