//! Connection setup rate, and the server's memory per idle connection: its resident memory
//! before the first connection and with all of them open and quiet. With `--deflate` every
//! connection negotiates permessage-deflate and exchanges two compressed messages with the
//! (echo) server before it goes quiet, so what compression leaves behind per connection shows.

use super::pool::{Clients, Driver};
use super::{latency_json, open_all, secs, Args, Progress};
use crate::hist::Histogram;
use crate::procfs;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use ws_proto::deflate::DeflateConfig;

/// `ws-load connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Seconds to hold them, quiet, before reading the server's memory.
    #[arg(long, default_value_t = 2.0)]
    pub hold: f64,
    /// The request target.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Offer permessage-deflate (the server must accept it) and, once open, send two
    /// compressible messages and take their echoes before going quiet.
    #[arg(long)]
    pub deflate: bool,
}

/// Messages each connection sends with `--deflate` before it goes quiet.
const DEFLATE_EXCHANGES: usize = 2;

struct Quiet {
    handshakes: Histogram,
    /// Send [`DEFLATE_EXCHANGES`] messages when a connection opens.
    exchange: bool,
    received: usize,
}

impl Driver for Quiet {
    fn opened(&mut self, clients: &mut Clients, id: usize, now: Instant) {
        let started = clients.get(id).started;
        self.handshakes
            .record(now.saturating_duration_since(started).as_nanos() as u64);
        if self.exchange {
            // Above permessage-deflate's 64-byte threshold, so each goes compressed both ways.
            let text = format!(
                "{{\"type\":\"say\",\"room\":\"lobby\",\"text\":\"{}\"}}",
                "hello ".repeat(30)
            );
            for _ in 0..DEFLATE_EXCHANGES {
                clients.send_text(id, &text);
            }
        }
    }

    fn message(&mut self, _: &mut Clients, _: usize, _: &[u8], _: Instant) {
        self.received += 1;
    }
}

pub(super) fn run(args: &Args, connect: &ConnectArgs) -> Result<Value, String> {
    let mut progress = Progress::new(args.quiet, "connect");
    let mut pool = super::new_pool(args)?;
    if connect.deflate {
        pool.offer_deflate(DeflateConfig::default());
    }
    let mut driver = Quiet {
        handshakes: Histogram::new(),
        exchange: connect.deflate,
        received: 0,
    };
    let rss_before = args.pid.and_then(procfs::rss_kib);
    let cpu_before = procfs::cpu_time(None);
    let setup = open_all(
        args,
        &mut pool,
        connect.connections,
        |_| connect.path.clone(),
        &mut driver,
        &mut progress,
    )?;
    let own_cpu = procfs::core_share(cpu_before, procfs::cpu_time(None), setup);
    if connect.deflate {
        let expected = connect.connections * DEFLATE_EXCHANGES;
        let deadline = Instant::now() + secs(args.setup_timeout);
        while driver.received < expected {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} of {expected} echoes came back",
                    driver.received
                ));
            }
            pool.turn(Duration::from_millis(5), &mut driver)
                .map_err(|e| e.to_string())?;
        }
    }
    // Quiet connections: only pings (answered by the engine) move.
    let hold_end = Instant::now() + secs(connect.hold);
    while Instant::now() < hold_end {
        pool.turn(Duration::from_millis(20), &mut driver)
            .map_err(|e| e.to_string())?;
    }
    if pool.clients.closed > 0 {
        return Err(format!(
            "{} connections closed while idle: {}",
            pool.clients.closed,
            pool.clients.errors.join("; ")
        ));
    }
    let rss_after = args.pid.and_then(procfs::rss_kib);
    pool.close_all();

    let n = connect.connections.max(1);
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 * 1024.0 / n as f64),
        _ => None,
    };
    Ok(json!({
        "scenario": "connect",
        "params": {
            "connections": connect.connections,
            "concurrency": args.concurrency,
            "deflate": connect.deflate,
        },
        "setup_s": setup.as_secs_f64(),
        "connections_per_sec": connect.connections as f64 / setup.as_secs_f64(),
        "handshake_us": latency_json(&driver.handshakes),
        "loadgen_cpu": own_cpu,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "bytes_per_connection": per_conn,
    }))
}
