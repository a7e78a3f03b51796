//! The opening handshake (RFC 6455 section 4), for both roles.
//!
//! The handshake is kept apart from framing: [`server::ServerHandshake`] reads a request and
//! [`client::ClientHandshake`] writes one and checks the answer; either ends where the
//! [`crate::Connection`] begins. Both read the HTTP head incrementally: each received byte is
//! looked at a bounded number of times while searching for the end of the head, and the head is
//! parsed once, when complete (no re-parse on every read, the flaw behind CVE-2023-43669).
//! Bytes that follow the head in the same read are not taken: the returned count says where the
//! WebSocket data begins.

pub mod client;
mod head;
pub mod server;
mod tokens;

pub use crate::http::{http_response, StatusCode};
pub use head::HandshakeLimits;
pub use tokens::ExtensionOffer;

use alloc::string::String;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID of RFC 6455 section 1.3, appended to the key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (section 4.2.2 item 5.4):
/// base64 of the SHA-1 of the key followed by the GUID.
///
/// ```
/// // The example of RFC 6455 section 1.3.
/// assert_eq!(ws_proto::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_1_3_accept_key_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
