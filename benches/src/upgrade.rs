//! The server side of the opening handshake for the fastwebsockets peer. fastwebsockets leaves
//! the handshake to hyper or to its caller; a few lines over httparse keep hyper's per-connection
//! state out of that peer's figures.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEAD: usize = 8192;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The `Sec-WebSocket-Key` of a complete request head, after the checks RFC 6455 section 4.2.1
/// asks for; `Ok(None)` while the head is incomplete.
pub fn parse_request(head: &[u8]) -> io::Result<Option<(String, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(head) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(bad("malformed request")),
    };
    if request.method != Some("GET") {
        return Err(bad("not GET"));
    }
    let has = |name: &str, token: &str| {
        request.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && std::str::from_utf8(h.value)
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has("Upgrade", "websocket") || !has("Connection", "upgrade") {
        return Err(bad("not an upgrade"));
    }
    if !has("Sec-WebSocket-Version", "13") {
        return Err(bad("unsupported version"));
    }
    let key = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Key"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
        .ok_or_else(|| bad("no key"))?;
    Ok(Some((key.to_string(), used)))
}

/// The 101 response for a key.
pub fn response(key: &str) -> Vec<u8> {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID);
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Reads the request and answers 101. A client that sends frames before the answer is refused:
/// the load generator never does.
pub async fn accept(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some((key, used)) = parse_request(&head)? {
            if used != head.len() {
                return Err(bad("data before the handshake completed"));
            }
            return stream.write_all(&response(&key)).await;
        }
        if head.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_1_3_example() {
        let req = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                    Sec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(parse_request(&req[..20]).unwrap(), None);
        let (key, used) = parse_request(req).unwrap().unwrap();
        assert_eq!(used, req.len());
        let answer = String::from_utf8(response(&key)).unwrap();
        assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }
}
