//! permessage-deflate as a server uses it by default (no context takeover either way): a
//! server connection compressing messages it sends, inflating compressed messages it
//! receives, and compressing one room message for every member (`compress_shared`). 128 B and
//! 1 KiB of chat-like JSON, and 16 KiB.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use ws_proto::deflate::{compress_shared, DeflateConfig, DeflateParams, PerMessageDeflate};
use ws_proto::{Config, Connection, Event, MessageKind, Role};

const SIZES: [usize; 3] = [128, 1024, 16 << 10];
/// Messages one iteration handles.
const BATCH: usize = 100;

fn params() -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    }
}

fn connection(role: Role) -> Connection {
    let config = DeflateConfig {
        min_size: 0,
        ..DeflateConfig::default()
    };
    let deflate = PerMessageDeflate::new(role, params(), &config);
    let conn = match role {
        Role::Server => Connection::server(Config::default()),
        Role::Client => Connection::client(Config::default()),
    };
    conn.with_extension(Box::new(deflate))
}

/// Text that compresses as chat messages do.
fn text(size: usize) -> String {
    let unit = r#"{"type":"message","room":"lobby","user":"guest-17","text":"hello there, how is everyone today?"},"#;
    unit.repeat(size / unit.len() + 1)[..size].to_string()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    group.measurement_time(Duration::from_secs(3));
    for size in SIZES {
        let message = text(size);
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_with_input(BenchmarkId::new("send", size), &message, |b, m| {
            let mut server = connection(Role::Server);
            b.iter(|| {
                for _ in 0..BATCH {
                    server.send_text(m).unwrap();
                }
                while let Some(chunk) = server.poll_transmit() {
                    black_box(chunk);
                }
            })
        });
        // What a client sends, compressed and masked, received by a server.
        let mut client = connection(Role::Client);
        for _ in 0..BATCH {
            client.send_text(&message).unwrap();
        }
        let mut wire = Vec::new();
        while let Some(chunk) = client.poll_transmit() {
            wire.extend_from_slice(&chunk);
        }
        group.bench_with_input(BenchmarkId::new("receive", size), &wire, |b, wire| {
            let mut server = connection(Role::Server);
            let mut buf = wire.clone();
            b.iter(|| {
                buf.copy_from_slice(wire);
                server.receive(&buf).unwrap();
                let mut n = 0;
                while let Some(Event::Message(m)) = server.poll_event() {
                    n += black_box(m).as_bytes().len();
                }
                assert_eq!(n, BATCH * size);
            })
        });
        group.bench_with_input(
            BenchmarkId::new("compress_shared", size),
            &message,
            |b, m| {
                b.iter(|| {
                    for _ in 0..BATCH {
                        black_box(compress_shared(MessageKind::Text, m.as_bytes(), 15, 6));
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
