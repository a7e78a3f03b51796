//! Durations as seconds, fractions allowed: a clap value parser and a serde `with` module.
//!
//! ```
//! # use std::time::Duration;
//! use ws_mio_server::config::seconds;
//!
//! #[derive(clap::Args, serde::Serialize, serde::Deserialize)]
//! struct Timeouts {
//!     /// Seconds to wait.
//!     #[arg(long, default_value = "1.5", value_parser = seconds::parse)]
//!     #[serde(with = "seconds")]
//!     wait: Duration,
//! }
//! ```

use serde::{de, Deserializer, Serializer};
use std::time::Duration;

/// Why a value is not a number of seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondsError {
    /// Not a number at all.
    Malformed(std::num::ParseFloatError),
    /// NaN.
    NotANumber,
    /// Below zero.
    Negative,
    /// Infinite, or longer than a [`Duration`] holds.
    TooLarge,
}

impl std::fmt::Display for SecondsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecondsError::Malformed(e) => write!(f, "not a number of seconds: {e}"),
            SecondsError::NotANumber => f.write_str("NaN is not a number of seconds"),
            SecondsError::Negative => f.write_str("a duration cannot be negative"),
            SecondsError::TooLarge => f.write_str("too many seconds for a duration"),
        }
    }
}

impl std::error::Error for SecondsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecondsError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

/// The duration of `seconds` seconds.
pub fn from_f64(seconds: f64) -> Result<Duration, SecondsError> {
    if seconds.is_nan() {
        Err(SecondsError::NotANumber)
    } else if seconds < 0.0 {
        Err(SecondsError::Negative)
    } else {
        Duration::try_from_secs_f64(seconds).map_err(|_| SecondsError::TooLarge)
    }
}

/// Parses a number of seconds, such as `30` or `0.25`: the clap value parser.
pub fn parse(text: &str) -> Result<Duration, SecondsError> {
    from_f64(text.parse().map_err(SecondsError::Malformed)?)
}

/// Writes a duration as a number of seconds.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Reads a duration from a number of seconds, integer or not.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_f64(Seconds)
}

struct Seconds;

impl de::Visitor<'_> for Seconds {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number of seconds")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        from_f64(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(SecondsError::Negative))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }
}
