//! Who a connection is: an HS256 token from the `token` query parameter, an
//! `Authorization: Bearer` header or the `Sec-WebSocket-Protocol` offer `bearer, <token>`;
//! or, with no secret configured, a guest with a chosen or generated name.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use ws_proto::handshake::server::{Request, Upgrade};

/// A verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// No token was needed.
    pub guest: bool,
    /// The token came in `Sec-WebSocket-Protocol`, which must be answered with `bearer`.
    pub via_protocol: bool,
}

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token where one is required, or an invalid or expired one (401).
    Unauthorized,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
}

/// A user or room name: 1 to 32 letters, digits, `-`, `_` or `.`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Finds the connection's identity.
pub fn identify(
    request: &Request,
    upgrade: &Upgrade,
    secret: Option<&[u8]>,
    guest_seq: u64,
) -> Result<Identity, AuthError> {
    let (token, via_protocol) = find_token(request, upgrade);
    match secret {
        Some(secret) => {
            let token = token.ok_or(AuthError::Unauthorized)?;
            let mut validation = Validation::new(Algorithm::HS256);
            validation.validate_exp = true;
            validation.leeway = 0;
            validation.set_required_spec_claims(&["exp", "sub"]);
            let data = decode::<Claims>(&token, &DecodingKey::from_secret(secret), &validation)
                .map_err(|_| AuthError::Unauthorized)?;
            let user = data.claims.name.unwrap_or(data.claims.sub);
            if !valid_name(&user) {
                return Err(AuthError::Unauthorized);
            }
            Ok(Identity {
                user,
                guest: false,
                via_protocol,
            })
        }
        None => {
            let user = request
                .query_param("name")
                .filter(|n| valid_name(n))
                .unwrap_or_else(|| format!("guest-{guest_seq}"));
            Ok(Identity {
                user,
                guest: true,
                via_protocol,
            })
        }
    }
}

fn find_token(request: &Request, upgrade: &Upgrade) -> (Option<String>, bool) {
    if let Some(token) = request.query_param("token") {
        return (Some(token), false);
    }
    if let Some(value) = request.header_str("Authorization") {
        let mut parts = value.trim().splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") {
                return (Some(token.trim().to_string()), false);
            }
        }
    }
    let protocols = upgrade.protocols();
    if let Some(i) = protocols
        .iter()
        .position(|p| p.eq_ignore_ascii_case("bearer"))
    {
        if let Some(token) = protocols.get(i + 1) {
            return (Some(token.clone()), true);
        }
    }
    (None, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("alice_1.b-c"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(33)));
        assert!(!valid_name("<script>"));
    }
}
