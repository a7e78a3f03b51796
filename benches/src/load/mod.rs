//! `ws-load`: a load generator on ws-proto and mio. One thread, one event loop, any number of
//! connections; results as JSON, progress on standard error.
//!
//! - `echo`: N connections each keep D messages of S bytes in flight against an echo server:
//!   messages per second and round-trip latency;
//! - `fanout`: one publisher and N members; deliveries per second and publish-to-delivery
//!   latency, against the chat protocol (`ws-chat`) or a raw broadcast server
//!   (every frame received goes to every client);
//! - `connect`: connection setup rate and, given the server's pid, its memory per idle
//!   connection;
//! - `attack`: hostile clients beside ordinary ones: the server's memory per attacker and the
//!   ordinary clients' latency, against a calm baseline.

mod attack;
mod connect;
mod echo;
mod fanout;
pub mod pool;
pub mod transport;

use crate::hist::Histogram;
use crate::procfs;
use clap::{Parser, Subcommand};
use pool::{Driver, Pool};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ws-load",
    version,
    about = "WebSocket load generator (ws-proto on mio)"
)]
pub struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:9001", global = true)]
    pub addr: SocketAddr,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0, global = true)]
    pub warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0, global = true)]
    pub duration: f64,
    /// The server's process id: its CPU use and resident memory go into the results.
    #[arg(long, global = true)]
    pub pid: Option<u32>,
    /// Handshakes in progress at once while connecting.
    #[arg(long, default_value_t = 200, global = true)]
    pub concurrency: usize,
    /// Seconds allowed for connecting everyone.
    #[arg(long, default_value_t = 60.0, global = true)]
    pub setup_timeout: f64,
    /// Write the JSON result here instead of standard output.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Write `open` to this file when the measured window opens and `closed` when it closes,
    /// so a script can count what the server does in the window alone (benches/syscalls.sh).
    #[arg(long, global = true)]
    pub window_file: Option<PathBuf>,
    /// KEY=VALUE copied into the result (repeatable), to tag runs.
    #[arg(long = "label", global = true)]
    pub labels: Vec<String>,
    /// No progress lines.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// wss: every connection over TLS (echo, fanout, connect), trusting the Mozilla roots, or
    /// the CA certificates of `--ca`.
    #[arg(long, global = true)]
    pub tls: bool,
    /// A PEM file of CA certificates wss trusts instead of the Mozilla roots (implies `--tls`).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The server's name its certificate must carry (a DNS name or an IP address).
    #[arg(long, global = true, default_value = "localhost", value_name = "NAME")]
    pub tls_name: String,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// What to measure.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Round trips against an echo server.
    Echo(echo::EchoArgs),
    /// One publisher, N members.
    Fanout(fanout::FanoutArgs),
    /// Connection setup rate and idle memory.
    Connect(connect::ConnectArgs),
    /// Hostile clients beside bystanders: server memory per attacker, bystander latency.
    Attack(attack::AttackArgs),
}

/// Runs the command line; the process exit code.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match &args.scenario {
        Scenario::Echo(a) => echo::run(&args, a),
        Scenario::Fanout(a) => fanout::run(&args, a),
        Scenario::Connect(a) => connect::run(&args, a),
        Scenario::Attack(a) => attack::run(&args, a),
    };
    let mut result = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ws-load: {e}");
            json!({ "error": e })
        }
    };
    let failed = result.get("error").is_some();
    if let Value::Object(map) = &mut result {
        let labels: Map<String, Value> = args
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                None => (l.clone(), Value::Bool(true)),
            })
            .collect();
        map.insert("labels".into(), Value::Object(labels));
        map.insert("addr".into(), json!(args.addr.to_string()));
    }
    let text = result.to_string();
    let written = match &args.out {
        Some(path) => std::fs::write(path, text + "\n"),
        None => writeln!(std::io::stdout(), "{text}"),
    };
    if let Err(e) = written {
        eprintln!("ws-load: writing the result: {e}");
        return std::process::ExitCode::FAILURE;
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// A connection pool to `args.addr`, on TLS if asked.
pub(crate) fn new_pool(args: &Args) -> Result<Pool, String> {
    let mut pool = Pool::new(args.addr).map_err(|e| e.to_string())?;
    if args.tls || args.ca.is_some() {
        let config = match &args.ca {
            Some(ca) => ws_tokio::tls::client_config_with_ca_file(ca).map_err(|e| e.to_string())?,
            None => ws_tokio::tls::webpki_client_config(),
        };
        let name = transport::ServerName::try_from(args.tls_name.clone())
            .map_err(|e| format!("--tls-name: {e}"))?;
        pool.use_tls(transport::TlsTarget { config, name });
    }
    Ok(pool)
}

/// Prints a status line to standard error at most once a second.
pub(crate) struct Progress {
    quiet: bool,
    last: Instant,
    label: &'static str,
}

impl Progress {
    pub(crate) fn new(quiet: bool, label: &'static str) -> Self {
        Progress {
            quiet,
            last: Instant::now(),
            label,
        }
    }

    pub(crate) fn tick(&mut self, line: impl FnOnce() -> String) {
        if !self.quiet && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            eprintln!("[ws-load {}] {}", self.label, line());
        }
    }
}

