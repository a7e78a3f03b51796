//! The server side of the opening handshake (RFC 6455 section 4.2).
//!
//! ```
//! use ws_proto::handshake::server::{Accept, ServerHandshake};
//! use ws_proto::handshake::HandshakeLimits;
//! use ws_proto::{Config, Connection};
//!
//! // The client's handshake of RFC 6455 section 1.2, followed by the first frame.
//! let bytes = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n\x81\x80\x00\x00\x00\x00";
//! let mut handshake = ServerHandshake::new(HandshakeLimits::default());
//! let (request, used) = handshake.receive(bytes).unwrap().expect("complete head");
//! assert_eq!((request.path(), request.origin()), ("/chat", Some("http://example.com")));
//! let upgrade = request.upgrade().unwrap();
//! assert_eq!(upgrade.protocols(), ["chat", "superchat"]);
//! let response = upgrade.accept(&Accept::new().protocol("chat")).unwrap();
//! assert!(response.windows(28).any(|w| w == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
//! // The frame that came in the same read is not lost:
//! let mut conn = Connection::server(Config::default());
//! conn.receive(&bytes[used..]).unwrap();
//! assert!(conn.poll_event().is_some());
//! ```

use super::accept_key;
use super::head::{HandshakeLimits, HeadReader};
use super::tokens::{has_token, tokens, ExtensionOffer};
use crate::error::{HandshakeError, UsageError};
use crate::http::push_header;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use base64::Engine;

/// Reads a client's handshake request.
#[derive(Debug)]
pub struct ServerHandshake {
    limits: HandshakeLimits,
    reader: HeadReader,
}

impl ServerHandshake {
    /// A handshake reader with the given limits.
    pub fn new(limits: HandshakeLimits) -> ServerHandshake {
        ServerHandshake {
            limits,
            reader: HeadReader::default(),
        }
    }

    /// Takes received bytes. Returns the request and how many bytes of `data` it took once the
    /// head is complete (the remaining bytes are WebSocket data), or `None` while more bytes are
    /// needed. Fails with 431 past the size or header limits and 400 on malformed HTTP. The
    /// request may be plain HTTP; see [`Request::is_websocket_upgrade`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        let Some(used) = self.reader.push(data, self.limits.max_head_bytes)? else {
            return Ok(None);
        };
        let request = Request::parse(self.reader.head(), self.limits.max_headers)?;
        Ok(Some((request, used)))
    }
}

