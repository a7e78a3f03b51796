//! The comma-separated header values of the handshake: token lists (Upgrade, Connection,
//! Sec-WebSocket-Protocol) and extension offers (Sec-WebSocket-Extensions, RFC 6455 section
//! 9.1).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Whether a comma-separated header value holds `token`, compared case-insensitively.
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim(item).eq_ignore_ascii_case(token.as_bytes()))
}

/// The non-empty items of a comma-separated value.
pub(crate) fn tokens(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// An RFC 7230 token character.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// One extension in a `Sec-WebSocket-Extensions` header: its name and parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension's name, for example `permessage-deflate`.
    pub name: String,
    /// Parameters: name and value (`None` for a parameter without `=value`); quoted values
    /// are unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionOffer {
    /// Parses a `Sec-WebSocket-Extensions` value (section 9.1's grammar: extensions separated
    /// by commas, parameters by semicolons, values as tokens or quoted strings). Returns `None`
    /// if it does not follow the grammar.
    ///
    /// ```
    /// use ws_proto::handshake::ExtensionOffer;
    /// let offers = ExtensionOffer::parse_list("permessage-deflate; client_max_window_bits, x-foo").unwrap();
    /// assert_eq!(offers[0].name, "permessage-deflate");
    /// assert_eq!(offers[0].params, vec![("client_max_window_bits".to_string(), None)]);
    /// assert_eq!(offers[1].name, "x-foo");
    /// ```
    pub fn parse_list(value: &str) -> Option<Vec<ExtensionOffer>> {
        let mut offers = Vec::new();
        for item in split_outside_quotes(value, ',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let mut parts = split_outside_quotes(item, ';').into_iter();
            let name = parts.next()?.trim();
            if !is_token(name) {
                return None;
            }
            let mut params = Vec::new();
            for param in parts {
                let param = param.trim();
                let (key, value) = match param.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
                    None => (param, None),
                };
                if !is_token(key) {
                    return None;
                }
                params.push((key.to_string(), value));
            }
            offers.push(ExtensionOffer {
                name: name.to_string(),
                params,
            });
        }
        Some(offers)
    }
}

impl core::fmt::Display for ExtensionOffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.name)?;
        for (key, value) in &self.params {
            match value {
                Some(v) => write!(f, "; {key}={v}")?,
                None => write!(f, "; {key}")?,
            }
        }
        Ok(())
    }
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A token, or a quoted string whose content is a token (section 9.1 requires that).
fn unquote(v: &str) -> Option<String> {
    let inner = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?.replace('\\', ""),
        None => v.to_string(),
    };
    is_token(&inner).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_4_2_1_token_lists_are_case_insensitive_comma_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"WebSocket", "websocket"));
        assert!(!has_token(b"upgraded", "upgrade"));
    }

    #[test]
    fn rfc6455_9_1_extension_grammar() {
        let offers = ExtensionOffer::parse_list(
            "permessage-deflate; server_max_window_bits=\"10\"; client_no_context_takeover, permessage-deflate",
        )
        .unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(
            offers[0].params[0],
            ("server_max_window_bits".into(), Some("10".into()))
        );
        assert_eq!(
            offers[0].to_string(),
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover"
        );
        assert!(ExtensionOffer::parse_list("bad name").is_none());
        assert!(ExtensionOffer::parse_list("x; a=\"b c\"").is_none());
        assert!(ExtensionOffer::parse_list("x; =1").is_none());
    }
}
