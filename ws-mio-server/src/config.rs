//! Server configuration: command-line flags, each also settable through a `WS_*` environment
//! variable, and an optional TOML file. A flag or variable wins over the file, the file over
//! the built-in default; with nothing set the server runs on 127.0.0.1:9001.

pub mod layered;

use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What to do with a room member whose send queue is past the high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SlowConsumerPolicy {
    /// Skip the message for that member (counted in `ws_backpressure_drops_total`).
    Drop,
    /// Close that member with 1008 (counted in `ws_backpressure_closes_total`).
    Close,
}

/// The application the binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The chat application: rooms, presence, history, direct messages, the web page at `/`.
    Chat,
    /// Echo every message back: the mode the Autobahn run and the benchmarks use.
    Echo,
    /// Publish every message to every connection, the sender included: plain fanout.
    Broadcast,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Worker threads, each with its own event loop and listener.
    pub workers: usize,
    /// The application.
    pub mode: Mode,
    /// Most open connections in total; more are refused with 503.
    pub max_connections: usize,
    /// Most open connections from one IP address; more are refused with 429.
    pub max_connections_per_ip: usize,
    /// Largest message accepted (bytes); larger closes with 1009.
    pub max_message_size: u64,
    /// Largest frame accepted (bytes); larger closes with 1009.
    pub max_frame_size: u64,
    /// Largest handshake request head (bytes); larger is refused with 431.
    pub max_handshake_size: usize,
    /// Bytes queued for one connection past which reading from it pauses and fanout applies
    /// the slow-consumer policy.
    pub high_water_mark: usize,
    /// What fanout does for a member past the high-water mark.
    pub slow_consumer: SlowConsumerPolicy,
    /// How often a ping is sent to each connection (zero: never).
    pub ping_interval: Duration,
    /// How long after a ping a connection that has not answered is closed.
    pub pong_timeout: Duration,
    /// How long a client may take to complete the opening handshake.
    pub handshake_timeout: Duration,
    /// Close connections that received nothing for this long (zero: never).
    pub idle_timeout: Duration,
    /// How long to wait for the peer's close frame after sending one.
    pub close_timeout: Duration,
    /// On SIGINT/SIGTERM, how long to wait for close handshakes before exiting.
    pub drain_timeout: Duration,
    /// Accept permessage-deflate offers. The server asks both sides not to keep compression
    /// context, so a connection holds no compression memory between messages and a room
    /// message is compressed once for all its members.
    pub compression: bool,
    /// Messages shorter than this are sent uncompressed.
    pub compression_min_size: usize,
    /// The zlib level, 0 to 9.
    pub compression_level: u32,
    /// The chat application's settings.
    pub chat: crate::chat::ChatConfig,
}

