//! Incremental reading of an HTTP/1.1 message head, linear in the bytes received.

use crate::error::HandshakeError;
use alloc::vec::Vec;

/// Limits on the HTTP head of a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// The longest head accepted, request line and headers, in bytes. Default 16 KiB; longer
    /// is refused with 431.
    pub max_head_bytes: usize,
    /// The most header fields accepted. Default 64; more is refused with 431.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_head_bytes: 16 << 10,
            max_headers: 64,
        }
    }
}

/// Collects the bytes of a head until its blank line.
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
}

impl HeadReader {
    /// Takes bytes until the head is complete. Returns how many bytes of `data` belong to the
    /// head once it is complete (the rest is not taken), `None` while more are needed.
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        limit: usize,
    ) -> Result<Option<usize>, HandshakeError> {
        let before = self.buf.len();
        let take = data.len().min(limit.saturating_sub(before));
        self.buf.extend_from_slice(&data[..take]);
        // Look only at new bytes, backing up two so that a terminator split across reads is seen.
        let from = self.scanned.saturating_sub(2);
        if let Some(end) = find_head_end(&self.buf, from) {
            self.buf.truncate(end);
            return Ok(Some(end - before));
        }
        self.scanned = self.buf.len();
        if self.buf.len() >= limit {
            return Err(HandshakeError::HeadTooLarge);
        }
        Ok(None)
    }

    /// The complete head.
    pub(crate) fn head(&self) -> &[u8] {
        &self.buf
    }
}

/// The index just past the blank line ending a head (CRLF CRLF, or the bare LF LF that httparse
/// also accepts), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_split_anywhere_and_leaves_what_follows() {
        let text = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nEXTRA";
        let head_len = text.len() - 5;
        for cut in 0..text.len() {
            let mut r = HeadReader::default();
            let first = r.push(&text[..cut], 1024).unwrap();
            let consumed = match first {
                Some(n) => n,
                None => cut + r.push(&text[cut..], 1024).unwrap().unwrap(),
            };
            assert_eq!(consumed, head_len, "cut {cut}");
            assert_eq!(r.head(), &text[..head_len]);
        }
    }

    #[test]
    fn refuses_a_head_over_the_limit() {
        let mut r = HeadReader::default();
        assert_eq!(r.push(&[b'a'; 100], 64), Err(HandshakeError::HeadTooLarge));
    }

    #[test]
    fn byte_at_a_time_scans_linearly() {
        // 16 KiB fed one byte at a time: each push looks at three bytes at most.
        let mut r = HeadReader::default();
        for _ in 0..(16 << 10) - 1 {
            assert_eq!(r.push(b"a", 16 << 10).unwrap(), None);
            assert!(r.buf.len() - r.scanned.saturating_sub(2) <= 3);
        }
    }
}
