//! Measuring ws-proto and ws-mio-server against other WebSocket implementations.
//!
//! - `benches/codec.rs` and `benches/mask.rs` (criterion): the engine's receive and send paths
//!   beside tungstenite and fastwebsockets on identical input, and unmasking throughput;
//! - `ws-load` ([`load`]): a load generator on ws-proto and mio for echo, fanout, connection
//!   setup and idle memory;
//! - `peer-tungstenite` and `peer-fastwebsockets`: the servers our server is compared with;
//! - `run.sh`: the whole comparison, written to `results/`.
//!
//! This library holds what those programs share. See `README.md` for how to run them.

pub mod hist;
pub mod input;
pub mod load;
pub mod memstream;
pub mod peer;
pub mod procfs;
pub mod upgrade;