impl Config {
    /// The permessage-deflate settings, if compression is on.
    pub fn deflate(&self) -> Option<ws_proto::deflate::DeflateConfig> {
        self.compression.then(|| ws_proto::deflate::DeflateConfig {
            min_size: self.compression_min_size,
            level: self.compression_level,
            ..ws_proto::deflate::DeflateConfig::default()
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mode: Mode::Chat,
            max_connections: 100_000,
            max_connections_per_ip: 10_000,
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            max_handshake_size: 16 << 10,
            high_water_mark: 1 << 20,
            slow_consumer: SlowConsumerPolicy::Drop,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::ZERO,
            close_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            compression: true,
            compression_min_size: 64,
            compression_level: 6,
            chat: crate::chat::ChatConfig::default(),
        }
    }
}

/// The command line. Every option can also come from its `WS_*` variable or the TOML file.
#[derive(Debug, Parser, Default)]
#[command(
    name = "ws-mio-server",
    version,
    about = "A WebSocket server on mio and ws-proto"
)]
pub struct Args {
    /// TOML configuration file (keys as the long option names, with underscores).
    #[arg(long, env = "WS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9001].
    #[arg(long, env = "WS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Worker threads [default: one per core].
    #[arg(long, env = "WS_WORKERS")]
    pub workers: Option<usize>,
    /// The application to run [default: chat].
    #[arg(long, env = "WS_MODE", value_enum)]
    pub mode: Option<Mode>,
    /// Most open connections in total [default: 100000].
    #[arg(long, env = "WS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most open connections per IP address [default: 10000].
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Largest message in bytes [default: 16 MiB].
    #[arg(long, env = "WS_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<u64>,
    /// Largest frame in bytes [default: 16 MiB].
    #[arg(long, env = "WS_MAX_FRAME_SIZE")]
    pub max_frame_size: Option<u64>,
    /// Largest handshake head in bytes [default: 16384].
    #[arg(long, env = "WS_MAX_HANDSHAKE_SIZE")]
    pub max_handshake_size: Option<usize>,
    /// Queued bytes per connection before backpressure [default: 1 MiB].
    #[arg(long, env = "WS_HIGH_WATER_MARK")]
    pub high_water_mark: Option<usize>,
    /// Fanout policy for members past the high-water mark [default: drop].
    #[arg(long, env = "WS_SLOW_CONSUMER", value_enum)]
    pub slow_consumer: Option<SlowConsumerPolicy>,
    /// Seconds between pings, 0 for none [default: 30].
    #[arg(long, env = "WS_PING_INTERVAL")]
    pub ping_interval: Option<f64>,
    /// Seconds to wait for a pong [default: 30].
    #[arg(long, env = "WS_PONG_TIMEOUT")]
    pub pong_timeout: Option<f64>,
    /// Seconds allowed for the opening handshake [default: 10].
    #[arg(long, env = "WS_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<f64>,
    /// Seconds without input before closing, 0 for never [default: 0].
    #[arg(long, env = "WS_IDLE_TIMEOUT")]
    pub idle_timeout: Option<f64>,
    /// Seconds to wait for the peer's close frame [default: 5].
    #[arg(long, env = "WS_CLOSE_TIMEOUT")]
    pub close_timeout: Option<f64>,
    /// Seconds to drain connections on shutdown [default: 10].
    #[arg(long, env = "WS_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<f64>,
    /// Accept permessage-deflate, on or off [default: on].
    #[arg(long, env = "WS_COMPRESSION", value_parser = parse_switch)]
    pub compression: Option<bool>,
    /// Messages shorter than this many bytes go uncompressed [default: 64].
    #[arg(long, env = "WS_COMPRESSION_MIN_SIZE")]
    pub compression_min_size: Option<usize>,
    /// Compression level, 0 to 9 [default: 6].
    #[arg(long, env = "WS_COMPRESSION_LEVEL")]
    pub compression_level: Option<u32>,
    /// Chat: HS256 secret for tokens; without one, everyone is a guest [default: none].
    #[arg(long, env = "WS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Chat: comma-separated origins allowed to connect [default: all].
    #[arg(long, env = "WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Chat: messages kept per room [default: 100].
    #[arg(long, env = "WS_HISTORY_SIZE")]
    pub history_size: Option<usize>,
    /// Chat: connections per user, more close with 4008 [default: 8].
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_USER")]
    pub max_connections_per_user: Option<usize>,
    /// Chat: messages per second per user [default: 10].
    #[arg(long, env = "WS_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Chat: burst of messages per user [default: 20].
    #[arg(long, env = "WS_RATE_BURST")]
    pub rate_burst: Option<f64>,
    /// Chat: largest client message in bytes [default: 8192].
    #[arg(long, env = "WS_MAX_CHAT_MESSAGE")]
    pub max_chat_message: Option<usize>,
}

fn parse_switch(value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("expected on or off, got {value:?}")),
    }
}

/// The TOML file: the same keys as the long options.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    workers: Option<usize>,
    mode: Option<Mode>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_message_size: Option<u64>,
    max_frame_size: Option<u64>,
    max_handshake_size: Option<usize>,
    high_water_mark: Option<usize>,
    slow_consumer: Option<SlowConsumerPolicy>,
    ping_interval: Option<f64>,
    pong_timeout: Option<f64>,
    handshake_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    close_timeout: Option<f64>,
    drain_timeout: Option<f64>,
    compression: Option<bool>,
    compression_min_size: Option<usize>,
    compression_level: Option<u32>,
    jwt_secret: Option<String>,
    allowed_origins: Option<Vec<String>>,
    history_size: Option<usize>,
    max_connections_per_user: Option<usize>,
    rate_limit: Option<f64>,
    rate_burst: Option<f64>,
    max_chat_message: Option<usize>,
}