/// An HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    /// The minor version: 1 for HTTP/1.1.
    minor_version: u8,
    headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    fn parse(head: &[u8], max_headers: usize) -> Result<Request, HandshakeError> {
        let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed),
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
            Err(_) => return Err(HandshakeError::Malformed),
        }
        Ok(Request {
            method: parsed.method.unwrap_or_default().to_string(),
            target: parsed.path.unwrap_or_default().to_string(),
            minor_version: parsed.version.unwrap_or(0),
            headers: parsed
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
        })
    }

    /// The method, for example `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string after `?`, if any (not decoded).
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The value of the first query parameter named `name`, decoded as an HTML form would
    /// encode it (`application/x-www-form-urlencoded`: percent escapes, `+` as a space; bytes
    /// that are not UTF-8 once decoded become U+FFFD); `None` if absent.
    ///
    /// ```
    /// use ws_proto::handshake::server::ServerHandshake;
    /// use ws_proto::handshake::HandshakeLimits;
    /// let mut handshake = ServerHandshake::new(HandshakeLimits::default());
    /// let head = b"GET /ws?name=J%C3%BCrgen+K&x HTTP/1.1\r\nHost: h\r\n\r\n";
    /// let (request, _) = handshake.receive(head).unwrap().unwrap();
    /// assert_eq!(request.query_param("name").as_deref(), Some("J\u{fc}rgen K"));
    /// assert_eq!(request.query_param("x").as_deref(), Some(""));
    /// assert_eq!(request.query_param("y"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query()?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// All header fields in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of a header as text, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every value of a header that may be repeated, by case-insensitive name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The `Origin` header, which browsers send (section 10.2).
    pub fn origin(&self) -> Option<&str> {
        self.header_str("Origin")
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.header_str("Host")
    }

    /// Whether the request asks for a WebSocket upgrade (its Upgrade header holds the
    /// `websocket` token). Other requests are plain HTTP for the application to answer.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header_values("Upgrade")
            .any(|v| has_token(v, "websocket"))
    }

    /// Checks the request against section 4.2.1 and returns what the client offered.
    pub fn upgrade(&self) -> Result<Upgrade, HandshakeError> {
        if self.method != "GET" {
            return Err(HandshakeError::MethodNotGet);
        }
        if self.minor_version < 1 {
            return Err(HandshakeError::HttpVersion);
        }
        for name in SINGLE_HEADERS {
            if self.header_values(name).nth(1).is_some() {
                return Err(HandshakeError::DuplicateHeader(name));
            }
        }
        let has_body = self.header("Transfer-Encoding").is_some()
            || self
                .header_values("Content-Length")
                .any(|v| v.iter().any(|b| !b.is_ascii_whitespace() && *b != b'0'));
        if has_body {
            return Err(HandshakeError::UnexpectedBody);
        }
        if self.header("Host").is_none() {
            return Err(HandshakeError::MissingHost);
        }
        if !self.is_websocket_upgrade() {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !self
            .header_values("Connection")
            .any(|v| has_token(v, "upgrade"))
        {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if self.header_str("Sec-WebSocket-Version").map(str::trim) != Some("13") {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let key = self
            .header_str("Sec-WebSocket-Key")
            .map(str::trim)
            .ok_or(HandshakeError::InvalidKey)?;
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(raw) if raw.len() == 16 => {}
            _ => return Err(HandshakeError::InvalidKey),
        }
        let mut protocols = Vec::new();
        for value in self.header_values("Sec-WebSocket-Protocol") {
            let value = core::str::from_utf8(value).map_err(|_| HandshakeError::Malformed)?;
            protocols.extend(tokens(value).map(String::from));
        }
        let mut extensions = Vec::new();
        for value in self.header_values("Sec-WebSocket-Extensions") {
            let value = core::str::from_utf8(value).map_err(|_| HandshakeError::Malformed)?;
            extensions.extend(ExtensionOffer::parse_list(value).ok_or(HandshakeError::Malformed)?);
        }
        Ok(Upgrade {
            key: key.to_string(),
            protocols,
            extensions,
        })
    }
}

/// Headers an upgrade request carries at most once: several keys or versions leave the answer
/// ambiguous (section 4.2.1), and an application must not act on one of several origins or
/// credentials. `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` may repeat (their
/// values are merged, section 4.3).
const SINGLE_HEADERS: [&str; 5] = [
    "Host",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Origin",
    "Authorization",
];

/// A valid upgrade request: what the client offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    key: String,
    protocols: Vec<String>,
    extensions: Vec<ExtensionOffer>,
}

impl Upgrade {
    /// The subprotocols offered, in the client's order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The extensions offered, in the client's order of preference.
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `101 Switching Protocols` response (section 4.2.2). Fails if the chosen subprotocol
    /// was not offered.
    pub fn accept(&self, accept: &Accept) -> Result<Vec<u8>, UsageError> {
        if let Some(protocol) = &accept.protocol {
            if !self.protocols.iter().any(|p| p == protocol) {
                return Err(UsageError::UnofferedProtocol);
            }
        }
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        push_header(&mut out, "Sec-WebSocket-Accept", &accept_key(&self.key));
        if let Some(protocol) = &accept.protocol {
            push_header(&mut out, "Sec-WebSocket-Protocol", protocol);
        }
        if let Some(extensions) = &accept.extensions {
            push_header(&mut out, "Sec-WebSocket-Extensions", extensions);
        }
        for (name, value) in &accept.headers {
            push_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }
}

/// What the server answers an upgrade with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    protocol: Option<String>,
    extensions: Option<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// Accept with no subprotocol, no extension and no extra header.
    pub fn new() -> Accept {
        Accept::default()
    }

    /// Chooses one of the offered subprotocols.
    pub fn protocol(mut self, protocol: &str) -> Accept {
        self.protocol = Some(protocol.to_string());
        self
    }

    /// The `Sec-WebSocket-Extensions` value for the extensions accepted; the caller attaches
    /// the matching [`crate::extension::Extension`] to the connection.
    pub fn extensions(mut self, value: &str) -> Accept {
        self.extensions = Some(value.to_string());
        self
    }

