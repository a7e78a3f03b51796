//! Hostile clients against a running server, beside ordinary ones: what the server holds per
//! attacker (its resident memory) and what the attack costs the others (their latency), each
//! against a calm baseline with the same bystanders.
//!
//! Bystanders are ordinary clients on the [`Pool`], one message in flight each: a text carrying
//! its sender and send time, so every copy received gives a latency on the load generator's
//! clock. Against an echo server that is the round trip; against a broadcast server
//! (`slow-room`) every bystander receives every bystander's messages, and each copy gives a
//! publish-to-delivery latency (a bystander sends its next message when its own comes back).
//!
//! The run: bystanders connect and warm up; the calm window is measured; the attackers connect
//! and attack, a warm-up and then the attack window is measured (bystander latency, the
//! server's peak resident memory); the attackers' sockets are closed, the bystanders stop
//! sending, and after `--settle` seconds the server's memory is read again.

mod attackers;

use super::pool::{Clients, Driver, Pool};
use super::{latency_json, open_all, secs, Args, Progress, Window};
use crate::hist::Histogram;
use crate::procfs;
use attackers::{client_frame, repeated, Attackers, Plan};
use clap::ValueEnum;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use ws_proto::frame::{header_len, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, RSV1};
use ws_proto::MessageKind;

/// What the attackers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Write binary frames of `--frame-size` as fast as the socket takes them; never read.
    Flood,
    /// Write pings of `--ping-size` (125) bytes as fast as possible; never read.
    Ping,
    /// Write small text messages (`--request-size`), each answered by the echo; never read.
    Requests,
    /// Offer permessage-deflate, send one non-final compressed frame that inflates to
    /// `--bomb-size` bytes, again and again on fresh connections.
    DeflateBomb,
    /// Against a broadcast server: join and never read while the bystanders publish.
    SlowRoom,
    /// Open a fragmented message and add one byte per continuation frame, every
    /// `--trickle-interval-ms`.
    Trickle,
}

/// `ws-load attack`.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    /// The attack.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Attacking connections (at once: a bomber that is closed connects again).
    #[arg(long, default_value_t = 10)]
    pub attackers: usize,
    /// Ordinary clients, one message in flight each.
    #[arg(long, default_value_t = 10)]
    pub bystanders: usize,
    /// Bytes of text per bystander message (at least what its stamp needs) [default: 32;
    /// slow-room: 4096, so the silent members' queues fill within seconds].
    #[arg(long)]
    pub size: Option<usize>,
    /// flood: payload bytes per binary frame.
    #[arg(long, default_value_t = 64 << 10)]
    pub frame_size: usize,
    /// ping: payload bytes per ping (at most 125).
    #[arg(long, default_value_t = 125)]
    pub ping_size: usize,
    /// requests: bytes of text per request.
    #[arg(long, default_value_t = 16)]
    pub request_size: usize,
    /// deflate-bomb: bytes of zeros the fragment inflates to [default: twice
    /// --max-message-size].
    #[arg(long)]
    pub bomb_size: Option<usize>,
    /// trickle: milliseconds between one attacker's continuation frames.
    #[arg(long, default_value_t = 10.0)]
    pub trickle_interval_ms: f64,
    /// Seconds between stopping the attack and reading the server's memory again.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    /// The server's --high-water-mark, for the budget in the result.
    #[arg(long, default_value_t = 1 << 20)]
    pub high_water_mark: usize,
    /// The server's --max-message-size, for the budget in the result and the bomb's size.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_message_size: usize,
}

/// A bystander's message: its marker, sender and send time (ns since the origin).
const STAMP: &[u8] = b"#A";
/// A bystander's message not back after this long is written off and replaced.
const LOSS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the server's memory is read during the attack.
const RSS_EVERY: Duration = Duration::from_millis(20);
/// The read the server's worker takes from a socket, and the in-memory tests' slack.
const SERVER_READ: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warm,
    Calm,
    Attack,
    Settle,
}

