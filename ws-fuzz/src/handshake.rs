//! The opening handshake: `ServerHandshake::receive` and `ClientHandshake::receive` on
//! arbitrary bytes in arbitrary chunkings, and the server's answer checked by a client.

use crate::chunks;
use base64::Engine as _;
use ws_proto::handshake::client::{ClientHandshake, ClientRequest, Response};
use ws_proto::handshake::server::{Accept, Request, ServerHandshake};
use ws_proto::handshake::{ExtensionOffer, HandshakeLimits, StatusCode};
use ws_proto::HandshakeError;

/// The nonce of RFC 6455 section 1.3; its key is `dGhlIHNhbXBsZSBub25jZQ==` and the accept
/// value `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub const RFC_NONCE: [u8; 16] = *b"the sample nonce";

/// Where a head ends: just past the first LF LF or LF CR LF (CRLF CRLF ends with the latter).
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    (2..=bytes.len()).find(|&e| bytes[..e].ends_with(b"\n\n") || bytes[..e].ends_with(b"\n\r\n"))
}

/// The limits an input byte selects: mostly small ones, so the limit paths are reached.
fn limits(selector: u8, headers: u8) -> HandshakeLimits {
    if selector & 0x80 != 0 {
        return HandshakeLimits::default();
    }
    HandshakeLimits {
        max_head_bytes: 16 + (selector as usize) * 8,
        max_headers: (headers % 70) as usize,
    }
}

/// How feeding pieces one by one ended.
#[derive(Debug, PartialEq)]
enum Fed<T> {
    /// Still waiting for the rest of the head.
    NeedMore,
    /// Done: the result, and how many bytes of the whole input the head took.
    Done(Result<(T, usize), HandshakeError>),
}

fn feed<T>(
    pieces: &[&[u8]],
    limit: usize,
    mut receive: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, HandshakeError>,
) -> Fed<T> {
    let mut offset = 0;
    for piece in pieces {
        match receive(piece) {
            Ok(None) => {
                offset += piece.len();
                // Waiting with `limit` bytes held would mean the buffer passed the limit.
                assert!(offset < limit, "{offset} bytes held, limit {limit}");
            }
            Ok(Some((value, used))) => {
                assert!(used <= piece.len());
                return Fed::Done(Ok((value, offset + used)));
            }
            Err(e) => return Fed::Done(Err(e)),
        }
    }
    Fed::NeedMore
}

/// What any correct reader must conclude from `body` alone.
fn check_against_reference<T>(fed: &Fed<T>, body: &[u8], limit: usize) {
    match (head_end(body), fed) {
        (Some(end), Fed::Done(Ok((_, used)))) => {
            assert_eq!(*used, end, "head taken");
            assert!(end <= limit);
        }
        (Some(end), Fed::Done(Err(e))) => {
            // The head is too large exactly when it ends past the limit.
            assert_eq!(
                end > limit,
                *e == HandshakeError::HeadTooLarge,
                "{e:?}, head {end}"
            )
        }
        (Some(end), Fed::NeedMore) => panic!("a complete head ({end} bytes) was not found"),
        (None, Fed::Done(Ok(_))) => panic!("a head was found where there is none"),
        (None, Fed::Done(Err(e))) => {
            assert_eq!(*e, HandshakeError::HeadTooLarge);
            assert!(body.len() >= limit);
        }
        (None, Fed::NeedMore) => assert!(body.len() < limit),
    }
}

/// Feeds a fresh parser the head as `pieces`, whole, and (when short) byte by byte, asserting
/// that all three end alike; returns the result for the whole head.
fn same_for_any_chunking<T: PartialEq + core::fmt::Debug>(
    pieces: &[&[u8]],
    body: &[u8],
    receive_all: impl Fn(&[&[u8]]) -> Fed<T>,
) -> Fed<T> {
    let whole = receive_all(&[body]);
    assert_eq!(
        receive_all(pieces),
        whole,
        "the chunking changed the result"
    );
    if body.len() <= 512 {
        let bytewise: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(receive_all(&bytewise), whole);
    }
    whole
}

/// Input: limits selector, header-count byte, then a chunk spec and the request bytes.
pub fn server_handshake(data: &[u8]) {
    let [selector, headers, rest @ ..] = data else {
        return;
    };
    let limits = limits(*selector, *headers);
    let pieces = chunks::split(rest);
    let body = pieces.concat();
    let whole = same_for_any_chunking(&pieces, &body, |pieces| {
        let mut hs = ServerHandshake::new(limits);
        feed(pieces, limits.max_head_bytes, |p| hs.receive(p))
    });
    check_against_reference(&whole, &body, limits.max_head_bytes);
    if let Fed::Done(Ok((request, _))) = &whole {
        check_request(request);
    }
    if let Fed::Done(Err(e)) = &whole {
        check_error_response(e);
    }
}

fn check_error_response(e: &HandshakeError) {
    let response = e.response();
    if e.status().is_some() {
        assert!(response.starts_with(b"HTTP/1.1 "));
        assert_eq!(
            head_end(&response).map(|end| end <= response.len()),
            Some(true)
        );
    }
}

