//! Unmasking throughput by payload size: `apply_mask` (eight bytes at a time), the byte loop it
//! replaces (`apply_mask_bytewise`), and a plain XOR of a buffer of the same size with a constant
//! word, the ceiling set by the memory system.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use ws_proto::mask::{apply_mask, apply_mask_bytewise};

const SIZES: [usize; 9] = [
    16,
    64,
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
];

fn unmask(c: &mut Criterion) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let word = u64::from_ne_bytes([0x37, 0xfa, 0x21, 0x3d, 0x37, 0xfa, 0x21, 0x3d]);
    let mut group = c.benchmark_group("unmask");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut bytes: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut words: Vec<u64> = (0..size / 8).map(|i| i as u64).collect();
        group.bench_function(BenchmarkId::new("apply_mask", size), |b| {
            b.iter(|| apply_mask(black_box(&mut bytes[..]), black_box(key), 0))
        });
        group.bench_function(BenchmarkId::new("bytewise", size), |b| {
            b.iter(|| apply_mask_bytewise(black_box(&mut bytes[..]), black_box(key), 0))
        });
        group.bench_function(BenchmarkId::new("xor_u64", size), |b| {
            b.iter(|| {
                let word = black_box(word);
                for w in black_box(&mut words[..]) {
                    *w ^= word;
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = mask;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = unmask
}
criterion_main!(mask);