struct Bystanders {
    origin: Instant,
    size: usize,
    /// Per bystander, the stamp (ns since the origin) of its message in flight.
    in_flight: Vec<Option<u64>>,
    /// When each message in flight went out, for the loss check.
    sent_at: Vec<Instant>,
    phase: Phase,
    sending: bool,
    /// Calm, then attack.
    latency: [Histogram; 2],
    deliveries: [u64; 2],
    lost: u64,
    unexpected: u64,
    text: String,
}

/// The sender and send time of a bystander's message.
fn parse_stamp(payload: &[u8]) -> Option<(usize, u64)> {
    let rest = payload.strip_prefix(STAMP)?;
    let digits = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(rest);
    let from = std::str::from_utf8(&rest[..n]).ok()?.parse().ok()?;
    let rest = rest.get(n + 1..)?;
    let m = digits(rest);
    let t = std::str::from_utf8(&rest[..m]).ok()?.parse().ok()?;
    Some((from, t))
}

impl Bystanders {
    /// Sends bystander `id`'s next message, stamped `at` (when a read carried the message it
    /// follows: the send goes out at the end of the loop turn, as in `echo`).
    fn send(&mut self, clients: &mut Clients, id: usize, at: Instant) {
        let t = at.duration_since(self.origin).as_nanos() as u64;
        self.text.clear();
        let _ = write!(self.text, "#A{id} {t} ");
        while self.text.len() < self.size {
            self.text.push('x');
        }
        if clients.send_text(id, &self.text) {
            self.in_flight[id] = Some(t);
            self.sent_at[id] = at;
        }
    }

    /// Replaces the messages out for longer than the loss timeout (a broadcast server may
    /// skip a bystander it finds slow).
    fn resend_overdue(&mut self, clients: &mut Clients, now: Instant) {
        for id in 0..self.in_flight.len() {
            if self.in_flight[id].is_some() && now.duration_since(self.sent_at[id]) > LOSS_TIMEOUT {
                self.lost += 1;
                self.in_flight[id] = None;
                if self.sending {
                    self.send(clients, id, now);
                }
            }
        }
    }

    fn window(&self) -> Option<usize> {
        match self.phase {
            Phase::Warm | Phase::Settle => None,
            Phase::Calm => Some(0),
            Phase::Attack => Some(1),
        }
    }
}

impl Driver for Bystanders {
    fn message(&mut self, clients: &mut Clients, id: usize, payload: &[u8], now: Instant) {
        let Some((from, t)) = parse_stamp(payload) else {
            self.unexpected += 1;
            return;
        };
        if let Some(w) = self.window() {
            let at = now.duration_since(self.origin).as_nanos() as u64;
            self.latency[w].record(at.saturating_sub(t));
            self.deliveries[w] += 1;
        }
        if from == id && self.in_flight.get(id).copied().flatten() == Some(t) {
            self.in_flight[id] = None;
            if self.sending {
                self.send(clients, id, now);
            }
        }
    }
}

/// What every attacker sends, built once.
fn plan(a: &AttackArgs) -> Result<Plan, String> {
    const PATTERN: usize = 64 << 10;
    Ok(match a.kind {
        Kind::Flood => {
            let payload: Vec<u8> = (0..a.frame_size).map(|i| i as u8).collect();
            Plan::Stream {
                pattern: client_frame(true, 0, OpCode::Binary, &payload),
            }
        }
        Kind::Ping => {
            let payload = vec![b'p'; a.ping_size.min(MAX_CONTROL_PAYLOAD)];
            Plan::Stream {
                pattern: repeated(&client_frame(true, 0, OpCode::Ping, &payload), PATTERN),
            }
        }
        Kind::Requests => {
            let payload = vec![b'r'; a.request_size];
            Plan::Stream {
                pattern: repeated(&client_frame(true, 0, OpCode::Text, &payload), PATTERN),
            }
        }
        Kind::DeflateBomb => {
            let size = a.bomb_size.unwrap_or(2 * a.max_message_size);
            // The server compresses nothing it is sent; its inflater takes the stream as one
            // message's first fragment and must stop at the limit.
            let shared =
                ws_proto::deflate::compress_shared(MessageKind::Binary, &vec![0u8; size], 15, 6);
            let frame = shared.as_bytes();
            let (_, header_len) = FrameHeader::decode(frame)
                .ok()
                .flatten()
                .ok_or("compress_shared made no frame")?;
            Plan::Bomb {
                frame: client_frame(false, RSV1, OpCode::Binary, &frame[header_len..]),
            }
        }
        Kind::SlowRoom => Plan::Idle,
        Kind::Trickle => Plan::Trickle {
            first: client_frame(false, 0, OpCode::Binary, b"x"),
            next: client_frame(false, 0, OpCode::Continuation, b"x"),
            interval: Duration::from_secs_f64(a.trickle_interval_ms.max(0.0) / 1000.0),
        },
    })
}

