//! Checking whole texts: `ws_proto::utf8::text_of` (an ASCII check, then simdutf8 on slices of
//! whole 64-byte blocks where the text allows) against simdutf8 called on the whole text and
//! against the standard library, by length, on a mostly-ASCII text (the codec benchmarks'
//! text) and on Cyrillic, where most characters take two bytes. Lengths that are not a
//! multiple of 64 are where simdutf8's padded last block costs, and where `text_of` differs.

use benches::input::{payload, repeated_text, Kind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use ws_proto::utf8::text_of;

const SIZES: [usize; 7] = [16, 64, 125, 128, 200, 1000, 1024];

/// `len` bytes of Cyrillic text, cut at a character and padded with ASCII.
fn cyrillic(len: usize) -> Vec<u8> {
    repeated_text(
        "Съешь же ещё этих мягких французских булок, да выпей чаю. ",
        len,
    )
}

fn whole_text(c: &mut Criterion) {
    for (script, make) in [
        (
            "mixed",
            (|n| payload(Kind::Text, n)) as fn(usize) -> Vec<u8>,
        ),
        ("cyrillic", cyrillic),
    ] {
        let mut group = c.benchmark_group(format!("utf8/{script}"));
        for size in SIZES {
            let text = make(size);
            assert_eq!(text.len(), size);
            assert!(text_of(&text).is_ok());
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new("text_of", size), |b| {
                b.iter(|| text_of(black_box(&text)).is_ok())
            });
            group.bench_function(BenchmarkId::new("simdutf8", size), |b| {
                b.iter(|| simdutf8::basic::from_utf8(black_box(&text)).is_ok())
            });
            group.bench_function(BenchmarkId::new("std", size), |b| {
                b.iter(|| std::str::from_utf8(black_box(&text)).is_ok())
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = utf8;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = whole_text
}
criterion_main!(utf8);
