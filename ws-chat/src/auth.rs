//! Who a connection is: an HS256 token from the `token` query parameter, an
//! `Authorization: Bearer` header or the `Sec-WebSocket-Protocol` offer `bearer, <token>`;
//! or, with no secret configured, a guest with a chosen name or an unguessable generated one.
//!
//! A token's identity is its `sub` (RFC 7519 section 4.1.2), which must be a valid name; `name`
//! is a display name and never an identity, so two users cannot share one by choosing the same
//! `name`. `exp` is required; `exp` and `nbf` are checked with a small leeway for clock skew;
//! `aud` and `iss` are checked when an audience or issuer is configured.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::time::Duration;
use ws_proto::handshake::server::{Request, Upgrade};

/// A verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name: the token's `sub`, or the guest's name.
    pub user: String,
    /// No token was needed.
    pub guest: bool,
    /// The token came in `Sec-WebSocket-Protocol` after this offer (`bearer`, in the client's
    /// case), which the answer must name exactly as offered.
    pub via_protocol: Option<String>,
    /// Until when the token counts (its `exp` plus the leeway), as time since the Unix epoch;
    /// `None` for a guest.
    pub expires: Option<Duration>,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Its `sub`.
    pub user: String,
    /// Its `exp`, seconds since the Unix epoch.
    pub exp: f64,
    /// Until when it counts: `exp` plus the leeway, as time since the Unix epoch.
    pub expires: Duration,
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct TokenRules {
    /// The HS256 secret.
    pub secret: Vec<u8>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// The `aud` required, if any.
    pub audience: Option<String>,
    /// The `iss` required, if any.
    pub issuer: Option<String>,
}

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token where one is required, or an invalid or expired one (401).
    Unauthorized,
}

/// The claims read; jsonwebtoken checks the signature, `aud` and `iss`, and the chat checks
/// the times against its own clock. A NumericDate may have a fraction (RFC 7519 section 2).
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: f64,
    nbf: Option<f64>,
}

/// A user or room name: 1 to 32 letters, digits, `-`, `_` or `.`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Finds the connection's identity: with `rules`, from a valid token at `now` (time since the
/// Unix epoch); without, a guest named by `?name=` or `guest_name`.
pub fn identify(
    request: &Request,
    upgrade: &Upgrade,
    rules: Option<&TokenRules>,
    now: Duration,
    guest_name: impl FnOnce() -> String,
) -> Result<Identity, AuthError> {
    let (token, via_protocol) = find_token(request, upgrade);
    match rules {
        Some(rules) => {
            let token = token.ok_or(AuthError::Unauthorized)?;
            let token = verify(&token, rules, now)?;
            Ok(Identity {
                user: token.user,
                guest: false,
                via_protocol,
                expires: Some(token.expires),
            })
        }
        None => {
            let user = request
                .query_param("name")
                .filter(|n| valid_name(n))
                .unwrap_or_else(guest_name);
            Ok(Identity {
                user,
                guest: true,
                via_protocol,
                expires: None,
            })
        }
    }
}

/// Checks a token at `now` (time since the Unix epoch): its HS256 signature, `exp` and `nbf`
/// with the leeway, `aud` and `iss` when configured, and a `sub` that is a valid name.
///
/// ```
/// use std::time::Duration;
/// use ws_chat::auth::{verify, AuthError, TokenRules};
/// let rules = TokenRules { secret: b"s".to_vec(), leeway: 5, audience: None, issuer: None };
/// // {"sub":"alice","exp":100}, signed with "s".
/// let token = concat!(
///     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTAwfQ.",
///     "L5e5PnuPlQqnW4JQhQgQkboGGkNqKO7UebvICVbq3r8"
/// );
/// let at = |s| Duration::from_secs(s);
/// assert_eq!(verify(token, &rules, at(100)).unwrap().expires, at(105));
/// assert_eq!(verify(token, &rules, at(106)), Err(AuthError::Unauthorized));
/// ```
pub fn verify(token: &str, rules: &TokenRules, now: Duration) -> Result<Token, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // The times are checked below, on the chat's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    match &rules.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &rules.issuer {
        validation.set_issuer(&[issuer]);
    }
    let key = DecodingKey::from_secret(&rules.secret);
    let claims = decode::<Claims>(token, &key, &validation)
        .map_err(|_| AuthError::Unauthorized)?
        .claims;
    let now = now.as_secs_f64();
    let leeway = rules.leeway as f64;
    let expires = claims.exp + leeway;
    // The leeway, as for `exp`, lets a token from a clock a little ahead count already.
    let early = claims.nbf.is_some_and(|nbf| nbf > now + leeway);
    if now > expires || early || !valid_name(&claims.sub) {
        return Err(AuthError::Unauthorized);
    }
    Ok(Token {
        user: claims.sub,
        exp: claims.exp,
        // A time too far to represent is as good as never.
        expires: Duration::try_from_secs_f64(expires).unwrap_or(Duration::MAX),
    })
}

fn find_token(request: &Request, upgrade: &Upgrade) -> (Option<String>, Option<String>) {
    if let Some(token) = request.query_param("token") {
        return (Some(token), None);
    }
    if let Some(value) = request.header_str("Authorization") {
        let mut parts = value.trim().splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") {
                return (Some(token.trim().to_string()), None);
            }
        }
    }
    let protocols = upgrade.protocols();
    if let Some(i) = protocols
        .iter()
        .position(|p| p.eq_ignore_ascii_case("bearer"))
    {
        if let Some(token) = protocols.get(i + 1) {
            return (Some(token.clone()), Some(protocols[i].clone()));
        }
    }
    (None, None)
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
