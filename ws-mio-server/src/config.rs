//! Server configuration: command-line flags, each also settable through a `WS_*` environment
//! variable, and an optional TOML file (`--config FILE`). A flag wins over a variable, a
//! variable over the file, the file over the built-in default; with nothing set the server runs
//! on 127.0.0.1:9001.
//!
//! Each setting is declared once, as a field of [`Config`]: its flag, variable, default, help
//! text and file key all come from that declaration, and [`layered`] resolves them. An
//! application declares its own options the same way and flattens [`Config`] into them (see
//! [`layered`]).

mod ip_prefix;
pub mod layered;
mod optional_addr;
pub mod seconds;

pub(crate) use ip_prefix::{any_contains, canonical, mask};
pub use ip_prefix::{IpPrefix, IpPrefixError};
pub use optional_addr::OptionalAddr;

use clap::{ArgAction, Command};
use layered::ResolveError;
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What to do with a room member whose send queue is past the high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SlowConsumerPolicy {
    /// Skip the message for that member (counted in `ws_backpressure_drops_total`).
    Drop,
    /// Close that member with 1008 (counted in `ws_backpressure_closes_total`).
    Close,
}

/// The configuration, and the declaration of every option: the flag is the field's name in
/// kebab case, the TOML key its name, the variable is named in `env`; `--help` shows the
/// doc comment and the default.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "WS_LISTEN", default_value = "127.0.0.1:9001")]
    #[arg(value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Address of the admin listener, which alone serves `/metrics` (Prometheus text),
    /// `/healthz` (alive) and `/readyz` (ready, not draining); `off` for none. Keep it off the
    /// public network.
    #[arg(long, env = "WS_ADMIN_LISTEN", default_value = "127.0.0.1:9002")]
    #[arg(value_name = "ADDR|off")]
    pub admin_listen: OptionalAddr,
    /// The token the admin API (`/api/...` on the admin listener) requires, as
    /// `Authorization: Bearer <token>`; unset, the API is off.
    #[arg(
        long,
        env = "WS_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    #[serde(default)]
    pub admin_token: Option<String>,
    /// The certificate chain (PEM, the server's certificate first) that turns the listener
    /// into wss (TLS 1.2 and 1.3, ALPN `http/1.1`); needs `--tls-key`. Unset, the listener is
    /// plain ws. Both files are read again on SIGHUP: new handshakes present the new
    /// certificate, open connections stay.
    #[arg(long, env = "WS_TLS_CERT", value_name = "FILE")]
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "WS_TLS_KEY", value_name = "FILE")]
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Worker threads, each with its own event loop and listener; the default is one per core.
    #[arg(long, env = "WS_WORKERS", default_value_t = one_per_core(), value_name = "N")]
    pub workers: usize,
    /// Most open connections in total; more are refused with 503.
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 100_000)]
    #[arg(value_name = "N")]
    pub max_connections: usize,
    /// Most open connections from one IP address; more are refused with 429.
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_IP", default_value_t = 10_000)]
    #[arg(value_name = "N")]
    pub max_connections_per_ip: usize,
    /// IPv6 clients count against the per-IP limit by this many leading bits of their address
    /// (a host usually holds a whole /64); 128 counts each address on its own.
    #[arg(
        long,
        env = "WS_IPV6_PREFIX_LEN",
        default_value_t = 64,
        value_name = "BITS"
    )]
    #[arg(value_parser = clap::value_parser!(u8).range(1..=128))]
    pub ipv6_prefix_len: u8,
    /// Load balancers and reverse proxies whose connections carry their clients' addresses,
    /// comma-separated addresses or CIDR prefixes (`10.0.0.0/8,2001:db8::/32`); none by default.
    /// For a connection from one of them the client is the right-most address of
    /// `X-Forwarded-For` that is not itself trusted (or the PROXY protocol's, see
    /// `--proxy-protocol`), and the per-IP limit and the handshake rate count that client.
    /// From anyone else the header is ignored.
    #[arg(long, env = "WS_TRUSTED_PROXIES", value_delimiter = ',')]
    #[arg(value_name = "PREFIXES")]
    #[serde(default)]
    pub trusted_proxies: Vec<IpPrefix>,
    /// Trusted proxies send a PROXY protocol header (v1 or v2) before the HTTP request: on or
    /// off. When on, a trusted proxy's connection without one, and any untrusted peer's that
    /// starts with one, is closed.
    #[arg(long, env = "WS_PROXY_PROTOCOL", default_value = "off")]
    #[arg(value_name = "on|off")]
    #[arg(value_parser = layered::switch(), action = ArgAction::Set)]
    pub proxy_protocol: bool,
    /// Handshake attempts (new connections) a second allowed per client, sustained (a token
    /// bucket per client, counted as the per-IP limit counts them: an IPv4 address, an IPv6
    /// prefix); more are refused with 429 and Retry-After. Zero: no limit. The default holds
    /// one address to 20 handshakes (each a SHA-1 and the application's checks) a second,
    /// while a person opens a few; raise it for clients behind large NATs.
    #[arg(
        long,
        env = "WS_HANDSHAKE_RATE",
        default_value_t = 20.0,
        value_name = "RATE"
    )]
    #[arg(allow_negative_numbers = true)]
    pub handshake_rate: f64,
    /// Handshake attempts one client may make in a burst, above the rate. The default lets an
    /// office of a hundred behind one address come back at once after a restart.
    #[arg(
        long,
        env = "WS_HANDSHAKE_BURST",
        default_value_t = 100.0,
        value_name = "N"
    )]
    #[arg(allow_negative_numbers = true)]
    pub handshake_burst: f64,
    /// Largest message accepted, in bytes; larger closes with 1009.
    #[arg(long, env = "WS_MAX_MESSAGE_SIZE", default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_message_size: u64,
    /// Largest frame accepted, in bytes; larger closes with 1009.
    #[arg(long, env = "WS_MAX_FRAME_SIZE", default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_frame_size: u64,
    /// Largest handshake request head, in bytes (at least 256); larger is refused with 431.
    #[arg(long, env = "WS_MAX_HANDSHAKE_SIZE", default_value_t = 16 << 10, value_name = "BYTES")]
    pub max_handshake_size: usize,
    /// Bytes queued for one connection past which reading from it pauses and fanout applies
    /// the slow-consumer policy.
    #[arg(long, env = "WS_HIGH_WATER_MARK", default_value_t = 1 << 20, value_name = "BYTES")]
    pub high_water_mark: usize,
    /// What fanout does for a member past the high-water mark.
    #[arg(long, env = "WS_SLOW_CONSUMER", value_enum, default_value_t = SlowConsumerPolicy::Drop)]
    pub slow_consumer: SlowConsumerPolicy,
    /// Seconds a connection may stay at or past the high-water mark (a peer that does not
    /// read what it is sent) before it is closed with 1008 "slow consumer" (zero: never).
    #[arg(long, env = "WS_SLOW_CONSUMER_GRACE", default_value = "30")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub slow_consumer_grace: Duration,
    /// Seconds between pings to each connection (zero: never).
    #[arg(long, env = "WS_PING_INTERVAL", default_value = "30")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub ping_interval: Duration,
    /// Seconds after a ping within which a connection must answer, or be closed.
    #[arg(long, env = "WS_PONG_TIMEOUT", default_value = "30")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub pong_timeout: Duration,
    /// Seconds a client may take to complete the opening handshake (408 after).
    #[arg(long, env = "WS_HANDSHAKE_TIMEOUT", default_value = "10")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub handshake_timeout: Duration,
    /// Seconds without input after which a connection is closed with 1001 (zero: never).
    #[arg(long, env = "WS_IDLE_TIMEOUT", default_value = "0")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub idle_timeout: Duration,
    /// Seconds to wait for the peer's close frame after sending one.
    #[arg(long, env = "WS_CLOSE_TIMEOUT", default_value = "5")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub close_timeout: Duration,
    /// On SIGINT/SIGTERM, seconds to wait for close handshakes before exiting.
    #[arg(long, env = "WS_DRAIN_TIMEOUT", default_value = "10")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub drain_timeout: Duration,
    /// On SIGINT/SIGTERM, connections are closed with 1012 (Service Restart) and each is told
    /// a random delay in [0, this many seconds) before reconnecting, in the close reason
    /// (`restart; reconnect-after=<N>ms`, see [`crate::restart`]), so clients of a restarting
    /// server do not all come back at once; zero: no hint.
    #[arg(long, env = "WS_RECONNECT_JITTER", default_value = "10")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub reconnect_jitter: Duration,
    /// Accept permessage-deflate offers: on or off (also true/false, 1/0; a boolean in the
    /// file). The server asks both sides not to keep compression context, so a connection
    /// holds no compression memory between messages and a room message is compressed once
    /// for all its members.
    #[arg(long, env = "WS_COMPRESSION", default_value = "on")]
    #[arg(value_name = "on|off")]
    #[arg(value_parser = layered::switch(), action = ArgAction::Set)]
    pub compression: bool,
    /// Messages shorter than this many bytes are sent uncompressed.
    #[arg(long, env = "WS_COMPRESSION_MIN_SIZE", default_value_t = 64)]
    #[arg(value_name = "BYTES")]
    pub compression_min_size: usize,
    /// The zlib level, 0 to 9.
    #[arg(long, env = "WS_COMPRESSION_LEVEL", default_value_t = 6)]
    #[arg(value_name = "LEVEL")]
    pub compression_level: u32,
    /// Heap bytes the server may hold for all its connections together (queues, partial
    /// messages, compression state); past it, new connections are refused with 503 and the
    /// connections holding more than their share are dropped, largest first. The default is
    /// half the machine's memory.
    #[arg(long, env = "WS_MEMORY_BUDGET", default_value_t = half_the_memory())]
    #[arg(value_name = "BYTES")]
    pub memory_budget: u64,
    /// The most rooms that may exist at once on the server; a join that would create one
    /// more is refused.
    #[arg(long, env = "WS_MAX_ROOMS", default_value_t = 10_000, value_name = "N")]
    pub max_rooms: usize,
    /// The most members one room may have; a join past it is refused.
    #[arg(
        long,
        env = "WS_MAX_ROOM_MEMBERS",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub max_room_members: usize,
    /// The most rooms one connection may be in; a join past it is refused.
    #[arg(long, env = "WS_MAX_ROOMS_PER_CONNECTION", default_value_t = 64)]
    #[arg(value_name = "N")]
    pub max_rooms_per_connection: usize,
    /// Recorded messages kept per room for history and recovery ([`crate::history`]).
    #[arg(long, env = "WS_HISTORY_SIZE", default_value_t = 100, value_name = "N")]
    pub history_size: usize,
    /// Seconds a room without members keeps its history after its last message or member
    /// left (zero: kept while the server runs).
    #[arg(long, env = "WS_HISTORY_IDLE_EXPIRY", default_value = "3600")]
    #[arg(value_name = "SECONDS")]
    #[arg(value_parser = seconds::parse, allow_negative_numbers = true)]
    #[serde(with = "seconds")]
    pub history_idle_expiry: Duration,
    /// Rooms that may hold history at once; past it, a new room keeps none until others
    /// expire (its messages are still delivered, without a position).
    #[arg(long, env = "WS_MAX_HISTORY_ROOMS", default_value_t = 10_000)]
    #[arg(value_name = "N")]
    pub max_history_rooms: usize,
}

