//! The client behind trusted proxies, from `X-Forwarded-For`: each proxy appends the address
//! it received the request from, so the list reads from the client (left) to the last proxy
//! (right). Only the right end can be believed: walking from the right, each trusted proxy
//! vouches for the address before it, and the first address that is not a trusted proxy is the
//! client. Whatever lies left of it was written by the client itself and is not read at all.
//!
//! Several `X-Forwarded-For` headers are one list, in their order (RFC 9110 section 5.3).
//! An element that must be read and is not an address is an error (the request gets 400).
//! Elements may be `addr`, `addr:port`, `[v6addr]` or `[v6addr]:port`.

use crate::config::{any_contains, canonical, IpPrefix};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Why the client cannot be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardedError {
    /// An element the walk reached is not an address (the element, cut to 64 bytes).
    Malformed(String),
}

impl fmt::Display for ForwardedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardedError::Malformed(e) => write!(f, "malformed X-Forwarded-For element {e:?}"),
        }
    }
}

impl std::error::Error for ForwardedError {}

/// The client of a request that came from `hop`, a trusted proxy, carrying the
/// `X-Forwarded-For` header values `values` (in order): the right-most address that is not in
/// `trusted`; or the left-most address when every one is trusted; or `hop` itself when the
/// header is absent or empty.
///
/// ```
/// use ws_mio_server::config::IpPrefix;
/// use ws_mio_server::forwarded::client;
/// let trusted: Vec<IpPrefix> = vec!["10.0.0.0/8".parse().unwrap()];
/// let hop = "10.0.0.1".parse().unwrap();
/// let values: [&[u8]; 2] = [b"198.51.100.9, 203.0.113.7", b"10.0.0.2"];
/// assert_eq!(client(values, hop, &trusted), Ok("203.0.113.7".parse().unwrap()));
/// ```
pub fn client<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    hop: IpAddr,
    trusted: &[IpPrefix],
) -> Result<IpAddr, ForwardedError> {
    let values: Vec<&[u8]> = values.into_iter().collect();
    let mut client = canonical(hop);
    for value in values.iter().rev() {
        for element in value.rsplit(|&b| b == b',') {
            let element = element.trim_ascii();
            // An empty element ("a,,b", a trailing comma, an empty header) is no hop.
            if element.is_empty() {
                continue;
            }
            if !any_contains(trusted, client) {
                return Ok(client);
            }
            client = canonical(address(element)?);
        }
    }
    Ok(client)
}

/// One element: an address, with or without a port.
fn address(element: &[u8]) -> Result<IpAddr, ForwardedError> {
    let malformed = || {
        let cut = &element[..element.len().min(64)];
        ForwardedError::Malformed(String::from_utf8_lossy(cut).into_owned())
    };
    let text = std::str::from_utf8(element).map_err(|_| malformed())?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
        .ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> Vec<IpPrefix> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_address() {
        let t = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let hop = ip("10.0.0.1");
        let cases: [(&[&[u8]], &str); 9] = [
            (&[], "10.0.0.1"),
            (&[b""], "10.0.0.1"),
            (&[b"203.0.113.7"], "203.0.113.7"),
            (&[b"1.1.1.1, 203.0.113.7"], "203.0.113.7"),
            (&[b"1.1.1.1, 203.0.113.7, 10.9.9.9"], "203.0.113.7"),
            (&[b"1.1.1.1", b"203.0.113.7, 10.9.9.9"], "203.0.113.7"),
            (&[b"10.1.1.1, 10.2.2.2"], "10.1.1.1"),
            (&[b"[2001:db8::7]:443, 2001:db8:ffff::1"], "2001:db8::7"),
            (&[b"203.0.113.7:5000,,"], "203.0.113.7"),
        ];
        for (values, expected) in cases {
            assert_eq!(
                client(values.iter().copied(), hop, &t),
                Ok(ip(expected)),
                "{values:?}"
            );
        }
    }

    #[test]
    fn what_the_client_wrote_left_of_its_address_is_not_read() {
        let t = trusted(&["10.0.0.0/8"]);
        let values: [&[u8]; 1] = [b"not an address, 203.0.113.7"];
        assert_eq!(client(values, ip("10.0.0.1"), &t), Ok(ip("203.0.113.7")));
    }

    #[test]
    fn a_malformed_element_on_the_walk_is_an_error() {
        let t = trusted(&["10.0.0.0/8"]);
        for bad in [
            &b"unknown"[..],
            b"203.0.113.7, garbage",
            b"203.0.113.7 10.0.0.2",
            b"[203.0.113.7]",
            b"2001:db8::7:443:x",
            b"\xff",
        ] {
            let result = client([bad], ip("10.0.0.1"), &t);
            assert!(
                matches!(result, Err(ForwardedError::Malformed(_))),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let t = trusted(&["10.0.0.0/8"]);
        let values: [&[u8]; 1] = [b"::ffff:203.0.113.7, ::ffff:10.0.0.2"];
        assert_eq!(
            client(values, ip("::ffff:10.0.0.1"), &t),
            Ok(ip("203.0.113.7"))
        );
    }
}
