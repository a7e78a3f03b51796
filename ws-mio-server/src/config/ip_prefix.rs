//! An address or a CIDR prefix of addresses, IPv4 or IPv6: how trusted proxies are named.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP address, or a prefix of `len` leading bits (`10.0.0.0/8`, `2001:db8::/32`). It reads
/// and prints as written that way; the bits past the prefix must be zero, so a typo such as
/// `10.1.2.3/8` is refused rather than read as something else.
///
/// IPv4 clients seen through an IPv6 socket (`::ffff:10.1.2.3`) match IPv4 prefixes.
///
/// ```
/// use ws_mio_server::config::IpPrefix;
/// let lan: IpPrefix = "10.0.0.0/8".parse().unwrap();
/// assert!(lan.contains("10.200.0.1".parse().unwrap()));
/// assert!(lan.contains("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(!lan.contains("11.0.0.1".parse().unwrap()));
/// let one: IpPrefix = "::1".parse().unwrap();
/// assert_eq!(one.to_string(), "::1/128");
/// assert!("10.1.2.3/8".parse::<IpPrefix>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

/// Why a text is not an [`IpPrefix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpPrefixError {
    /// The address part is not an IPv4 or IPv6 address.
    Address(String),
    /// The length is not a number up to 32 (IPv4) or 128 (IPv6).
    Length(String),
    /// Bits past the prefix are set.
    HostBits(String),
}

impl fmt::Display for IpPrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpPrefixError::Address(s) => write!(f, "not an IP address: {s:?}"),
            IpPrefixError::Length(s) => write!(f, "not a prefix length for the address: {s:?}"),
            IpPrefixError::HostBits(s) => {
                write!(
                    f,
                    "bits set past the prefix length (did you mean the network?): {s:?}"
                )
            }
        }
    }
}

impl std::error::Error for IpPrefixError {}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; others unchanged.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `ip` with all but its first `len` bits cleared.
pub(crate) fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

impl IpPrefix {
    /// Whether `ip` is in the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }
}

impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| IpPrefixError::Address(s.to_string()))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= max && len.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(IpPrefixError::Length(s.to_string())),
            },
        };
        if mask(addr, len) != addr {
            return Err(IpPrefixError::HostBits(s.to_string()));
        }
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl From<IpPrefix> for String {
    fn from(prefix: IpPrefix) -> String {
        prefix.to_string()
    }
}

impl TryFrom<String> for IpPrefix {
    type Error = IpPrefixError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Whether any of `prefixes` contains `ip`.
pub(crate) fn any_contains(prefixes: &[IpPrefix], ip: IpAddr) -> bool {
    prefixes.iter().any(|p| p.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_and_prefixes_and_prints_them_back() {
        for (text, printed) in [
            ("192.0.2.1", "192.0.2.1/32"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            ("::ffff:10.0.0.0/8", "10.0.0.0/8"),
        ] {
            let prefix: IpPrefix = text.parse().unwrap();
            assert_eq!(prefix.to_string(), printed);
            assert_eq!(printed.parse::<IpPrefix>().unwrap(), prefix);
        }
        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "10.0.0.1/8",
            "2001:db8::1/64",
            "localhost",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contains_matches_the_prefix_bits_and_the_family() {
        let p: IpPrefix = "2001:db8:1::/48".parse().unwrap();
        assert!(p.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!p.contains("2001:db8:2::1".parse().unwrap()));
        assert!(!p.contains("32.1.13.184".parse().unwrap()));
        let all4: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains("203.0.113.9".parse().unwrap()));
        assert!(!all4.contains("::1".parse().unwrap()));
    }
}