    /// Adds a header (a cookie, for example). Names or values with CR or LF are left out.
    pub fn header(mut self, name: &str, value: &str) -> Accept {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StatusCode;

    const RFC_REQUEST: &str = "GET /chat?room=a%20b&x HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn parse(text: &str) -> Result<Request, HandshakeError> {
        let mut hs = ServerHandshake::new(HandshakeLimits::default());
        hs.receive(text.as_bytes()).map(|r| r.unwrap().0)
    }

    fn replace(header: &str, with: &str) -> String {
        let mut out = String::new();
        for line in RFC_REQUEST.split_inclusive("\r\n") {
            if line.starts_with(header) {
                out.push_str(with);
            } else {
                out.push_str(line);
            }
        }
        out
    }

    #[test]
    fn rfc6455_1_3_server_response_to_the_example_request() {
        let req = parse(RFC_REQUEST).unwrap();
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.query_param("room").as_deref(), Some("a b"));
        assert_eq!(req.query_param("x").as_deref(), Some(""));
        let upgrade = req.upgrade().unwrap();
        let response =
            String::from_utf8(upgrade.accept(&Accept::new().protocol("chat")).unwrap()).unwrap();
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn rfc6455_4_2_2_subprotocol_must_be_one_offered() {
        let upgrade = parse(RFC_REQUEST).unwrap().upgrade().unwrap();
        assert_eq!(
            upgrade.accept(&Accept::new().protocol("mqtt")),
            Err(UsageError::UnofferedProtocol)
        );
    }

