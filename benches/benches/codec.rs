//! The codec on identical input: ws-proto beside tungstenite and fastwebsockets.
//!
//! - `receive`: what a server does with masked client messages: parse, unmask, validate UTF-8
//!   (text), deliver each whole message; text and binary, 16 B to 1 MiB. ws-proto twice: owned
//!   messages (`receive` + `poll_event`; both others deliver owned payloads too) and in place
//!   (`receive_in_place`: messages borrowed from the read buffer, for a caller that is done
//!   with each message before its next read);
//! - `send`: what a server does to send messages: encode unmasked frames into its output;
//! - `fragmented`: receiving messages that arrive in several frames.
//!
//! Every implementation reads the same bytes from an in-memory stream (`MemStream`), 64 KiB per
//! read as from a socket, and writes into a sink that copies what it is given once (as a socket
//! copies into the kernel) and drops it; fastwebsockets' futures are polled once each (the
//! stream never waits), so no runtime is timed.

use benches::input::{client_messages, payload, Kind};
use benches::memstream::{block_on, MemStream};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::{IoSlice, Read, Write};
use std::time::Duration;

const READ_SIZE: usize = 64 << 10;
/// The server flushes its output once this much is queued (and at the end).
const FLUSH_AT: usize = 64 << 10;

/// Message sizes and how many of each one iteration handles.
const SIZES: [(usize, usize); 5] = [
    (16, 100_000),
    (125, 100_000),
    (1024, 100_000),
    (64 << 10, 1_000),
    (1 << 20, 64),
];

fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

mod ours {
    use super::*;
    use ws_proto::{Config, Connection, Event, InPlaceEvent, Message, Utf8Bytes};

    /// Feeds `input` to a server one read at a time; `take` delivers a read's messages and
    /// returns how many and their payload bytes.
    fn read_all(
        input: &[u8],
        count: usize,
        mut take: impl FnMut(&mut Connection, &mut [u8]) -> (usize, usize),
    ) -> usize {
        let mut stream = MemStream::new(input, READ_SIZE);
        let mut buf = vec![0u8; READ_SIZE];
        let mut conn = Connection::server(Config::default());
        let (mut n, mut total) = (0, 0);
        while n < count {
            let len = stream.read(&mut buf).expect("input holds every message");
            let (messages, bytes) = take(&mut conn, &mut buf[..len]);
            n += messages;
            total += bytes;
        }
        assert_eq!(n, count);
        total
    }

    fn owned_len(event: Event) -> usize {
        // Texts are read as `str`, as an application reads them (and as the others' are).
        match event {
            Event::Message(Message::Text(text)) => black_box(text.as_str()).len(),
            Event::Message(Message::Binary(bytes)) => black_box(&bytes[..]).len(),
            _ => panic!("unexpected {event:?}"),
        }
    }

    pub fn receive(input: &[u8], count: usize) -> usize {
        read_all(input, count, |conn, read| {
            conn.receive(read).expect("valid input");
            let (mut n, mut total) = (0, 0);
            while let Some(event) = conn.poll_event() {
                total += owned_len(event);
                n += 1;
            }
            (n, total)
        })
    }

    /// The same, with each read taken in place: whole messages are slices of the read buffer.
    pub fn receive_in_place(input: &[u8], count: usize) -> usize {
        read_all(input, count, |conn, read| {
            let mut input = conn.receive_in_place(read);
            let (mut n, mut total) = (0, 0);
            while let Some(event) = input.next_event().expect("valid input") {
                total += match event {
                    InPlaceEvent::Text(t) => black_box(t).len(),
                    InPlaceEvent::Binary(b) => black_box(b).len(),
                    InPlaceEvent::Other(event) => owned_len(event),
                };
                n += 1;
            }
            (n, total)
        })
    }

    fn drain(conn: &mut Connection, sink: &mut MemStream<'_>) {
        loop {
            let mut slices = [IoSlice::new(&[]); 64];
            let n = conn.transmit_io_slices(&mut slices);
            if n == 0 {
                return;
            }
            let written = sink.write_vectored(&slices[..n]).expect("a sink takes all");
            conn.advance_transmit(written);
        }
    }

    pub fn send(kind: Kind, payload: &[u8], count: usize) -> usize {
        let mut sink = MemStream::new(&[], 0);
        let mut conn = Connection::server(Config::default());
        // An owned message, as the others get: large payloads are queued, not copied.
        let message = match kind {
            Kind::Text => Message::Text(
                Utf8Bytes::try_from(Bytes::copy_from_slice(payload)).expect("text payload"),
            ),
            Kind::Binary => Message::Binary(Bytes::copy_from_slice(payload)),
        };
        for _ in 0..count {
            conn.send(&message).expect("open");
            if conn.pending_transmit_len() >= FLUSH_AT {
                drain(&mut conn, &mut sink);
            }
        }
        drain(&mut conn, &mut sink);
        sink.written
    }
}

mod tungstenite_side {
    use super::*;
    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::{Message, Utf8Bytes};

    pub fn receive(input: &[u8], count: usize) -> usize {
        let stream = MemStream::new(input, READ_SIZE);
        let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
        let mut total = 0;
        for _ in 0..count {
            total += match ws.read().expect("valid input") {
                Message::Text(t) => black_box(t.as_str()).len(),
                Message::Binary(b) => black_box(&b[..]).len(),
                other => panic!("unexpected {other:?}"),
            };
        }
        total
    }

