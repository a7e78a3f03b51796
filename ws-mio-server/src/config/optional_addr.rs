//! An address to listen on, or none: how an optional listener is set.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::str::FromStr;

/// A socket address, or `off` for none. It reads and prints as the address or `off` (in
/// flags, variables and the file alike).
///
/// ```
/// use ws_mio_server::config::OptionalAddr;
/// let on: OptionalAddr = "127.0.0.1:9002".parse().unwrap();
/// assert_eq!(on.0, Some("127.0.0.1:9002".parse().unwrap()));
/// let off: OptionalAddr = "off".parse().unwrap();
/// assert_eq!(off, OptionalAddr(None));
/// assert_eq!(off.to_string(), "off");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct OptionalAddr(pub Option<SocketAddr>);

impl FromStr for OptionalAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" | "none" | "" => Ok(OptionalAddr(None)),
            addr => addr.parse().map(|a| OptionalAddr(Some(a))),
        }
    }
}

impl fmt::Display for OptionalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("off"),
        }
    }
}

impl From<OptionalAddr> for String {
    fn from(addr: OptionalAddr) -> String {
        addr.to_string()
    }
}

impl TryFrom<String> for OptionalAddr {
    type Error = AddrParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_address_or_off_and_prints_it_back() {
        for text in ["127.0.0.1:9002", "[::1]:80", "off"] {
            let addr: OptionalAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        assert_eq!("none".parse::<OptionalAddr>().unwrap(), OptionalAddr(None));
        assert!("localhost".parse::<OptionalAddr>().is_err());
        assert!("127.0.0.1".parse::<OptionalAddr>().is_err());
    }
}