fn check_request(request: &Request) {
    // The getters, on every request that parsed.
    let target = request.target();
    assert!(target.starts_with(request.path()));
    if let Some(query) = request.query() {
        assert_eq!(format!("{}?{}", request.path(), query), target);
    }
    let _ = (request.query_param("room"), request.query_param(""));
    let _ = (request.method(), request.origin(), request.host());
    for (name, value) in request.headers() {
        assert!(request.header(name).is_some());
        assert!(request.header_values(name).any(|v| v == value));
    }
    let upgrade = match request.upgrade() {
        Ok(upgrade) => upgrade,
        Err(e) => {
            assert!(e.status().is_some(), "{e:?}");
            check_error_response(&e);
            return;
        }
    };
    assert!(request.is_websocket_upgrade());
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(upgrade.key())
        .expect("an accepted key decodes");
    let nonce: [u8; 16] = nonce.try_into().expect("an accepted key is 16 bytes");
    for p in upgrade.protocols() {
        assert!(!p.is_empty() && !p.contains(',') && p.trim() == p, "{p:?}");
    }
    // Offers survive being written out and read back.
    let offers = upgrade.extensions();
    let written = offers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        ExtensionOffer::parse_list(&written).as_deref(),
        Some(offers),
        "{written:?}"
    );

    // The response to each acceptable choice, checked by a client that offered the same.
    let plain = upgrade
        .accept(&Accept::new())
        .expect("no subprotocol is always fine");
    let mut choices = vec![(None, None, plain)];
    if let Some(p) = upgrade.protocols().first() {
        let accept = Accept::new().protocol(p);
        choices.push((Some(p.clone()), None, upgrade.accept(&accept).unwrap()));
    }
    if let Some(offer) = offers.first() {
        let accept = Accept::new().extensions(&offer.to_string());
        choices.push((None, Some(offer.clone()), upgrade.accept(&accept).unwrap()));
    }
    if !upgrade.protocols().iter().any(|p| p == "x-unoffered") {
        assert!(upgrade
            .accept(&Accept::new().protocol("x-unoffered"))
            .is_err());
    }
    let host = request.host().filter(|h| !h.is_empty()).unwrap_or("h");
    let protocols: Vec<&str> = upgrade.protocols().iter().map(String::as_str).collect();
    let mut client_request = ClientRequest::new(host, target).protocols(&protocols);
    if !offers.is_empty() {
        client_request = client_request.extensions(&written);
    }
    for (protocol, extension, bytes) in choices {
        assert!(bytes.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert_eq!(
            head_end(&bytes),
            Some(bytes.len()),
            "one head, nothing after"
        );
        let (mut client, request_bytes) =
            ClientHandshake::new(&client_request, nonce, HandshakeLimits::default());
        let (response, used) = client
            .receive(&bytes)
            .unwrap_or_else(|e| panic!("client refused the server's answer: {e:?}"))
            .expect("a complete response");
        assert_eq!(used, bytes.len());
        assert_eq!(response.protocol(), protocol.as_deref());
        assert_eq!(response.extensions().first(), extension.as_ref());
        // And the client's own request reads back as the same offer.
        let mut server = ServerHandshake::new(HandshakeLimits::default());
        let (again, n) = server.receive(&request_bytes).unwrap().unwrap();
        assert_eq!(n, request_bytes.len());
        let again = again
            .upgrade()
            .expect("the client's request is a valid upgrade");
        assert_eq!(again.key(), upgrade.key());
        assert_eq!(again.protocols(), upgrade.protocols());
        assert_eq!(again.extensions(), upgrade.extensions());
    }
}

/// The client's request for the response targets: which protocols and extensions it offers.
pub fn client_request(selector: u8) -> ClientRequest {
    let mut request = ClientRequest::new("server.example.com", "/chat");
    if selector & 1 != 0 {
        request = request.protocols(&["chat", "superchat"]);
    }
    if selector & 2 != 0 {
        request = request.extensions("permessage-deflate; client_max_window_bits");
    }
    request
}

/// Input: request selector, limits selector, header-count byte, then a chunk spec and the
/// response bytes. The client uses the RFC nonce so that the RFC's accept value matches.
pub fn client_response(data: &[u8]) {
    let [request, selector, headers, rest @ ..] = data else {
        return;
    };
    let limits = limits(*selector, *headers);
    let request = client_request(*request);
    let pieces = chunks::split(rest);
    let body = pieces.concat();
    let whole = same_for_any_chunking(&pieces, &body, |pieces| {
        let (mut hs, _) = ClientHandshake::new(&request, RFC_NONCE, limits);
        feed(pieces, limits.max_head_bytes, |p| hs.receive(p))
    });
    check_against_reference(&whole, &body, limits.max_head_bytes);
    if let Fed::Done(Ok((response, _))) = &whole {
        check_response(response, &request);
    }
}

fn check_response(response: &Response, request: &ClientRequest) {
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let accept = response
        .header("Sec-WebSocket-Accept")
        .expect("accept checked");
    assert_eq!(accept.trim_ascii(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let offered = client_request_offers(request);
    if let Some(p) = response.protocol() {
        assert!(offered.0.contains(&p), "{p:?} was not offered");
    }
    for e in response.extensions() {
        assert!(
            offered.1.contains(&e.name.as_str()),
            "{} was not offered",
            e.name
        );
    }
}

fn client_request_offers(request: &ClientRequest) -> (Vec<&'static str>, Vec<&'static str>) {
    let (_, bytes) = ClientHandshake::new(request, RFC_NONCE, HandshakeLimits::default());
    let text = String::from_utf8(bytes).unwrap();
    let protocols = if text.contains("Sec-WebSocket-Protocol: chat, superchat") {
        vec!["chat", "superchat"]
    } else {
        vec![]
    };
    let extensions = if text.contains("permessage-deflate") {
        vec!["permessage-deflate"]
    } else {
        vec![]
    };
    (protocols, extensions)
}