    pub fn send(kind: Kind, payload: &[u8], count: usize) -> usize {
        let sink = MemStream::new(&[], 0);
        let mut ws = WebSocket::from_raw_socket(sink, Role::Server, None);
        // Messages own their payload; cloning a Bytes is a reference count, not a copy.
        let message = match kind {
            Kind::Text => Message::Text(
                Utf8Bytes::try_from(Bytes::copy_from_slice(payload)).expect("text payload"),
            ),
            Kind::Binary => Message::Binary(Bytes::copy_from_slice(payload)),
        };
        for _ in 0..count {
            ws.write(message.clone()).expect("open");
        }
        ws.flush().expect("a sink takes all");
        ws.get_ref().written
    }
}

mod fastwebsockets_side {
    use super::*;
    use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload, Role, WebSocket};

    pub fn receive(input: &[u8], count: usize) -> usize {
        let stream = MemStream::new(input, READ_SIZE);
        // The collector delivers whole messages (and checks UTF-8 across fragments).
        let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
        let mut total = 0;
        for _ in 0..count {
            let frame = block_on(ws.read_frame()).expect("valid input");
            assert!(matches!(frame.opcode, OpCode::Text | OpCode::Binary));
            total += black_box(&frame.payload[..]).len();
        }
        total
    }

    pub fn send(kind: Kind, payload: &[u8], count: usize) -> usize {
        let sink = MemStream::new(&[], 0);
        let mut ws = WebSocket::after_handshake(sink, Role::Server);
        let opcode = match kind {
            Kind::Text => OpCode::Text,
            Kind::Binary => OpCode::Binary,
        };
        for _ in 0..count {
            let frame = Frame::new(true, opcode, None, Payload::Borrowed(payload));
            block_on(ws.write_frame(frame)).expect("open");
        }
        ws.into_inner().written
    }
}

fn throughput(size: usize, count: usize) -> Throughput {
    Throughput::ElementsAndBytes {
        elements: count as u64,
        bytes: (size * count) as u64,
    }
}

fn receive(c: &mut Criterion) {
    for kind in [Kind::Text, Kind::Binary] {
        for (size, count) in SIZES {
            let input = client_messages(kind, size, count, 1);
            let expected = size * count;
            // The same answer from everyone before anything is timed.
            assert_eq!(ours::receive(&input, count), expected);
            assert_eq!(ours::receive_in_place(&input, count), expected);
            assert_eq!(tungstenite_side::receive(&input, count), expected);
            assert_eq!(fastwebsockets_side::receive(&input, count), expected);

            let mut group = c.benchmark_group(format!("receive/{}", kind.name()));
            group.throughput(throughput(size, count));
            let id = |name: &str| BenchmarkId::new(name, size_name(size));
            group.bench_function(id("ws-proto"), |b| b.iter(|| ours::receive(&input, count)));
            group.bench_function(id("ws-proto in place"), |b| {
                b.iter(|| ours::receive_in_place(&input, count))
            });
            group.bench_function(id("tungstenite"), |b| {
                b.iter(|| tungstenite_side::receive(&input, count))
            });
            group.bench_function(id("fastwebsockets"), |b| {
                b.iter(|| fastwebsockets_side::receive(&input, count))
            });
            group.finish();
        }
    }
}

fn send(c: &mut Criterion) {
    for kind in [Kind::Text, Kind::Binary] {
        for (size, count) in SIZES {
            let body = payload(kind, size);
            let framed = ours::send(kind, &body, count);
            assert_eq!(tungstenite_side::send(kind, &body, count), framed);
            assert_eq!(fastwebsockets_side::send(kind, &body, count), framed);

            let mut group = c.benchmark_group(format!("send/{}", kind.name()));
            group.throughput(throughput(size, count));
            let id = |name: &str| BenchmarkId::new(name, size_name(size));
            group.bench_function(id("ws-proto"), |b| {
                b.iter(|| ours::send(kind, &body, count))
            });
            group.bench_function(id("tungstenite"), |b| {
                b.iter(|| tungstenite_side::send(kind, &body, count))
            });
            group.bench_function(id("fastwebsockets"), |b| {
                b.iter(|| fastwebsockets_side::send(kind, &body, count))
            });
            group.finish();
        }
    }
}

fn fragmented(c: &mut Criterion) {
    let cases = [
        (Kind::Text, 1024, 8, 100_000),
        (Kind::Text, 64 << 10, 16, 1_000),
        (Kind::Binary, 64 << 10, 16, 1_000),
    ];
    for (kind, size, fragments, count) in cases {
        let input = client_messages(kind, size, count, fragments);
        let expected = size * count;
        assert_eq!(ours::receive(&input, count), expected);
        assert_eq!(tungstenite_side::receive(&input, count), expected);
        assert_eq!(fastwebsockets_side::receive(&input, count), expected);

        let mut group = c.benchmark_group(format!("fragmented/{}", kind.name()));
        group.throughput(throughput(size, count));
        let case = format!("{}x{fragments}", size_name(size));
        group.bench_function(BenchmarkId::new("ws-proto", &case), |b| {
            b.iter(|| ours::receive(&input, count))
        });
        group.bench_function(BenchmarkId::new("tungstenite", &case), |b| {
            b.iter(|| tungstenite_side::receive(&input, count))
        });
        group.bench_function(BenchmarkId::new("fastwebsockets", &case), |b| {
            b.iter(|| fastwebsockets_side::receive(&input, count))
        });
        group.finish();
    }
}

fn config() -> Criterion {
    // One iteration is a whole batch (milliseconds), so few samples suffice.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = codec;
    config = config();
    targets = receive, send, fragmented
}
criterion_main!(codec);
