//! Per-socket state: the handshake or the ws-proto connection, timers, rooms. The engine's own
//! outgoing queue is the write queue: frames encoded once for a room are shared `Bytes` in it,
//! and a flush writes it with one vectored write.

use mio::net::TcpStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use ws_proto::handshake::server::ServerHandshake;
use ws_proto::Connection;

/// Where a connection is in its life.
// Nearly every connection is `Open`: keeping the engine inline saves an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Phase {
    /// Reading the HTTP request head.
    Handshake(ServerHandshake),
    /// WebSocket frames flow.
    Open(Connection),
    /// A plain HTTP response or a refusal is being written; then the socket closes.
    Closing,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) socket: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) generation: u32,
    pub(crate) phase: Phase,
    /// Bytes to write before the engine's queue: the handshake response or an HTTP answer.
    pub(crate) raw_out: Vec<u8>,
    /// Waiting in the worker's list of connections to flush this turn.
    pub(crate) dirty: bool,
    /// Reading stopped because too much is queued for this connection.
    pub(crate) read_paused: bool,
    pub(crate) rooms: Vec<Arc<str>>,
    /// The tick of this connection's live entry in the timer wheel.
    pub(crate) timer_tick: Option<u64>,
    /// The handshake deadline, then the next ping.
    pub(crate) next_ping: Duration,
    pub(crate) pong_deadline: Option<Duration>,
    pub(crate) last_input: Duration,
    /// The close code to report: set when a close frame is seen or sent, or on failure.
    pub(crate) close_code: Option<u16>,
    pub(crate) clean_close: bool,
    /// The queued bytes last added to the worker's gauge.
    pub(crate) reported_queue: usize,
}

impl Conn {
    pub(crate) fn ws(&mut self) -> Option<&mut Connection> {
        match &mut self.phase {
            Phase::Open(ws) => Some(ws),
            _ => None,
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.raw_out.len()
            + match &self.phase {
                Phase::Open(ws) => ws.pending_transmit_len(),
                _ => 0,
            }
    }
}