/// What the server may hold for one attacker by its design, as the in-memory tests
/// (`ws-mio-server/tests/hostile_clients.rs`) count it: its queue up to the high-water mark
/// plus the largest message or reply (in a buffer that may have doubled as it grew), one read
/// waiting in the engine and one being taken, and some change; for a partial message, what it
/// holds of the message, up to the limit. A bomb's inflated message grows by doubling, so
/// while its buffer doubles the last time the old half and the new whole both exist (1.5
/// times the limit, the peak the server's resident memory sees), beside the inflater it holds
/// for the message (its state and window, [`INFLATER`]).
fn budget(a: &AttackArgs, trickled: u64) -> u64 {
    let base = 2 * SERVER_READ + (16 << 10);
    let queue = |largest: usize| 2 * (a.high_water_mark + largest) + base;
    let frame = |payload: usize| payload + header_len(payload as u64, true);
    (match a.kind {
        Kind::Flood => queue(frame(a.frame_size)),
        Kind::Ping => queue(frame(a.ping_size.min(MAX_CONTROL_PAYLOAD))),
        Kind::Requests => queue(frame(a.request_size)),
        Kind::SlowRoom => queue(frame(bystander_size(a))),
        Kind::DeflateBomb => a.max_message_size + a.max_message_size / 2 + INFLATER + base,
        Kind::Trickle => base + trickled as usize,
    }) as u64
}

/// An inflater with a 32 KiB window: zlib documents its memory as the window plus about 7 KiB
/// of state; rounded up.
const INFLATER: usize = 48 << 10;

/// Bytes per bystander message.
fn bystander_size(a: &AttackArgs) -> usize {
    a.size.unwrap_or(match a.kind {
        Kind::SlowRoom => 4096,
        _ => 32,
    })
}

/// The pool, the bystanders and the attackers, turned together on this thread.
struct Run<'a> {
    args: &'a Args,
    pool: Pool,
    bystanders: Bystanders,
    attackers: Attackers,
    attacking: bool,
    progress: Progress,
    rss_peak: Option<u64>,
    next_rss: Instant,
    next_loss_check: Instant,
}

impl Run<'_> {
    /// Turns everything until `done` says so or `end`; fails if the attack cannot go on or
    /// the event loop fails.
    fn spin_until(
        &mut self,
        end: Instant,
        mut done: impl FnMut(&Run<'_>) -> bool,
    ) -> Result<bool, String> {
        loop {
            let now = Instant::now();
            if done(self) {
                return Ok(true);
            }
            if now >= end {
                return Ok(false);
            }
            let busy = if self.attacking {
                self.attackers.turn(now).map_err(|e| e.to_string())?
            } else {
                false
            };
            if let Some(why) = &self.attackers.fatal {
                return Err(why.clone());
            }
            if now >= self.next_loss_check {
                self.next_loss_check = now + Duration::from_millis(100);
                self.bystanders.resend_overdue(&mut self.pool.clients, now);
                self.pool.clients.flush();
            }
            // Attackers that may write more are served again at once; otherwise a short wait
            // for the bystanders (and a trickle's next frame).
            let wait = if busy {
                Duration::ZERO
            } else {
                Duration::from_millis(1).min(end - now)
            };
            self.pool
                .turn(wait, &mut self.bystanders)
                .map_err(|e| e.to_string())?;
            if self.attacking && now >= self.next_rss {
                self.next_rss = now + RSS_EVERY;
                self.sample_rss();
            }
            let (b, a, phase) = (&self.bystanders, &self.attackers, self.bystanders.phase);
            self.progress.tick(|| {
                format!(
                    "{phase:?}: {} bystander deliveries; attackers {} open, {:.1} MiB sent",
                    b.deliveries[0] + b.deliveries[1],
                    a.open_now(),
                    a.stats.bytes_sent as f64 / (1 << 20) as f64
                )
            });
        }
    }

    fn spin_for(&mut self, seconds: f64) -> Result<(), String> {
        self.spin_until(Instant::now() + secs(seconds), |_| false)
            .map(|_| ())
    }

    fn sample_rss(&mut self) {
        if let Some(kib) = self.args.pid.and_then(procfs::rss_kib) {
            self.rss_peak = Some(self.rss_peak.map_or(kib, |p| p.max(kib)));
        }
    }
}

