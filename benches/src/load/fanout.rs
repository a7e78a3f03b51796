//! One publisher, N members. The publisher keeps up to `in_flight` messages that have not yet
//! reached every member; each carries its sequence number and send time in its text, so each
//! member's copy gives a publish-to-delivery latency on one clock.
//!
//! Against ws-chat (`--protocol chat`) everyone joins one room and the publisher
//! sends `{"type":"send",...}`; members get `{"type":"message",...}`. Against a raw broadcast
//! server (`--protocol raw`) the publisher's frame itself reaches everyone.

use super::pool::{Clients, Driver};
use super::{latency_json, measure, open_all, secs, Args, Measured, Progress};
use crate::hist::Histogram;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How the server fans out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// ws-chat: join a room, `send` to it.
    Chat,
    /// Every frame received is sent to every client, the sender included.
    Raw,
}

/// `ws-load fanout`.
#[derive(Debug, clap::Args)]
pub struct FanoutArgs {
    /// Members receiving (the publisher comes on top).
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Messages published and not yet delivered to every member.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// The server's protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Chat)]
    pub protocol: Protocol,
    /// Bytes of text per published message (at least what the stamp needs).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Chat: the room.
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// Chat: give every member its own user name. By default members share one, so joining
    /// announces presence once instead of to every member already in the room (setup time
    /// quadratic in N).
    #[arg(long)]
    pub unique_names: bool,
    /// Seconds after which a message not yet delivered to everyone is given up as lost.
    #[arg(long, default_value_t = 5.0)]
    pub loss_timeout: f64,
    /// Instances of one server (through a broker) to spread the connections over, round
    /// robin, instead of all to `--addr`: comma-separated addresses.
    #[arg(long, value_delimiter = ',')]
    pub spread: Vec<std::net::SocketAddr>,
}

/// The marker before a published message's stamp, and before a readiness probe's.
const STAMP: &[u8] = b"#B";
const PROBE: &[u8] = b"#P";

struct Outstanding {
    sent: Instant,
    delivered: u32,
}

struct Fanout {
    protocol: Protocol,
    room: String,
    size: usize,
    members: usize,
    publisher: usize,
    in_flight: usize,
    origin: Instant,
    ready: Vec<bool>,
    ready_count: usize,
    /// Published messages from `base` on that are not yet written off.
    outstanding: VecDeque<Outstanding>,
    base: u64,
    next_seq: u64,
    incomplete: usize,
    publishing: bool,
    measuring: bool,
    deliveries: u64,
    published: u64,
    late: u64,
    lost: u64,
    latency: Histogram,
    text: String,
    /// How long a published message may go undelivered before it counts as lost.
    loss_timeout: Duration,
}

impl Measured for Fanout {
    fn start_measuring(&mut self) {
        self.measuring = true;
    }

    fn before_turn(&mut self, clients: &mut Clients) {
        self.pump(clients, self.loss_timeout);
        clients.flush();
    }

