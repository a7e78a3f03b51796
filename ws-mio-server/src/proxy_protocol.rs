//! The PROXY protocol header (versions 1 and 2, as HAProxy's `proxy-protocol.txt` specifies
//! them): what a load balancer sends first on a connection to say which client it carries.
//! Read only from trusted proxies (`--proxy-protocol`), sans-IO and bounded: a version 1
//! header is at most 107 bytes, its line ending included; a version 2 header's length field is
//! checked against [`MAX_V2_LEN`] before anything more is kept.
//!
//! The facts of the format this parser relies on:
//!
//! - v1 is one ASCII line: `PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n` (`TCP6` with IPv6
//!   addresses), single spaces, ports decimal 0 to 65535; or `PROXY UNKNOWN` followed by
//!   anything up to the line end, for which the connection's own addresses are used.
//! - v2 starts with the 12-byte signature `\r\n\r\n\0\r\nQUIT\n`; then a byte of version (high
//!   nibble, 2) and command (low nibble: 0 LOCAL, 1 PROXY); a byte of address family (high
//!   nibble: 0 unspecified, 1 IPv4, 2 IPv6, 3 Unix) and transport (low nibble: 0 unspecified, 1
//!   stream, 2 datagram); a 16-bit big-endian length of what follows: the addresses (12 bytes
//!   for IPv4, 36 for IPv6, 216 for Unix: source, destination, then the ports for IP), then
//!   optional TLVs, which are skipped. Other values of those nibbles are refused. LOCAL (a
//!   health check by the proxy itself) and the unspecified family use the connection's own
//!   addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 header, `\r\n` included.
pub const MAX_V1_LEN: usize = 107;
/// The longest v2 address-and-TLV block accepted (the header's length field); a longer one is
/// refused. TLVs that proxies send (SSL details, cloud endpoint ids) fit well within it.
pub const MAX_V2_LEN: usize = 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address, or `None` when the header says to use the connection's own
    /// (v1 `UNKNOWN`, v2 `LOCAL`, an unspecified or Unix family).
    pub source: Option<SocketAddr>,
}

/// Why a header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeaderError {
    /// The bytes do not start with either version's signature.
    NotProxy,
    /// A v1 line without its line end within 107 bytes.
    V1TooLong,
    /// A v1 line that does not follow the format.
    V1Malformed,
    /// A v2 version other than 2, or a command other than LOCAL and PROXY.
    V2VersionOrCommand,
    /// A v2 family or transport that is not defined.
    V2Family,
    /// A v2 length too short for its family's addresses.
    V2TooShort,
    /// A v2 length past [`MAX_V2_LEN`].
    V2TooLong,
}

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyHeaderError::NotProxy => "no PROXY protocol header",
            ProxyHeaderError::V1TooLong => "PROXY v1 header longer than 107 bytes",
            ProxyHeaderError::V1Malformed => "malformed PROXY v1 header",
            ProxyHeaderError::V2VersionOrCommand => "PROXY v2 header with a bad version or command",
            ProxyHeaderError::V2Family => "PROXY v2 header with a bad family or transport",
            ProxyHeaderError::V2TooShort => "PROXY v2 header too short for its addresses",
            ProxyHeaderError::V2TooLong => "PROXY v2 header longer than accepted",
        })
    }
}

impl std::error::Error for ProxyHeaderError {}

/// Whether `data`, the first bytes of a connection, start with either version's signature
/// (`PROXY ` or v2's twelve bytes). Fewer bytes than a signature say nothing: an HTTP request
/// may start with `P`, and a header cut short is refused by the HTTP parser anyway.
pub fn looks_like_proxy(data: &[u8]) -> bool {
    data.starts_with(V1_PREFIX) || data.starts_with(V2_SIGNATURE)
}

/// Parses a header at the start of `input`: `Ok(None)` while more bytes are needed, or the
/// header and the bytes it took (what follows is the application's).
pub fn parse(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    match input.first() {
        None => Ok(None),
        Some(b'P') => parse_v1(input),
        Some(b'\r') => parse_v2(input),
        Some(_) => Err(ProxyHeaderError::NotProxy),
    }
}

