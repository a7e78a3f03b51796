//! Which end of the connection this engine is.

/// The side of a connection. It decides masking (RFC 6455 section 5.1: a client masks every
/// frame it sends, a server never does) and who closes TCP first (section 7.1.1: the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that opened the connection and sends the handshake request.
    Client,
    /// The side that accepted the connection.
    Server,
}
