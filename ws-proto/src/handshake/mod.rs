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

pub use head::HandshakeLimits;
pub use tokens::ExtensionOffer;

use alloc::string::String;
use alloc::vec::Vec;
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

/// A complete HTTP/1.1 response with a body, for refusing a handshake or answering a plain
/// HTTP request: status line, `Content-Length`, `Connection: close`, the given headers, the
/// body. Header names and values holding CR or LF are left out (no header injection).
///
/// ```
/// let response = ws_proto::handshake::http_response(403, &[("Content-Type", "text/plain")], b"no\n");
/// assert!(response.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
/// assert!(response.ends_with(b"\r\n\r\nno\n"));
/// ```
pub fn http_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(
        alloc::format!("HTTP/1.1 {} {}\r\n", status, reason_phrase(status)).as_bytes(),
    );
    out.extend_from_slice(
        alloc::format!("Content-Length: {}\r\nConnection: close\r\n", body.len()).as_bytes(),
    );
    for (name, value) in headers {
        push_header(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Appends `name: value\r\n`, skipping anything that could split the head.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let unsafe_char = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
    if name.is_empty() || unsafe_char(name) || unsafe_char(value) {
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for common statuses.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
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

    #[test]
    fn responses_drop_headers_that_would_inject_lines() {
        let r = http_response(200, &[("X-A", "ok"), ("X-B", "bad\r\nSet-Cookie: x")], b"");
        let text = core::str::from_utf8(&r).unwrap();
        assert!(text.contains("X-A: ok\r\n"));
        assert!(!text.contains("Set-Cookie"));
    }
}