fn parse_v1(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    let n = input.len().min(V1_PREFIX.len());
    if input[..n] != V1_PREFIX[..n] {
        return Err(ProxyHeaderError::NotProxy);
    }
    let window = &input[..input.len().min(MAX_V1_LEN)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if input.len() >= MAX_V1_LEN {
            Err(ProxyHeaderError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&input[V1_PREFIX.len()..end])
        .map_err(|_| ProxyHeaderError::V1Malformed)?;
    let source = v1_source(line).ok_or(ProxyHeaderError::V1Malformed)?;
    Ok(Some((ProxyHeader { source }, end + 2)))
}

/// The source of a v1 line after `PROXY `: `Some(None)` for UNKNOWN.
fn v1_source(line: &str) -> Option<Option<SocketAddr>> {
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Some(None);
    }
    let mut fields = line.split(' ');
    let family = fields.next()?;
    let (src, dst, sport, dport) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if fields.next().is_some() {
        return None;
    }
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            src.parse::<Ipv4Addr>().ok()?.into(),
            dst.parse::<Ipv4Addr>().ok()?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().ok()?.into(),
            dst.parse::<Ipv6Addr>().ok()?.into(),
        ),
        _ => return None,
    };
    let _ = (dst, port(dport)?);
    Some(Some(SocketAddr::new(src, port(sport)?)))
}

/// A decimal port, 0 to 65535, without sign or leading zeros.
fn port(text: &str) -> Option<u16> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    (digits_only && !leading_zero)
        .then(|| text.parse().ok())
        .flatten()
}

fn parse_v2(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    let n = input.len().min(V2_SIGNATURE.len());
    if input[..n] != V2_SIGNATURE[..n] {
        return Err(ProxyHeaderError::NotProxy);
    }
    // Each field is checked as soon as it has arrived.
    let local = match input.get(12) {
        None => return Ok(None),
        Some(0x20) => true,
        Some(0x21) => false,
        Some(_) => return Err(ProxyHeaderError::V2VersionOrCommand),
    };
    let Some(&family) = input.get(13) else {
        return Ok(None);
    };
    let address_len = match family >> 4 {
        0 => 0,
        1 => 12,
        2 => 36,
        3 => 216,
        _ => return Err(ProxyHeaderError::V2Family),
    };
    if family & 0x0f > 2 {
        return Err(ProxyHeaderError::V2Family);
    }
    let Some(len) = input.get(14..16) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if len > MAX_V2_LEN {
        return Err(ProxyHeaderError::V2TooLong);
    }
    // LOCAL carries no addresses to read, whatever its family says.
    if !local && len < address_len {
        return Err(ProxyHeaderError::V2TooShort);
    }
    let Some(body) = input.get(16..16 + len) else {
        return Ok(None);
    };
    let source = match (local, family >> 4) {
        (false, 1) => {
            let ip: [u8; 4] = body[0..4].try_into().expect("length checked");
            let port = u16::from_be_bytes([body[8], body[9]]);
            Some(SocketAddr::new(Ipv4Addr::from(ip).into(), port))
        }
        (false, 2) => {
            let ip: [u8; 16] = body[0..16].try_into().expect("length checked");
            let port = u16::from_be_bytes([body[32], body[33]]);
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), port))
        }
        _ => None,
    };
    Ok(Some((ProxyHeader { source }, 16 + len)))
}

/// A header arriving in pieces: keeps at most what a header may take
/// (16 + [`MAX_V2_LEN`] bytes).
#[derive(Debug, Default)]
pub struct ProxyHeaderReader {
    buf: Vec<u8>,
}

impl ProxyHeaderReader {
    /// A reader that has seen nothing.
    pub fn new() -> ProxyHeaderReader {
        ProxyHeaderReader::default()
    }

