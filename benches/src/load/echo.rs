//! Round trips against an echo server: every connection keeps `depth` messages in flight and
//! sends a new one for each echo it gets back.

use super::pool::{Clients, Driver};
use super::{latency_json, measure, open_all, Args, Measured, Progress};
use crate::hist::Histogram;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Instant;

/// `ws-load echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Connections.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 20)]
    pub size: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Send text frames (validated as UTF-8 by the server) instead of binary ones.
    #[arg(long)]
    pub text: bool,
    /// The request target.
    #[arg(long, default_value = "/")]
    pub path: String,
}

struct Echo {
    payload: Vec<u8>,
    text: bool,
    depth: usize,
    sent_at: Vec<VecDeque<Instant>>,
    measuring: bool,
    stopping: bool,
    received: u64,
    wrong_size: u64,
    latency: Histogram,
}

impl Echo {
    /// Sends one message on `id`, stamped `at`: when a read carried the echo it answers, that
    /// read's time (the send itself goes out at the end of the loop turn, so latencies are
    /// counted from a little before the real send, never after; it saves a clock read per
    /// message in the load generator's hot loop).
    fn send(&mut self, clients: &mut Clients, id: usize, at: Instant) {
        let ok = if self.text {
            // The payload is ASCII.
            clients.send_text(id, std::str::from_utf8(&self.payload).unwrap_or_default())
        } else {
            clients.send_binary(id, &self.payload)
        };
        if ok {
            self.sent_at[id].push_back(at);
        }
    }
}

impl Driver for Echo {
    fn message(&mut self, clients: &mut Clients, id: usize, payload: &[u8], now: Instant) {
        let Some(sent) = self.sent_at[id].pop_front() else {
            return; // not ours: the server spoke first
        };
        if payload.len() != self.payload.len() {
            self.wrong_size += 1;
        }
        if self.measuring {
            self.received += 1;
            self.latency
                .record(now.saturating_duration_since(sent).as_nanos() as u64);
        }
        if !self.stopping {
            self.send(clients, id, now);
        }
    }
}

impl Measured for Echo {
    fn start_measuring(&mut self) {
        self.measuring = true;
    }

    fn progress(&self) -> String {
        format!("{} echoes measured", self.received)
    }
}

pub(super) fn run(args: &Args, echo: &EchoArgs) -> Result<Value, String> {
    let mut progress = Progress::new(args.quiet, "echo");
    let mut pool = super::new_pool(args)?;
    let payload = if echo.text {
        vec![b'x'; echo.size]
    } else {
        (0..echo.size).map(|i| i as u8).collect()
    };
    let mut driver = Echo {
        payload,
        text: echo.text,
        depth: echo.depth.max(1),
        sent_at: (0..echo.connections)
            .map(|_| VecDeque::with_capacity(echo.depth.max(1)))
            .collect(),
        measuring: false,
        stopping: false,
        received: 0,
        wrong_size: 0,
        latency: Histogram::new(),
    };
    let setup = open_all(
        args,
        &mut pool,
        echo.connections,
        |_| echo.path.clone(),
        &mut driver,
        &mut progress,
    )?;
    for id in 0..echo.connections {
        for _ in 0..driver.depth {
            driver.send(&mut pool.clients, id, Instant::now());
        }
    }
    pool.clients.flush();

    let (seconds, mut report) = measure(args, &mut pool, &mut driver, &mut progress)?;
    driver.stopping = true;
    pool.close_all();

    let rate = driver.received as f64 / seconds;
    report.insert("scenario".into(), json!("echo"));
    report.insert(
        "params".into(),
        json!({
            "connections": echo.connections,
            "size": echo.size,
            "depth": driver.depth,
            "text": echo.text,
        }),
    );
    report.insert("setup_s".into(), json!(setup.as_secs_f64()));
    report.insert("messages".into(), json!(driver.received));
    report.insert("messages_per_sec".into(), json!(rate));
    report.insert("bytes_per_sec".into(), json!(rate * echo.size as f64));
    report.insert("latency_us".into(), latency_json(&driver.latency));
    report.insert("wrong_size".into(), json!(driver.wrong_size));
    Ok(Value::Object(report))
}