pub(super) fn run(args: &Args, a: &AttackArgs) -> Result<Value, String> {
    if a.bystanders == 0 {
        return Err("at least one bystander is needed".into());
    }
    let plan = plan(a)?;
    let mut progress = Progress::new(args.quiet, "attack");
    let mut pool = Pool::new(args.addr).map_err(|e| e.to_string())?;
    let now = Instant::now();
    let mut bystanders = Bystanders {
        origin: now,
        size: bystander_size(a),
        in_flight: vec![None; a.bystanders],
        sent_at: vec![now; a.bystanders],
        phase: Phase::Warm,
        sending: true,
        latency: [Histogram::new(), Histogram::new()],
        deliveries: [0, 0],
        lost: 0,
        unexpected: 0,
        text: String::new(),
    };
    let setup = open_all(
        args,
        &mut pool,
        a.bystanders,
        |_| "/".to_string(),
        &mut bystanders,
        &mut progress,
    )?;
    for id in 0..a.bystanders {
        bystanders.send(&mut pool.clients, id, Instant::now());
    }
    pool.clients.flush();
    let attackers = Attackers::new(args.addr, plan, a.attackers, args.concurrency)
        .map_err(|e| e.to_string())?;
    let mut run = Run {
        args,
        pool,
        bystanders,
        attackers,
        attacking: false,
        progress,
        rss_peak: None,
        next_rss: now,
        next_loss_check: now,
    };

    // Calm.
    run.spin_for(args.warmup)?;
    run.bystanders.phase = Phase::Calm;
    let window = Window::open(args.pid);
    run.spin_for(args.duration)?;
    let (calm_s, calm_window) = window.close();
    let closed_calm = run.pool.clients.closed;

    // The attack: connecting, a warm-up, the measured window.
    run.bystanders.phase = Phase::Warm;
    let rss_before = args.pid.and_then(procfs::rss_kib);
    run.rss_peak = rss_before;
    let attack_start = Instant::now();
    run.attacking = true;
    run.attackers.start();
    let n = a.attackers;
    run.spin_until(attack_start + secs(args.setup_timeout), |r| {
        r.attackers.stats.slots_opened >= n || r.attackers.gave_up()
    })?;
    if run.attackers.stats.slots_opened < n {
        return Err(format!(
            "only {} of {n} attackers opened (setup timeout {} s): {}",
            run.attackers.stats.slots_opened,
            args.setup_timeout,
            run.attackers.stats.errors.join("; ")
        ));
    }
    let attack_setup = attack_start.elapsed();
    run.spin_for(args.warmup)?;
    run.bystanders.phase = Phase::Attack;
    let window = Window::open(args.pid);
    run.spin_for(args.duration)?;
    let (attack_s, mut report) = window.close();
    run.sample_rss();
    let attackers_open = run.attackers.open_now();
    let closed_attack = run.pool.clients.closed;

    // After: the attackers leave, the bystanders finish what is in flight and go quiet (an
    // idle worker gives freed memory back).
    run.attackers.stop();
    run.attacking = false;
    run.bystanders.phase = Phase::Settle;
    run.bystanders.sending = false;
    run.spin_for(a.settle)?;
    let rss_after = args.pid.and_then(procfs::rss_kib);
    let closed_total = run.pool.clients.closed;
    let bystander_errors = run.pool.clients.errors.clone();
    run.pool.close_all();

    let b = &run.bystanders;
    let s = &run.attackers.stats;
    let per_attacker = |kib: Option<u64>| match (rss_before, kib) {
        (Some(before), Some(kib)) if n > 0 => {
            Some((kib as f64 - before as f64) * 1024.0 / n as f64)
        }
        _ => None,
    };
    let growth = per_attacker(run.rss_peak);
    // A trickle's partial message holds one byte per frame sent.
    let frame_len = header_len(1, true) as u64 + 1;
    let trickled = s.bytes_sent / frame_len / n.max(1) as u64;
    let budget = budget(a, trickled);
    let p = |w: usize, q: f64| b.latency[w].percentile(q) as f64;
    let ratio = |q: f64| (p(0, q) > 0.0 && p(1, q) > 0.0).then(|| p(1, q) / p(0, q));
    report.insert("scenario".into(), json!("attack"));
    report.insert(
        "params".into(),
        json!({
            "kind": a.kind.to_possible_value().map(|v| v.get_name().to_string()),
            "attackers": n,
            "bystanders": a.bystanders,
            "size": bystander_size(a),
            "frame_size": a.frame_size,
            "ping_size": a.ping_size.min(MAX_CONTROL_PAYLOAD),
            "request_size": a.request_size,
            "bomb_size": a.bomb_size.unwrap_or(2 * a.max_message_size),
            "trickle_interval_ms": a.trickle_interval_ms,
            "settle": a.settle,
            "high_water_mark": a.high_water_mark,
            "max_message_size": a.max_message_size,
        }),
    );
    report.insert("setup_s".into(), json!(setup.as_secs_f64()));
    report.insert("attack_setup_s".into(), json!(attack_setup.as_secs_f64()));
    report.insert("calm".into(), latency_json(&b.latency[0]));
    report.insert("attack".into(), latency_json(&b.latency[1]));
    // Also under the name the other scenarios use: the latency of the measured window.
    report.insert("latency_us".into(), latency_json(&b.latency[1]));
    report.insert(
        "deliveries_per_sec".into(),
        json!({
            "calm": b.deliveries[0] as f64 / calm_s,
            "attack": b.deliveries[1] as f64 / attack_s,
        }),
    );
    report.insert("bystander_p50_ratio".into(), json!(ratio(0.50)));
    report.insert("bystander_p99_ratio".into(), json!(ratio(0.99)));
    report.insert(
        "server_rss_kib".into(),
        json!({ "before": rss_before, "peak": run.rss_peak, "after": rss_after }),
    );
    report.insert("rss_growth_per_attacker_bytes".into(), json!(growth));
    report.insert(
        "rss_retained_per_attacker_bytes".into(),
        json!(per_attacker(rss_after)),
    );
    report.insert("budget_per_attacker_bytes".into(), json!(budget));
    report.insert(
        "over_budget".into(),
        json!(growth.map(|g| g > budget as f64)),
    );
    report.insert(
        "attackers".into(),
        json!({
            "connections": s.connections,
            "opened": s.opened,
            "failed": s.failed,
            "open_at_end": attackers_open,
            "bytes_sent": s.bytes_sent,
            "bombs": s.bombs,
            "closed_by_server": s.closed_by_server,
            "close_codes": s.close_codes.iter().map(|(c, k)| (c.to_string(), json!(k))).collect::<serde_json::Map<_, _>>(),
            "errors": s.errors,
        }),
    );
    report.insert(
        "bystanders_closed".into(),
        json!({
            "calm": closed_calm,
            "attack": closed_attack - closed_calm,
            "after": closed_total - closed_attack,
        }),
    );
    report.insert("bystander_errors".into(), json!(bystander_errors));
    report.insert("lost".into(), json!(b.lost));
    report.insert("unexpected".into(), json!(b.unexpected));
    report.insert("calm_window".into(), Value::Object(calm_window));
    Ok(Value::Object(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_parse() {
        assert_eq!(parse_stamp(b"#A12 345 xxxx"), Some((12, 345)));
        assert_eq!(parse_stamp(b"#A3 7"), Some((3, 7)));
        assert_eq!(parse_stamp(b"#A 7"), None);
        assert_eq!(parse_stamp(b"#A3"), None);
        assert_eq!(parse_stamp(b"hello"), None);
    }
}