    fn progress(&self) -> String {
        format!(
            "{} deliveries measured, {} in flight",
            self.deliveries, self.incomplete
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn number(bytes: &[u8]) -> (u64, usize) {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |v, &d| v * 10 + (d - b'0') as u64);
    (value, digits)
}

/// The sequence number and send time (ns since the origin) after a stamp marker.
fn parse_stamp(text: &[u8]) -> Option<(u64, u64)> {
    let at = find(text, STAMP)? + STAMP.len();
    let (seq, n) = number(&text[at..]);
    let rest = text.get(at + n + 1..)?;
    let (t, m) = number(rest);
    (n > 0 && m > 0).then_some((seq, t))
}

impl Fanout {
    /// Sends `body` from the publisher, wrapped for the chat protocol if need be.
    fn publish(&mut self, clients: &mut Clients, body: &str) {
        let ok = match self.protocol {
            Protocol::Raw => clients.send_text(self.publisher, body),
            Protocol::Chat => {
                self.text.clear();
                self.text.push_str(r#"{"type":"send","room":""#);
                self.text.push_str(&self.room);
                self.text.push_str(r#"","text":""#);
                self.text.push_str(body);
                self.text.push_str(r#""}"#);
                clients.send_text(self.publisher, &self.text)
            }
        };
        if !ok {
            self.publishing = false;
        }
    }

    fn probe(&mut self, clients: &mut Clients, n: u64) {
        let body = format!("#P{n}");
        self.publish(clients, &body);
    }

    /// Publishes while fewer than `in_flight` messages are incomplete; writes off the oldest
    /// ones once they are overdue.
    fn pump(&mut self, clients: &mut Clients, loss_timeout: Duration) {
        let now = Instant::now();
        while let Some(front) = self.outstanding.front() {
            if (front.delivered as usize) < self.members {
                if now.duration_since(front.sent) < loss_timeout {
                    break;
                }
                self.lost += (self.members - front.delivered as usize) as u64;
                self.incomplete -= 1;
            }
            self.outstanding.pop_front();
            self.base += 1;
        }
        while self.publishing && self.incomplete < self.in_flight {
            let seq = self.next_seq;
            let sent = Instant::now();
            let t = sent.duration_since(self.origin).as_nanos() as u64;
            let mut body = format!("#B{seq} {t} ");
            while body.len() < self.size {
                body.push('x');
            }
            self.publish(clients, &body);
            self.outstanding
                .push_back(Outstanding { sent, delivered: 0 });
            self.next_seq += 1;
            self.incomplete += 1;
            if self.measuring {
                self.published += 1;
            }
        }
    }
}

impl Driver for Fanout {
    fn opened(&mut self, clients: &mut Clients, id: usize, _now: Instant) {
        if self.protocol == Protocol::Chat {
            let join = format!(r#"{{"type":"join","room":"{}"}}"#, self.room);
            clients.send_text(id, &join);
        }
    }

    fn message(&mut self, _clients: &mut Clients, id: usize, text: &[u8], now: Instant) {
        if id == self.publisher {
            return;
        }
        let Some((seq, t)) = parse_stamp(text) else {
            if !self.ready[id] && find(text, PROBE).is_some() {
                self.ready[id] = true;
                self.ready_count += 1;
            }
            return;
        };
        if self.measuring {
            self.deliveries += 1;
            let at = now.duration_since(self.origin).as_nanos() as u64;
            self.latency.record(at.saturating_sub(t));
        }
        match seq.checked_sub(self.base) {
            Some(i) if (i as usize) < self.outstanding.len() => {
                let entry = &mut self.outstanding[i as usize];
                entry.delivered += 1;
                if entry.delivered as usize == self.members {
                    self.incomplete -= 1;
                }
            }
            _ => self.late += 1,
        }
    }
}

pub(super) fn run(args: &Args, fanout: &FanoutArgs) -> Result<Value, String> {
    let mut progress = Progress::new(args.quiet, "fanout");
    let mut pool = super::new_pool(args)?;
    pool.spread(fanout.spread.clone());
    let members = fanout.members.max(1);
    let mut driver = Fanout {
        protocol: fanout.protocol,
        room: fanout.room.clone(),
        size: fanout.size,
        members,
        publisher: members,
        in_flight: fanout.in_flight.max(1),
        origin: Instant::now(),
        ready: vec![false; members + 1],
        ready_count: 0,
        outstanding: VecDeque::new(),
        base: 0,
        next_seq: 0,
        incomplete: 0,
        publishing: true,
        measuring: false,
        deliveries: 0,
        published: 0,
        late: 0,
        lost: 0,
        latency: Histogram::new(),
        text: String::new(),
        loss_timeout: secs(fanout.loss_timeout),
    };
    let (protocol, unique) = (fanout.protocol, fanout.unique_names);
    let target = move |i: usize| match protocol {
        Protocol::Raw => "/".to_string(),
        Protocol::Chat if i == members => "/ws?name=publisher".to_string(),
        Protocol::Chat if unique => format!("/ws?name=m{i}"),
        Protocol::Chat => "/ws?name=member".to_string(),
    };
    let setup = open_all(
        args,
        &mut pool,
        members + 1,
        target,
        &mut driver,
        &mut progress,
    )?;

    // Everyone is subscribed once a probe reached every member.
    let ready_deadline = Instant::now() + secs(args.setup_timeout);
    let mut probes = 0;
    let mut last_probe = Instant::now() - Duration::from_secs(1);
    while driver.ready_count < members {
        if last_probe.elapsed() >= Duration::from_millis(200) {
            driver.probe(&mut pool.clients, probes);
            pool.clients.flush();
            probes += 1;
            last_probe = Instant::now();
        }
        if Instant::now() > ready_deadline {
            return Err(format!(
                "only {} of {members} members got a probe message",
                driver.ready_count
            ));
        }
        pool.turn(Duration::from_millis(5), &mut driver)
            .map_err(|e| e.to_string())?;
        progress.tick(|| format!("subscribing: {}/{members} ready", driver.ready_count));
    }

    let (seconds, mut report) = measure(args, &mut pool, &mut driver, &mut progress)?;
    driver.publishing = false;
    pool.close_all();

    report.insert("scenario".into(), json!("fanout"));
    report.insert(
        "params".into(),
        json!({
            "members": members,
            "instances": fanout.spread.len().max(1),
            "in_flight": driver.in_flight,
            "protocol": format!("{:?}", fanout.protocol).to_lowercase(),
            "size": fanout.size,
        }),
    );
    report.insert("setup_s".into(), json!(setup.as_secs_f64()));
    report.insert("deliveries".into(), json!(driver.deliveries));
    report.insert(
        "deliveries_per_sec".into(),
        json!(driver.deliveries as f64 / seconds),
    );
    report.insert(
        "published_per_sec".into(),
        json!(driver.published as f64 / seconds),
    );
    report.insert("latency_us".into(), latency_json(&driver.latency));
    report.insert("lost".into(), json!(driver.lost));
    report.insert("late".into(), json!(driver.late));
    // Everything the publisher sent, warm-up and readiness probes included: what a broker's
    // per-message cost is divided by.
    report.insert("sent_total".into(), json!(driver.next_seq + probes));
    Ok(Value::Object(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_parse_in_raw_text_and_in_chat_json() {
        assert_eq!(parse_stamp(b"#B12 345 xxxx"), Some((12, 345)));
        let json =
            br##"{"type":"message","id":3,"room":"r","from":"p","text":"#B7 99 xx","ts":1}"##;
        assert_eq!(parse_stamp(json), Some((7, 99)));
        assert_eq!(parse_stamp(b"#P3"), None);
        assert_eq!(parse_stamp(b"#B"), None);
    }
}