    /// More bytes: `Ok(None)` while the header is incomplete, then the header and how many of
    /// *these* bytes it took (the rest follow it).
    pub fn receive(
        &mut self,
        data: &[u8],
    ) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
        let before = self.buf.len();
        let take = data.len().min(16 + MAX_V2_LEN - before);
        self.buf.extend_from_slice(&data[..take]);
        match parse(&self.buf)? {
            Some((header, used)) => {
                self.buf = Vec::new();
                Ok(Some((header, used - before)))
            }
            None => Ok(None),
        }
    }

    /// The heap bytes it holds.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn source(input: &[u8]) -> Result<Option<(Option<SocketAddr>, usize)>, ProxyHeaderError> {
        parse(input).map(|h| h.map(|(h, used)| (h.source, used)))
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET /";
        assert_eq!(
            source(line),
            Ok(Some((Some("203.0.113.7:56324".parse().unwrap()), 44)))
        );
        let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
        assert_eq!(
            source(line),
            Ok(Some((
                Some("[2001:db8::7]:65535".parse().unwrap()),
                line.len()
            )))
        );
        assert_eq!(source(b"PROXY UNKNOWN\r\n"), Ok(Some((None, 15))));
        assert_eq!(source(b"PROXY UNKNOWN x y z\r\n"), Ok(Some((None, 21))));
        // Incomplete, as far as it goes.
        assert_eq!(source(b"PROX"), Ok(None));
        assert_eq!(source(b"PROXY TCP4 203.0.113.7 19"), Ok(None));
    }

    #[test]
    fn v1_refuses_what_the_format_does_not_allow() {
        for bad in [
            &b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443 \r\n"[..],
            b"PROXY TCP4  203.0.113.7 192.0.2.1 56324 443\r\n",
            b"PROXY TCP4 2001:db8::7 192.0.2.1 56324 443\r\n",
            b"PROXY TCP6 203.0.113.7 2001:db8::1 56324 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 01 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
            b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",
            b"PROXY \xff\r\n",
        ] {
            assert_eq!(
                source(bad),
                Err(ProxyHeaderError::V1Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            source(b"GET / HTTP/1.1\r\n"),
            Err(ProxyHeaderError::NotProxy)
        );
        assert_eq!(source(b"PROXI"), Err(ProxyHeaderError::NotProxy));
        let long = [b"PROXY UNKNOWN ".to_vec(), vec![b'x'; 100]].concat();
        assert_eq!(source(&long), Err(ProxyHeaderError::V1TooLong));
        // 107 bytes with the line end is the most there is.
        let longest = [b"PROXY UNKNOWN ".to_vec(), vec![b'x'; 91], b"\r\n".to_vec()].concat();
        assert_eq!(longest.len(), MAX_V1_LEN);
        assert_eq!(source(&longest), Ok(Some((None, MAX_V1_LEN))));
    }

    #[test]
    fn v2_ipv4_ipv6_local_unspecified_and_tlvs() {
        let mut body = vec![203, 0, 113, 7, 192, 0, 2, 1];
        body.extend_from_slice(&56324u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        let header = v2(0x21, 0x11, &body);
        assert_eq!(
            source(&header),
            Ok(Some((Some("203.0.113.7:56324".parse().unwrap()), 28)))
        );
        // TLVs after the addresses are skipped.
        let with_tlv = v2(0x21, 0x11, &[&body[..], &[0x04, 0, 2, 9, 9]].concat());
        assert_eq!(source(&with_tlv).unwrap().unwrap().1, 16 + 17);
        let mut body6 = [0u8; 36];
        body6[0..16].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        body6[32..34].copy_from_slice(&8080u16.to_be_bytes());
        assert_eq!(
            source(&v2(0x21, 0x21, &body6)),
            Ok(Some((Some("[2001:db8::7]:8080".parse().unwrap()), 52)))
        );
        // LOCAL: the proxy's own connection; no addresses needed.
        assert_eq!(source(&v2(0x20, 0x00, &[])), Ok(Some((None, 16))));
        assert_eq!(source(&v2(0x20, 0x11, &[])), Ok(Some((None, 16))));
        // PROXY with an unspecified family, or Unix sockets: the connection's addresses.
        assert_eq!(source(&v2(0x21, 0x00, &[])), Ok(Some((None, 16))));
        assert_eq!(source(&v2(0x21, 0x31, &[0; 216])), Ok(Some((None, 232))));
        // Incomplete at every length short of the whole.
        for n in 0..header.len() {
            assert_eq!(source(&header[..n]), Ok(None), "{n}");
        }
    }

    #[test]
    fn only_a_whole_signature_looks_like_a_header() {
        assert!(looks_like_proxy(b"PROXY TCP4"));
        assert!(looks_like_proxy(b"\r\n\r\n\0\r\nQUIT\n\x21"));
        for not in [
            &b""[..],
            b"P",
            b"PROXY",
            b"PUT / HTTP/1.1",
            b"\r\n\r\n",
            b"GET / HTTP/1.1",
        ] {
            assert!(!looks_like_proxy(not), "{not:?}");
        }
    }

    #[test]
    fn v2_refuses_bad_fields_and_lengths() {
        let cases = [
            (
                v2(0x11, 0x11, &[0; 12]),
                ProxyHeaderError::V2VersionOrCommand,
            ),
            (
                v2(0x22, 0x11, &[0; 12]),
                ProxyHeaderError::V2VersionOrCommand,
            ),
            (v2(0x21, 0x41, &[0; 12]), ProxyHeaderError::V2Family),
            (v2(0x21, 0x13, &[0; 12]), ProxyHeaderError::V2Family),
            (v2(0x21, 0x11, &[0; 11]), ProxyHeaderError::V2TooShort),
            (v2(0x21, 0x21, &[0; 35]), ProxyHeaderError::V2TooShort),
            (
                v2(0x21, 0x11, &vec![0; MAX_V2_LEN + 1]),
                ProxyHeaderError::V2TooLong,
            ),
        ];
        for (header, error) in cases {
            assert_eq!(source(&header), Err(error));
            // Refused as soon as the bad field has arrived, not after the whole length.
            assert_eq!(source(&header[..16]), Err(error));
        }
        assert_eq!(
            source(b"\r\n\r\n\0\r\nQUIX\n"),
            Err(ProxyHeaderError::NotProxy)
        );
    }

    /// A v1 or v2 header, valid, for the source address it names.
    fn header_for(addr: SocketAddr, v2_form: bool, tlv: usize) -> Vec<u8> {
        if !v2_form {
            let family = if addr.is_ipv4() { "TCP4" } else { "TCP6" };
            let dst = if addr.is_ipv4() { "192.0.2.1" } else { "::1" };
            return format!("PROXY {family} {} {dst} {} 443\r\n", addr.ip(), addr.port())
                .into_bytes();
        }
        let mut body = Vec::new();
        let family = match addr.ip() {
            IpAddr::V4(ip) => {
                body.extend_from_slice(&ip.octets());
                body.extend_from_slice(&[192, 0, 2, 1]);
                0x11
            }
            IpAddr::V6(ip) => {
                body.extend_from_slice(&ip.octets());
                body.extend_from_slice(&[0; 16]);
                0x21
            }
        };
        body.extend_from_slice(&addr.port().to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        body.resize(body.len() + tlv, 0xaa);
        v2(0x21, family, &body)
    }

    proptest! {
        /// No input panics, and whatever is taken is within the input and the bounds.
        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, used))) = parse(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert!(used <= 16 + MAX_V2_LEN);
            }
        }

        /// Near-valid input (a valid header with bytes changed) parses without panic too.
        #[test]
        fn mutated_headers_parse_without_panic(
            ip in any::<[u8; 16]>(), port in any::<u16>(), v2_form in any::<bool>(),
            at in any::<prop::sample::Index>(), byte in any::<u8>(),
        ) {
            let addr = SocketAddr::new(Ipv6Addr::from(ip).into(), port);
            let mut header = header_for(addr, v2_form, 3);
            let i = at.index(header.len());
            header[i] = byte;
            let _ = parse(&header);
        }

        /// A valid header names its address, whether it arrives whole or in pieces, and the
        /// bytes after it are left for the application.
        #[test]
        fn valid_headers_in_any_pieces_name_their_source(
            v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), use_v6 in any::<bool>(),
            port in any::<u16>(), v2_form in any::<bool>(), tlv in 0usize..64,
            cuts in proptest::collection::vec(1usize..40, 0..8),
        ) {
            let ip: IpAddr = if use_v6 { Ipv6Addr::from(v6).into() } else { Ipv4Addr::from(v4).into() };
            let addr = SocketAddr::new(ip, port);
            let header = header_for(addr, v2_form, tlv);
            let mut stream = header.clone();
            stream.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let mut reader = ProxyHeaderReader::new();
            let mut at = 0;
            let mut cuts = cuts.into_iter();
            let (found, used) = loop {
                let end = (at + cuts.next().unwrap_or(usize::MAX / 2)).min(stream.len());
                if let Some(done) = reader.receive(&stream[at..end]).unwrap() {
                    break (done, at + done.1);
                }
                prop_assert!(end < stream.len(), "never complete");
                at = end;
            };
            prop_assert_eq!(found.0.source, Some(addr));
            prop_assert_eq!(used, header.len());
        }
    }
}