/// Opens `n` connections, at most `args.concurrency` handshakes at a time, each to the target
/// `target(i)`; the driver sees each one open. Fails if they are not all open in time.
pub(crate) fn open_all<D: Driver>(
    args: &Args,
    pool: &mut Pool,
    n: usize,
    target: impl Fn(usize) -> String,
    driver: &mut D,
    progress: &mut Progress,
) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + secs(args.setup_timeout);
    let first = pool.clients.len();
    let mut started = 0;
    while pool.clients.opened < first + n {
        while started < n && pool.clients.pending() < args.concurrency.max(1) {
            pool.connect(&target(started));
            started += 1;
        }
        if pool.clients.failed_handshakes > 0 {
            return Err(format!(
                "{} of {n} connections failed to open: {}",
                pool.clients.failed_handshakes,
                pool.clients.errors.join("; ")
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {n} connections open after {} s",
                pool.clients.opened - first,
                args.setup_timeout
            ));
        }
        pool.turn(Duration::from_millis(5), driver)
            .map_err(|e| e.to_string())?;
        progress.tick(|| format!("connecting: {}/{n} open", pool.clients.opened - first));
    }
    Ok(start.elapsed())
}

/// A driver measured over a window that opens after the warm-up.
pub(crate) trait Measured: Driver {
    /// The warm-up is over: count from now on.
    fn start_measuring(&mut self);
    /// Runs before every turn of the pool (a publisher's sends).
    fn before_turn(&mut self, _clients: &mut pool::Clients) {}
    /// The progress line for long runs.
    fn progress(&self) -> String;
}

/// Turns `pool` through the warm-up and then the measured window, failing if a connection
/// closes on the way; returns the window's length in seconds and its report.
pub(crate) fn measure<D: Measured>(
    args: &Args,
    pool: &mut Pool,
    driver: &mut D,
    progress: &mut Progress,
) -> Result<(f64, Map<String, Value>), String> {
    let warm_end = Instant::now() + secs(args.warmup);
    let mut window = None;
    let mut end = warm_end + secs(args.duration);
    loop {
        driver.before_turn(&mut pool.clients);
        pool.turn(Duration::from_millis(5), driver)
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        if window.is_none() && now >= warm_end {
            driver.start_measuring();
            window = Some(Window::open(args.pid));
            end = now + secs(args.duration);
            mark_window(args, "open\n");
        }
        if now >= end {
            mark_window(args, "closed\n");
            break;
        }
        if pool.clients.closed > 0 {
            return Err(format!(
                "connections closed during the run: {}",
                pool.clients.errors.join("; ")
            ));
        }
        progress.tick(|| driver.progress());
    }
    Ok(window.expect("the window opened").close())
}

/// Tells a watching script where the measured window stands (`--window-file`); a failed
/// write only loses that script its count.
fn mark_window(args: &Args, mark: &str) {
    if let Some(path) = &args.window_file {
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Err(e) = file.and_then(|mut f| f.write_all(mark.as_bytes())) {
            eprintln!("ws-load: cannot write {}: {e}", path.display());
        }
    }
}

pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The measurement window: CPU readings of the load generator and the server around it.
pub(crate) struct Window {
    start: Instant,
    own_cpu: Option<Duration>,
    own_sched: Option<(Duration, Duration)>,
    server_cpu: Option<procfs::CpuTimes>,
    server_sched: Option<(Duration, Duration)>,
    ticks: Vec<(u64, u64)>,
    tcp_segments: Option<(u64, u64)>,
    pid: Option<u32>,
}

/// (on-CPU share, waiting share) of one core over `wall`, from two schedstat readings.
fn sched_shares(
    before: Option<(Duration, Duration)>,
    after: Option<(Duration, Duration)>,
    wall: Duration,
) -> (Option<f64>, Option<f64>) {
    let (Some((run0, wait0)), Some((run1, wait1))) = (before, after) else {
        return (None, None);
    };
    let share = |d: Duration| Some(d.as_secs_f64() / wall.as_secs_f64().max(1e-9));
    (
        share(run1.saturating_sub(run0)),
        share(wait1.saturating_sub(wait0)),
    )
}

impl Window {
    pub(crate) fn open(pid: Option<u32>) -> Window {
        Window {
            start: Instant::now(),
            own_cpu: procfs::cpu_time(None),
            own_sched: procfs::sched_times(None),
            server_cpu: pid.and_then(|p| procfs::cpu_times(Some(p))),
            server_sched: pid.and_then(|p| procfs::sched_times(Some(p))),
            ticks: procfs::cpu_ticks(),
            tcp_segments: procfs::tcp_segments(),
            pid,
        }
    }

    /// Closes the window: its length in seconds and the figures every scenario reports. CPU
    /// shares come from schedstat (nanoseconds) where the kernel has it, else from the tick
    /// counts of /proc/<pid>/stat. The server's kernel share (of its CPU time, from those
    /// ticks) and the TCP segments sent on the machine meanwhile show where a server's time
    /// goes: time in the kernel is mostly the network stack's, which a server shortens only by
    /// asking less of it (fewer system calls and segments per message).
    pub(crate) fn close(&self) -> (f64, Map<String, Value>) {
        let wall = self.start.elapsed();
        let mut map = Map::new();
        map.insert("window_s".into(), json!(wall.as_secs_f64()));
        let (run, wait) = sched_shares(self.own_sched, procfs::sched_times(None), wall);
        let ticks = procfs::core_share(self.own_cpu, procfs::cpu_time(None), wall);
        map.insert("loadgen_cpu".into(), json!(run.or(ticks)));
        map.insert("loadgen_wait".into(), json!(wait));
        if let Some(pid) = self.pid {
            let (run, wait) = sched_shares(self.server_sched, procfs::sched_times(Some(pid)), wall);
            let times = procfs::cpu_times(Some(pid));
            let total = |t: Option<procfs::CpuTimes>| t.map(|t| t.user + t.system);
            let ticks = procfs::core_share(total(self.server_cpu), total(times), wall);
            map.insert("server_cpu".into(), json!(run.or(ticks)));
            map.insert("server_wait".into(), json!(wait));
            map.insert(
                "server_kernel_share".into(),
                json!(procfs::kernel_share(self.server_cpu, times)),
            );
            map.insert("server_rss_kib".into(), json!(procfs::rss_kib(pid)));
        }
        let busy = procfs::cpu_busy(&self.ticks, &procfs::cpu_ticks());
        map.insert("cpu_busy".into(), json!(busy));
        if let (Some((_, sent0)), Some((_, sent1))) = (self.tcp_segments, procfs::tcp_segments()) {
            map.insert(
                "tcp_segments_sent".into(),
                json!(sent1.saturating_sub(sent0)),
            );
        }
        (wall.as_secs_f64(), map)
    }
}

/// Percentiles in microseconds.
pub(crate) fn latency_json(h: &Histogram) -> Value {
    let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
    json!({
        "samples": h.count(),
        "p50": us(h.percentile(0.50)),
        "p90": us(h.percentile(0.90)),
        "p99": us(h.percentile(0.99)),
        "p999": us(h.percentile(0.999)),
        "max": us(h.max()),
        "mean": (h.mean() / 100.0).round() / 10.0,
    })
}
