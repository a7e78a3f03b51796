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
    /// case): the answer names it, exactly as offered, unless the client offered the chat's
    /// version too ([`crate::protocol::subprotocol`]).
    pub via_protocol: Option<String>,
    /// Until when the token counts (its `exp` plus the leeway), as time since the Unix epoch;
    /// `None` for a guest.
    pub expires: Option<Duration>,
    /// The token's `name`, cleaned for display ([`display_name`]); never an identity.
    pub name: Option<String>,
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
    /// Its `name`, cleaned for display ([`display_name`]).
    pub name: Option<String>,
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
    /// Characters kept of a `name` claim for display; 0 ignores it.
    pub max_display_name: usize,
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
    /// Anything: a `name` that is not a string is no display name, but the token stands.
    name: Option<serde_json::Value>,
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
                name: token.name,
            })
        }
        None => {
            // `admin` signs the admin API's messages: no guest may take it.
            let user = request
                .query_param("name")
                .filter(|n| valid_name(n) && n != crate::ADMIN)
                .unwrap_or_else(guest_name);
            Ok(Identity {
                user,
                guest: true,
                via_protocol,
                expires: None,
                name: None,
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
/// let rules = TokenRules {
///     secret: b"s".to_vec(),
///     leeway: 5,
///     audience: None,
///     issuer: None,
///     max_display_name: 64,
/// };
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
    let name = claims.name.as_ref().and_then(|n| n.as_str());
    Ok(Token {
        name: name.and_then(|n| display_name(n, rules.max_display_name)),
        user: claims.sub,
        exp: claims.exp,
        // A time too far to represent is as good as never.
        expires: Duration::try_from_secs_f64(expires).unwrap_or(Duration::MAX),
    })
}

/// A display name as shown to others: without control or invisible formatting characters
/// (bidirectional overrides could make it read as another), runs of white space as one space,
/// at most `max_chars` characters; `None` if nothing is left. It identifies nobody.
///
/// ```
/// use ws_chat::auth::display_name;
/// assert_eq!(display_name("  Alice\n\u{202e}Smith ", 64).as_deref(), Some("Alice Smith"));
/// assert_eq!(display_name("Bob", 2).as_deref(), Some("Bo"));
/// assert_eq!(display_name("\u{7}\t", 64), None);
/// ```
pub fn display_name(raw: &str, max_chars: usize) -> Option<String> {
    let mut name = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !name.is_empty();
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            continue;
        }
        let needed = 1 + usize::from(space);
        if chars + needed > max_chars {
            break;
        }
        if space {
            name.push(' ');
            space = false;
        }
        name.push(c);
        chars += needed;
    }
    (!name.is_empty()).then_some(name)
}

/// Formatting characters that change how the text around them shows without showing
/// themselves: zero-width ones, bidirectional marks, embeddings, overrides and isolates, the
/// byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{061c}' | '\u{00ad}')
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
    use ws_proto::handshake::server::ServerHandshake;
    use ws_proto::handshake::HandshakeLimits;

    /// {"sub":"alice","exp":100}, signed with "s" (as in `verify`'s example).
    const ALICE: &str = concat!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTAwfQ.",
        "L5e5PnuPlQqnW4JQhQgQkboGGkNqKO7UebvICVbq3r8"
    );

    fn rules() -> TokenRules {
        TokenRules {
            secret: b"s".to_vec(),
            leeway: 5,
            audience: None,
            issuer: None,
            max_display_name: 64,
        }
    }

    /// Who an upgrade request to `target` with these `Sec-WebSocket-Protocol` header lines is,
    /// with a secret configured.
    fn identify_offering(target: &str, lines: &[&str]) -> Result<Identity, AuthError> {
        let mut head = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for line in lines {
            head.push_str(&format!("Sec-WebSocket-Protocol: {line}\r\n"));
        }
        head.push_str("\r\n");
        let mut handshake = ServerHandshake::new(HandshakeLimits::default());
        let (request, _) = handshake.receive(head.as_bytes()).unwrap().unwrap();
        let upgrade = request.upgrade().unwrap();
        let now = Duration::from_secs(100);
        identify(&request, &upgrade, Some(&rules()), now, || unreachable!())
    }

    #[test]
    fn the_token_is_found_after_bearer_among_several_offers() {
        let offers = [
            format!("chat.v1, bearer, {ALICE}"),
            format!("bearer, {ALICE}, chat.v1"),
            format!("chat.v2, chat.v1, Bearer, {ALICE}, other"),
        ];
        for offer in &offers {
            let identity =
                identify_offering("/ws", &[offer]).unwrap_or_else(|e| panic!("{offer}: {e:?}"));
            assert_eq!(identity.user, "alice", "{offer}");
            assert!(!identity.guest);
            let spelled = if offer.contains("Bearer") {
                "Bearer"
            } else {
                "bearer"
            };
            assert_eq!(identity.via_protocol.as_deref(), Some(spelled), "{offer}");
        }
        // Offers in two header lines are one list (RFC 6455 section 4.3).
        let identity = identify_offering("/ws", &["chat.v1", &format!("bearer, {ALICE}")]).unwrap();
        assert_eq!(
            (identity.user.as_str(), identity.via_protocol.as_deref()),
            ("alice", Some("bearer"))
        );
    }

    #[test]
    fn offers_without_a_token_after_bearer_are_refused() {
        for offer in [
            "chat.v1",
            "chat.v1, bearer",
            &format!("{ALICE}, bearer"),
            "chat.v1, bearer, chat.v2",
        ] {
            assert_eq!(
                identify_offering("/ws", &[offer]),
                Err(AuthError::Unauthorized),
                "{offer}"
            );
        }
    }

    #[test]
    fn a_token_in_the_query_is_taken_whatever_is_offered_and_names_no_subprotocol() {
        let target = format!("/ws?token={ALICE}");
        let identity = identify_offering(&target, &["chat.v1, bearer, not-a-token"]).unwrap();
        assert_eq!(
            (identity.user.as_str(), identity.via_protocol),
            ("alice", None)
        );
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("alice_1.b-c"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(33)));
        assert!(!valid_name("<script>"));
    }

    #[test]
    fn display_names_lose_control_and_invisible_characters_and_are_capped() {
        assert_eq!(display_name("Zoë Ölund", 64).as_deref(), Some("Zoë Ölund"));
        assert_eq!(
            display_name("a\u{0}b\u{1b}[31mc", 64).as_deref(),
            Some("ab[31mc")
        );
        assert_eq!(
            display_name("ev\u{200b}e\u{2066}", 64).as_deref(),
            Some("eve")
        );
        assert_eq!(display_name("a \t\r\n b", 64).as_deref(), Some("a b"));
        assert_eq!(
            display_name(&"é".repeat(100), 64).map(|n| n.chars().count()),
            Some(64)
        );
        assert_eq!(display_name("ab cd", 3).as_deref(), Some("ab"));
        assert_eq!(display_name("anything", 0), None);
        assert_eq!(display_name("", 64), None);
    }
}
