//! The client side of the opening handshake (RFC 6455 section 4.1).
//!
//! ```
//! use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
//! use ws_proto::handshake::{accept_key, HandshakeLimits};
//!
//! let request = ClientRequest::new("server.example.com", "/chat").protocols(&["chat"]);
//! let key = *b"the sample nonce"; // 16 bytes; use random ones (see `with_random_key`)
//! let (mut handshake, bytes) = ClientHandshake::new(&request, key, HandshakeLimits::default());
//! assert!(bytes.starts_with(b"GET /chat HTTP/1.1\r\n"));
//! // RFC 6455 section 1.3: this key is dGhlIHNhbXBsZSBub25jZQ==.
//! let answer = format!(
//!     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!      Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
//!     accept_key("dGhlIHNhbXBsZSBub25jZQ=="));
//! let (response, used) = handshake.receive(answer.as_bytes()).unwrap().unwrap();
//! assert_eq!((response.protocol(), used), (Some("chat"), answer.len()));
//! ```

use super::accept_key;
use super::head::{HandshakeLimits, HeadReader};
use super::tokens::{has_token, ExtensionOffer};
use crate::error::HandshakeError;
use crate::http::{push_header, StatusCode};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use base64::Engine;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    host: String,
    target: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Option<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `target` (path and query) on `host` (the `Host` header: name and, if not
    /// the default, port).
    pub fn new(host: &str, target: &str) -> ClientRequest {
        ClientRequest {
            host: host.to_string(),
            target: if target.is_empty() {
                "/".to_string()
            } else {
                target.to_string()
            },
            origin: None,
            protocols: Vec::new(),
            extensions: None,
            headers: Vec::new(),
        }
    }

    /// Offers subprotocols, most preferred first.
    pub fn protocols(mut self, protocols: &[&str]) -> ClientRequest {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Offers extensions: the `Sec-WebSocket-Extensions` value.
    pub fn extensions(mut self, value: &str) -> ClientRequest {
        self.extensions = Some(value.to_string());
        self
    }

    /// Sends an `Origin` header.
    pub fn origin(mut self, origin: &str) -> ClientRequest {
        self.origin = Some(origin.to_string());
        self
    }

    /// Adds a header (an `Authorization`, for example). Names or values with CR or LF are
    /// left out.
    pub fn header(mut self, name: &str, value: &str) -> ClientRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn encode(&self, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        // A target with CR, LF or spaces would break the request line.
        let target = if self.target.bytes().any(|b| b <= b' ') {
            "/"
        } else {
            &self.target
        };
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        push_header(&mut out, "Host", &self.host);
        out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
        push_header(&mut out, "Sec-WebSocket-Key", key);
        out.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
        if let Some(origin) = &self.origin {
            push_header(&mut out, "Origin", origin);
        }
        if !self.protocols.is_empty() {
            push_header(
                &mut out,
                "Sec-WebSocket-Protocol",
                &self.protocols.join(", "),
            );
        }
        if let Some(extensions) = &self.extensions {
            push_header(&mut out, "Sec-WebSocket-Extensions", extensions);
        }
        for (name, value) in &self.headers {
            push_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Sends a handshake request and checks the server's response.
#[derive(Debug)]
pub struct ClientHandshake {
    limits: HandshakeLimits,
    reader: HeadReader,
    expected_accept: String,
    protocols: Vec<String>,
    extension_names: Vec<String>,
}

impl ClientHandshake {
    /// Starts a handshake with a 16-byte nonce, which must be chosen at random for each
    /// connection (section 4.1). Returns the handshake and the request bytes to send.
    pub fn new(
        request: &ClientRequest,
        nonce: [u8; 16],
        limits: HandshakeLimits,
    ) -> (ClientHandshake, Vec<u8>) {
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let extension_names = request
            .extensions
            .as_deref()
            .and_then(ExtensionOffer::parse_list)
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.name)
            .collect();
        let handshake = ClientHandshake {
            limits,
            reader: HeadReader::default(),
            expected_accept: accept_key(&key),
            protocols: request.protocols.clone(),
            extension_names,
        };
        (handshake, request.encode(&key))
    }

    /// Like [`Self::new`] with a nonce from the operating system's random source.
    #[cfg(feature = "std")]
    pub fn with_random_key(
        request: &ClientRequest,
        limits: HandshakeLimits,
    ) -> (ClientHandshake, Vec<u8>) {
        let mut nonce = [0u8; 16];
        let mut keys = crate::mask::OsRandomKeys::new();
        for chunk in nonce.chunks_mut(4) {
            chunk.copy_from_slice(&crate::mask::MaskKeySource::next_key(&mut keys));
        }
        ClientHandshake::new(request, nonce, limits)
    }

    /// Takes received bytes. Returns the checked response and how many bytes of `data` it took
    /// once the head is complete (the rest are WebSocket frames), or `None` while more are
    /// needed.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<(Response, usize)>, HandshakeError> {
        let Some(used) = self.reader.push(data, self.limits.max_head_bytes)? else {
            return Ok(None);
        };
        let response = self.check(self.reader.head())?;
        Ok(Some((response, used)))
    }

    fn check(&self, head: &[u8]) -> Result<Response, HandshakeError> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed),
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
            Err(_) => return Err(HandshakeError::Malformed),
        }
        let status = StatusCode(parsed.code.unwrap_or(0));
        let headers: Vec<(String, Vec<u8>)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let values = |name: &'static str| {
            headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_slice())
        };
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::NotSwitchingProtocols(status));
        }
        if !values("Upgrade").any(|v| has_token(v, "websocket")) {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !values("Connection").any(|v| has_token(v, "upgrade")) {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let accept = values("Sec-WebSocket-Accept").next().map(trim_ascii);
        if accept != Some(self.expected_accept.as_bytes()) {
            return Err(HandshakeError::AcceptMismatch);
        }
        let mut chosen = values("Sec-WebSocket-Protocol");
        let protocol = match (chosen.next(), chosen.next()) {
            (None, _) => None,
            (Some(p), None) => {
                let p = core::str::from_utf8(trim_ascii(p))
                    .map_err(|_| HandshakeError::UnofferedProtocol)?;
                if !self.protocols.iter().any(|o| o == p) {
                    return Err(HandshakeError::UnofferedProtocol);
                }
                Some(p.to_string())
            }
            (Some(_), Some(_)) => return Err(HandshakeError::UnofferedProtocol),
        };
        let mut extensions = Vec::new();
        for value in values("Sec-WebSocket-Extensions") {
            let value = core::str::from_utf8(value).map_err(|_| HandshakeError::Malformed)?;
            let offers = ExtensionOffer::parse_list(value).ok_or(HandshakeError::Malformed)?;
            for offer in offers {
                if !self.extension_names.contains(&offer.name) {
                    return Err(HandshakeError::UnofferedExtension);
                }
                extensions.push(offer);
            }
        }
        Ok(Response {
            status,
            headers,
            protocol,
            extensions,
        })
    }
}