/// Half of the machine's memory (from /proc/meminfo), or 1 GiB where that cannot be read.
pub fn half_the_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(1 << 30)
}

fn one_per_core() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// What rooms' histories may hold.
    pub fn history_limits(&self) -> crate::history::HistoryLimits {
        crate::history::HistoryLimits {
            size: self.history_size,
            rooms: self.max_history_rooms,
            idle_expiry: self.history_idle_expiry,
        }
    }

    /// The permessage-deflate settings, if compression is on.
    pub fn deflate(&self) -> Option<ws_proto::deflate::DeflateConfig> {
        self.compression.then(|| ws_proto::deflate::DeflateConfig {
            min_size: self.compression_min_size,
            level: self.compression_level,
            ..ws_proto::deflate::DeflateConfig::default()
        })
    }

    /// The binary's command line: its name, version and about text, `--config FILE`
    /// (`WS_CONFIG`), and every option of the configuration.
    pub fn command() -> Command {
        layered::command::<Config>(base_command())
    }

    /// The configuration from the process's command line and environment, and the file they
    /// name, checked with [`Config::validate`].
    pub fn load() -> Result<Config, ConfigError> {
        Config::load_from(std::env::args_os(), layered::process_env)
    }

    /// The configuration from the command line `args` (the program's name first), the
    /// environment as `env` reports it, and the file they name, checked with
    /// [`Config::validate`].
    pub fn load_from<I>(
        args: I,
        env: impl Fn(&OsStr) -> Option<OsString>,
    ) -> Result<Config, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        let config: Config = layered::resolve(base_command(), args, env)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values a type cannot: at least one worker, a handshake limit of at least 256
    /// bytes, a zlib level up to 9, the PROXY protocol only with trusted proxies, a handshake
    /// rate and burst that are numbers, not negative, with a burst of at least one when there
    /// is a rate, a TLS certificate and key together or neither. (The TLS files themselves are
    /// read when the server starts.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::Invalid("workers"));
        }
        // An empty token would let anyone in who sends an empty one.
        if self
            .admin_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ConfigError::Invalid("admin_token"));
        }
        if self.max_handshake_size < 256 {
            return Err(ConfigError::Invalid("max_handshake_size"));
        }
        if self.compression_level > 9 {
            return Err(ConfigError::Invalid("compression_level"));
        }
        // With no one trusted, every PROXY header would be refused: a mistake, not a setting.
        if self.proxy_protocol && self.trusted_proxies.is_empty() {
            return Err(ConfigError::Invalid("proxy_protocol"));
        }
        let rate_ok = |r: f64| r.is_finite() && r >= 0.0;
        if !rate_ok(self.handshake_rate) {
            return Err(ConfigError::Invalid("handshake_rate"));
        }
        if !rate_ok(self.handshake_burst)
            || (self.handshake_rate > 0.0 && self.handshake_burst < 1.0)
        {
            return Err(ConfigError::Invalid("handshake_burst"));
        }
        // One without the other (possible from the file, where clap's `requires` cannot see).
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(ConfigError::Invalid("tls_key")),
            (None, Some(_)) => return Err(ConfigError::Invalid("tls_cert")),
            _ => {}
        }
        if self.admin_listen.0 == Some(self.listen) && self.listen.port() != 0 {
            return Err(ConfigError::Invalid("admin_listen"));
        }
        Ok(())
    }
}

/// The command before the options: what `--help` says of the program, and `--config`.
fn base_command() -> Command {
    Command::new("ws-mio-server")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A WebSocket server on mio and ws-proto")
        .arg(layered::file_arg("WS_CONFIG"))
}

impl Default for Config {
    /// The declared defaults, as `--help` shows them; the environment plays no part.
    fn default() -> Self {
        layered::defaults()
    }
}

/// A configuration that could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The command line, the environment or the file could not be used, or help or the version
    /// was asked for (then [`clap::Error::exit`] on the [`ResolveError::Args`] prints it).
    Resolve(ResolveError),
    /// A value is out of range (the option's name).
    Invalid(&'static str),
}

impl From<ResolveError> for ConfigError {
    fn from(e: ResolveError) -> Self {
        ConfigError::Resolve(e)
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Resolve(e) => write!(f, "{e}"),
            ConfigError::Invalid(name) => write!(f, "invalid value for {name}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Resolve(e) => e.source(),
            ConfigError::Invalid(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