    #[test]
    fn rfc6455_4_2_1_method_must_be_get() {
        let req = parse(&RFC_REQUEST.replacen("GET", "POST", 1)).unwrap();
        assert_eq!(req.upgrade(), Err(HandshakeError::MethodNotGet));
        assert_eq!(
            HandshakeError::MethodNotGet.status(),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    #[test]
    fn rfc6455_4_2_1_http_1_1_required() {
        let req = parse(&RFC_REQUEST.replacen("HTTP/1.1", "HTTP/1.0", 1)).unwrap();
        assert_eq!(req.upgrade(), Err(HandshakeError::HttpVersion));
    }

    #[test]
    fn rfc6455_4_2_1_host_required() {
        assert_eq!(
            parse(&replace("Host:", "")).unwrap().upgrade(),
            Err(HandshakeError::MissingHost)
        );
    }

    #[test]
    fn rfc6455_4_2_1_upgrade_and_connection_tokens_case_insensitive_lists() {
        let req = parse(&replace("Upgrade:", "upgrade: WebSocket\r\n")).unwrap();
        assert!(req.upgrade().is_ok());
        let req = parse(&replace(
            "Connection:",
            "connection: keep-alive, UPGRADE\r\n",
        ))
        .unwrap();
        assert!(req.upgrade().is_ok());
        let req = parse(&replace("Upgrade:", "Upgrade: h2c\r\n")).unwrap();
        assert!(!req.is_websocket_upgrade());
        assert_eq!(req.upgrade(), Err(HandshakeError::MissingUpgrade));
        let req = parse(&replace("Connection:", "Connection: keep-alive\r\n")).unwrap();
        assert_eq!(req.upgrade(), Err(HandshakeError::MissingConnectionUpgrade));
    }

    #[test]
    fn rfc6455_4_4_unsupported_version_gets_426_with_version_13() {
        let req = parse(&replace(
            "Sec-WebSocket-Version:",
            "Sec-WebSocket-Version: 8\r\n",
        ))
        .unwrap();
        let err = req.upgrade().unwrap_err();
        assert_eq!(err, HandshakeError::UnsupportedVersion);
        let response = String::from_utf8(err.response()).unwrap();
        assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(response.contains("Sec-WebSocket-Version: 13\r\n"));
        // RFC 9110 section 15.5.22: a 426 names the protocol to upgrade to.
        assert!(response.contains("Upgrade: websocket\r\n"));
    }

    #[test]
    fn rfc6455_4_2_1_a_key_version_host_origin_or_credential_sent_twice_is_refused() {
        let lines = [
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Host: server.example.com\r\n",
            "Origin: http://example.com\r\n",
            "Authorization: Bearer x\r\n",
        ];
        for line in lines {
            let name = line.split(':').next().unwrap();
            // The header (again, if the request has it), in another case.
            let extra = line.to_lowercase();
            let times = if RFC_REQUEST.contains(name) { 1 } else { 2 };
            let twice =
                RFC_REQUEST.replace("\r\n\r\n", &format!("\r\n{}\r\n", extra.repeat(times)));
            let err = parse(&twice).unwrap().upgrade().unwrap_err();
            assert!(
                matches!(err, HandshakeError::DuplicateHeader(n) if n.eq_ignore_ascii_case(name)),
                "{name}: {err:?}"
            );
            assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
        }
        // Protocols and extensions may repeat: their values are merged (section 4.3).
        let more = RFC_REQUEST.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Protocol: other\r\nSec-WebSocket-Extensions: a\r\nSec-WebSocket-Extensions: b\r\n\r\n",
        );
        let upgrade = parse(&more).unwrap().upgrade().unwrap();
        assert_eq!(upgrade.protocols(), ["chat", "superchat", "other"]);
        assert_eq!(upgrade.extensions().len(), 2);
    }

    #[test]
    fn rfc6455_4_1_an_upgrade_request_with_a_body_is_refused() {
        for header in [
            "Content-Length: 5",
            "Transfer-Encoding: chunked",
            "content-length: 01",
        ] {
            let with_body = RFC_REQUEST.replace("\r\n\r\n", &format!("\r\n{header}\r\n\r\n"));
            let err = parse(&with_body).unwrap().upgrade().unwrap_err();
            assert_eq!(err, HandshakeError::UnexpectedBody, "{header}");
            assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
        }
        let empty = RFC_REQUEST.replace("\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n");
        assert!(parse(&empty).unwrap().upgrade().is_ok());
    }

    #[test]
    fn rfc6455_4_2_1_key_must_decode_to_16_bytes() {
        for bad in [
            "",
            "dGhlIHNhbXBsZQ==",
            "not base64!!",
            "dGhlIHNhbXBsZSBub25jZSBhYmM=",
        ] {
            let req = parse(&replace(
                "Sec-WebSocket-Key:",
                &alloc::format!("Sec-WebSocket-Key: {bad}\r\n"),
            ))
            .unwrap();
            assert_eq!(req.upgrade(), Err(HandshakeError::InvalidKey), "{bad}");
        }
        let req = parse(&replace("Sec-WebSocket-Key:", "")).unwrap();
        assert_eq!(req.upgrade(), Err(HandshakeError::InvalidKey));
    }

    #[test]
    fn limits_on_head_size_and_header_count_give_431() {
        let mut hs = ServerHandshake::new(HandshakeLimits {
            max_head_bytes: 64,
            max_headers: 64,
        });
        assert_eq!(
            hs.receive(RFC_REQUEST.as_bytes()).unwrap_err().status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let mut hs = ServerHandshake::new(HandshakeLimits {
            max_head_bytes: 4096,
            max_headers: 3,
        });
        assert_eq!(
            hs.receive(RFC_REQUEST.as_bytes()),
            Err(HandshakeError::TooManyHeaders)
        );
    }

    #[test]
    fn malformed_heads_give_400() {
        let mut hs = ServerHandshake::new(HandshakeLimits::default());
        let err = hs
            .receive(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            (err, err.status()),
            (HandshakeError::Malformed, Some(StatusCode::BAD_REQUEST))
        );
    }

    #[test]
    fn head_split_at_every_byte_gives_the_same_request() {
        let whole = parse(RFC_REQUEST).unwrap();
        for cut in 1..RFC_REQUEST.len() {
            let mut hs = ServerHandshake::new(HandshakeLimits::default());
            assert!(hs
                .receive(&RFC_REQUEST.as_bytes()[..cut])
                .unwrap()
                .is_none());
            let (req, used) = hs.receive(&RFC_REQUEST.as_bytes()[cut..]).unwrap().unwrap();
            assert_eq!(used, RFC_REQUEST.len() - cut);
            assert_eq!(req, whole);
        }
    }

    #[test]
    fn repeated_protocol_headers_and_extension_offers() {
        let text = replace(
            "Sec-WebSocket-Protocol:",
            "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b, c\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        );
        let upgrade = parse(&text).unwrap().upgrade().unwrap();
        assert_eq!(upgrade.protocols(), ["a", "b", "c"]);
        assert_eq!(upgrade.extensions()[0].name, "permessage-deflate");
        let bad = replace(
            "Sec-WebSocket-Protocol:",
            "Sec-WebSocket-Extensions: a b\r\n",
        );
        assert_eq!(
            parse(&bad).unwrap().upgrade(),
            Err(HandshakeError::Malformed)
        );
    }
}
