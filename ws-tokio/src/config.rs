//! What a stream is allowed and asked to do: ws-proto's limits plus the I/O side's buffers,
//! heartbeats and deadlines.

use std::time::Duration;
use ws_proto::deflate::DeflateConfig;
use ws_proto::handshake::HandshakeLimits;

/// The settings of a [`crate::WebSocketStream`], for either role. Every buffer has a bound and
/// every wait a deadline by default.
///
/// ```
/// use std::time::Duration;
/// use ws_tokio::Config;
///
/// let mut config = Config::default();
/// config.protocol.max_message_size = 1 << 20; // larger messages close with 1009
/// config.ping_interval = Some(Duration::from_secs(15));
/// assert_eq!(config.pong_timeout, Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The engine's limits and close timeout (frame and message size, close deadline, pong
    /// coalescing); see [`ws_proto::Config`]. Default: ws-proto's defaults. Its `streaming`
    /// is not used: the stream delivers whole messages.
    pub protocol: ws_proto::Config,
    /// Limits on the HTTP head of the opening handshake (size, header count).
    pub handshake_limits: HandshakeLimits,
    /// How long the opening handshake may take, from the first byte written or awaited to the
    /// last byte of the answer. Default 10 s.
    pub handshake_timeout: Duration,
    /// Offer (client) or accept (server) permessage-deflate (RFC 7692) with these settings.
    /// Default `None`: no compression.
    pub deflate: Option<DeflateConfig>,
    /// Bytes read from the transport at once: the reusable read buffer's size. Default 16 KiB.
    pub read_buffer_size: usize,
    /// Outgoing bytes past which [`futures_sink::Sink::poll_ready`] (and so `send`) waits for
    /// the transport to take some: the bound on what a peer that does not read can make this
    /// side hold. Default 256 KiB.
    pub write_buffer_limit: usize,
    /// Send a ping this long after the last one was answered (`None`: no heartbeat). The
    /// pings are driven by reading the stream: a stream nobody reads sends none. Default
    /// `None`.
    pub ping_interval: Option<Duration>,
    /// How long a heartbeat ping may go unanswered before the connection is dropped with
    /// [`crate::error::Timeout::Pong`]. Default 20 s.
    pub pong_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: ws_proto::Config::default(),
            handshake_limits: HandshakeLimits::default(),
            handshake_timeout: Duration::from_secs(10),
            deflate: None,
            read_buffer_size: 16 << 10,
            write_buffer_limit: 256 << 10,
            ping_interval: None,
            pong_timeout: Duration::from_secs(20),
        }
    }
}

impl Config {
    /// The engine's configuration: [`Config::protocol`] with whole-message delivery, the only
    /// kind the stream hands out.
    pub(crate) fn engine_config(&self) -> ws_proto::Config {
        ws_proto::Config {
            streaming: false,
            ..self.protocol.clone()
        }
    }
}
