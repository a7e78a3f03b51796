//! Counters and gauges. Each worker writes only its own set (relaxed atomics, no sharing of
//! cache lines between workers on the message path); readers sum them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use ws_proto::CloseCode;

/// Close codes counted individually; the rest go to "other".
pub const COUNTED_CLOSE_CODES: [u16; 11] = [
    1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011, 1012, 4008,
];

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// One worker's counters.
        #[derive(Debug, Default)]
        pub struct WorkerMetrics {
            $(#[doc = $help] pub $name: AtomicU64,)*
            /// Open connections (gauge).
            pub connections_open: AtomicI64,
            /// Bytes queued for sending, all connections (gauge).
            pub queued_bytes: AtomicI64,
            /// Heap bytes held for connections: queues, partial messages, input waiting,
            /// compression state (gauge; what the memory budget counts).
            pub held_bytes: AtomicI64,
            /// Closes by code, in the order of [`COUNTED_CLOSE_CODES`], then "other".
            pub closes_by_code: [AtomicU64; COUNTED_CLOSE_CODES.len() + 1],
        }

        /// A sum over all workers at one moment.
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct Snapshot {
            $(#[doc = $help] pub $name: u64,)*
            /// Open connections.
            pub connections_open: i64,
            /// Bytes queued for sending, all connections.
            pub queued_bytes: i64,
            /// Heap bytes held for connections.
            pub held_bytes: i64,
            /// Closes by code, in the order of [`COUNTED_CLOSE_CODES`], then "other".
            pub closes_by_code: [u64; COUNTED_CLOSE_CODES.len() + 1],
        }

        impl Snapshot {
            fn add(&mut self, w: &WorkerMetrics) {
                $(self.$name += w.$name.load(Ordering::Relaxed);)*
                self.connections_open += w.connections_open.load(Ordering::Relaxed);
                self.queued_bytes += w.queued_bytes.load(Ordering::Relaxed);
                self.held_bytes += w.held_bytes.load(Ordering::Relaxed);
                for (sum, c) in self.closes_by_code.iter_mut().zip(&w.closes_by_code) {
                    *sum += c.load(Ordering::Relaxed);
                }
            }

            /// The Prometheus text exposition format.
            pub fn to_prometheus(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP ws_{} {}", stringify!($name), $help);
                    let _ = writeln!(out, "# TYPE ws_{} counter", stringify!($name));
                    let _ = writeln!(out, "ws_{} {}", stringify!($name), self.$name);
                )*
                out.push_str("# HELP ws_connections_open Open connections.\n# TYPE ws_connections_open gauge\n");
                let _ = writeln!(out, "ws_connections_open {}", self.connections_open);
                out.push_str("# HELP ws_queued_bytes Bytes queued for sending.\n# TYPE ws_queued_bytes gauge\n");
                let _ = writeln!(out, "ws_queued_bytes {}", self.queued_bytes);
                out.push_str("# HELP ws_held_bytes Heap bytes held for connections (what the memory budget counts).\n# TYPE ws_held_bytes gauge\n");
                let _ = writeln!(out, "ws_held_bytes {}", self.held_bytes);
                out.push_str("# HELP ws_closes_total Connections closed, by close code.\n# TYPE ws_closes_total counter\n");
                for (i, n) in self.closes_by_code.iter().enumerate() {
                    let code = COUNTED_CLOSE_CODES.get(i).map_or("other".to_string(), |c| c.to_string());
                    let _ = writeln!(out, "ws_closes_total{{code=\"{code}\"}} {n}");
                }
                out
            }
        }
    };
}

counters! {
    connections_accepted_total: "TCP connections accepted.",
    connections_refused_total: "Connections refused by the total or per-IP limit.",
    handshakes_rate_limited_total: "Connections refused by the handshake rate limit of their client (429).",
    handshakes_ok_total: "WebSocket handshakes completed.",
    deflate_handshakes_total: "Handshakes that negotiated permessage-deflate.",
    handshakes_rejected_total: "Handshakes refused (bad request or by the application).",
    handshake_timeouts_total: "Connections dropped for not finishing the handshake in time.",
    http_requests_total: "Plain HTTP requests answered.",
    messages_in_total: "Messages received.",
    messages_out_total: "Messages sent (fanout deliveries included).",
    bytes_in_total: "Bytes read from sockets.",
    bytes_out_total: "Bytes written to sockets.",
    fanout_deliveries_total: "Room messages queued to members.",
    backpressure_drops_total: "Room messages skipped for members past the high-water mark.",
    backpressure_closes_total: "Connections closed with 1008 for being past the high-water mark (the close policy, or past the slow-consumer grace).",
    heartbeat_timeouts_total: "Connections closed for not answering a ping in time.",
    idle_timeouts_total: "Connections closed for receiving nothing for the idle timeout.",
    credential_expiries_total: "Connections closed with 1008 because their credentials expired unrenewed.",
    protocol_errors_total: "Connections failed for a protocol violation by the peer.",
    inbox_drops_total: "Room messages and commands for a worker dropped because its inbox was full.",
    memory_sheds_total: "Connections dropped, largest first, while the server was over its memory budget.",
}

impl WorkerMetrics {
    /// Counts one close with `code`.
    pub fn count_close(&self, code: CloseCode) {
        let i = COUNTED_CLOSE_CODES
            .iter()
            .position(|&c| c == code.0)
            .unwrap_or(COUNTED_CLOSE_CODES.len());
        self.closes_by_code[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Adds to a counter.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// All workers' metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    workers: Arc<[Arc<WorkerMetrics>]>,
}

impl Metrics {
    pub(crate) fn new(workers: usize) -> Metrics {
        Metrics {
            workers: (0..workers)
                .map(|_| Arc::new(WorkerMetrics::default()))
                .collect(),
        }
    }

    pub(crate) fn worker(&self, i: usize) -> Arc<WorkerMetrics> {
        self.workers[i].clone()
    }

    /// Heap bytes held for connections now, all workers (the memory budget's measure).
    pub fn held_bytes(&self) -> i64 {
        self.workers
            .iter()
            .map(|w| w.held_bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Open connections now, all workers.
    pub fn connections_open(&self) -> i64 {
        self.workers
            .iter()
            .map(|w| w.connections_open.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum over all workers now.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for w in self.workers.iter() {
            s.add(w);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_workers_and_renders_prometheus() {
        let m = Metrics::new(2);
        add(&m.worker(0).messages_in_total, 2);
        add(&m.worker(1).messages_in_total, 3);
        m.worker(1).count_close(CloseCode::MESSAGE_TOO_BIG);
        m.worker(0).count_close(CloseCode(4321));
        let s = m.snapshot();
        assert_eq!(s.messages_in_total, 5);
        let text = s.to_prometheus();
        assert!(text.contains("ws_messages_in_total 5\n"));
        assert!(text.contains("ws_closes_total{code=\"1009\"} 1\n"));
        assert!(text.contains("ws_closes_total{code=\"other\"} 1\n"));
        assert!(text.contains("# TYPE ws_connections_open gauge\n"));
    }
}
