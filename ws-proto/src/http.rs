//! The little HTTP/1.1 the handshake writes: status codes with their reason phrases, and whole
//! responses for refusing a handshake or answering a plain HTTP request.
//!
//! A leaf module: it uses nothing else from the crate, so the handshake errors, which carry the
//! status to answer with and render their response, and the handshake, which reports its
//! faults as those errors, both use it without a cycle between them. Users see its items as
//! [`crate::StatusCode`], [`crate::handshake::StatusCode`] and
//! [`crate::handshake::http_response`].

use alloc::vec::Vec;

/// An HTTP status code (RFC 9110 section 15), as a handshake answers with or receives one.
///
/// Any `u16` can be wrapped; the constants name the statuses a WebSocket server commonly
/// sends, and [`Self::reason_phrase`] gives their phrases.
///
/// ```
/// use ws_proto::StatusCode;
/// assert_eq!(StatusCode::UPGRADE_REQUIRED, StatusCode(426));
/// assert_eq!(StatusCode::UPGRADE_REQUIRED.reason_phrase(), "Upgrade Required");
/// assert_eq!(StatusCode(299).reason_phrase(), "Unknown");
/// assert_eq!(StatusCode::NOT_FOUND.to_string(), "404");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 101: the server accepts the WebSocket upgrade (RFC 6455 section 4.2.2).
    pub const SWITCHING_PROTOCOLS: StatusCode = StatusCode(101);
    /// 200: success.
    pub const OK: StatusCode = StatusCode(200);
    /// 204: success with no body.
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    /// 301: the resource moved for good.
    pub const MOVED_PERMANENTLY: StatusCode = StatusCode(301);
    /// 302: the resource is elsewhere for now.
    pub const FOUND: StatusCode = StatusCode(302);
    /// 304: the cached copy is still good.
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    /// 400: a malformed request, or a handshake missing what RFC 6455 section 4.2.1 requires.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401: credentials are required.
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403: refused, credentials or not (an origin that is not allowed, say).
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404: nothing at this path.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405: the method is not allowed (a handshake must be a GET).
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 408: the request did not arrive in time.
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 413: the request body is too large.
    pub const CONTENT_TOO_LARGE: StatusCode = StatusCode(413);
    /// 426: another protocol version is required (RFC 6455 section 4.4: WebSocket version 13).
    pub const UPGRADE_REQUIRED: StatusCode = StatusCode(426);
    /// 429: too many requests from this client.
    pub const TOO_MANY_REQUESTS: StatusCode = StatusCode(429);
    /// 431: the request head is too large or has too many header fields.
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: StatusCode = StatusCode(431);
    /// 500: the server failed.
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    /// 501: the server does not support what was asked.
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 503: the server cannot take the request now (over a connection limit, say).
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 505: the HTTP version is not supported (a handshake needs HTTP/1.1).
    pub const HTTP_VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// The reason phrase of a status named by a constant above, `"Unknown"` for any other.
    pub fn reason_phrase(self) -> &'static str {
        match self {
            StatusCode::SWITCHING_PROTOCOLS => "Switching Protocols",
            StatusCode::OK => "OK",
            StatusCode::NO_CONTENT => "No Content",
            StatusCode::MOVED_PERMANENTLY => "Moved Permanently",
            StatusCode::FOUND => "Found",
            StatusCode::NOT_MODIFIED => "Not Modified",
            StatusCode::BAD_REQUEST => "Bad Request",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not Found",
            StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed",
            StatusCode::REQUEST_TIMEOUT => "Request Timeout",
            StatusCode::CONTENT_TOO_LARGE => "Content Too Large",
            StatusCode::UPGRADE_REQUIRED => "Upgrade Required",
            StatusCode::TOO_MANY_REQUESTS => "Too Many Requests",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request Header Fields Too Large",
            StatusCode::INTERNAL_SERVER_ERROR => "Internal Server Error",
            StatusCode::NOT_IMPLEMENTED => "Not Implemented",
            StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
            StatusCode::HTTP_VERSION_NOT_SUPPORTED => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }
}

impl core::fmt::Display for StatusCode {
    /// The three digits alone, as in a status line.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A complete HTTP/1.1 response with a body, for refusing a handshake or answering a plain
/// HTTP request: status line, `Content-Length`, `Connection: close`, the given headers, the
/// body. Header names and values holding CR or LF are left out (no header injection).
///
/// ```
/// use ws_proto::handshake::{http_response, StatusCode};
/// let response = http_response(StatusCode::FORBIDDEN, &[("Content-Type", "text/plain")], b"no\n");
/// assert!(response.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
/// assert!(response.ends_with(b"\r\n\r\nno\n"));
/// ```
pub fn http_response(status: StatusCode, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(
        alloc::format!("HTTP/1.1 {} {}\r\n", status, status.reason_phrase()).as_bytes(),
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
pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let unsafe_char = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
    if name.is_empty() || unsafe_char(name) || unsafe_char(value) {
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_drop_headers_that_would_inject_lines() {
        let r = http_response(
            StatusCode::OK,
            &[("X-A", "ok"), ("X-B", "bad\r\nSet-Cookie: x")],
            b"",
        );
        let text = core::str::from_utf8(&r).unwrap();
        assert!(text.contains("X-A: ok\r\n"));
        assert!(!text.contains("Set-Cookie"));
    }

    #[test]
    fn every_named_status_has_its_own_phrase_and_others_are_unknown() {
        let named = [
            101, 200, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408, 413, 426, 429, 431, 500,
            501, 503, 505,
        ];
        let mut phrases: Vec<&str> = named
            .iter()
            .map(|&s| StatusCode(s).reason_phrase())
            .collect();
        assert!(!phrases.contains(&"Unknown"));
        phrases.sort_unstable();
        phrases.dedup();
        assert_eq!(phrases.len(), named.len());
        for other in [0, 100, 201, 402, 418, 502, 599, 999] {
            assert_eq!(StatusCode(other).reason_phrase(), "Unknown", "{other}");
        }
        let response = http_response(StatusCode(418), &[], b"");
        assert!(response.starts_with(b"HTTP/1.1 418 Unknown\r\n"));
    }
}
