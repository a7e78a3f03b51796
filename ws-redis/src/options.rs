//! `--redis URL`, declared as the server's options are, for an application to flatten into its
//! own ([`ws_mio_server::config::layered`]): from the command line, `WS_REDIS` or the file's
//! `redis` key. Unset, the application runs on its own, as before.

use crate::seeds::{SeedError, Seeds};
use crate::RedisConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use ws_mio_server::config::{seconds, ConfigError};

/// The broker's options.
///
/// ```
/// use ws_redis::RedisOptions;
/// let options = RedisOptions {
///     redis: Some("redis://127.0.0.1:6379".into()),
///     ..RedisOptions::default()
/// };
/// options.validate()?;
/// let config = options.config(65536).unwrap();
/// assert_eq!(config.max_message_size, 65536);
/// let bad = RedisOptions { redis: Some("http://x".into()), ..RedisOptions::default() };
/// assert!(bad.validate().is_err());
/// # Ok::<(), ws_mio_server::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
pub struct RedisOptions {
    /// Redis to join a cluster of instances through (`redis://[USER:PASSWORD@]HOST:PORT[/DB]`):
    /// room messages then reach the rooms' members on every instance that uses it. A Redis
    /// Cluster is found out at connection and used through sharded pub/sub; it may be given
    /// as a comma-separated list of some of its nodes, tried in turn
    /// (`redis://10.0.0.1:7001,redis://10.0.0.2:7002`). Unset, this instance is on its own.
    #[arg(
        long,
        env = "WS_REDIS",
        hide_env_values = true,
        value_name = "URL[,URL...]"
    )]
    #[serde(default)]
    pub redis: Option<String>,
    /// Seconds of an instance's presence lease: an instance that has not renewed it for this
    /// long is taken for dead, and its users are taken out of rooms' presence.
    #[arg(
        long,
        env = "WS_PRESENCE_LEASE",
        default_value = "10",
        value_name = "SECONDS"
    )]
    #[arg(value_parser = seconds::parse)]
    #[serde(with = "seconds", default = "default_lease")]
    pub presence_lease: Duration,
}

fn default_lease() -> Duration {
    Duration::from_secs(10)
}

impl Default for RedisOptions {
    /// No Redis; the default lease.
    fn default() -> RedisOptions {
        RedisOptions {
            redis: None,
            presence_lease: default_lease(),
        }
    }
}

impl RedisOptions {
    /// Checks the URL without connecting (it may hold a password: the error does not repeat it),
    /// and that the lease is not zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.presence_lease.is_zero() {
            return Err(ConfigError::Invalid("presence-lease: must be above zero"));
        }
        let Some(url) = &self.redis else {
            return Ok(());
        };
        match Seeds::parse(url) {
            Ok(_) => Ok(()),
            Err(SeedError::Empty { .. }) => Err(ConfigError::Invalid(
                "redis: an empty URL in the list (URL,URL,... with no empty place)",
            )),
            Err(SeedError::Url { .. }) => Err(ConfigError::Invalid(
                "redis: not a Redis URL (redis://HOST:PORT, unix:///PATH, or redis://HOST:PORT,redis://HOST:PORT,... for a cluster's nodes)",
            )),
            Err(SeedError::NotTcp { .. }) => Err(ConfigError::Invalid(
                "redis: a list of cluster nodes takes redis://HOST:PORT URLs, not Unix sockets",
            )),
        }
    }

    /// The broker's settings, if a URL is set, with the largest message the server accepts.
    pub fn config(&self, max_message_size: usize) -> Option<RedisConfig> {
        let url = self.redis.as_deref()?;
        Some(RedisConfig {
            max_message_size,
            lease: self.presence_lease,
            ..RedisConfig::new(url)
        })
    }
}
