//! Runs a target on pseudo-random inputs on stable, for a quick check where nightly or
//! cargo-fuzz is not at hand (no coverage guidance, so far weaker than fuzzing). The input
//! being run is kept in `target/soak-last` so a failure can be replayed.
//!
//!     cargo run --release -p ws-fuzz --example soak -- connection 100000

use std::path::Path;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("usage: soak TARGET [COUNT]");
    let count: u64 = args.next().map_or(10_000, |n| n.parse().expect("a count"));
    let target = ws_fuzz::target(&name).unwrap_or_else(|| panic!("no target {name}"));
    let last = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/soak-last");
    // xorshift64: reproducible from run to run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..count {
        let len = (i % 1024) as usize;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(&last, &data).unwrap();
        target(&data);
    }
    println!("{name}: {count} inputs ok");
}
