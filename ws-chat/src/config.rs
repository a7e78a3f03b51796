//! The chat's settings: flags, `WS_*` variables and file keys, declared once per field.

use crate::auth::TokenRules;
use serde::{Deserialize, Serialize};
use ws_mio_server::config::layered;

/// The chat's settings, each declared once: its flag, `WS_*` variable, default, help text and
/// file key (the field's name, or its serde rename) come from the field's attributes.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct ChatConfig {
    /// HS256 secret for tokens: with one, a connection needs a valid token (401 otherwise);
    /// without one, everyone is a guest. An empty one is refused at start: it would verify
    /// tokens anyone can sign.
    #[arg(long, env = "WS_JWT_SECRET", hide_env_values = true)]
    #[arg(value_name = "SECRET")]
    #[serde(default)]
    pub jwt_secret: Option<String>,
    /// Seconds of clock skew allowed on a token's `exp` and `nbf`.
    #[arg(
        long,
        env = "WS_JWT_LEEWAY",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub jwt_leeway: u64,
    /// The `aud` a token must carry (any, or none, when unset).
    #[arg(long, env = "WS_JWT_AUDIENCE", value_name = "AUDIENCE")]
    #[serde(default)]
    pub jwt_audience: Option<String>,
    /// The `iss` a token must carry (any, or none, when unset).
    #[arg(long, env = "WS_JWT_ISSUER", value_name = "ISSUER")]
    #[serde(default)]
    pub jwt_issuer: Option<String>,
    /// Characters kept of a token's `name` claim, the display name (0: none shown).
    #[arg(long, env = "WS_MAX_DISPLAY_NAME", default_value_t = 64)]
    #[arg(value_name = "CHARS")]
    pub max_display_name: usize,
    /// Origins allowed to connect, comma-separated (403 for others); none allows all.
    #[arg(long, env = "WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    #[arg(value_name = "ORIGINS")]
    pub allowed_origins: Vec<String>,
    /// Open connections per user; more are closed with 4008.
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_USER", default_value_t = 8)]
    #[arg(value_name = "N")]
    pub max_connections_per_user: usize,
    /// Messages a second per user, sustained (a token bucket).
    #[arg(long, env = "WS_RATE_LIMIT", default_value_t = 10.0)]
    #[arg(value_name = "RATE")]
    pub rate_limit: f64,
    /// Messages a user may send in a burst.
    #[arg(long, env = "WS_RATE_BURST", default_value_t = 20.0, value_name = "N")]
    pub rate_burst: f64,
    /// Refused messages after which a user's connection is closed with 1008 (not an option).
    #[arg(skip = 20u32)]
    pub abuse_limit: u32,
    /// The largest client message, in bytes of JSON (`too_large` beyond).
    #[arg(long = "max-chat-message", env = "WS_MAX_CHAT_MESSAGE")]
    #[arg(default_value_t = 8192, value_name = "BYTES")]
    #[serde(rename = "max_chat_message")]
    pub max_message_bytes: usize,
}

impl Default for ChatConfig {
    /// The declared defaults, as `--help` shows them; the environment plays no part.
    fn default() -> Self {
        layered::defaults()
    }
}

impl ChatConfig {
    /// Checks the values a type cannot: a positive rate and a burst of at least one message.
    pub fn validate(&self) -> Result<(), ws_mio_server::config::ConfigError> {
        use ws_mio_server::config::ConfigError::Invalid;
        if !(self.rate_limit > 0.0 && self.rate_burst >= 1.0) {
            return Err(Invalid("rate_limit"));
        }
        if self
            .jwt_secret
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(Invalid(
                "jwt_secret: it is set but empty (unset it to let everyone in as a guest)",
            ));
        }
        Ok(())
    }

    /// What tokens must satisfy, if a secret is set.
    pub(crate) fn token_rules(&self) -> Option<TokenRules> {
        Some(TokenRules {
            secret: self.jwt_secret.clone()?.into_bytes(),
            leeway: self.jwt_leeway,
            audience: self.jwt_audience.clone(),
            issuer: self.jwt_issuer.clone(),
            max_display_name: self.max_display_name,
        })
    }
}