/// A configuration that could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML for these keys.
    Parse(PathBuf, toml::de::Error),
    /// A value is out of range (the option's name).
    Invalid(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            ConfigError::Parse(p, e) => write!(f, "invalid configuration in {}: {e}", p.display()),
            ConfigError::Invalid(name) => write!(f, "invalid value for {name}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Args {
    /// Resolves flags, environment, file and defaults into a configuration.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.clone(), e))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse(path.clone(), e))?
            }
            None => FileConfig::default(),
        };
        let d = Config::default();
        let secs = |name: &'static str, flag: Option<f64>, file: Option<f64>, default: Duration| {
            match flag.or(file) {
                None => Ok(default),
                Some(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
                Some(_) => Err(ConfigError::Invalid(name)),
            }
        };
        let config = Config {
            listen: self.listen.or(file.listen).unwrap_or(d.listen),
            workers: self.workers.or(file.workers).unwrap_or(d.workers),
            mode: self.mode.or(file.mode).unwrap_or(d.mode),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections),
            max_connections_per_ip: self
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(d.max_connections_per_ip),
            max_message_size: self
                .max_message_size
                .or(file.max_message_size)
                .unwrap_or(d.max_message_size),
            max_frame_size: self
                .max_frame_size
                .or(file.max_frame_size)
                .unwrap_or(d.max_frame_size),
            max_handshake_size: self
                .max_handshake_size
                .or(file.max_handshake_size)
                .unwrap_or(d.max_handshake_size),
            high_water_mark: self
                .high_water_mark
                .or(file.high_water_mark)
                .unwrap_or(d.high_water_mark),
            slow_consumer: self
                .slow_consumer
                .or(file.slow_consumer)
                .unwrap_or(d.slow_consumer),
            ping_interval: secs(
                "ping_interval",
                self.ping_interval,
                file.ping_interval,
                d.ping_interval,
            )?,
            pong_timeout: secs(
                "pong_timeout",
                self.pong_timeout,
                file.pong_timeout,
                d.pong_timeout,
            )?,
            handshake_timeout: secs(
                "handshake_timeout",
                self.handshake_timeout,
                file.handshake_timeout,
                d.handshake_timeout,
            )?,
            idle_timeout: secs(
                "idle_timeout",
                self.idle_timeout,
                file.idle_timeout,
                d.idle_timeout,
            )?,
            close_timeout: secs(
                "close_timeout",
                self.close_timeout,
                file.close_timeout,
                d.close_timeout,
            )?,
            drain_timeout: secs(
                "drain_timeout",
                self.drain_timeout,
                file.drain_timeout,
                d.drain_timeout,
            )?,
            compression: self
                .compression
                .or(file.compression)
                .unwrap_or(d.compression),
            compression_min_size: self
                .compression_min_size
                .or(file.compression_min_size)
                .unwrap_or(d.compression_min_size),
            compression_level: self
                .compression_level
                .or(file.compression_level)
                .unwrap_or(d.compression_level),
            chat: crate::chat::ChatConfig {
                jwt_secret: self
                    .jwt_secret
                    .or(file.jwt_secret)
                    .filter(|s| !s.is_empty()),
                allowed_origins: self
                    .allowed_origins
                    .or(file.allowed_origins)
                    .unwrap_or_default(),
                history_size: self
                    .history_size
                    .or(file.history_size)
                    .unwrap_or(d.chat.history_size),
                max_connections_per_user: self
                    .max_connections_per_user
                    .or(file.max_connections_per_user)
                    .unwrap_or(d.chat.max_connections_per_user),
                rate_limit: self
                    .rate_limit
                    .or(file.rate_limit)
                    .unwrap_or(d.chat.rate_limit),
                rate_burst: self
                    .rate_burst
                    .or(file.rate_burst)
                    .unwrap_or(d.chat.rate_burst),
                max_message_bytes: self
                    .max_chat_message
                    .or(file.max_chat_message)
                    .unwrap_or(d.chat.max_message_bytes),
                ..d.chat.clone()
            },
        };
        if config.workers == 0 {
            return Err(ConfigError::Invalid("workers"));
        }
        if config.max_handshake_size < 256 {
            return Err(ConfigError::Invalid("max_handshake_size"));
        }
        if config.compression_level > 9 {
            return Err(ConfigError::Invalid("compression_level"));
        }
        if !(config.chat.rate_limit > 0.0 && config.chat.rate_burst >= 1.0) {
            return Err(ConfigError::Invalid("rate_limit"));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_gives_the_defaults_on_loopback_9001() {
        let config = Args::default().resolve().unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:9001");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("ws-mio-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "workers = 3\nping_interval = 1.5\nslow_consumer = \"close\"\n",
        )
        .unwrap();
        let args = Args::parse_from([
            "ws-mio-server",
            "--config",
            path.to_str().unwrap(),
            "--workers",
            "5",
        ]);
        let config = args.resolve().unwrap();
        assert_eq!(config.workers, 5);
        assert_eq!(config.ping_interval, Duration::from_millis(1500));
        assert_eq!(config.slow_consumer, SlowConsumerPolicy::Close);
        std::fs::write(&path, "no_such_key = 1\n").unwrap();
        let args = Args::parse_from(["ws-mio-server", "--config", path.to_str().unwrap()]);
        assert!(matches!(args.resolve(), Err(ConfigError::Parse(..))));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let args = Args::parse_from(["ws-mio-server", "--workers", "0"]);
        assert!(matches!(
            args.resolve(),
            Err(ConfigError::Invalid("workers"))
        ));
        let args = Args::parse_from(["ws-mio-server", "--ping-interval=-1"]);
        assert!(matches!(
            args.resolve(),
            Err(ConfigError::Invalid("ping_interval"))
        ));
    }
}
