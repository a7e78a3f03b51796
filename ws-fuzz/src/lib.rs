//! Fuzz targets for `ws-proto` and the `ws-mio-server` workers.
//!
//! Each target is a plain function over `&[u8]` that panics when an invariant breaks, so the
//! same code runs under libFuzzer (the package in `fuzz/`, nightly) and as an ordinary test
//! replaying the committed corpus (`tests/corpus.rs`, stable). See the README for what each
//! target checks.

pub mod chunks;
pub mod connection;
pub mod deflate;
pub mod frame_decoder;
pub mod handshake;
pub mod mask;
pub mod model;
pub mod roundtrip;
pub mod seeds;
pub mod server;
pub mod utf8;

/// A fuzz target: panics when an invariant is broken.
pub type Target = fn(&[u8]);

/// Every target, by the name of its libFuzzer binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decoder", frame_decoder::run),
    ("server_handshake", handshake::server_handshake),
    ("client_response", handshake::client_response),
    ("connection", connection::run),
    ("roundtrip", roundtrip::run),
    ("utf8_differential", utf8::run),
    ("mask_differential", mask::run),
    ("deflate", deflate::run),
    ("server", server::run),
];

/// The target with this name.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
