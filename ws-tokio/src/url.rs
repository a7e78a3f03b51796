//! `ws://` and `wss://` URLs (RFC 6455 section 3): what to connect to and what to ask for.

use crate::error::UrlError;

/// A parsed WebSocket URL.
///
/// ```
/// use ws_tokio::WsUrl;
///
/// let url = WsUrl::parse("wss://example.com/chat?room=1").unwrap();
/// assert_eq!((url.host(), url.port(), url.is_tls()), ("example.com", 443, true));
/// assert_eq!((url.target(), url.host_header()), ("/chat?room=1", "example.com"));
/// let local = WsUrl::parse("ws://[::1]:9001").unwrap();
/// assert_eq!((local.host(), local.target(), local.host_header()), ("::1", "/", "[::1]:9001"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    tls: bool,
    host: String,
    port: u16,
    target: String,
    host_header: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` or the same with `wss`. The scheme and host
    /// are compared case-insensitively; a fragment or user information is refused.
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(UrlError::Scheme),
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        if authority.contains('@') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::Host);
        }
        let (host, port) = split_host_port(authority)?;
        let default_port = if tls { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let host_header = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(WsUrl {
            tls,
            host,
            port,
            target,
            host_header,
        })
    }

    /// Whether the URL asks for TLS (`wss`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host: a name, or an address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, 80 or 443 unless given.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query, `/` at least.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` header's value: the host, with the port unless it is the default.
    pub fn host_header(&self) -> &str {
        &self.host_header
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::Host)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::Host);
        }
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(UrlError::Port)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_name = |c: char| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c);
    if host.is_empty() || (!host.contains(':') && !host.chars().all(valid_name)) {
        return Err(UrlError::Host);
    }
    let port = match port {
        None => None,
        // Digits only: `u16::from_str` would take a leading `+`.
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(UrlError::Port),
            }
        }
        Some(_) => return Err(UrlError::Port),
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_explicit_ports() {
        let url = WsUrl::parse("ws://Example.COM").unwrap();
        assert_eq!(
            (url.host(), url.port(), url.target(), url.is_tls()),
            ("example.com", 80, "/", false)
        );
        assert_eq!(url.host_header(), "example.com");
        let url = WsUrl::parse("WSS://h:8443?x=1").unwrap();
        assert_eq!(
            (url.port(), url.target(), url.host_header()),
            (8443, "/?x=1", "h:8443")
        );
        let url = WsUrl::parse("ws://h:80/a").unwrap();
        assert_eq!(url.host_header(), "h");
    }

    #[test]
    fn refuses_what_rfc6455_section_3_does_not_allow() {
        assert_eq!(WsUrl::parse("http://h/"), Err(UrlError::Scheme));
        assert_eq!(WsUrl::parse("h:80"), Err(UrlError::Scheme));
        assert_eq!(WsUrl::parse("ws://h/#frag"), Err(UrlError::Fragment));
        assert_eq!(WsUrl::parse("ws://user@h/"), Err(UrlError::Host));
        assert_eq!(WsUrl::parse("ws:///path"), Err(UrlError::Host));
        assert_eq!(WsUrl::parse("ws://h:0/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://h:65536/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://h:x/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://[::1/"), Err(UrlError::Host));
        assert_eq!(WsUrl::parse("ws://[nope]/"), Err(UrlError::Host));
        assert_eq!(WsUrl::parse("ws://h/a b"), Err(UrlError::Host));
    }
}
