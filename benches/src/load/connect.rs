//! Connection setup rate, and the server's memory per idle connection: its resident memory
//! before the first connection and with all of them open and quiet.

use super::pool::{Clients, Driver, Pool};
use super::{latency_json, open_all, secs, Args, Progress};
use crate::hist::Histogram;
use crate::procfs;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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
}

struct Quiet {
    handshakes: Histogram,
}

impl Driver for Quiet {
    fn opened(&mut self, clients: &mut Clients, id: usize, now: Instant) {
        let started = clients.get(id).started;
        self.handshakes
            .record(now.saturating_duration_since(started).as_nanos() as u64);
    }

    fn message(&mut self, _: &mut Clients, _: usize, _: &[u8], _: Instant) {}
}

pub(super) fn run(args: &Args, connect: &ConnectArgs) -> Result<Value, String> {
    let mut progress = Progress::new(args.quiet, "connect");
    let mut pool = Pool::new(args.addr).map_err(|e| e.to_string())?;
    let mut driver = Quiet {
        handshakes: Histogram::new(),
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
        "params": { "connections": connect.connections, "concurrency": args.concurrency },
        "setup_s": setup.as_secs_f64(),
        "connections_per_sec": connect.connections as f64 / setup.as_secs_f64(),
        "handshake_us": latency_json(&driver.handshakes),
        "loadgen_cpu": own_cpu,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "bytes_per_connection": per_conn,
    }))
}