fn trim_ascii(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// A server's accepted handshake response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    headers: Vec<(String, Vec<u8>)>,
    protocol: Option<String>,
    extensions: Vec<ExtensionOffer>,
}

impl Response {
    /// The status: always 101 ([`StatusCode::SWITCHING_PROTOCOLS`]) for an accepted handshake.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The extensions the server accepted, with their parameters; the caller attaches the
    /// matching [`crate::extension::Extension`] to the connection.
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 16] = *b"the sample nonce";

    fn start(request: ClientRequest) -> (ClientHandshake, String) {
        let (hs, bytes) = ClientHandshake::new(&request, NONCE, HandshakeLimits::default());
        (hs, String::from_utf8(bytes).unwrap())
    }

    fn ok_response(extra: &str) -> String {
        alloc::format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
    }

    #[test]
    fn rfc6455_4_1_request_carries_the_required_headers() {
        let (_, req) = start(
            ClientRequest::new("example.com:9001", "/a?b=c")
                .protocols(&["chat", "v2"])
                .origin("http://o"),
        );
        assert!(req.starts_with("GET /a?b=c HTTP/1.1\r\n"));
        for line in [
            "Host: example.com:9001\r\n",
            "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Protocol: chat, v2\r\n",
            "Origin: http://o\r\n",
        ] {
            assert!(req.contains(line), "{line}");
        }
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn rfc6455_4_1_accepts_a_valid_response_and_keeps_trailing_bytes() {
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let mut bytes = ok_response("").into_bytes();
        let head_len = bytes.len();
        bytes.extend_from_slice(b"\x81\x02hi");
        let (resp, used) = hs.receive(&bytes).unwrap().unwrap();
        assert_eq!(
            (resp.status(), used),
            (StatusCode::SWITCHING_PROTOCOLS, head_len)
        );
    }

    #[test]
    fn rfc6455_4_1_non_101_status_fails() {
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let err = hs
            .receive(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            err,
            HandshakeError::NotSwitchingProtocols(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn rfc6455_4_1_accept_value_must_match() {
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let bad = ok_response("").replace("s3pP", "AAAA");
        assert_eq!(
            hs.receive(bad.as_bytes()).unwrap_err(),
            HandshakeError::AcceptMismatch
        );
    }

    #[test]
    fn rfc6455_4_1_upgrade_and_connection_tokens_required() {
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let bad = ok_response("").replace("Upgrade: websocket", "Upgrade: h2c");
        assert_eq!(
            hs.receive(bad.as_bytes()).unwrap_err(),
            HandshakeError::MissingUpgrade
        );
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let bad = ok_response("").replace("Connection: Upgrade", "Connection: close");
        assert_eq!(
            hs.receive(bad.as_bytes()).unwrap_err(),
            HandshakeError::MissingConnectionUpgrade
        );
    }

    #[test]
    fn rfc6455_4_1_subprotocol_must_be_one_offered() {
        let (mut hs, _) = start(ClientRequest::new("h", "/").protocols(&["chat"]));
        let bad = ok_response("Sec-WebSocket-Protocol: mqtt\r\n");
        assert_eq!(
            hs.receive(bad.as_bytes()).unwrap_err(),
            HandshakeError::UnofferedProtocol
        );
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let bad = ok_response("Sec-WebSocket-Protocol: chat\r\n");
        assert_eq!(
            hs.receive(bad.as_bytes()).unwrap_err(),
            HandshakeError::UnofferedProtocol
        );
    }

    #[test]
    fn rfc6455_4_1_extension_must_be_one_offered() {
        let (mut hs, _) = start(ClientRequest::new("h", "/"));
        let bad = ok_response("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(
            hs.receive(bad.as_bytes()).unwrap_err(),
            HandshakeError::UnofferedExtension
        );
        let (mut hs, _) = start(
            ClientRequest::new("h", "/").extensions("permessage-deflate; client_max_window_bits"),
        );
        let good = ok_response(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
        );
        let (resp, _) = hs.receive(good.as_bytes()).unwrap().unwrap();
        assert_eq!(resp.extensions()[0].name, "permessage-deflate");
    }

    #[test]
    fn response_split_at_every_byte() {
        let text = ok_response("");
        for cut in 1..text.len() {
            let (mut hs, _) = start(ClientRequest::new("h", "/"));
            assert!(hs.receive(&text.as_bytes()[..cut]).unwrap().is_none());
            let (_, used) = hs.receive(&text.as_bytes()[cut..]).unwrap().unwrap();
            assert_eq!(used, text.len() - cut);
        }
    }
}
